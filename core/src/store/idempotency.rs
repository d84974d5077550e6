//! `Idempotency-Key` rows (migration 13): a key reserved by a running request, the answer it
//! got, or a note that its outcome is unknown. `service::idempotency` says what they mean; here
//! are the statements, each one its own transaction on the autocommit connections.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value as DbValue};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::codec::{decode, encode};
use crate::store::plugins::stmt;

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// A request holding the key is executing (or its process died: see `expires_at`).
    Running,
    /// Its answer is stored.
    Done,
    /// Its request stopped after a write began: the answer is lost, the writes may have
    /// committed.
    Unknown,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            KeyState::Running => "running",
            KeyState::Done => "done",
            KeyState::Unknown => "unknown",
        }
    }

    fn parse(text: &str) -> Result<KeyState> {
        match text {
            "running" => Ok(KeyState::Running),
            "done" => Ok(KeyState::Done),
            "unknown" => Ok(KeyState::Unknown),
            other => Err(Error::internal(format!("idempotency key in an unknown state `{other}`"))),
        }
    }
}

/// A key someone else holds, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The body fingerprint it was reserved with.
    pub fingerprint: String,
    /// Where it stands.
    pub state: KeyState,
    /// The HTTP status of the stored answer (`Done` only).
    pub status: Option<u16>,
    /// The stored answer's body (`Done` only).
    pub response: Option<String>,
    /// When the row stops counting.
    pub expires_at: DateTime<Utc>,
}

/// What [`reserve`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is ours, as reservation `id` (a new row, or an expired one taken over).
    Taken(Uuid),
    /// Another request holds or held it, live.
    Held(KeyRow),
}

fn ts(backend: DbBackend, at: DateTime<Utc>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &Value::DateTime(at))
}

fn id(backend: DbBackend, id: Uuid) -> Result<DbValue> {
    encode(backend, &FieldKind::Id, &Value::Uuid(id))
}

fn key_row(backend: DbBackend, row: &QueryResult) -> Result<KeyRow> {
    let state: String = row.try_get_by_index(1)?;
    let status: Option<i64> = row.try_get_by_index(2)?;
    Ok(KeyRow {
        fingerprint: row.try_get_by_index(0)?,
        state: KeyState::parse(&state)?,
        status: status.and_then(|s| u16::try_from(s).ok()),
        response: row.try_get_by_index(3)?,
        expires_at: decode(backend, &FieldKind::DateTime, row, 4)?
            .as_datetime()
            .ok_or_else(|| Error::internal("idempotency key without expires_at"))?,
    })
}

/// Takes `key` for `caller` as `running` until `until`, unless a live row holds it: then that
/// row. An expired row is taken over in the same statement (the conflict's `WHERE`), so two
/// requests, in whatever processes, never both take a key.
pub async fn reserve<C: ConnectionTrait>(
    db: &C,
    caller: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Reservation> {
    let backend = db.get_database_backend();
    // The row may be released or expire between the two statements: look again, a few times.
    for _ in 0..3 {
        let reservation = Uuid::now_v7();
        let taken = db
            .execute_raw(stmt(
                backend,
                "INSERT INTO idempotency_key (id, caller, client_key, fingerprint, state, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, 'running', ?, ?) \
                 ON CONFLICT (caller, client_key) DO UPDATE SET id = excluded.id, fingerprint = excluded.fingerprint, \
                 state = 'running', status = NULL, response = NULL, created_at = excluded.created_at, \
                 expires_at = excluded.expires_at WHERE idempotency_key.expires_at <= excluded.created_at",
                vec![
                    id(backend, reservation)?,
                    caller.into(),
                    key.into(),
                    fingerprint.into(),
                    ts(backend, now)?,
                    ts(backend, until)?,
                ],
            ))
            .await?
            .rows_affected();
        if taken == 1 {
            return Ok(Reservation::Taken(reservation));
        }
        let row = db
            .query_one_raw(stmt(
                backend,
                "SELECT fingerprint, state, status, response, expires_at FROM idempotency_key \
                 WHERE caller = ? AND client_key = ?",
                vec![caller.into(), key.into()],
            ))
            .await?;
        if let Some(row) = row {
            let row = key_row(backend, &row)?;
            if row.expires_at > now {
                return Ok(Reservation::Held(row));
            }
        }
    }
    Err(Error::internal("an idempotency key kept changing while it was reserved"))
}

/// Stores the answer of reservation `id` until `until`. `false` when the reservation is no
/// longer there (it expired and another request took the key).
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    reservation: Uuid,
    status: u16,
    response: &str,
    until: DateTime<Utc>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let done = db
        .execute_raw(stmt(
            backend,
            "UPDATE idempotency_key SET state = ?, status = ?, response = ?, expires_at = ? \
             WHERE id = ? AND state = ?",
            vec![
                KeyState::Done.as_str().into(),
                i64::from(status).into(),
                response.into(),
                ts(backend, until)?,
                id(backend, reservation)?,
                KeyState::Running.as_str().into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks reservation `id` as ended with its outcome unknown, until `until`.
pub async fn mark_unknown<C: ConnectionTrait>(db: &C, reservation: Uuid, until: DateTime<Utc>) -> Result<bool> {
    let backend = db.get_database_backend();
    let marked = db
        .execute_raw(stmt(
            backend,
            "UPDATE idempotency_key SET state = ?, expires_at = ? WHERE id = ? AND state = ?",
            vec![
                KeyState::Unknown.as_str().into(),
                ts(backend, until)?,
                id(backend, reservation)?,
                KeyState::Running.as_str().into(),
            ],
        ))
        .await?;
    Ok(marked.rows_affected() == 1)
}

/// Gives the key of reservation `id` back: nothing of its request was written.
pub async fn release<C: ConnectionTrait>(db: &C, reservation: Uuid) -> Result<bool> {
    let backend = db.get_database_backend();
    let released = db
        .execute_raw(stmt(
            backend,
            "DELETE FROM idempotency_key WHERE id = ? AND state = ?",
            vec![id(backend, reservation)?, KeyState::Running.as_str().into()],
        ))
        .await?;
    Ok(released.rows_affected() == 1)
}

/// Deletes at most `limit` rows expired at `now`, oldest first; how many it deleted.
pub async fn sweep<C: ConnectionTrait>(db: &C, now: DateTime<Utc>, limit: u32) -> Result<u64> {
    let backend = db.get_database_backend();
    // `limit` is Kith's, not a caller's: written as a literal, like page sizes.
    let deleted = db
        .execute_raw(stmt(
            backend,
            &format!(
                "DELETE FROM idempotency_key WHERE id IN \
                 (SELECT id FROM idempotency_key WHERE expires_at <= ? ORDER BY expires_at LIMIT {limit})"
            ),
            vec![ts(backend, now)?],
        ))
        .await?;
    Ok(deleted.rows_affected())
}
