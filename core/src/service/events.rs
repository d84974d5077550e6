//! Live events: a task follows the outbox (so it sees the commits of every Kith process on the
//! database) and broadcasts each event to in-process subscribers such as GraphQL subscriptions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use tokio::sync::broadcast;

use crate::domain::actor::Role;
use crate::domain::object::Registry;
use crate::store::Store;
use crate::store::outbox::{self, Event};

/// How often the outbox is polled for new events.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long the ids of erased records are remembered: longer than an event can wait in the
/// broadcast's buffer for a slow subscriber.
const FORGET_FOR: Duration = Duration::from_secs(600);

/// The broadcast of committed events.
#[derive(Debug)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<Event>>,
    started: AtomicBool,
    /// Records erased lately (from any process: learnt from `contact.erased` events), with when:
    /// events about them still waiting in a subscriber's buffer are not delivered.
    forgotten: Mutex<HashMap<Uuid, Instant>>,
}

impl Default for EventHub {
    fn default() -> EventHub {
        EventHub { sender: broadcast::channel(1_024).0, started: AtomicBool::new(false), forgotten: Mutex::default() }
    }
}

impl EventHub {
    /// Whether `event` is about a record erased since it was committed (and is not the
    /// erasure's own event).
    pub fn is_forgotten(&self, event: &Event) -> bool {
        let Some(id) = event.record_id else { return false };
        event.kind != "contact.erased"
            && self.forgotten.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(&id)
    }

    /// Remembers the records an erasure event names.
    fn learn(&self, event: &Event) {
        if event.kind != "contact.erased" {
            return;
        }
        let now = Instant::now();
        let mut forgotten = self.forgotten.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        forgotten.retain(|_, at| now.duration_since(*at) < FORGET_FOR);
        let ids = event.payload.get("erasedIds").and_then(|v| v.as_array()).into_iter().flatten();
        for id in ids.filter_map(|v| v.as_str()).filter_map(|s| Uuid::parse_str(s).ok()) {
            forgotten.insert(id, now);
        }
    }

    /// A receiver of events committed from now on. A slow receiver skips what it missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// Starts following the outbox (once per hub), from its current end. The task stops when
    /// the hub is dropped.
    pub fn start(self: &Arc<Self>, store: Store) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut after = match last_seq(&store).await {
                Ok(seq) => seq,
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the outbox; live events are off");
                    return;
                }
            };
            loop {
                tokio::time::sleep(POLL_INTERVAL).await;
                let Some(hub) = hub.upgrade() else { return };
                if hub.sender.receiver_count() == 0 {
                    // Nobody listens: skip ahead without reading the events.
                    if let Ok(seq) = last_seq(&store).await {
                        after = seq;
                    }
                    continue;
                }
                match outbox::read(store.conn(), after, 500).await {
                    Ok(events) => {
                        for event in events {
                            after = event.seq;
                            // Events meant for one plugin are not broadcast.
                            if event.audience.is_some() {
                                continue;
                            }
                            hub.learn(&event);
                            let _ = hub.sender.send(Arc::new(event));
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "reading the outbox for live events"),
                }
            }
        });
    }
}

/// The least role that may receive events of `object`: records of the registry's objects are
/// read by every role through queries; anything else (tokens, custom field definitions,
/// plugins) is administration, for admins only.
pub fn read_role(registry: &Registry, object: &str) -> Role {
    if registry.get(object).is_some() { Role::Viewer } else { Role::Admin }
}

async fn last_seq(store: &Store) -> crate::Result<i64> {
    outbox::last_seq(store.conn()).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::EventHub;
    use crate::domain::value::Value;
    use crate::store::outbox::Event;

    fn event(kind: &str, record: Uuid, payload: serde_json::Value) -> Event {
        Event {
            seq: 1,
            event_id: Uuid::now_v7(),
            kind: kind.into(),
            object: "contact".into(),
            record_id: Some(record),
            payload,
            actor: "test".into(),
            origin_plugin: None,
            depth: 0,
            occurred_at: Value::Null,
            audience: None,
        }
    }

    /// Events about erased records still waiting in a subscriber's buffer are dropped once the
    /// erasure's event has passed; the erasure's own event and other records' are not.
    #[test]
    fn an_erasure_makes_buffered_events_about_its_records_forgotten() {
        let hub = EventHub::default();
        let (erased, activity, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let created = event("contact.created", erased, json!({"record": {"email": "x@example.org"}}));
        let note = event("activity.created", activity, json!({}));
        assert!(!hub.is_forgotten(&created));
        let erasure = event(
            "contact.erased",
            erased,
            json!({"erasedIds": [erased.to_string(), activity.to_string()], "record": {"id": erased.to_string()}}),
        );
        hub.learn(&erasure);
        assert!(hub.is_forgotten(&created) && hub.is_forgotten(&note));
        assert!(!hub.is_forgotten(&erasure));
        assert!(!hub.is_forgotten(&event("contact.created", other, json!({}))));
    }
}
