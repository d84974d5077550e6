//! The cost of delivering an event to a plugin, against a native Rust call doing the same work.
//!
//! Run: `cargo bench -p kith-tests --bench plugins`. The plugin is `tests/plugins/hostile` (built
//! by `tests/build.rs`) in `inspect` mode: it reads its `mode` setting (a host call), parses the event's record and
//! checks a field. The native baseline does the same on the same event: parse the payload,
//! look the setting up and parse it, check the field.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kith_core::config::PluginsConfig;
use kith_core::domain::actor::Actor;
use kith_core::plugin::PluginManager;
use kith_core::plugin::host::v1::kith::plugin::types::Event;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::runtime::LoadedPlugin;
use kith_core::service::Kith;
use kith_core::store::{Store, StoreOptions};
use serde_json::{Value as Json, json};

fn event(seq: i64) -> Event {
    let record = json!({
        "id": "01964e6a-0000-7000-8000-000000000001", "firstName": "Ada", "lastName": "Lovelace",
        "email": "ada@example.org", "phone": "+44 20 7946 0000", "jobTitle": "Analyst",
        "lifecycleStage": "LEAD", "emailOptIn": true, "version": 1,
        "createdAt": "2026-11-22T10:00:00.000000Z", "updatedAt": "2026-11-22T10:00:00.000000Z"
    });
    Event {
        id: format!("01964e6a-0000-7000-8000-{seq:012}"),
        seq,
        kind: "contact.created".into(),
        object: "contact".into(),
        record_id: Some("01964e6a-0000-7000-8000-000000000001".into()),
        occurred_at: "2026-11-22T10:00:00.000000Z".into(),
        actor: "user:ada@example.org".into(),
        origin_plugin: None,
        depth: 0,
        payload: json!({ "record": record }).to_string(),
    }
}

/// The native baseline: the same work as the plugin's `inspect` mode, from the same inputs.
fn native(event: &Event, settings: &std::collections::BTreeMap<String, Json>) -> Result<(), String> {
    let payload: Json = serde_json::from_str(&event.payload).map_err(|e| e.to_string())?;
    let mode: String = settings
        .get("mode")
        .map(|v| serde_json::from_str(&v.to_string()))
        .transpose()
        .map_err(|e: serde_json::Error| e.to_string())?
        .unwrap_or_default();
    if mode != "inspect" {
        return Err("wrong mode".into());
    }
    let record = payload.get("record").unwrap_or(&Json::Null);
    let fields = record.as_object().map_or(0, |r| r.len());
    match record.get("email").and_then(Json::as_str) {
        Some(email) if !email.contains('@') => Err(format!("bad e-mail in a record of {fields} fields")),
        _ => Ok(()),
    }
}

fn setup(rt: &tokio::runtime::Runtime) -> (Arc<PluginManager>, Arc<LoadedPlugin>) {
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("kith-bench-plugins-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&StoreOptions::new(dir.join("bench.db").to_str().unwrap())).await.unwrap();
        let kith = Kith::new(store);
        let config = PluginsConfig {
            install_bundled: false,
            cache_dir: dir.join("cache").display().to_string(),
            ..PluginsConfig::default()
        };
        let manager = kith_core::plugin::start_runtime(&kith, &config).await.unwrap();
        let actor = Actor::system("bench");
        let manifest = include_str!("../plugins/hostile/plugin.toml").replace("id = \"hostile\"", "id = \"sink\"");
        let wasm = std::fs::read(concat!(env!("TEST_PLUGINS_DIR"), "/kith_test_plugin_hostile.wasm")).unwrap();
        manager.install(&actor, &manifest, &wasm).await.unwrap();
        manager.set_setting(&actor, "sink", "mode", Some(json!("inspect"))).await.unwrap();
        manager.enable(&actor, "sink", Grants::All).await.unwrap();
        let plugin = manager.loaded("sink").unwrap();
        (manager, plugin)
    })
}

fn events(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_manager, plugin) = setup(&rt);
    let one = [event(1)];
    let batch: Vec<Event> = (1..=100).map(event).collect();
    let settings = plugin.context.settings.clone();

    let mut group = c.benchmark_group("event");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("native, same work", |b| b.iter(|| native(black_box(&one[0]), &settings)));
    group.bench_function("plugin, 1 event per call (warm instance)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    plugin.call_events(black_box(&one), 0).await.0.unwrap().unwrap();
                }
                started.elapsed()
            })
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("plugin, 100 events per call (warm instance)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    plugin.call_events(black_box(&batch), 0).await.0.unwrap().unwrap();
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, events);
criterion_main!(benches);
