//! The event outbox: one row per change, written in the change's transaction, read in `seq`
//! order by plugins and webhooks.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
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
    /// How many plugin writes led to it (0 = a person or Kith itself).
    pub depth: u32,
    /// When.
    pub occurred_at: Value,
    /// The one plugin this event is for (a message's `mail.sent` goes to the plugin that sent
    /// it); `None`: everyone who may read it.
    pub audience: Option<String>,
}

/// Appends events (in order) to the outbox.
pub async fn emit(tx: &Tx, events: Vec<NewEvent>) -> Result<()> {
    let backend = tx.backend();
    let events = events
        .into_iter()
        .map(|e| EncodedEvent {
            kind: e.kind,
            object: e.object,
            record_id: e.record_id,
            payload: crate::store::codec::encode_json(backend, e.payload),
        })
        .collect();
    emit_encoded(tx, events).await
}

/// An event whose payload is encoded for the database already (bulk writes serialise each
/// record once, straight to text).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    /// `contact.created`, ...
    pub kind: String,
    /// The object kind.
    pub object: String,
    /// The record.
    pub record_id: Option<Uuid>,
    /// The payload, as [`crate::store::codec::encode_json`] would encode it.
    pub payload: sea_orm::Value,
}

/// Appends encoded events (in order) to the outbox.
pub async fn emit_encoded(tx: &Tx, events: Vec<EncodedEvent>) -> Result<()> {
    let backend = tx.backend();
    let actor = tx.actor.label();
    let origin = tx.actor.origin_plugin().map(|p| Value::Text(p.to_owned())).unwrap_or(Value::Null);
    let actor = encode(backend, &FieldKind::Text, &Value::Text(actor))?;
    let origin = encode(backend, &FieldKind::Text, &origin)?;
    let occurred_at = encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?;
    let depth = sea_orm::Value::Int(Some(i32::try_from(tx.actor.depth).unwrap_or(i32::MAX)));
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        rows.push(vec![
            encode(backend, &FieldKind::Id, &Value::Uuid(Uuid::now_v7()))?,
            sea_orm::Value::String(Some(event.kind)),
            sea_orm::Value::String(Some(event.object)),
            encode(backend, &FieldKind::Id, &event.record_id.map(Value::Uuid).unwrap_or(Value::Null))?,
            event.payload,
            actor.clone(),
            origin.clone(),
            occurred_at.clone(),
            depth.clone(),
        ]);
    }
    match tx.hold_events(rows) {
        Some(rows) => insert_rows(tx, rows).await,
        None => Ok(()),
    }
}

/// Appends events meant for the plugin `audience` alone (see [`Event::audience`]): no other
/// plugin, webhook or subscriber receives them.
pub async fn emit_to(tx: &Tx, audience: &str, events: Vec<NewEvent>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let backend = tx.backend();
    let actor = encode(backend, &FieldKind::Text, &Value::Text(tx.actor.label()))?;
    let occurred_at = encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?;
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        rows.push(vec![
            encode(backend, &FieldKind::Id, &Value::Uuid(Uuid::now_v7()))?,
            sea_orm::Value::String(Some(event.kind)),
            sea_orm::Value::String(Some(event.object)),
            encode(backend, &FieldKind::Id, &event.record_id.map(Value::Uuid).unwrap_or(Value::Null))?,
            crate::store::codec::encode_json(backend, event.payload),
            actor.clone(),
            sea_orm::Value::String(None),
            occurred_at.clone(),
            sea_orm::Value::Int(Some(0)),
            sea_orm::Value::String(Some(audience.to_owned())),
        ]);
    }
    let mut columns = COLUMNS.to_vec();
    columns.push("audience");
    let lock = tx.outbox_lock_key();
    crate::store::codec::insert_rows_locked(tx.conn(), "event_outbox", &columns, rows, lock).await
}

/// The columns of an encoded outbox row, in order.
pub(crate) const COLUMNS: [&str; 9] =
    ["event_id", "kind", "object", "record_id", "payload", "actor", "origin_plugin", "occurred_at", "depth"];

/// Writes encoded outbox rows (taking the outbox lock first, see [`Tx::outbox_lock_key`]).
pub(crate) async fn insert_rows(tx: &Tx, rows: Vec<Vec<sea_orm::Value>>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let lock = tx.outbox_lock_key();
    crate::store::codec::insert_rows_locked(tx.conn(), "event_outbox", &COLUMNS, rows, lock).await
}

/// The newest event's `seq` (0 for an empty outbox).
pub async fn last_seq<C: ConnectionTrait>(db: &C) -> Result<i64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(backend, "SELECT COALESCE(MAX(seq), 0) FROM event_outbox"))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

/// Events with `seq > after`, oldest first, at most `limit`.
pub async fn read<C: ConnectionTrait>(db: &C, after: i64, limit: u64) -> Result<Vec<Event>> {
    let backend = db.get_database_backend();
    let mut select = select_events();
    select.and_where(Expr::col(Alias::new("seq")).gt(after)).order_by(Alias::new("seq"), Order::Asc);
    decode_events(db, crate::store::query::with_limit(backend, &select, limit)).await
}

/// What delivery needs to know of an event to choose it, without its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventKey {
    /// Position in the outbox.
    pub seq: i64,
    /// `contact.created`, ...
    pub kind: String,
    /// The object kind.
    pub object: String,
    /// The record.
    pub record_id: Option<Uuid>,
    /// The one plugin the event is for, if any.
    pub audience: Option<String>,
}

/// The keys of the events with `seq > after`, oldest first, at most `limit`: a delivery reads
/// these, keeps the events its plugin receives in its partition and reads only those in full
/// ([`read_seqs`]).
pub async fn read_keys<C: ConnectionTrait>(db: &C, after: i64, limit: u64) -> Result<Vec<EventKey>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .from(Alias::new("event_outbox"))
        .columns(["seq", "kind", "object", "record_id", "audience"].map(Alias::new))
        .and_where(Expr::col(Alias::new("seq")).gt(after))
        .order_by(Alias::new("seq"), Order::Asc);
    let mut out = Vec::new();
    for row in db.query_all_raw(crate::store::query::with_limit(backend, &select, limit)).await? {
        out.push(EventKey {
            seq: row.try_get_by_index(0)?,
            kind: row.try_get_by_index(1)?,
            object: row.try_get_by_index(2)?,
            record_id: decode(backend, &FieldKind::Id, &row, 3)?.as_uuid(),
            audience: row.try_get_by_index(4)?,
        });
    }
    Ok(out)
}

/// The events at these outbox positions (those still there), oldest first.
pub async fn read_seqs<C: ConnectionTrait>(db: &C, seqs: &[i64]) -> Result<Vec<Event>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let mut select = select_events();
    select.and_where(Expr::col(Alias::new("seq")).is_in(seqs.iter().copied())).order_by(Alias::new("seq"), Order::Asc);
    decode_events(db, backend.build(&select)).await
}

fn select_events() -> sea_orm::sea_query::SelectStatement {
    let mut select = Query::select();
    select.from(Alias::new("event_outbox")).columns(
        [
            "seq",
            "event_id",
            "kind",
            "object",
            "record_id",
            "payload",
            "actor",
            "origin_plugin",
            "occurred_at",
            "depth",
            "audience",
        ]
        .map(Alias::new),
    );
    select
}

async fn decode_events<C: ConnectionTrait>(db: &C, statement: sea_orm::Statement) -> Result<Vec<Event>> {
    let backend = db.get_database_backend();
    let mut out = Vec::new();
    for row in db.query_all_raw(statement).await? {
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
            depth: u32::try_from(row.try_get_by_index::<i32>(9)?).unwrap_or(0),
            audience: row.try_get_by_index(10)?,
        });
    }
    Ok(out)
}
