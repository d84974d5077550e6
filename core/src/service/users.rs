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

/// Checks e-mail and password and opens a session. Wrong e-mail and wrong password get the
/// same answer, so logins cannot probe which addresses exist.
pub async fn login(store: &Store, email: &str, password: &str) -> Result<(String, TokenInfo)> {
    let denied = || DomainError::Forbidden("wrong e-mail or password".into());
    let login = users::find_login(store.conn(), email).await?;
    let ok = match &login {
        Some(l) if l.active => l.password_hash.as_deref().is_some_and(|h| users::verify_password(password, h)),
        _ => {
            // Spend the same effort as a real check.
            let _ = users::verify_password(password, dummy_hash());
            false
        }
    };
    let login = match (ok, login) {
        (true, Some(login)) => login,
        _ => return Err(denied().into()),
    };
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
    Ok(Some(Actor { kind, id: Some(info.id.to_string()), name, role: info.role, user_id: info.user_id, depth: 0 }))
}

/// How long a resolved token is trusted without asking the database again. Revoking a token
/// through this process takes effect at once; through another process, within this time.
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Recently resolved tokens by hash, so a request does not cost a token lookup and a
/// `last used` write each time.
#[derive(Debug, Default)]
pub struct AuthCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Actor, std::time::Instant)>>,
    /// When this process last recorded each token's use: the requests that find a token's
    /// entry missing or expired at once all look it up, and one of them records the use.
    touched: std::sync::Mutex<std::collections::HashMap<Uuid, std::time::Instant>>,
}

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (Actor, std::time::Instant)>> {
        match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Forgets every entry (after a revocation or a change of role).
    pub fn clear(&self) {
        self.lock().clear();
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
    if let Some((actor, at)) = kith.auth_cache.lock().get(&key)
        && now.duration_since(*at) < AUTH_CACHE_TTL
    {
        return Ok(Some(actor.clone()));
    }
    let actor = authenticate_claiming(&kith.store, token, |id| kith.auth_cache.claim_touch(id)).await?;
    let mut cache = kith.auth_cache.lock();
    if cache.len() > 10_000 {
        cache.retain(|_, (_, at)| now.duration_since(*at) < AUTH_CACHE_TTL);
    }
    match &actor {
        Some(actor) => {
            cache.insert(key, (actor.clone(), now));
        }
        None => {
            cache.remove(&key);
        }
    }
    Ok(actor)
}
