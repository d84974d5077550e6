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
    let Some(db) = TestDb::postgres().await else { return };
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
        Box::pin(async move {
            let registry = kith_core::domain::object::Registry::core();
            let input = Input::fields([("firstName", Value::Text("G".into())), ("email", Value::Text(email))]);
            records::create(tx, &registry, "contact", input).await?;
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
        // The first writes hold their groups open until released (one group at a time on
        // SQLite, a few side by side on PostgreSQL), so the next ones queue up.
        let blockers = if sqlite { 1 } else { kith_core::store::group::POSTGRES_GROUPS };
        let (release, released) = tokio::sync::watch::channel(false);
        let mut held = Vec::new();
        for _ in 0..blockers {
            let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
            let (store, actor, mut released) = (store.clone(), actor.clone(), released.clone());
            held.push(tokio::spawn(async move {
                let work: kith_core::store::group::Work<Option<String>> = Box::new(move |tx| {
                    Box::pin(async move {
                        let _ = started_tx.send(());
                        let _ = released.wait_for(|go| *go).await;
                        let registry = kith_core::domain::object::Registry::core();
                        let input = Input::fields([("firstName", Value::Text("First".into()))]);
                        records::create(tx, &registry, "contact", input).await?;
                        Ok(None)
                    })
                });
                store.write(&actor, work).await
            }));
            // Each blocker is running (in its own group) before the next one is queued.
            started.await.unwrap();
        }
        drop(released);
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
