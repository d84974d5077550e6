//! Outbound webhooks, the use cases: endpoints created, changed, deleted, re-enabled and
//! disabled (each with its audit entry and a `webhook.*` event), secrets generated and rotated,
//! pings, replays; and what the delivery worker (`service::webhook_delivery`) needs: which
//! events an endpoint receives (event types and a filter on the record after the change), the
//! body it is sent and its Standard Webhooks signature.
//!
//! Secrets are `whsec_` and the base64 of 32 random bytes. They are stored as they are (an HMAC
//! needs the key itself, so a hash would not do), answered once, by `createWebhook` and
//! `rotateWebhookSecret`, and never logged, listed or written to the audit log or outbox.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::config::WebhooksConfig;
use crate::domain::DomainError;
use crate::domain::actor::Role;
use crate::domain::filter::Filter;
use crate::domain::object::Registry;
use crate::domain::value::{Value, format_datetime};
use crate::error::Result;
use crate::store::outbox::{self, Event};
use crate::store::webhooks::{self as store, Replay, WebhookRow};
use crate::store::{Tx, audit};

/// Objects whose events are not records of the registry but may be subscribed to.
const ADMIN_OBJECTS: &[&str] = &["token", "customField", "webhook"];
/// Longest description.
const MAX_DESCRIPTION: usize = 500;
/// Most event types one endpoint names.
const MAX_EVENTS: usize = 50;

/// What an admin gives to create or change an endpoint (absent fields of a change stay).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookInput {
    /// Where deliveries are POSTed: an `http` or `https` URL.
    pub url: Option<String>,
    /// Event types: `contact.created`, `contact.*`, `*`.
    pub events: Option<Vec<String>>,
    /// A filter in the language of lists (JSON), on the record after the change; `null`
    /// removes it.
    pub filter: Option<Json>,
    /// What it is for.
    pub description: Option<String>,
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&outer.finalize());
    mac
}

/// One Standard Webhooks signature, `v1,<base64>`, of `id.timestamp.body` with `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD.decode(key).unwrap_or_else(|_| key.as_bytes().to_vec());
    let mut message = Vec::with_capacity(id.len() + body.len() + 24);
    message.extend_from_slice(id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, &message)))
}

/// The `webhook-signature` header: signed with the current secret and, during a rotation's
/// overlap, with the previous one too (space-separated).
pub fn signature_header(webhook: &WebhookRow, id: &str, timestamp: i64, body: &[u8], now: DateTime<Utc>) -> String {
    let mut header = sign(&webhook.secret, id, timestamp, body);
    if let (Some(previous), Some(until)) = (&webhook.previous_secret, webhook.previous_secret_until)
        && until > now
    {
        header.push(' ');
        header.push_str(&sign(previous, id, timestamp, body));
    }
    header
}

/// Whether the event type `kind` is one `pattern` names: `*`, `contact.*` or `contact.created`.
pub fn pattern_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

/// The object an event type pattern is about (`None` for `*`).
fn pattern_object(pattern: &str) -> Option<&str> {
    pattern.split_once('.').map(|(object, _)| object)
}

fn check_events(registry: &Registry, events: &[String]) -> Result<()> {
    if events.is_empty() {
        return Err(DomainError::invalid("events", "name at least one event type (`contact.created`, `*`)").into());
    }
    if events.len() > MAX_EVENTS {
        return Err(DomainError::invalid("events", format!("at most {MAX_EVENTS} event types")).into());
    }
    for (i, pattern) in events.iter().enumerate() {
        let field = format!("events[{i}]");
        if pattern == "*" {
            continue;
        }
        let Some((object, action)) = pattern.split_once('.') else {
            return Err(DomainError::invalid(
                field,
                format!(
                    "`{pattern}` is not an event type: write `object.action` (`contact.created`), `contact.*` or `*`"
                ),
            )
            .into());
        };
        if registry.get(object).is_none() && !ADMIN_OBJECTS.contains(&object) {
            return Err(DomainError::invalid(field, format!("`{object}` is not an object with events")).into());
        }
        let action_ok =
            action == "*" || (!action.is_empty() && action.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !action_ok {
            return Err(DomainError::invalid(field, format!("`{action}` is not an action (`created`, `*`)")).into());
        }
    }
    Ok(())
}

/// Parses `filter` for every object the event types name, with their custom fields; the
/// filters by object. A filter needs event types of registry objects only (not `*`).
pub async fn compile_filter<C: sea_orm::ConnectionTrait>(
    db: &C,
    registry: &Registry,
    events: &[String],
    filter: &Json,
) -> Result<HashMap<String, Filter>> {
    let mut out = HashMap::new();
    for pattern in events {
        let object = pattern_object(pattern).filter(|o| registry.get(o).is_some()).ok_or_else(|| {
            DomainError::invalid(
                "filter",
                format!("a filter applies to records: `{pattern}` names no object of records, so it cannot have one"),
            )
        })?;
        if out.contains_key(object) {
            continue;
        }
        let def = crate::service::object_def(registry, object)?;
        let custom = crate::store::custom_fields::for_object(db, object).await?;
        let parsed = Filter::from_json(&def, &custom, filter).map_err(|e| match e {
            DomainError::Validation { field, reason } => {
                DomainError::invalid(field, format!("{reason} (for `{object}` events)"))
            }
            other => other,
        })?;
        out.insert(object.to_owned(), parsed);
    }
    Ok(out)
}

/// Checks a URL: absolute `http` or `https`, and (unless `allow_private`) not on a private,
/// loopback or link-local address, as its name resolves now (each delivery checks again).
pub async fn check_url(url: &str, config: &WebhooksConfig) -> Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| DomainError::invalid("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(DomainError::invalid("url", "must be an http or https URL with a host").into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DomainError::invalid("url", "must not hold credentials").into());
    }
    if !config.allow_private {
        crate::service::outbound::resolve(&parsed, false, PRIVATE_HINT)
            .await
            .map_err(|e| DomainError::invalid("url", e.message))?;
    }
    Ok(())
}

/// What a refused private address says.
pub const PRIVATE_HINT: &str = "set `[webhooks] allow_private = true` to allow it";

/// Checks a new endpoint's or a change's values outside any transaction (names are resolved).
pub async fn check_input<C: sea_orm::ConnectionTrait>(
    db: &C,
    registry: &Registry,
    config: &WebhooksConfig,
    current: Option<&WebhookRow>,
    input: &WebhookInput,
) -> Result<()> {
    if let Some(url) = &input.url {
        check_url(url, config).await?;
    } else if current.is_none() {
        return Err(DomainError::invalid("url", "is required").into());
    }
    let events = input.events.clone().or_else(|| current.map(|c| c.events.clone())).unwrap_or_default();
    check_events(registry, &events)?;
    let filter = match &input.filter {
        Some(filter) => filter.clone(),
        None => match current.and_then(|c| c.filter.as_deref()) {
            Some(text) => serde_json::from_str(text).unwrap_or(Json::Null),
            None => Json::Null,
        },
    };
    if !filter.is_null() {
        compile_filter(db, registry, &events, &filter).await?;
    }
    if input.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(DomainError::invalid("description", format!("at most {MAX_DESCRIPTION} characters")).into());
    }
    Ok(())
}

fn public_json(row: &WebhookRow) -> Json {
    json!({"url": row.url, "events": row.events, "filter": row.filter, "description": row.description})
}

async fn changed(tx: &Tx, action: &str, kind: &str, id: Uuid, detail: Json) -> Result<()> {
    audit::record(tx, action, "webhook", Some(id), detail.clone()).await?;
    outbox::emit(
        tx,
        vec![outbox::NewEvent {
            kind: format!("webhook.{kind}"),
            object: "webhook".into(),
            record_id: Some(id),
            payload: json!({"webhook": detail}),
        }],
    )
    .await
}

fn filter_text(filter: &Option<Json>) -> Option<String> {
    filter.as_ref().filter(|f| !f.is_null()).map(Json::to_string)
}

/// Creates an endpoint (checked first with [`check_input`]); it and its secret, shown once.
pub async fn create(tx: &Tx, input: &WebhookInput) -> Result<(WebhookRow, String)> {
    let secret = generate_secret();
    let row = WebhookRow {
        id: Uuid::now_v7(),
        url: input.url.clone().unwrap_or_default(),
        events: input.events.clone().unwrap_or_default(),
        filter: filter_text(&input.filter),
        description: input.description.clone().filter(|d| !d.trim().is_empty()),
        secret: secret.clone(),
        previous_secret: None,
        previous_secret_until: None,
        enabled: true,
        disabled_reason: None,
        cursor_seq: 0,
        failing_since: None,
        created_at: tx.now,
        updated_at: tx.now,
    };
    store::insert(tx.conn(), &row).await?;
    changed(tx, "create", "created", row.id, public_json(&row)).await?;
    let row = get(tx, row.id).await?;
    Ok((row, secret))
}

async fn get(tx: &Tx, id: Uuid) -> Result<WebhookRow> {
    store::get(tx.conn(), id).await?.ok_or_else(|| DomainError::not_found("webhook", id).into())
}

/// Changes an endpoint (checked first with [`check_input`]).
pub async fn update(tx: &Tx, id: Uuid, input: &WebhookInput) -> Result<WebhookRow> {
    let mut row = get(tx, id).await?;
    if let Some(url) = &input.url {
        row.url = url.clone();
    }
    if let Some(events) = &input.events {
        row.events = events.clone();
    }
    if input.filter.is_some() {
        row.filter = filter_text(&input.filter);
    }
    if let Some(description) = &input.description {
        row.description = Some(description.clone()).filter(|d| !d.trim().is_empty());
    }
    row.updated_at = tx.now;
    store::update(tx.conn(), &row).await?;
    changed(tx, "update", "updated", id, public_json(&row)).await?;
    get(tx, id).await
}

/// Deletes an endpoint and its delivery log.
pub async fn delete(tx: &Tx, id: Uuid) -> Result<()> {
    let row = get(tx, id).await?;
    store::delete(tx.conn(), id).await?;
    changed(tx, "delete", "deleted", id, public_json(&row)).await
}

/// A new secret for an endpoint; the old one keeps signing (a second signature) for `overlap`.
pub async fn rotate_secret(tx: &Tx, id: Uuid, overlap: std::time::Duration) -> Result<String> {
    get(tx, id).await?;
    let secret = generate_secret();
    let until = tx.now + chrono::Duration::from_std(overlap).unwrap_or_default();
    store::rotate_secret(tx.conn(), id, &secret, until, tx.now).await?;
    changed(tx, "rotate_secret", "secret_rotated", id, json!({"previousValidUntil": format_datetime(until)})).await?;
    Ok(secret)
}

/// Re-enables an endpoint: its pending deliveries are due at once, its failure clock restarts.
pub async fn enable(tx: &Tx, id: Uuid) -> Result<WebhookRow> {
    get(tx, id).await?;
    store::set_enabled(tx.conn(), id, true, None, tx.now).await?;
    changed(tx, "enable", "enabled", id, json!({})).await?;
    get(tx, id).await
}

/// Disables an endpoint with a reason (the delivery worker does, after it failed for too
/// long), with a `webhook.disabled` event saying why.
pub async fn disable(tx: &Tx, id: Uuid, reason: &str) -> Result<()> {
    let row = get(tx, id).await?;
    store::set_enabled(tx.conn(), id, false, Some(reason), tx.now).await?;
    changed(tx, "disable", "disabled", id, json!({"url": row.url, "reason": reason})).await
}

/// Queues a `webhook.ping` event for the endpoint alone; it travels the path of every event.
pub async fn ping(tx: &Tx, id: Uuid) -> Result<()> {
    get(tx, id).await?;
    audit::record(tx, "ping", "webhook", Some(id), json!({})).await?;
    outbox::emit(
        tx,
        vec![outbox::NewEvent {
            kind: PING.into(),
            object: "webhook".into(),
            record_id: Some(id),
            payload: json!({"webhookId": id.to_string()}),
        }],
    )
    .await
}

/// The test event's type.
pub const PING: &str = "webhook.ping";

/// Sends delivered or dead deliveries again (one, or those queued in a time range); how many.
pub async fn replay(tx: &Tx, id: Uuid, which: Replay, retry_for: std::time::Duration) -> Result<u64> {
    get(tx, id).await?;
    if let Replay::One(delivery) = which {
        let found = store::delivery(tx.conn(), delivery).await?;
        if found.is_none_or(|d| d.webhook_id != id) {
            return Err(DomainError::not_found("webhook delivery", delivery).into());
        }
    }
    if let Replay::Between(from, to) = which
        && from > to
    {
        return Err(DomainError::invalid("from", "must not be after `to`").into());
    }
    let until = tx.now + chrono::Duration::from_std(retry_for).unwrap_or_default();
    let n = store::replay(tx.conn(), id, which, tx.now, until).await?;
    let detail = match which {
        Replay::One(delivery) => json!({"delivery": delivery.to_string(), "replayed": n}),
        Replay::Between(from, to) => {
            json!({"from": format_datetime(from), "to": format_datetime(to), "replayed": n})
        }
    };
    audit::record(tx, "replay", "webhook", Some(id), detail).await?;
    Ok(n)
}

/// An endpoint as the delivery worker uses it: its row and its filter parsed per object.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The stored endpoint.
    pub row: WebhookRow,
    /// The filter by object, when it has one.
    pub filters: Option<HashMap<String, Filter>>,
}

impl Endpoint {
    /// The endpoint with its filter parsed against the registry of now.
    pub async fn load<C: sea_orm::ConnectionTrait>(db: &C, registry: &Registry, row: WebhookRow) -> Result<Endpoint> {
        let filters = match row.filter.as_deref().map(serde_json::from_str::<Json>) {
            Some(Ok(filter)) if !filter.is_null() => Some(compile_filter(db, registry, &row.events, &filter).await?),
            _ => None,
        };
        Ok(Endpoint { row, filters })
    }

    /// Whether the endpoint receives `event`: a ping for it, or an event of a type it names
    /// whose record after the change satisfies its filter.
    pub fn receives(&self, event: &Event) -> bool {
        // Events meant for one plugin (its mail outcomes) are no webhook's.
        if event.audience.is_some() {
            return false;
        }
        if event.kind == PING {
            return event.record_id == Some(self.row.id);
        }
        if !self.row.events.iter().any(|p| pattern_matches(p, &event.kind)) {
            return false;
        }
        match &self.filters {
            None => true,
            Some(filters) => {
                let record = event.payload.get("record").and_then(Json::as_object);
                match (filters.get(&event.object), record) {
                    (Some(filter), Some(record)) => filter.matches(record),
                    _ => false,
                }
            }
        }
    }
}

/// The body an event is delivered with: `{"type", "timestamp", "data"}`, the data holding the
/// event's details (the record after the change, what changed) as an ADMIN may read them.
pub fn body(registry: &Registry, event: &Event) -> Vec<u8> {
    let mut data = Map::new();
    data.insert("eventId".into(), Json::String(event.event_id.to_string()));
    data.insert("object".into(), Json::String(event.object.clone()));
    data.insert("recordId".into(), event.record_id.map(|id| Json::String(id.to_string())).unwrap_or(Json::Null));
    data.insert("actor".into(), Json::String(event.actor.clone()));
    if let Json::Object(payload) = &event.payload {
        for (key, value) in payload {
            let mut value = value.clone();
            if matches!(key.as_str(), "record" | "changes")
                && let (Some(def), Json::Object(values)) = (registry.get(&event.object), &mut value)
            {
                def.redact(Role::Admin, values);
            }
            data.insert(key.clone(), value);
        }
    }
    let timestamp = match &event.occurred_at {
        Value::DateTime(at) => format_datetime(*at),
        _ => String::new(),
    };
    let body = json!({"type": event.kind, "timestamp": timestamp, "data": Json::Object(data)});
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2, and a signature checked against the Standard Webhooks reference
    /// implementation's example.
    #[test]
    fn hmac_and_signature() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let long_key = [0xaau8; 131];
        let mac = hmac_sha256(&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        // From the Standard Webhooks specification's test vectors.
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 44, "{secret}");
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "deal.updated"));
        assert!(pattern_matches("deal.*", "deal.updated"));
        assert!(!pattern_matches("deal.*", "dealer.updated"));
        assert!(pattern_matches("deal.updated", "deal.updated"));
        assert!(!pattern_matches("deal.created", "deal.updated"));
        let registry = Registry::core();
        assert!(check_events(&registry, &["contact.created".into(), "deal.*".into(), "*".into()]).is_ok());
        assert!(check_events(&registry, &["webhook.disabled".into(), "token.created".into()]).is_ok());
        assert!(check_events(&registry, &["nope.created".into()]).is_err());
        assert!(check_events(&registry, &["contact".into()]).is_err());
        assert!(check_events(&registry, &[]).is_err());
    }
}
