//! The plugin runtime end to end: real wasm components built from `plugins/` (by `core/build.rs`)
//! and `tests/plugins/` (by `tests/build.rs`), installed and granted through GraphQL and the CLI,
//! on both databases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kith_core::config::PluginsConfig;
use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{PluginManager, start_runtime};
use kith_tests::TestDb;
use serde_json::json;

use crate::util::{Server, admin, code, eventually, hostile, plugins_config, run_cli_env, token, welcome};

async fn plugin_row(db: &TestDb, id: &str) -> kith_core::store::plugins::PluginRow {
    kith_core::store::plugins::get(db.kith.store.conn(), id).await.unwrap().unwrap()
}

async fn kv_count(db: &TestDb, plugin: &str, prefix: &str) -> usize {
    kith_core::store::plugins::kv_keys(db.kith.store.conn(), plugin, prefix, 100_000).await.unwrap().len()
}

async fn contact(db: &TestDb, first: &str, email: &str) -> kith_core::store::records::Record {
    db.create("contact", json!({"firstName": first, "lastName": "Test", "email": email})).await.unwrap()
}

#[tokio::test]
async fn welcome_plugin_through_graphql_grants_events_and_vetoes() {
    for db in TestDb::all().await {
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin_token = token(&db, Role::Admin).await;
        let agent = token(&db, Role::Agent).await;
        let (manifest, wasm) = welcome();
        let component = base64::engine::general_purpose::STANDARD.encode(&wasm);
        let install = "mutation($m: String!, $c: String!) { installPlugin(manifest: $m, component: $c) { id version enabled status requestedCapabilities sdkVersion } }";

        let refused = server.gql(&agent, install, json!({"m": manifest, "c": component})).await;
        assert_eq!(code(&refused), "FORBIDDEN", "{}: {refused}", db.name);
        let bad = server
            .gql(
                &admin_token,
                install,
                json!({"m": manifest.replace("id = ", "colour = \"red\"\nid = "), "c": component}),
            )
            .await;
        assert!(bad["errors"][0]["message"].as_str().unwrap().contains("colour"), "{}: {bad}", db.name);
        let not_wasm = server.gql(&admin_token, install, json!({"m": manifest, "c": "aGVsbG8="})).await;
        assert_eq!(code(&not_wasm), "BAD_USER_INPUT", "{}: {not_wasm}", db.name);

        let installed = server.gql(&admin_token, install, json!({"m": manifest, "c": component})).await;
        let plugin = &installed["data"]["installPlugin"];
        assert_eq!(plugin["enabled"], false, "{}: {installed}", db.name);
        assert_eq!(plugin["sdkVersion"], "1.4.0");
        assert_eq!(plugin["requestedCapabilities"], json!(["contacts:read", "activities:write"]));

        let enable = "mutation($g: [String!], $all: Boolean) { enablePlugin(id: \"welcome\", grants: $g, grantAll: $all) { enabled status grants } }";
        let partial = server.gql(&admin_token, enable, json!({"g": ["contacts:read"]})).await;
        assert!(
            partial["errors"][0]["message"].as_str().unwrap().contains("activities:write"),
            "{}: every requested capability must be granted: {partial}",
            db.name
        );
        let enabled = server.gql(&admin_token, enable, json!({"g": ["contacts:read", "activities:write"]})).await;
        assert_eq!(enabled["data"]["enablePlugin"]["status"], "ACTIVE", "{}: {enabled}", db.name);

        let owner =
            db.create("user", json!({"email": "owner@example.org", "name": "Owner", "role": "AGENT"})).await.unwrap();
        let created = server
            .gql(
                &agent,
                "mutation($i: ContactCreateInput!) { createContact(input: $i) { id } }",
                json!({"i": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "ownerId": owner.id().to_string()}}),
            )
            .await;
        let contact_id = created["data"]["createContact"]["id"].as_str().unwrap().to_owned();
        let task = eventually(20, "the welcome task", || {
            let server = &server;
            let agent = &agent;
            let contact_id = contact_id.clone();
            async move {
                let r = server
                    .gql(agent, "query($f: ActivityFilter) { activities(filter: $f) { edges { node { kind subject contactId ownerId dueAt } } } }", json!({"f": {"contactId": {"eq": contact_id}}}))
                    .await;
                r["data"]["activities"]["edges"].as_array().filter(|e| !e.is_empty()).map(|e| e[0]["node"].clone())
            }
        })
        .await;
        assert_eq!(task["kind"], "TASK", "{}", db.name);
        assert_eq!(task["subject"], "Welcome Ada Lovelace");
        assert_eq!(task["ownerId"], owner.id().to_string());
        assert!(task["dueAt"].is_string());
        // The plugin's write is audited with the plugin as actor.
        let audit = server
            .gql(&admin_token, "{ auditLog(object: \"activity\") { actorKind actorName action } }", json!({}))
            .await;
        assert_eq!(audit["data"]["auditLog"][0]["actorName"], "plugin:welcome", "{}: {audit}", db.name);
        // The plugin recorded the greeting in its own object, which GraphQL shows both ways.
        let greetings = eventually(10, "the greeting", || {
            let (server, agent, contact_id) = (&server, &agent, contact_id.clone());
            async move {
                let r = server
                    .gql(
                        agent,
                        "query($id: ID!) { contact(id: $id) { greetings { totalCount edges { node { subject task { kind } contact { firstName } } } } } }",
                        json!({"id": contact_id}),
                    )
                    .await;
                // The page and the count are two reads: wait until both see the greeting.
                let edges = r["data"]["contact"]["greetings"]["edges"].as_array().map_or(0, Vec::len);
                (edges == 1 && r["data"]["contact"]["greetings"]["totalCount"] == 1).then_some(r)
            }
        })
        .await;
        let greeting = &greetings["data"]["contact"]["greetings"];
        assert_eq!(greeting["edges"][0]["node"]["subject"], "Welcome Ada Lovelace", "{}: {greetings}", db.name);
        assert_eq!(greeting["edges"][0]["node"]["task"]["kind"], "TASK", "{}: {greetings}", db.name);
        assert_eq!(greeting["edges"][0]["node"]["contact"]["firstName"], "Ada", "{}: {greetings}", db.name);

        // The blocklist: set through GraphQL, checked before the write, nothing stored.
        let set = server
            .gql(&admin_token, "mutation { setPluginSetting(id: \"welcome\", key: \"blocked_domains\", value: [\"Spam.test\"]) { settings } }", json!({}))
            .await;
        assert_eq!(
            set["data"]["setPluginSetting"]["settings"]["blocked_domains"],
            json!(["Spam.test"]),
            "{}: {set}",
            db.name
        );
        let wrong_type = server
            .gql(
                &admin_token,
                "mutation { setPluginSetting(id: \"welcome\", key: \"blocked_domains\", value: 3) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&wrong_type), "BAD_USER_INPUT", "{}: {wrong_type}", db.name);
        let before = db.count_rows("contact").await;
        let vetoed = eventually(10, "the setting to apply", || {
            let server = &server;
            let agent = &agent;
            async move {
                let r = server
                    .gql(
                        agent,
                        "mutation($i: ContactCreateInput!) { createContact(input: $i) { id } }",
                        json!({"i": {"firstName": "Bot", "email": "bot@spam.TEST"}}),
                    )
                    .await;
                (code(&r) == "REJECTED_BY_PLUGIN").then_some(r)
            }
        })
        .await;
        assert!(vetoed["errors"][0]["message"].as_str().unwrap().contains("spam.test"), "{}: {vetoed}", db.name);
        assert_eq!(db.count_rows("contact").await, before, "{}: a vetoed write stores nothing", db.name);

        // Disabled: the hook is gone at once, and no more tasks appear.
        let disabled =
            server.gql(&admin_token, "mutation { disablePlugin(id: \"welcome\") { status } }", json!({})).await;
        assert_eq!(disabled["data"]["disablePlugin"]["status"], "DISABLED", "{}: {disabled}", db.name);
        let ok = server
            .gql(
                &agent,
                "mutation($i: ContactCreateInput!) { createContact(input: $i) { id } }",
                json!({"i": {"firstName": "Bot", "email": "bot@spam.test"}}),
            )
            .await;
        assert!(ok["errors"].is_null(), "{}: {ok}", db.name);
        let listed =
            server.gql(&admin_token, "{ plugins { id status stats { delivered failures } } }", json!({})).await;
        assert_eq!(listed["data"]["plugins"][0]["stats"]["delivered"], 1, "{}: {listed}", db.name);

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn ungranted_calls_are_refused_audited_and_counted() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let (manifest, wasm) = hostile("nosy");
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), "nosy", "mode", Some(json!("ungranted"))).await.unwrap();
    manager.enable(&admin(), "nosy", Grants::All).await.unwrap();
    contact(&db, "Ada", "ada@example.org").await;
    eventually(20, "the refusal to be counted", || async {
        let row = plugin_row(&db, "nosy").await;
        (row.denied_calls >= 1 && row.delivered >= 1).then_some(())
    })
    .await;
    let audit = kith_core::store::audit::list(db.kith.store.conn(), "plugin", None, 10).await.unwrap();
    let denied = audit.iter().find(|e| e.action == "plugin.denied").expect("an audit entry for the refusal");
    assert_eq!(denied.changes["capability"], "deals:read");
    assert_eq!(denied.actor_name, "plugin:nosy");
    manager.stop().await;
    db.cleanup().await;
}

/// Each hostile behaviour: the failure is recorded and visible, the plugin is suspended after
/// repeated failures, and Kith keeps serving with its data intact.
#[tokio::test]
async fn hostile_plugins_are_contained() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let agent = token(&db, Role::Agent).await;
    let cases = [
        ("looper", "loop", "timed out"),
        ("hoarder", "alloc", "memory limit"),
        ("recurser", "recurse", "stack overflow"),
        ("panicker", "panic", "hostile plugin panics"),
    ];
    for (id, mode, _) in cases {
        let (mut manifest, wasm) = hostile(id);
        if id == "hoarder" {
            // Filling its memory cap must be what stops the hoarder, not the default 300 ms
            // budget, which a busy machine (the whole suite runs at once) can use up first.
            manifest.push_str("\n[limits]\nevent_timeout_ms = 10000\n");
        }
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), id, "mode", Some(json!(mode))).await.unwrap();
        manager.enable(&admin(), id, Grants::All).await.unwrap();
    }
    for i in 0..4 {
        contact(&db, &format!("Victim{i}"), &format!("victim{i}@example.org")).await;
    }
    for (id, _, expected) in cases {
        let row = eventually(60, &format!("{id} to be suspended"), || async {
            let row = plugin_row(&db, id).await;
            (row.status == "suspended").then_some(row)
        })
        .await;
        let error = row.last_error.unwrap_or_default();
        assert!(error.contains(expected), "{id}: last error `{error}` should say `{expected}`");
        // Where in the plugin's source it failed, and the wasm backtrace, stay in the log.
        assert!(!error.contains(".rs:") && !error.contains("backtrace"), "{id}: `{error}`");
        assert!(row.failures >= 3, "{id}: {} failures", row.failures);
        assert_eq!(row.delivered, 0, "{id}");
    }
    // Kith still serves, and the data is intact.
    let page = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
    assert_eq!(page["data"]["contacts"]["totalCount"], 4, "{page}");
    assert_eq!(db.count_rows("contact").await, 4);
    // A suspended plugin stays off until an admin resumes it; resuming continues from where it
    // stopped, so the events are not lost.
    manager.set_setting(&admin(), "panicker", "mode", Some(json!("record"))).await.unwrap();
    manager.enable(&admin(), "panicker", Grants::All).await.unwrap();
    eventually(30, "the resumed plugin to catch up", || async {
        (kv_count(&db, "panicker", "seen:").await >= 2).then_some(())
    })
    .await;
    manager.stop().await;
    server.stop().await;
    db.cleanup().await;
}

/// A plugin's key–value store holds at most its quota of keys and bytes, on both databases:
/// a write past it is refused and changes nothing, an overwrite that shrinks is allowed.
#[tokio::test]
async fn the_key_value_store_keeps_to_its_quota() {
    use kith_core::store::plugins::{KvQuota, KvRefusal, kv_get, kv_set};
    for db in TestDb::all().await {
        let conn = db.kith.store.conn();
        let now = chrono::Utc::now();
        let quota = KvQuota { max_keys: 3, max_bytes: 10_000 };
        let set = |key: &'static str, len: usize| async move {
            let value = vec![1u8; len];
            kv_set(conn, "quota", key, &value, quota, None, now).await.map(|r| r.map(|_| ()))
        };
        set("a", 4_000).await.unwrap().unwrap();
        set("b", 4_000).await.unwrap().unwrap();
        assert_eq!(set("c", 4_000).await.unwrap(), Err(KvRefusal::Bytes), "{}", db.name);
        assert_eq!(kv_get(conn, "quota", "c").await.unwrap(), None, "{}: a refused write stores nothing", db.name);
        // Replacing a value counts only the difference.
        set("b", 5_000).await.unwrap().unwrap();
        assert_eq!(set("b", 7_000).await.unwrap(), Err(KvRefusal::Bytes), "{}", db.name);
        assert_eq!(kv_get(conn, "quota", "b").await.unwrap().map(|v| v.len()), Some(5_000), "{}", db.name);
        set("b", 10).await.unwrap().unwrap();
        set("c", 10).await.unwrap().unwrap();
        assert_eq!(set("d", 10).await.unwrap(), Err(KvRefusal::Keys), "{}", db.name);
        set("c", 20).await.unwrap().unwrap();
        // What a write answers is what the store holds after it, which the next write may be
        // given instead of reading every key's size again.
        let usage = kith_core::store::plugins::kv_usage(conn, "quota").await.unwrap();
        assert_eq!(usage, kith_core::store::plugins::KvUsage { keys: 3, bytes: 4_001 + 11 + 21 }, "{}", db.name);
        let after = kv_set(conn, "quota", "a", b"x", quota, Some(usage), now).await.unwrap().unwrap();
        assert_eq!(after, kith_core::store::plugins::kv_usage(conn, "quota").await.unwrap(), "{}", db.name);
        db.cleanup().await;
    }
}

/// One call passes at most the documented 8 MiB into Kith (here through key–value writes of
/// 60 KiB each), and a plugin's failure message of a megabyte is cut before it is stored or
/// shown.
#[tokio::test]
async fn a_call_passes_at_most_its_data_budget_and_failure_messages_are_capped() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    for (id, mode) in [("flooder", "kv-flood"), ("shouter", "shout")] {
        let (manifest, wasm) = hostile(id);
        let manifest = format!("{manifest}\n[limits]\nevent_timeout_ms = 10000\n");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), id, "mode", Some(json!(mode))).await.unwrap();
        manager.enable(&admin(), id, Grants::All).await.unwrap();
    }
    contact(&db, "Ada", "ada@example.org").await;
    let error = eventually(60, "the flood to be refused", || async {
        plugin_row(&db, "flooder").await.last_error.filter(|e| e.contains("kv flood stopped"))
    })
    .await;
    assert!(error.contains("at most 8 MiB"), "{error}");
    // The refusal came after about 136 values; the call failed, so none of them was kept.
    assert!(error.contains("stopped at key 13"), "{error}");
    assert_eq!(kv_count(&db, "flooder", "flood:").await, 0, "a failed call keeps none of its writes");
    let error =
        eventually(60, "the shout to be recorded", || async { plugin_row(&db, "shouter").await.last_error }).await;
    assert!(error.len() <= 1_000 + '…'.len_utf8(), "{} bytes kept", error.len());
    assert!(error.ends_with('…'), "the cut is marked");
    manager.stop().await;
    db.cleanup().await;
}

/// The hostile plugin with a mutation and a job declared (see its `call` and `run_job`).
fn hostile_with_operations(id: &str) -> (String, Vec<u8>) {
    let (manifest, wasm) = hostile(id);
    let manifest = format!(
        "{manifest}
[[mutations]]
name = \"writeThenFail\"
returns = \"Int!\"
role = \"AGENT\"
[mutations.arguments]
count = \"Int!\"
how = \"String!\"

[[jobs]]
name = \"sweep\"
schedule = \"0 0 1 1 *\"
missed = \"skip\"
timeout_ms = 1000
"
    );
    (manifest, wasm)
}

/// A plugin mutation that wrote three contacts and then panicked, returned an error or ran
/// past its time leaves none of them; one that succeeds keeps them all. A job that runs out of
/// its budget part-way keeps nothing either. An event handler that fails after writing keeps
/// nothing of any attempt. Both databases.
#[tokio::test]
async fn a_failed_plugin_call_leaves_none_of_its_writes() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let agent = token(&db, Role::Agent).await;
        let (manifest, wasm) = hostile_with_operations("partial");
        let manifest = manifest.replace("events = [\"contact.*\"]", "events = []");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.enable(&admin(), "partial", Grants::All).await.unwrap();
        for how in ["panic", "error", "loop"] {
            let answer =
                server.gql(&agent, &format!("mutation {{ writeThenFail(count: 3, how: \"{how}\") }}"), json!({})).await;
            assert_eq!(code(&answer), "PLUGIN_FAILED", "{}: {how}: {answer}", db.name);
            assert_eq!(db.count_rows("contact").await, 0, "{}: a mutation that {how}s keeps nothing", db.name);
        }
        let answer = server.gql(&agent, "mutation { writeThenFail(count: 3, how: \"none\") }", json!({})).await;
        assert_eq!(answer["data"]["writeThenFail"], 3, "{}: {answer}", db.name);
        assert_eq!(db.count_rows("contact").await, 3, "{}: a mutation that succeeds keeps its writes", db.name);

        let run = kith_core::plugin::jobs::run_now(&manager, "partial", "sweep").await.unwrap();
        assert_eq!(run.status, "failed", "{}: {run:?}", db.name);
        assert!(run.error.as_deref().unwrap_or_default().contains("timed out"), "{}: {run:?}", db.name);
        assert_eq!(db.count_rows("contact").await, 3, "{}: a job out of its budget keeps nothing", db.name);

        // Events: record, then fail, three times, then the dead-letter list; no record kept.
        let (manifest, wasm) = hostile("recorder");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), "recorder", "mode", Some(json!("record-then-fail"))).await.unwrap();
        manager.enable(&admin(), "recorder", Grants::All).await.unwrap();
        contact(&db, "Ada", "ada@example.org").await;
        eventually(30, "the event to be dead-lettered", || async {
            (plugin_row(&db, "recorder").await.dead_letters == 1).then_some(())
        })
        .await;
        assert_eq!(kv_count(&db, "recorder", "").await, 0, "{}: failed handlers keep nothing", db.name);
        manager.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// A batch that fails part-way keeps nothing of its own: the events before the failing one
/// are delivered again one at a time and each takes effect exactly once, the failing one goes
/// to the dead-letter list, and the events after it are delivered.
#[tokio::test]
async fn a_batch_that_fails_part_way_takes_effect_once_per_event() {
    for db in TestDb::all().await {
        let manager =
            start_runtime(&db.kith, &PluginsConfig { poll_interval_ms: 500, ..plugins_config() }).await.unwrap();
        let (manifest, wasm) = hostile("picky");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), "picky", "mode", Some(json!("fail-on-bad"))).await.unwrap();
        manager.enable(&admin(), "picky", Grants::All).await.unwrap();
        // Three contacts in one transaction: their events are read in one batch.
        let tx = db.tx().await;
        for name in ["Good", "Bad", "Fine"] {
            let def = db.kith.object("contact").unwrap();
            let input = kith_core::service::input::Input::from_json(&def, &json!({"firstName": name})).unwrap();
            kith_core::service::records::create(&tx, &db.kith.registry(), "contact", input).await.unwrap();
        }
        tx.commit().await.unwrap();
        eventually(30, "the bad event to be dead-lettered and the rest handled", || async {
            let row = plugin_row(&db, "picky").await;
            (row.dead_letters == 1 && kv_count(&db, "picky", "seen:").await == 2).then_some(())
        })
        .await;
        let order = kith_core::store::plugins::kv_get(db.kith.store.conn(), "picky", "order").await.unwrap().unwrap();
        let order: Vec<i64> = serde_json::from_slice(&order).unwrap();
        assert_eq!(order.len(), 2, "{}: each good event recorded once: {order:?}", db.name);
        for key in kith_core::store::plugins::kv_keys(db.kith.store.conn(), "picky", "seen:", 10).await.unwrap() {
            let seen = kith_core::store::plugins::kv_get(db.kith.store.conn(), "picky", &key).await.unwrap().unwrap();
            assert_eq!(seen, b"1", "{}: {key} handled once", db.name);
        }
        manager.stop().await;
        db.cleanup().await;
    }
}

/// A plugin whose writes feed its own events is stopped by its write budgets: past
/// `chained_writes_per_minute` while handling events its writes caused, or past
/// `writes_per_event` for one event, the write is refused, nothing of the batch is kept, and
/// the plugin is suspended with the reason. Both databases.
#[tokio::test]
async fn a_plugin_over_its_write_budget_is_suspended() {
    for db in TestDb::all().await {
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = hostile("echo");
        let manifest = format!("{manifest}\n[limits]\nchained_writes_per_minute = 30\nevent_timeout_ms = 5000\n");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), "echo", "mode", Some(json!("fan-out-3"))).await.unwrap();
        manager.enable(&admin(), "echo", Grants::All).await.unwrap();
        contact(&db, "Ada", "ada@example.org").await;
        let row = eventually(60, "the echo to be suspended", || async {
            let row = plugin_row(&db, "echo").await;
            (row.status == "suspended").then_some(row)
        })
        .await;
        let error = row.last_error.unwrap_or_default();
        assert!(error.contains("chained_writes_per_minute"), "{}: {error}", db.name);
        // Ada, three echoes of her (an event of a person: not a chain), then at most 30.
        let contacts = db.count_rows("contact").await;
        assert!((4..=34).contains(&contacts), "{}: {contacts} contacts", db.name);
        manager.disable(&admin(), "echo").await.unwrap();

        let (manifest, wasm) = hostile("burst");
        let manifest = format!("{manifest}\n[limits]\nwrites_per_event = 10\nevent_timeout_ms = 5000\n");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), "burst", "mode", Some(json!("fan-out-20"))).await.unwrap();
        manager.enable(&admin(), "burst", Grants::All).await.unwrap();
        let before = db.count_rows("contact").await;
        contact(&db, "Grace", "grace@example.org").await;
        let row = eventually(60, "the burst to be suspended", || async {
            let row = plugin_row(&db, "burst").await;
            (row.status == "suspended").then_some(row)
        })
        .await;
        assert!(row.last_error.unwrap_or_default().contains("writes_per_event"), "{}", db.name);
        assert_eq!(db.count_rows("contact").await, before + 1, "{}: none of the burst was kept", db.name);
        let audit = db.count_rows("audit_log").await;
        assert!(audit > 0);
        manager.stop().await;
        db.cleanup().await;
    }
}

/// Computed fields that fail count toward the run of failures that suspends a plugin, as
/// event handlers do; and however many requests ask at once, a plugin has at most
/// `[limits] instances` instances in a process (the others wait for one).
#[tokio::test]
async fn failing_computed_fields_suspend_their_plugin_and_instances_are_capped() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let viewer = token(&db, Role::Viewer).await;
    let (manifest, wasm) = hostile("computer");
    let manifest = format!(
        "{}
[[fields]]
object = \"contact\"
name = \"hostileCheck\"
type = \"String\"
description = \"What the hostile plugin computes.\"

[limits]
instances = 2
",
        manifest.replace("events = [\"contact.*\"]", "events = []")
    );
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), "computer", "compute", Some(json!("busy"))).await.unwrap();
    manager.enable(&admin(), "computer", Grants::All).await.unwrap();
    contact(&db, "Ada", "ada@example.org").await;
    let query = "{ contacts { edges { node { hostileCheck } } } }";
    let answers = futures_util::future::join_all((0..8).map(|_| server.gql(&viewer, query, json!({})))).await;
    // Each answers, or (on a loaded machine) says the instances stayed busy for its whole budget.
    let mut answered = 0;
    for answer in &answers {
        let value = answer["data"]["contacts"]["edges"][0]["node"]["hostileCheck"].as_str().unwrap_or_default();
        if value.starts_with("ok") {
            answered += 1;
        } else {
            assert!(answer.to_string().contains("instances stayed busy"), "{answer}");
        }
    }
    assert!(answered >= 2, "{answered} of 8 answered");
    let plugin = manager.loaded("computer").unwrap();
    assert!((1..=2).contains(&plugin.peak_instances()), "{} instances at once", plugin.peak_instances());

    manager.set_setting(&admin(), "computer", "compute", Some(json!("loop"))).await.unwrap();
    manager.refresh().await.unwrap();
    for _ in 0..3 {
        let answer = server.gql(&viewer, query, json!({})).await;
        assert_eq!(code(&answer), "PLUGIN_FAILED", "{answer}");
    }
    let row = eventually(30, "the plugin to be suspended", || async {
        let row = plugin_row(&db, "computer").await;
        (row.status == "suspended").then_some(row)
    })
    .await;
    assert!(row.last_error.unwrap_or_default().contains("computing `hostileCheck`"));
    assert!(row.failures >= 3);
    manager.stop().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_log_flood_is_capped_and_the_call_succeeds() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let (manifest, wasm) = hostile("flooder");
    let manifest = format!("{manifest}\n[limits]\nevent_timeout_ms = 10000\n");
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), "flooder", "mode", Some(json!("flood"))).await.unwrap();
    manager.enable(&admin(), "flooder", Grants::All).await.unwrap();
    contact(&db, "Ada", "ada@example.org").await;
    eventually(60, "the flood to be handled", || async {
        (plugin_row(&db, "flooder").await.delivered == 1).then_some(())
    })
    .await;
    assert_eq!(plugin_row(&db, "flooder").await.failures, 0);
    // Printing megabytes to stdout is cut at the per-call cap, and the call still succeeds.
    manager.set_setting(&admin(), "flooder", "mode", Some(json!("print-flood"))).await.unwrap();
    manager.refresh().await.unwrap();
    contact(&db, "Grace", "grace@example.org").await;
    eventually(60, "the print flood to be handled", || async {
        (plugin_row(&db, "flooder").await.delivered == 2).then_some(())
    })
    .await;
    assert_eq!(plugin_row(&db, "flooder").await.failures, 0);
    manager.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn before_write_timeouts_follow_the_plugins_failure_policy() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    // Fail closed: a hook that never answers refuses the write.
    let (manifest, wasm) = hostile("strict");
    manager.install(&admin(), &manifest.replace("events = [\"contact.*\"]", "events = []"), &wasm).await.unwrap();
    manager.set_setting(&admin(), "strict", "hook", Some(json!("slow"))).await.unwrap();
    manager.enable(&admin(), "strict", Grants::All).await.unwrap();
    let started = Instant::now();
    let err = kith_tests::domain_err(db.create("contact", json!({"firstName": "Ada"})).await);
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "the 20 ms budget holds: {:?}", started.elapsed());
    assert_eq!(db.count_rows("contact").await, 0);
    manager.disable(&admin(), "strict").await.unwrap();

    // Fail open: the same hook lets writes through; the failure is still recorded.
    let (manifest, wasm) = hostile("lenient");
    let manifest = manifest
        .replace("on_failure = \"deny\"", "on_failure = \"allow\"")
        .replace("events = [\"contact.*\"]", "events = []");
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), "lenient", "hook", Some(json!("panic"))).await.unwrap();
    manager.enable(&admin(), "lenient", Grants::All).await.unwrap();
    db.create("contact", json!({"firstName": "Ada"})).await.unwrap();
    eventually(10, "the hook failure to be recorded", || async {
        plugin_row(&db, "lenient").await.last_error.filter(|e| e.contains("before-write")).map(|_| ())
    })
    .await;

    // A hook can amend writes; amendments go through the core rules again.
    manager.set_setting(&admin(), "lenient", "hook", Some(json!("modify"))).await.unwrap();
    let record = db.create("contact", json!({"firstName": "Grace", "jobTitle": "admiral"})).await.unwrap();
    assert_eq!(record.get("jobTitle").as_text(), Some("ADMIRAL"));
    manager.set_setting(&admin(), "lenient", "hook", Some(json!("deny"))).await.unwrap();
    let err = kith_tests::domain_err(db.create("contact", json!({"firstName": "Alan"})).await);
    assert_eq!(err.to_string(), "rejected by plugin `lenient`: contact refused by the hostile plugin");
    manager.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_plugin_writing_on_its_own_events_is_cut_off() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let (manifest, wasm) = hostile("echo");
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), "echo", "mode", Some(json!("self-write"))).await.unwrap();
    manager.enable(&admin(), "echo", Grants::All).await.unwrap();
    let ada = contact(&db, "Ada", "ada@example.org").await;
    let letters = eventually(30, "the loop to be cut off", || async {
        let letters = manager.dead_letters("echo", true).await.unwrap();
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert!(letters[0].error.contains("plugin loop"), "{}", letters[0].error);
    // The failure is recorded on the plugin just after the dead letter is written.
    eventually(10, "the loop to be recorded on the plugin", || async {
        plugin_row(&db, "echo").await.last_error.filter(|e| e.contains("plugin loop"))
    })
    .await;
    // The chain stopped: the record was written a bounded number of times.
    let version = db.kith.object("contact").unwrap();
    let stored = kith_core::store::records::get(db.kith.store.conn(), &version, ada.id()).await.unwrap().unwrap();
    let writes = stored.get("version").as_int().unwrap();
    assert!((2..=11).contains(&writes), "version {writes}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = kith_core::store::records::get(db.kith.store.conn(), &version, ada.id()).await.unwrap().unwrap();
    assert_eq!(again.get("version").as_int(), Some(writes), "no further writes after the cut-off");
    manager.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn failed_events_are_retried_dead_lettered_and_replayed_in_order() {
    for db in TestDb::all().await {
        let config = PluginsConfig { suspend_after: 10, ..plugins_config() };
        let manager = start_runtime(&db.kith, &config).await.unwrap();
        let (manifest, wasm) = hostile("flaky");
        // Generous budgets: this test is about retries and replay, not about time limits (a
        // loaded machine must not turn a slow success into a failure).
        let manifest = manifest
            .replace("events = [\"contact.*\"]", "events = [\"contact.created\"]")
            .replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "");
        manager.install(&admin(), &format!("{manifest}\n[limits]\nevent_timeout_ms = 2000\n"), &wasm).await.unwrap();
        manager.set_setting(&admin(), "flaky", "mode", Some(json!("fail"))).await.unwrap();
        manager.enable(&admin(), "flaky", Grants::All).await.unwrap();
        contact(&db, "Ada", "ada@example.org").await;
        contact(&db, "Grace", "grace@example.org").await;
        let letters = eventually(30, "two dead letters", || async {
            let letters = manager.dead_letters("flaky", true).await.unwrap();
            (letters.len() == 2).then_some(letters)
        })
        .await;
        assert_eq!(letters[0].attempts, 3, "{}", db.name);
        assert!(letters[0].seq < letters[1].seq);
        let env = vec![("KITH_PLUGINS_CACHE_DIR".to_owned(), config.cache_dir.clone())];
        let listed = run_cli_env(&db.url, &["plugin", "events", "flaky", "--failed"], "", env.clone()).await.unwrap();
        assert_eq!(listed.stdout.lines().count(), 2, "{}: {}", db.name, listed.stdout);
        assert!(listed.stdout.contains("failing on purpose"), "{}", listed.stdout);
        let show = run_cli_env(&db.url, &["plugin", "show", "flaky"], "", env).await.unwrap();
        assert!(show.stdout.contains("2 dead letters"), "{}", show.stdout);
        manager.set_setting(&admin(), "flaky", "mode", Some(json!("record"))).await.unwrap();
        contact(&db, "Alan", "alan@example.org").await;
        eventually(30, "the next event", || async { (kv_count(&db, "flaky", "seen:").await == 1).then_some(()) }).await;
        // Replayed from the command line (another process as far as the plugin is concerned).
        let env = vec![("KITH_PLUGINS__CACHE_DIR".to_owned(), config.cache_dir.clone())];
        let replayed = run_cli_env(&db.url, &["plugin", "replay", "flaky"], "", env).await.unwrap();
        assert!(replayed.stderr.contains("replayed 2 event(s); 0 failed again"), "{}: {}", db.name, replayed.stderr);
        assert!(manager.dead_letters("flaky", true).await.unwrap().is_empty());
        assert_eq!(kv_count(&db, "flaky", "seen:").await, 3, "{}", db.name);
        manager.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn delivery_survives_restarts_and_is_shared_by_processes() {
    for db in TestDb::all().await {
        // Installed and enabled while no server runs (as the CLI does).
        let offline = PluginManager::new(db.kith.clone(), &plugins_config()).unwrap();
        let (manifest, wasm) = hostile("recorder");
        let manifest = format!(
            "{}\n[limits]\nevent_timeout_ms = 10000\n",
            manifest.replace("events = [\"contact.*\"]", "events = [\"contact.created\"]")
        );
        offline.install(&admin(), &manifest, &wasm).await.unwrap();
        offline.enable(&admin(), "recorder", Grants::All).await.unwrap();
        // Changes made while no Kith process runs plugins.
        for i in 0..20 {
            contact(&db, &format!("Early{i}"), &format!("early{i}@example.org")).await;
        }
        // Two processes on the same database: every event is handled once, in order.
        let first = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let other_kith = kith_core::service::Kith::new(db.kith.store.clone());
        let second = start_runtime(&other_kith, &plugins_config()).await.unwrap();
        for i in 0..20 {
            contact(&db, &format!("Late{i}"), &format!("late{i}@example.org")).await;
        }
        eventually(60, "40 events", || async { (kv_count(&db, "recorder", "seen:").await == 40).then_some(()) }).await;
        assert_eq!(plugin_row(&db, "recorder").await.failures, 0, "{}", db.name);
        let conn = db.kith.store.conn();
        for key in kith_core::store::plugins::kv_keys(conn, "recorder", "seen:", 1_000).await.unwrap() {
            let value = kith_core::store::plugins::kv_get(conn, "recorder", &key).await.unwrap().unwrap();
            assert_eq!(value, b"1", "{}: {key} delivered more than once", db.name);
        }
        let order = kith_core::store::plugins::kv_get(conn, "recorder", "order").await.unwrap().unwrap();
        let order: Vec<i64> = serde_json::from_slice(&order).unwrap();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{}: out of order: {order:?}", db.name);
        first.stop().await;
        second.stop().await;
        db.cleanup().await;
    }
}

/// A process that dies holding a plugin's delivery lease (dropped without `stop`, which would
/// release it) delays that plugin only until the lease runs out, about 10 s: another process
/// then delivers the events that came after. Both databases.
#[tokio::test]
async fn a_dead_processs_delivery_lease_is_taken_over_within_seconds() {
    for db in TestDb::all().await {
        let first = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = hostile("recorder");
        first.install(&admin(), &manifest, &wasm).await.unwrap();
        first.enable(&admin(), "recorder", Grants::All).await.unwrap();
        contact(&db, "Ada", "ada@example.org").await;
        eventually(30, "the first event", || async { (kv_count(&db, "recorder", "seen:").await == 1).then_some(()) })
            .await;
        // The first process dies: its tasks end with it, its lease stays in the database.
        drop(first);
        let other_kith = kith_core::service::Kith::new(db.kith.store.clone());
        let second = start_runtime(&other_kith, &plugins_config()).await.unwrap();
        contact(&db, "Grace", "grace@example.org").await;
        eventually(25, "the second process to take over", || async {
            (kv_count(&db, "recorder", "seen:").await == 2).then_some(())
        })
        .await;
        second.stop().await;
        db.cleanup().await;
    }
}

/// Disabling and enabling a plugin while its events are being delivered always succeeds: the
/// delivery's commit and the lifecycle's take the plugin's row and its partitions' rows in one
/// order (the other order deadlocked on PostgreSQL, failing a `disable` now and then). Both
/// databases; the toggles race a stream of new contacts.
#[tokio::test]
async fn disabling_and_enabling_during_deliveries_never_fails() {
    for db in TestDb::all().await {
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        // Welcome writes a task and a greeting per new contact: its deliveries commit their
        // effects, cursor and count in one transaction.
        let (manifest, wasm) = welcome();
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.enable(&admin(), "welcome", Grants::All).await.unwrap();
        let writer = {
            let shared = db.sharing(db.kith.clone());
            tokio::spawn(async move {
                for i in 0..300 {
                    contact(&shared, &format!("Racer{i}"), &format!("racer{i}@example.org")).await;
                }
            })
        };
        let mut toggles = 0;
        while !writer.is_finished() || toggles < 10 {
            manager
                .disable(&admin(), "welcome")
                .await
                .unwrap_or_else(|e| panic!("{}: disable {toggles}: {e}", db.name));
            tokio::time::sleep(Duration::from_millis(5)).await;
            manager
                .enable(&admin(), "welcome", Grants::All)
                .await
                .unwrap_or_else(|e| panic!("{}: enable {toggles}: {e}", db.name));
            tokio::time::sleep(Duration::from_millis(20)).await;
            toggles += 1;
        }
        writer.await.unwrap();
        // Enabled again, it receives what comes next.
        contact(&db, "After", "after@example.org").await;
        eventually(30, "an event after the toggles", || async {
            (plugin_row(&db, "welcome").await.delivered > 0).then_some(())
        })
        .await;
        let row = plugin_row(&db, "welcome").await;
        assert_eq!(row.failures, 0, "{}: {:?}", db.name, row.last_error);
        manager.stop().await;
        db.cleanup().await;
    }
}

/// The delivery cursors of a plugin, by partition: `(part, parts, last_seq, lease_owner)`.
async fn delivery_parts(db: &TestDb, plugin: &str) -> Vec<(i64, i64, i64, Option<String>)> {
    use sea_orm::ConnectionTrait;
    let conn = db.kith.store.conn();
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT part, parts, last_seq, lease_owner FROM plugin_delivery_part WHERE plugin_id = '{plugin}' ORDER BY part"
    );
    let rows = conn.query_all_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
                r.try_get_by_index(3).unwrap(),
            )
        })
        .collect()
}

/// A plugin whose manifest asks for 4 partitions, delivered by two processes at once: every
/// event handled once, each record's events in order; an upgrade to 2 partitions splits the
/// cursors anew without skipping an event; and migration 18 down and up keeps where a plugin's
/// delivery stood. Both databases.
#[tokio::test]
async fn partitioned_delivery_keeps_each_records_order_across_processes() {
    for db in TestDb::all().await {
        let offline = PluginManager::new(db.kith.clone(), &plugins_config()).unwrap();
        let (manifest, wasm) = hostile("parted");
        let manifest = manifest.replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "");
        let four = format!("{manifest}\n[limits]\nevent_timeout_ms = 10000\n\n[delivery]\npartitions = 4\n");
        offline.install(&admin(), &four, &wasm).await.unwrap();
        offline.set_setting(&admin(), "parted", "mode", Some(json!("per-record"))).await.unwrap();
        offline.enable(&admin(), "parted", Grants::All).await.unwrap();
        let parts = delivery_parts(&db, "parted").await;
        assert_eq!(
            parts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
            [(0, 4), (1, 4), (2, 4), (3, 4)],
            "{}",
            db.name
        );
        // At least 24 contacts, and more until every partition has one (ids are random), each
        // created then updated twice: three events per record.
        let mut ids = Vec::new();
        let mut i = 0;
        while ids.len() < 24
            || ids
                .iter()
                .map(|id| kith_core::store::plugins::partition_of(Some(*id), 4))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                < 4
        {
            ids.push(contact(&db, &format!("P{i}"), &format!("p{i}@example.org")).await.id());
            i += 1;
        }
        let events = 3 * ids.len();
        for round in 0..2 {
            for id in &ids {
                db.update("contact", *id, json!({"jobTitle": format!("Round {round}")}), None).await.unwrap();
            }
        }
        let first = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let other_kith = kith_core::service::Kith::new(db.kith.store.clone());
        let second = start_runtime(&other_kith, &plugins_config()).await.unwrap();
        eventually(60, "every event", || async { (kv_count(&db, "parted", "seen:").await == events).then_some(()) })
            .await;
        let row = plugin_row(&db, "parted").await;
        assert_eq!((row.failures, row.delivered as usize), (0, events), "{}: {:?}", db.name, row.last_error);
        let conn = db.kith.store.conn();
        for key in kith_core::store::plugins::kv_keys(conn, "parted", "seen:", 1_000).await.unwrap() {
            let value = kith_core::store::plugins::kv_get(conn, "parted", &key).await.unwrap().unwrap();
            assert_eq!(value, b"1", "{}: {key} delivered more than once", db.name);
        }
        let mut used = std::collections::BTreeSet::new();
        for id in &ids {
            let order = kith_core::store::plugins::kv_get(conn, "parted", &format!("order:{id}")).await.unwrap();
            let order: Vec<i64> = serde_json::from_slice(&order.unwrap()).unwrap();
            assert_eq!(order.len(), 3, "{}: {id}: {order:?}", db.name);
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{}: {id} out of order: {order:?}", db.name);
            used.insert(kith_core::store::plugins::partition_of(Some(*id), 4));
        }
        assert_eq!(used.len(), 4, "{}: the records fall into every one of 4 partitions", db.name);
        let end = kith_core::store::outbox::last_seq(conn).await.unwrap();
        eventually(30, "every partition at the end", || async {
            delivery_parts(&db, "parted").await.iter().all(|p| p.2 == end).then_some(())
        })
        .await;
        // Fewer partitions: the cursors are split anew, and the next events arrive once each.
        let two =
            four.replace("partitions = 4", "partitions = 2").replace("\nversion = \"1.0.0\"", "\nversion = \"1.1.0\"");
        first.upgrade(&admin(), &two, &wasm, &[]).await.unwrap();
        let parts = delivery_parts(&db, "parted").await;
        assert_eq!(
            parts.iter().map(|p| (p.0, p.1, p.2)).collect::<Vec<_>>(),
            [(0, 2, end), (1, 2, end)],
            "{}",
            db.name
        );
        for i in 0..6 {
            contact(&db, &format!("Q{i}"), &format!("q{i}@example.org")).await;
        }
        eventually(60, "six more events", || async {
            (kv_count(&db, "parted", "seen:").await == events + 6).then_some(())
        })
        .await;
        first.stop().await;
        second.stop().await;
        // A round in flight when `stop` came gives its leases up when it ends.
        eventually(10, "the leases given up", || async {
            delivery_parts(&db, "parted").await.iter().all(|p| p.3.is_none()).then_some(())
        })
        .await;
        // Migrations 20, 19 and 18 down (one cursor a plugin, the slowest partition's) and up
        // (partition 0 of 1).
        let end = kith_core::store::outbox::last_seq(conn).await.unwrap();
        {
            use kith_migrations::{Migrator, MigratorTrait};
            let pool = db.kith.store.pool();
            Migrator::down(pool, Some(3)).await.unwrap();
            Migrator::up(pool, None).await.unwrap();
        }
        assert_eq!(delivery_parts(&db, "parted").await, [(0, 1, end, None)], "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn upgrades_need_grants_for_new_capabilities_and_uninstall_purges() {
    let db = TestDb::sqlite().await;
    let manager = Arc::new(PluginManager::new(db.kith.clone(), &plugins_config()).unwrap());
    let (manifest, wasm) = hostile("growing");
    let v1 = manifest
        .replace("capabilities = [\"contacts:read\", \"contacts:write\", \"kv\"]", "capabilities = [\"kv\"]")
        .replace("events = [\"contact.*\"]", "events = []")
        .replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "");
    manager.install(&admin(), &v1, &wasm).await.unwrap();
    let again = manager.install(&admin(), &v1, &wasm).await.unwrap_err();
    assert!(again.to_string().contains("installed already"), "{again}");
    manager.enable(&admin(), "growing", Grants::List(vec!["kv".into()])).await.unwrap();
    let v2 = manifest.replace("\nversion = \"1.0.0\"", "\nversion = \"1.1.0\"");
    let err = manager.upgrade(&admin(), &v2, &wasm, &[]).await.unwrap_err();
    assert!(err.to_string().contains("contacts:read, contacts:write"), "{err}");
    assert_eq!(plugin_row(&db, "growing").await.version, "1.0.0");
    let row = manager.upgrade(&admin(), &v2, &wasm, &["contacts:read".into(), "contacts:write".into()]).await.unwrap();
    assert_eq!(row.version, "1.1.0");
    assert_eq!(row.grants, ["contacts:read", "contacts:write", "kv"]);
    assert!(manager.enable(&admin(), "growing", Grants::List(vec!["tickets:read".into()])).await.is_err());

    let sdk = manifest
        .replace("sdk_version = \"1.4.0\"", "sdk_version = \"2.0.0\"")
        .replace("id = \"growing\"", "id = \"future\"");
    let err = manager.install(&admin(), &sdk, &wasm).await.unwrap_err();
    assert!(err.to_string().contains("SDK 1.4.0"), "{err}");
    let err = manager
        .install(&admin(), &manifest.replace("id = \"growing\"", "id = \"core\""), b"\0asm\x01\0\0\0")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a component"), "{err}");

    let quota = kith_core::store::plugins::KvQuota { max_keys: 10, max_bytes: 1 << 20 };
    kith_core::store::plugins::kv_set(db.kith.store.conn(), "growing", "k", b"v", quota, None, chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    manager.uninstall(&admin(), "growing", false).await.unwrap();
    assert_eq!(kv_count(&db, "growing", "").await, 1, "data is kept without --purge");
    manager.install(&admin(), &v1, &wasm).await.unwrap();
    manager.uninstall(&admin(), "growing", true).await.unwrap();
    assert_eq!(kv_count(&db, "growing", "").await, 0);
    assert_eq!(db.count_rows("plugin_component").await, 0, "unused components are pruned");
    db.cleanup().await;
}

/// The author's path: scaffold with `kith plugin new`, unit-test and build it with cargo, then
/// install, grant and inspect it with the CLI, and see it receive events.
#[tokio::test]
async fn a_scaffolded_plugin_builds_installs_and_runs() {
    let db = TestDb::sqlite().await;
    let dir = kith_tests::temp_dir().join("hello-kith");
    let env = vec![("KITH_PLUGINS_CACHE_DIR".to_owned(), plugins_config().cache_dir)];
    let cli = |args: Vec<String>| {
        let env = env.clone();
        let url = db.url.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli_env(&url, &args, "", env).await
        }
    };
    let dir_arg = dir.to_str().unwrap().to_owned();
    let out =
        cli(vec!["plugin".into(), "new".into(), "hello-kith".into(), "--dir".into(), dir_arg.clone()]).await.unwrap();
    assert!(out.stderr.contains("cargo build --release --target wasm32-wasip2"), "{}", out.stderr);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("kith-plugin-sdk = { version = \"") && manifest.contains(", path = \"../"), "{manifest}");
    let bad = cli(vec!["plugin".into(), "new".into(), "Bad Name".into()]).await.unwrap_err();
    assert!(bad.to_string().contains("not a plugin id"), "{bad}");

    // Built exactly as the scaffold says (sharing a target directory between test runs).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/scaffold-test");
    for args in [vec!["test", "--quiet"], vec!["build", "--quiet", "--release", "--target", "wasm32-wasip2"]] {
        let status = tokio::process::Command::new(&cargo)
            .args(&args)
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .await
            .unwrap();
        assert!(status.success(), "cargo {args:?} in the scaffold failed");
    }
    std::fs::create_dir_all(dir.join("target/wasm32-wasip2/release")).unwrap();
    std::fs::copy(
        format!("{target}/wasm32-wasip2/release/hello_kith.wasm"),
        dir.join("target/wasm32-wasip2/release/hello_kith.wasm"),
    )
    .unwrap();

    let out = cli(vec!["plugin".into(), "install".into(), dir_arg.clone()]).await.unwrap();
    assert!(out.stderr.contains("kith plugin enable hello-kith --grant contacts:read,kv"), "{}", out.stderr);
    let refused = cli(vec!["plugin".into(), "enable".into(), "hello-kith".into(), "--grant".into(), "kv".into()])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("contacts:read"), "{refused}");
    cli(vec!["plugin".into(), "enable".into(), "hello-kith".into(), "--grant".into(), "contacts:read,kv".into()])
        .await
        .unwrap();
    cli(vec!["plugin".into(), "set".into(), "hello-kith".into(), "greeting".into(), "Bonjour".into()]).await.unwrap();
    let list = cli(vec!["plugin".into(), "list".into()]).await.unwrap();
    assert!(list.stdout.starts_with("hello-kith\t0.1.0\tactive\tcontacts:read,kv"), "{}", list.stdout);

    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    contact(&db, "Ada", "ada@example.org").await;
    contact(&db, "Grace", "grace@example.org").await;
    eventually(30, "the scaffolded plugin to count two contacts", || async {
        let value = kith_core::store::plugins::kv_get(db.kith.store.conn(), "hello-kith", "greeted").await.unwrap();
        (value.as_deref() == Some(b"2")).then_some(())
    })
    .await;
    let show = cli(vec!["plugin".into(), "show".into(), "hello-kith".into()]).await.unwrap();
    assert!(show.stdout.contains("2 delivered"), "{}", show.stdout);
    assert!(show.stdout.contains("\"greeting\":\"Bonjour\""), "{}", show.stdout);
    runtime.stop().await;
    cli(vec!["plugin".into(), "uninstall".into(), "hello-kith".into(), "--purge".into()]).await.unwrap();
    assert!(cli(vec!["plugin".into(), "list".into()]).await.unwrap().stdout.is_empty());
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    db.cleanup().await;
}

#[tokio::test]
async fn imported_rows_are_vetted_by_plugins_row_by_row() {
    for db in TestDb::all().await {
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = welcome();
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), "welcome", "blocked_domains", Some(json!(["spam.test"]))).await.unwrap();
        manager.enable(&admin(), "welcome", Grants::All).await.unwrap();
        let csv = "first_name,email\nAda,ada@example.org\nBot,bot@spam.test\nGrace,grace@example.org\n";
        let report = kith_core::service::import::import_csv(
            &db.kith,
            &admin(),
            "contact",
            csv.as_bytes(),
            &kith_core::service::import::ImportOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.created, 2, "{}", db.name);
        assert_eq!(report.rejected.len(), 1, "{}", db.name);
        assert_eq!(report.rejected[0].line, 3);
        assert!(report.rejected[0].reason.contains("rejected by plugin `welcome`"), "{}", report.rejected[0].reason);
        assert_eq!(db.count_rows("contact").await, 2);
        manager.stop().await;
        db.cleanup().await;
    }
}

/// Components built with SDK 1.0.0 to 1.3.0 (checked in) still install and run on this Kith,
/// which speaks kith:plugin 1.4: minor versions are additive. Each is the welcome plugin of its
/// day, built with `cargo build --release --target wasm32-wasip2 -p kith-plugin-welcome` at the
/// last commit of its SDK version (1.0.0: 18b1390; 1.1.0: 7893e54, whose welcome also keeps a
/// `greeting`, an object of its own; 1.2.0: fe1561e, with a computed field and a job; 1.3.0:
/// e3486c0, built with the `plugin` profile), its manifest copied beside it. Each vetoes a blocklisted address before the write and answers a
/// new contact's event with a task (and a greeting); 1.2.0's `extension` export still answers.
#[tokio::test]
async fn plugins_built_with_older_sdk_minors_still_run() {
    let fixtures: [(&str, &str, &[u8], bool); 4] = [
        (
            "1.0.0",
            include_str!("../fixtures/welcome-sdk-1.0.0.toml"),
            include_bytes!("../fixtures/welcome-sdk-1.0.0.wasm"),
            false,
        ),
        (
            "1.1.0",
            include_str!("../fixtures/welcome-sdk-1.1.0.toml"),
            include_bytes!("../fixtures/welcome-sdk-1.1.0.wasm"),
            true,
        ),
        (
            "1.2.0",
            include_str!("../fixtures/welcome-sdk-1.2.0.toml"),
            include_bytes!("../fixtures/welcome-sdk-1.2.0.wasm"),
            true,
        ),
        (
            "1.3.0",
            include_str!("../fixtures/welcome-sdk-1.3.0.toml"),
            include_bytes!("../fixtures/welcome-sdk-1.3.0.wasm"),
            true,
        ),
    ];
    for (sdk, manifest, wasm, greets) in fixtures {
        let db = TestDb::sqlite().await;
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let row = manager.install(&admin(), manifest, wasm).await.unwrap();
        assert_eq!(row.sdk_version, sdk);
        manager.set_setting(&admin(), "welcome", "blocked_domains", Some(json!(["spam.test"]))).await.unwrap();
        manager.enable(&admin(), "welcome", Grants::All).await.unwrap();
        let refused = db.create("contact", json!({"firstName": "Bot", "email": "bot@spam.test"})).await;
        let err = refused.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("e-mail addresses at spam.test are not accepted"), "SDK {sdk}: {err}");
        let ada = contact(&db, "Ada", "ada@example.org").await;
        eventually(20, "the welcome task", || async { (db.count_rows("activity").await == 1).then_some(()) }).await;
        if greets {
            let greeting = eventually(20, "the greeting", || async {
                // The registry holds the plugin's object once the manager has refreshed it.
                let greeting = db.kith.object("greeting").ok()?;
                let all = kith_core::store::records::ListQuery::first(kith_core::domain::filter::Filter::all(), 10);
                let page = kith_core::store::records::list(db.kith.store.conn(), &greeting, &all).await.unwrap();
                page.records.into_iter().next().map(|(_, record)| record)
            })
            .await;
            assert_eq!(greeting.get("contactId").to_json(), json!(ada.id().to_string()), "SDK {sdk}");
            assert_eq!(greeting.get("subject").to_json(), json!("Welcome Ada Test"), "SDK {sdk}");
        }
        if sdk == "1.2.0" || sdk == "1.3.0" {
            // Its job runs through the `extension` export of a 1.2.0 / 1.3.0 component.
            let run = kith_core::plugin::jobs::run_now(&manager, "welcome", "digest").await.unwrap();
            assert_eq!(run.status, "succeeded", "SDK {sdk}: {run:?}");
        }
        manager.stop().await;
        db.cleanup().await;
    }
}

/// A component made by another toolchain carries no `kith:sdk-version` section (only the Rust
/// SDK writes it): Kith takes its contract version from the `kith:plugin` interfaces it
/// imports and exports. Here the 1.2.0 fixture with its section renamed installs as 1.2.0 and
/// runs; a manifest claiming another version is told which to set; a component using no
/// `kith:plugin` interface is refused saying so.
#[tokio::test]
async fn components_without_the_sdk_section_are_read_by_their_interfaces() {
    let wasm = include_bytes!("../fixtures/welcome-sdk-1.2.0.wasm");
    let at = wasm.windows(16).position(|w| w == b"kith:sdk-version").expect("the fixture records its SDK");
    let mut plain = wasm.to_vec();
    // The same length, so no enclosing section's size changes.
    plain[at..at + 16].copy_from_slice(b"kith:sdk-renamed");
    assert!(!plain.windows(16).any(|w| w == b"kith:sdk-version"));
    let manifest = include_str!("../fixtures/welcome-sdk-1.2.0.toml");
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let wrong = manager
        .install(&admin(), &manifest.replace("sdk_version = \"1.2.0\"", "sdk_version = \"1.3.0\""), &plain)
        .await;
    let err = wrong.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("kith:plugin@1.2.0") && err.contains("sdk_version = \"1.2.0\""), "{err}");
    let empty = manager.install(&admin(), manifest, b"\0asm\x0d\0\x01\0").await.map(|_| ()).unwrap_err().to_string();
    assert!(empty.contains("kith:plugin"), "{empty}");
    let row = manager.install(&admin(), manifest, &plain).await.unwrap();
    assert_eq!(row.sdk_version, "1.2.0");
    manager.enable(&admin(), "welcome", Grants::All).await.unwrap();
    contact(&db, "Ada", "ada@example.org").await;
    // It runs: the welcome task for the new contact.
    eventually(20, "the welcome task", || async { (db.count_rows("activity").await == 1).then_some(()) }).await;
    manager.stop().await;
    db.cleanup().await;
}

/// What a port of the welcome plugin's base behaviour with no Kith SDK must do, installed as its
/// toolchain made it: no `kith:sdk-version` section, read as 1.2.0 by its interfaces; a
/// blocklisted domain refused before the write; the welcome task on a new contact. (The ports on
/// the Python and TypeScript SDKs run the Rust plugin's whole end-to-end test: `it/sdks.rs`.)
async fn welcome_port_runs(manifest: &str, wasm: &[u8], id: &str) {
    assert!(!wasm.windows(16).any(|w| w == b"kith:sdk-version"), "{id}: no Kith SDK wrote this component");
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let row = manager.install(&admin(), manifest, wasm).await.unwrap();
    assert_eq!(row.sdk_version, "1.2.0", "{id}");
    manager.set_setting(&admin(), id, "blocked_domains", Some(json!(["spam.test"]))).await.unwrap();
    manager.enable(&admin(), id, Grants::All).await.unwrap();
    let refused = db.create("contact", json!({"firstName": "Bot", "email": "bot@SPAM.test"})).await;
    let err = refused.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("e-mail addresses at spam.test are not accepted"), "{id}: {err}");
    let ada = contact(&db, "Ada", "ada@example.org").await;
    let task = eventually(60, "the welcome task", || async {
        let activity = db.kith.object("activity").ok()?;
        let all = kith_core::store::records::ListQuery::first(kith_core::domain::filter::Filter::all(), 10);
        let page = kith_core::store::records::list(db.kith.store.conn(), &activity, &all).await.unwrap();
        page.records.into_iter().next().map(|(_, record)| record)
    })
    .await;
    assert_eq!(task.get("subject").to_json(), json!("Welcome Ada Test"), "{id}");
    assert_eq!(task.get("kind").to_json(), json!("TASK"), "{id}");
    assert_eq!(task.get("contactId").to_json(), json!(ada.id().to_string()), "{id}");
    let due = task.get("dueAt").to_json();
    assert!(due.as_str().is_some_and(|due| due.ends_with('Z') && due.len() == 27), "{id}: due {due}");
    manager.stop().await;
    db.cleanup().await;
}

/// The same behaviour in JavaScript (`plugins/examples/welcome-js`), built by componentize-js
/// (pinned in its `package-lock.json`, installed with `npm ci` into `target/componentize-js`)
/// against `schemas/wit/v1.2.0`, its `http` and `fetch-event` features off; built with them on
/// (the engine's `fetch` over WASI HTTP) it is refused, saying which flags to use.
#[tokio::test]
async fn a_javascript_plugin_built_with_componentize_js_runs() {
    let built = kith_tests::languages::javascript_welcome(false).await;
    let Some(built) = kith_tests::languages::or_skip(built, "componentize-js") else { return };
    // Built with the engine's `fetch` (WASI HTTP): refused, saying what to change.
    let with_fetch = kith_tests::languages::javascript_welcome(true).await.unwrap();
    let db = TestDb::sqlite().await;
    let manager = PluginManager::new(db.kith.clone(), &plugins_config()).unwrap();
    let refused =
        manager.install(&admin(), &built.manifest, &with_fetch.wasm).await.map(|_| ()).unwrap_err().to_string();
    assert!(refused.contains("wasi:http/") && refused.contains("-d http -d fetch-event"), "{refused}");
    // Built for the world `base`, it has no extension exports: declaring a query is refused,
    // naming the world to build for.
    let with_query = format!("{}\n[[queries]]\nname = \"x\"\nreturns = \"Int\"\n", built.manifest);
    let refused = manager.install(&admin(), &with_query, &built.wasm).await.map(|_| ()).unwrap_err().to_string();
    assert!(refused.contains("kith:plugin/extension") && refused.contains("world `plugin`"), "{refused}");
    db.cleanup().await;
    welcome_port_runs(&built.manifest, &built.wasm, "welcome-js").await;
}

/// Outbound HTTP against real servers on loopback: granted origins only, private addresses only
/// with `http-private:`, redirects checked, secrets injected by the host, bodies capped.
#[tokio::test]
async fn outbound_http_is_limited_to_granted_origins() {
    use axum::routing::get;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // What the other origin was sent as `Authorization`, per request ("" for none).
    let seen_other = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    let other_app = {
        let seen_other = seen_other.clone();
        axum::Router::new().route(
            "/",
            get(move |headers: axum::http::HeaderMap| {
                let seen_other = seen_other.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    seen_other.lock().unwrap().push(auth);
                    "other"
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(other, other_app).await });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = {
        let seen = seen.clone();
        axum::Router::new()
            .route(
                "/hello",
                get(move |headers: axum::http::HeaderMap| {
                    let seen = seen.clone();
                    async move {
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                        seen.lock().unwrap().push(auth);
                        "hi"
                    }
                }),
            )
            .route("/hop", get(move || async move { axum::response::Redirect::temporary("/hello") }))
            .route(
                "/away",
                get(move || async move { axum::response::Redirect::temporary(&format!("http://127.0.0.1:{other_port}/")) }),
            )
            .route("/big", get(|| async { vec![b'x'; 2 << 20] }))
    };
    tokio::spawn(async move { axum::serve(listener, app).await });

    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let origin = format!("http://127.0.0.1:{port}");
    let cases = [
        ("fetcher", format!("http-private:{origin}"), "/hello", "200 "),
        ("hopper", format!("http-private:{origin}"), "/hop", "200 "),
        ("public", format!("http:{origin}"), "/hello", "error Denied: 127.0.0.1 resolves to 127.0.0.1, a private"),
        (
            "stranger",
            "http-private:http://127.0.0.1:9".to_owned(),
            "/hello",
            "error Denied: the plugin was not granted",
        ),
        ("escaper", format!("http-private:{origin}"), "/away", "error Denied: the plugin was not granted"),
        // Granted both origins: the redirect is followed, but the secret-derived header is not
        // carried to the other origin.
        ("leaker", format!("http-private:{origin}\", \"http-private:http://127.0.0.1:{other_port}"), "/away", "200 "),
        ("glutton", format!("http-private:{origin}"), "/big", "error LimitExceeded"),
    ];
    for (id, capability, path, _) in &cases {
        let (manifest, wasm) = hostile(id);
        let manifest = manifest.replace(
            "capabilities = [\"contacts:read\", \"contacts:write\", \"kv\"]",
            &format!("capabilities = [\"contacts:read\", \"contacts:write\", \"kv\", \"{capability}\"]"),
        );
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.set_setting(&admin(), id, "mode", Some(json!("http"))).await.unwrap();
        manager.set_setting(&admin(), id, "url", Some(json!(format!("{origin}{path}")))).await.unwrap();
        manager.set_setting(&admin(), id, "token", Some(json!("s3cr3t"))).await.unwrap();
        manager.enable(&admin(), id, Grants::All).await.unwrap();
    }
    contact(&db, "Ada", "ada@example.org").await;
    for (id, _, _, expected) in &cases {
        let outcome = eventually(30, &format!("{id}'s request"), || async {
            kith_core::store::plugins::kv_get(db.kith.store.conn(), id, "http")
                .await
                .unwrap()
                .map(|v| String::from_utf8(v).unwrap())
        })
        .await;
        assert!(outcome.starts_with(expected), "{id}: `{outcome}` should start with `{expected}`");
        assert!(!outcome.contains("s3cr3t"), "{id}: the secret reached the plugin");
    }
    let hop = kith_core::store::plugins::kv_get(db.kith.store.conn(), "hopper", "http").await.unwrap().unwrap();
    assert!(String::from_utf8(hop).unwrap().ends_with("/hello hi"), "redirects are followed within the grant");
    // The server got the secret, injected by the host, and only from granted requests.
    assert_eq!(*seen.lock().unwrap(), ["Bearer s3cr3t", "Bearer s3cr3t"]);
    let away = kith_core::store::plugins::kv_get(db.kith.store.conn(), "leaker", "http").await.unwrap().unwrap();
    assert!(String::from_utf8(away).unwrap().ends_with(" other"), "the cross-origin redirect is followed");
    assert_eq!(*seen_other.lock().unwrap(), [""], "credentials are dropped when a redirect leaves the origin");
    // A private-address refusal is an audited denial.
    eventually(10, "the refusal to be counted", || async {
        (plugin_row(&db, "public").await.denied_calls >= 1).then_some(())
    })
    .await;
    // Secrets are write-only: masked when shown.
    let shown = kith_core::plugin::manager::visible_settings(
        &kith_core::plugin::manifest::Manifest::parse(&plugin_row(&db, "fetcher").await.manifest).unwrap(),
        &plugin_row(&db, "fetcher").await.settings,
    );
    assert_eq!(shown["token"], "********");
    manager.stop().await;
    db.cleanup().await;
}

/// A hook that answers again ends its run of failures (occasional failures never add up to a
/// suspension); a fail-closed hook that is suspended refuses writes until an admin acts.
#[tokio::test]
async fn hook_successes_end_failure_streaks_and_suspended_fail_closed_hooks_refuse_writes() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let (manifest, wasm) = hostile("gate");
    manager.install(&admin(), &manifest.replace("events = [\"contact.*\"]", "events = []"), &wasm).await.unwrap();
    manager.enable(&admin(), "gate", Grants::All).await.unwrap();
    let set_hook = |mode: &'static str| {
        let manager = manager.clone();
        async move {
            manager.set_setting(&admin(), "gate", "hook", Some(json!(mode))).await.unwrap();
            manager.refresh().await.unwrap();
        }
    };
    let streak = |n: i64| {
        let db = &db;
        async move {
            eventually(10, &format!("{n} failures in a row"), || async {
                (plugin_row(db, "gate").await.consecutive_failures == n).then_some(())
            })
            .await
        }
    };
    // plugins_config() suspends after 3 failures in a row: fail twice, succeed, fail twice.
    for round in 0..2 {
        set_hook("panic").await;
        for i in 0..2 {
            let err = kith_tests::domain_err(db.create("contact", json!({"firstName": format!("F{round}{i}")})).await);
            assert!(err.to_string().contains("refuses writes when it fails"), "{err}");
        }
        streak(2).await;
        set_hook("allow").await;
        db.create("contact", json!({"firstName": format!("Ok{round}")})).await.unwrap();
        streak(0).await;
    }
    assert_eq!(plugin_row(&db, "gate").await.status, "active");

    // Three in a row: suspended. Fail closed: writes to contacts are refused while it is.
    set_hook("panic").await;
    for i in 0..3 {
        let _ = db.create("contact", json!({"firstName": format!("S{i}")})).await;
    }
    eventually(10, "the suspension", || async { (plugin_row(&db, "gate").await.status == "suspended").then_some(()) })
        .await;
    manager.refresh().await.unwrap();
    let err = kith_tests::domain_err(db.create("contact", json!({"firstName": "Blocked"})).await);
    assert!(err.to_string().contains("suspended"), "{err}");
    assert_eq!(db.count_rows("contact").await, 2);
    // It stays suspended until an admin acts; resuming (enable) with a working hook lets writes
    // through again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(plugin_row(&db, "gate").await.status, "suspended");
    manager.set_setting(&admin(), "gate", "hook", Some(json!("allow"))).await.unwrap();
    manager.enable(&admin(), "gate", Grants::All).await.unwrap();
    manager.refresh().await.unwrap();
    assert_eq!(plugin_row(&db, "gate").await.status, "active");
    db.create("contact", json!({"firstName": "Resumed"})).await.unwrap();
    // Disabling it lets writes through too.
    manager.disable(&admin(), "gate").await.unwrap();
    manager.refresh().await.unwrap();
    db.create("contact", json!({"firstName": "Free"})).await.unwrap();
    manager.stop().await;
    db.cleanup().await;
}

/// What the README's run command does (`kith serve --enable-bundled-plugins`): every bundled
/// plugin installed and enabled with all it requests; starting again changes nothing.
#[tokio::test]
async fn bundled_plugins_install_and_enable_on_start() {
    let db = TestDb::sqlite().await;
    let bundled = PluginsConfig { install_bundled: true, enable_bundled: true, ..plugins_config() };
    for _ in 0..2 {
        let manager = start_runtime(&db.kith, &bundled).await.unwrap();
        for plugin in kith_core::plugin::bundled::BUNDLED {
            let row = plugin_row(&db, plugin.id).await;
            let manifest = kith_core::plugin::manifest::Manifest::parse(plugin.manifest).unwrap();
            assert!(row.enabled && row.status == "active", "{}: {row:?}", plugin.id);
            let (mut granted, mut requested) = (row.grants.clone(), manifest.capabilities.clone());
            granted.sort();
            requested.sort();
            assert_eq!(granted, requested, "{}", plugin.id);
            assert!(manager.loaded(plugin.id).is_some_and(|p| p.active), "{}", plugin.id);
        }
        manager.stop().await;
    }
    assert_eq!(
        kith_core::store::plugins::list(db.kith.store.conn()).await.unwrap().len(),
        kith_core::plugin::bundled::BUNDLED.len()
    );
    db.cleanup().await;
}

/// A plugin sees no files, no environment and no network: the sandbox gives it nothing.
#[tokio::test]
async fn the_sandbox_has_no_files_environment_or_network() {
    let db = TestDb::sqlite().await;
    let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let (manifest, wasm) = hostile("escaper");
    let manifest = manifest.replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "");
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), "escaper", "mode", Some(json!("escape"))).await.unwrap();
    manager.enable(&admin(), "escaper", Grants::All).await.unwrap();
    contact(&db, "Ada", "ada@example.org").await;
    let outcome = eventually(30, "the escape attempt", || async {
        kith_core::store::plugins::kv_get(db.kith.store.conn(), "escaper", "escape").await.unwrap()
    })
    .await;
    let outcome: serde_json::Value = serde_json::from_slice(&outcome).unwrap();
    assert_eq!(outcome["file"], false, "{outcome}");
    assert_eq!(outcome["dir"], false, "{outcome}");
    assert_eq!((outcome["env"].as_u64(), outcome["home"].is_null()), (Some(0), true), "{outcome}");
    assert_eq!(outcome["net"], false, "{outcome}");
    manager.stop().await;
    db.cleanup().await;
}

/// Issue 21: a plugin mutation runs with the plugin's grants whoever calls it, so the admin
/// sees every operation with its role, and a mutation that lets VIEWERs write through the
/// plugin needs `--allow-low-role-writes` to be enabled or upgraded into, with a warning line.
#[tokio::test]
async fn operations_are_listed_with_roles_and_low_role_writes_need_a_flag() {
    for db in TestDb::all().await {
        let name = db.name;
        let env = vec![("KITH_PLUGINS_CACHE_DIR".to_owned(), plugins_config().cache_dir)];
        let kith = |args: &'static [&'static str]| run_cli_env(&db.url, args, "", env.clone());
        let (manifest, wasm) = welcome();
        let dir = kith_tests::temp_dir();
        let (original, lowered) = (dir.join("welcome"), dir.join("welcome-viewer"));
        for (path, text) in [
            (&original, manifest.clone()),
            (
                &lowered,
                manifest.replace("version = \"1.2.0\"\nsdk", "version = \"1.2.1\"\nsdk").replace(
                    "returns = \"GreetAgainResult!\"\nrole = \"AGENT\"",
                    "returns = \"GreetAgainResult!\"\nrole = \"VIEWER\"",
                ),
            ),
        ] {
            std::fs::create_dir_all(path).unwrap();
            std::fs::write(path.join("plugin.toml"), text).unwrap();
            std::fs::write(path.join("plugin.wasm"), &wasm).unwrap();
        }
        let original_arg = original.to_str().unwrap().to_owned();
        let lowered_arg = lowered.to_str().unwrap().to_owned();
        let out = run_cli_env(&db.url, &["plugin", "install", &original_arg], "", env.clone()).await.unwrap();
        assert!(out.stderr.contains("installed welcome 1.2.0"), "{name}: {}", out.stderr);

        // The bundled welcome: AGENT mutations only, so no warning and no flag.
        let show = kith(&["plugin", "show", "welcome"]).await.unwrap().stdout;
        for line in [
            "  query       greetingStats(since: Date): GreetingStats!, role MANAGER",
            "  mutation    greetAgain(contactId: ID!, subject: String): GreetAgainResult!, role AGENT",
            "              Creates another welcome task for a contact (e.g. after a change of owner).",
            "  field:      contact.welcomeStatus: WelcomeStatus!",
            "  job:        digest at `5 0 * * *` UTC (missed runs: catch-up)",
        ] {
            assert!(show.lines().any(|l| l == line), "{name}: `{line}` in\n{show}");
        }
        assert!(!show.contains("warning"), "{name}: {show}");
        let enabled = kith(&["plugin", "enable", "welcome", "--grant-all"]).await.unwrap();
        assert!(!enabled.stderr.contains("warning"), "{name}: {}", enabled.stderr);

        // A version that lets VIEWERs call `greetAgain`, which writes a task (activities:write)
        // and a greeting (its own object): refused while enabled, unless allowed.
        let warning = "mutation `greetAgain` lets VIEWER callers write (through the plugin's grants: \
                       activities:write; its own objects: greeting, welcomeDigest)";
        let refused =
            run_cli_env(&db.url, &["plugin", "upgrade", &lowered_arg], "", env.clone()).await.unwrap_err().to_string();
        assert!(refused.contains(warning) && refused.contains("--allow-low-role-writes"), "{name}: {refused}");
        let upgraded =
            run_cli_env(&db.url, &["plugin", "upgrade", &lowered_arg, "--allow-low-role-writes"], "", env.clone())
                .await
                .unwrap();
        assert!(upgraded.stderr.contains(&format!("warning: {warning}\n")), "{name}: {}", upgraded.stderr);
        assert!(upgraded.stderr.contains("upgraded welcome to 1.2.1"), "{name}: {}", upgraded.stderr);

        // Enabling it again is refused the same way, over the CLI and GraphQL.
        kith(&["plugin", "disable", "welcome"]).await.unwrap();
        let show = kith(&["plugin", "show", "welcome"]).await.unwrap().stdout;
        assert!(show.lines().any(|l| l == format!("  warning:    {warning}")), "{name}: {show}");
        let refused = kith(&["plugin", "enable", "welcome", "--grant-all"]).await.unwrap_err().to_string();
        assert!(refused.contains(warning), "{name}: {refused}");
        let server = Server::start(&db).await;
        let _runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin_token = token(&db, Role::Admin).await;
        let listed = server
            .gql(
                &admin_token,
                "{ plugins { id enabled operations { kind name role description lowRoleWrite } } }",
                json!({}),
            )
            .await;
        let operations = &listed["data"]["plugins"][0]["operations"];
        assert_eq!(
            operations[0],
            json!({"kind": "QUERY", "name": "greetingStats", "role": "MANAGER",
                   "description": "Greetings in total and per month, from `since` on (all time without it).",
                   "lowRoleWrite": null}),
            "{name}: {listed}"
        );
        assert_eq!(operations[1]["role"], "VIEWER", "{name}: {listed}");
        assert_eq!(operations[1]["lowRoleWrite"], warning, "{name}: {listed}");
        let enable = "mutation($a: Boolean) { enablePlugin(id: \"welcome\", grantAll: true, allowLowRoleWrites: $a) { enabled } }";
        let refused = server.gql(&admin_token, enable, json!({"a": null})).await;
        assert_eq!(code(&refused), "BAD_USER_INPUT", "{name}: {refused}");
        assert_eq!(listed["data"]["plugins"][0]["enabled"], false);
        let enabled = kith(&["plugin", "enable", "welcome", "--grant-all", "--allow-low-role-writes"]).await.unwrap();
        assert!(
            enabled.stderr.starts_with(&format!("warning: {warning}\nenabled welcome")),
            "{name}: {}",
            enabled.stderr
        );
        server.stop().await;
        db.cleanup().await;
    }
}

/// `kith serve --enable-bundled-plugins` enables them without `--allow-low-role-writes`.
#[test]
fn bundled_plugins_let_no_caller_below_agent_write() {
    for bundled in kith_core::plugin::bundled::BUNDLED {
        let manifest = kith_core::plugin::manifest::Manifest::parse(bundled.manifest).unwrap();
        let low = kith_core::plugin::extension::low_role_writes(&manifest, &manifest.capabilities);
        assert!(low.is_empty(), "{}: {low:?}", bundled.id);
    }
}
