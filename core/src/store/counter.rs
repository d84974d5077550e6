//! Named counters that stay sequential and unique across processes.

use sea_orm::{ConnectionTrait, Statement};

use crate::error::{Error, Result};
use crate::store::Tx;
use sea_orm::DbBackend;

/// Takes the next value of counter `name`. The row stays locked until the transaction ends, so
/// concurrent transactions (in any process) get distinct, consecutive values in commit order.
pub async fn next(tx: &Tx, name: &str) -> Result<i64> {
    let backend = tx.backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE counter SET value = value + 1 WHERE name = $1 RETURNING value",
        _ => "UPDATE counter SET value = value + 1 WHERE name = ? RETURNING value",
    };
    let row = tx
        .conn()
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?
        .ok_or_else(|| Error::internal(format!("counter {name} is missing")))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Moves counter `name` up to `value` if it is below it, creating it at `value` if missing;
/// true for the one caller (in any process) that moved it: who claims a day's run.
pub async fn claim<C: ConnectionTrait>(db: &C, name: &str, value: i64) -> Result<bool> {
    let backend = db.get_database_backend();
    let (insert, update) = if backend == DbBackend::Postgres {
        (
            "INSERT INTO counter (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            "UPDATE counter SET value = $1 WHERE name = $2 AND value < $1",
        )
    } else {
        (
            "INSERT INTO counter (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            "UPDATE counter SET value = ?1 WHERE name = ?2 AND value < ?1",
        )
    };
    let created = db.execute_raw(Statement::from_sql_and_values(backend, insert, [name.into(), value.into()])).await?;
    if created.rows_affected() == 1 {
        return Ok(true);
    }
    let moved = db.execute_raw(Statement::from_sql_and_values(backend, update, [value.into(), name.into()])).await?;
    Ok(moved.rows_affected() == 1)
}
