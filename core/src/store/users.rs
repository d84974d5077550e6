//! Password hashes and login lookups for users (the rest of a user is a generic record).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::Role;
use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::Tx;
use crate::store::codec::{decode, encode};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(
            DomainError::invalid("password", format!("must have at least {MIN_PASSWORD_CHARS} characters")).into()
        );
    }
    if password.len() > 1024 {
        return Err(DomainError::invalid("password", "is too long").into());
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("hashing password: {e}")))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Stores a user's password hash.
pub async fn set_password_hash(tx: &Tx, user_id: Uuid, hash: &str) -> Result<()> {
    let backend = tx.backend();
    let mut update = Query::update();
    update
        .table(Alias::new("app_user"))
        .value(Alias::new("password_hash"), hash)
        .and_where(Expr::col(Alias::new("id")).eq(encode(backend, &FieldKind::Id, &Value::Uuid(user_id))?));
    tx.conn().execute(&update).await?;
    Ok(())
}

/// What login needs to know about a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The user's id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Whether the user may log in.
    pub active: bool,
    /// The stored hash, if a password was set.
    pub password_hash: Option<String>,
}

/// Looks a user up by e-mail, ignoring case.
pub async fn find_login<C: ConnectionTrait>(db: &C, email: &str) -> Result<Option<Login>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT id, name, email, role, active, password_hash FROM app_user WHERE lower(email) = lower($1)"
        }
        _ => "SELECT id, name, email, role, active, password_hash FROM app_user WHERE lower(email) = lower(?)",
    };
    let Some(row) = db.query_one_raw(Statement::from_sql_and_values(backend, sql, [email.trim().into()])).await? else {
        return Ok(None);
    };
    let role: String = row.try_get_by_index(3)?;
    Ok(Some(Login {
        id: decode(backend, &FieldKind::Id, &row, 0)?.as_uuid().unwrap_or_default(),
        name: row.try_get_by_index(1)?,
        email: row.try_get_by_index(2)?,
        role: role.parse().map_err(Error::Domain)?,
        active: row.try_get_by_index(4)?,
        password_hash: row.try_get_by_index(5)?,
    }))
}

/// Serialises first-run setups in `tx` (PostgreSQL: a transaction-scoped advisory lock; on
/// SQLite the write transaction already holds the only write lock), so that "no user yet" read
/// after it stays true until the transaction ends.
pub async fn lock_first_user(tx: &Tx) -> Result<()> {
    if tx.backend() == DbBackend::Postgres {
        tx.conn().execute_unprepared("SELECT pg_advisory_xact_lock(4242424243)").await?;
    }
    Ok(())
}

/// Serialises changes to who the active ADMINs are (PostgreSQL: a transaction-scoped advisory
/// lock; on SQLite the write transaction already holds the only write lock), so that two
/// demotions at once cannot both see another ADMIN left.
pub async fn lock_admins(tx: &Tx) -> Result<()> {
    if tx.backend() == DbBackend::Postgres {
        tx.conn().execute_unprepared("SELECT pg_advisory_xact_lock(4242424244)").await?;
    }
    Ok(())
}

/// How many active ADMINs there are.
pub async fn active_admins<C: ConnectionTrait>(db: &C) -> Result<i64> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .from(Alias::new("app_user"))
        .expr(Expr::col(Alias::new("id")).count())
        .and_where(Expr::col(Alias::new("role")).eq(Role::Admin.as_str()))
        .and_where(Expr::col(Alias::new("active")).eq(true));
    let row = db.query_one_raw(backend.build(&select)).await?;
    Ok(match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    })
}

/// Whether any user exists (first-run setup is offered until one does).
pub async fn any<C: ConnectionTrait>(db: &C) -> Result<bool> {
    let backend = db.get_database_backend();
    let statement = Statement::from_string(backend, "SELECT 1 FROM app_user LIMIT 1");
    Ok(db.query_one_raw(statement).await?.is_some())
}
