//! PostgreSQL: the rows a grouped transaction held back, written in one statement.
//!
//! New records, their search entries, the audit entries and the outbox events go out as
//! data-modifying CTEs of one INSERT (one round trip instead of one per table). The outbox lock
//! is taken after every other row is written, through a CTE that counts them, so it is held
//! only for the outbox rows and the commit. When no transaction has begun, the statement is its
//! own transaction: PostgreSQL runs it all or not at all and commits it.

use std::fmt::Write as _;

use sea_orm::{DbBackend, Statement, Value as DbValue};

use super::search::{self, NewEntry};
use super::{HeldRows, audit, outbox};
use crate::error::{Error, Result};

/// What the statement writes.
pub(crate) struct Held {
    pub(crate) records: Vec<HeldRows>,
    pub(crate) search: Vec<NewEntry>,
    pub(crate) audit: Vec<Vec<DbValue>>,
    pub(crate) events: Vec<Vec<DbValue>>,
}

/// The most bound-value bytes one statement carries: its Bind message then fits in one TLS
/// record and leaves in one write (see `codec::insert_rows` on delayed ACKs).
const BUDGET: usize = 15 * 1024;

/// Whether `held` can go out as one statement: it has events (the statement's last INSERT) and
/// its values fit [`BUDGET`].
pub(crate) fn fits(held: &Held) -> bool {
    if held.events.is_empty() {
        return false;
    }
    let rows = held.records.iter().flat_map(|part| part.rows.iter()).chain(&held.audit).chain(&held.events);
    let mut size = 0usize;
    for row in rows {
        size += row.iter().map(wire_size).sum::<usize>();
        if size > BUDGET {
            return false;
        }
    }
    if !held.search.is_empty() {
        size += wire_size(&search::pg_json(&held.search));
    }
    size <= BUDGET
}

/// A value's size in a Bind message, roughly (length word plus text or binary form).
fn wire_size(value: &DbValue) -> usize {
    4 + match value {
        DbValue::String(Some(s)) => s.len(),
        DbValue::Json(Some(j)) => 1 + super::codec::estimate_json(j),
        DbValue::Bytes(Some(b)) => b.len(),
        DbValue::String(None) | DbValue::Json(None) | DbValue::Bytes(None) => 0,
        _ => 16,
    }
}

/// The statement writing `held`; with `lock`, it takes that advisory lock before the outbox
/// rows.
pub(crate) fn statement(held: Held, lock: Option<i64>) -> Result<Statement> {
    let Held { records, search: entries, audit, events } = held;
    let mut sql = String::from("WITH ");
    let mut values: Vec<DbValue> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    for (i, part) in records.into_iter().enumerate() {
        let name = format!("kith_r{i}");
        let columns: Vec<&str> = part.columns.iter().map(String::as_str).collect();
        let _ = write!(sql, "{name} AS (INSERT INTO \"{}\" ({}) VALUES ", part.table, quoted(&columns));
        push_rows(&mut sql, &mut values, &part.table, columns.len(), part.rows)?;
        sql.push_str(" RETURNING 1), ");
        written.push(name);
    }
    if !entries.is_empty() {
        values.push(search::pg_json(&entries));
        let _ = write!(sql, "kith_s AS ({} RETURNING 1), ", search::pg_insert_from_json(values.len()));
        written.push("kith_s".into());
    }
    if !audit.is_empty() {
        let _ = write!(sql, "kith_a AS (INSERT INTO \"audit_log\" ({}) VALUES ", quoted(&audit::COLUMNS));
        push_rows(&mut sql, &mut values, "audit_log", audit::COLUMNS.len(), audit)?;
        sql.push_str(" RETURNING 1), ");
        written.push("kith_a".into());
    }
    // Materialized and joined to every outbox row: evaluated first, after the counts, which
    // run every INSERT above to its end.
    sql.push_str("kith_lock AS MATERIALIZED (SELECT ");
    match lock {
        Some(key) => {
            let _ = write!(sql, "pg_advisory_xact_lock({key})");
        }
        None => sql.push('1'),
    }
    if written.is_empty() {
        sql.push_str(") ");
    } else {
        sql.push_str(" FROM ");
        for (i, name) in written.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "(SELECT count(*) FROM {name}) AS c{i}");
        }
        sql.push_str(") ");
    }
    let _ =
        write!(sql, "INSERT INTO \"event_outbox\" ({}) SELECT v.* FROM kith_lock, (VALUES ", quoted(&outbox::COLUMNS));
    push_rows(&mut sql, &mut values, "event_outbox", outbox::COLUMNS.len(), events)?;
    sql.push_str(") AS v");
    Ok(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
}

fn quoted(columns: &[&str]) -> String {
    columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

/// Appends `(…), (…)` placeholders for `rows` (numbered after `values`) and their values.
fn push_rows(
    sql: &mut String,
    values: &mut Vec<DbValue>,
    table: &str,
    width: usize,
    rows: Vec<Vec<DbValue>>,
) -> Result<()> {
    for (i, row) in rows.into_iter().enumerate() {
        if row.len() != width {
            return Err(Error::internal(format!("insert into {table}: {} values for {width} columns", row.len())));
        }
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for j in 0..width {
            if j > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", values.len() + j + 1);
        }
        sql.push(')');
        values.extend(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, text: &str) -> Vec<DbValue> {
        (0..n).map(|_| DbValue::String(Some(text.to_owned()))).collect()
    }

    #[test]
    fn the_statement_numbers_every_value_and_takes_the_lock_after_the_other_rows() {
        let held = Held {
            records: vec![HeldRows {
                table: "contact".into(),
                columns: vec!["id".into(), "first_name".into()],
                rows: vec![row(2, "a"), row(2, "b")],
            }],
            search: Vec::new(),
            audit: vec![row(9, "x")],
            events: vec![row(9, "e"), row(9, "f")],
        };
        assert!(fits(&held));
        let stmt = statement(held, Some(7)).expect("statement");
        let values = stmt.values.expect("values").0;
        assert_eq!(values.len(), 4 + 9 + 18);
        assert!(stmt.sql.starts_with("WITH kith_r0 AS (INSERT INTO \"contact\" (\"id\", \"first_name\") VALUES ($1, $2), ($3, $4) RETURNING 1), kith_a AS (INSERT INTO \"audit_log\""), "{}", stmt.sql);
        assert!(stmt.sql.contains("kith_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(7) FROM (SELECT count(*) FROM kith_r0) AS c0, (SELECT count(*) FROM kith_a) AS c1) INSERT INTO \"event_outbox\""), "{}", stmt.sql);
        assert!(stmt.sql.ends_with("($23, $24, $25, $26, $27, $28, $29, $30, $31)) AS v"), "{}", stmt.sql);
    }

    #[test]
    fn rows_past_the_budget_or_no_events_do_not_fit() {
        let big = Held {
            records: Vec::new(),
            search: Vec::new(),
            audit: Vec::new(),
            events: vec![row(9, &"x".repeat(2_000))],
        };
        assert!(!fits(&big));
        let none = Held { records: Vec::new(), search: Vec::new(), audit: vec![row(9, "x")], events: Vec::new() };
        assert!(!fits(&none));
    }

    #[test]
    fn a_row_of_the_wrong_width_is_an_error_not_a_bad_statement() {
        let held =
            Held { records: Vec::new(), search: Vec::new(), audit: vec![row(3, "x")], events: vec![row(9, "e")] };
        assert!(statement(held, None).is_err());
    }
}
