//! Converts field values to and from database values, per backend.
//!
//! PostgreSQL gets native types (uuid, timestamptz, date, numeric, jsonb). SQLite gets text for
//! ids, instants (fixed-width RFC 3339, so text order is time order), dates and JSON, and an
//! integer count of 1/10,000 units for decimals (exact, summable, sortable).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{DbBackend, QueryResult, Value as DbValue};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value, format_datetime, parse_datetime};
use crate::error::{Error, Result};

/// Decimal places kept by storage.
pub const DECIMAL_SCALE: u32 = 4;

/// Encodes `value` (of `kind`) as a bind parameter for `backend`.
pub fn encode(backend: DbBackend, kind: &FieldKind, value: &Value) -> Result<DbValue> {
    let pg = backend == DbBackend::Postgres;
    Ok(match (kind, value) {
        (_, Value::Null) => null_of(backend, kind),
        (_, Value::Bool(b)) => DbValue::Bool(Some(*b)),
        (_, Value::Int(n)) => DbValue::BigInt(Some(*n)),
        (_, Value::Text(s)) => DbValue::String(Some(s.clone())),
        (_, Value::Uuid(id)) if pg => DbValue::Uuid(Some(*id)),
        (_, Value::Uuid(id)) => DbValue::String(Some(id.to_string())),
        (_, Value::DateTime(t)) if pg => DbValue::ChronoDateTimeUtc(Some(*t)),
        (_, Value::DateTime(t)) => DbValue::String(Some(format_cached(*t))),
        (_, Value::Date(d)) if pg => DbValue::ChronoDate(Some(*d)),
        (_, Value::Date(d)) => DbValue::String(Some(d.format("%Y-%m-%d").to_string())),
        (_, Value::Decimal(d)) if pg => DbValue::Decimal(Some(*d)),
        (_, Value::Decimal(d)) => DbValue::BigInt(Some(scaled(*d)?)),
        (_, Value::Json(j)) if pg => DbValue::Json(Some(Box::new(j.clone()))),
        (_, Value::Json(j)) => DbValue::String(Some(j.to_string())),
    })
}

/// Formats an instant, remembering the last one: a transaction stamps the same `now` on every
/// row it writes, and formatting dominates bulk writes otherwise.
fn format_cached(t: DateTime<Utc>) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(DateTime<Utc>, String)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, text)) if *cached == t => text.clone(),
            _ => {
                let text = format_datetime(t);
                *last = Some((t, text.clone()));
                text
            }
        }
    })
}

/// Rows per multi-row INSERT. Fixed, so the statement text repeats and the driver's prepared
/// statement cache parses it once, rather than parsing a new giant statement per batch.
pub fn rows_per_insert(columns: usize) -> usize {
    (2_000 / columns.max(1)).clamp(1, 250)
}

/// Inserts `rows` (values in `columns` order) into `table` with multi-row INSERTs of a fixed
/// shape. Identifiers come from object definitions, never from callers.
pub async fn insert_rows<C: sea_orm::ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<DbValue>>,
) -> Result<()> {
    use std::fmt::Write as _;
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let head = format!("INSERT INTO \"{table}\" ({}) VALUES ", quoted.join(", "));
    let per = rows_per_insert(columns.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<DbValue>> = rows.by_ref().take(per).collect();
        let mut sql = String::with_capacity(head.len() + chunk.len() * columns.len() * 6);
        sql.push_str(&head);
        let mut n = 0usize;
        let mut values = Vec::with_capacity(chunk.len() * columns.len());
        for (i, row) in chunk.into_iter().enumerate() {
            if row.len() != columns.len() {
                return Err(Error::internal(format!(
                    "insert into {table}: {} values for {} columns",
                    row.len(),
                    columns.len()
                )));
            }
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for j in 0..columns.len() {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                if pg {
                    let _ = write!(sql, "${n}");
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
            values.extend(row);
        }
        db.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

/// Encodes a JSON document, taking it by value (no copy on PostgreSQL).
pub fn encode_json(backend: DbBackend, json: serde_json::Value) -> DbValue {
    if backend == DbBackend::Postgres {
        DbValue::Json(Some(Box::new(json)))
    } else {
        DbValue::String(Some(json.to_string()))
    }
}

fn null_of(backend: DbBackend, kind: &FieldKind) -> DbValue {
    let pg = backend == DbBackend::Postgres;
    match kind {
        FieldKind::Id | FieldKind::Ref(_) if pg => DbValue::Uuid(None),
        FieldKind::DateTime if pg => DbValue::ChronoDateTimeUtc(None),
        FieldKind::Date if pg => DbValue::ChronoDate(None),
        FieldKind::Decimal if pg => DbValue::Decimal(None),
        FieldKind::Json if pg => DbValue::Json(None),
        FieldKind::Decimal | FieldKind::Int => DbValue::BigInt(None),
        FieldKind::Bool => DbValue::Bool(None),
        _ => DbValue::String(None),
    }
}

/// A decimal as an integer count of 1/10,000 units (SQLite representation).
pub fn scaled(d: Decimal) -> Result<i64> {
    let mut d = d;
    d.rescale(DECIMAL_SCALE);
    i64::try_from(d.mantissa())
        .map_err(|_| Error::Domain(crate::domain::DomainError::invalid("amount", "is too large")))
}

/// The inverse of [`scaled`].
pub fn unscaled(n: i64) -> Decimal {
    Decimal::new(n, DECIMAL_SCALE).normalize()
}

/// Reads column `idx` of `row` as a value of `kind`.
pub fn decode(backend: DbBackend, kind: &FieldKind, row: &QueryResult, idx: usize) -> Result<Value> {
    let pg = backend == DbBackend::Postgres;
    let bad = |what: &str| Error::internal(format!("column {idx}: stored value is not {what}"));
    let value = match kind {
        FieldKind::Bool => row.try_get_by_index::<Option<bool>>(idx)?.map(Value::Bool),
        FieldKind::Int => row.try_get_by_index::<Option<i64>>(idx)?.map(Value::Int),
        FieldKind::Id | FieldKind::Ref(_) if pg => row.try_get_by_index::<Option<Uuid>>(idx)?.map(Value::Uuid),
        FieldKind::Id | FieldKind::Ref(_) => match row.try_get_by_index::<Option<String>>(idx)? {
            Some(s) => Some(Value::Uuid(Uuid::parse_str(&s).map_err(|_| bad("a uuid"))?)),
            None => None,
        },
        FieldKind::DateTime if pg => row.try_get_by_index::<Option<DateTime<Utc>>>(idx)?.map(Value::DateTime),
        FieldKind::DateTime => match row.try_get_by_index::<Option<String>>(idx)? {
            Some(s) => Some(Value::DateTime(parse_datetime(&s).ok_or_else(|| bad("a timestamp"))?)),
            None => None,
        },
        FieldKind::Date if pg => row.try_get_by_index::<Option<NaiveDate>>(idx)?.map(Value::Date),
        FieldKind::Date => match row.try_get_by_index::<Option<String>>(idx)? {
            Some(s) => Some(Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| bad("a date"))?)),
            None => None,
        },
        FieldKind::Decimal if pg => {
            row.try_get_by_index::<Option<Decimal>>(idx)?.map(|d| Value::Decimal(d.normalize()))
        }
        FieldKind::Decimal => row.try_get_by_index::<Option<i64>>(idx)?.map(|n| Value::Decimal(unscaled(n))),
        FieldKind::Json if pg => row.try_get_by_index::<Option<serde_json::Value>>(idx)?.map(Value::Json),
        FieldKind::Json => match row.try_get_by_index::<Option<String>>(idx)? {
            Some(s) => Some(Value::Json(serde_json::from_str(&s).map_err(|_| bad("JSON"))?)),
            None => None,
        },
        FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Currency | FieldKind::Enum(_) => {
            row.try_get_by_index::<Option<String>>(idx)?.map(Value::Text)
        }
    };
    Ok(value.unwrap_or(Value::Null))
}
