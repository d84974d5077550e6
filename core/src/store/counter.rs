//! Named counters that stay sequential and unique across processes.

use sea_orm::{ConnectionTrait, Statement};

use crate::error::{Error, Result};
use crate::store::Tx;

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
