//! The audit log: who changed what, written in the transaction of the change.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::store::Tx;
use crate::store::codec::{decode, encode};

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

/// Appends an entry for `action` on `object` `record_id`.
pub async fn record(tx: &Tx, action: &str, object: &str, record_id: Option<Uuid>, changes: Json) -> Result<()> {
    record_many(tx, action, object, vec![(record_id, changes)]).await
}

/// Appends one entry per record, in as few statements as possible (imports).
pub async fn record_many(tx: &Tx, action: &str, object: &str, entries: Vec<(Option<Uuid>, Json)>) -> Result<()> {
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
            crate::store::codec::encode_json(backend, changes),
        ]);
    }
    let columns =
        ["id", "occurred_at", "actor_kind", "actor_id", "actor_name", "action", "object", "record_id", "changes"];
    crate::store::codec::insert_rows(tx.conn(), "audit_log", &columns, rows).await
}

/// The entries for one record (or a whole object when `record_id` is `None`), newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    object: &str,
    record_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<AuditEntry>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .from(Alias::new("audit_log"))
        .columns(
            ["occurred_at", "actor_kind", "actor_id", "actor_name", "action", "object", "record_id", "changes"]
                .map(Alias::new),
        )
        .and_where(Expr::col(Alias::new("object")).eq(object))
        .order_by(Alias::new("occurred_at"), Order::Desc)
        .order_by(Alias::new("id"), Order::Desc)
        .limit(limit);
    if let Some(id) = record_id {
        select.and_where(Expr::col(Alias::new("record_id")).eq(encode(backend, &FieldKind::Id, &Value::Uuid(id))?));
    }
    let mut out = Vec::new();
    for row in db.query_all(&select).await? {
        out.push(AuditEntry {
            occurred_at: decode(backend, &FieldKind::DateTime, &row, 0)?,
            actor_kind: row.try_get_by_index(1)?,
            actor_id: row.try_get_by_index(2)?,
            actor_name: row.try_get_by_index(3)?,
            action: row.try_get_by_index(4)?,
            object: row.try_get_by_index(5)?,
            record_id: decode(backend, &FieldKind::Id, &row, 6)?.as_uuid(),
            changes: match decode(backend, &FieldKind::Json, &row, 7)? {
                Value::Json(j) => j,
                _ => Json::Null,
            },
        });
    }
    Ok(out)
}
