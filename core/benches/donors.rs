//! The donor plugin's reports at a charity's scale: 100,000 donations over 20,000 donors (six
//! years of gifts), SQLite file, through the GraphQL schema (parse, validate, the plugin call,
//! its aggregate host calls, the checks of its answer).
//!
//! Run: `cargo bench -p kith-core --bench donors`. Goal: `donorRetention` and `lybunt` ≤ 200 ms.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kith_core::api::schema::{build_schema, request_data};
use kith_core::config::{ApiConfig, PluginsConfig};
use kith_core::domain::actor::{Actor, Role};
use kith_core::domain::value::Value;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{PluginManager, bundled};
use kith_core::service::Kith;
use kith_core::service::input::Input;
use kith_core::service::records;
use kith_core::store::{Store, StoreOptions};

const DONORS: usize = 20_000;
const DONATIONS: usize = 100_000;

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn setup(rt: &tokio::runtime::Runtime) -> (Kith, std::sync::Arc<PluginManager>) {
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("kith-bench-donors-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&StoreOptions::new(dir.join("bench.db").to_str().unwrap())).await.unwrap();
        let kith = Kith::new(store);
        let config = PluginsConfig {
            install_bundled: false,
            cache_dir: dir.join("cache").display().to_string(),
            ..PluginsConfig::default()
        };
        let manager = PluginManager::new(kith.clone(), &config).unwrap();
        kith_core::plugin::PluginManager::attach(&manager);
        let actor = Actor::system("bench");
        let donors = bundled::BUNDLED.iter().find(|b| b.id == "donors").unwrap();
        manager.install(&actor, donors.manifest, donors.component).await.unwrap();
        manager.enable(&actor, "donors", Grants::All).await.unwrap();
        // Plugins loaded, no background delivery: the measurement sees only the reports.
        manager.start_for_command().await.unwrap();
        // Seed without the plugin's before-write hook (it checks each gift; not what is measured).
        kith.store.set_write_hook(None);
        let registry = kith.registry();
        let mut rng = Lcg(7);
        let mut contacts = Vec::with_capacity(DONORS);
        for chunk in 0..DONORS / 2_000 {
            let tx = kith.store.begin(&actor).await.unwrap();
            for i in chunk * 2_000..(chunk + 1) * 2_000 {
                let contact = records::create(
                    &tx,
                    &registry,
                    "contact",
                    Input::fields([
                        ("firstName", Value::Text(format!("Donor{i}"))),
                        ("lastName", Value::Text("Bench".into())),
                        ("email", Value::Text(format!("d{i}@example.org"))),
                    ]),
                )
                .await
                .unwrap();
                contacts.push(contact.id());
            }
            tx.commit().await.unwrap();
        }
        for chunk in 0..DONATIONS / 2_000 {
            let tx = kith.store.begin(&actor).await.unwrap();
            for _ in 0..2_000 {
                let donor = contacts[rng.next(DONORS as u64) as usize];
                let year = 2021 + rng.next(6) as i32;
                let date =
                    chrono::NaiveDate::from_ymd_opt(year, 1 + rng.next(12) as u32, 1 + rng.next(28) as u32).unwrap();
                let amount =
                    rust_decimal::Decimal::from_str(&format!("{}.{:02}", 5 + rng.next(500), rng.next(100))).unwrap();
                let status = if rng.next(20) == 0 { "REFUNDED" } else { "RECEIVED" };
                records::create(
                    &tx,
                    &registry,
                    "donation",
                    Input::fields([
                        ("contactId", Value::Uuid(donor)),
                        ("amount", Value::Decimal(amount)),
                        ("amountCurrency", Value::Text("USD".into())),
                        // As the plugin's before-write hook completes a gift in the
                        // organisation's currency (version 1.2.0 on).
                        ("exchangeRate", Value::Text("1".into())),
                        ("baseAmount", Value::Decimal(amount)),
                        ("baseAmountCurrency", Value::Text("USD".into())),
                        ("exchangeRateSource", Value::Text("SAME_CURRENCY".into())),
                        ("receivedDate", Value::Date(date)),
                        ("status", Value::Text(status.into())),
                    ]),
                )
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
            let _ = chunk;
        }
        (kith, manager)
    })
}

fn reports(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (kith, _manager) = setup(&rt);
    let schema = build_schema(&kith.registry(), Some(kith.clone()), ApiConfig::default()).unwrap();
    let actor = Actor { role: Role::Manager, ..Actor::system("bench") };
    let retention = "{ donorRetention(year: 2026) { donorsLastYear donorsThisYear newDonors retainedDonors recoveredDonors lapsedDonors retentionRate } }";
    let lybunt = "{ lybunt(year: 2026, first: 100) { contactId name lastGiftDate lastGiftAmount lifetimeGiving } }";
    for query in [retention, lybunt] {
        let response = rt.block_on(schema.execute(request_data(query.into(), &kith, Some(actor.clone()))));
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        eprintln!(
            "{}",
            serde_json::to_string(&response.data).unwrap_or_default().chars().take(300).collect::<String>()
        );
    }
    let mut group = c.benchmark_group("donor reports, 100k donations over 20k donors");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    for (name, query) in [("donorRetention(year)", retention), ("lybunt(year, first: 100)", lybunt)] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(schema.execute(request_data(query.into(), &kith, Some(actor.clone())))))
        });
    }
    group.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
