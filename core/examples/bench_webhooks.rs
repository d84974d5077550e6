//! Webhook delivery throughput: EVENTS contacts imported (one `contact.created` event each),
//! then ENDPOINTS webhooks receive every one of them from the delivery worker, signed, each
//! endpoint in order, to a receiver on loopback (an axum server in this process that counts
//! and answers 200). Prints deliveries per second from the worker's start to the last one
//! received.
//!
//! Run: `cargo run --release -p kith-core --example bench_webhooks [EVENTS] [ENDPOINTS]`
//! (defaults 5000 and 4). A fresh SQLite file (synchronous = FULL), and PostgreSQL too when
//! `KITH_TEST_DATABASE_URL` is set.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kith_core::config::WebhooksConfig;
use kith_core::domain::actor::Actor;
use kith_core::service::Kith;
use kith_core::service::import::{ImportOptions, import_csv};
use kith_core::service::webhook_delivery;
use kith_core::service::webhooks::{self, WebhookInput};
use kith_core::store::{Store, StoreOptions};
use sea_orm::ConnectionTrait;

/// The allocator of the `kith` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5_000);
    let endpoints: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let dir = std::env::temp_dir().join(format!("kith-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("contacts.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(out, "first_name,last_name,email")?;
        for i in 0..events {
            writeln!(out, "First{i},Last{},person{i}@example.org", i % 977)?;
        }
    }
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let kith = Kith::new(Store::open(&StoreOptions::new(&url)).await?);
    bench(&kith, "sqlite", &csv, events, endpoints).await?;
    kith.store.close().await?;
    if let Ok(admin) = std::env::var("KITH_TEST_DATABASE_URL") {
        let name = format!("kith_bench_{}", uuid::Uuid::now_v7().simple());
        let conn = sea_orm::Database::connect(&admin).await?;
        conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
        let kith = Kith::new(Store::open(&StoreOptions::new(&format!("{base}/{name}"))).await?);
        bench(&kith, "postgresql", &csv, events, endpoints).await?;
        kith.store.close().await?;
        conn.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn bench(kith: &Kith, label: &str, csv: &std::path::Path, events: usize, endpoints: usize) -> anyhow::Result<()> {
    kith.configure_webhooks(WebhooksConfig { allow_private: true, poll_interval_ms: 10, ..WebhooksConfig::default() });
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let actor = Actor::system("bench");
    for i in 0..endpoints {
        let tx = kith.store.begin(&actor).await?;
        let input = WebhookInput {
            url: Some(format!("http://{addr}/hook")),
            events: Some(vec!["contact.created".into()]),
            filter: None,
            description: Some(format!("bench {i}")),
        };
        webhooks::create(&tx, &input).await?;
        tx.commit().await?;
    }
    let file = std::io::BufReader::new(std::fs::File::open(csv)?);
    let report = import_csv(kith, &actor, "contact", file, &ImportOptions::default(), &|_| {}).await?;
    anyhow::ensure!(report.created as usize == events, "import incomplete: {report:?}");
    let expected = events * endpoints;
    let started = Instant::now();
    let worker = webhook_delivery::start(kith);
    while received.load(Ordering::Relaxed) < expected {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "not delivered within 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    worker.stop().await;
    println!(
        "{label}: {expected} deliveries ({events} events × {endpoints} endpoints) in {secs:.2} s = {:.0} deliveries/s",
        expected as f64 / secs
    );
    Ok(())
}
