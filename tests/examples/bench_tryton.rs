//! The Tryton connector's goals, measured against a real `trytond` 8.2 on loopback
//! (`kith_tests::tryton`) holding PARTIES customers and INVOICES draft invoices (made once per
//! machine by `tests/tryton/bulk.py`):
//!
//! - the initial sync: the `sync` job run until every party is a company and every invoice an
//!   `erpInvoice` (companies, links, invoices written in Kith; products and sales read too);
//! - a cycle with no change (every stream read from its cursor, ten seconds back), then an
//!   incremental cycle: CHANGES parties renamed in Tryton (by its own client), then one run of
//!   the `sync` job until the companies carry the new names.
//!
//! `cargo run --release -p kith-tests --example bench_tryton -- [PARTIES] [INVOICES] [CHANGES]`
//! (defaults 10000, 20000, 100); `KITH_TEST_DATABASE_URL=postgres://...` for PostgreSQL;
//! `BATCH=n` for the plugin's `batch_size` (default 500).

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

/// The allocator `kith serve` runs with (see `core/src/main.rs`), so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use kith_core::config::PluginsConfig;
use kith_core::domain::actor::Actor;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{bundled, jobs, start_runtime};
use kith_tests::TestDb;
use kith_tests::tryton::{PASSWORD, TrytonServer};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

async fn count(db: &TestDb, sql: &str) -> i64 {
    let conn = db.kith.store.conn();
    let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned())).await.unwrap();
    row.unwrap().try_get_by_index::<i64>(0).unwrap()
}

/// Runs the `sync` job now, after the scheduler's own run of it if one is under way.
async fn sync(runtime: &std::sync::Arc<kith_core::plugin::manager::PluginManager>) -> kith_core::store::jobs::JobRun {
    loop {
        match jobs::run_now(runtime, "tryton", "sync").await {
            Err(err) if err.to_string().contains("running already") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => return other.unwrap(),
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let parties = args.first().copied().unwrap_or(10_000);
    let invoices = args.get(1).copied().unwrap_or(20_000);
    let changes = args.get(2).copied().unwrap_or(100);
    let batch: i64 = std::env::var("BATCH").ok().and_then(|b| b.parse().ok()).unwrap_or(500);

    let made = Instant::now();
    let tryton = TrytonServer::start_filled(parties, invoices).await.unwrap_or_else(|why| panic!("no Tryton: {why}"));
    println!("Tryton with {parties} parties and {invoices} invoices up in {:.1} s", made.elapsed().as_secs_f64());
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let plugins = PluginsConfig { install_bundled: false, ..PluginsConfig::default() };
    let runtime = start_runtime(&db.kith, &plugins).await.unwrap();
    let bench = Actor::system("bench");
    let connector = bundled::BUNDLED.iter().find(|b| b.id == "tryton").unwrap();
    runtime.install(&bench, connector.manifest, connector.component).await.unwrap();
    runtime.set_setting(&bench, "tryton", "url", Some(json!(tryton.url()))).await.unwrap();
    runtime.set_setting(&bench, "tryton", "password", Some(json!(PASSWORD))).await.unwrap();
    runtime.set_setting(&bench, "tryton", "batch_size", Some(json!(batch))).await.unwrap();
    runtime.enable(&bench, "tryton", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();

    // The initial sync, to its end.
    let started = Instant::now();
    let mut runs = 0;
    loop {
        let run = sync(&runtime).await;
        runs += 1;
        assert_eq!(run.status, "succeeded", "{run:?}");
        let companies = count(&db, "SELECT COUNT(*) FROM company WHERE deleted_at IS NULL").await;
        let synced = count(&db, "SELECT COUNT(*) FROM p_tryton_erp_invoice").await;
        if companies >= parties as i64 && synced >= invoices as i64 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1800), "{companies} companies, {synced} invoices after 30 min");
    }
    // The cycle's last stream pages (nothing left to read) belong to it too.
    sync(&runtime).await;
    let initial = started.elapsed();
    let links = count(&db, "SELECT COUNT(*) FROM p_tryton_erp_link").await;
    println!(
        "{}: initial sync of {parties} parties and {invoices} invoices in {:.1} s ({runs} job calls, {links} links, batch {batch})",
        db.name,
        initial.as_secs_f64()
    );

    // A cycle with nothing new: it reads each stream from its cursor (ten seconds back).
    let started = Instant::now();
    sync(&runtime).await;
    println!("{}: a cycle with no change in {:.2} s", db.name, started.elapsed().as_secs_f64());

    // An incremental cycle with CHANGES changes.
    let suffix = format!("r{}", std::process::id());
    tryton.ctl(&["rename-parties", &changes.to_string(), &suffix]).await;
    let renamed = format!("SELECT COUNT(*) FROM company WHERE name LIKE '% / {suffix}'");
    let started = Instant::now();
    let run = sync(&runtime).await;
    let cycle = started.elapsed();
    assert_eq!(run.status, "succeeded", "{run:?}");
    assert_eq!(count(&db, &renamed).await, changes as i64, "every renamed party's company renamed by one cycle");
    println!("{}: an incremental cycle with {changes} changed parties in {:.2} s", db.name, cycle.as_secs_f64());

    runtime.stop().await;
    db.cleanup().await;
}
