//! `Idempotency-Key` over real HTTP, on both databases: a retried mutation runs once and gets
//! its first answer again, byte for byte; another body, a request still running or one whose
//! outcome is unknown is a CONFLICT; answers that say "try again" give the key back; keys
//! belong to their token, expire, and are shared by every Kith process on the database.

use std::net::SocketAddr;
use std::time::Duration;

use kith_core::config::ApiConfig;
use kith_core::domain::actor::{Actor, Role};
use kith_core::service::{Kith, users};
use kith_core::store::{Store, StoreOptions};
use kith_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::util::{Reply, Server, exchange};

/// Sends `POST /graphql` with `body`, the token and the idempotency key lines given.
async fn post(addr: SocketAddr, token: Option<&str>, key: Option<&str>, body: &str) -> Reply {
    let key = key.map(|key| format!("Idempotency-Key: {key}\r\n")).unwrap_or_default();
    post_raw(addr, token, key.as_bytes(), body).await
}

/// Sends `POST /graphql` with `extra` header bytes as they are.
async fn post_raw(addr: SocketAddr, token: Option<&str>, extra: &[u8], body: &str) -> Reply {
    exchange(addr, "POST", "/graphql", token, extra, body).await
}

/// A token of `role`: (its id, the secret).
async fn token(db: &TestDb, role: Role) -> (String, String) {
    let tx = db.kith.store.begin(&Actor::system("test")).await.unwrap();
    let (id, secret) = users::create_token(&tx, &format!("{role}"), role, None, None).await.unwrap();
    tx.commit().await.unwrap();
    (id.to_string(), secret)
}

fn create(first_name: &str) -> String {
    json!({
        "query": "mutation($i: ContactCreateInput!) { createContact(input: $i) { id firstName } }",
        "variables": {"i": {"firstName": first_name}},
    })
    .to_string()
}

async fn contacts(db: &TestDb) -> i64 {
    db.count_rows("contact").await
}

/// Runs `sql` on the test's database.
async fn exec(db: &TestDb, sql: &str) {
    db.kith.store.pool().execute_unprepared(sql).await.unwrap();
}

/// The states of the stored keys, in key order.
async fn states(db: &TestDb) -> Vec<String> {
    let rows = db
        .kith
        .store
        .pool()
        .query_all_raw(sea_orm::Statement::from_string(
            db.kith.store.backend(),
            "SELECT state FROM idempotency_key ORDER BY client_key",
        ))
        .await
        .unwrap();
    rows.iter().map(|row| row.try_get_by_index::<String>(0).unwrap()).collect()
}

/// Waits until `done` holds of the stored key states (work that finishes in a task of its
/// own); panics after a generous backstop.
async fn wait_for_states(db: &TestDb, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..600 {
        let now = states(db).await;
        if done(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: the key states never settled: {:?}", db.name, states(db).await);
}

#[tokio::test]
async fn a_retried_mutation_runs_once_and_gets_its_first_answer_again_byte_for_byte() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, agent) = token(&db, Role::Agent).await;
        let first = post(server.addr, Some(&agent), Some("order-1"), &create("Ada")).await;
        assert_eq!(first.status, 200, "{}: {}", db.name, first.body);
        assert!(first.json()["data"]["createContact"]["id"].is_string(), "{}: {}", db.name, first.body);
        assert!(!first.replayed(), "{}: the first answer is no replay: {}", db.name, first.head);
        let again = post(server.addr, Some(&agent), Some("order-1"), &create("Ada")).await;
        assert_eq!(again.status, 200, "{}: {}", db.name, again.body);
        assert_eq!(again.body, first.body, "{}: the same answer, byte for byte", db.name);
        assert!(again.replayed(), "{}: {}", db.name, again.head);
        // Whitespace and key order are no other request.
        let reordered = format!(
            "{{ \"variables\": {{\"i\": {{\"firstName\": \"Ada\"}}}},\n  \"query\": {} }}",
            json!("mutation($i: ContactCreateInput!) { createContact(input: $i) { id firstName } }")
        );
        let third = post(server.addr, Some(&agent), Some("order-1"), &reordered).await;
        assert_eq!((third.status, third.replayed()), (200, true), "{}: {}", db.name, third.body);
        assert_eq!(third.body, first.body, "{}", db.name);
        assert_eq!(contacts(&db).await, 1, "{}: one contact", db.name);
        assert_eq!(states(&db).await, ["done"], "{}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn mutations_without_a_key_run_every_time() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, agent) = token(&db, Role::Agent).await;
        for _ in 0..2 {
            let reply = post(server.addr, Some(&agent), None, &create("Ada")).await;
            assert_eq!((reply.status, reply.replayed()), (200, false), "{}: {}", db.name, reply.body);
        }
        assert_eq!(contacts(&db).await, 2, "{}", db.name);
        assert!(states(&db).await.is_empty(), "{}: nothing stored", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, agent) = token(&db, Role::Agent).await;
        let first = post(server.addr, Some(&agent), Some("k"), &create("Ada")).await;
        assert_eq!(first.status, 200, "{}: {}", db.name, first.body);
        let other = post(server.addr, Some(&agent), Some("k"), &create("Grace")).await;
        assert_eq!(other.status, 409, "{}: {}", db.name, other.body);
        assert_eq!(other.code(), "CONFLICT", "{}: {}", db.name, other.body);
        assert!(other.body.contains("another request"), "{}: {}", db.name, other.body);
        assert!(!other.replayed(), "{}", db.name);
        assert_eq!(contacts(&db).await, 1, "{}: Grace was not created", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn keys_belong_to_the_token_that_sent_them() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, ann) = token(&db, Role::Agent).await;
        let (_, bob) = token(&db, Role::Agent).await;
        let first = post(server.addr, Some(&ann), Some("shared"), &create("Ada")).await;
        let second = post(server.addr, Some(&bob), Some("shared"), &create("Ada")).await;
        for reply in [&first, &second] {
            assert_eq!((reply.status, reply.replayed()), (200, false), "{}: {}", db.name, reply.body);
        }
        assert_ne!(first.body, second.body, "{}: two contacts, two ids", db.name);
        assert_eq!(contacts(&db).await, 2, "{}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_refused_mutation_replays_the_same_error() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, agent) = token(&db, Role::Agent).await;
        let bad = json!({"query": "mutation { createContact(input: {firstName: \"X\", email: \"nope\"}) { id } }"})
            .to_string();
        let first = post(server.addr, Some(&agent), Some("bad-1"), &bad).await;
        assert_eq!(first.status, 200, "{}: {}", db.name, first.body);
        assert_eq!(first.code(), "BAD_USER_INPUT", "{}: {}", db.name, first.body);
        let again = post(server.addr, Some(&agent), Some("bad-1"), &bad).await;
        assert_eq!((again.status, again.replayed()), (200, true), "{}: {}", db.name, again.body);
        assert_eq!(again.body, first.body, "{}", db.name);
        assert_eq!(contacts(&db).await, 0, "{}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

/// A key that is not 1 to 255 printable ASCII characters, or sent twice, is a 400; a key on a
/// query or from an anonymous caller is ignored; a mutation whose answer holds a secret is
/// refused with one.
#[tokio::test]
async fn malformed_keys_are_bad_requests_and_keys_on_reads_are_ignored() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, admin) = token(&db, Role::Admin).await;
        let long = "k".repeat(256);
        let cases: [&[u8]; 4] = [
            b"Idempotency-Key: \r\n",
            format!("Idempotency-Key: {long}\r\n").leak().as_bytes(),
            b"Idempotency-Key: caf\xc3\xa9\r\n",
            b"Idempotency-Key: a\r\nIdempotency-Key: b\r\n",
        ];
        for extra in cases {
            let reply = post_raw(server.addr, Some(&admin), extra, &create("Ada")).await;
            let shown = String::from_utf8_lossy(extra);
            assert_eq!(reply.status, 400, "{}: {shown}: {}", db.name, reply.body);
            assert_eq!(reply.code(), "BAD_REQUEST", "{}: {shown}: {}", db.name, reply.body);
            assert!(reply.body.contains("Idempotency-Key"), "{}: {}", db.name, reply.body);
        }
        let longest = "k".repeat(255);
        let ok = post(server.addr, Some(&admin), Some(&longest), &create("Ada")).await;
        assert_eq!(ok.status, 200, "{}: 255 characters are fine: {}", db.name, ok.body);
        let secret = json!({"query": "mutation { createApiToken(name: \"ci\", role: VIEWER) }"}).to_string();
        let refused = post(server.addr, Some(&admin), Some("t-1"), &secret).await;
        assert_eq!((refused.status, refused.code().as_str()), (400, "BAD_REQUEST"), "{}: {}", db.name, refused.body);
        assert!(refused.body.contains("createApiToken"), "{}: {}", db.name, refused.body);
        let query = json!({"query": "{ contacts { totalCount } }"}).to_string();
        for _ in 0..2 {
            let read = post(server.addr, Some(&admin), Some("q-1"), &query).await;
            assert_eq!((read.status, read.replayed()), (200, false), "{}: {}", db.name, read.body);
        }
        let login = json!({"query": "mutation { login(email: \"nobody@example.org\", password: \"x\") { token } }"})
            .to_string();
        let anonymous = post(server.addr, None, Some("l-1"), &login).await;
        assert_eq!(anonymous.status, 200, "{}: {}", db.name, anonymous.body);
        assert_ne!(anonymous.code(), "BAD_REQUEST", "{}: {}", db.name, anonymous.body);
        assert_eq!(states(&db).await, ["done"], "{}: only the mutation's key is stored", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

/// A request that timed out before any write of it began gives its key back: here the key's
/// own reservation waits behind a lock (SQLite's write lock, a table lock on PostgreSQL), the
/// request is answered TIMEOUT, and the reservation, made once the lock is free, is undone. A
/// retry meanwhile hears "in progress", as a client retrying would; then the key runs, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_before_any_write_gives_the_key_back() {
    for db in TestDb::all().await {
        let server = Server::start_with(&db, ApiConfig { timeout_ms: 300, ..ApiConfig::default() }).await;
        let (_, agent) = token(&db, Role::Agent).await;
        let warm =
            post(server.addr, Some(&agent), None, &json!({"query": "{ contacts { totalCount } }"}).to_string()).await;
        assert_eq!(warm.status, 200, "{}: {}", db.name, warm.body);
        let blocker = db.kith.store.begin(&Actor::system("test")).await.unwrap();
        if db.kith.store.backend() == sea_orm::DbBackend::Postgres {
            blocker.conn().execute_unprepared("LOCK TABLE idempotency_key IN ACCESS EXCLUSIVE MODE").await.unwrap();
        }
        let late = post(server.addr, Some(&agent), Some("late"), &create("Late")).await;
        assert_eq!(late.status, 504, "{}: {}", db.name, late.body);
        assert_eq!(late.code(), "TIMEOUT", "{}: {}", db.name, late.body);
        blocker.rollback().await.unwrap();
        let mut retry = post(server.addr, Some(&agent), Some("late"), &create("Late")).await;
        for _ in 0..300 {
            if retry.status != 409 {
                break;
            }
            assert!(retry.body.contains("in progress"), "{}: {}", db.name, retry.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
            retry = post(server.addr, Some(&agent), Some("late"), &create("Late")).await;
        }
        assert_eq!((retry.status, retry.replayed()), (200, false), "{}: {}", db.name, retry.body);
        assert_eq!(contacts(&db).await, 1, "{}: the stopped request wrote nothing", db.name);
        assert_eq!(states(&db).await, ["done"], "{}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

/// A mutation queued for group commit behind writes that hold both of PostgreSQL's groups has
/// not started when its request times out: it never runs, and its key is given back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_stopped_in_the_queue_gives_its_key_back() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let server = Server::start_with(&db, ApiConfig { timeout_ms: 300, ..ApiConfig::default() }).await;
    let (_, agent) = token(&db, Role::Agent).await;
    let warm =
        post(server.addr, Some(&agent), None, &json!({"query": "{ contacts { totalCount } }"}).to_string()).await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    // Two writes that hold a group each until the test lets them go.
    let (release, released) = tokio::sync::watch::channel(false);
    let (running, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut holders = Vec::new();
    for _ in 0..kith_core::store::group::POSTGRES_GROUPS {
        let store = db.kith.store.clone();
        let (released, running) = (released.clone(), running.clone());
        holders.push(tokio::spawn(async move {
            store
                .write::<()>(
                    &Actor::system("test"),
                    Box::new(move |_tx| {
                        let (mut released, running) = (released.clone(), running.clone());
                        Box::pin(async move {
                            let _ = running.send(());
                            let _ = released.wait_for(|go| *go).await;
                            Ok(())
                        })
                    }),
                )
                .await
        }));
        // Each in a group of its own: the next is queued once this one runs.
        started.recv().await.unwrap();
    }
    let late = post(server.addr, Some(&agent), Some("queued"), &create("Late")).await;
    assert_eq!(late.status, 504, "{}", late.body);
    let now = wait_for_states(&db, |states| states.is_empty()).await;
    assert!(now.is_empty(), "the key is free while the groups still hold");
    release.send_replace(true);
    for holder in holders {
        holder.await.unwrap().unwrap();
    }
    let retry = post(server.addr, Some(&agent), Some("queued"), &create("Late")).await;
    assert_eq!((retry.status, retry.replayed()), (200, false), "{}", retry.body);
    assert_eq!(contacts(&db).await, 1, "the stopped mutation never ran");
    server.stop().await;
    db.cleanup().await;
}

/// A mutation whose write had begun when its request timed out may still commit: its key is
/// kept, as outcome unknown, and a retry is a CONFLICT rather than a second contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_after_a_write_began_keeps_the_key_and_the_write_happens_once() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let server = Server::start_with(&db, ApiConfig { timeout_ms: 300, ..ApiConfig::default() }).await;
    let (_, agent) = token(&db, Role::Agent).await;
    let warm =
        post(server.addr, Some(&agent), None, &json!({"query": "{ contacts { totalCount } }"}).to_string()).await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    let blocker = db.kith.store.begin(&Actor::system("test")).await.unwrap();
    blocker.conn().execute_unprepared("LOCK TABLE contact IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let late = post(server.addr, Some(&agent), Some("began"), &create("Late")).await;
    assert_eq!(late.status, 504, "{}", late.body);
    let meanwhile = post(server.addr, Some(&agent), Some("began"), &create("Late")).await;
    assert_eq!((meanwhile.status, meanwhile.code().as_str()), (409, "CONFLICT"), "{}", meanwhile.body);
    blocker.rollback().await.unwrap();
    wait_for_states(&db, |states| states == ["unknown"]).await;
    let retry = post(server.addr, Some(&agent), Some("began"), &create("Late")).await;
    assert_eq!((retry.status, retry.code().as_str()), (409, "CONFLICT"), "{}", retry.body);
    assert!(retry.body.contains("unknown"), "{}", retry.body);
    assert_eq!(contacts(&db).await, 1, "the write that had begun committed, once");
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn an_expired_answer_runs_again_and_expired_keys_are_swept() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, agent) = token(&db, Role::Agent).await;
        let first = post(server.addr, Some(&agent), Some("old"), &create("Ada")).await;
        assert_eq!(first.status, 200, "{}: {}", db.name, first.body);
        exec(&db, "UPDATE idempotency_key SET expires_at = '2000-01-01T00:00:00.000000Z'").await;
        let again = post(server.addr, Some(&agent), Some("old"), &create("Ada")).await;
        assert_eq!((again.status, again.replayed()), (200, false), "{}: {}", db.name, again.body);
        assert_ne!(again.body, first.body, "{}: a new contact", db.name);
        assert_eq!(contacts(&db).await, 2, "{}", db.name);
        // Another process's sweep (each sweeps at most once a minute) deletes expired rows.
        exec(&db, "UPDATE idempotency_key SET expires_at = '2000-01-01T00:00:00.000000Z'").await;
        let other = Server::start(&db).await;
        let swept = post(other.addr, Some(&agent), Some("new"), &create("Grace")).await;
        assert_eq!(swept.status, 200, "{}: {}", db.name, swept.body);
        wait_for_states(&db, |states| states == ["done"]).await;
        other.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_run_it_once() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let (_, agent) = token(&db, Role::Agent).await;
        let sends = (0..8).map(|_| {
            let agent = agent.clone();
            let addr = server.addr;
            tokio::spawn(async move { post(addr, Some(&agent), Some("race"), &create("Ada")).await })
        });
        let mut replies = Vec::new();
        for send in sends.collect::<Vec<_>>() {
            replies.push(send.await.unwrap());
        }
        let ran: Vec<&Reply> = replies.iter().filter(|r| r.status == 200 && !r.replayed()).collect();
        assert_eq!(ran.len(), 1, "{}: exactly one ran: {replies:?}", db.name);
        for reply in &replies {
            match reply.status {
                200 => assert_eq!(reply.body, ran[0].body, "{}: a replay is the same answer", db.name),
                409 => {
                    assert_eq!(reply.code(), "CONFLICT", "{}: {}", db.name, reply.body);
                    assert!(reply.body.contains("in progress"), "{}: {}", db.name, reply.body);
                    assert!(reply.head.contains("\r\nretry-after: 1"), "{}: {}", db.name, reply.head);
                }
                other => panic!("{}: {other}: {}", db.name, reply.body),
            }
        }
        assert_eq!(contacts(&db).await, 1, "{}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

/// A second Kith process on the same database (its own `Store` and server) replays what the
/// first stored, and hears "in progress" for a key the first holds.
#[tokio::test]
async fn a_second_process_sees_the_keys_of_the_first() {
    for db in TestDb::all().await {
        let first = Server::start(&db).await;
        let (agent_id, agent) = token(&db, Role::Agent).await;
        let stored = post(first.addr, Some(&agent), Some("p-1"), &create("Ada")).await;
        assert_eq!(stored.status, 200, "{}: {}", db.name, stored.body);
        let store = Store::open(&StoreOptions::new(&db.url)).await.unwrap();
        let other = db.sharing(Kith::new(store));
        let second = Server::start(&other).await;
        let replay = post(second.addr, Some(&agent), Some("p-1"), &create("Ada")).await;
        assert_eq!((replay.status, replay.replayed()), (200, true), "{}: {}", db.name, replay.body);
        assert_eq!(replay.body, stored.body, "{}", db.name);
        // The first process holds a key, as a request it is running would.
        let now = chrono::Utc::now();
        let body = create("Grace");
        let fingerprint = kith_core::http::idempotency::fingerprint(body.as_bytes());
        let held = kith_core::store::idempotency::reserve(
            db.kith.store.conn(),
            &agent_id,
            "p-2",
            &fingerprint,
            now,
            now + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
        assert!(matches!(held, kith_core::store::idempotency::Reservation::Taken(_)), "{}: {held:?}", db.name);
        let busy = post(second.addr, Some(&agent), Some("p-2"), &body).await;
        assert_eq!((busy.status, busy.code().as_str()), (409, "CONFLICT"), "{}: {}", db.name, busy.body);
        assert!(busy.body.contains("in progress"), "{}: {}", db.name, busy.body);
        assert_eq!(contacts(&db).await, 1, "{}", db.name);
        second.stop().await;
        other.kith.store.clone().close().await.ok();
        first.stop().await;
        db.cleanup().await;
    }
}
