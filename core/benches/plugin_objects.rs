//! A list page of a plugin-declared object against the same page of a core object, and a page
//! of contacts with a plugin-computed field against the same page without it, through the
//! GraphQL schema (parse, validate, resolve, SQL on SQLite), with 10,000 records of each.
//!
//! Run: `cargo bench -p kith-core --bench plugin_objects`. The object queries ask for a
//! filtered page of 50 with four fields; the filter matches about half of the records of each.
//! The computed field is the bundled welcome plugin's `Contact.welcomeStatus` (one plugin call
//! per page, which runs one aggregate query over its greetings).

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kith_core::api::schema::{build_schema, request_data};
use kith_core::config::{ApiConfig, PluginsConfig};
use kith_core::domain::actor::Actor;
use kith_core::domain::value::Value;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{PluginManager, bundled};
use kith_core::service::Kith;
use kith_core::service::input::Input;
use kith_core::service::records;
use kith_core::store::{Store, StoreOptions};

const RECORDS: usize = 10_000;

const OBJECTS: &str = r#"
[[objects]]
name = "gift"
plural = "gifts"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
required = true
[[objects.fields]]
name = "amount"
type = "money"
required = true
[[objects.fields]]
name = "status"
type = "enum"
values = ["PLEDGED", "RECEIVED"]
required = true
indexed = true
[[objects.fields]]
name = "note"
type = "text"
"#;

fn setup(rt: &tokio::runtime::Runtime) -> (Kith, std::sync::Arc<PluginManager>) {
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("kith-bench-objects-{}", uuid::Uuid::now_v7().simple()));
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
        let manifest = format!(
            "manifest_version = 1\nid = \"bench\"\nname = \"Bench\"\nversion = \"1.0.0\"\nsdk_version = \"1.2.0\"\n{OBJECTS}"
        );
        manager.install(&actor, &manifest, bundled::BUNDLED[0].component).await.unwrap();
        manager.enable(&actor, "bench", Grants::All).await.unwrap();
        let registry = kith.registry();
        for chunk in 0..RECORDS / 1_000 {
            let tx = kith.store.begin(&actor).await.unwrap();
            for i in chunk * 1_000..(chunk + 1) * 1_000 {
                let stage = if i % 2 == 0 { "LEAD" } else { "CUSTOMER" };
                let contact = records::create(
                    &tx,
                    &registry,
                    "contact",
                    Input::fields([
                        ("firstName", Value::Text(format!("First{i}"))),
                        ("lastName", Value::Text(format!("Last{i}"))),
                        ("email", Value::Text(format!("p{i}@example.org"))),
                        ("lifecycleStage", Value::Text(stage.into())),
                    ]),
                )
                .await
                .unwrap();
                let status = if i % 2 == 0 { "RECEIVED" } else { "PLEDGED" };
                records::create(
                    &tx,
                    &registry,
                    "gift",
                    Input::fields([
                        ("contactId", Value::Uuid(contact.id())),
                        ("amount", Value::Decimal(rust_decimal::Decimal::from_str(&format!("{}.50", i % 500)).unwrap())),
                        ("amountCurrency", Value::Text("EUR".into())),
                        ("status", Value::Text(status.into())),
                        ("note", Value::Text(format!("Gift number {i}"))),
                    ]),
                )
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }
        // Enabled after the data is in, so that it has no backlog of events to work through
        // while the benchmark runs.
        let welcome = bundled::BUNDLED[0];
        manager.install(&actor, welcome.manifest, welcome.component).await.unwrap();
        manager.enable(&actor, "welcome", Grants::All).await.unwrap();
        manager.refresh().await.unwrap();
        (kith, manager)
    })
}

fn pages(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (kith, _manager) = setup(&rt);
    let schema = build_schema(&kith.registry(), Some(kith.clone()), ApiConfig::default()).unwrap();
    let actor = Actor::system("bench");
    let core = "{ contacts(filter: {lifecycleStage: {eq: LEAD}}, first: 50) { edges { node { id firstName lastName email } } } }";
    let plugin = "{ gifts(filter: {status: {eq: RECEIVED}}, first: 50) { edges { node { id amount status note } } } }";
    for query in [core, plugin] {
        let response = rt.block_on(schema.execute(request_data(query.into(), &kith, Some(actor.clone()))));
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }

    let mut group = c.benchmark_group("list page of 50 with a filter");
    group.measurement_time(Duration::from_secs(5));
    for (name, query) in [("core object (contacts)", core), ("plugin object (gifts)", plugin)] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(schema.execute(request_data(query.into(), &kith, Some(actor.clone())))))
        });
    }
    group.finish();

    let plain = "{ contacts(first: 50) { edges { node { id firstName lastName email } } } }";
    let computed = "{ contacts(first: 50) { edges { node { id firstName lastName email welcomeStatus } } } }";
    for query in [plain, computed] {
        let response = rt.block_on(schema.execute(request_data(query.into(), &kith, Some(actor.clone()))));
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    let mut group = c.benchmark_group("contacts page of 50");
    group.measurement_time(Duration::from_secs(5));
    for (name, query) in [("without a computed field", plain), ("with welcomeStatus (plugin-computed)", computed)] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(schema.execute(request_data(query.into(), &kith, Some(actor.clone())))))
        });
    }
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
