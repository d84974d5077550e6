//! Tags and their attachment to records.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::store::Tx;
use crate::store::codec::{decode, encode};

/// Longest tag name.
pub const MAX_TAG_CHARS: usize = 64;

fn placeholders(backend: DbBackend, start: usize, n: usize) -> String {
    (0..n)
        .map(|i| if backend == DbBackend::Postgres { format!("${}", start + i) } else { "?".to_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}

fn id_value(backend: DbBackend, id: Uuid) -> Result<DbValue> {
    encode(backend, &FieldKind::Id, &Value::Uuid(id))
}

/// Cleans a list of tag names: trimmed, non-empty, unique ignoring case, in input order.
pub fn clean_names(names: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if name.chars().count() > MAX_TAG_CHARS {
            return Err(
                DomainError::invalid("tags", format!("`{name}` is longer than {MAX_TAG_CHARS} characters")).into()
            );
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// The id of each tag, creating missing ones. Names compare case-insensitively; an existing
/// tag keeps its original spelling.
async fn ensure(tx: &Tx, names: &[String]) -> Result<Vec<Uuid>> {
    let backend = tx.backend();
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        let sql = match backend {
            DbBackend::Postgres => "SELECT id FROM tag WHERE lower(name) = lower($1)",
            _ => "SELECT id FROM tag WHERE lower(name) = lower(?)",
        };
        let found =
            tx.conn().query_one_raw(Statement::from_sql_and_values(backend, sql, [name.clone().into()])).await?;
        let id = match found {
            Some(row) => decode(backend, &FieldKind::Id, &row, 0)?.as_uuid().unwrap_or_default(),
            None => {
                let id = Uuid::now_v7();
                let sql = format!("INSERT INTO tag (id, name, created_at) VALUES ({})", placeholders(backend, 1, 3));
                let now = encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?;
                tx.conn()
                    .execute_raw(Statement::from_sql_and_values(
                        backend,
                        sql,
                        [id_value(backend, id)?, name.clone().into(), now],
                    ))
                    .await?;
                id
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

/// Replaces the tags of a record.
pub async fn set(tx: &Tx, object: &str, record_id: Uuid, names: &[String]) -> Result<()> {
    let backend = tx.backend();
    let sql = format!("DELETE FROM record_tag WHERE record_id = {}", placeholders(backend, 1, 1));
    tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, [id_value(backend, record_id)?])).await?;
    add(tx, object, record_id, names).await
}

/// Adds tags to a record (already present ones are kept once).
pub async fn add(tx: &Tx, object: &str, record_id: Uuid, names: &[String]) -> Result<()> {
    let backend = tx.backend();
    let names = clean_names(names)?;
    for tag_id in ensure(tx, &names).await? {
        let sql = format!(
            "INSERT INTO record_tag (object, record_id, tag_id) VALUES ({}) ON CONFLICT DO NOTHING",
            placeholders(backend, 1, 3)
        );
        tx.conn()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [object.into(), id_value(backend, record_id)?, id_value(backend, tag_id)?],
            ))
            .await?;
    }
    Ok(())
}

/// Attaches tags to many records at once (imports): each distinct name is looked up or created
/// once, and the links are written with multi-row inserts.
pub async fn attach_many(tx: &Tx, object: &str, links: &[(Uuid, Vec<String>)]) -> Result<()> {
    let backend = tx.backend();
    let mut distinct: Vec<String> = Vec::new();
    let mut cleaned = Vec::with_capacity(links.len());
    for (record_id, names) in links {
        let names = clean_names(names)?;
        for name in &names {
            if !distinct.iter().any(|d| d.eq_ignore_ascii_case(name)) {
                distinct.push(name.clone());
            }
        }
        cleaned.push((*record_id, names));
    }
    let ids = ensure(tx, &distinct).await?;
    let id_of = |name: &str| distinct.iter().position(|d| d.eq_ignore_ascii_case(name)).map(|i| ids[i]);
    let mut rows: Vec<[DbValue; 3]> = Vec::new();
    for (record_id, names) in &cleaned {
        for name in names {
            if let Some(tag_id) = id_of(name) {
                rows.push([object.into(), id_value(backend, *record_id)?, id_value(backend, tag_id)?]);
            }
        }
    }
    for chunk in rows.chunks(crate::store::codec::rows_per_insert(3)) {
        let mut sql = String::from("INSERT INTO record_tag (object, record_id, tag_id) VALUES ");
        let mut values = Vec::with_capacity(chunk.len() * 3);
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&placeholders(backend, i * 3 + 1, 3));
            sql.push(')');
            values.extend(row.iter().cloned());
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

/// The tags of each record, sorted by name.
pub async fn for_records<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<String>>> {
    let backend = db.get_database_backend();
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(500) {
        if chunk.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT rt.record_id, t.name FROM record_tag rt JOIN tag t ON t.id = rt.tag_id \
             WHERE rt.record_id IN ({}) ORDER BY t.name",
            placeholders(backend, 1, chunk.len())
        );
        let values = chunk.iter().map(|id| id_value(backend, *id)).collect::<Result<Vec<_>>>()?;
        for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
            if let Some(id) = decode(backend, &FieldKind::Id, &row, 0)?.as_uuid() {
                out.entry(id).or_default().push(row.try_get_by_index::<String>(1)?);
            }
        }
    }
    Ok(out)
}

/// Moves every tag of `from` onto `to` (merging records).
pub async fn move_all(tx: &Tx, object: &str, from: Uuid, to: Uuid) -> Result<()> {
    let names = for_records(tx.conn(), &[from]).await?.remove(&from).unwrap_or_default();
    add(tx, object, to, &names).await?;
    let backend = tx.backend();
    let sql = format!("DELETE FROM record_tag WHERE record_id = {}", placeholders(backend, 1, 1));
    tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, [id_value(backend, from)?])).await?;
    Ok(())
}
