//! Writes in bulk (`kith:plugin/bulk`, WIT 1.4) through a real wasm plugin (the hostile test
//! plugin's `bulk` mutation) over GraphQL, on both databases: items fail one by one and a failed
//! item leaves nothing (a uniqueness conflict, within the call too, a wrong type, a reference
//! to nothing, a stale version, an unknown id, an id twice), the others are written with their
//! audit entries, events and search entries; a call that fails afterwards keeps nothing; an
//! object the plugin may not write, or too many items, refuse the whole call; messages are
//! queued each on its own and refused addresses fail alone.

use std::sync::Arc;

use kith_core::config::{MailConfig, MailTls};
use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_core::service::mail::Mailer;
use kith_tests::TestDb;
use kith_tests::smtp::SmtpSink;
use serde_json::{Value, json};

use crate::util::{Server, admin, code, eventually, hostile, plugins_config, token};

/// The hostile plugin with an object of its own (a unique name, a reference to a contact, a
/// searchable note) and its `bulk` mutation; granted contacts and `mail:send` (1,000 a minute).
async fn bulk_plugin(manager: &kith_core::plugin::manager::PluginManager) {
    let (manifest, wasm) = hostile("bulky");
    let manifest = manifest
        .replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "")
        .replace("\"kv\"]", "\"kv\", \"mail:send\"]");
    let manifest = format!(
        "{manifest}
[limits]
mail_per_minute = 1000

[[objects]]
name = \"item\"
plural = \"items\"
[[objects.fields]]
name = \"name\"
type = \"text\"
required = true
unique = true
[[objects.fields]]
name = \"score\"
type = \"integer\"
[[objects.fields]]
name = \"note\"
type = \"text\"
[[objects.fields]]
name = \"contactId\"
type = \"ref\"
target = \"contact\"

[[mutations]]
name = \"bulk\"
returns = \"JSON\"
role = \"AGENT\"
[mutations.arguments]
request = \"JSON!\"
"
    );
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.enable(&admin(), "bulky", Grants::All).await.unwrap();
}

/// The mutation's answer, or the whole GraphQL answer when it has none.
async fn call(server: &Server, token: &str, request: Value) -> Value {
    let answer = server.gql(token, "mutation($r: JSON!) { bulk(request: $r) }", json!({"r": request})).await;
    if answer["data"]["bulk"].is_null() { answer } else { answer["data"]["bulk"].clone() }
}

fn errors(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i["error"].as_str().unwrap_or("ok").to_owned()).collect()
}

#[tokio::test]
async fn bulk_writes_fail_item_by_item_and_keep_the_rest() {
    let sink = SmtpSink::start_or_skip("bulk::bulk_writes_fail_item_by_item_and_keep_the_rest").await;
    for db in TestDb::all().await {
        let mailer = sink.as_ref().map(|sink| {
            let config = MailConfig {
                relay: "127.0.0.1".into(),
                port: sink.port,
                tls: MailTls::None,
                senders: vec!["@example.org".into()],
                poll_interval_ms: 50,
                ..MailConfig::default()
            };
            Arc::new(Mailer::new(&config).unwrap().unwrap())
        });
        db.kith.configure_mail(mailer.clone());
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        bulk_plugin(&manager).await;
        let ada = db.create("contact", json!({"firstName": "Ada", "email": "ada@example.net"})).await.unwrap();
        let ada = ada.id().to_string();
        let table = "p_bulky_item";
        let first = call(&server, &agent, json!({"create": {"object": "item", "items": [{"name": "Taken"}]}})).await;
        assert_eq!(errors(&first), ["ok"], "{}: {first}", db.name);
        let (audit0, events0) = (db.count_rows("audit_log").await, db.count_rows("event_outbox").await);

        let created = call(
            &server,
            &agent,
            json!({"create": {"object": "item", "items": [
                {"name": "Alpha", "contactId": ada, "note": "searchable words"},
                {"name": "Taken"},
                {"name": "Wrong", "score": "many"},
                {"name": "Dangling", "contactId": "0193a0c2-1b2c-7000-8000-000000000001"},
                {"name": "Gamma"},
                {"name": "Gamma"},
                {"note": "no name"},
            ]}}),
        )
        .await;
        assert_eq!(
            errors(&created),
            ["ok", "Conflict", "InvalidInput", "InvalidInput", "ok", "Conflict", "InvalidInput"],
            "{}: {created}",
            db.name
        );
        assert!(created[3]["message"].as_str().unwrap().contains("no contact"), "{created}");
        assert_eq!(db.count_rows(table).await, 3, "{}: Taken, Alpha and Gamma", db.name);
        assert_eq!(db.count_rows("audit_log").await - audit0, 2, "{}: one audit entry per record written", db.name);
        assert_eq!(
            db.count_rows("event_outbox WHERE kind = 'item.created'").await,
            3,
            "{}: one event per record written (Taken's included)",
            db.name
        );
        assert!(db.count_rows("event_outbox").await - events0 >= 2, "{}", db.name);
        // A core object: its rules and search entries as for a single create.
        let people = call(
            &server,
            &agent,
            json!({"create": {"object": "contact", "items": [
                {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.net"},
                {"firstName": "Bad", "email": "not an address"},
                {"firstName": "Linus", "companyId": "0193a0c2-1b2c-7000-8000-000000000003"},
                {"firstName": "Alan", "lastName": "Turing"},
            ]}}),
        )
        .await;
        assert_eq!(errors(&people), ["ok", "InvalidInput", "InvalidInput", "ok"], "{}: {people}", db.name);
        let grace = people[0]["id"].as_str().unwrap();
        let found = server.gql(&agent, "{ search(query: \"Hopper\") { recordId } }", json!({})).await;
        assert!(found.to_string().contains(grace), "{}: {found}", db.name);
        assert_eq!(db.count_rows("contact").await, 3, "{}: Ada, Grace and Alan", db.name);

        let alpha = created[0]["id"].as_str().unwrap().to_owned();
        let gamma = created[4]["id"].as_str().unwrap().to_owned();
        let taken = first[0]["id"].as_str().unwrap().to_owned();
        let updated = call(
            &server,
            &agent,
            json!({"update": {"object": "item", "updates": [
                {"id": alpha, "fields": {"score": 3}, "expectedVersion": 1},
                {"id": gamma, "fields": {"score": 4}, "expectedVersion": 7},
                {"id": "0193a0c2-1b2c-7000-8000-000000000002", "fields": {"score": 5}},
                {"id": alpha, "fields": {"score": 6}},
                {"id": taken, "fields": {"name": "Alpha"}},
                {"id": gamma, "fields": {"score": "lots"}},
                {"id": taken, "fields": {"score": 8}},
            ]}}),
        )
        .await;
        assert_eq!(
            errors(&updated),
            ["ok", "Conflict", "NotFound", "InvalidInput", "Conflict", "InvalidInput", "InvalidInput"],
            "{}: {updated}",
            db.name
        );
        assert_eq!(updated[0]["version"], 2, "{updated}");
        let scores = db.count_rows(&format!("{table} WHERE score IS NOT NULL")).await;
        assert_eq!(scores, 1, "{}: only Alpha's score was written", db.name);
        assert_eq!(db.count_rows(&format!("{table} WHERE name = 'Alpha'")).await, 1, "{}", db.name);
        assert_eq!(db.count_rows("event_outbox WHERE kind = 'item.updated'").await, 1, "{}", db.name);

        // After a conflict inside the call, later statements of the same transaction still run
        // (on PostgreSQL a failed statement would otherwise abort it): a mixed call, then one
        // that fails after its writes and keeps nothing.
        let mixed = call(
            &server,
            &agent,
            json!({"create": {"object": "item", "items": [{"name": "Alpha"}, {"name": "Delta"}]}}),
        )
        .await;
        assert_eq!(errors(&mixed), ["Conflict", "ok"], "{}: {mixed}", db.name);
        let failed = server
            .gql(
                &agent,
                "mutation($r: JSON!) { bulk(request: $r) }",
                json!({"r": {"thenFail": true, "create": {"object": "item", "items": [{"name": "Ghost1"}, {"name": "Ghost2"}]}}}),
            )
            .await;
        assert_eq!(code(&failed), "PLUGIN_FAILED", "{}: {failed}", db.name);
        assert_eq!(db.count_rows(&format!("{table} WHERE name LIKE 'Ghost%'")).await, 0, "{}", db.name);

        // Refused as a whole: an object it may not write, too many items.
        let denied = call(&server, &agent, json!({"create": {"object": "deal", "items": [{"name": "x"}]}})).await;
        assert_eq!(denied["error"], "Denied", "{}: {denied}", db.name);
        let many: Vec<Value> = (0..1_001).map(|i| json!({"name": format!("Many{i}")})).collect();
        let many = call(&server, &agent, json!({"create": {"object": "item", "items": many}})).await;
        assert_eq!(errors(&many).len(), 1_001, "{}: the SDK splits long lists", db.name);
        assert!(errors(&many).iter().all(|e| e == "ok"), "{}", db.name);
        assert_eq!(db.count_rows(&format!("{table} WHERE name LIKE 'Many%'")).await, 1_001, "{}", db.name);

        // Messages: each queued alone; a refused address fails alone.
        match (&sink, &mailer) {
            (Some(sink), Some(mailer)) => {
                let worker = kith_core::service::mail::worker::start(&db.kith, mailer.clone());
                let to = |n: u32| format!("bulk{n}-{}@example.net", db.name);
                let sent = call(
                    &server,
                    &agent,
                    json!({"mail": [{"to": to(1), "subject": "One"}, {"to": "two@a, three@b"}, {"to": to(3), "subject": "Three"}]}),
                )
                .await;
                assert_eq!(errors(&sent), ["ok", "InvalidInput", "ok"], "{}: {sent}", db.name);
                for n in [1, 3] {
                    eventually(60, "a bulk message", || async {
                        sink.received().into_iter().find(|m| m.to.iter().any(|t| *t == to(n)))
                    })
                    .await;
                }
                // A longer list is built on several threads: each result and each queued
                // message stays with its item, refusals included.
                let refused = |n: u32| n == 10 || n == 70;
                let batch: Vec<Value> = (0..100)
                    .map(|n| {
                        let address = if refused(n) { "not an address".to_owned() } else { to(1_000 + n) };
                        json!({"to": address, "subject": format!("Batch {n}")})
                    })
                    .collect();
                let sent = call(&server, &agent, json!({"mail": batch})).await;
                let expected: Vec<&str> = (0..100).map(|n| if refused(n) { "InvalidInput" } else { "ok" }).collect();
                assert_eq!(errors(&sent), expected, "{}: {sent}", db.name);
                let queued = kith_core::store::mail::list(db.kith.store.conn(), None, None, 1_000).await.unwrap();
                for n in (0..100).filter(|n| !refused(*n)) {
                    let message = queued.iter().find(|m| m.recipient == to(1_000 + n)).expect("queued");
                    assert_eq!(message.subject, format!("Batch {n}"), "{}", db.name);
                    assert_eq!(sent[n as usize]["id"], json!(message.message_id), "{}: {sent}", db.name);
                }
                worker.stop().await;
            }
            _ => eprintln!("SKIPPED (bulk messages): no SMTP server (aiosmtpd) could be started"),
        }
        manager.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
    if let Some(sink) = sink {
        sink.stop().await;
    }
}
