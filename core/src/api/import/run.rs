//! The background half of an import: reads and writes the rows (`service::import::import_csv`
//! for contacts and companies, the plugin's `import<Things>` mutation for plugin imports),
//! records progress in `import_run` after each batch, then the counts and the rejected rows
//! with their cells as read from the file.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::actor::Actor;
use crate::domain::extension::Extension;
use crate::service::Kith;
use crate::service::import::{ImportOptions, import_csv, rfc4180};
use crate::store::imports::{self, Counts, RejectedRow, RunState};

/// Rejected rows a run keeps (`rejectedCount` counts them all).
pub const MAX_KEPT_REJECTED: usize = 10_000;

/// What to import.
#[derive(Debug)]
pub enum Job {
    /// Contacts or companies (`contact`, `company`).
    Core {
        /// The object.
        object: &'static str,
        /// Mapping, duplicates, batch size.
        options: ImportOptions,
    },
    /// Through a plugin mutation `import<Things>(csv: String!)`.
    Plugin {
        /// The plugin's contributions.
        extension: Arc<Extension>,
        /// The mutation's name.
        mutation: String,
    },
}

/// What a finished import did, before its rejected rows get their cells.
struct Outcome {
    counts: Counts,
    rejected: Vec<(u64, String)>,
    ignored_columns: Vec<String>,
}

/// Imports `csv` as `actor` for run `id`, and records how it ended.
pub async fn run(kith: Kith, actor: Actor, id: Uuid, csv: String, job: Job) {
    let outcome = match job {
        Job::Core { object, options } => core(&kith, &actor, id, &csv, object, &options).await,
        Job::Plugin { extension, mutation } => plugin(&kith, &actor, &csv, &extension, &mutation).await,
    };
    let conn = kith.store.conn();
    let written = match outcome {
        Ok(outcome) => {
            let rejected = with_cells(&csv, outcome.rejected);
            imports::finish(
                conn,
                id,
                RunState::Done,
                outcome.counts,
                &rejected,
                &outcome.ignored_columns,
                None,
                Utc::now(),
            )
            .await
        }
        Err(message) => {
            tracing::warn!(run = %id, error = %message, "an import failed");
            imports::finish(conn, id, RunState::Failed, Counts::default(), &[], &[], Some(&message), Utc::now()).await
        }
    };
    if let Err(err) = written {
        tracing::error!(run = %id, error = %err, "could not record how an import ended");
    }
}

async fn core(
    kith: &Kith,
    actor: &Actor,
    id: Uuid,
    csv: &str,
    object: &str,
    options: &ImportOptions,
) -> Result<Outcome, String> {
    // Batches report the rows read so far; a follower writes the latest count, so a slow
    // database never holds the import up.
    let (sender, mut receiver) = tokio::sync::watch::channel(0_u64);
    let store = kith.store.clone();
    let follower = tokio::spawn(async move {
        while receiver.changed().await.is_ok() {
            let rows = *receiver.borrow_and_update();
            if let Err(err) =
                imports::progress(store.conn(), id, Counts { rows, ..Counts::default() }, Utc::now()).await
            {
                tracing::warn!(run = %id, error = %err, "could not record an import's progress");
            }
        }
    });
    let progress = move |rows: u64| {
        let _ = sender.send(rows);
    };
    let report = import_csv(kith, actor, object, std::io::Cursor::new(csv.as_bytes()), options, &progress).await;
    drop(progress);
    let _ = follower.await;
    let report = report.map_err(|e| e.to_string())?;
    Ok(Outcome {
        counts: Counts {
            total: 0,
            rows: report.rows,
            created: report.created,
            updated: report.updated,
            skipped: report.skipped,
            rejected: report.rejected.len() as u64,
        },
        rejected: report.rejected.into_iter().map(|r| (r.line, r.reason)).collect(),
        ignored_columns: report.ignored_columns,
    })
}

async fn plugin(
    kith: &Kith,
    actor: &Actor,
    csv: &str,
    extension: &Extension,
    mutation: &str,
) -> Result<Outcome, String> {
    let mut arguments = serde_json::Map::new();
    arguments.insert("csv".to_owned(), Json::String(csv.to_owned()));
    let answer = crate::plugin::operation::run_operation(kith, extension, mutation, actor, &arguments)
        .await
        .map_err(|failure| failure.message)?;
    let imported = answer.get("imported").and_then(Json::as_u64).unwrap_or(0);
    let rejected: Vec<(u64, String)> = answer
        .get("rejected")
        .and_then(Json::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    (
                        row.get("line").and_then(Json::as_u64).unwrap_or(0),
                        row.get("reason").and_then(Json::as_str).unwrap_or("refused").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let rows = rfc4180::check(csv).records.saturating_sub(1);
    Ok(Outcome {
        counts: Counts { total: 0, rows, created: imported, updated: 0, skipped: 0, rejected: rejected.len() as u64 },
        rejected,
        ignored_columns: Vec::new(),
    })
}

/// The first [`MAX_KEPT_REJECTED`] rejected rows with their cells, read again from the file.
fn with_cells(csv: &str, rejected: Vec<(u64, String)>) -> Vec<RejectedRow> {
    let kept: Vec<(u64, String)> = rejected.into_iter().take(MAX_KEPT_REJECTED).collect();
    let lines: HashSet<u64> = kept.iter().map(|(line, _)| *line).collect();
    let cells: HashMap<u64, Vec<String>> = rfc4180::records_at(csv, |line| lines.contains(&line)).into_iter().collect();
    kept.into_iter()
        .map(|(line, reason)| RejectedRow { cells: cells.get(&line).cloned().unwrap_or_default(), line, reason })
        .collect()
}
