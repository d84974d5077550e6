//! The statements behind the reports (`service::reports`): deal totals per stage and currency,
//! time to close, ticket timings and contact creation times, each one query.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::store::codec::{decode, encode};

/// Live deals of a pipeline in one stage and currency: how many, and their amounts' sum.
#[derive(Debug, Clone, PartialEq)]
pub struct DealTotal {
    /// The stage.
    pub stage_id: Option<Uuid>,
    /// The currency.
    pub currency: String,
    /// Deals.
    pub count: i64,
    /// Σ amount.
    pub amount: Decimal,
}

/// `$n` on PostgreSQL, `?` on SQLite.
fn param(backend: DbBackend, n: usize) -> String {
    if backend == DbBackend::Postgres { format!("${n}") } else { "?".to_owned() }
}

/// `created_at` in `[$1, $2)`, with [`range`]'s values.
fn created_between(backend: DbBackend) -> String {
    format!("created_at >= {} AND created_at < {}", param(backend, 1), param(backend, 2))
}

/// The bound values of `[from, to)`.
fn range(backend: DbBackend, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<[sea_orm::Value; 2]> {
    Ok([
        encode(backend, &FieldKind::DateTime, &Value::DateTime(from))?,
        encode(backend, &FieldKind::DateTime, &Value::DateTime(to))?,
    ])
}

/// The live deals of `pipeline_id`, counted and summed by stage and currency.
pub async fn deal_totals<C: ConnectionTrait>(db: &C, pipeline_id: Uuid) -> Result<Vec<DealTotal>> {
    let backend = db.get_database_backend();
    let pid = encode(backend, &FieldKind::Id, &Value::Uuid(pipeline_id))?;
    let sql = format!(
        "SELECT stage_id, currency, COUNT(*), SUM(amount) FROM deal WHERE pipeline_id = {} AND deleted_at IS NULL \
         GROUP BY stage_id, currency",
        param(backend, 1)
    );
    let mut out = Vec::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, [pid])).await? {
        out.push(DealTotal {
            stage_id: decode(backend, &FieldKind::Id, &row, 0)?.as_uuid(),
            currency: row.try_get_by_index(1)?,
            count: row.try_get_by_index(2)?,
            amount: decode(backend, &FieldKind::Decimal, &row, 3)?.as_decimal().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Mean days from creation to close of the live deals of `pipeline_id` in a WON stage.
pub async fn average_days_to_close<C: ConnectionTrait>(db: &C, pipeline_id: Uuid) -> Result<Option<f64>> {
    let backend = db.get_database_backend();
    let pid = encode(backend, &FieldKind::Id, &Value::Uuid(pipeline_id))?;
    let days = match backend {
        DbBackend::Postgres => "AVG(EXTRACT(EPOCH FROM d.closed_at - d.created_at))::float8 / 86400.0",
        _ => "AVG(julianday(d.closed_at) - julianday(d.created_at))",
    };
    let sql = format!(
        "SELECT {days} FROM deal d JOIN stage s ON s.id = d.stage_id \
         WHERE d.pipeline_id = {} AND d.deleted_at IS NULL AND s.kind = 'WON' AND d.closed_at IS NOT NULL",
        param(backend, 1)
    );
    Ok(match db.query_one_raw(Statement::from_sql_and_values(backend, sql, [pid])).await? {
        Some(row) => row.try_get_by_index::<Option<f64>>(0)?,
        None => None,
    })
}

/// What a ticket report reads of one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketTimes {
    /// Created.
    pub created: Option<DateTime<Utc>>,
    /// First public response.
    pub responded: Option<DateTime<Utc>>,
    /// Solved.
    pub solved: Option<DateTime<Utc>>,
    /// First response due.
    pub first_due: Option<DateTime<Utc>>,
    /// Solution due.
    pub solve_due: Option<DateTime<Utc>>,
    /// Satisfaction rating.
    pub rating: Option<i64>,
}

/// The times and ratings of the live tickets created in `[from, to)`.
pub async fn ticket_times<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TicketTimes>> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT created_at, first_responded_at, solved_at, first_response_due_at, resolution_due_at, satisfaction_rating \
         FROM ticket WHERE deleted_at IS NULL AND {}",
        created_between(backend)
    );
    let mut out = Vec::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, range(backend, from, to)?)).await? {
        let at =
            |i| -> Result<Option<DateTime<Utc>>> { Ok(decode(backend, &FieldKind::DateTime, &row, i)?.as_datetime()) };
        out.push(TicketTimes {
            created: at(0)?,
            responded: at(1)?,
            solved: at(2)?,
            first_due: at(3)?,
            solve_due: at(4)?,
            rating: row.try_get_by_index::<Option<i64>>(5)?,
        });
    }
    Ok(out)
}

/// Live contacts created before `at`.
pub async fn contacts_before<C: ConnectionTrait>(db: &C, at: DateTime<Utc>) -> Result<i64> {
    let backend = db.get_database_backend();
    let sql = format!("SELECT COUNT(*) FROM contact WHERE deleted_at IS NULL AND created_at < {}", param(backend, 1));
    let at = encode(backend, &FieldKind::DateTime, &Value::DateTime(at))?;
    Ok(match db.query_one_raw(Statement::from_sql_and_values(backend, sql, [at])).await? {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

/// When each live contact created in `[from, to)` was created.
pub async fn contact_creation_times<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>> {
    let backend = db.get_database_backend();
    let sql = format!("SELECT created_at FROM contact WHERE deleted_at IS NULL AND {}", created_between(backend));
    let mut out = Vec::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, range(backend, from, to)?)).await? {
        if let Some(at) = decode(backend, &FieldKind::DateTime, &row, 0)?.as_datetime() {
            out.push(at);
        }
    }
    Ok(out)
}
