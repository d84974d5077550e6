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
