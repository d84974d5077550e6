//! Concurrent writers: ticket numbers stay sequential and unique, nothing is lost.

use std::collections::BTreeSet;

use kith_core::domain::actor::Actor;
use kith_core::domain::value::Value;
use kith_core::service::input::Input;
use kith_core::service::records;
use kith_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ticket_creates_get_unique_sequential_numbers() {
    for db in TestDb::all().await {
        let mut tasks = Vec::new();
        for i in 0..40 {
            let kith = db.kith.clone();
            tasks.push(tokio::spawn(async move {
                let tx = kith.store.begin(&Actor::system("test")).await?;
                let input = Input::fields([("subject", Value::Text(format!("ticket {i}")))]);
                let ticket = records::create(&tx, &kith.registry(), "ticket", input).await?;
                tx.commit().await?;
                Ok::<_, kith_core::Error>(ticket.get("number").as_int().unwrap_or_default())
            }));
        }
        let mut numbers = BTreeSet::new();
        for task in tasks {
            numbers.insert(task.await.unwrap().unwrap());
        }
        assert_eq!(numbers.len(), 40, "{}: unique", db.name);
        assert_eq!(numbers.first(), Some(&1001));
        assert_eq!(numbers.last(), Some(&1040), "{}: no gaps", db.name);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_worth_of_stores_share_one_postgres_counter() {
    // Two independent pools on one database behave like two Kith processes.
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let other = kith_core::service::Kith::new(
        kith_core::store::Store::open(&kith_core::store::StoreOptions::new(&db.url)).await.unwrap(),
    );
    let mut tasks = Vec::new();
    for i in 0..30 {
        let kith = if i % 2 == 0 { db.kith.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let tx = kith.store.begin(&Actor::system("test")).await?;
            let ticket =
                records::create(&tx, &kith.registry(), "ticket", Input::fields([("subject", Value::Text("t".into()))]))
                    .await?;
            tx.commit().await?;
            Ok::<_, kith_core::Error>(ticket.get("number").as_int().unwrap_or_default())
        }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        numbers.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(numbers, (1001..=1030).collect());
    other.store.close().await.ok();
    db.cleanup().await;
}

/// Polls `ready` until it holds (at most ten seconds).
async fn wait_until(ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// A grouped write that makes a contact with this e-mail.
fn contact_write(email: String) -> kith_core::store::group::Work<Option<String>> {
    Box::new(move |tx| {
        let email = email.clone();
        Box::pin(async move {
            let registry = kith_core::domain::object::Registry::core();
            let input = Input::fields([("firstName", Value::Text("G".into())), ("email", Value::Text(email))]);
            records::create_final(tx, &registry, "contact", input).await?;
            Ok(None)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_a_commit_and_fail_alone() {
    for db in TestDb::all().await {
        let store = db.kith.store.clone();
        let actor = Actor::system("test");
        let sqlite = store.backend() == sea_orm::DbBackend::Sqlite;
        // The first writes hold their groups open until released, so the next ones queue up.
        let (release, held) = hold_every_group(&store, true).await;
        let blockers = held.len();
        let before = store.group_stats();
        let mut queued = Vec::new();
        for i in 0..10 {
            // Writes 4 and 5 want the same e-mail: one of them must fail, alone.
            let email = format!("g{}@example.org", if i == 5 { 4 } else { i });
            let (store, actor) = (store.clone(), actor.clone());
            let waiter = store.clone();
            queued.push(tokio::spawn(async move { store.write(&actor, contact_write(email)).await }));
            // Tasks start in no fixed order: each write is in the queue before the next is made,
            // so "the later duplicate" is write 5.
            wait_until(|| waiter.group_stats().waiting == i + 1).await;
        }
        // A caller that gives up before its turn: its write must never run.
        let gone = {
            let (store, actor) = (store.clone(), actor.clone());
            tokio::spawn(async move { store.write(&actor, contact_write("gone@example.org".into())).await })
        };
        // Every write is in the queue before the first group ends.
        let waiter = store.clone();
        wait_until(|| waiter.group_stats().waiting == 11).await;
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        release.send(true).unwrap();
        for blocker in held {
            blocker.await.unwrap().unwrap();
        }
        let mut failures = Vec::new();
        for (i, task) in queued.into_iter().enumerate() {
            if let Err(err) = task.await.unwrap() {
                failures.push((i, err.to_string()));
            }
        }
        assert_eq!(failures.len(), 1, "{}: {failures:?}", db.name);
        assert!(failures[0].1.contains("already exists"), "{}: {failures:?}", db.name);
        let after = store.group_stats();
        let committed = blockers as i64 + 9;
        assert_eq!(after.writes - before.writes, committed as u64, "{}: the first and nine queued writes", db.name);
        if sqlite {
            // One writer: everything that queued behind the first group went in the next one.
            assert_eq!(failures[0].0, 5, "{}: the later duplicate fails", db.name);
            assert_eq!(after.commits - before.commits, 2, "{}: the queued ones in one commit", db.name);
            // The duplicate e-mail fails the held rows' INSERT: the group ran again.
            assert_eq!(after.reruns - before.reruns, 1, "{}", db.name);
        } else {
            // A few groups run side by side; whichever duplicate came second fails.
            assert!(matches!(failures[0].0, 4 | 5), "{}: {failures:?}", db.name);
        }
        // Everything of the failed and the abandoned writes is gone; the others are whole.
        let conn = db.kith.store.conn();
        let count = |sql: &'static str| async move {
            use sea_orm::{ConnectionTrait, Statement};
            let statement =
                Statement::from_string(conn.get_database_backend(), sql.replace("COUNT(*)", "COUNT(*) AS n"));
            conn.query_one_raw(statement).await.unwrap().unwrap().try_get::<i64>("", "n").unwrap()
        };
        assert_eq!(count("SELECT COUNT(*) FROM contact").await, committed, "{}", db.name);
        assert_eq!(count("SELECT COUNT(*) FROM contact WHERE email = 'gone@example.org'").await, 0);
        let audited = count("SELECT COUNT(*) FROM audit_log WHERE object = 'contact'").await;
        assert_eq!(audited, committed, "{}", db.name);
        let events = count("SELECT COUNT(*) FROM event_outbox WHERE kind = 'contact.created'").await;
        assert_eq!(events, committed, "{}", db.name);
        let indexed = count("SELECT COUNT(*) FROM search_entry WHERE object = 'contact'").await;
        assert_eq!(indexed, committed, "{}: new records are searchable", db.name);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_panics_is_rolled_back_and_later_writes_go_on() {
    for db in TestDb::all().await {
        let store = db.kith.store.clone();
        let actor = Actor::system("test");
        let panics: kith_core::store::group::Work<Option<String>> = Box::new(move |tx| {
            Box::pin(async move {
                let registry = kith_core::domain::object::Registry::core();
                let input = Input::fields([("email", Value::Text("half@example.org".into()))]);
                records::create(tx, &registry, "contact", input).await?;
                panic!("a bug in a write");
            })
        });
        let err = store.write(&actor, panics).await.unwrap_err();
        assert!(matches!(err, kith_core::Error::Internal(_)), "{}: {err:?}", db.name);
        // The half-done write left nothing, and the queue still serves.
        store.write(&actor, contact_write("half@example.org".into())).await.unwrap();
        let conn = db.kith.store.conn();
        use sea_orm::{ConnectionTrait, Statement};
        let sql = "SELECT COUNT(*) AS n FROM contact WHERE email = 'half@example.org'";
        let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1, "{}", db.name);
        db.cleanup().await;
    }
}

/// Starts one write per group the store may open (one on SQLite, a few side by side on
/// PostgreSQL), each holding its group open until `true` is sent on the returned channel; with
/// `makes_contact`, each then creates a contact. Answers once every one of them is running.
async fn hold_every_group(
    store: &kith_core::store::Store,
    makes_contact: bool,
) -> (tokio::sync::watch::Sender<bool>, Vec<tokio::task::JoinHandle<kith_core::Result<Option<String>>>>) {
    let actor = Actor::system("test");
    let groups =
        if store.backend() == sea_orm::DbBackend::Sqlite { 1 } else { kith_core::store::group::POSTGRES_GROUPS };
    let (release, released) = tokio::sync::watch::channel(false);
    let mut held = Vec::new();
    for _ in 0..groups {
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let mut started_tx = Some(started_tx);
        let (store, actor, released) = (store.clone(), actor.clone(), released.clone());
        held.push(tokio::spawn(async move {
            let work: kith_core::store::group::Work<Option<String>> = Box::new(move |tx| {
                let (started_tx, mut released) = (started_tx.take(), released.clone());
                Box::pin(async move {
                    if let Some(started) = started_tx {
                        let _ = started.send(());
                    }
                    let _ = released.wait_for(|go| *go).await;
                    if makes_contact {
                        let registry = kith_core::domain::object::Registry::core();
                        let input = Input::fields([("firstName", Value::Text("First".into()))]);
                        records::create(tx, &registry, "contact", input).await?;
                    }
                    Ok(None)
                })
            });
            store.write(&actor, work).await
        }));
        // Each one is running (in its own group) before the next one is queued.
        started.await.unwrap();
    }
    (release, held)
}

/// Queues `works` in order while the store's groups are held open, then lets everything run:
/// the queued writes all land in one group. Answers each one's result.
async fn run_as_one_group(
    store: &kith_core::store::Store,
    works: Vec<kith_core::store::group::Work<Option<String>>>,
) -> Vec<kith_core::Result<Option<String>>> {
    let actor = Actor::system("test");
    let (release, held) = hold_every_group(store, false).await;
    let mut queued = Vec::new();
    for (i, work) in works.into_iter().enumerate() {
        let (store, actor, waiter) = (store.clone(), actor.clone(), store.clone());
        queued.push(tokio::spawn(async move { store.write(&actor, work).await }));
        wait_until(|| waiter.group_stats().waiting == i + 1).await;
    }
    release.send(true).unwrap();
    for blocker in held {
        blocker.await.unwrap().unwrap();
    }
    let mut results = Vec::new();
    for task in queued {
        results.push(task.await.unwrap());
    }
    results
}

/// A grouped write that makes a contact working at `company`.
fn contact_at(company: uuid::Uuid) -> kith_core::store::group::Work<Option<String>> {
    Box::new(move |tx| {
        Box::pin(async move {
            let registry = kith_core::domain::object::Registry::core();
            let input = Input::fields([("firstName", Value::Text("At".into())), ("companyId", Value::Uuid(company))]);
            records::create_final(tx, &registry, "contact", input).await?;
            Ok(None)
        })
    })
}

/// A grouped write refused before it runs a statement (a field contacts do not have).
fn refused_write() -> kith_core::store::group::Work<Option<String>> {
    Box::new(move |tx| {
        Box::pin(async move {
            let registry = kith_core::domain::object::Registry::core();
            let input = Input::fields([("nickname", Value::Text("Ada".into()))]);
            records::create_final(tx, &registry, "contact", input).await?;
            Ok(None)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_of_creates_writes_one_insert_per_table_and_reruns_only_when_it_must() {
    use std::sync::{Arc, Mutex};
    for db in TestDb::all().await {
        let statements = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut store = kith_core::store::Store::open(&kith_core::store::StoreOptions::new(&db.url)).await.unwrap();
        let seen = statements.clone();
        store.observe_queries(move |sql| seen.lock().unwrap().push(sql.to_owned()));
        let inserts_into = |table: &str| {
            let (quoted, bare) = (format!("INSERT INTO \"{table}\" "), format!("INSERT INTO {table} "));
            // (The outbox INSERT on PostgreSQL starts with the lock it takes.)
            statements.lock().unwrap().iter().filter(|s| s.contains(&quoted) || s.contains(&bare)).count()
        };
        let acme = db.create("company", serde_json::json!({"name": "Acme"})).await.unwrap().id();

        // Six creates and one refused before any statement: one pass, one INSERT per table.
        let before = store.group_stats();
        let mut works: Vec<_> = (0..6).map(|i| contact_write(format!("one{i}@example.org"))).collect();
        works.insert(3, refused_write());
        let results = run_as_one_group(&store, works).await;
        let failed: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
        assert_eq!(failed, vec![3], "{}: {results:?}", db.name);
        let refusal = results[3].as_ref().unwrap_err();
        assert!(refusal.to_string().contains("nickname"), "{}: {refusal}", db.name);
        let after = store.group_stats();
        assert_eq!(after.reruns, before.reruns, "{}: a refusal before any statement needs no rerun", db.name);
        // Each holding write committed alone, then the six in one commit.
        let holders = after.commits - before.commits - 1;
        assert_eq!(after.writes - before.writes, holders + 6, "{}", db.name);
        for table in ["contact", "audit_log", "search_entry", "event_outbox"] {
            assert_eq!(inserts_into(table), 1, "{}: one INSERT into {table}", db.name);
        }
        if store.backend() == sea_orm::DbBackend::Postgres {
            // On PostgreSQL the four are one statement (and, nothing else having run, its own
            // transaction).
            let merged = statements
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.contains("INSERT INTO \"contact\" ") && s.contains("INSERT INTO \"event_outbox\" "))
                .count();
            assert_eq!(merged, 1, "{}: contact and outbox rows in one statement", db.name);
        }
        assert_eq!(db.count_rows("contact").await, 6, "{}", db.name);

        // A write that fails after a statement (its company does not exist: a read, then a
        // refusal) makes the group run again with savepoints; it alone fails.
        statements.lock().unwrap().clear();
        let before = store.group_stats();
        let works = vec![
            contact_write("two0@example.org".into()),
            contact_at(acme),
            contact_at(uuid::Uuid::now_v7()),
            contact_write("two1@example.org".into()),
        ];
        let results = run_as_one_group(&store, works).await;
        let failed: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
        assert_eq!(failed, vec![2], "{}: {results:?}", db.name);
        assert!(results[2].as_ref().unwrap_err().to_string().contains("no company"), "{}: {results:?}", db.name);
        let after = store.group_stats();
        assert_eq!(after.reruns, before.reruns + 1, "{}", db.name);
        assert_eq!(db.count_rows("contact").await, 9, "{}: the three others committed", db.name);
        assert_eq!(inserts_into("contact"), 3, "{}: rows written at once in the second pass", db.name);
        let events = {
            use sea_orm::{ConnectionTrait, Statement};
            let conn = store.conn();
            let sql = "SELECT COUNT(*) AS n FROM event_outbox WHERE kind = 'contact.created'";
            let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap();
            row.unwrap().try_get::<i64>("", "n").unwrap()
        };
        assert_eq!(events, 9, "{}: no event of the first pass or the failed write", db.name);

        // The same failing write alone answers its error without a second pass.
        let before = store.group_stats();
        let err = store.write(&Actor::system("test"), contact_at(uuid::Uuid::now_v7())).await.unwrap_err();
        assert!(err.to_string().contains("no company"), "{}: {err}", db.name);
        let after = store.group_stats();
        assert_eq!((after.reruns, after.commits), (before.reruns, before.commits), "{}", db.name);
        assert_eq!(db.count_rows("contact").await, 9, "{}", db.name);
        store.close().await.ok();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_first_outbox_insert_of_a_postgres_transaction_takes_the_outbox_lock() {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    // Another session can take the lock while nobody holds it...
    let try_lock = |conn: sea_orm::DatabaseConnection| async move {
        let sql = "SELECT pg_try_advisory_lock(4242424243) AS got";
        let got = conn
            .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap()
            .try_get::<bool>("", "got")
            .unwrap();
        if got {
            conn.execute_unprepared("SELECT pg_advisory_unlock(4242424243)").await.unwrap();
        }
        got
    };
    let other = sea_orm::Database::connect(sea_orm::ConnectOptions::new(db.url.clone()).max_connections(1).to_owned())
        .await
        .unwrap();
    assert!(try_lock(other.clone()).await, "free before");
    let tx = db.tx().await;
    let input = Input::fields([("firstName", Value::Text("Locked".into()))]);
    records::create(&tx, &db.kith.registry(), "contact", input).await.unwrap();
    // ...but not while a transaction that appended to the outbox is open: its INSERT took it.
    assert!(!try_lock(other.clone()).await, "held until the commit");
    tx.commit().await.unwrap();
    assert!(try_lock(other.clone()).await, "free after the commit");
    other.close().await.ok();
    db.cleanup().await;
}

/// A token's use is recorded only when it is due (once a minute), and through the write group:
/// a lookup that finds it recorded a moment ago stays a read. (Each lookup used to run an
/// UPDATE of its own, which on SQLite waited for the write lock behind busy groups in SQLite's
/// sleeping busy handler: a herd of lookups refreshing the auth cache stalled creates for up to
/// seconds.)
#[tokio::test]
async fn a_token_use_is_recorded_once_a_minute_through_the_write_group() {
    use kith_core::domain::actor::Role;
    use kith_core::service::users;
    use std::sync::{Arc, Mutex};
    for db in TestDb::all().await {
        let statements = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut store = kith_core::store::Store::open(&kith_core::store::StoreOptions::new(&db.url)).await.unwrap();
        let seen = statements.clone();
        store.observe_queries(move |sql| seen.lock().unwrap().push(sql.to_owned()));
        let tx = store.begin(&Actor::system("test")).await.unwrap();
        let (id, secret) = users::create_token(&tx, "script", Role::Agent, None, None).await.unwrap();
        tx.commit().await.unwrap();
        let listed = || async {
            let tokens = kith_core::store::tokens::list(store.conn()).await.unwrap();
            tokens.into_iter().find(|t| t.id == id).unwrap()
        };
        assert!(listed().await.last_used_at.is_none(), "{}", db.name);

        let before = store.group_stats();
        for _ in 0..3 {
            let actor = users::authenticate(&store, &secret).await.unwrap().unwrap();
            assert_eq!(actor.role, Role::Agent, "{}", db.name);
        }
        let updates = statements.lock().unwrap().iter().filter(|s| s.contains("UPDATE \"api_token\"")).count();
        assert_eq!(updates, 1, "{}: one use recorded, then lookups only", db.name);
        assert_eq!(store.group_stats().commits, before.commits + 1, "{}: recorded by the write group", db.name);
        assert!(listed().await.last_used_at.is_some(), "{}", db.name);

        // Sixteen requests of a new token at once, through the auth cache: one records the use.
        let kith = kith_core::service::Kith::new(store.clone());
        let tx = store.begin(&Actor::system("test")).await.unwrap();
        let (_, herd) = users::create_token(&tx, "herd", Role::Viewer, None, None).await.unwrap();
        tx.commit().await.unwrap();
        statements.lock().unwrap().clear();
        let lookups = futures_util::future::join_all((0..16).map(|_| users::authenticate_cached(&kith, &herd))).await;
        assert!(lookups.iter().all(|a| matches!(a, Ok(Some(_)))), "{}: {lookups:?}", db.name);
        let updates = statements.lock().unwrap().iter().filter(|s| s.contains("UPDATE \"api_token\"")).count();
        assert_eq!(updates, 1, "{}: one of the herd records the use", db.name);

        // A use that cannot be recorded (here a trigger refuses it) does not refuse the token.
        use sea_orm::ConnectionTrait;
        let refuse = if db.name == "sqlite" {
            "CREATE TRIGGER no_touch BEFORE UPDATE OF last_used_at ON api_token BEGIN SELECT RAISE(ABORT, 'read only'); END"
                .to_owned()
        } else {
            "CREATE FUNCTION no_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'read only'; END $$; \
             CREATE TRIGGER no_touch BEFORE UPDATE OF last_used_at ON api_token FOR EACH ROW EXECUTE FUNCTION no_touch()"
                .to_owned()
        };
        store.conn().execute_unprepared(&refuse).await.unwrap();
        let tx = store.begin(&Actor::system("test")).await.unwrap();
        let (unrecorded_id, unrecorded) =
            users::create_token(&tx, "unrecorded", Role::Viewer, None, None).await.unwrap();
        tx.commit().await.unwrap();
        let actor = users::authenticate(&store, &unrecorded).await.unwrap();
        assert_eq!(actor.map(|a| a.role), Some(Role::Viewer), "{}", db.name);
        let tokens = kith_core::store::tokens::list(store.conn()).await.unwrap();
        let unrecorded = tokens.into_iter().find(|t| t.id == unrecorded_id).unwrap();
        assert!(unrecorded.last_used_at.is_none(), "{}: the refused record left nothing", db.name);

        // Not due again within the minute; due after it.
        let now = chrono::Utc::now();
        assert!(!kith_core::store::tokens::touch_due(Some(now - chrono::Duration::seconds(59)), now));
        assert!(kith_core::store::tokens::touch_due(Some(now - chrono::Duration::seconds(61)), now));
        assert!(kith_core::store::tokens::touch_due(None, now));
        db.cleanup().await;
    }
}

/// A loopback proxy to PostgreSQL that forwards everything until a client sends `marker`; the
/// server's answer to that is then thrown away and the client's connection closed, as when a
/// network drops after the database has done the work but before its answer arrives.
async fn proxy_that_loses_the_answer_to(target: std::net::SocketAddr, marker: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(target).await else { continue };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let muted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = muted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // Muted before the statement leaves, so no answer to it can slip through.
                    if buf[..n].windows(marker.len()).any(|w| w == marker) {
                        seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if muted.load(std::sync::atomic::Ordering::SeqCst) {
                        // The database answered the marked statement: lose the answer.
                        break;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                // Dropping both halves closes the client's connection.
            });
        }
    });
    addr
}

/// PostgreSQL: a group whose one statement reached the database but whose answer was lost
/// (the connection dropped) may have committed, so its callers hear an error and its work is
/// not run a second time: the contact is stored once, not twice. The store goes on working
/// on fresh connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_whose_answer_is_lost_is_not_run_twice() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let proxy = proxy_that_loses_the_answer_to("127.0.0.1:5432".parse().unwrap(), b"Vanishing").await;
    let (_, name) = db.url.rsplit_once('/').unwrap();
    let url = format!("postgres://postgres@{proxy}/{name}?sslmode=disable");
    let store = kith_core::store::Store::open(&kith_core::store::StoreOptions::new(&url)).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let work: kith_core::store::group::Work<()> = Box::new(move |tx| {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let registry = kith_core::domain::object::Registry::core();
            let input = Input::fields([("firstName", Value::Text("Vanishing".into()))]);
            records::create_final(tx, &registry, "contact", input).await?;
            Ok(())
        })
    });
    let lost = store.write(&Actor::system("test"), work).await;
    assert!(lost.is_err(), "the caller hears that the answer was lost: {lost:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the work ran once");
    // The database did commit it, once (read past the proxy).
    assert_eq!(db.count_rows("contact WHERE first_name = 'Vanishing'").await, 1);
    // The next write gets a fresh connection and its answer.
    let next: kith_core::store::group::Work<()> = Box::new(move |tx| {
        Box::pin(async move {
            let registry = kith_core::domain::object::Registry::core();
            let input = Input::fields([("firstName", Value::Text("Steady".into()))]);
            records::create_final(tx, &registry, "contact", input).await?;
            Ok(())
        })
    });
    store.write(&Actor::system("test"), next).await.unwrap();
    assert_eq!(db.count_rows("contact WHERE first_name = 'Steady'").await, 1);
    db.cleanup().await;
}

/// SQLite's write transactions in one process take turns first come, first served (woken when
/// the writer before them ends, not sleeping in SQLite's busy handler), and one that cannot
/// have its turn within the busy timeout is told the database is busy.
#[tokio::test]
async fn sqlite_writers_take_turns_in_arrival_order_and_a_stuck_one_hears_busy() {
    let db = TestDb::sqlite_with(|options| options.busy_timeout = std::time::Duration::from_millis(1_500)).await;
    let first = db.kith.store.begin(&Actor::system("first")).await.unwrap();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiting = Vec::new();
    for i in 0..6 {
        let (store, order) = (db.kith.store.clone(), order.clone());
        waiting.push(tokio::spawn(async move {
            let tx = store.begin(&Actor::system("next")).await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            tx.commit().await.unwrap();
        }));
        // Each arrives after the one before is waiting.
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(order.lock().unwrap().is_empty(), "nobody writes while the first holds the turn");
    first.commit().await.unwrap();
    for task in waiting {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5], "turns in arrival order");
    // A writer that cannot have its turn within the busy timeout hears that the database is busy.
    let holder = db.kith.store.begin(&Actor::system("holder")).await.unwrap();
    let err = db.kith.store.begin(&Actor::system("late")).await.unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
    holder.commit().await.unwrap();
    db.cleanup().await;
}

/// On a SQLite file every write transaction runs on one connection of its own (so the index
/// pages it wrote last are still in that connection's cache), reads outside transactions on the
/// others; the connection is in `/metrics`' pool figures as `writer`.
#[tokio::test]
async fn sqlite_write_transactions_share_one_connection_of_their_own() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::sqlite().await;
    let store = &db.kith.store;
    // A TEMP table lives on the connection that made it: the next write transaction sees it,
    // a read outside a transaction does not.
    let tx = store.begin(&Actor::system("first")).await.unwrap();
    tx.conn().execute_unprepared("CREATE TEMP TABLE writer_mark (x INTEGER)").await.unwrap();
    tx.commit().await.unwrap();
    for i in 0..3 {
        let tx = store.begin(&Actor::system("next")).await.unwrap();
        tx.conn().execute_unprepared(&format!("INSERT INTO writer_mark VALUES ({i})")).await.unwrap();
        tx.commit().await.unwrap();
    }
    let outside = store.conn().execute_unprepared("SELECT count(*) FROM writer_mark").await;
    assert!(outside.is_err(), "reads outside a transaction run on other connections");
    let writer = store.pool_stats().into_iter().find(|p| p.pool == "writer").expect("a writer pool on SQLite");
    // (A committed transaction's connection goes back to its pool a moment later.)
    assert_eq!((writer.max, writer.in_use + writer.idle), (1, 1), "{writer:?}");
    db.cleanup().await;
}
