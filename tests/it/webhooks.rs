//! Outbound webhooks end to end: a real receiver (an axum server on loopback that records what
//! it gets, and can be told to fail or to hold requests) gets signed deliveries (the signature
//! recomputed here per Standard Webhooks), filtered, in order, retried with the same
//! `webhook-id`, dead-lettered, replayed by id and by time range, after a restart too; a
//! rotation signs with both secrets; an endpoint failing too long is disabled with an event; a
//! held endpoint does not hold back another; private addresses are refused unless allowed;
//! everything is ADMIN-only; the CLI does the same. On both databases.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use kith_core::config::WebhooksConfig;
use kith_core::domain::actor::Role;
use kith_core::service::webhook_delivery;
use kith_tests::TestDb;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::util::{Server, code, eventually, run_cli_env, token};

/// What the receiver got: one request.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    timestamp: String,
    signature: String,
    raw: Vec<u8>,
    body: Value,
    answered: u16,
}

#[derive(Default)]
struct Inbox {
    hits: Mutex<Vec<Hit>>,
    /// Answer 500 to this many more requests.
    fail: AtomicUsize,
    /// While set, requests wait for it to be opened.
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

/// A webhook receiver on loopback.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
}

impl Receiver {
    async fn start() -> Receiver {
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inbox }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.inbox.hits.lock().unwrap().clone()
    }

    /// The successful deliveries.
    fn delivered(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.answered == 200).collect()
    }

    fn fail_next(&self, n: usize) {
        self.inbox.fail.store(n, Ordering::SeqCst);
    }

    /// Makes requests wait until the returned semaphore gets permits.
    fn hold(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *self.inbox.gate.lock().unwrap() = Some(gate.clone());
        gate
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let gate = inbox.gate.lock().unwrap().clone();
    if let Some(gate) = gate {
        gate.acquire().await.unwrap().forget();
    }
    let failing = inbox.fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let status = if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    inbox.hits.lock().unwrap().push(Hit {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        raw: body.to_vec(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: status.as_u16(),
    });
    status
}

/// HMAC-SHA256, written here from RFC 2104 (independent of Kith's).
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), message].concat());
    Sha256::digest([opad.as_slice(), inner.as_slice()].concat()).to_vec()
}

/// Whether one of the hit's signatures verifies with `secret`, per Standard Webhooks.
fn verifies(hit: &Hit, secret: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let signed = [hit.id.as_bytes(), b".", hit.timestamp.as_bytes(), b".", hit.raw.as_slice()].concat();
    let expected = format!("v1,{}", b64.encode(hmac(&key, &signed)));
    hit.signature.split(' ').any(|s| s == expected)
}

/// Retries in tens of milliseconds, polls every 20 ms, loopback allowed.
fn fast() -> WebhooksConfig {
    WebhooksConfig {
        allow_private: true,
        retry_base_ms: 50,
        retry_max_ms: 200,
        poll_interval_ms: 20,
        timeout_ms: 5_000,
        ..WebhooksConfig::default()
    }
}

const CREATE: &str =
    "mutation($input: WebhookInput!) { createWebhook(input: $input) { secret webhook { id url events enabled } } }";

/// Creates a webhook; (id, secret).
async fn create(server: &Server, admin: &str, input: Value) -> (String, String) {
    let answer = server.gql(admin, CREATE, json!({"input": input})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    let created = &answer["data"]["createWebhook"];
    (created["webhook"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

async fn deliveries(server: &Server, admin: &str, webhook: &str, state: Option<&str>) -> Vec<Value> {
    let answer = server
        .gql(
            admin,
            "query($id: ID!, $state: WebhookDeliveryState) { webhookDeliveries(webhookId: $id, state: $state, first: 500) \
             { id type state attempts statusCode latencyMs error response createdAt } }",
            json!({"id": webhook, "state": state}),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["webhookDeliveries"].as_array().unwrap().clone()
}

async fn contact(db: &TestDb, first: &str, last: &str) -> String {
    db.create("contact", json!({"firstName": first, "lastName": last})).await.unwrap().id().to_string()
}

/// Waits until the receiver has `n` successful deliveries; returns them.
async fn wait_delivered(receiver: &Receiver, n: usize, what: &str) -> Vec<Hit> {
    eventually(30, what, || async {
        let got = receiver.delivered();
        (got.len() >= n).then_some(got)
    })
    .await
}

fn first_names(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.body["data"]["record"]["firstName"].as_str().unwrap_or("?").to_owned()).collect()
}

#[tokio::test]
async fn a_receiver_gets_signed_filtered_deliveries_in_order_and_pings() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(fast());
        let server = Server::start(&db).await;
        let worker = webhook_delivery::start(&db.kith);
        let admin = token(&db, Role::Admin).await;
        let receiver = Receiver::start().await;
        let (id, secret) = create(
            &server,
            &admin,
            json!({"url": receiver.url(), "events": ["contact.created", "contact.updated"],
                   "filter": {"lastName": {"startsWith": "lov"}}, "description": "CRM sync"}),
        )
        .await;
        assert!(secret.starts_with("whsec_"), "{secret}");
        let started = chrono::Utc::now().timestamp();
        let ada = contact(&db, "Ada", "Lovelace").await;
        contact(&db, "Bob", "Byron").await; // filtered out
        db.update("contact", ada.parse().unwrap(), json!({"firstName": "Augusta"}), None).await.unwrap();
        for i in 0..5 {
            contact(&db, &format!("L{i}"), "Lovelace").await;
        }
        let hits = wait_delivered(&receiver, 7, "seven deliveries").await;
        assert_eq!(first_names(&hits), ["Ada", "Augusta", "L0", "L1", "L2", "L3", "L4"], "{}: in order", db.name);
        assert_eq!(hits[0].body["type"], "contact.created", "{}", db.name);
        assert_eq!(hits[1].body["type"], "contact.updated", "{}", db.name);
        assert_eq!(hits[0].body["data"]["recordId"], ada.as_str(), "{}", db.name);
        assert!(hits[0].body["timestamp"].as_str().is_some_and(|t| t.starts_with("20")), "{}", db.name);
        for hit in &hits {
            assert!(verifies(hit, &secret), "{}: the signature verifies: {hit:?}", db.name);
            assert!(!verifies(hit, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), "{}", db.name);
            let ts: i64 = hit.timestamp.parse().unwrap();
            assert!(ts >= started - 1, "{}: a current timestamp", db.name);
        }
        let ids: std::collections::BTreeSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids.len(), 7, "{}: one webhook-id per event", db.name);
        // The delivery log (written once each answer is in).
        let log = eventually(30, "the log of seven deliveries", || async {
            let log = deliveries(&server, &admin, &id, Some("DELIVERED")).await;
            (log.len() == 7).then_some(log)
        })
        .await;
        for entry in &log {
            assert_eq!(entry["state"], "DELIVERED", "{}", db.name);
            assert_eq!(entry["statusCode"], 200, "{}", db.name);
            assert_eq!(entry["attempts"], 1, "{}", db.name);
            assert!(entry["latencyMs"].is_i64(), "{}", db.name);
        }
        assert!(log.iter().any(|e| e["id"] == hits[0].id.as_str()), "{}: the log's id is the header's", db.name);
        // A ping goes to this endpoint the same way.
        let pinged = server.gql(&admin, "mutation($id: ID!) { pingWebhook(id: $id) }", json!({"id": id})).await;
        assert_eq!(pinged["data"]["pingWebhook"], true, "{pinged}");
        let hits = wait_delivered(&receiver, 8, "the ping").await;
        assert_eq!(hits[7].body["type"], "webhook.ping", "{}", db.name);
        assert!(verifies(&hits[7], &secret), "{}", db.name);
        // The list shows no secret.
        let listed = server.gql(&admin, "{ webhooks { id url events filter description enabled } }", json!({})).await;
        assert_eq!(listed["data"]["webhooks"][0]["filter"], json!({"lastName": {"startsWith": "lov"}}), "{listed}");
        assert!(!listed.to_string().contains(&secret), "{}", db.name);
        worker.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn failures_are_retried_with_the_same_id_in_order_then_dead_lettered_and_replayed() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(fast());
        let server = Server::start(&db).await;
        let worker = webhook_delivery::start(&db.kith);
        let admin = token(&db, Role::Admin).await;
        let receiver = Receiver::start().await;
        let (id, secret) = create(&server, &admin, json!({"url": receiver.url(), "events": ["contact.*"]})).await;
        let since = chrono::Utc::now() - chrono::Duration::seconds(1);
        receiver.fail_next(2);
        contact(&db, "A", "One").await;
        contact(&db, "B", "Two").await;
        let got = wait_delivered(&receiver, 2, "A and B after two failures").await;
        assert_eq!(first_names(&got), ["A", "B"], "{}: B waited for A", db.name);
        let all = receiver.hits();
        assert_eq!(all.len(), 4, "{}: {all:?}", db.name);
        assert_eq!(all.iter().map(|h| h.answered).collect::<Vec<_>>(), [500, 500, 200, 200], "{}", db.name);
        assert!(all[..3].iter().all(|h| h.id == all[0].id), "{}: retries keep the webhook-id", db.name);
        assert_ne!(all[3].id, all[0].id, "{}", db.name);
        let a = eventually(30, "A's log entry", || async {
            let log = deliveries(&server, &admin, &id, Some("DELIVERED")).await;
            log.into_iter().find(|e| e["id"] == all[0].id.as_str())
        })
        .await;
        assert_eq!(a["attempts"], 3, "{}: {a}", db.name);
        // Past the retry window, a delivery goes dead and the next event goes on (the worker
        // restarted so that it queues C under the new window).
        worker.stop().await;
        db.kith.configure_webhooks(WebhooksConfig { retry_for_secs: 0, ..fast() });
        receiver.fail_next(usize::MAX);
        contact(&db, "C", "Three").await;
        let worker = webhook_delivery::start(&db.kith);
        let dead = eventually(30, "C dead", || async {
            let dead = deliveries(&server, &admin, &id, Some("DEAD")).await;
            (!dead.is_empty()).then_some(dead)
        })
        .await;
        assert_eq!(dead.len(), 1, "{}: {dead:?}", db.name);
        assert_eq!(dead[0]["error"], "the endpoint answered 500", "{}", db.name);
        assert_eq!(dead[0]["statusCode"], 500, "{}", db.name);
        worker.stop().await;
        db.kith.configure_webhooks(fast());
        receiver.fail_next(0);
        contact(&db, "D", "Four").await;
        let worker = webhook_delivery::start(&db.kith);
        let got = wait_delivered(&receiver, 3, "D after C went dead").await;
        assert_eq!(first_names(&got), ["A", "B", "D"], "{}", db.name);
        // Replay by id: C again, with its id.
        let dead_id = dead[0]["id"].as_str().unwrap().to_owned();
        let replay = "mutation($w: ID!, $d: ID, $from: DateTime, $to: DateTime) \
                      { replayWebhookDeliveries(webhookId: $w, deliveryId: $d, from: $from, to: $to) }";
        let answer = server.gql(&admin, replay, json!({"w": id, "d": dead_id})).await;
        assert_eq!(answer["data"]["replayWebhookDeliveries"], 1, "{answer}");
        let got = wait_delivered(&receiver, 4, "C replayed").await;
        assert_eq!(first_names(&got), ["A", "B", "D", "C"], "{}", db.name);
        assert_eq!(got[3].id, dead_id, "{}: the replay keeps the webhook-id", db.name);
        assert!(verifies(&got[3], &secret), "{}", db.name);
        // Replay by time range: the four again, in outbox order.
        eventually(30, "C's replay recorded", || async {
            (deliveries(&server, &admin, &id, Some("DELIVERED")).await.len() == 4).then_some(())
        })
        .await;
        let answer = server.gql(&admin, replay, json!({"w": id, "from": since.to_rfc3339()})).await;
        assert_eq!(answer["data"]["replayWebhookDeliveries"], 4, "{answer}");
        let got = wait_delivered(&receiver, 8, "the range replayed").await;
        assert_eq!(first_names(&got[4..]), ["A", "B", "C", "D"], "{}", db.name);
        // Bad replays are named errors.
        let answer = server.gql(&admin, replay, json!({"w": id})).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        let answer = server.gql(&admin, replay, json!({"w": id, "d": uuid::Uuid::now_v7().to_string()})).await;
        assert_eq!(code(&answer), "NOT_FOUND", "{answer}");
        worker.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_rotation_signs_with_both_secrets_for_the_overlap() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(fast());
        let server = Server::start(&db).await;
        let worker = webhook_delivery::start(&db.kith);
        let admin = token(&db, Role::Admin).await;
        let receiver = Receiver::start().await;
        let (id, old) = create(&server, &admin, json!({"url": receiver.url(), "events": ["contact.created"]})).await;
        let answer = server.gql(&admin, "mutation($id: ID!) { rotateWebhookSecret(id: $id) }", json!({"id": id})).await;
        let new = answer["data"]["rotateWebhookSecret"].as_str().unwrap().to_owned();
        assert_ne!(new, old, "{}", db.name);
        contact(&db, "Ada", "Lovelace").await;
        let hits = wait_delivered(&receiver, 1, "a delivery after the rotation").await;
        assert_eq!(hits[0].signature.split(' ').count(), 2, "{}: {}", db.name, hits[0].signature);
        assert!(verifies(&hits[0], &old) && verifies(&hits[0], &new), "{}", db.name);
        let shown = server.gql(&admin, "{ webhooks { previousSecretValidUntil } }", json!({})).await;
        assert!(shown["data"]["webhooks"][0]["previousSecretValidUntil"].is_string(), "{shown}");
        // With no overlap, the next rotation signs with the new secret alone.
        db.kith.configure_webhooks(WebhooksConfig { rotation_overlap_secs: 0, ..fast() });
        let answer = server.gql(&admin, "mutation($id: ID!) { rotateWebhookSecret(id: $id) }", json!({"id": id})).await;
        let newest = answer["data"]["rotateWebhookSecret"].as_str().unwrap().to_owned();
        contact(&db, "Bob", "Byron").await;
        let hits = wait_delivered(&receiver, 2, "a delivery after the second rotation").await;
        assert_eq!(hits[1].signature.split(' ').count(), 1, "{}", db.name);
        assert!(verifies(&hits[1], &newest) && !verifies(&hits[1], &new), "{}", db.name);
        worker.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_with_an_event_and_can_be_enabled() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(WebhooksConfig { disable_after_secs: 1, ..fast() });
        let server = Server::start(&db).await;
        let worker = webhook_delivery::start(&db.kith);
        let admin = token(&db, Role::Admin).await;
        let (broken, watcher) = (Receiver::start().await, Receiver::start().await);
        broken.fail_next(usize::MAX);
        let (id, _) = create(&server, &admin, json!({"url": broken.url(), "events": ["contact.created"]})).await;
        create(&server, &admin, json!({"url": watcher.url(), "events": ["webhook.disabled"]})).await;
        contact(&db, "Ada", "Lovelace").await;
        let hits = wait_delivered(&watcher, 1, "webhook.disabled").await;
        assert_eq!(hits[0].body["type"], "webhook.disabled", "{}", db.name);
        assert_eq!(hits[0].body["data"]["recordId"], id.as_str(), "{}", db.name);
        let query = "query($id: ID!) { webhook(id: $id) { enabled disabledReason } }";
        let shown = server.gql(&admin, query, json!({"id": id})).await;
        assert_eq!(shown["data"]["webhook"]["enabled"], false, "{shown}");
        let reason = shown["data"]["webhook"]["disabledReason"].as_str().unwrap();
        assert!(reason.contains("the endpoint answered 500"), "{reason}");
        // Enabled again, the pending delivery goes out.
        broken.fail_next(0);
        let enabled =
            server.gql(&admin, "mutation($id: ID!) { enableWebhook(id: $id) { enabled } }", json!({"id": id})).await;
        assert_eq!(enabled["data"]["enableWebhook"]["enabled"], true, "{enabled}");
        let got = wait_delivered(&broken, 1, "the held delivery").await;
        assert_eq!(first_names(&got), ["Ada"], "{}", db.name);
        worker.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_held_endpoint_does_not_hold_back_another() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(WebhooksConfig { timeout_ms: 60_000, ..fast() });
        let server = Server::start(&db).await;
        let worker = webhook_delivery::start(&db.kith);
        let admin = token(&db, Role::Admin).await;
        let (slow, quick) = (Receiver::start().await, Receiver::start().await);
        let gate = slow.hold();
        create(&server, &admin, json!({"url": slow.url(), "events": ["contact.created"]})).await;
        create(&server, &admin, json!({"url": quick.url(), "events": ["contact.created"]})).await;
        for i in 0..5 {
            contact(&db, &format!("P{i}"), "Person").await;
        }
        let got = wait_delivered(&quick, 5, "the quick endpoint's five").await;
        assert_eq!(first_names(&got), ["P0", "P1", "P2", "P3", "P4"], "{}", db.name);
        assert!(slow.hits().is_empty(), "{}: the slow one is still held on its first", db.name);
        gate.add_permits(5);
        let got = wait_delivered(&slow, 5, "the slow endpoint's five").await;
        assert_eq!(first_names(&got), ["P0", "P1", "P2", "P3", "P4"], "{}", db.name);
        worker.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn pending_deliveries_are_sent_after_a_restart() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(fast());
        let server = Server::start(&db).await;
        let admin = token(&db, Role::Admin).await;
        let receiver = Receiver::start().await;
        let (id, _) = create(&server, &admin, json!({"url": receiver.url(), "events": ["contact.created"]})).await;
        receiver.fail_next(usize::MAX);
        contact(&db, "Ada", "Lovelace").await;
        contact(&db, "Bob", "Byron").await;
        let worker = webhook_delivery::start(&db.kith);
        eventually(30, "a failed attempt", || async { (!receiver.hits().is_empty()).then_some(()) }).await;
        // A first attempt may leave before its delivery is stored (the worker stopped then would
        // send it again from the cursor): wait for both to be stored as pending.
        eventually(30, "both queued", || async { (db.count_rows("webhook_delivery").await == 2).then_some(()) }).await;
        worker.stop().await;
        server.stop().await;
        let pending = db.count_rows("webhook_delivery").await;
        assert_eq!(pending, 2, "{}: both queued", db.name);
        // A new server and worker on the same database.
        receiver.fail_next(0);
        let server = Server::start(&db).await;
        let worker = webhook_delivery::start(&db.kith);
        let got = wait_delivered(&receiver, 2, "both after the restart").await;
        assert_eq!(first_names(&got), ["Ada", "Bob"], "{}", db.name);
        // The log is written once each answer is in, which may be after the receiver saw it.
        eventually(30, "both logged as delivered", || async {
            (deliveries(&server, &admin, &id, Some("DELIVERED")).await.len() == 2).then_some(())
        })
        .await;
        worker.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_input_and_private_addresses_are_refused_and_only_admins_manage_webhooks() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(WebhooksConfig { allow_private: false, ..fast() });
        let server = Server::start(&db).await;
        let admin = token(&db, Role::Admin).await;
        let agent = token(&db, Role::Agent).await;
        let refused = |input: Value| {
            let (server, admin) = (&server, &admin);
            async move {
                let answer = server.gql(admin, CREATE, json!({"input": input})).await;
                assert_eq!(code(&answer), "BAD_USER_INPUT", "{input}: {answer}");
                answer["errors"][0]["message"].as_str().unwrap().to_owned()
            }
        };
        for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/", "http://10.0.0.1/"] {
            let message = refused(json!({"url": url, "events": ["contact.created"]})).await;
            assert!(message.contains("allow_private"), "{url}: {message}");
        }
        refused(json!({"url": "ftp://example.org/", "events": ["contact.created"]})).await;
        refused(json!({"url": "not a url", "events": ["contact.created"]})).await;
        let ok_url = "http://93.184.216.34/hook";
        let message = refused(json!({"url": ok_url, "events": ["nothing.created"]})).await;
        assert!(message.contains("nothing"), "{message}");
        refused(json!({"url": ok_url, "events": []})).await;
        let message =
            refused(json!({"url": ok_url, "events": ["contact.created"], "filter": {"nope": {"eq": 1}}})).await;
        assert!(message.contains("nope"), "{message}");
        refused(json!({"url": ok_url, "events": ["*"], "filter": {"firstName": {"eq": "Ada"}}})).await;
        // An endpoint allowed when it was made is checked again on every delivery.
        db.kith.configure_webhooks(fast());
        let receiver = Receiver::start().await;
        let (id, _) = create(&server, &admin, json!({"url": receiver.url(), "events": ["contact.created"]})).await;
        db.kith.configure_webhooks(WebhooksConfig { allow_private: false, ..fast() });
        let worker = webhook_delivery::start(&db.kith);
        contact(&db, "Ada", "Lovelace").await;
        let failed = eventually(30, "a refused attempt", || async {
            let log = deliveries(&server, &admin, &id, None).await;
            log.into_iter().find(|e| e["error"].is_string())
        })
        .await;
        assert!(failed["error"].as_str().unwrap().contains("private"), "{failed}");
        assert!(receiver.hits().is_empty(), "{}", db.name);
        // ADMIN only, before any argument is looked at.
        let answer = server.gql(&agent, CREATE, json!({"input": {"url": receiver.url(), "events": ["*"]}})).await;
        assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
        let answer = server.gql(&agent, "{ webhooks { id } }", json!({})).await;
        assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
        for mutation in ["deleteWebhook", "pingWebhook", "rotateWebhookSecret"] {
            let answer =
                server.gql(&agent, &format!("mutation($id: ID!) {{ {mutation}(id: $id) }}"), json!({"id": id})).await;
            assert_eq!(code(&answer), "FORBIDDEN", "{mutation}: {answer}");
        }
        // Updates are checked like creations; deleting removes the log.
        let update =
            "mutation($id: ID!, $input: WebhookInput!) { updateWebhook(id: $id, input: $input) { events filter } }";
        let answer = server.gql(&admin, update, json!({"id": id, "input": {"events": ["bogus"]}})).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        let answer = server
            .gql(&admin, update, json!({"id": id, "input": {"events": ["deal.*"], "filter": {"title": {"eq": "x"}}}}))
            .await;
        assert_eq!(answer["data"]["updateWebhook"]["events"], json!(["deal.*"]), "{answer}");
        let answer = server.gql(&admin, update, json!({"id": id, "input": {"filter": null}})).await;
        assert!(answer["data"]["updateWebhook"]["filter"].is_null(), "{answer}");
        worker.stop().await;
        let answer = server.gql(&admin, "mutation($id: ID!) { deleteWebhook(id: $id) }", json!({"id": id})).await;
        assert_eq!(answer["data"]["deleteWebhook"], true, "{answer}");
        assert_eq!(db.count_rows("webhook_delivery").await, 0, "{}", db.name);
        let answer = server.gql(&admin, "mutation($id: ID!) { deleteWebhook(id: $id) }", json!({"id": id})).await;
        assert_eq!(code(&answer), "NOT_FOUND", "{answer}");
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_cli_adds_lists_replays_and_removes_webhooks() {
    for db in TestDb::all().await {
        db.kith.configure_webhooks(fast());
        let receiver = Receiver::start().await;
        let env = vec![("KITH_WEBHOOKS__ALLOW_PRIVATE".to_owned(), "true".to_owned())];
        let url = receiver.url();
        let added = run_cli_env(
            &db.url,
            &["webhook", "add", &url, "--event", "contact.created", "--filter", r#"{"lastName": {"eq": "Lovelace"}}"#],
            "",
            env.clone(),
        )
        .await
        .unwrap();
        let mut lines = added.stdout.lines();
        let (id, secret) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
        assert!(secret.starts_with("whsec_"), "{}", added.stdout);
        let refused = run_cli_env(&db.url, &["webhook", "add", &url, "--event", "contact.created"], "", vec![]).await;
        assert!(refused.unwrap_err().to_string().contains("allow_private"), "{}", db.name);
        let listed = run_cli_env(&db.url, &["webhook", "list"], "", vec![]).await.unwrap();
        assert!(listed.stdout.contains(&id) && listed.stdout.contains(&url), "{}", listed.stdout);
        assert!(!listed.stdout.contains(&secret), "{}", db.name);
        let worker = webhook_delivery::start(&db.kith);
        contact(&db, "Ada", "Lovelace").await;
        contact(&db, "Bob", "Byron").await;
        let got = wait_delivered(&receiver, 1, "the CLI's webhook").await;
        assert!(verifies(&got[0], &secret), "{}", db.name);
        let delivered = || async {
            let log = run_cli_env(&db.url, &["webhook", "deliveries", &id, "--state", "delivered"], "", vec![])
                .await
                .unwrap();
            (log.stdout.lines().count() == 1).then_some(log.stdout)
        };
        let log = eventually(30, "the delivered entry", delivered).await;
        let delivery = log.split('\t').next().unwrap().to_owned();
        let replayed =
            run_cli_env(&db.url, &["webhook", "replay", &id, "--delivery", &delivery], "", vec![]).await.unwrap();
        assert_eq!(replayed.stdout.trim(), "1", "{}", db.name);
        let got = wait_delivered(&receiver, 2, "the replay").await;
        assert_eq!(got[1].id, delivery, "{}", db.name);
        eventually(30, "the replay recorded", delivered).await;
        let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let replayed = run_cli_env(&db.url, &["webhook", "replay", &id, "--since", &since], "", vec![]).await.unwrap();
        assert_eq!(replayed.stdout.trim(), "1", "{}", db.name);
        wait_delivered(&receiver, 3, "the range replay").await;
        worker.stop().await;
        run_cli_env(&db.url, &["webhook", "remove", &id], "", vec![]).await.unwrap();
        let listed = run_cli_env(&db.url, &["webhook", "list"], "", vec![]).await.unwrap();
        assert!(listed.stdout.is_empty(), "{}", listed.stdout);
        db.cleanup().await;
    }
}
