//! API and session tokens. Only a SHA-256 of a token is stored; the token itself is shown once.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::Role;
use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::Tx;
use crate::store::codec::{decode, encode};

/// Every token starts with this, so leaked tokens are easy to spot and scan for.
pub const TOKEN_PREFIX: &str = "kith_";

/// SHA-256 of a token, hex. Tokens carry 256 random bits, so a fast hash is enough.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// A name for people (`ci`, `zapier`).
    pub name: String,
    /// `api` or `session`.
    pub kind: String,
    /// The role it grants.
    pub role: Role,
    /// The user it acts for, if any.
    pub user_id: Option<Uuid>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `api` or `session`.
    pub kind: String,
    /// First characters, to recognise it.
    pub prefix: String,
    /// Role granted (for a user's token: at most the user's role).
    pub role: Role,
    /// The user it acts for.
    pub user_id: Option<Uuid>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: Option<DateTime<Utc>>,
}

/// Stores a new token and returns its id and the secret (shown once).
pub async fn insert(tx: &Tx, new: &NewToken) -> Result<(Uuid, String)> {
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return Err(DomainError::invalid("name", "must be 1 to 200 characters").into());
    }
    let backend = tx.backend();
    let id = Uuid::now_v7();
    let token = generate();
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("api_token"))
        .columns(
            ["id", "name", "kind", "token_hash", "prefix", "role", "user_id", "expires_at", "created_at"]
                .map(Alias::new),
        )
        .values(
            [
                encode(backend, &FieldKind::Id, &Value::Uuid(id))?,
                new.name.trim().into(),
                new.kind.clone().into(),
                hash_token(&token).into(),
                token[..TOKEN_PREFIX.len() + 8].to_owned().into(),
                new.role.as_str().into(),
                encode(backend, &FieldKind::Id, &new.user_id.map(Value::Uuid).unwrap_or(Value::Null))?,
                encode(backend, &FieldKind::DateTime, &new.expires_at.map(Value::DateTime).unwrap_or(Value::Null))?,
                encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?,
            ]
            .into_iter()
            .map(Expr::val),
        )
        .map_err(|e| Error::internal(format!("token insert: {e}")))?;
    tx.conn().execute(&insert).await?;
    Ok((id, token))
}

const COLUMNS: [&str; 10] =
    ["id", "name", "kind", "prefix", "role", "user_id", "expires_at", "last_used_at", "revoked_at", "created_at"];

fn row_to_info(backend: DbBackend, row: &sea_orm::QueryResult) -> Result<TokenInfo> {
    let role: String = row.try_get_by_index(4)?;
    let ts =
        |idx| -> Result<Option<DateTime<Utc>>> { Ok(decode(backend, &FieldKind::DateTime, row, idx)?.as_datetime()) };
    Ok(TokenInfo {
        id: decode(backend, &FieldKind::Id, row, 0)?.as_uuid().unwrap_or_default(),
        name: row.try_get_by_index(1)?,
        kind: row.try_get_by_index(2)?,
        prefix: row.try_get_by_index(3)?,
        role: role.parse().map_err(Error::Domain)?,
        user_id: decode(backend, &FieldKind::Id, row, 5)?.as_uuid(),
        expires_at: ts(6)?,
        last_used_at: ts(7)?,
        revoked_at: ts(8)?,
        created_at: ts(9)?,
    })
}

/// Every API token (sessions excluded), newest first.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<TokenInfo>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .from(Alias::new("api_token"))
        .columns(COLUMNS.map(Alias::new))
        .and_where(Expr::col(Alias::new("kind")).eq("api"))
        .order_by(Alias::new("created_at"), Order::Desc);
    db.query_all(&select).await?.iter().map(|row| row_to_info(backend, row)).collect()
}

/// Resolves a presented token to a live token: not revoked, not expired, and — when it acts for
/// a user — that user active, with the role capped at the user's current role.
pub async fn authenticate<C: ConnectionTrait>(db: &C, token: &str, now: DateTime<Utc>) -> Result<Option<TokenInfo>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select.from(Alias::new("api_token"));
    for column in COLUMNS {
        select.column((Alias::new("api_token"), Alias::new(column)));
    }
    select
        .expr(Expr::cust("u.role"))
        .expr(Expr::cust("u.active"))
        .join_as(
            sea_orm::sea_query::JoinType::LeftJoin,
            Alias::new("app_user"),
            Alias::new("u"),
            Expr::cust("u.id = api_token.user_id"),
        )
        .and_where(Expr::col((Alias::new("api_token"), Alias::new("token_hash"))).eq(hash_token(token)));
    let Some(row) = db.query_one(&select).await? else { return Ok(None) };
    let mut info = row_to_info(backend, &row)?;
    if info.revoked_at.is_some() || info.expires_at.is_some_and(|t| t <= now) {
        return Ok(None);
    }
    // A session left idle ends (its use is recorded at most every `TOUCH_EVERY`).
    if info.kind == "session" && info.last_used_at.is_some_and(|t| t < now - Duration::minutes(SESSION_IDLE_MINUTES)) {
        return Ok(None);
    }
    if info.user_id.is_some() {
        let user_role: Option<String> = row.try_get_by_index(10)?;
        let active: Option<bool> = row.try_get_by_index(11)?;
        if active != Some(true) {
            return Ok(None);
        }
        if let Some(user_role) = user_role.and_then(|r| r.parse::<Role>().ok()) {
            info.role = info.role.min(user_role);
        }
    }
    Ok(Some(info))
}

/// How long a session may sit unused before it ends.
pub const SESSION_IDLE_MINUTES: i64 = 120;

/// How often a token's use is recorded, at most.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// Whether a token last used at `last_used_at` is due for [`touch`] at `now`.
pub fn touch_due(last_used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used_at.is_none_or(|at| at < now - TOUCH_EVERY)
}

/// Records a use of the token, at most once a minute (keeps reads from turning into writes).
pub async fn touch<C: ConnectionTrait>(db: &C, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    let stale = now - TOUCH_EVERY;
    let mut update = Query::update();
    update
        .table(Alias::new("api_token"))
        .value(Alias::new("last_used_at"), Expr::val(encode(backend, &FieldKind::DateTime, &Value::DateTime(now))?))
        .and_where(Expr::col(Alias::new("id")).eq(encode(backend, &FieldKind::Id, &Value::Uuid(id))?))
        .cond_where(Cond::any().add(Expr::col(Alias::new("last_used_at")).is_null()).add(
            Expr::col(Alias::new("last_used_at")).lt(encode(backend, &FieldKind::DateTime, &Value::DateTime(stale))?),
        ));
    db.execute(&update).await?;
    Ok(())
}

/// Revokes API tokens by id or by name; returns the ids revoked.
pub async fn revoke(tx: &Tx, id_or_name: &str) -> Result<Vec<Uuid>> {
    let backend = tx.backend();
    let now = encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?;
    let (sql, arg) = match Uuid::parse_str(id_or_name) {
        Ok(id) => ("id", encode(backend, &FieldKind::Id, &Value::Uuid(id))?),
        Err(_) => ("name", id_or_name.into()),
    };
    let (p1, p2) = if backend == DbBackend::Postgres { ("$1", "$2") } else { ("?", "?") };
    let stmt = Statement::from_sql_and_values(
        backend,
        format!("UPDATE api_token SET revoked_at = {p1} WHERE {sql} = {p2} AND revoked_at IS NULL RETURNING id"),
        [now, arg],
    );
    let mut ids = Vec::new();
    for row in tx.conn().query_all_raw(stmt).await? {
        if let Some(id) = decode(backend, &FieldKind::Id, &row, 0)?.as_uuid() {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(DomainError::not_found("token", id_or_name).into());
    }
    Ok(ids)
}
