//! The event outbox: one row per change, written in the change's transaction, read in `seq`
//! order by plugins and webhooks.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::Tx;
use crate::store::codec::{decode, encode};

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `contact.created`, `deal.stage_changed`, ...
    pub kind: String,
    /// The object kind.
    pub object: String,
    /// The record.
    pub record_id: Option<Uuid>,
    /// The record after the change, plus event-specific details.
    pub payload: Json,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the outbox: the global delivery order.
    pub seq: i64,
    /// Unique id, stable across redeliveries.
    pub event_id: Uuid,
    /// `contact.created`, ...
    pub kind: String,
    /// The object kind.
    pub object: String,
    /// The record.
    pub record_id: Option<Uuid>,
    /// Details.
    pub payload: Json,
    /// Who caused it.
    pub actor: String,
    /// The plugin whose write caused it, if any.
    pub origin_plugin: Option<String>,
    /// When.
    pub occurred_at: Value,
}

/// Appends events (in order) to the outbox.
pub async fn emit(tx: &Tx, events: &[NewEvent]) -> Result<()> {
    let backend = tx.backend();
    let actor = tx.actor.label();
    let origin = tx.actor.origin_plugin().map(|p| Value::Text(p.to_owned())).unwrap_or(Value::Null);
    for chunk in events.chunks(crate::store::codec::rows_per_insert(8)) {
        let mut insert = Query::insert();
        insert.into_table(Alias::new("event_outbox")).columns(
            ["event_id", "kind", "object", "record_id", "payload", "actor", "origin_plugin", "occurred_at"]
                .map(Alias::new),
        );
        for event in chunk {
            let values = [
                encode(backend, &FieldKind::Id, &Value::Uuid(Uuid::now_v7()))?,
                encode(backend, &FieldKind::Text, &Value::Text(event.kind.clone()))?,
                encode(backend, &FieldKind::Text, &Value::Text(event.object.clone()))?,
                encode(backend, &FieldKind::Id, &event.record_id.map(Value::Uuid).unwrap_or(Value::Null))?,
                encode(backend, &FieldKind::Json, &Value::Json(event.payload.clone()))?,
                encode(backend, &FieldKind::Text, &Value::Text(actor.clone()))?,
                encode(backend, &FieldKind::Text, &origin)?,
                encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?,
            ];
            insert
                .values(values.into_iter().map(Expr::val))
                .map_err(|e| Error::internal(format!("outbox insert: {e}")))?;
        }
        tx.conn().execute(&insert).await?;
    }
    Ok(())
}

/// Events with `seq > after`, oldest first, at most `limit`.
pub async fn read<C: ConnectionTrait>(db: &C, after: i64, limit: u64) -> Result<Vec<Event>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .from(Alias::new("event_outbox"))
        .columns(
            ["seq", "event_id", "kind", "object", "record_id", "payload", "actor", "origin_plugin", "occurred_at"]
                .map(Alias::new),
        )
        .and_where(Expr::col(Alias::new("seq")).gt(after))
        .order_by(Alias::new("seq"), Order::Asc)
        .limit(limit);
    let mut out = Vec::new();
    for row in db.query_all(&select).await? {
        out.push(Event {
            seq: row.try_get_by_index(0)?,
            event_id: decode(backend, &FieldKind::Id, &row, 1)?.as_uuid().unwrap_or_default(),
            kind: row.try_get_by_index(2)?,
            object: row.try_get_by_index(3)?,
            record_id: decode(backend, &FieldKind::Id, &row, 4)?.as_uuid(),
            payload: match decode(backend, &FieldKind::Json, &row, 5)? {
                Value::Json(j) => j,
                _ => Json::Null,
            },
            actor: row.try_get_by_index(6)?,
            origin_plugin: row.try_get_by_index(7)?,
            occurred_at: decode(backend, &FieldKind::DateTime, &row, 8)?,
        });
    }
    Ok(out)
}
