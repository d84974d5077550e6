//! The mail worker: a background task (started by `kith serve` when `[mail]` names a relay and
//! `enabled` is on) that sends queued messages and records their outcomes.
//!
//! A round leases up to [`BATCH`] due messages (about five seconds' worth), sends them over up to `connections` pooled
//! connections at most `per_second` (across the round), then writes the outcomes: the sent and
//! the failed in one transaction with their `mail.sent` / `mail.failed` events (addressed to the
//! plugin that queued each), the retries each with its next attempt. When a round leased a full
//! batch the next begins at once; otherwise the worker sleeps `poll_interval_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt as _;
use rand::Rng as _;
use serde_json::json;
use uuid::Uuid;

use super::{MailError, Mailer};
use crate::domain::actor::Actor;
use crate::service::Kith;
use crate::store::mail::{self as store, Leased};
use crate::store::outbox::{self, NewEvent};

/// Most messages leased per round (fewer at a low `per_second`: a round sends for about five
/// seconds).
pub const BATCH: u64 = 200;

/// The messages a round leases, and for how long: twice the time they take at `per_second`
/// plus two timeouts, so a live process's lease never runs out under it while a killed one's
/// messages are due again soon.
fn round_size(config: &crate::config::MailConfig) -> (u64, Duration) {
    let per_second = u64::from(config.per_second.max(1));
    let batch = (per_second * 5).clamp(1, BATCH);
    let sending = Duration::from_secs_f64(batch as f64 / per_second as f64);
    (batch, sending * 2 + Duration::from_millis(config.timeout_ms.max(100)) * 2 + Duration::from_secs(2))
}

/// The running worker of this process; dropping it (or [`Worker::stop`]) stops it, and `stop`
/// gives its leases up so another process (or the next start of this one) sends the messages.
pub use crate::service::leased::Worker;

/// Starts sending with `mailer`.
pub fn start(kith: &Kith, mailer: Arc<Mailer>) -> Worker {
    let owner = format!("{}-{}", std::process::id(), Uuid::now_v7());
    let task = tokio::spawn(run(kith.clone(), mailer, owner.clone()));
    Worker::new(task, kith, owner, "mail", |kith, owner| {
        Box::pin(async move { store::release_all(kith.store.conn(), &owner).await })
    })
}

/// Spaces sends `1 / per_second` apart.
struct Pace {
    every: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pace {
    fn new(per_second: u32) -> Pace {
        Pace { every: Duration::from_secs(1) / per_second.max(1), next: tokio::sync::Mutex::new(Instant::now()) }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.every;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

async fn run(kith: Kith, mailer: Arc<Mailer>, owner: String) {
    let pace = Pace::new(mailer.config().per_second);
    loop {
        let full = match round(&kith, &mailer, &owner, &pace).await {
            Ok(full) => full,
            Err(err) => {
                tracing::warn!(error = %err, "mail delivery");
                false
            }
        };
        if !full {
            tokio::time::sleep(Duration::from_millis(mailer.config().poll_interval_ms.max(5))).await;
        }
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)` up to an hour, less a
/// random quarter.
pub fn backoff(base_secs: u64, attempts: i64) -> Duration {
    let factor = 1u64 << attempts.clamp(1, 20).saturating_sub(1);
    let full = base_secs.max(1).saturating_mul(factor).min(3_600) * 1_000;
    let jitter = rand::thread_rng().gen_range(0..=full / 4);
    Duration::from_millis(full - jitter)
}

/// One round; true when it leased a full batch (more may be due).
async fn round(kith: &Kith, mailer: &Mailer, owner: &str, pace: &Pace) -> crate::Result<bool> {
    let now = Utc::now();
    let (batch, lease) = round_size(mailer.config());
    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
    let leased = store::lease_due(kith.store.conn(), owner, now, until, batch).await?;
    if leased.is_empty() {
        return Ok(false);
    }
    let full = leased.len() as u64 == batch;
    let connections = mailer.config().connections.max(1) as usize;
    let results: Vec<(Leased, Result<(), MailError>)> = futures_util::stream::iter(leased)
        .map(|message| async move {
            pace.wait().await;
            let result = mailer.send(&message.sender, &message.recipient, &message.message).await;
            (message, result)
        })
        .buffer_unordered(connections)
        .collect()
        .await;
    let max_attempts = i64::from(mailer.config().max_attempts.max(1));
    // The final outcome of each: `None` sent, or the error and whether the relay refused the
    // message for good (a 5xx: the address or the message is wrong, not the moment).
    let mut done: Vec<(Leased, Option<(String, bool)>)> = Vec::new();
    for (message, result) in results {
        match result {
            Ok(()) => done.push((message, None)),
            Err(MailError::Send { permanent: false, message: error }) if message.attempts + 1 < max_attempts => {
                let next = Utc::now()
                    + chrono::Duration::from_std(backoff(mailer.config().retry_base_secs, message.attempts + 1))
                        .unwrap_or_default();
                tracing::info!(message_id = %message.message_id, attempts = message.attempts + 1, %error, "mail: will retry");
                store::retry_later(kith.store.conn(), message.id, owner, next, &error).await?;
            }
            Err(err) => {
                let permanent = matches!(err, MailError::Send { permanent: true, .. });
                done.push((message, Some((err.to_string(), permanent))));
            }
        }
    }
    if !done.is_empty() {
        record(kith, owner, done).await?;
    }
    Ok(full)
}

/// Writes the final outcomes and their events in one transaction: the sent with one statement
/// per 500, the events of each plugin with one insert.
async fn record(kith: &Kith, owner: &str, done: Vec<(Leased, Option<(String, bool)>)>) -> crate::Result<()> {
    let tx = kith.store.begin(&Actor::system("mail")).await?;
    let sent_ids: Vec<Uuid> = done.iter().filter(|(_, error)| error.is_none()).map(|(m, _)| m.id).collect();
    let sent_ok = store::mark_sent_many(&tx, &sent_ids, owner).await?;
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut events: std::collections::BTreeMap<&str, Vec<NewEvent>> = std::collections::BTreeMap::new();
    for (message, error) in &done {
        let recorded = match error {
            None => sent_ok.contains(&message.id),
            Some((error, _)) => store::mark_failed(&tx, message.id, owner, error).await?,
        };
        if !recorded {
            continue;
        }
        sent += u64::from(error.is_none());
        failed += u64::from(error.is_some());
        if let Some((error, _)) = error {
            tracing::warn!(message_id = %message.message_id, plugin = %message.plugin_id, %error, "mail: failed for good");
        }
        let kind = if error.is_none() { "mail.sent" } else { "mail.failed" };
        events.entry(message.plugin_id.as_str()).or_default().push(NewEvent {
            kind: kind.to_owned(),
            object: "mail".to_owned(),
            record_id: Some(message.id),
            payload: json!({
                "messageId": message.message_id,
                "to": message.recipient,
                "reference": message.reference,
                "attempts": message.attempts + 1,
                "error": error.as_ref().map(|(e, _)| e),
                "permanent": error.as_ref().is_some_and(|(_, permanent)| *permanent),
            }),
        });
    }
    for (plugin, events) in events {
        outbox::emit_to(&tx, plugin, events).await?;
    }
    tx.commit().await?;
    metrics::counter!("kith_mail_sent_total").increment(sent);
    metrics::counter!("kith_mail_failed_total").increment(failed);
    Ok(())
}
