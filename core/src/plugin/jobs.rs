//! The job scheduler: runs the `[[jobs]]` of active plugins on their cron schedules, at most one
//! run of a job at a time across every Kith process (a lease row in `plugin_job`), records each
//! run (status, duration, error), and applies the declared policy to runs missed while no
//! process was up: `skip` them, or `catch-up` with one run.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::value::format_datetime;
use crate::plugin::PluginError;
use crate::plugin::PluginManager;
use crate::plugin::extension::{JobSpec, MissedRuns};
use crate::plugin::manifest::Manifest;
use crate::plugin::runtime::LoadedPlugin;
use crate::store::jobs::{self, JobRun};

/// A scheduled time more than this far in the past was missed (no process was up to run it).
pub const MISSED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How often each process looks for due jobs.
const TICK: Duration = Duration::from_secs(1);

/// Brings the job rows of `manifest`'s plugin in line with its declared jobs.
pub async fn sync(manager: &PluginManager, manifest: &Manifest) -> Result<(), PluginError> {
    let now = Utc::now();
    let mut declared = Vec::new();
    for job in &manifest.jobs {
        let schedule = job.schedule()?;
        declared.push((job.name.clone(), job.schedule.clone(), schedule.next_after(now)));
    }
    jobs::sync(manager.kith.store.conn(), &manifest.id, &declared).await?;
    Ok(())
}

/// Starts the scheduler task of this process; it ends when the manager stops or is dropped.
pub fn spawn(manager: Weak<PluginManager>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(m) = manager.upgrade() else { return };
            if !m.is_running() {
                return;
            }
            if let Err(err) = tick(&m).await {
                tracing::warn!(error = %err, "job scheduler");
            }
        }
    });
}

/// Starts every due job of an active plugin (each in its own task).
pub async fn tick(manager: &Arc<PluginManager>) -> Result<(), PluginError> {
    let now = Utc::now();
    let active: Vec<String> =
        manager.active().iter().filter(|p| !p.manifest.jobs.is_empty()).map(|p| p.id().to_owned()).collect();
    for row in jobs::due(manager.kith.store.conn(), &active, now).await? {
        let Some(plugin) = manager.loaded(&row.plugin_id).filter(|p| p.active) else { continue };
        let Some(spec) = plugin.manifest.jobs.iter().find(|j| j.name == row.job).cloned() else { continue };
        let Some(due) = row.next_run_at else { continue };
        let manager = manager.clone();
        tokio::spawn(async move {
            if let Err(err) = scheduled(&manager, &plugin, &spec, due).await {
                tracing::warn!(plugin = %plugin.id(), job = %spec.name, error = %err, "scheduled job");
            }
        });
    }
    Ok(())
}

fn lease_for(spec: &JobSpec) -> chrono::TimeDelta {
    chrono::TimeDelta::milliseconds(i64::try_from(spec.timeout_ms).unwrap_or(60_000) * 2 + 30_000)
}

/// One scheduled (or missed) run, if this process wins the lease.
async fn scheduled(
    manager: &PluginManager,
    plugin: &LoadedPlugin,
    spec: &JobSpec,
    due: DateTime<Utc>,
) -> Result<(), PluginError> {
    let db = manager.kith.store.conn();
    let now = Utc::now();
    if !jobs::take(db, plugin.id(), &spec.name, &manager.owner, now, now + lease_for(spec), Some(due)).await? {
        return Ok(());
    }
    let outcome = run_or_skip(manager, plugin, spec, due, now).await;
    // The lease goes back whatever happened; the job moves on to its next time.
    let next = spec.schedule().ok().and_then(|s| s.next_after(now));
    jobs::release(db, plugin.id(), &spec.name, &manager.owner, Some(next), outcome.as_ref().ok().copied().flatten())
        .await?;
    outcome.map(|_| ())
}

/// A scheduled run, or the record of a skipped one; the time it ran, if it did.
async fn run_or_skip(
    manager: &PluginManager,
    plugin: &LoadedPlugin,
    spec: &JobSpec,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, PluginError> {
    let db = manager.kith.store.conn();
    let missed = now - due > MISSED_AFTER;
    if missed && spec.missed == MissedRuns::Skip {
        let run = JobRun {
            id: uuid::Uuid::now_v7(),
            plugin_id: plugin.id().to_owned(),
            job: spec.name.clone(),
            trigger: "schedule".into(),
            scheduled_for: due,
            started_at: now,
            finished_at: Some(now),
            duration_ms: Some(0),
            status: "skipped".into(),
            error: Some("missed while no Kith process was running (missed = \"skip\")".into()),
        };
        jobs::record_run(db, &run).await?;
        tracing::info!(plugin = %plugin.id(), job = %spec.name, due = %format_datetime(due), "skipped a missed run");
        return Ok(None);
    }
    let trigger = if missed { "catch-up" } else { "schedule" };
    execute(manager, plugin, spec, trigger, due).await.map(|_| Some(now))
}

/// Runs `job` of `plugin` now, by hand (CLI or GraphQL), waiting for it to finish. Refused
/// while another run of it holds the lease.
pub async fn run_now(manager: &PluginManager, plugin_id: &str, job: &str) -> Result<JobRun, PluginError> {
    let plugin = manager
        .loaded(plugin_id)
        .filter(|p| p.active)
        .ok_or_else(|| PluginError::invalid(format!("plugin `{plugin_id}` is not enabled and active")))?;
    let spec = plugin
        .manifest
        .jobs
        .iter()
        .find(|j| j.name == job)
        .cloned()
        .ok_or_else(|| PluginError::invalid(format!("plugin `{plugin_id}` declares no job `{job}`")))?;
    sync(manager, &plugin.manifest).await?;
    let db = manager.kith.store.conn();
    let now = Utc::now();
    if !jobs::take(db, plugin_id, job, &manager.owner, now, now + lease_for(&spec), None).await? {
        return Err(PluginError::Conflict(format!("job `{job}` of `{plugin_id}` is running already")));
    }
    let outcome = execute(manager, &plugin, &spec, "manual", now).await;
    jobs::release(db, plugin_id, job, &manager.owner, None, Some(now)).await?;
    outcome
}

async fn execute(
    manager: &PluginManager,
    plugin: &LoadedPlugin,
    spec: &JobSpec,
    trigger: &str,
    scheduled_for: DateTime<Utc>,
) -> Result<JobRun, PluginError> {
    let db = manager.kith.store.conn();
    let started_at = Utc::now();
    let mut run = JobRun {
        id: uuid::Uuid::now_v7(),
        plugin_id: plugin.id().to_owned(),
        job: spec.name.clone(),
        trigger: trigger.to_owned(),
        scheduled_for,
        started_at,
        finished_at: None,
        duration_ms: None,
        status: "running".into(),
        error: None,
    };
    jobs::record_run(db, &run).await?;
    let clock = Instant::now();
    let budget = Duration::from_millis(spec.timeout_ms);
    // A batch job runs again while its runs write, within its budget in all (each run has the
    // whole budget, so the last may end at twice it: the lease allows for that).
    let mut batches = 0u32;
    let result = loop {
        let result = plugin.call_job(&spec.name, &format_datetime(scheduled_for), budget).await;
        batches += 1;
        match result {
            Ok(Ok(true)) if spec.batches && clock.elapsed() < budget && manager.is_running() => continue,
            other => break other,
        }
    };
    if batches > 1 {
        tracing::info!(plugin = %plugin.id(), job = %spec.name, batches, "batch job ran");
    }
    let (status, error) = match result {
        Ok(Ok(_)) => ("succeeded", None),
        Ok(Err(message)) => ("failed", Some(message.chars().take(2_000).collect::<String>())),
        Err(failure) => ("failed", Some(failure.to_string())),
    };
    let finished_at = Utc::now();
    metrics::counter!("kith_job_runs_total", "plugin" => plugin.id().to_owned(), "job" => spec.name.clone(), "outcome" => status)
        .increment(1);
    metrics::histogram!("kith_job_duration_seconds", "plugin" => plugin.id().to_owned(), "job" => spec.name.clone())
        .record(clock.elapsed().as_secs_f64());
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    jobs::finish_run(db, run.id, finished_at, duration_ms, status, error.as_deref()).await?;
    if let Some(error) = &error {
        tracing::warn!(plugin = %plugin.id(), job = %spec.name, %error, "job failed");
    }
    run.finished_at = Some(finished_at);
    run.duration_ms = Some(duration_ms);
    run.status = status.to_owned();
    run.error = error;
    Ok(run)
}

/// A declared job with its scheduling state, for `kith plugin jobs` and GraphQL.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// The declaration.
    pub spec: JobSpec,
    /// Its state (`None` until a process running the plugin scheduled it).
    pub state: Option<jobs::JobRow>,
}

/// The jobs `plugin_id` declares.
pub async fn list(manager: &PluginManager, plugin_id: &str) -> Result<Vec<JobInfo>, PluginError> {
    let row = manager.get(plugin_id).await?;
    let manifest = Manifest::parse(&row.manifest)?;
    let states = jobs::list(manager.kith.store.conn(), plugin_id).await?;
    Ok(manifest
        .jobs
        .into_iter()
        .map(|spec| {
            let state = states.iter().find(|s| s.job == spec.name).cloned();
            JobInfo { spec, state }
        })
        .collect())
}

/// The latest runs of `plugin_id`'s jobs (or of one job), newest first.
pub async fn history(
    manager: &PluginManager,
    plugin_id: &str,
    job: Option<&str>,
    limit: u64,
) -> Result<Vec<JobRun>, PluginError> {
    manager.get(plugin_id).await?;
    Ok(jobs::runs(manager.kith.store.conn(), plugin_id, job, limit).await?)
}

/// Runs a job by hand for `actor` (audited), waiting for it to finish.
pub async fn trigger(
    manager: &PluginManager,
    actor: &crate::domain::actor::Actor,
    plugin_id: &str,
    job: &str,
) -> Result<JobRun, PluginError> {
    manager.get(plugin_id).await?;
    let run = run_now(manager, plugin_id, job).await?;
    let tx = manager.kith.store.begin(actor).await?;
    crate::store::audit::record(
        &tx,
        "plugin.run_job",
        "plugin",
        None,
        serde_json::json!({"plugin": plugin_id, "job": job, "run": run.id.to_string(), "status": run.status}),
    )
    .await?;
    tx.commit().await?;
    Ok(run)
}
