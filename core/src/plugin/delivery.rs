//! Event delivery from the outbox to plugins: at least once, in outbox order (so in order per
//! record), in batches, with retries and exponential backoff, then a dead-letter list. The
//! cursor lives in the database, so delivery survives restarts; a lease per plugin makes one
//! process at a time deliver to it when several share a database.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::domain::value::{Value, format_datetime};
use crate::plugin::host::v1::kith::plugin::types as wit;
use crate::plugin::manager::PluginManager;
use crate::plugin::runtime::{CallFailure, LoadedPlugin};
use crate::store::outbox::{self, Event};
use crate::store::plugins;

/// How long a delivery lease lasts without renewal. A process renews it at every step and,
/// while a batch call runs, every [`HEARTBEAT`] ([`with_heartbeat`]), so no other process takes
/// a plugin over while a batch is still being handled (which would break per-record order); a
/// process that dies holding it delays that plugin's delivery by at most this long.
const LEASE: Duration = Duration::from_secs(10);
/// How often a running batch call's lease is renewed.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one plugin may keep the delivery loop per round.
const ROUND: Duration = Duration::from_millis(500);
/// Outbox rows read per step.
const READ_AHEAD: u64 = 1_000;

/// An outbox event as the plugin sees it.
pub fn to_wit(event: &Event) -> wit::Event {
    wit::Event {
        id: event.event_id.to_string(),
        seq: event.seq,
        kind: event.kind.clone(),
        object: event.object.clone(),
        record_id: event.record_id.map(|id| id.to_string()),
        occurred_at: match &event.occurred_at {
            Value::DateTime(at) => format_datetime(*at),
            _ => String::new(),
        },
        actor: event.actor.clone(),
        origin_plugin: event.origin_plugin.clone(),
        depth: event.depth,
        payload: event.payload.to_string(),
    }
}

/// Starts the delivery task; it ends when the manager is dropped or stopped.
pub fn spawn(manager: Weak<PluginManager>) {
    tokio::spawn(async move {
        let mut last_refresh = Instant::now();
        loop {
            let Some(m) = manager.upgrade() else { return };
            if !m.is_running() {
                return;
            }
            let interval = Duration::from_millis(m.config.poll_interval_ms.max(5));
            if last_refresh.elapsed() >= Duration::from_secs(1) {
                last_refresh = Instant::now();
                if let Err(err) = m.refresh().await {
                    tracing::warn!(error = %err, "reloading plugins");
                }
            }
            let mut busy = false;
            for plugin in m.active() {
                if plugin.manifest.events.is_empty() {
                    continue;
                }
                match deliver(&m, &plugin).await {
                    Ok(more) => busy |= more,
                    Err(err) => tracing::warn!(plugin = %plugin.id(), error = %err, "event delivery"),
                }
            }
            drop(m);
            if !busy {
                tokio::time::sleep(interval).await;
            }
        }
    });
}

fn backoff(base_ms: u64, attempts: i64) -> Duration {
    let factor = 1u64 << attempts.clamp(1, 20).saturating_sub(1);
    Duration::from_millis(base_ms.saturating_mul(factor)).min(MAX_BACKOFF)
}

/// Delivers what is pending for one plugin, for at most one round. Returns whether more may be
/// waiting.
pub async fn deliver(manager: &Arc<PluginManager>, plugin: &Arc<LoadedPlugin>) -> crate::Result<bool> {
    let db = manager.kith.store.conn();
    let id = plugin.id();
    let owner = manager.owner.as_str();
    let started = Instant::now();
    let mut one_by_one_through: Option<i64> = None;
    loop {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let Some(cursor) = plugins::lease(db, id, owner, now, until).await? else { return Ok(false) };
        if cursor.next_attempt_at.is_some_and(|at| at > now) {
            return Ok(false);
        }
        let events = outbox::read(db, cursor.last_seq, READ_AHEAD).await?;
        let Some(last_read) = events.last().map(|e| e.seq) else { return Ok(false) };
        let full_read = events.len() as u64 == READ_AHEAD;
        // A retry delivers the failing event alone, so a failure is pinned to one event; so do
        // the events of a batch that failed part-way, up to the failing one.
        let one_by_one = cursor.attempts > 0 || one_by_one_through.is_some_and(|seq| cursor.last_seq < seq);
        let batch_size = if one_by_one { 1 } else { manager.config.batch_size.max(1) as usize };
        let mut batch: Vec<&Event> = Vec::new();
        let mut through = last_read;
        for event in &events {
            if !plugin.manifest.receives(&event.kind, &event.object, &plugin.context.grants) {
                continue;
            }
            if batch.len() == batch_size {
                through = batch.last().map_or(cursor.last_seq, |e| e.seq);
                break;
            }
            batch.push(event);
        }
        if batch.len() < batch_size {
            through = last_read;
        }
        if batch.is_empty() {
            plugins::advance(db, id, owner, through).await?;
            if full_read && started.elapsed() < ROUND {
                continue;
            }
            return Ok(full_read);
        }
        // Events caused by too long a chain of plugin writes are a loop: never delivered.
        let max_depth = manager.config.max_event_depth;
        if let Some(pos) = batch.iter().position(|e| e.depth > max_depth) {
            if pos == 0 {
                let event = batch[0];
                let message = format!(
                    "event {} ({}) was caused by a chain of {} plugin writes (limit {max_depth}): \
                     a plugin loop? It was not delivered",
                    event.seq, event.kind, event.depth
                );
                plugins::dead_letter(db, id, event.seq, event.event_id, &event.kind, 0, &message, Utc::now()).await?;
                plugins::advance(db, id, owner, event.seq).await?;
                manager.record_failure(id, &message).await;
                continue;
            }
            through = batch[pos - 1].seq;
            batch.truncate(pos);
        }
        let wit_events: Vec<wit::Event> = batch.iter().map(|e| to_wit(e)).collect();
        let depth = batch.iter().map(|e| e.depth).max().unwrap_or(0);
        let (outcome, tx) = with_heartbeat(manager, id, plugin.call_events(&wit_events, depth)).await;
        match outcome {
            Ok(Ok(())) => {
                // The batch's effects, the cursor past it and its count commit together: a
                // crash before the commit redelivers the batch with none of its effects kept,
                // a crash after it never redelivers it.
                match tx {
                    Some(tx) => {
                        if !plugins::advance(tx.conn(), id, owner, through).await? {
                            // The lease was lost: another process delivers these events.
                            tx.rollback().await?;
                            return Ok(false);
                        }
                        plugins::record_success(tx.conn(), id, batch.len() as i64).await?;
                        tx.commit().await?;
                    }
                    None => {
                        plugins::advance(db, id, owner, through).await?;
                        plugins::record_success(db, id, batch.len() as i64).await?;
                    }
                }
            }
            Ok(Err(failure)) => {
                drop(tx);
                let index = (failure.index as usize).min(batch.len() - 1);
                if index > 0 {
                    // The batch's writes are one transaction, now rolled back: deliver the
                    // events before the failing one again, one at a time, up to it.
                    one_by_one_through = Some(batch[index].seq);
                    continue;
                }
                failed(manager, plugin, batch[index], cursor.attempts + 1, &failure.message).await?;
            }
            // Over a write budget: nothing of the batch is kept, the events stay pending, and
            // the plugin is suspended until an admin resumes it.
            Err(failure @ CallFailure::OverBudget(_)) => {
                drop(tx);
                manager.suspend(id, &format!("event {} ({}): {failure}", batch[0].seq, batch[0].kind)).await;
                return Ok(false);
            }
            // Kith was busy, not the plugin at fault: try again next round, no attempt counted.
            Err(CallFailure::Busy(_)) => {
                drop(tx);
                return Ok(false);
            }
            Err(failure) => {
                drop(tx);
                failed(manager, plugin, batch[0], cursor.attempts + 1, &failure.to_string()).await?;
            }
        }
        if started.elapsed() >= ROUND {
            return Ok(true);
        }
    }
}

/// Runs `call` while renewing the plugin's delivery lease every [`HEARTBEAT`].
async fn with_heartbeat<T>(manager: &PluginManager, id: &str, call: impl std::future::Future<Output = T>) -> T {
    let heartbeat = async {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            match plugins::renew_lease(manager.kith.store.conn(), id, &manager.owner, until).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(plugin = %id, "the delivery lease was lost during a call"),
                Err(err) => tracing::warn!(plugin = %id, error = %err, "renewing a delivery lease"),
            }
        }
    };
    tokio::select! {
        biased;
        outcome = call => outcome,
        () = heartbeat => unreachable!("the heartbeat never ends"),
    }
}

async fn failed(
    manager: &Arc<PluginManager>,
    plugin: &Arc<LoadedPlugin>,
    event: &Event,
    attempts: i64,
    message: &str,
) -> crate::Result<()> {
    let db = manager.kith.store.conn();
    let id = plugin.id();
    let owner = manager.owner.as_str();
    let message = format!("event {} ({}): {message}", event.seq, event.kind);
    if attempts >= i64::from(manager.config.max_attempts.max(1)) {
        plugins::dead_letter(db, id, event.seq, event.event_id, &event.kind, attempts, &message, Utc::now()).await?;
        plugins::advance(db, id, owner, event.seq).await?;
    } else {
        let delay = backoff(manager.config.retry_base_ms, attempts);
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        plugins::retry_later(db, id, owner, attempts, at, &message).await?;
    }
    manager.record_failure(id, &message).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1_000, 1), Duration::from_secs(1));
        assert_eq!(backoff(1_000, 2), Duration::from_secs(2));
        assert_eq!(backoff(1_000, 4), Duration::from_secs(8));
        assert_eq!(backoff(1_000, 40), MAX_BACKOFF);
    }
}
