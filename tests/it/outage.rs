//! A database that stalls or disappears, through a loopback proxy in front of PostgreSQL: the
//! whole request (token check included) stays under its time limit, `/readyz` answers within a
//! second, an unreachable database is a retryable `UNAVAILABLE` (503, `Retry-After`), and a
//! database that cannot be used at start is said at once, by name.

use std::net::SocketAddr;
use std::time::Duration;

use kith_core::config::ApiConfig;
use kith_core::domain::actor::Role;
use kith_core::service::Kith;
use kith_core::store::{Store, StoreOptions};
use kith_tests::TestDb;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::util::{Server, exchange, token};

/// What the proxy does with the bytes it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Passes them on.
    Forward,
    /// Holds them (and new connections) without an answer: a stalled server.
    Stall,
    /// Closes every connection and refuses new ones: a server that went away.
    Refuse,
}

/// A loopback TCP proxy to PostgreSQL whose behaviour the test switches.
struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut watching = modes.subscribe();
                tokio::spawn(async move {
                    // A stalled server accepts and says nothing; a gone one closes.
                    while *watching.borrow_and_update() == Mode::Stall {
                        if watching.changed().await.is_err() {
                            return;
                        }
                    }
                    if *watching.borrow() == Mode::Refuse {
                        return;
                    }
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pipe(client_read, server_write, watching.clone()));
                    pipe(server_read, client_write, watching).await;
                });
            }
        });
        Proxy { addr, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Copies `from` to `to` while the mode allows: holds the bytes while stalled, and closes both
/// when refusing.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Refuse {
                    return;
                }
                continue;
            }
        };
        loop {
            let now = *mode.borrow_and_update();
            match now {
                Mode::Forward => break,
                Mode::Refuse => return,
                Mode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A test database on PostgreSQL served through a proxy, and a server over it.
async fn through_proxy(api: ApiConfig) -> Option<(TestDb, Proxy, TestDb, Server)> {
    let db = TestDb::postgres_or_skip().await?;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let name = db.url.rsplit_once('/').map(|(_, name)| name.to_owned()).unwrap();
    let url = format!("postgres://postgres@{}/{name}?sslmode=disable", proxy.addr);
    let mut options = StoreOptions::new(&url);
    options.max_connections = 4;
    let store = Store::connect(&options).await.expect("a store through the proxy");
    let proxied = TestDb { name: "postgres (proxied)", url, kith: Kith::new(store), dir: None, pg_admin: None };
    let server = Server::start_with(&proxied, api).await;
    Some((db, proxy, proxied, server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_stops_the_whole_request_in_time_and_readyz_answers_within_a_second() {
    let Some((db, proxy, proxied, server)) =
        through_proxy(ApiConfig { timeout_ms: 1_000, ..ApiConfig::default() }).await
    else {
        return;
    };
    let viewer = token(&db, Role::Viewer).await;
    let query = json!({"query": "{ contacts { totalCount } }"}).to_string();
    let reply = exchange(server.addr, "POST", "/graphql", Some(&viewer), b"", &query).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    proxy.set(Mode::Stall);
    // Past the token cache: the token check itself must wait on the stalled database.
    tokio::time::sleep(kith_core::service::users::AUTH_CACHE_TTL + Duration::from_millis(200)).await;
    let reply = exchange(server.addr, "POST", "/graphql", Some(&viewer), b"", &query).await;
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(reply.code(), "TIMEOUT", "{}", reply.body);
    let reply = exchange(server.addr, "GET", "/readyz", None, b"", "").await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body.contains("within 1 s"), "{}", reply.body);
    proxy.set(Mode::Forward);
    let reply = exchange(server.addr, "POST", "/graphql", Some(&viewer), b"", &query).await;
    assert_eq!(reply.status, 200, "the stall is over: {}", reply.body);
    server.stop().await;
    proxied.kith.store.clone().close().await.ok();
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_answers_unavailable_with_retry_after() {
    let Some((db, proxy, proxied, server)) = through_proxy(ApiConfig::default()).await else { return };
    let agent = token(&db, Role::Agent).await;
    let fresh = token(&db, Role::Agent).await;
    let query = json!({"query": "{ contacts { totalCount } }"}).to_string();
    let create = json!({"query": "mutation { createContact(input: {firstName: \"Ada\"}) { id } }"}).to_string();
    let reply = exchange(server.addr, "POST", "/graphql", Some(&agent), b"", &query).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    proxy.set(Mode::Refuse);
    // A cached token, a token never seen (its check needs the database), and a write.
    for (token, body) in [(&agent, &query), (&fresh, &query), (&agent, &create)] {
        let answer = exchange(server.addr, "POST", "/graphql", Some(token), b"", body).await;
        assert_eq!(answer.status, 503, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "UNAVAILABLE", "{}", answer.body);
        assert!(answer.head.contains("retry-after: "), "{}", answer.head);
    }
    let reply = exchange(server.addr, "GET", "/readyz", None, b"", "").await;
    assert_eq!(reply.status, 503);
    proxy.set(Mode::Forward);
    let reply = exchange(server.addr, "POST", "/graphql", Some(&agent), b"", &create).await;
    assert_eq!(reply.status, 200, "the database is back: {}", reply.body);
    assert_eq!(db.count_rows("contact").await, 1, "only the write made after it came back");
    server.stop().await;
    proxied.kith.store.clone().close().await.ok();
    db.cleanup().await;
}

/// A database that cannot be used is said at once and by name: a closed port (host and port),
/// a missing database (how to create it), a URL of another database, a SQLite file in a folder
/// that does not exist.
#[tokio::test]
async fn a_database_that_cannot_be_used_is_named_with_what_to_do() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let missing_folder = kith_tests::temp_dir().join("no-such-folder").join("kith.db");
    let mut cases = vec![
        (format!("postgres://postgres@127.0.0.1:{closed_port}/kith"), vec![format!("127.0.0.1:{closed_port}")]),
        ("mysql://root@127.0.0.1/kith".to_owned(), vec!["`mysql`".to_owned(), "postgres://".to_owned()]),
        (
            missing_folder.display().to_string(),
            vec!["does not exist".to_owned(), missing_folder.parent().unwrap().display().to_string()],
        ),
    ];
    if std::env::var("KITH_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        cases.push((
            "postgres://postgres@127.0.0.1:5432/kith_no_such_database".to_owned(),
            vec!["does not exist".to_owned(), "CREATE DATABASE".to_owned()],
        ));
    } else {
        kith_tests::skipped("a_database_that_cannot_be_used_is_named_with_what_to_do (the missing-database case)");
    }
    for (url, expected) in cases {
        let err = Store::connect(&StoreOptions::new(&url)).await.expect_err(&url).to_string();
        for words in expected {
            assert!(err.contains(&words), "{url}: `{err}` should say `{words}`");
        }
        assert!(!err.contains("code: 14") && !err.contains("pool timed out"), "{url}: {err}");
    }
}
