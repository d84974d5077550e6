//! Webhook delivery: a background task (started by `kith serve`) that follows the outbox for
//! every enabled endpoint, at least once and in outbox order per endpoint, signed per Standard
//! Webhooks.
//!
//! Each endpoint has a cursor over the outbox `seq` and a lease, both in the database, so
//! delivery survives restarts and one process at a time delivers to an endpoint when several
//! share a database. An endpoint's step: events past its cursor that it receives become pending
//! deliveries (the cursor moves in the same transaction), then its pending deliveries are sent
//! in order over one kept connection; the first failure stops the step, so the next event waits
//! until that one is delivered or dead (retries back off exponentially, with jitter, for
//! `retry_for_secs`). Endpoints are stepped concurrently, each request under a timeout, so a
//! slow endpoint holds up only itself. An endpoint with no success for `disable_after_secs` is
//! disabled, with a `webhook.disabled` event.
//!
//! The payload is not stored with the delivery: it is read from the outbox when sent (so an
//! erasure's scrubbing of the outbox applies to every retry and replay).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng as _;
use uuid::Uuid;

use crate::config::WebhooksConfig;
use crate::domain::actor::Actor;
use crate::service::Kith;
use crate::service::outbound::{self, OutboundError, OutboundRequest, Reuse};
use crate::service::webhooks::{self, Endpoint};
use crate::store::outbox;
use crate::store::webhooks::{self as store, NewDelivery, Outcome};

/// How long a delivery lease lasts without renewal; renewed after each request that starts
/// past a third of it.
const LEASE: Duration = Duration::from_secs(30);
/// How long one endpoint's step may run before it lets go (and is picked up again).
const ROUND: Duration = Duration::from_secs(2);
/// Deliveries sent per batch (their outcomes are written in one transaction).
const BATCH: u64 = 100;
/// Outbox rows read per step.
const READ_AHEAD: u64 = 500;
/// Pending deliveries above which an endpoint's cursor waits (a failing endpoint does not
/// queue the whole outbox).
const MAX_QUEUE: u64 = BATCH;
/// The stored start of a response body.
const EXCERPT: usize = 1024;

/// The running delivery task of this process; dropping it (or [`Worker::stop`]) stops it, and
/// `stop` gives its leases up so another process (or the next start of this one) takes over.
pub use crate::service::leased::Worker;

/// Starts delivering webhooks with the settings of `kith` (see [`Kith::configure_webhooks`]).
pub fn start(kith: &Kith) -> Worker {
    let owner = format!("{}-{}", std::process::id(), Uuid::now_v7());
    let task = tokio::spawn(run(kith.clone(), owner.clone()));
    Worker::new(task, kith, owner, "webhooks", |kith, owner| {
        Box::pin(async move { store::release_all(kith.store.conn(), &owner).await })
    })
}

async fn run(kith: Kith, owner: String) {
    let mut running: HashMap<Uuid, tokio::task::AbortHandle> = HashMap::new();
    let mut steps = tokio::task::JoinSet::new();
    loop {
        let config = kith.webhook_config();
        while let Some(done) = steps.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(err) => err.id(),
            };
            running.retain(|_, handle| handle.id() != id);
        }
        match store::list(kith.store.conn()).await {
            Ok(endpoints) => {
                for row in endpoints.into_iter().filter(|r| r.enabled) {
                    if running.contains_key(&row.id) {
                        continue;
                    }
                    let (kith, owner, config, id) = (kith.clone(), owner.clone(), config.clone(), row.id);
                    let handle = steps.spawn(async move {
                        if let Err(err) = step(&kith, &owner, &config, id).await {
                            tracing::warn!(webhook = %id, error = %err, "webhook delivery");
                        }
                    });
                    running.insert(row.id, handle);
                }
            }
            Err(err) => tracing::warn!(error = %err, "listing webhooks"),
        }
        tokio::time::sleep(Duration::from_millis(config.poll_interval_ms.max(5))).await;
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)`, at most `max`, of which
/// a random half is taken off (so retries of many endpoints spread out).
pub fn backoff(config: &WebhooksConfig, attempts: i64) -> Duration {
    let factor = 1u64 << attempts.clamp(1, 30).saturating_sub(1);
    let full = config.retry_base_ms.saturating_mul(factor).min(config.retry_max_ms.max(config.retry_base_ms));
    let jitter = rand::thread_rng().gen_range(0..=full / 2);
    Duration::from_millis(full - jitter)
}

struct Policy {
    allow_private: bool,
}

impl outbound::Policy for Policy {
    fn allowed(&self, _url: &url::Url) -> Result<bool, OutboundError> {
        Ok(self.allow_private)
    }

    fn private_hint(&self) -> &str {
        webhooks::PRIVATE_HINT
    }
}

/// Delivers what is due for one endpoint, for at most one round.
async fn step(kith: &Kith, owner: &str, config: &WebhooksConfig, id: Uuid) -> crate::Result<()> {
    let db = kith.store.conn();
    let started = Instant::now();
    let until = |now: chrono::DateTime<Utc>| now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    if !store::lease(db, id, owner, Utc::now(), until(Utc::now())).await? {
        return Ok(());
    }
    let mut leased_at = Instant::now();
    let Some(row) = store::get(db, id).await? else { return Ok(()) };
    let registry = kith.registry();
    let endpoint = match Endpoint::load(db, &registry, row).await {
        Ok(endpoint) => endpoint,
        Err(err) => {
            // The filter no longer parses (a custom field it names was removed): nothing can be
            // delivered as asked.
            disable(kith, id, &format!("its filter no longer applies: {err}")).await?;
            return Ok(());
        }
    };
    let policy = Policy { allow_private: config.allow_private };
    let retry_for = chrono::Duration::from_std(Duration::from_secs(config.retry_for_secs)).unwrap_or_default();
    let mut reuse = Reuse::default();
    let mut cursor = endpoint.row.cursor_seq;
    loop {
        let now = Utc::now();
        let mut pending = store::pending(db, id, BATCH).await?;
        let mut read_more = false;
        if (pending.len() as u64) < MAX_QUEUE {
            let events = outbox::read(db, cursor, READ_AHEAD).await?;
            if let Some(last) = events.last().map(|e| e.seq) {
                read_more = events.len() as u64 == READ_AHEAD;
                let new: Vec<NewDelivery> = events
                    .iter()
                    .filter(|e| endpoint.receives(e))
                    .map(|e| NewDelivery { id: Uuid::now_v7(), seq: e.seq, event_id: e.event_id, kind: e.kind.clone() })
                    .collect();
                let tx = kith.store.begin(&Actor::system("webhooks")).await?;
                if !store::enqueue(tx.conn(), id, owner, &new, last, now, now + retry_for).await? {
                    tx.rollback().await?;
                    return Ok(());
                }
                tx.commit().await?;
                cursor = last;
                if !new.is_empty() {
                    pending = store::pending(db, id, BATCH).await?;
                }
            }
        }
        // In order: only a due head starts a run, and the run stops at the first failure.
        let due: Vec<_> = pending.iter().take_while(|d| d.next_attempt_at.is_none_or(|at| at <= now)).collect();
        if due.is_empty() {
            if read_more && started.elapsed() < ROUND {
                continue;
            }
            return Ok(());
        }
        let seqs: Vec<i64> = due.iter().map(|d| d.seq).collect();
        let events: HashMap<i64, outbox::Event> =
            outbox::read_seqs(db, &seqs).await?.into_iter().map(|e| (e.seq, e)).collect();
        let mut outcomes = Vec::with_capacity(due.len());
        let mut failed = false;
        let mut delivered = false;
        for delivery in due {
            if leased_at.elapsed() > LEASE / 3 {
                if !store::lease(db, id, owner, Utc::now(), until(Utc::now())).await? {
                    break;
                }
                leased_at = Instant::now();
            }
            let attempts = delivery.attempts + 1;
            let Some(event) = events.get(&delivery.seq) else {
                outcomes.push(Outcome {
                    id: delivery.id,
                    state: "dead".into(),
                    attempts,
                    status_code: None,
                    latency_ms: 0,
                    response: None,
                    error: Some("the event is no longer in the outbox".into()),
                    next_attempt_at: None,
                    at: Utc::now(),
                });
                metrics::counter!("kith_webhook_deliveries_total", "outcome" => "dead").increment(1);
                continue;
            };
            let body = webhooks::body(&registry, event);
            let at = Utc::now();
            let msg_id = delivery.id.to_string();
            let timestamp = at.timestamp();
            let signature = webhooks::signature_header(&endpoint.row, &msg_id, timestamp, &body, at);
            let request = OutboundRequest {
                method: hyper::Method::POST,
                url: endpoint.row.url.clone(),
                headers: vec![
                    ("content-type".into(), "application/json".into(), false),
                    ("webhook-id".into(), msg_id, false),
                    ("webhook-timestamp".into(), timestamp.to_string(), false),
                    ("webhook-signature".into(), signature, true),
                ],
                body: Some(body),
                timeout: Duration::from_millis(config.timeout_ms),
                user_agent: "kith-webhooks",
                max_body: EXCERPT,
                truncate_body: true,
            };
            let clock = Instant::now();
            let result = outbound::send(&policy, request, Some(&mut reuse)).await;
            let took = clock.elapsed();
            metrics::histogram!("kith_webhook_delivery_duration_seconds").record(took.as_secs_f64());
            let latency_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
            let (status_code, response, error) = match result {
                Ok(response) if (200..300).contains(&response.status) => {
                    (Some(i64::from(response.status)), Some(excerpt(&response.body)), None)
                }
                Ok(response) => (
                    Some(i64::from(response.status)),
                    Some(excerpt(&response.body)),
                    Some(format!("the endpoint answered {}", response.status)),
                ),
                Err(err) => (None, None, Some(err.message)),
            };
            let outcome = match error {
                None => {
                    delivered = true;
                    metrics::counter!("kith_webhook_deliveries_total", "outcome" => "delivered").increment(1);
                    Outcome {
                        id: delivery.id,
                        state: "delivered".into(),
                        attempts,
                        status_code,
                        latency_ms,
                        response,
                        error: None,
                        next_attempt_at: None,
                        at,
                    }
                }
                Some(error) => {
                    let next = Utc::now() + chrono::Duration::from_std(backoff(config, attempts)).unwrap_or_default();
                    let dead = next > delivery.retry_until;
                    let label = if dead { "dead" } else { "failed" };
                    metrics::counter!("kith_webhook_deliveries_total", "outcome" => label).increment(1);
                    failed = !dead;
                    Outcome {
                        id: delivery.id,
                        state: if dead { "dead" } else { "pending" }.into(),
                        attempts,
                        status_code,
                        latency_ms,
                        response,
                        error: Some(error),
                        next_attempt_at: if dead { None } else { Some(next) },
                        at,
                    }
                }
            };
            // A failure not yet dead holds back the events after it.
            let stop = outcome.state == "pending";
            outcomes.push(outcome);
            if stop {
                break;
            }
        }
        let any_failure = outcomes.iter().any(|o| o.error.is_some());
        let tx = kith.store.begin(&Actor::system("webhooks")).await?;
        store::record_outcomes(tx.conn(), &outcomes).await?;
        if delivered {
            store::set_failing(tx.conn(), id, None).await?;
        }
        if any_failure {
            store::set_failing(tx.conn(), id, Some(Utc::now())).await?;
        }
        tx.commit().await?;
        if any_failure && !delivered {
            let failing_since = store::get(db, id).await?.and_then(|r| r.failing_since).unwrap_or_else(Utc::now);
            let failing_for = (Utc::now() - failing_since).to_std().unwrap_or_default();
            if failing_for >= Duration::from_secs(config.disable_after_secs) {
                let reason = format!(
                    "every delivery failed for {} s (the limit is {} s); the last error: {}",
                    failing_for.as_secs(),
                    config.disable_after_secs,
                    outcomes.iter().rev().find_map(|o| o.error.clone()).unwrap_or_default()
                );
                disable(kith, id, &reason).await?;
                return Ok(());
            }
        }
        if failed || started.elapsed() >= ROUND {
            return Ok(());
        }
    }
}

async fn disable(kith: &Kith, id: Uuid, reason: &str) -> crate::Result<()> {
    tracing::warn!(webhook = %id, reason, "webhook disabled");
    let tx = kith.store.begin(&Actor::system("webhooks")).await?;
    webhooks::disable(&tx, id, reason).await?;
    tx.commit().await
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT)]);
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap() {
        let config = WebhooksConfig { retry_base_ms: 1_000, retry_max_ms: 60_000, ..WebhooksConfig::default() };
        for _ in 0..50 {
            let first = backoff(&config, 1);
            assert!((Duration::from_millis(500)..=Duration::from_secs(1)).contains(&first), "{first:?}");
            let third = backoff(&config, 3);
            assert!((Duration::from_secs(2)..=Duration::from_secs(4)).contains(&third), "{third:?}");
            let late = backoff(&config, 40);
            assert!((Duration::from_secs(30)..=Duration::from_secs(60)).contains(&late), "{late:?}");
        }
    }
}
