//! Event delivery from the outbox to plugins: at least once, in batches, with retries and
//! exponential backoff, then a dead-letter list. A plugin's events are split by record into
//! the partitions its manifest asks for (`[delivery] partitions`, one by default); each
//! partition is delivered in outbox order (so each record's events in order) from a cursor in
//! the database, so delivery survives restarts. A lease per partition makes one process at a
//! time deliver it; a process delivers several partitions of a plugin at once (on as many
//! instances as it may spare, [`concurrency`]) and gives its leases up after each round, so
//! that every process sharing the database takes its turn (figures: `BENCHMARKS.md`, "Events
//! at scale").

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::domain::value::{Value, format_datetime};
use crate::plugin::host::v1::kith::plugin::types as wit;
use crate::plugin::manager::PluginManager;
use crate::plugin::runtime::{CallFailure, LoadedPlugin};
use crate::store::outbox::{self, Event};
use crate::store::plugins::{self, Cursor};

/// How long a delivery lease lasts without renewal. A process renews it at every step and,
/// while a batch call runs, every [`HEARTBEAT`] ([`with_heartbeat`]), so no other process takes
/// a partition over while a batch is still being handled (which would break per-record order);
/// a process that dies holding it delays that partition's delivery by at most this long.
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

/// How many of a plugin's partitions one process delivers at once: one an instance, keeping
/// one instance free for its hooks, computed fields and operations when it has any.
pub fn concurrency(plugin: &LoadedPlugin, parts: i64) -> usize {
    let instances = plugin.manifest.limits.instances.max(1) as usize;
    let spare = if plugin.manifest.before_write.is_some() || plugin.manifest.contributes() {
        instances.saturating_sub(1).max(1)
    } else {
        instances
    };
    spare.min(usize::try_from(parts).unwrap_or(1).max(1))
}

/// One round of delivery to a plugin: the partitions this process can lease, up to
/// [`concurrency`] at once, until each was tried once or the round is over. Returns whether
/// more may be waiting.
pub async fn deliver(manager: &Arc<PluginManager>, plugin: &Arc<LoadedPlugin>) -> crate::Result<bool> {
    let db = manager.kith.store.conn();
    let id = plugin.id();
    let owner = manager.owner.as_str();
    let Some(parts) = plugins::delivery_parts(db, id).await? else { return Ok(false) };
    let parts = parts.max(1);
    let width = concurrency(plugin, parts);
    let started = Instant::now();
    let mut tried = 0i64;
    let mut busy = false;
    // A stopped manager takes no more leases; a round in flight gives its own up at its end.
    while tried < parts && started.elapsed() < ROUND && manager.is_running() {
        let mut leased: Vec<Cursor> = Vec::with_capacity(width);
        while leased.len() < width && tried < parts && manager.is_running() {
            let turn = manager.delivery_turn.fetch_add(1, Ordering::Relaxed);
            let part = i64::try_from(turn % parts.unsigned_abs()).unwrap_or(0);
            tried += 1;
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            if let Some(cursor) = plugins::lease(db, id, part, owner, now, until).await? {
                leased.push(cursor);
            }
        }
        let rounds = leased.iter().map(|cursor| deliver_part(manager, plugin, cursor.clone(), started));
        let outcomes = futures_util::future::join_all(rounds).await;
        // Each partition's lease is given up after its round: another process may take it next.
        for cursor in &leased {
            plugins::release(db, id, Some(cursor.part), owner).await?;
        }
        for outcome in outcomes {
            busy |= outcome?;
        }
    }
    Ok(busy)
}

fn backoff(base_ms: u64, attempts: i64) -> Duration {
    let factor = 1u64 << attempts.clamp(1, 20).saturating_sub(1);
    Duration::from_millis(base_ms.saturating_mul(factor)).min(MAX_BACKOFF)
}

/// Delivers what is pending in one partition of a plugin, until the round that began at
/// `started` is over. `leased` is its cursor as leased. Returns whether more may be waiting.
async fn deliver_part(
    manager: &Arc<PluginManager>,
    plugin: &Arc<LoadedPlugin>,
    leased: Cursor,
    started: Instant,
) -> crate::Result<bool> {
    let db = manager.kith.store.conn();
    let id = plugin.id();
    let owner = manager.owner.as_str();
    let part = leased.part;
    let mut cursor = Some(leased);
    let mut one_by_one_through: Option<i64> = None;
    loop {
        let now = Utc::now();
        // The lease as taken for this round, then renewed at each step.
        let cursor = match cursor.take() {
            Some(cursor) => cursor,
            None => {
                let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
                match plugins::lease(db, id, part, owner, now, until).await? {
                    Some(cursor) => cursor,
                    None => return Ok(false),
                }
            }
        };
        if cursor.next_attempt_at.is_some_and(|at| at > now) {
            return Ok(false);
        }
        let keys = outbox::read_keys(db, cursor.last_seq, READ_AHEAD).await?;
        let Some(last_read) = keys.last().map(|e| e.seq) else { return Ok(false) };
        let full_read = keys.len() as u64 == READ_AHEAD;
        // A retry delivers the failing event alone, so a failure is pinned to one event; so do
        // the events of a batch that failed part-way, up to the failing one.
        let one_by_one = cursor.attempts > 0 || one_by_one_through.is_some_and(|seq| cursor.last_seq < seq);
        let batch_size = if one_by_one { 1 } else { manager.config.batch_size.max(1) as usize };
        let mut chosen: Vec<i64> = Vec::new();
        let mut through = last_read;
        for key in &keys {
            let receives = match &key.audience {
                // Meant for one plugin (its mail outcomes): that one, if it subscribes.
                Some(audience) => audience == id && plugin.manifest.subscribes(&key.kind),
                None => plugin.manifest.receives(&key.kind, &key.object, &plugin.context.grants),
            };
            if plugins::partition_of(key.record_id, cursor.parts) != part || !receives {
                continue;
            }
            if chosen.len() == batch_size {
                through = chosen.last().copied().unwrap_or(cursor.last_seq);
                break;
            }
            chosen.push(key.seq);
        }
        if chosen.len() < batch_size {
            through = last_read;
        }
        if chosen.is_empty() {
            plugins::advance(db, id, part, owner, through).await?;
            if full_read && started.elapsed() < ROUND {
                continue;
            }
            return Ok(full_read);
        }
        let events = outbox::read_seqs(db, &chosen).await?;
        let mut batch: Vec<&Event> = events.iter().collect();
        if batch.is_empty() {
            // Gone since (an erasure does not remove events, but be safe): nothing to deliver.
            plugins::advance(db, id, part, owner, through).await?;
            continue;
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
                plugins::advance(db, id, part, owner, event.seq).await?;
                manager.record_failure(id, &message).await;
                continue;
            }
            through = batch[pos - 1].seq;
            batch.truncate(pos);
        }
        let wit_events: Vec<wit::Event> = batch.iter().map(|e| to_wit(e)).collect();
        let depth = batch.iter().map(|e| e.depth).max().unwrap_or(0);
        let (outcome, tx) = with_heartbeat(manager, id, part, plugin.call_events(&wit_events, depth)).await;
        match outcome {
            Ok(Ok(())) => {
                // The batch's effects, the cursor past it and its count commit together: a
                // crash before the commit redelivers the batch with none of its effects kept,
                // a crash after it never redelivers it.
                match tx {
                    Some(tx) => {
                        // The plugin's row before its partition's, in the order enabling and
                        // disabling lock them: the other order deadlocks with them on PostgreSQL.
                        plugins::record_success(tx.conn(), id, batch.len() as i64).await?;
                        if !plugins::advance(tx.conn(), id, part, owner, through).await? {
                            // The lease was lost: another process delivers these events.
                            tx.rollback().await?;
                            return Ok(false);
                        }
                        tx.commit().await?;
                    }
                    None => {
                        plugins::advance(db, id, part, owner, through).await?;
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
                failed(manager, plugin, part, batch[index], cursor.attempts + 1, &failure.message).await?;
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
                failed(manager, plugin, part, batch[0], cursor.attempts + 1, &failure.to_string()).await?;
            }
        }
        if started.elapsed() >= ROUND {
            return Ok(true);
        }
    }
}

/// Runs `call` while renewing the partition's delivery lease every [`HEARTBEAT`].
async fn with_heartbeat<T>(
    manager: &PluginManager,
    id: &str,
    part: i64,
    call: impl std::future::Future<Output = T>,
) -> T {
    let heartbeat = async {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            match plugins::renew_lease(manager.kith.store.conn(), id, part, &manager.owner, until).await {
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
    part: i64,
    event: &Event,
    attempts: i64,
    message: &str,
) -> crate::Result<()> {
    let db = manager.kith.store.conn();
    let id = plugin.id();
    let owner = manager.owner.as_str();
    // Disabled, upgraded or reconfigured during the call (its objects may have left the
    // registry under it): not the plugin's failure. The event stays pending for the plugin
    // as it is now.
    let current = plugins::get(db, id).await?;
    if current.is_none_or(|row| !row.enabled || row.generation != plugin.generation) {
        return Ok(());
    }
    let message = format!("event {} ({}): {message}", event.seq, event.kind);
    if attempts >= i64::from(manager.config.max_attempts.max(1)) {
        plugins::dead_letter(db, id, event.seq, event.event_id, &event.kind, attempts, &message, Utc::now()).await?;
        plugins::advance(db, id, part, owner, event.seq).await?;
    } else {
        let delay = backoff(manager.config.retry_base_ms, attempts);
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        plugins::retry_later(db, id, part, owner, attempts, at, &message).await?;
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
