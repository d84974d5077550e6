//! The mail queue (migration 19): messages queued in their sender's transaction, leased by one
//! process at a time for sending, and their outcomes. `crate::mail` builds and sends them.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value as DbValue};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::Tx;
use crate::store::codec::{decode, encode};
use crate::store::plugins::stmt;

fn ts(backend: DbBackend, at: DateTime<Utc>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &Value::DateTime(at))
}

fn id(backend: DbBackend, id: Uuid) -> Result<DbValue> {
    encode(backend, &FieldKind::Id, &Value::Uuid(id))
}

fn get_id(backend: DbBackend, row: &QueryResult, idx: usize) -> Result<Uuid> {
    decode(backend, &FieldKind::Id, row, idx)?.as_uuid().ok_or_else(|| Error::internal("a mail row without an id"))
}

fn get_ts(backend: DbBackend, row: &QueryResult, idx: usize) -> Result<Option<DateTime<Utc>>> {
    Ok(match decode(backend, &FieldKind::DateTime, row, idx)? {
        Value::DateTime(at) => Some(at),
        _ => None,
    })
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    /// Waiting to be sent (again).
    Queued,
    /// The relay accepted it.
    Sent,
    /// Refused for good, or still failing after the last attempt.
    Failed,
}

impl MailState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => "queued",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<MailState> {
        match text {
            "queued" => Ok(MailState::Queued),
            "sent" => Ok(MailState::Sent),
            "failed" => Ok(MailState::Failed),
            other => Err(Error::internal(format!("a mail message in an unknown state `{other}`"))),
        }
    }
}

/// A message to queue, built already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its queue id.
    pub id: Uuid,
    /// The plugin that queued it.
    pub plugin_id: String,
    /// Its `Message-ID`, without angle brackets.
    pub message_id: String,
    /// The envelope's sender address.
    pub sender: String,
    /// The envelope's recipient address.
    pub recipient: String,
    /// Its subject, for the admin's list.
    pub subject: String,
    /// The whole message (RFC 5322).
    pub message: String,
    /// The plugin's own reference.
    pub reference: Option<String>,
}

/// Queues `message` in `tx`: sent once `tx` commits.
pub async fn queue(tx: &Tx, message: &NewMessage) -> Result<()> {
    queue_many(tx, std::slice::from_ref(message)).await
}

/// Queues `messages` in `tx` (with multi-row inserts): sent once `tx` commits.
pub async fn queue_many(tx: &Tx, messages: &[NewMessage]) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let backend = tx.backend();
    let now = ts(backend, tx.now)?;
    let mut rows = Vec::with_capacity(messages.len());
    for message in messages {
        rows.push(vec![
            id(backend, message.id)?,
            message.plugin_id.as_str().into(),
            message.message_id.as_str().into(),
            message.sender.as_str().into(),
            message.recipient.as_str().into(),
            message.subject.as_str().into(),
            message.message.as_str().into(),
            message.reference.clone().into(),
            MailState::Queued.as_str().into(),
            0i32.into(),
            now.clone(),
            now.clone(),
        ]);
    }
    crate::store::codec::insert_rows(
        tx.conn(),
        "mail_message",
        &[
            "id",
            "plugin_id",
            "message_id",
            "sender",
            "recipient",
            "subject",
            "message",
            "reference",
            "state",
            "attempts",
            "next_attempt_at",
            "created_at",
        ],
        rows,
    )
    .await
}

/// A message leased for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Its queue id.
    pub id: Uuid,
    /// The plugin that queued it.
    pub plugin_id: String,
    /// Its `Message-ID`.
    pub message_id: String,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// The whole message.
    pub message: String,
    /// The plugin's reference.
    pub reference: Option<String>,
    /// Attempts before this one.
    pub attempts: i64,
}

/// Leases up to `limit` messages due at `now` to `owner` until `until`, oldest due first. Two
/// processes never lease the same message while its lease runs.
pub async fn lease_due<C: ConnectionTrait>(
    db: &C,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Leased>> {
    let backend = db.get_database_backend();
    let skip_locked = if backend == DbBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE mail_message SET lease_owner = ?, lease_until = ? WHERE id IN (\
           SELECT id FROM mail_message WHERE state = ? AND next_attempt_at <= ? \
             AND (lease_until IS NULL OR lease_until < ?) \
           ORDER BY next_attempt_at LIMIT {limit}{skip_locked}) \
         AND state = ? AND (lease_until IS NULL OR lease_until < ?) \
         RETURNING id, plugin_id, message_id, sender, recipient, message, reference, attempts"
    );
    let queued: DbValue = MailState::Queued.as_str().into();
    let rows = db
        .query_all_raw(stmt(
            backend,
            &sql,
            vec![
                owner.into(),
                ts(backend, until)?,
                queued.clone(),
                ts(backend, now)?,
                ts(backend, now)?,
                queued,
                ts(backend, now)?,
            ],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(Leased {
            id: get_id(backend, row, 0)?,
            plugin_id: row.try_get_by_index(1)?,
            message_id: row.try_get_by_index(2)?,
            sender: row.try_get_by_index(3)?,
            recipient: row.try_get_by_index(4)?,
            message: row.try_get_by_index(5)?,
            reference: row.try_get_by_index(6)?,
            attempts: row.try_get_by_index(7)?,
        });
    }
    Ok(out)
}

/// Records that the relay accepted the message; false when `owner` no longer holds its lease
/// (another process took it over: that one records the outcome).
pub async fn mark_sent(tx: &Tx, message: Uuid, owner: &str) -> Result<bool> {
    let backend = tx.backend();
    let n = tx
        .conn()
        .execute_raw(stmt(
            backend,
            "UPDATE mail_message SET state = ?, attempts = attempts + 1, sent_at = ?, last_error = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            vec![MailState::Sent.as_str().into(), ts(backend, tx.now)?, id(backend, message)?, owner.into()],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// [`mark_sent`] for many messages, a statement per 500: the ids it recorded (those whose
/// lease `owner` still held).
pub async fn mark_sent_many(tx: &Tx, messages: &[Uuid], owner: &str) -> Result<std::collections::HashSet<Uuid>> {
    let backend = tx.backend();
    let mut recorded = std::collections::HashSet::with_capacity(messages.len());
    for chunk in messages.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut values = vec![MailState::Sent.as_str().into(), ts(backend, tx.now)?, owner.into()];
        for message in chunk {
            values.push(id(backend, *message)?);
        }
        let sql = format!(
            "UPDATE mail_message SET state = ?, attempts = attempts + 1, sent_at = ?, last_error = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND id IN ({marks}) RETURNING id"
        );
        for row in tx.conn().query_all_raw(stmt(backend, &sql, values)).await? {
            recorded.insert(get_id(backend, &row, 0)?);
        }
    }
    Ok(recorded)
}

/// Records a failure for good; false when `owner` no longer holds the lease.
pub async fn mark_failed(tx: &Tx, message: Uuid, owner: &str, error: &str) -> Result<bool> {
    let backend = tx.backend();
    let n = tx
        .conn()
        .execute_raw(stmt(
            backend,
            "UPDATE mail_message SET state = ?, attempts = attempts + 1, last_error = ?, \
             lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            vec![MailState::Failed.as_str().into(), error.into(), id(backend, message)?, owner.into()],
        ))
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Records a temporary failure: tried again at `next_attempt_at`.
pub async fn retry_later<C: ConnectionTrait>(
    db: &C,
    message: Uuid,
    owner: &str,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE mail_message SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, \
         lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
        vec![ts(backend, next_attempt_at)?, error.into(), id(backend, message)?, owner.into()],
    ))
    .await?;
    Ok(())
}

/// Gives up every lease `owner` holds (a process stopping): its messages are due again at once.
pub async fn release_all<C: ConnectionTrait>(db: &C, owner: &str) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE mail_message SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND state = ?",
        vec![owner.into(), MailState::Queued.as_str().into()],
    ))
    .await?;
    Ok(())
}

/// A message as the admin sees it (without its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    /// Its queue id.
    pub id: Uuid,
    /// The plugin that queued it.
    pub plugin_id: String,
    /// Its `Message-ID`.
    pub message_id: String,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// Its subject.
    pub subject: String,
    /// The plugin's reference.
    pub reference: Option<String>,
    /// Where it stands.
    pub state: MailState,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Option<DateTime<Utc>>,
    /// When the relay accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it is tried next (queued messages).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The newest messages, newest first: of one plugin, in one state, as asked.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    plugin: Option<&str>,
    state: Option<MailState>,
    limit: u64,
) -> Result<Vec<MailRow>> {
    let backend = db.get_database_backend();
    let mut sql = String::from(
        "SELECT id, plugin_id, message_id, sender, recipient, subject, reference, state, attempts, last_error, \
         created_at, sent_at, next_attempt_at FROM mail_message WHERE 1 = 1",
    );
    let mut values: Vec<DbValue> = Vec::new();
    if let Some(plugin) = plugin {
        sql.push_str(" AND plugin_id = ?");
        values.push(plugin.into());
    }
    if let Some(state) = state {
        sql.push_str(" AND state = ?");
        values.push(state.as_str().into());
    }
    sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {}", limit.min(1_000)));
    let rows = db.query_all_raw(stmt(backend, &sql, values)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: String = row.try_get_by_index(7)?;
        out.push(MailRow {
            id: get_id(backend, row, 0)?,
            plugin_id: row.try_get_by_index(1)?,
            message_id: row.try_get_by_index(2)?,
            sender: row.try_get_by_index(3)?,
            recipient: row.try_get_by_index(4)?,
            subject: row.try_get_by_index(5)?,
            reference: row.try_get_by_index(6)?,
            state: MailState::parse(&state)?,
            attempts: row.try_get_by_index(8)?,
            last_error: row.try_get_by_index(9)?,
            created_at: get_ts(backend, row, 10)?,
            sent_at: get_ts(backend, row, 11)?,
            next_attempt_at: get_ts(backend, row, 12)?,
        });
    }
    Ok(out)
}

/// How many messages are in each state.
pub async fn counts<C: ConnectionTrait>(db: &C) -> Result<Vec<(MailState, i64)>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(backend, "SELECT state, COUNT(*) FROM mail_message GROUP BY state ORDER BY state", vec![]))
        .await?;
    let mut out = Vec::new();
    for row in &rows {
        let state: String = row.try_get_by_index(0)?;
        out.push((MailState::parse(&state)?, row.try_get_by_index(1)?));
    }
    Ok(out)
}
