//! Statements outside a transaction (`Store::conn`): on PostgreSQL they run on connections Kith
//! keeps itself, handed from one statement to the next without sqlx's ping, cleaned up after a
//! cancelled statement, replaced after a broken one, bounded and closed with the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kith_core::store::{Store, StoreOptions};
use kith_tests::TestDb;
use sea_orm::{ConnectionTrait, Statement};

/// A store of its own on the test's PostgreSQL database (`url` may point through a proxy).
async fn store_on(url: &str, max_connections: u32) -> Store {
    let mut options = StoreOptions::new(url);
    options.max_connections = max_connections;
    Store::connect(&options).await.expect("connect")
}

/// `SELECT n`, as the store's statements outside a transaction answer it.
async fn select(store: &Store, n: i64) -> Result<i64, sea_orm::DbErr> {
    let stmt = Statement::from_sql_and_values(store.backend(), "SELECT $1::int8 AS n", [n.into()]);
    let row = store.conn().query_one_raw(stmt).await?.expect("one row");
    row.try_get::<i64>("", "n")
}

/// A loopback proxy to PostgreSQL (plain TCP) that counts the `Sync` messages clients send:
/// one per statement, and one more per ping.
async fn proxy_counting_syncs(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = syncs.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(target).await else { continue };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let counted = counted.clone();
            tokio::spawn(async move {
                // The client's stream: a startup message (length first), then messages of a
                // type byte and a length that counts itself.
                let mut pending: Vec<u8> = Vec::new();
                let mut started = false;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    loop {
                        let header = if started { 5 } else { 4 };
                        if pending.len() < header {
                            break;
                        }
                        let len_at = if started { 1 } else { 0 };
                        let len = u32::from_be_bytes(pending[len_at..len_at + 4].try_into().unwrap()) as usize;
                        let total = len + len_at;
                        if pending.len() < total {
                            break;
                        }
                        if started && pending[0] == b'S' {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        started = true;
                        pending.drain(..total);
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_read.read(&mut buf).await {
                    if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, syncs)
}

/// The database name of a test database's URL.
fn database_name(db: &TestDb) -> String {
    db.url.rsplit_once('/').map(|(_, name)| name.to_owned()).unwrap()
}

/// How many connections other than the asking one are open to the test's database.
async fn connections_to(db: &TestDb) -> i64 {
    let stmt = Statement::from_sql_and_values(
        db.kith.store.backend(),
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [database_name(db).into()],
    );
    let admin = store_on(&db.pg_admin.as_ref().unwrap().0, 1).await;
    let row = admin.pool().query_one_raw(stmt).await.unwrap().unwrap();
    let n = row.try_get_by_index::<i64>(0).unwrap();
    admin.close().await.unwrap();
    n
}

/// Each statement outside a transaction costs one `Sync`: no ping follows it (sqlx's pool
/// would send one as the connection goes back), and the answers are each statement's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_outside_a_transaction_is_not_followed_by_a_ping() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let (proxy, syncs) = proxy_counting_syncs("127.0.0.1:5432".parse().unwrap()).await;
    let url = format!("postgres://postgres@{proxy}/{}?sslmode=disable", database_name(&db));
    let store = store_on(&url, 2).await;
    // The first run prepares the statement (one more Sync); the pool's own start-up is done.
    assert_eq!(select(&store, 1).await.unwrap(), 1);
    let before = syncs.load(Ordering::SeqCst);
    for n in 2..=41 {
        assert_eq!(select(&store, n).await.unwrap(), n);
    }
    // Give a ping that would follow the last statement time to be sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = syncs.load(Ordering::SeqCst) - before;
    assert_eq!(sent, 40, "one Sync per statement, no pings");
    // The same statement on sqlx's pool (where transactions run) is followed by a ping when
    // its connection goes back: two Syncs (after a first run that prepares it there).
    let pooled = || Statement::from_sql_and_values(store.backend(), "SELECT $1::int8 AS n", [5i64.into()]);
    store.pool().query_one_raw(pooled()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = syncs.load(Ordering::SeqCst);
    store.pool().query_one_raw(pooled()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(syncs.load(Ordering::SeqCst) - before, 2, "the pool's statement and its ping");
    store.close().await.unwrap();
    db.cleanup().await;
}

/// A statement whose future is dropped halfway (a request that timed out) does not leave its
/// answer behind for the next statement: the connection is cleaned up first, and the next
/// statement on it gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_statement_leaves_its_connection_clean() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    // One connection, so the next statements must reuse the cancelled one.
    let store = store_on(&db.url, 1).await;
    let sleeping = Statement::from_string(store.backend(), "SELECT 7::int8 AS n FROM pg_sleep(0.3)");
    let cancelled = tokio::time::timeout(Duration::from_millis(50), store.conn().query_one_raw(sleeping)).await;
    assert!(cancelled.is_err(), "the statement was cancelled: {cancelled:?}");
    for n in [11, 12, 13] {
        assert_eq!(select(&store, n).await.unwrap(), n, "each statement reads its own answer");
    }
    // A statement the database refuses leaves the connection usable too.
    let refused = store.conn().execute_unprepared("SELECT * FROM no_such_table").await;
    assert!(refused.is_err());
    assert_eq!(select(&store, 14).await.unwrap(), 14);
    store.close().await.unwrap();
    db.cleanup().await;
}

/// A connection the server dropped fails the statement on it with an error (no panic, no
/// hang) and is replaced: the statements after it answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_is_replaced() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let store = store_on(&db.url, 1).await;
    assert_eq!(select(&store, 1).await.unwrap(), 1);
    let admin = store_on(&db.pg_admin.as_ref().unwrap().0, 1).await;
    let kill = Statement::from_sql_and_values(
        admin.backend(),
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [database_name(&db).into()],
    );
    let killed = admin.pool().query_one_raw(kill).await.unwrap().unwrap().try_get_by_index::<i64>(0).unwrap();
    assert!(killed >= 1, "the store's connections were terminated");
    admin.close().await.unwrap();
    // The first statement may find its connection dead (an error); the next one answers.
    let mut answers = Vec::new();
    for n in 2..=4 {
        answers.push(select(&store, n).await.ok());
    }
    assert_eq!(answers.last(), Some(&Some(4)), "{answers:?}");
    assert!(answers.iter().filter(|a| a.is_none()).count() <= 1, "{answers:?}");
    store.close().await.unwrap();
    db.cleanup().await;
}

/// Many concurrent statements share at most `max_connections` connections (plus the pool's,
/// for transactions), and closing the store closes them all; statements after that are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_share_a_bounded_set_of_connections_closed_with_the_store() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let before = connections_to(&db).await;
    let store = store_on(&db.url, 2).await;
    let mut tasks = Vec::new();
    for n in 0..48 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { select(&store, n).await }));
    }
    for (n, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), n as i64);
    }
    let open = connections_to(&db).await - before;
    // At most 2 for statements and 2 for the (idle) transaction pool.
    assert!((1..=4).contains(&open), "48 concurrent statements opened {open} connections");
    let own = store.clone();
    store.close().await.unwrap();
    // The server notices the closed connections on its own time.
    let mut after = connections_to(&db).await;
    for _ in 0..50 {
        if after == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = connections_to(&db).await;
    }
    assert_eq!(after, before, "closing the store closed its connections");
    assert!(select(&own, 1).await.is_err(), "a closed store refuses statements");
    db.cleanup().await;
}
