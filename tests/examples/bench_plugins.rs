//! Plugin runtime figures: end-to-end event throughput from the outbox to a plugin on SQLite,
//! and the cold start of a Kith process with 4 precompiled plugins.
//!
//! Run: `cargo run --release -p kith-tests --example bench_plugins [EVENTS]` (default 50000).
//! Uses a fresh SQLite file in a temp directory. Prints one line per measurement.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kith_core::config::PluginsConfig;
use kith_core::domain::actor::Actor;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{PluginManager, bundled, start_runtime};
use kith_core::service::Kith;
use kith_core::store::outbox::{self, NewEvent};
use kith_core::store::{Store, StoreOptions, plugins};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(50_000);
    let dir = std::env::temp_dir().join(format!("kith-bench-plugins-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&StoreOptions::new(dir.join("bench.db").to_str().unwrap_or("bench.db"))).await?;
    let kith = Kith::new(store);
    let config = PluginsConfig {
        install_bundled: false,
        cache_dir: dir.join("cache").display().to_string(),
        poll_interval_ms: 10,
        ..PluginsConfig::default()
    };
    let actor = Actor::system("bench");
    let hostile = include_str!("../plugins/hostile/plugin.toml");
    let wasm = std::fs::read(concat!(env!("TEST_PLUGINS_DIR"), "/kith_test_plugin_hostile.wasm"))?;

    // 1. Throughput: N committed events, then a process starts and drains them into a plugin.
    {
        let setup = PluginManager::new(kith.clone(), &config)?;
        setup.install(&actor, &hostile.replace("id = \"hostile\"", "id = \"sink\""), &wasm).await?;
        setup.set_setting(&actor, "sink", "mode", Some(json!("inspect"))).await?;
        setup.enable(&actor, "sink", Grants::All).await?;
    }
    let payload = json!({"record": {"id": "01964e6a-0000-7000-8000-000000000001", "firstName": "Ada",
        "lastName": "Lovelace", "email": "ada@example.org", "lifecycleStage": "LEAD", "version": 1}});
    for chunk in 0..n.div_ceil(10_000) {
        let tx = kith.store.begin(&actor).await?;
        let count = (n - chunk * 10_000).min(10_000);
        let events = (0..count)
            .map(|_| NewEvent {
                kind: "contact.created".into(),
                object: "contact".into(),
                record_id: Some(uuid::Uuid::now_v7()),
                payload: payload.clone(),
            })
            .collect();
        outbox::emit(&tx, events).await?;
        tx.commit().await?;
    }
    let started = Instant::now();
    let manager = start_runtime(&kith, &config).await?;
    loop {
        let row = plugins::get(kith.store.conn(), "sink").await?.ok_or_else(|| anyhow::anyhow!("sink vanished"))?;
        if row.delivered as usize >= n {
            break;
        }
        anyhow::ensure!(row.failures == 0, "the plugin failed: {:?}", row.last_error);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "outbox -> plugin, SQLite: {n} events in {:.2}s = {:.0} events/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    manager.stop().await;
    drop(manager);

    // 2. Cold start with 4 precompiled plugins (the cache was filled by the installs above).
    {
        let setup = PluginManager::new(kith.clone(), &config)?;
        for id in ["second", "third"] {
            setup.install(&actor, &hostile.replace("id = \"hostile\"", &format!("id = \"{id}\"")), &wasm).await?;
            setup.enable(&actor, id, Grants::All).await?;
        }
        let welcome = bundled::BUNDLED[0];
        setup.install(&actor, welcome.manifest, welcome.component).await?;
        setup.enable(&actor, "welcome", Grants::All).await?;
    }
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let manager = start_runtime(&kith, &config).await?;
        anyhow::ensure!(manager.active().len() == 4, "expected 4 plugins, got {}", manager.active().len());
        times.push(started.elapsed());
        manager.stop().await;
    }
    times.sort();
    println!(
        "cold start with 4 precompiled plugins (engine, load, link, hook, delivery): median {:.1} ms, max {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    kith.store.close().await?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
