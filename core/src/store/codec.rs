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
    insert_rows_locked(db, table, columns, rows, None).await
}

/// [`insert_rows`]; on PostgreSQL with `lock`, each statement first takes that transaction-level
/// advisory lock, in the same round trip, before any of its rows (and their defaults, such as
/// a sequence's next value) is made.
pub async fn insert_rows_locked<C: sea_orm::ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<DbValue>>,
    lock: Option<i64>,
) -> Result<()> {
    use std::fmt::Write as _;
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    if !pg
        && rows.len() > 1
        && !large_text(&rows)
        && let Some(doc) = rows_as_json(columns.len(), &rows)
    {
        return insert_json_rows(db, table, columns, doc).await;
    }
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let lock = lock.filter(|_| pg);
    let (head, tail) = match lock {
        // The materialized lock is joined to every row, so it is taken before the first one.
        Some(key) => (
            format!(
                "WITH kith_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({key})) \
                 INSERT INTO \"{table}\" ({}) SELECT v.* FROM kith_lock, (VALUES ",
                quoted.join(", ")
            ),
            ") AS v",
        ),
        None => (format!("INSERT INTO \"{table}\" ({}) VALUES ", quoted.join(", ")), ""),
    };
    let mut per = rows_per_insert(columns.len());
    if pg {
        per = per.min(pg_rows_per_message(&rows));
    }
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
        sql.push_str(tail);
        db.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

/// PostgreSQL: rows per INSERT so that a statement's messages fit in one TLS record (16 KiB)
/// and so leave in one TCP write. sqlx 0.9 does not set TCP_NODELAY, and a message sent in
/// several writes waits for the server's delayed ACK (~40 ms) before its tail goes out; with
/// ~1 KB JSON documents per row those stalls made imports 6× slower. A power of two, so
/// statement shapes stay few and the prepared-statement cache keeps hitting.
fn pg_rows_per_message(rows: &[Vec<DbValue>]) -> usize {
    const BUDGET: usize = 15 * 1024;
    let widest = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    DbValue::String(Some(s)) => s.len() + 8,
                    DbValue::Json(Some(j)) => estimate_json(j) + 8,
                    _ => 24,
                })
                .sum::<usize>()
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let fit = (BUDGET / widest).max(1);
    1 << fit.ilog2()
}

/// A cheap upper estimate of a JSON document's text size.
pub(crate) fn estimate_json(json: &serde_json::Value) -> usize {
    match json {
        serde_json::Value::String(s) => s.len() + 2,
        serde_json::Value::Array(items) => items.iter().map(estimate_json).sum::<usize>() + items.len() + 2,
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| k.len() + 4 + estimate_json(v)).sum::<usize>() + 2,
        _ => 8,
    }
}

/// The rows as one JSON array of arrays, when every value has a JSON form (SQLite values:
/// text, integers, booleans and nulls).
/// Whether some text value is long (a queued message): bound as a value, SQLite takes it as it
/// is, while the JSON document would escape it and parse it again.
fn large_text(rows: &[Vec<DbValue>]) -> bool {
    rows.iter().flatten().any(|v| matches!(v, DbValue::String(Some(s)) if s.len() > 1024))
}

fn rows_as_json(columns: usize, rows: &[Vec<DbValue>]) -> Option<String> {
    use std::fmt::Write as _;
    let mut doc = String::with_capacity(rows.len() * columns * 16);
    doc.push('[');
    for (i, row) in rows.iter().enumerate() {
        if row.len() != columns {
            return None;
        }
        doc.push_str(if i == 0 { "[" } else { ",[" });
        for (j, value) in row.iter().enumerate() {
            if j > 0 {
                doc.push(',');
            }
            match value {
                DbValue::String(Some(s)) => write_json_str(&mut doc, s),
                DbValue::BigInt(Some(n)) => {
                    let _ = write!(doc, "{n}");
                }
                DbValue::Int(Some(n)) => {
                    let _ = write!(doc, "{n}");
                }
                DbValue::Bool(Some(b)) => doc.push_str(if *b { "1" } else { "0" }),
                DbValue::String(None) | DbValue::BigInt(None) | DbValue::Int(None) | DbValue::Bool(None) => {
                    doc.push_str("null")
                }
                _ => return None,
            }
        }
        doc.push(']');
    }
    doc.push(']');
    Some(doc)
}

/// SQLite: inserts the rows of `doc` (from [`rows_as_json`]) in one statement that reads
/// them with `jsonb_each` (which hands each row to `->>` without re-serialising it). One statement per table and batch binds one value instead of
/// thousands, and lets the full-text index (fed by a trigger) flush once per batch, not once
/// per statement.
async fn insert_json_rows<C: sea_orm::ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[&str],
    doc: String,
) -> Result<()> {
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let picks: Vec<String> = (0..columns.len()).map(|i| format!("value ->> {i}")).collect();
    let sql = format!(
        "INSERT INTO \"{table}\" ({}) SELECT {} FROM jsonb_each(?) ORDER BY key",
        quoted.join(", "),
        picks.join(", ")
    );
    db.execute_raw(sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, [DbValue::String(Some(doc))]))
        .await?;
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

/// One value of a packed SQLite row: a row that SQLite wrote as a JSON array
/// (`json_array(..)`, see `records::list_joined`). SQLite's storage classes map onto JSON one to
/// one (Kith stores no blobs): NULL, INTEGER, REAL and TEXT.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// An INTEGER.
    Int(i64),
    /// A REAL (Kith stores none; read only to be refused).
    Real(f64),
    /// A TEXT, borrowed from the packed page when it needed no unescaping.
    Text(std::borrow::Cow<'a, str>),
}

impl<'de> serde::Deserialize<'de> for Cell<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Cell<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("null, a number or a string")
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell::Null)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell::Int(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> std::result::Result<Cell<'de>, E> {
                i64::try_from(n).map(Cell::Int).map_err(|_| E::custom("an integer beyond 64 bits"))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell::Real(n))
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell::Text(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell::Text(std::borrow::Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell::Text(std::borrow::Cow::Owned(s)))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Reads a [`Cell`] of a packed SQLite row as a value of `kind`: the same value, and the same
/// refusals, as [`decode`] of that column on SQLite.
pub fn decode_cell(kind: &FieldKind, cell: Cell<'_>) -> Result<Value> {
    let bad = |what: &str| Error::internal(format!("packed column: stored value is not {what}"));
    let text = |cell: Cell<'_>, what: &str| match cell {
        Cell::Text(s) => Ok(s.into_owned()),
        _ => Err(bad(what)),
    };
    if cell == Cell::Null {
        return Ok(Value::Null);
    }
    Ok(match kind {
        FieldKind::Bool => match cell {
            Cell::Int(n) => Value::Bool(n != 0),
            _ => return Err(bad("a boolean")),
        },
        FieldKind::Int => match cell {
            Cell::Int(n) => Value::Int(n),
            _ => return Err(bad("an integer")),
        },
        FieldKind::Decimal => match cell {
            Cell::Int(n) => Value::Decimal(unscaled(n)),
            _ => return Err(bad("a decimal")),
        },
        FieldKind::Id | FieldKind::Ref(_) => match &cell {
            Cell::Text(s) => Value::Uuid(Uuid::parse_str(s).map_err(|_| bad("a uuid"))?),
            _ => return Err(bad("a uuid")),
        },
        FieldKind::DateTime => match &cell {
            Cell::Text(s) => Value::DateTime(parse_datetime(s).ok_or_else(|| bad("a timestamp"))?),
            _ => return Err(bad("a timestamp")),
        },
        FieldKind::Date => match &cell {
            Cell::Text(s) => Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("a date"))?),
            _ => return Err(bad("a date")),
        },
        FieldKind::Json => match &cell {
            Cell::Text(s) => Value::Json(serde_json::from_str(s).map_err(|_| bad("JSON"))?),
            _ => return Err(bad("JSON")),
        },
        FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Currency | FieldKind::Enum(_) => {
            Value::Text(text(cell, "text")?)
        }
    })
}

/// Appends `value` as JSON text to `out`, exactly as `serde_json` would write
/// `value.to_json()`, without building the intermediate document (bulk writes).
pub fn write_json_value(out: &mut String, value: &Value) {
    use std::fmt::Write as _;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Decimal(d) => {
            let _ = write!(out, "\"{}\"", d.normalize());
        }
        Value::Text(s) => write_json_str(out, s),
        Value::Date(d) => {
            let _ = write!(out, "\"{}\"", d.format("%Y-%m-%d"));
        }
        Value::DateTime(t) => {
            out.push('"');
            out.push_str(&format_cached(*t));
            out.push('"');
        }
        Value::Uuid(id) => {
            out.push('"');
            out.push_str(id.as_hyphenated().encode_lower(&mut Uuid::encode_buffer()));
            out.push('"');
        }
        Value::Json(j) => {
            let _ = write!(out, "{j}");
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `start..i` always falls on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `fields` as a JSON object (keys in map order); with `skip_nulls`, null fields are
/// left out.
pub fn write_json_fields(out: &mut String, fields: &crate::domain::value::Fields, skip_nulls: bool) {
    out.push('{');
    let mut first = true;
    for (name, value) in fields {
        if skip_nulls && value.is_null() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_json_str(out, name);
        out.push(':');
        write_json_value(out, value);
    }
    out.push('}');
}

/// The encoded payload of a `created` event of a bulk write from `source`: on SQLite written
/// straight to text from the record's fields (`{"record": …, "source": …}`), on PostgreSQL
/// encoded from the JSON `payload` builds.
pub fn event_payload(
    backend: DbBackend,
    fields: &crate::domain::value::Fields,
    source: &str,
    payload: impl FnOnce() -> serde_json::Value,
) -> sea_orm::Value {
    if backend == DbBackend::Postgres {
        return encode_json(backend, payload());
    }
    let mut text = String::with_capacity(1024);
    text.push_str("{\"record\":");
    write_json_fields(&mut text, fields, false);
    text.push_str(",\"source\":");
    text.push_str(&serde_json::Value::String(source.to_owned()).to_string());
    text.push('}');
    sea_orm::Value::String(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::value::Fields;

    #[test]
    fn json_text_is_what_serde_json_writes() {
        let mut fields = Fields::new();
        fields.insert("a".into(), Value::Text("plain".into()));
        fields.insert("b".into(), Value::Text("quote \" back \\ nl \n tab \t bell \u{7} é 😀".into()));
        fields.insert("c".into(), Value::Null);
        fields.insert("d".into(), Value::Int(-42));
        fields.insert("e".into(), Value::Bool(true));
        fields.insert("f".into(), Value::Decimal(Decimal::new(12_3400, 4)));
        fields.insert("g".into(), Value::Date(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default()));
        fields.insert(
            "h".into(),
            Value::DateTime(DateTime::from_timestamp_micros(1_764_633_600_123_456).unwrap_or_default()),
        );
        fields.insert("i".into(), Value::Uuid(Uuid::now_v7()));
        fields.insert("j".into(), Value::Json(serde_json::json!({"k": [1, "two", null]})));
        let mut expected = serde_json::Map::new();
        for (k, v) in &fields {
            expected.insert(k.clone(), v.to_json());
        }
        let mut text = String::new();
        write_json_fields(&mut text, &fields, false);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed, serde_json::Value::Object(expected.clone()));
        let mut compact = String::new();
        write_json_fields(&mut compact, &fields, true);
        expected.remove("c");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&compact).ok(), Some(serde_json::Value::Object(expected)));
    }

    #[test]
    fn postgres_statements_stay_within_one_tls_record() {
        let row = |payload: usize| vec![DbValue::String(Some("x".repeat(payload))), DbValue::BigInt(Some(1))];
        for payload in [0, 10, 900, 5_000, 20_000] {
            let rows: Vec<Vec<DbValue>> = (0..300).map(|_| row(payload)).collect();
            let per = pg_rows_per_message(&rows);
            assert!(per.is_power_of_two(), "{payload}: {per}");
            assert!(per == 1 || per * (payload + 40) <= 16 * 1024, "{payload} B rows: {per} per statement");
        }
        let json = vec![DbValue::Json(Some(Box::new(serde_json::json!({"record": {"name": "y".repeat(1_000)}}))))];
        assert!(pg_rows_per_message(&[json]) <= 16);
    }

    #[test]
    fn every_control_character_is_escaped() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let mut text = String::new();
        write_json_str(&mut text, &all);
        assert_eq!(serde_json::from_str::<String>(&text).ok(), Some(all));
    }
}
