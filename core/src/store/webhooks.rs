//! Outbound webhooks: endpoints (with their secrets, outbox cursor, failure state and a lease so
//! that one process at a time delivers to an endpoint) and their deliveries (one row per event
//! sent or to send to an endpoint: the delivery log and the dead-letter list).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value as DbValue};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::codec::{decode, encode};
use crate::store::plugins::stmt;

fn ts(backend: DbBackend, at: DateTime<Utc>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &Value::DateTime(at))
}

fn ts_opt(backend: DbBackend, at: Option<DateTime<Utc>>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &at.map(Value::DateTime).unwrap_or(Value::Null))
}

fn id(backend: DbBackend, id: Uuid) -> Result<DbValue> {
    encode(backend, &FieldKind::Id, &Value::Uuid(id))
}

fn get_ts(backend: DbBackend, row: &QueryResult, idx: usize) -> Result<Option<DateTime<Utc>>> {
    Ok(match decode(backend, &FieldKind::DateTime, row, idx)? {
        Value::DateTime(at) => Some(at),
        _ => None,
    })
}

fn get_id(backend: DbBackend, row: &QueryResult, idx: usize) -> Result<Uuid> {
    decode(backend, &FieldKind::Id, row, idx)?.as_uuid().ok_or_else(|| Error::internal("a webhook row without an id"))
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRow {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives: `contact.created`, `contact.*`, `*`.
    pub events: Vec<String>,
    /// The filter (JSON text, the filter language of lists) the record after the change must
    /// satisfy, if any.
    pub filter: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// The signing secret (`whsec_...`). Never logged, never answered after creation.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// The last outbox position looked at.
    pub cursor_seq: i64,
    /// Since when every attempt failed (none since a success).
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, url, events, filter, description, secret, previous_secret, previous_secret_until, enabled, \
     disabled_reason, cursor_seq, failing_since, created_at, updated_at";

fn row_to_webhook(backend: DbBackend, row: &QueryResult) -> Result<WebhookRow> {
    let events: String = row.try_get_by_index(2)?;
    Ok(WebhookRow {
        id: get_id(backend, row, 0)?,
        url: row.try_get_by_index(1)?,
        events: serde_json::from_str(&events).map_err(|e| Error::internal(format!("webhook events: {e}")))?,
        filter: row.try_get_by_index(3)?,
        description: row.try_get_by_index(4)?,
        secret: row.try_get_by_index(5)?,
        previous_secret: row.try_get_by_index(6)?,
        previous_secret_until: get_ts(backend, row, 7)?,
        enabled: row.try_get_by_index(8)?,
        disabled_reason: row.try_get_by_index(9)?,
        cursor_seq: row.try_get_by_index(10)?,
        failing_since: get_ts(backend, row, 11)?,
        created_at: get_ts(backend, row, 12)?.unwrap_or_default(),
        updated_at: get_ts(backend, row, 13)?.unwrap_or_default(),
    })
}

/// Stores a new endpoint, its cursor at the current end of the outbox.
pub async fn insert<C: ConnectionTrait>(db: &C, row: &WebhookRow) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "INSERT INTO webhook (id, url, events, filter, description, secret, enabled, cursor_seq, created_at, \
         updated_at) SELECT ?, ?, ?, ?, ?, ?, ?, COALESCE(MAX(seq), 0), ?, ? FROM event_outbox",
        vec![
            id(backend, row.id)?,
            row.url.clone().into(),
            serde_json::to_string(&row.events).unwrap_or_default().into(),
            row.filter.clone().into(),
            row.description.clone().into(),
            row.secret.clone().into(),
            row.enabled.into(),
            ts(backend, row.created_at)?,
            ts(backend, row.updated_at)?,
        ],
    ))
    .await?;
    Ok(())
}

/// Changes what an endpoint receives and where; false when there is no such endpoint.
pub async fn update<C: ConnectionTrait>(db: &C, row: &WebhookRow) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE webhook SET url = ?, events = ?, filter = ?, description = ?, updated_at = ? WHERE id = ?",
            vec![
                row.url.clone().into(),
                serde_json::to_string(&row.events).unwrap_or_default().into(),
                row.filter.clone().into(),
                row.description.clone().into(),
                ts(backend, row.updated_at)?,
                id(backend, row.id)?,
            ],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Deletes an endpoint and its deliveries; false when there is no such endpoint.
pub async fn delete<C: ConnectionTrait>(db: &C, webhook: Uuid) -> Result<bool> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(backend, "DELETE FROM webhook_delivery WHERE webhook_id = ?", vec![id(backend, webhook)?]))
        .await?;
    let n = db
        .execute_raw(stmt(backend, "DELETE FROM webhook WHERE id = ?", vec![id(backend, webhook)?]))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// One endpoint.
pub async fn get<C: ConnectionTrait>(db: &C, webhook: Uuid) -> Result<Option<WebhookRow>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            &format!("SELECT {COLUMNS} FROM webhook WHERE id = ?"),
            vec![id(backend, webhook)?],
        ))
        .await?;
    row.map(|row| row_to_webhook(backend, &row)).transpose()
}

/// Every endpoint, oldest first.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<WebhookRow>> {
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(stmt(backend, &format!("SELECT {COLUMNS} FROM webhook ORDER BY id"), vec![])).await?;
    rows.iter().map(|row| row_to_webhook(backend, row)).collect()
}

/// Replaces the secret, keeping the old one valid until `until`.
pub async fn rotate_secret<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    secret: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE webhook SET previous_secret = secret, previous_secret_until = ?, secret = ?, updated_at = ? \
             WHERE id = ?",
            vec![ts(backend, until)?, secret.into(), ts(backend, now)?, id(backend, webhook)?],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Enables an endpoint (its failure clock starts again, its next delivery is due now) or
/// disables it with a reason.
pub async fn set_enabled<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    enabled: bool,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE webhook SET enabled = ?, disabled_reason = ?, failing_since = NULL, updated_at = ? WHERE id = ?",
            vec![enabled.into(), reason.map(str::to_owned).into(), ts(backend, now)?, id(backend, webhook)?],
        ))
        .await?
        .rows_affected();
    if enabled {
        db.execute_raw(stmt(
            backend,
            "UPDATE webhook_delivery SET next_attempt_at = ? WHERE webhook_id = ? AND state = 'pending'",
            vec![ts(backend, now)?, id(backend, webhook)?],
        ))
        .await?;
    }
    Ok(n > 0)
}

/// Takes (or renews) the delivery lease of an endpoint for `owner` until `until`; true when
/// this process holds it now.
pub async fn lease<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE webhook SET lease_owner = ?, lease_until = ? \
             WHERE id = ? AND enabled = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
            vec![
                owner.into(),
                ts(backend, until)?,
                id(backend, webhook)?,
                true.into(),
                owner.into(),
                ts(backend, now)?,
            ],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Gives a lease up.
pub async fn release<C: ConnectionTrait>(db: &C, webhook: Uuid, owner: &str) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE webhook SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
        vec![id(backend, webhook)?, owner.into()],
    ))
    .await?;
    Ok(())
}

/// Gives up every lease `owner` holds (a process stopping).
pub async fn release_all<C: ConnectionTrait>(db: &C, owner: &str) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE webhook SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
        vec![owner.into()],
    ))
    .await?;
    Ok(())
}

/// Records whether the endpoint's last attempt failed (`failing` sets when it started failing,
/// unless it already was) or succeeded.
pub async fn set_failing<C: ConnectionTrait>(db: &C, webhook: Uuid, failing: Option<DateTime<Utc>>) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = if failing.is_some() {
        "UPDATE webhook SET failing_since = COALESCE(failing_since, ?) WHERE id = ?"
    } else {
        "UPDATE webhook SET failing_since = ? WHERE id = ?"
    };
    db.execute_raw(stmt(backend, sql, vec![ts_opt(backend, failing)?, id(backend, webhook)?])).await?;
    Ok(())
}

/// A delivery to make.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// Its id (the `webhook-id` header).
    pub id: Uuid,
    /// The outbox position of the event.
    pub seq: i64,
    /// The event id.
    pub event_id: Uuid,
    /// The event type.
    pub kind: String,
}

/// Moves the endpoint's cursor to `through` and stores the deliveries of the events it passed
/// (pending, due at once), if `owner` still holds the lease; false when it does not.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    owner: &str,
    deliveries: &[NewDelivery],
    through: i64,
    now: DateTime<Utc>,
    retry_until: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let n = db
        .execute_raw(stmt(
            backend,
            "UPDATE webhook SET cursor_seq = ? WHERE id = ? AND lease_owner = ? AND cursor_seq < ?",
            vec![through.into(), id(backend, webhook)?, owner.into(), through.into()],
        ))
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    insert_deliveries(db, webhook, deliveries, now, retry_until).await?;
    Ok(true)
}

/// Stores pending deliveries (due at once).
pub async fn insert_deliveries<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
    retry_until: DateTime<Utc>,
) -> Result<()> {
    let backend = db.get_database_backend();
    for chunk in deliveries.chunks(100) {
        let mut sql = String::from(
            "INSERT INTO webhook_delivery (id, webhook_id, seq, event_id, kind, state, attempts, next_attempt_at, \
             retry_until, created_at) VALUES ",
        );
        let mut values = Vec::with_capacity(chunk.len() * 9);
        for (i, d) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)");
            values.extend([
                id(backend, d.id)?,
                id(backend, webhook)?,
                d.seq.into(),
                id(backend, d.event_id)?,
                d.kind.clone().into(),
                ts(backend, now)?,
                ts(backend, retry_until)?,
                ts(backend, now)?,
            ]);
        }
        db.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    /// Its id: the `webhook-id` header, the same on every attempt.
    pub id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The outbox position of the event.
    pub seq: i64,
    /// The event id.
    pub event_id: Uuid,
    /// The event type.
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last response's status code.
    pub status_code: Option<i64>,
    /// How long the last attempt took.
    pub latency_ms: Option<i64>,
    /// The start of the last response's body.
    pub response: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When a pending delivery goes dead if it still fails.
    pub retry_until: DateTime<Utc>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, seq, event_id, kind, state, attempts, status_code, latency_ms, \
     response, error, next_attempt_at, retry_until, last_attempt_at, created_at";

fn row_to_delivery(backend: DbBackend, row: &QueryResult) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: get_id(backend, row, 0)?,
        webhook_id: get_id(backend, row, 1)?,
        seq: row.try_get_by_index(2)?,
        event_id: get_id(backend, row, 3)?,
        kind: row.try_get_by_index(4)?,
        state: row.try_get_by_index(5)?,
        attempts: row.try_get_by_index(6)?,
        status_code: row.try_get_by_index(7)?,
        latency_ms: row.try_get_by_index(8)?,
        response: row.try_get_by_index(9)?,
        error: row.try_get_by_index(10)?,
        next_attempt_at: get_ts(backend, row, 11)?,
        retry_until: get_ts(backend, row, 12)?.unwrap_or_default(),
        last_attempt_at: get_ts(backend, row, 13)?,
        created_at: get_ts(backend, row, 14)?.unwrap_or_default(),
    })
}

/// The endpoint's pending deliveries in outbox order (the first is the one to send next), at
/// most `limit`.
pub async fn pending<C: ConnectionTrait>(db: &C, webhook: Uuid, limit: u64) -> Result<Vec<DeliveryRow>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE webhook_id = ? AND state = 'pending' \
                 ORDER BY seq, id LIMIT {limit}"
            ),
            vec![id(backend, webhook)?],
        ))
        .await?;
    rows.iter().map(|row| row_to_delivery(backend, row)).collect()
}

/// How many deliveries of the endpoint are pending.
pub async fn pending_count<C: ConnectionTrait>(db: &C, webhook: Uuid) -> Result<i64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            "SELECT COUNT(*) FROM webhook_delivery WHERE webhook_id = ? AND state = 'pending'",
            vec![id(backend, webhook)?],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The delivery.
    pub id: Uuid,
    /// `delivered`, `pending` (to retry at `next_attempt_at`) or `dead`.
    pub state: String,
    /// Attempts made, this one included.
    pub attempts: i64,
    /// The status code, if a response came.
    pub status_code: Option<i64>,
    /// How long it took.
    pub latency_ms: i64,
    /// The start of the response body.
    pub response: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When to try again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// Records attempts' outcomes.
pub async fn record_outcomes<C: ConnectionTrait>(db: &C, outcomes: &[Outcome]) -> Result<()> {
    let backend = db.get_database_backend();
    for o in outcomes {
        db.execute_raw(stmt(
            backend,
            "UPDATE webhook_delivery SET state = ?, attempts = ?, status_code = ?, latency_ms = ?, response = ?, \
             error = ?, next_attempt_at = ?, last_attempt_at = ? WHERE id = ?",
            vec![
                o.state.clone().into(),
                o.attempts.into(),
                o.status_code.into(),
                o.latency_ms.into(),
                o.response.clone().into(),
                o.error.clone().into(),
                ts_opt(backend, o.next_attempt_at)?,
                ts(backend, o.at)?,
                id(backend, o.id)?,
            ],
        ))
        .await?;
    }
    Ok(())
}

/// A page of an endpoint's deliveries, newest first, optionally in one state, after the
/// delivery `after` (exclusive).
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    state: Option<&str>,
    first: u64,
    after: Option<Uuid>,
) -> Result<Vec<DeliveryRow>> {
    let backend = db.get_database_backend();
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE webhook_id = ?");
    let mut values = vec![id(backend, webhook)?];
    if let Some(state) = state {
        sql.push_str(" AND state = ?");
        values.push(state.into());
    }
    if let Some(after) = after {
        sql.push_str(" AND id < ?");
        values.push(id(backend, after)?);
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {first}"));
    let rows = db.query_all_raw(stmt(backend, &sql, values)).await?;
    rows.iter().map(|row| row_to_delivery(backend, row)).collect()
}

/// One delivery.
pub async fn delivery<C: ConnectionTrait>(db: &C, delivery: Uuid) -> Result<Option<DeliveryRow>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE id = ?"),
            vec![id(backend, delivery)?],
        ))
        .await?;
    row.map(|row| row_to_delivery(backend, &row)).transpose()
}

/// Which deliveries to send again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Replay {
    /// One delivery.
    One(Uuid),
    /// Those queued in `[from, to]`.
    Between(DateTime<Utc>, DateTime<Utc>),
}

/// Makes delivered or dead deliveries of an endpoint pending again (same ids, so receivers can
/// tell a replay from a new event), due now and retried until `retry_until`; how many.
pub async fn replay<C: ConnectionTrait>(
    db: &C,
    webhook: Uuid,
    which: Replay,
    now: DateTime<Utc>,
    retry_until: DateTime<Utc>,
) -> Result<u64> {
    let backend = db.get_database_backend();
    let mut sql = String::from(
        "UPDATE webhook_delivery SET state = 'pending', attempts = 0, next_attempt_at = ?, retry_until = ?, \
         error = NULL WHERE webhook_id = ? AND state IN ('delivered', 'dead')",
    );
    let mut values = vec![ts(backend, now)?, ts(backend, retry_until)?, id(backend, webhook)?];
    match which {
        Replay::One(delivery) => {
            sql.push_str(" AND id = ?");
            values.push(id(backend, delivery)?);
        }
        Replay::Between(from, to) => {
            sql.push_str(" AND created_at >= ? AND created_at <= ?");
            values.extend([ts(backend, from)?, ts(backend, to)?]);
        }
    }
    Ok(db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected())
}
