//! Users, logins and tokens.

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::{Actor, ActorKind, Role};
use crate::domain::object::Registry;
use crate::domain::value::Value;
use crate::error::Result;
use crate::service::input::Input;
use crate::service::records;
use crate::store::records::Record;
use crate::store::tokens::{self, NewToken, TokenInfo};
use crate::store::{Store, Tx, audit, outbox, users};

/// How long a session from `login` lasts.
pub const SESSION_HOURS: i64 = 12;

/// Creates a user, with a password when given.
pub async fn create_user(
    tx: &Tx,
    registry: &Registry,
    email: &str,
    name: &str,
    role: Role,
    password: Option<&str>,
) -> Result<Record> {
    let hash = password.map(users::hash_password).transpose()?;
    let input = Input::fields([
        ("email", Value::from_json("email", &crate::domain::value::FieldKind::Email, &json!(email))?),
        ("name", Value::Text(name.to_owned())),
        ("role", Value::Text(role.as_str().to_owned())),
    ]);
    let user = records::create(tx, registry, "user", input).await?;
    if let Some(hash) = hash {
        users::set_password_hash(tx, user.id(), &hash).await?;
    }
    Ok(user)
}

/// What [`update_user`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    /// Display name.
    pub name: Option<String>,
    /// Role.
    pub role: Option<Role>,
    /// Whether the user may sign in (an inactive user's sessions and tokens stop working).
    pub active: Option<bool>,
}

/// Changes a user's name, role or whether they are active, audited like any update. Refused
/// with a conflict when it would leave no active ADMIN.
pub async fn update_user(
    tx: &Tx,
    registry: &Registry,
    id: Uuid,
    change: UserChange,
    expected_version: Option<i64>,
) -> Result<Record> {
    users::lock_admins(tx).await?;
    let def = registry.get("user").ok_or_else(|| DomainError::not_found("object", "user"))?;
    let before = crate::store::records::get_live(tx.conn(), def, id).await?;
    let is_admin = |role: &Value, active: &Value| {
        matches!(role, Value::Text(r) if r == Role::Admin.as_str()) && matches!(active, Value::Bool(true))
    };
    let was_admin = is_admin(before.get("role"), before.get("active"));
    let role = change.role.map(|r| Value::Text(r.as_str().to_owned()));
    let active = change.active.map(Value::Bool);
    let stays_admin =
        is_admin(role.as_ref().unwrap_or(before.get("role")), active.as_ref().unwrap_or(before.get("active")));
    if was_admin && !stays_admin && users::active_admins(tx.conn()).await? <= 1 {
        return Err(DomainError::conflict("this is the last active ADMIN: make another user an ADMIN first").into());
    }
    let mut fields = Vec::new();
    if let Some(name) = change.name {
        fields.push(("name", Value::Text(name)));
    }
    fields.extend(role.map(|r| ("role", r)));
    fields.extend(active.map(|a| ("active", a)));
    records::update(tx, registry, "user", id, Input::fields(fields), expected_version).await
}

/// Creates an API token and returns its info and the secret, shown once.
pub async fn create_token(
    tx: &Tx,
    name: &str,
    role: Role,
    user_id: Option<Uuid>,
    expires_in_days: Option<i64>,
) -> Result<(Uuid, String)> {
    if let Some(days) = expires_in_days
        && !(1..=3650).contains(&days)
    {
        return Err(DomainError::invalid("expiresInDays", "must be between 1 and 3650").into());
    }
    let new = NewToken {
        name: name.to_owned(),
        kind: "api".into(),
        role,
        user_id,
        expires_at: expires_in_days.map(|d| tx.now + Duration::days(d)),
    };
    let (id, secret) = tokens::insert(tx, &new).await?;
    audit::record(tx, "create", "token", Some(id), json!({"name": name, "role": role.as_str()})).await?;
    outbox::emit(
        tx,
        vec![outbox::NewEvent {
            kind: "token.created".into(),
            object: "token".into(),
            record_id: Some(id),
            payload: json!({"name": name, "role": role.as_str()}),
        }],
    )
    .await?;
    Ok((id, secret))
}

/// Revokes API tokens by id or name.
pub async fn revoke_token(tx: &Tx, id_or_name: &str) -> Result<Vec<Uuid>> {
    let ids = tokens::revoke(tx, id_or_name).await?;
    for id in &ids {
        audit::record(tx, "revoke", "token", Some(*id), json!({})).await?;
        outbox::emit(
            tx,
            vec![outbox::NewEvent {
                kind: "token.revoked".into(),
                object: "token".into(),
                record_id: Some(*id),
                payload: json!({}),
            }],
        )
        .await?;
    }
    Ok(ids)
}

/// Ends the session whose secret is `secret` (a sign-out): the token is revoked, with its
/// audit entry and event, and forgotten by this process's cache at once. Other tokens, and
/// secrets that are not sessions, are left alone.
pub async fn end_session(kith: &crate::service::Kith, actor: &Actor, secret: &str) -> Result<()> {
    let store = &kith.store;
    let Some(info) = tokens::authenticate(store.conn(), secret, Utc::now()).await? else { return Ok(()) };
    if info.kind != "session" {
        return Ok(());
    }
    let tx = store.begin(actor).await?;
    revoke_token(&tx, &info.id.to_string()).await?;
    tx.commit().await?;
    kith.auth_cache.forget(Some(info.id), None);
    Ok(())
}

/// Creates the first user, an ADMIN, when there is none yet (first-run setup); refused with a
/// conflict once any user exists.
pub async fn create_first_admin(
    kith: &crate::service::Kith,
    email: &str,
    name: &str,
    password: &str,
) -> Result<Record> {
    let tx = kith.store.begin(&Actor::system("setup")).await?;
    users::lock_first_user(&tx).await?;
    if users::any(tx.conn()).await? {
        return Err(DomainError::conflict("Kith has users already").into());
    }
    let user = create_user(&tx, &kith.registry(), email, name, Role::Admin, Some(password)).await?;
    tx.commit().await?;
    Ok(user)
}

/// How long a refused login takes at the least, so an answer's time does not tell a known
/// account from an unknown one (the password check is the same work for both; the database
/// lookups are not, by a few milliseconds).
pub const LOGIN_FLOOR: std::time::Duration = std::time::Duration::from_millis(150);

/// Checks e-mail and password and opens a session. Wrong e-mail and wrong password get the
/// same answer, after at least [`LOGIN_FLOOR`], so logins cannot probe which addresses
/// exist. Failed logins are throttled by account and by `client` address
/// ([`crate::service::throttle`]): a login that must wait is refused with
/// [`DomainError::Throttled`] before its password is checked.
pub async fn login(
    kith: &crate::service::Kith,
    client: Option<std::net::IpAddr>,
    email: &str,
    password: &str,
) -> Result<(String, TokenInfo)> {
    let started = tokio::time::Instant::now();
    if let Some(wait) = kith.login_throttle.wait(email, client) {
        return Err(DomainError::Throttled { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 }.into());
    }
    let store = &kith.store;
    let login = users::find_login(store.conn(), email).await?;
    let hash = match &login {
        Some(l) if l.active => l.password_hash.clone(),
        _ => None,
    };
    // The same effort, on a blocking thread, whether or not the account exists.
    let candidate = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => users::verify_password(&candidate, &hash),
        None => {
            let _ = users::verify_password(&candidate, dummy_hash());
            false
        }
    })
    .await
    .map_err(|err| crate::error::Error::internal(format!("the password check failed: {err}")))?;
    let login = match (ok, login) {
        (true, Some(login)) => login,
        _ => {
            kith.login_throttle.failed(email, client);
            tokio::time::sleep_until(started + LOGIN_FLOOR).await;
            return Err(DomainError::Forbidden("wrong e-mail or password".into()).into());
        }
    };
    kith.login_throttle.succeeded(email, client);
    let actor = Actor {
        kind: ActorKind::User,
        id: Some(login.id.to_string()),
        name: login.email.clone(),
        role: login.role,
        user_id: Some(login.id),
        depth: 0,
    };
    let tx = store.begin(&actor).await?;
    let new = NewToken {
        name: format!("session for {}", login.email),
        kind: "session".into(),
        role: login.role,
        user_id: Some(login.id),
        expires_at: Some(tx.now + Duration::hours(SESSION_HOURS)),
    };
    let (id, secret) = tokens::insert(&tx, &new).await?;
    audit::record(&tx, "login", "user", Some(login.id), json!({})).await?;
    let tx_now = tx.now;
    tx.commit().await?;
    let info = TokenInfo {
        id,
        name: new.name,
        kind: new.kind,
        prefix: secret[..tokens::TOKEN_PREFIX.len() + 8].to_owned(),
        role: login.role,
        user_id: Some(login.id),
        expires_at: new.expires_at,
        last_used_at: None,
        revoked_at: None,
        created_at: Some(tx_now),
    };
    Ok((secret, info))
}

/// A real hash of a random password, checked against when the user does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| users::hash_password(&tokens::generate()).unwrap_or_default())
}

/// Resolves a bearer token to the actor it stands for.
///
/// A use is recorded (`last_used_at`) at most once a minute, and only when the token's record
/// says it is due, so most lookups stay reads; a failure to record it is logged, and the
/// lookup still answers. The record goes through the write group
/// ([`Store::write`]): on SQLite a write of its own would wait for the write lock behind a busy
/// group in SQLite's busy handler, which sleeps up to 100 ms between tries. A herd of requests
/// refreshing an expired cache entry then stalled for up to seconds under sustained writes.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<Actor>> {
    authenticate_claiming(store, token, |_| true).await
}

/// [`authenticate`], recording a due use only if `claim` agrees (once per process and minute,
/// for a herd of lookups of one token, see [`AuthCache`]).
async fn authenticate_claiming(store: &Store, token: &str, claim: impl Fn(Uuid) -> bool) -> Result<Option<Actor>> {
    Ok(authenticate_info(store, token, claim).await?.map(|(actor, _)| actor))
}

/// [`authenticate`], with the token's expiry (when it stops standing for its actor).
pub async fn authenticate_until(store: &Store, token: &str) -> Result<Option<(Actor, Option<chrono::DateTime<Utc>>)>> {
    authenticate_info(store, token, |_| true).await
}

/// [`authenticate_claiming`], with the token's expiry.
async fn authenticate_info(
    store: &Store,
    token: &str,
    claim: impl Fn(Uuid) -> bool,
) -> Result<Option<(Actor, Option<chrono::DateTime<Utc>>)>> {
    let now = Utc::now();
    let Some(info) = tokens::authenticate(store.conn(), token, now).await? else { return Ok(None) };
    if tokens::touch_due(info.last_used_at, now) && claim(info.id) {
        let id = info.id;
        let system = Actor::system("token use");
        let touched =
            store.write(&system, Box::new(move |tx| Box::pin(async move { tokens::touch(tx.conn(), id, now).await })));
        // Bookkeeping: a request whose token is valid is not refused because its use could
        // not be recorded.
        if let Err(err) = touched.await {
            tracing::warn!(error = %err, token = %id, "recording a token's use");
        }
    }
    let (kind, name) = if info.kind == "session" {
        (ActorKind::User, info.name.trim_start_matches("session for ").to_owned())
    } else {
        (ActorKind::Token, info.name.clone())
    };
    let actor = Actor { kind, id: Some(info.id.to_string()), name, role: info.role, user_id: info.user_id, depth: 0 };
    Ok(Some((actor, info.expires_at)))
}

/// How long a resolved token is trusted without asking the database again. Revoking a token
/// through this process takes effect at once; through another process sharing the database,
/// within this time (and sooner when this process's event hub reads the revocation first).
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Recently resolved tokens by hash, so a request does not cost a token lookup and a
/// `last used` write each time.
/// A resolved token: who it stands for, when it was resolved and when it expires.
#[derive(Debug, Clone)]
struct Cached {
    actor: Actor,
    at: std::time::Instant,
    expires_at: Option<chrono::DateTime<Utc>>,
}

impl Cached {
    fn fresh(&self, now: std::time::Instant) -> bool {
        now.duration_since(self.at) < AUTH_CACHE_TTL && self.expires_at.is_none_or(|t| t > Utc::now())
    }
}

#[derive(Debug, Default)]
pub struct AuthCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Cached>>,
    /// When this process last recorded each token's use: the requests that find a token's
    /// entry missing or expired at once all look it up, and one of them records the use.
    touched: std::sync::Mutex<std::collections::HashMap<Uuid, std::time::Instant>>,
}

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Cached>> {
        match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Forgets every entry (after a revocation or a change of role).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Forgets the entries of token `id`, and of every token of user `user_id`.
    pub fn forget(&self, token_id: Option<Uuid>, user_id: Option<Uuid>) {
        let token_id = token_id.map(|id| id.to_string());
        self.lock().retain(|_, cached| {
            let token = token_id.is_some() && cached.actor.id == token_id;
            let user = user_id.is_some() && cached.actor.user_id == user_id;
            !(token || user)
        });
    }

    /// Whether this lookup records the use of token `id`: no other has in the last minute.
    fn claim_touch(&self, id: Uuid) -> bool {
        let now = std::time::Instant::now();
        let mut touched = self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if touched.get(&id).is_some_and(|at| now.duration_since(*at) < std::time::Duration::from_secs(60)) {
            return false;
        }
        if touched.len() > 10_000 {
            touched.retain(|_, at| now.duration_since(*at) < std::time::Duration::from_secs(60));
        }
        touched.insert(id, now);
        true
    }
}

/// [`authenticate`] with a short-lived in-process cache.
pub async fn authenticate_cached(kith: &crate::service::Kith, token: &str) -> Result<Option<Actor>> {
    let key = tokens::hash_token(token);
    let now = std::time::Instant::now();
    if let Some(cached) = kith.auth_cache.lock().get(&key)
        && cached.fresh(now)
    {
        return Ok(Some(cached.actor.clone()));
    }
    let resolved = authenticate_info(&kith.store, token, |id| kith.auth_cache.claim_touch(id)).await?;
    let mut cache = kith.auth_cache.lock();
    if cache.len() > 10_000 {
        cache.retain(|_, cached| cached.fresh(now));
    }
    match resolved {
        Some((actor, expires_at)) => {
            cache.insert(key, Cached { actor: actor.clone(), at: now, expires_at });
            Ok(Some(actor))
        }
        None => {
            cache.remove(&key);
            Ok(None)
        }
    }
}
