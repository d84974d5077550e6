//! Events at scale: how fast plugin delivery drains a backlog of `contact.created` events into a
//! plugin whose handler writes one record per event (the test plugin `hostile` in mode `touch`:
//! it sets the new contact's job title), with one or more delivering processes.
//!
//! Run (SQLite file; PostgreSQL with `KITH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres`):
//!
//! ```sh
//! cargo run --release -p kith-tests --example bench_events -- [EVENTS] [PROCESSES] [PARTITIONS]
//! ```
//!
//! Defaults: 20,000 events, 1 process, 8 partitions. The backlog is committed first, with
//! delivery stopped; then `PROCESSES` child processes (this binary again, as `--deliver URL`)
//! start the plugin runtime on the same database and the clock runs until every event is
//! handled. Prints one line: events, processes, seconds, events/s, and the check that every
//! contact was touched exactly once.

// Benchmark code: a failed unwrap is a failed run, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use kith_core::config::PluginsConfig;
use kith_core::domain::actor::Actor;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{PluginManager, start_runtime};
use kith_core::service::Kith;
use kith_core::store::{Store, StoreOptions, plugins};
use kith_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::json;

fn config(cache: &str) -> PluginsConfig {
    PluginsConfig {
        install_bundled: false,
        cache_dir: cache.to_owned(),
        poll_interval_ms: 10,
        ..PluginsConfig::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--deliver") {
        return deliver(&args[1], &args[2]).await;
    }
    let n: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let processes: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(1);
    let partitions: u32 = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(8);
    let db = match std::env::var("KITH_TEST_DATABASE_URL") {
        Ok(_) => TestDb::postgres().await.ok_or_else(|| anyhow::anyhow!("PostgreSQL unreachable"))?,
        Err(_) => TestDb::sqlite().await,
    };
    let cache = kith_tests::temp_dir().join("cache").display().to_string();
    let actor = Actor::system("bench");
    // The sink: one write per `contact.created`, no before-write hook.
    let manifest = include_str!("../plugins/hostile/plugin.toml")
        .replace("id = \"hostile\"", "id = \"sink\"")
        .replace("events = [\"contact.*\"]", "events = [\"contact.created\"]")
        .replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "");
    // One partition is the manifest without a `[delivery]` table (delivery as it was before).
    let manifest =
        if partitions > 1 { format!("{manifest}\n[delivery]\npartitions = {partitions}\n") } else { manifest };
    // INSTANCES=n: the plugin's `limits.instances` (default 4), which bounds the partitions a
    // process delivers at once.
    let manifest = match std::env::var("INSTANCES") {
        Ok(n) => format!("{manifest}\n[limits]\ninstances = {}\n", n.parse::<u32>()?),
        Err(_) => manifest,
    };
    let wasm = std::fs::read(concat!(env!("TEST_PLUGINS_DIR"), "/kith_test_plugin_hostile.wasm"))?;
    {
        let setup = PluginManager::new(db.kith.clone(), &config(&cache))?;
        setup.install(&actor, &manifest, &wasm).await?;
        setup.set_setting(&actor, "sink", "mode", Some(json!("touch"))).await?;
        setup.enable(&actor, "sink", Grants::All).await?;
    }
    // The backlog, 1,000 contacts a transaction.
    let registry = db.kith.registry();
    let def = db.kith.object("contact")?;
    for chunk in 0..n.div_ceil(1_000) {
        let tx = db.kith.store.begin(&actor).await?;
        for i in chunk * 1_000..((chunk + 1) * 1_000).min(n) {
            let input = kith_core::service::input::Input::from_json(
                &def,
                &json!({"firstName": format!("P{i}"), "lastName": "Backlog", "email": format!("p{i}@example.org")}),
            )?;
            kith_core::service::records::create(&tx, &registry, "contact", input).await?;
        }
        tx.commit().await?;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..processes {
        children.push(
            tokio::process::Command::new(std::env::current_exe()?)
                .args(["--deliver", &db.url, &cache])
                .stdin(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?,
        );
    }
    loop {
        let row = plugins::get(db.kith.store.conn(), "sink").await?.ok_or_else(|| anyhow::anyhow!("sink vanished"))?;
        if row.delivered as usize >= n {
            break;
        }
        anyhow::ensure!(row.failures == 0, "the plugin failed: {:?}", row.last_error);
        anyhow::ensure!(started.elapsed() < Duration::from_secs(1_800), "not drained in 30 minutes");
        // Not more often: the poll shares the 2 cores with what it measures.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    for mut child in children {
        drop(child.stdin.take());
        child.wait().await?;
    }
    let touched = db
        .kith
        .store
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            db.kith.store.conn().get_database_backend(),
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM contact WHERE job_title LIKE 'Touched at %'",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count"))?;
    let (rows, distinct): (i64, i64) = (touched.try_get_by_index(0)?, touched.try_get_by_index(1)?);
    anyhow::ensure!(rows as usize == n && distinct as usize == n, "{rows} rows touched, {distinct} distinct, of {n}");
    println!(
        "{}: {n} events, {processes} process(es), {partitions} partition(s): {:.2} s = {:.0} events/s \
         (every contact touched once; load before: {})",
        db.name,
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    db.cleanup().await;
    Ok(())
}

/// A delivering process: the plugin runtime on the database at `url` until stdin closes.
async fn deliver(url: &str, cache: &str) -> anyhow::Result<()> {
    let store = Store::open(&StoreOptions::new(url)).await?;
    let kith = Kith::new(store);
    let manager = start_runtime(&kith, &config(cache)).await?;
    let mut line = String::new();
    let _ = tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(tokio::io::stdin()), &mut line).await;
    manager.stop().await;
    kith.store.close().await?;
    Ok(())
}
