//! The error type of the storage and service layers.

use sea_orm::{DbErr, SqlErr};

use crate::domain::DomainError;

/// What went wrong below the API: a rule said no, or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A domain rule refused the operation; safe to show to the caller.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database failed; logged with detail, shown as an internal error.
    #[error("database error: {0}")]
    Database(DbErr),
    /// The database cannot be reached (refused or lost connection, no connection free in
    /// time): the caller may retry later. Logged with detail, shown as `UNAVAILABLE`.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// Something that should not happen (a corrupt row, a broken invariant).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result of a storage or service operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Error {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                Error::Domain(DomainError::conflict(unique_message(&detail)))
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Error::Domain(DomainError::invalid("id", "refers to a record that does not exist"))
            }
            _ if unreachable(&err) => Error::Unavailable(err),
            _ => Error::Database(err),
        }
    }
}

/// Whether `err` says the database could not be reached, as opposed to a statement it refused:
/// no connection could be had (refused, timed out, pool closed) or one broke mid-statement.
fn unreachable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{ConnAcquireErr, RuntimeErr};
    let sqlx = match err {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(sqlx))
        | DbErr::Exec(RuntimeErr::SqlxError(sqlx))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => sqlx,
        DbErr::Conn(_) => return true,
        _ => return false,
    };
    match &**sqlx {
        Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        // PostgreSQL's connection exceptions (08…) and operator intervention (57P01 admin
        // shutdown, 57P03 cannot connect now, …): the server, not the statement, is the problem.
        Sqlx::Database(db) => db.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Turns a unique-constraint message from either database into words for the caller.
fn unique_message(detail: &str) -> String {
    // Core objects: their unique fields, as the registry describes them. PostgreSQL names the
    // index (`ux_contact_email`, `ix_ticket_number`); SQLite names the columns
    // (`ticket.number`) or, for an index on an expression, the index.
    for def in crate::domain::object::Registry::core_static().objects() {
        for field in def.fields.iter().filter(|f| f.unique) {
            let (table, column) = (&def.table, &field.column);
            let names = [format!("ux_{table}_{column}"), format!("ix_{table}_{column}"), format!("{table}.{column}")];
            if names.iter().any(|name| detail.contains(name.as_str())) {
                return format!(
                    "a {} with this {} already exists",
                    def.label.to_lowercase(),
                    field.label.to_lowercase()
                );
            }
        }
    }
    // Tables that hold no records of an object.
    const KNOWN: &[(&str, &str, &str)] = &[
        ("ux_tag_name", "tag", "a tag with this name already exists"),
        (
            "ix_custom_field_def_object_key",
            "custom_field_def",
            "a custom field with this key already exists on this object",
        ),
    ];
    for (index, table, message) in KNOWN {
        if detail.contains(index) || detail.contains(&format!("{table}.")) {
            return (*message).to_owned();
        }
    }
    // Plugin objects: `ux_<table>__<column>` (PostgreSQL) or `p_<plugin>_<object>.<column>` (SQLite).
    let column = detail
        .split("__")
        .nth(1)
        .or_else(|| detail.split(": ").nth(1).filter(|t| t.starts_with("p_")).and_then(|t| t.split('.').nth(1)));
    if let Some(column) = column {
        let column: String = column.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !column.is_empty() {
            return format!("another record already has this `{}`", camel_case(&column));
        }
    }
    "a record with the same unique value already exists".to_owned()
}

/// `receipt_number` becomes `receiptNumber`.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl Error {
    /// Shorthand for an internal error.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal(message.into())
    }
}
