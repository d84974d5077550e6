//! The welcome plugin in Rust (bundled, kith-plugin-sdk), Python (`plugins/examples/welcome-py`
//! on `plugin-sdk/python`, componentize-py) and TypeScript (`plugins/examples/welcome-ts` on
//! `plugin-sdk/typescript`, componentize-js), the same plugin side by side in one run (issue 30):
//!
//! - the time its toolchain takes to build it (Python and TypeScript);
//! - the component's size;
//! - compiling it without the cache (what `kith plugin install` does once);
//! - cold start: a new plugin manager (a starting Kith process) loading the precompiled plugin
//!   from the cache and answering its first call;
//! - the warm cost of an event it ignores (`contact.updated`: the call into the language's
//!   runtime, the event's decoding, the dispatch), one per call and 100 per call;
//! - a welcome (`contact.created` for a new contact: the greeting looked up, the task and the
//!   greeting written and committed), one per call;
//! - the linear memory one instance holds after these calls (its language runtime's heap
//!   included), against the default cap of 64 MiB.
//!
//! `cargo run --release -p kith-tests --example bench_languages -- [CALLS]` (default 2000). The
//! Python and TypeScript components are built by `kith_tests::languages` (componentize-py and
//! componentize-js from PyPI and npm, pinned).

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

/// The allocator `kith serve` runs with (see `core/src/main.rs`), so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use kith_core::config::PluginsConfig;
use kith_core::domain::actor::Actor;
use kith_core::plugin::PluginManager;
use kith_core::plugin::host::v1::kith::plugin::types::Event;
use kith_core::plugin::manager::Grants;
use kith_core::service::Kith;
use kith_core::store::{Store, StoreOptions};
use serde_json::json;

fn event(seq: i64, kind: &str, contact: &str) -> Event {
    let record = json!({
        "id": contact, "firstName": "Ada", "lastName": "Lovelace",
        "email": "ada@example.org", "lifecycleStage": "LEAD", "version": 1,
        "createdAt": "2026-12-07T10:00:00.000000Z", "updatedAt": "2026-12-07T10:00:00.000000Z"
    });
    Event {
        id: format!("01964e6a-0000-7000-8000-{seq:012}"),
        seq,
        kind: kind.into(),
        object: "contact".into(),
        record_id: Some(contact.into()),
        occurred_at: "2026-12-07T10:00:00.000000Z".into(),
        actor: "user:ada@example.org".into(),
        origin_plugin: None,
        depth: 0,
        payload: json!({ "record": record }).to_string(),
    }
}

async fn measure(name: &str, id: &str, manifest: &str, wasm: &[u8], calls: usize) {
    let dir = std::env::temp_dir().join(format!("kith-bench-languages-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&StoreOptions::new(dir.join("bench.db").to_str().unwrap())).await.unwrap();
    let kith = Kith::new(store);
    let config = PluginsConfig {
        install_bundled: false,
        cache_dir: dir.join("cache").display().to_string(),
        ..PluginsConfig::default()
    };
    let actor = Actor::system("bench");
    let manager = PluginManager::new(kith.clone(), &config).unwrap();
    let started = Instant::now();
    manager.install(&actor, manifest, wasm).await.unwrap();
    let compile = started.elapsed();
    // The contacts the welcomes are for, made before the plugin is enabled, so its own delivery
    // (the runtime follows the outbox) never greets them: the benchmark's calls do.
    let writes = (calls / 10).max(10);
    let mut contacts = Vec::with_capacity(writes);
    let tx = kith.store.begin(&actor).await.unwrap();
    for i in 0..writes {
        let input = kith_core::service::input::Input::from_json(
            &kith.object("contact").unwrap(),
            &json!({"firstName": format!("P{i}")}),
        )
        .unwrap();
        contacts.push(
            kith_core::service::records::create(&tx, &kith.registry(), "contact", input)
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    tx.commit().await.unwrap();
    manager.enable(&actor, id, Grants::All).await.unwrap();
    drop(manager);
    // The contact the events are about (a welcome task refers to it).
    let def = kith.object("contact").unwrap();
    let input = kith_core::service::input::Input::from_json(&def, &json!({"firstName": "Ada", "lastName": "Lovelace"}))
        .unwrap();
    let tx = kith.store.begin(&actor).await.unwrap();
    let contact = kith_core::service::records::create(&tx, &kith.registry(), "contact", input).await.unwrap();
    tx.commit().await.unwrap();
    let contact = contact.id().to_string();

    // Cold start: a new manager over the same database and compile cache.
    let ignored = [event(1, "contact.updated", &contact)];
    let started = Instant::now();
    let manager = kith_core::plugin::start_runtime(&kith, &config).await.unwrap();
    let plugin = manager.loaded(id).unwrap();
    plugin.call_events(&ignored, 0).await.0.unwrap().unwrap();
    let cold = started.elapsed();

    for _ in 0..100 {
        plugin.call_events(&ignored, 0).await.0.unwrap().unwrap();
    }
    let started = Instant::now();
    for _ in 0..calls {
        plugin.call_events(&ignored, 0).await.0.unwrap().unwrap();
    }
    let one = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
    let batch: Vec<Event> = (1..=100).map(|i| event(i, "contact.updated", &contact)).collect();
    let started = Instant::now();
    for _ in 0..calls / 10 {
        plugin.call_events(&batch, 0).await.0.unwrap().unwrap();
    }
    let hundred = started.elapsed().as_secs_f64() * 1e6 / (calls / 10 * 100) as f64;
    // Welcomes: a contact.created per new contact, each call's writes committed (the greeting
    // looked up, the task and the greeting written, as in production).
    let started = Instant::now();
    for (i, contact) in contacts.iter().enumerate() {
        let (answer, tx) = plugin.call_events(&[event(i as i64 + 2, "contact.created", contact)], 0).await;
        answer.unwrap().unwrap();
        if let Some(tx) = tx {
            tx.commit().await.unwrap();
        }
    }
    let write = started.elapsed().as_secs_f64() * 1e6 / writes as f64;
    let memory = plugin.peak_memory_per_instance() as f64 / (1 << 20) as f64;
    println!(
        "{name}: {:.1} MiB; compile {:.2} s; cold start {:.1} ms; ignored event {one:.1} µs (100 per call: {hundred:.1} µs each); welcome task {write:.0} µs; memory per instance {memory:.1} MiB",
        wasm.len() as f64 / (1 << 20) as f64,
        compile.as_secs_f64(),
        cold.as_secs_f64() * 1e3,
    );
    drop(plugin);
    manager.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rust = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "welcome").unwrap();
    // The toolchains' builds, timed once their tools are installed (a first run installs them).
    kith_tests::languages::python().await.unwrap_or_else(|why| panic!("componentize-py: {why}"));
    let welcome_ts = kith_tests::languages::repo().join("plugins/examples/welcome-ts");
    kith_tests::languages::npm_ci(&welcome_ts).await.unwrap_or_else(|why| panic!("npm: {why}"));
    let started = Instant::now();
    let python = kith_tests::languages::python_welcome().await.unwrap();
    println!("Python build (python -m kith_plugin.build): {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let typescript = kith_tests::languages::typescript_welcome().await.unwrap();
    println!(
        "TypeScript build (npm run build: tsc, esbuild, componentize-js): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    measure("Rust (kith-plugin-sdk)", "welcome", rust.manifest, rust.component, calls).await;
    measure("Python (kith_plugin, componentize-py 0.25.1)", "welcome-py", &python.manifest, &python.wasm, calls).await;
    measure(
        "TypeScript (@kith/plugin-sdk, componentize-js 0.23.0)",
        "welcome-ts",
        &typescript.manifest,
        &typescript.wasm,
        calls,
    )
    .await;
}
