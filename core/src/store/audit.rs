//! The audit log: who changed what, written in the transaction of the change.

use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, Value as DbValue};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::Result;
use crate::store::Tx;
use crate::store::codec::{decode, encode, write_json_fields, write_json_str};

/// One audit entry as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When.
    pub occurred_at: Value,
    /// `user`, `token`, `plugin` or `system`.
    pub actor_kind: String,
    /// The actor's id, if it has one.
    pub actor_id: Option<String>,
    /// The actor's name.
    pub actor_name: String,
    /// `create`, `update`, `delete`, `restore`, `merge`, ...
    pub action: String,
    /// The object kind.
    pub object: String,
    /// The record.
    pub record_id: Option<Uuid>,
    /// `{field: {before, after}}`.
    pub changes: Json,
}

/// Builds the `changes` document from a diff.
pub fn changes_json(changes: &[(String, Value, Value)]) -> Json {
    let mut map = Map::new();
    for (field, before, after) in changes {
        map.insert(field.clone(), json!({"before": before.to_json(), "after": after.to_json()}));
    }
    Json::Object(map)
}

/// The key of a compact create entry. `{"$created": {field: value, ..}, "$tags": [..]}` is
/// stored for a create (half the bytes of the long form) and read back as
/// `{field: {"before": null, "after": value}, .., "tags": {"before": [], "after": [..]}}`.
const CREATED: &str = "$created";
const TAGS: &str = "$tags";

/// The stored `changes` of a new record with `fields` (nulls left out) and `tags`.
pub fn created_doc(backend: DbBackend, fields: &Fields, tags: Option<&[String]>) -> DbValue {
    if backend == DbBackend::Postgres {
        let after: Map<String, Json> =
            fields.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.to_json())).collect();
        let mut doc = Map::new();
        doc.insert(CREATED.into(), Json::Object(after));
        if let Some(tags) = tags {
            doc.insert(TAGS.into(), json!(tags));
        }
        return crate::store::codec::encode_json(backend, Json::Object(doc));
    }
    let mut text = String::with_capacity(512);
    text.push_str("{\"$created\":");
    write_json_fields(&mut text, fields, true);
    if let Some(tags) = tags {
        text.push_str(",\"$tags\":[");
        for (i, tag) in tags.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            write_json_str(&mut text, tag);
        }
        text.push(']');
    }
    text.push('}');
    DbValue::String(Some(text))
}

/// The long form of a stored `changes` document (see [`created_doc`]).
fn expand(changes: Json) -> Json {
    let Json::Object(mut map) = changes else { return changes };
    let Some(Json::Object(created)) = map.remove(CREATED) else { return Json::Object(map) };
    let mut out = Map::new();
    for (field, value) in created {
        out.insert(field, json!({"before": null, "after": value}));
    }
    if let Some(tags) = map.remove(TAGS) {
        out.insert("tags".into(), json!({"before": [], "after": tags}));
    }
    out.extend(map);
    Json::Object(out)
}

/// Appends a create entry for record `record_id` with `fields` and `tags`.
pub async fn record_created(
    tx: &Tx,
    object: &str,
    record_id: Uuid,
    fields: &Fields,
    tags: Option<&[String]>,
) -> Result<()> {
    let doc = created_doc(tx.backend(), fields, tags);
    record_encoded(tx, "create", object, vec![(Some(record_id), doc)]).await
}

/// Appends an entry for `action` on `object` `record_id`.
pub async fn record(tx: &Tx, action: &str, object: &str, record_id: Option<Uuid>, changes: Json) -> Result<()> {
    record_many(tx, action, object, vec![(record_id, changes)]).await
}

/// Appends one entry per record, in as few statements as possible.
pub async fn record_many(tx: &Tx, action: &str, object: &str, entries: Vec<(Option<Uuid>, Json)>) -> Result<()> {
    let backend = tx.backend();
    let entries =
        entries.into_iter().map(|(id, changes)| (id, crate::store::codec::encode_json(backend, changes))).collect();
    record_encoded(tx, action, object, entries).await
}

/// Appends one entry per record whose `changes` are encoded already (imports serialise them
/// straight to text, see [`created_doc`]).
pub async fn record_encoded(tx: &Tx, action: &str, object: &str, entries: Vec<(Option<Uuid>, DbValue)>) -> Result<()> {
    let backend = tx.backend();
    let actor = &tx.actor;
    let actor_kind = encode(backend, &FieldKind::Text, &Value::Text(actor.kind.as_str().to_owned()))?;
    let actor_id = encode(backend, &FieldKind::Text, &actor.id.clone().map(Value::Text).unwrap_or(Value::Null))?;
    let actor_name = encode(backend, &FieldKind::Text, &Value::Text(actor.name.clone()))?;
    let occurred_at = encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?;
    let action = encode(backend, &FieldKind::Text, &Value::Text(action.to_owned()))?;
    let object = encode(backend, &FieldKind::Text, &Value::Text(object.to_owned()))?;
    let mut rows = Vec::with_capacity(entries.len());
    for (record_id, changes) in entries {
        rows.push(vec![
            encode(backend, &FieldKind::Id, &Value::Uuid(Uuid::now_v7()))?,
            occurred_at.clone(),
            actor_kind.clone(),
            actor_id.clone(),
            actor_name.clone(),
            action.clone(),
            object.clone(),
            encode(backend, &FieldKind::Id, &record_id.map(Value::Uuid).unwrap_or(Value::Null))?,
            changes,
        ]);
    }
    match tx.hold_audit(rows) {
        Some(rows) => insert_rows(tx, rows).await,
        None => Ok(()),
    }
}

/// The columns of an encoded audit row, in order.
pub(crate) const COLUMNS: [&str; 9] =
    ["id", "occurred_at", "actor_kind", "actor_id", "actor_name", "action", "object", "record_id", "changes"];

/// Writes encoded audit rows.
pub(crate) async fn insert_rows(tx: &Tx, rows: Vec<Vec<DbValue>>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::store::codec::insert_rows(tx.conn(), "audit_log", &COLUMNS, rows).await
}

/// Which audit entries to read: one object, optionally one record, actor, action, time range
/// and the page after a cursor (newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// The object kind (`contact`, `user`, `token`, ...).
    pub object: String,
    /// One record.
    pub record_id: Option<Uuid>,
    /// The actor, by name or id as recorded.
    pub actor: Option<String>,
    /// The action (`create`, `update`, ...).
    pub action: Option<String>,
    /// From this instant on (inclusive).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this instant.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Entries after this one in the listing (older, or as old with a smaller id).
    pub after: Option<AuditCursor>,
}

/// Where a page of the audit log ends: an entry's instant and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The entry's `occurred_at`.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The entry's id.
    pub id: Uuid,
}

impl AuditCursor {
    /// The cursor as an opaque string.
    pub fn encode(&self) -> String {
        format!("{}~{}", crate::domain::value::format_datetime(self.at), self.id)
    }

    /// Reads a cursor made by [`AuditCursor::encode`].
    pub fn decode(text: &str) -> Option<AuditCursor> {
        let (at, id) = text.split_once('~')?;
        Some(AuditCursor { at: crate::domain::value::parse_datetime(at)?, id: Uuid::parse_str(id).ok()? })
    }
}

/// The entries for one record (or a whole object when `record_id` is `None`), newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    object: &str,
    record_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<AuditEntry>> {
    let query = AuditQuery { object: object.to_owned(), record_id, ..AuditQuery::default() };
    Ok(search(db, &query, limit).await?.into_iter().map(|(entry, _)| entry).collect())
}

/// The entries `query` selects, newest first, each with its cursor.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    query: &AuditQuery,
    limit: u64,
) -> Result<Vec<(AuditEntry, AuditCursor)>> {
    let backend = db.get_database_backend();
    let col = |name: &str| Expr::col(Alias::new(name));
    let at = |t: chrono::DateTime<chrono::Utc>| encode(backend, &FieldKind::DateTime, &Value::DateTime(t));
    let mut select = Query::select();
    select
        .from(Alias::new("audit_log"))
        .columns(
            ["occurred_at", "actor_kind", "actor_id", "actor_name", "action", "object", "record_id", "changes", "id"]
                .map(Alias::new),
        )
        .and_where(col("object").eq(query.object.as_str()))
        .order_by(Alias::new("occurred_at"), Order::Desc)
        .order_by(Alias::new("id"), Order::Desc);
    if let Some(id) = query.record_id {
        select.and_where(col("record_id").eq(encode(backend, &FieldKind::Id, &Value::Uuid(id))?));
    }
    if let Some(actor) = &query.actor {
        select
            .cond_where(Cond::any().add(col("actor_name").eq(actor.as_str())).add(col("actor_id").eq(actor.as_str())));
    }
    if let Some(action) = &query.action {
        select.and_where(col("action").eq(action.as_str()));
    }
    if let Some(from) = query.from {
        select.and_where(col("occurred_at").gte(at(from)?));
    }
    if let Some(to) = query.to {
        select.and_where(col("occurred_at").lt(at(to)?));
    }
    if let Some(cursor) = query.after {
        let id = encode(backend, &FieldKind::Id, &Value::Uuid(cursor.id))?;
        select.cond_where(
            Cond::any()
                .add(col("occurred_at").lt(at(cursor.at)?))
                .add(Cond::all().add(col("occurred_at").eq(at(cursor.at)?)).add(col("id").lt(id))),
        );
    }
    let mut out = Vec::new();
    for row in db.query_all_raw(crate::store::query::with_limit(backend, &select, limit)).await? {
        let occurred_at = decode(backend, &FieldKind::DateTime, &row, 0)?;
        let cursor = AuditCursor {
            at: occurred_at.as_datetime().unwrap_or_default(),
            id: decode(backend, &FieldKind::Id, &row, 8)?.as_uuid().unwrap_or_default(),
        };
        let entry = AuditEntry {
            occurred_at,
            actor_kind: row.try_get_by_index(1)?,
            actor_id: row.try_get_by_index(2)?,
            actor_name: row.try_get_by_index(3)?,
            action: row.try_get_by_index(4)?,
            object: row.try_get_by_index(5)?,
            record_id: decode(backend, &FieldKind::Id, &row, 6)?.as_uuid(),
            changes: match decode(backend, &FieldKind::Json, &row, 7)? {
                Value::Json(j) => expand(j),
                _ => Json::Null,
            },
        };
        out.push((entry, cursor));
    }
    Ok(out)
}
