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
        // The first write holds its group open until released, so the next ones queue up.
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (store, actor) = (store.clone(), actor.clone());
            tokio::spawn(async move {
                let work: kith_core::store::group::Work<Option<String>> = Box::new(move |tx| {
                    Box::pin(async move {
                        let _ = started_tx.send(());
                        let _ = released.await;
                        let registry = kith_core::domain::object::Registry::core();
                        let input = Input::fields([("firstName", Value::Text("First".into()))]);
                        records::create(tx, &registry, "contact", input).await?;
                        Ok(None)
                    })
                });
                store.write(&actor, work).await
            })
        };
        started.await.unwrap();
        let before = store.group_stats();
        let mut queued = Vec::new();
        for i in 0..10 {
            // Writes 4 and 5 want the same e-mail: one of them must fail, alone.
            let email = format!("g{}@example.org", if i == 5 { 4 } else { i });
            let (store, actor) = (store.clone(), actor.clone());
            queued.push(tokio::spawn(async move { store.write(&actor, contact_write(email)).await }));
        }
        // A caller that gives up before its turn: its write must never run.
        let gone = {
            let (store, actor) = (store.clone(), actor.clone());
            tokio::spawn(async move { store.write(&actor, contact_write("gone@example.org".into())).await })
        };
        // Let every write reach the queue before the first group ends.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut failures = Vec::new();
        for (i, task) in queued.into_iter().enumerate() {
            if let Err(err) = task.await.unwrap() {
                failures.push((i, err.to_string()));
            }
        }
        assert_eq!(failures.len(), 1, "{}: {failures:?}", db.name);
        assert_eq!(failures[0].0, 5, "{}: the later duplicate fails", db.name);
        assert!(failures[0].1.contains("already exists"), "{}: {failures:?}", db.name);
        let after = store.group_stats();
        assert_eq!(after.writes - before.writes, 10, "{}: the first and nine queued writes committed", db.name);
        assert_eq!(after.commits - before.commits, 2, "{}: the queued ones in one commit", db.name);
        // Everything of the failed and the abandoned writes is gone; the others are whole.
        let conn = db.kith.store.conn();
        let count = |sql: &'static str| async move {
            use sea_orm::{ConnectionTrait, Statement};
            let statement =
                Statement::from_string(conn.get_database_backend(), sql.replace("COUNT(*)", "COUNT(*) AS n"));
            conn.query_one_raw(statement).await.unwrap().unwrap().try_get::<i64>("", "n").unwrap()
        };
        assert_eq!(count("SELECT COUNT(*) FROM contact").await, 10, "{}", db.name);
        assert_eq!(count("SELECT COUNT(*) FROM contact WHERE email = 'gone@example.org'").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM audit_log WHERE object = 'contact'").await, 10, "{}", db.name);
        assert_eq!(count("SELECT COUNT(*) FROM event_outbox WHERE kind = 'contact.created'").await, 10, "{}", db.name);
        db.cleanup().await;
    }
}
