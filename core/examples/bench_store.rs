//! Storage benchmarks: `kith import` throughput and single-contact creates.
//!
//! Run: `cargo run --release -p kith-core --example bench_store [ROWS] [CREATES]`
//! (defaults 100000 and 2000). Uses fresh SQLite files in a temp directory, and PostgreSQL too
//! when `KITH_TEST_DATABASE_URL` is set. Prints one line per measurement.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Instant;

use kith_core::domain::actor::Actor;
use kith_core::domain::value::Value;
use kith_core::service::Kith;
use kith_core::service::import::{ImportOptions, import_csv};
use kith_core::service::input::Input;
use kith_core::service::records;
use kith_core::store::{Store, StoreOptions};
use sea_orm::ConnectionTrait;

/// The allocator of the `kith` binary, so figures match `kith import`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let creates: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let dir = std::env::temp_dir().join(format!("kith-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("contacts.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(out, "first_name,last_name,email,phone,job_title,city,country,tags")?;
        for i in 0..rows {
            writeln!(
                out,
                "First{i},Last{},person{i}@example.org,+44 20 7946 {:04},Engineer,City{},UK,t{}",
                i % 977,
                i % 10_000,
                i % 50,
                i % 7
            )?;
        }
    }
    let size = std::fs::metadata(&csv)?.len();
    println!("generated {rows} rows ({:.1} MB)", size as f64 / 1e6);

    for (label, sync_full) in [("sqlite synchronous=FULL", true), ("sqlite synchronous=NORMAL", false)] {
        let url = format!("sqlite://{}", dir.join(format!("bench-{sync_full}.db")).display());
        let mut options = StoreOptions::new(&url);
        options.sqlite_synchronous_full = sync_full;
        let kith = Kith::new(Store::open(&options).await?);
        bench(&kith, label, &csv, rows, creates).await?;
        kith.store.close().await?;
    }
    if let Ok(admin) = std::env::var("KITH_TEST_DATABASE_URL") {
        let name = format!("kith_bench_{}", uuid::Uuid::now_v7().simple());
        let conn = sea_orm::Database::connect(&admin).await?;
        conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
        let kith = Kith::new(Store::open(&StoreOptions::new(&format!("{base}/{name}"))).await?);
        bench(&kith, "postgresql 15", &csv, rows, creates).await?;
        kith.store.close().await?;
        conn.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn bench(kith: &Kith, label: &str, csv: &std::path::Path, rows: usize, creates: usize) -> anyhow::Result<()> {
    let actor = Actor::system("bench");
    let started = Instant::now();
    let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(csv)?);
    let report = import_csv(kith, &actor, "contact", file, &ImportOptions::default(), &|_| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.created as usize == rows && report.rejected.is_empty(), "import incomplete: {report:?}");
    println!(
        "{label}: import {rows} contacts in {secs:.2}s = {:.0} rows/s (with audit entries and outbox events)",
        rows as f64 / secs
    );

    let started = Instant::now();
    for i in 0..creates {
        let tx = kith.store.begin(&actor).await?;
        let input = Input::fields([
            ("firstName", Value::Text(format!("Single{i}"))),
            ("email", Value::Text(format!("single{i}@example.net"))),
        ]);
        records::create(&tx, &kith.registry(), "contact", input).await?;
        tx.commit().await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: {creates} single-contact creates (one committed transaction each) in {secs:.2}s = {:.0} creates/s, {:.2} ms each",
        creates as f64 / secs,
        secs * 1e3 / creates as f64
    );
    Ok(())
}
