//! Scheduled plugin jobs: their next run time, the lease that keeps one run at a time across
//! every Kith process on the database, and their run history.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value as DbValue};
use uuid::Uuid;

use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::store::codec::{decode, encode};
use crate::store::plugins::stmt;

fn ts(backend: DbBackend, at: DateTime<Utc>) -> Result<DbValue> {
    encode(backend, &FieldKind::DateTime, &Value::DateTime(at))
}

fn opt_ts(backend: DbBackend, at: Option<DateTime<Utc>>) -> Result<DbValue> {
    match at {
        Some(at) => ts(backend, at),
        None => encode(backend, &FieldKind::DateTime, &Value::Null),
    }
}

fn get_ts(backend: DbBackend, row: &QueryResult, idx: usize) -> Result<Option<DateTime<Utc>>> {
    Ok(decode(backend, &FieldKind::DateTime, row, idx)?.as_datetime())
}

/// A declared job's scheduling state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// The plugin.
    pub plugin_id: String,
    /// The job.
    pub job: String,
    /// Its schedule, as declared when the row was last synced.
    pub schedule: String,
    /// When it runs next (`None`: never, e.g. `0 0 31 2 *`).
    pub next_run_at: Option<DateTime<Utc>>,
    /// When it last ran.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The lease's end, while a run holds it.
    pub lease_until: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str = "plugin_id, job, schedule, next_run_at, last_run_at, lease_until";

fn job_row(backend: DbBackend, row: &QueryResult) -> Result<JobRow> {
    Ok(JobRow {
        plugin_id: row.try_get_by_index(0)?,
        job: row.try_get_by_index(1)?,
        schedule: row.try_get_by_index(2)?,
        next_run_at: get_ts(backend, row, 3)?,
        last_run_at: get_ts(backend, row, 4)?,
        lease_until: get_ts(backend, row, 5)?,
    })
}

/// The jobs of `plugin`, by name.
pub async fn list<C: ConnectionTrait>(db: &C, plugin: &str) -> Result<Vec<JobRow>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(stmt(
            backend,
            &format!("SELECT {JOB_COLUMNS} FROM plugin_job WHERE plugin_id = ? ORDER BY job"),
            vec![plugin.into()],
        ))
        .await?;
    rows.iter().map(|row| job_row(backend, row)).collect()
}

/// Jobs of `plugins` due at `now` whose lease is free, oldest first.
pub async fn due<C: ConnectionTrait>(db: &C, plugins: &[String], now: DateTime<Utc>) -> Result<Vec<JobRow>> {
    if plugins.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let marks = vec!["?"; plugins.len()].join(", ");
    let mut values: Vec<DbValue> = vec![ts(backend, now)?, ts(backend, now)?];
    values.extend(plugins.iter().map(|p| DbValue::from(p.as_str())));
    let rows = db
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT {JOB_COLUMNS} FROM plugin_job WHERE next_run_at <= ? AND (lease_until IS NULL OR lease_until < ?) \
                 AND plugin_id IN ({marks}) ORDER BY next_run_at LIMIT 100"
            ),
            values,
        ))
        .await?;
    rows.iter().map(|row| job_row(backend, row)).collect()
}

/// Makes the rows of `plugin` match its declared jobs: `(name, schedule, first run)`. A new
/// job or a changed schedule gets `first run` as its next run; jobs no longer declared go.
pub async fn sync<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    declared: &[(String, String, Option<DateTime<Utc>>)],
) -> Result<()> {
    let backend = db.get_database_backend();
    let existing = list(db, plugin).await?;
    for (name, schedule, first) in declared {
        match existing.iter().find(|row| &row.job == name) {
            Some(row) if &row.schedule == schedule => {}
            Some(_) => {
                db.execute_raw(stmt(
                    backend,
                    "UPDATE plugin_job SET schedule = ?, next_run_at = ? WHERE plugin_id = ? AND job = ?",
                    vec![schedule.as_str().into(), opt_ts(backend, *first)?, plugin.into(), name.as_str().into()],
                ))
                .await?;
            }
            None => {
                // Another process may insert the same row at the same moment: keep theirs.
                db.execute_raw(stmt(
                    backend,
                    "INSERT INTO plugin_job (plugin_id, job, schedule, next_run_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (plugin_id, job) DO NOTHING",
                    vec![plugin.into(), name.as_str().into(), schedule.as_str().into(), opt_ts(backend, *first)?],
                ))
                .await?;
            }
        }
    }
    for row in existing.iter().filter(|row| !declared.iter().any(|(name, _, _)| name == &row.job)) {
        db.execute_raw(stmt(
            backend,
            "DELETE FROM plugin_job WHERE plugin_id = ? AND job = ?",
            vec![plugin.into(), row.job.as_str().into()],
        ))
        .await?;
    }
    Ok(())
}

/// Takes the lease of a job for `owner` until `until` if nobody holds it — and, for a
/// scheduled run, only while the job is still due at `due` (another process that ran it
/// already moved `next_run_at` on); whether it did.
pub async fn take<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    job: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    due: Option<DateTime<Utc>>,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let mut sql = "UPDATE plugin_job SET lease_owner = ?, lease_until = ? \
                   WHERE plugin_id = ? AND job = ? AND (lease_until IS NULL OR lease_until < ?)"
        .to_owned();
    let mut values = vec![owner.into(), ts(backend, until)?, plugin.into(), job.into(), ts(backend, now)?];
    if let Some(due) = due {
        sql.push_str(" AND next_run_at = ?");
        values.push(ts(backend, due)?);
    }
    let taken = db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected();
    Ok(taken == 1)
}

/// Gives the lease back and, for scheduled runs, moves the job to its next run.
pub async fn release<C: ConnectionTrait>(
    db: &C,
    plugin: &str,
    job: &str,
    owner: &str,
    next_run_at: Option<Option<DateTime<Utc>>>,
    ran_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let backend = db.get_database_backend();
    let mut sets = vec!["lease_owner = NULL", "lease_until = NULL"];
    let mut values = Vec::new();
    if let Some(next) = next_run_at {
        sets.push("next_run_at = ?");
        values.push(opt_ts(backend, next)?);
    }
    if let Some(at) = ran_at {
        sets.push("last_run_at = ?");
        values.push(ts(backend, at)?);
    }
    values.extend([plugin.into(), job.into(), owner.into()]);
    db.execute_raw(stmt(
        backend,
        &format!("UPDATE plugin_job SET {} WHERE plugin_id = ? AND job = ? AND lease_owner = ?", sets.join(", ")),
        values,
    ))
    .await?;
    Ok(())
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// The run's id.
    pub id: Uuid,
    /// The plugin.
    pub plugin_id: String,
    /// The job.
    pub job: String,
    /// `schedule`, `catch-up` or `manual`.
    pub trigger: String,
    /// The time it was due.
    pub scheduled_for: DateTime<Utc>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// `running`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}

/// Records a run (finished or not).
pub async fn record_run<C: ConnectionTrait>(db: &C, run: &JobRun) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "INSERT INTO plugin_job_run (id, plugin_id, job, trigger, scheduled_for, started_at, finished_at, duration_ms, status, error) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            encode(backend, &FieldKind::Id, &Value::Uuid(run.id))?,
            run.plugin_id.as_str().into(),
            run.job.as_str().into(),
            run.trigger.as_str().into(),
            ts(backend, run.scheduled_for)?,
            ts(backend, run.started_at)?,
            opt_ts(backend, run.finished_at)?,
            run.duration_ms.into(),
            run.status.as_str().into(),
            run.error.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Records how a run ended.
pub async fn finish_run<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    finished_at: DateTime<Utc>,
    duration_ms: i64,
    status: &str,
    error: Option<&str>,
) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(stmt(
        backend,
        "UPDATE plugin_job_run SET finished_at = ?, duration_ms = ?, status = ?, error = ? WHERE id = ?",
        vec![
            ts(backend, finished_at)?,
            duration_ms.into(),
            status.into(),
            error.map(str::to_owned).into(),
            encode(backend, &FieldKind::Id, &Value::Uuid(id))?,
        ],
    ))
    .await?;
    Ok(())
}

/// The latest runs of a plugin's jobs (of one job when `job` is given), newest first.
pub async fn runs<C: ConnectionTrait>(db: &C, plugin: &str, job: Option<&str>, limit: u64) -> Result<Vec<JobRun>> {
    let backend = db.get_database_backend();
    let mut sql =
        "SELECT id, plugin_id, job, trigger, scheduled_for, started_at, finished_at, duration_ms, status, error \
                   FROM plugin_job_run WHERE plugin_id = ?"
            .to_owned();
    let mut values: Vec<DbValue> = vec![plugin.into()];
    if let Some(job) = job {
        sql.push_str(" AND job = ?");
        values.push(job.into());
    }
    sql.push_str(&format!(" ORDER BY started_at DESC, id DESC LIMIT {}", limit.min(1_000)));
    let rows = db.query_all_raw(stmt(backend, &sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(JobRun {
                id: decode(backend, &FieldKind::Id, row, 0)?.as_uuid().unwrap_or_default(),
                plugin_id: row.try_get_by_index(1)?,
                job: row.try_get_by_index(2)?,
                trigger: row.try_get_by_index(3)?,
                scheduled_for: get_ts(backend, row, 4)?.unwrap_or_default(),
                started_at: get_ts(backend, row, 5)?.unwrap_or_default(),
                finished_at: get_ts(backend, row, 6)?,
                duration_ms: row.try_get_by_index(7)?,
                status: row.try_get_by_index(8)?,
                error: row.try_get_by_index(9)?,
            })
        })
        .collect()
}

/// Forgets a plugin's job schedule (uninstall) and, with `history`, its run history.
pub async fn purge<C: ConnectionTrait>(db: &C, plugin: &str, history: bool) -> Result<()> {
    let backend = db.get_database_backend();
    let tables: &[&str] = if history { &["plugin_job_run", "plugin_job"] } else { &["plugin_job"] };
    for table in tables {
        db.execute_raw(stmt(backend, &format!("DELETE FROM {table} WHERE plugin_id = ?"), vec![plugin.into()])).await?;
    }
    Ok(())
}
