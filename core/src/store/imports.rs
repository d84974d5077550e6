//! Import runs (migration 14): a CSV import started through the API, its progress as it goes
//! and, once over, its counts and rejected rows. `api::import` runs the imports; here are the
//! statements, each its own transaction on the autocommit connections.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value as DbValue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::codec::{decode, encode};
use crate::store::plugins::stmt;

/// A `running` row not updated for this long belongs to a process that stopped.
pub const STALE_AFTER_MINUTES: i64 = 10;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Rows are being read and written.
    Running,
    /// Every row was read: imported or rejected.
    Done,
    /// It stopped before the end (`error` says why); the batches written before stay.
    Failed,
}

impl RunState {
    /// The stored (and GraphQL) name, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<RunState> {
        match text {
            "running" => Ok(RunState::Running),
            "done" => Ok(RunState::Done),
            "failed" => Ok(RunState::Failed),
            other => Err(Error::internal(format!("import run in an unknown state `{other}`"))),
        }
    }
}

/// A rejected row: its line, why, and its cells as read (empty when the row could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// 1-based line where the row starts (the header is line 1).
    pub line: u64,
    /// Why it was refused.
    pub reason: String,
    /// The row's cells.
    pub cells: Vec<String>,
}

/// Counts of a run so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Data rows in the file.
    pub total: u64,
    /// Data rows read.
    pub rows: u64,
    /// Records created.
    pub created: u64,
    /// Existing records updated.
    pub updated: u64,
    /// Duplicates left alone.
    pub skipped: u64,
    /// Rows refused.
    pub rejected: u64,
}

/// One run, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRun {
    /// Its id.
    pub id: Uuid,
    /// What is imported (`contacts`, `donations`, ...).
    pub object: String,
    /// The uploaded file's name.
    pub file_name: String,
    /// The id of the actor that started it.
    pub owner: String,
    /// Where it stands (a stale `running` row reads as `Failed`).
    pub state: RunState,
    /// Its counts.
    pub counts: Counts,
    /// The file's header row.
    pub header: Vec<String>,
    /// Rejected rows (after the run).
    pub rejected: Vec<RejectedRow>,
    /// Columns that mapped to no field.
    pub ignored_columns: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

fn ts(backend: DbBackend, at: DateTime<Utc>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &Value::DateTime(at))
}

fn id(backend: DbBackend, id: Uuid) -> Result<DbValue> {
    encode(backend, &FieldKind::Id, &Value::Uuid(id))
}

fn count(n: u64) -> DbValue {
    i64::try_from(n).unwrap_or(i64::MAX).into()
}

fn json_text<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot encode an import run: {e}")))
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// Its id.
    pub id: Uuid,
    /// What is imported.
    pub object: &'a str,
    /// The uploaded file's name.
    pub file_name: &'a str,
    /// The id of the actor starting it.
    pub owner: &'a str,
    /// The file's header row.
    pub header: &'a [String],
    /// The file's data rows.
    pub total: u64,
}

/// Starts a run `running`, with nothing counted yet.
pub async fn insert<C: ConnectionTrait>(db: &C, run: NewRun<'_>, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "INSERT INTO import_run (id, object, file_name, owner, state, total, rows, created, updated, \
         skipped, rejected_count, header, rejected, ignored_columns, created_at, updated_at) \
         VALUES (?, ?, ?, ?, 'running', ?, 0, 0, 0, 0, 0, ?, '[]', '[]', ?, ?)",
        vec![
            id(backend, run.id)?,
            run.object.into(),
            run.file_name.into(),
            run.owner.into(),
            count(run.total),
            json_text(&run.header)?.into(),
            ts(backend, now)?,
            ts(backend, now)?,
        ],
    ))
    .await?;
    Ok(())
}

/// Records the counts of a running run.
pub async fn progress<C: ConnectionTrait>(db: &C, run: Uuid, counts: Counts, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE import_run SET rows = ?, created = ?, updated = ?, skipped = ?, rejected_count = ?, updated_at = ? \
         WHERE id = ? AND state = 'running'",
        vec![
            count(counts.rows),
            count(counts.created),
            count(counts.updated),
            count(counts.skipped),
            count(counts.rejected),
            ts(backend, now)?,
            id(backend, run)?,
        ],
    ))
    .await?;
    Ok(())
}

/// Ends a run: `Done` with its final counts and rejected rows, or `Failed` with `error`.
#[allow(clippy::too_many_arguments)]
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    run: Uuid,
    state: RunState,
    counts: Counts,
    rejected: &[RejectedRow],
    ignored_columns: &[String],
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE import_run SET state = ?, rows = ?, created = ?, updated = ?, skipped = ?, rejected_count = ?, \
         rejected = ?, ignored_columns = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
        vec![
            state.as_str().into(),
            count(counts.rows),
            count(counts.created),
            count(counts.updated),
            count(counts.skipped),
            count(counts.rejected),
            json_text(&rejected)?.into(),
            json_text(&ignored_columns)?.into(),
            error.map(str::to_owned).into(),
            ts(backend, now)?,
            ts(backend, now)?,
            id(backend, run)?,
        ],
    ))
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, object, file_name, owner, state, total, rows, created, updated, skipped, rejected_count, header, \
                       rejected, ignored_columns, error, created_at, updated_at, finished_at";

fn decode_run(backend: DbBackend, row: &QueryResult, now: DateTime<Utc>) -> Result<ImportRun> {
    let n = |idx: usize| -> Result<u64> { Ok(u64::try_from(row.try_get_by_index::<i64>(idx)?).unwrap_or(0)) };
    let list = |idx: usize| -> Result<String> { Ok(row.try_get_by_index::<String>(idx)?) };
    let at = |idx: usize| -> Result<Option<DateTime<Utc>>> {
        Ok(decode(backend, &FieldKind::DateTime, row, idx)?.as_datetime())
    };
    let broken = |what: &str| Error::internal(format!("import run with unreadable {what}"));
    let updated_at = at(16)?.ok_or_else(|| broken("updated_at"))?;
    let mut state = RunState::parse(&row.try_get_by_index::<String>(4)?)?;
    let mut error: Option<String> = row.try_get_by_index(14)?;
    if state == RunState::Running && now - updated_at > Duration::minutes(STALE_AFTER_MINUTES) {
        state = RunState::Failed;
        error = Some(format!(
            "interrupted: the Kith process running it stopped (no progress for {STALE_AFTER_MINUTES} minutes); \
             the rows counted as created were imported"
        ));
    }
    Ok(ImportRun {
        id: decode(backend, &FieldKind::Id, row, 0)?.as_uuid().ok_or_else(|| broken("id"))?,
        object: row.try_get_by_index(1)?,
        file_name: row.try_get_by_index(2)?,
        owner: row.try_get_by_index(3)?,
        state,
        counts: Counts { total: n(5)?, rows: n(6)?, created: n(7)?, updated: n(8)?, skipped: n(9)?, rejected: n(10)? },
        header: serde_json::from_str(&list(11)?).map_err(|_| broken("header"))?,
        rejected: serde_json::from_str(&list(12)?).map_err(|_| broken("rejected rows"))?,
        ignored_columns: serde_json::from_str(&list(13)?).map_err(|_| broken("ignored columns"))?,
        error,
        created_at: at(15)?.ok_or_else(|| broken("created_at"))?,
        updated_at,
        finished_at: at(17)?,
    })
}

/// The run `run`.
pub async fn get<C: ConnectionTrait>(db: &C, run: Uuid, now: DateTime<Utc>) -> Result<Option<ImportRun>> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(stmt(
            backend,
            &format!("SELECT {COLUMNS} FROM import_run WHERE id = ?"),
            vec![id(backend, run)?],
        ))
        .await?;
    row.map(|row| decode_run(backend, &row, now)).transpose()
}

/// The latest `limit` runs, of `owner` only when given, newest first.
pub async fn latest<C: ConnectionTrait>(
    db: &C,
    owner: Option<&str>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<ImportRun>> {
    let backend = db.get_database_backend();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match owner {
        Some(owner) => {
            db.query_all_raw(stmt(
                backend,
                &format!("SELECT {COLUMNS} FROM import_run WHERE owner = ? ORDER BY created_at DESC, id DESC LIMIT ?"),
                vec![owner.into(), limit.into()],
            ))
            .await?
        }
        None => {
            db.query_all_raw(stmt(
                backend,
                &format!("SELECT {COLUMNS} FROM import_run ORDER BY created_at DESC, id DESC LIMIT ?"),
                vec![limit.into()],
            ))
            .await?
        }
    };
    rows.iter().map(|row| decode_run(backend, row, now)).collect()
}
