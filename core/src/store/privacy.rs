//! The SQL of erasing a person beyond their records' rows: their values in the audit log, the
//! event outbox, stored idempotent answers and import runs' rejected rows are replaced or
//! removed, and on SQLite the freed space is purged so a byte-level search of the file finds
//! nothing. `service::privacy` decides what is erased; this module only rewrites what it names.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::store::codec::{decode, encode, encode_json};
use crate::store::{Store, Tx};

/// What replaces an erased value in the audit log.
pub const ERASED: &str = "[erased]";

/// Ids bound per statement.
const CHUNK: usize = 200;

fn placeholders(backend: DbBackend, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| if backend == DbBackend::Postgres { format!("${i}") } else { "?".to_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ids_values(backend: DbBackend, ids: &[Uuid]) -> Result<Vec<DbValue>> {
    ids.iter().map(|id| encode(backend, &FieldKind::Id, &Value::Uuid(*id))).collect()
}

fn p(backend: DbBackend, i: usize) -> String {
    if backend == DbBackend::Postgres { format!("${i}") } else { "?".to_owned() }
}

/// Replaces every value of `doc` (an audit entry's `changes`) with [`ERASED`], or only those of
/// `fields` when given, keeping the keys: the entry still says what changed, not to what.
pub fn scrub_changes(doc: &mut Json, fields: Option<&[String]>) {
    fn blank(value: &mut Json) {
        match value {
            Json::Null => {}
            Json::Object(map) => map.values_mut().for_each(blank),
            Json::Array(items) => items.iter_mut().for_each(blank),
            other => *other = Json::String(ERASED.to_owned()),
        }
    }
    let Json::Object(map) = doc else {
        blank(doc);
        return;
    };
    for (key, value) in map.iter_mut() {
        let wanted = |name: &str| fields.is_none_or(|f| f.iter().any(|n| n == name));
        if key == "$created" {
            if let Json::Object(created) = value {
                created.iter_mut().filter(|(k, _)| wanted(k)).for_each(|(_, v)| blank(v));
            }
        } else if wanted(key) {
            blank(value);
        }
    }
}

/// Rewrites the audit entries of `object`'s records `ids` with [`scrub_changes`]; returns how
/// many entries were rewritten.
pub async fn scrub_audit(tx: &Tx, object: &str, ids: &[Uuid], fields: Option<&[String]>) -> Result<u64> {
    let backend = tx.backend();
    let mut rewritten = 0;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, changes FROM audit_log WHERE object = {} AND record_id IN ({})",
            p(backend, 1),
            placeholders(backend, 2, chunk.len())
        );
        let mut values = vec![DbValue::from(object)];
        values.extend(ids_values(backend, chunk)?);
        let rows = tx.conn().query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        for row in rows {
            let id = decode(backend, &FieldKind::Id, &row, 0)?;
            let Value::Json(mut changes) = decode(backend, &FieldKind::Json, &row, 1)? else { continue };
            let before = changes.clone();
            scrub_changes(&mut changes, fields);
            if changes == before {
                continue;
            }
            let sql = format!("UPDATE audit_log SET changes = {} WHERE id = {}", p(backend, 1), p(backend, 2));
            let values = vec![encode_json(backend, changes), encode(backend, &FieldKind::Id, &id)?];
            tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// Replaces the payload of every outbox event about records `ids` with `{"erased": true}`: the
/// events stay (plugins' cursors and delivery history count them), their content goes.
pub async fn scrub_outbox(tx: &Tx, ids: &[Uuid]) -> Result<u64> {
    let backend = tx.backend();
    let mut rewritten = 0;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "UPDATE event_outbox SET payload = {} WHERE record_id IN ({})",
            p(backend, 1),
            placeholders(backend, 2, chunk.len())
        );
        let mut values = vec![encode_json(backend, json!({"erased": true}))];
        values.extend(ids_values(backend, chunk)?);
        rewritten += tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected();
    }
    Ok(rewritten)
}

/// Removes the search entries of records `ids`.
pub async fn forget_search(tx: &Tx, ids: &[Uuid]) -> Result<()> {
    for id in ids {
        crate::store::search::remove(tx, *id).await?;
    }
    Ok(())
}

/// Removes the tags of records `ids`.
pub async fn forget_tags(tx: &Tx, ids: &[Uuid]) -> Result<()> {
    let backend = tx.backend();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!("DELETE FROM record_tag WHERE record_id IN ({})", placeholders(backend, 1, chunk.len()));
        tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, ids_values(backend, chunk)?)).await?;
    }
    Ok(())
}

/// `%needle%` for LIKE, with the pattern characters in `needle` escaped by `\`.
fn contains_pattern(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Removes stored idempotent answers (kept for a day to answer a retried request) that hold any
/// of `needles`: the erased records' ids, the person's e-mail or phone.
pub async fn forget_idempotent_answers(tx: &Tx, needles: &[String]) -> Result<u64> {
    let backend = tx.backend();
    let mut removed = 0;
    for needle in needles.iter().filter(|n| !n.is_empty()) {
        let sql = format!("DELETE FROM idempotency_key WHERE response LIKE {} ESCAPE '\\'", p(backend, 1));
        let values = vec![DbValue::from(contains_pattern(needle))];
        removed += tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected();
    }
    Ok(removed)
}

/// Removes the e-mail messages to or about the person (any of `needles`: their e-mail, an
/// erased record's id) from the mail queue, sent or not (a queued one is then never sent), and
/// empties the payload of the mail outcome events that name them; returns the messages removed.
pub async fn forget_mail(tx: &Tx, needles: &[String]) -> Result<u64> {
    let backend = tx.backend();
    let payload = if backend == DbBackend::Postgres { "CAST(payload AS TEXT)" } else { "payload" };
    let mut removed = 0;
    for needle in needles.iter().filter(|n| !n.is_empty()) {
        let pattern = DbValue::from(contains_pattern(&needle.to_lowercase()));
        let sql = format!(
            "DELETE FROM mail_message WHERE lower(recipient) LIKE {0} ESCAPE '\\' OR reference LIKE {0} ESCAPE '\\'",
            p(backend, 1)
        );
        let values = vec![pattern.clone()];
        removed += tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected();
        let sql = format!(
            "UPDATE event_outbox SET payload = {} WHERE audience IS NOT NULL AND lower({payload}) LIKE {} ESCAPE '\\'",
            p(backend, 1),
            p(backend, 2)
        );
        let values = vec![encode_json(backend, json!({"erased": true})), pattern];
        tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(removed)
}

/// Drops, from import runs' rejected rows, the rows that hold any of `needles` (the person's
/// e-mail, phone or an erased record's id); returns how many rows were dropped.
pub async fn scrub_import_runs(tx: &Tx, needles: &[String]) -> Result<u64> {
    let backend = tx.backend();
    let needles: Vec<&String> = needles.iter().filter(|n| !n.is_empty()).collect();
    if needles.is_empty() {
        return Ok(0);
    }
    let conditions: Vec<String> =
        (1..=needles.len()).map(|i| format!("rejected LIKE {} ESCAPE '\\'", p(backend, i))).collect();
    let sql = format!("SELECT id, rejected FROM import_run WHERE {}", conditions.join(" OR "));
    let values = needles.iter().map(|n| DbValue::from(contains_pattern(n))).collect::<Vec<_>>();
    let rows = tx.conn().query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let mut dropped = 0;
    for row in rows {
        let id = decode(backend, &FieldKind::Id, &row, 0)?;
        let text: String = row.try_get_by_index(1)?;
        let Ok(Json::Array(rejected)) = serde_json::from_str::<Json>(&text) else { continue };
        let before = rejected.len();
        let kept: Vec<Json> = rejected
            .into_iter()
            .filter(|r| {
                let text = r.to_string();
                !needles.iter().any(|n| text.contains(n.as_str()))
            })
            .collect();
        dropped += (before - kept.len()) as u64;
        let sql = format!(
            "UPDATE import_run SET rejected = {}, rejected_count = rejected_count - {} WHERE id = {}",
            p(backend, 1),
            before - kept.len(),
            p(backend, 2)
        );
        let values = vec![DbValue::from(Json::Array(kept).to_string()), encode(backend, &FieldKind::Id, &id)?];
        tx.conn().execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(dropped)
}

/// The contacts merged into `id` (by `mergeContacts`), as its audit entries record them.
pub async fn merged_into<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Vec<Uuid>> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT changes FROM audit_log WHERE object = 'contact' AND action = 'merge' AND record_id = {}",
        p(backend, 1)
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [encode(backend, &FieldKind::Id, &Value::Uuid(id))?],
        ))
        .await?;
    let mut out = Vec::new();
    for row in rows {
        if let Value::Json(changes) = decode(backend, &FieldKind::Json, &row, 0)?
            && let Some(merged) = changes.get("mergedId").and_then(Json::as_str).and_then(|s| Uuid::parse_str(s).ok())
        {
            out.push(merged);
        }
    }
    Ok(out)
}

/// After an erasure has committed, on SQLite: rewrites the search index without the deleted
/// entries (FTS5 keeps a deleted document's words until its segments merge), then checkpoints
/// the write-ahead log and truncates it, so no earlier page image holding the erased values
/// remains. With `secure_delete` on (every connection), freed pages and cells are zeroed.
/// Nothing to do on PostgreSQL: dead row versions are invisible and `VACUUM` reclaims them.
pub async fn purge_freed(store: &Store) -> Result<()> {
    if store.backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let db = store.pool();
    db.execute_unprepared("INSERT INTO search_fts(search_fts) VALUES('optimize')").await?;
    // A reader in the middle of a read keeps the log from being truncated: try a few times.
    for attempt in 0..20 {
        let row =
            db.query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(TRUNCATE)")).await?;
        let busy: i64 = row.map(|r| r.try_get_by_index(0)).transpose()?.unwrap_or(0);
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
    }
    tracing::warn!("the write-ahead log could not be truncated after an erasure; it will be at the next checkpoint");
    Ok(())
}
