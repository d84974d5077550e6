//! E-mail (`kith:plugin/mail`, `[mail]`) against a real SMTP server on loopback (aiosmtpd, see
//! `kith_tests::smtp`): a plugin's message arrives with the headers Kith builds and the plugin's
//! list headers and signed link; its outcome comes back to that plugin alone; a 4xx is retried
//! and a 5xx fails for good; refusals (no grant, a sender not allowed, no relay) and a call that
//! fails send nothing; a `kith serve` killed with SIGKILL between queueing and sending sends
//! every message after its restart, a repeat keeping its Message-ID.

use std::sync::Arc;

use kith_core::config::{MailConfig, MailTls};
use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_core::service::mail::Mailer;
use kith_core::store::plugins::kv_get;
use kith_tests::TestDb;
use kith_tests::smtp::{Received, SmtpSink};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::util::{Server, admin, code, eventually, hostile, plugins_config, token};

fn mail_config(sink: &SmtpSink) -> MailConfig {
    MailConfig {
        relay: "127.0.0.1".into(),
        port: sink.port,
        tls: MailTls::None,
        senders: vec!["@example.org".into()],
        per_second: 500,
        retry_base_secs: 1,
        max_attempts: 4,
        timeout_ms: 5_000,
        poll_interval_ms: 50,
        ..MailConfig::default()
    }
}

/// The hostile plugin as `id` in mode `mail`, also subscribed to its mail outcomes, with a
/// `mailThenFail` mutation; granted everything it asks for, which includes `mail:send` only
/// with `grant_mail` (its code sends all the same).
async fn mailer_plugin(manager: &kith_core::plugin::manager::PluginManager, id: &str, grant_mail: bool) {
    let (manifest, wasm) = hostile(id);
    let capabilities = if grant_mail { "\"kv\", \"mail:send\"]" } else { "\"kv\"]" };
    let manifest = manifest
        .replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "")
        .replace("events = [\"contact.*\"]", "events = [\"contact.created\", \"mail.*\"]")
        .replace("\"kv\"]", capabilities);
    let manifest = format!(
        "{manifest}
[[mutations]]
name = \"mailThenFail\"
returns = \"String!\"
role = \"AGENT\"
[mutations.arguments]
to = \"String!\"
how = \"String!\"
"
    );
    manager.install(&admin(), &manifest, &wasm).await.unwrap();
    manager.set_setting(&admin(), id, "mode", Some(json!("mail"))).await.unwrap();
    manager.enable(&admin(), id, Grants::All).await.unwrap();
}

async fn kv_json(db: &TestDb, plugin: &str, key: &str) -> Option<Value> {
    let bytes = kv_get(db.kith.store.conn(), plugin, key).await.unwrap()?;
    Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())))
}

fn to(sink: &SmtpSink, address: &str) -> Vec<Received> {
    sink.received().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
}

async fn mail_rows(db: &TestDb) -> Vec<kith_core::store::mail::MailRow> {
    kith_core::store::mail::list(db.kith.store.conn(), None, None, 100).await.unwrap()
}

#[tokio::test]
async fn a_plugins_mail_reaches_a_real_smtp_server_and_its_outcome_comes_back() {
    let Some(sink) = SmtpSink::start_or_skip("mail::a_plugins_mail_reaches_a_real_smtp_server").await else { return };
    for db in TestDb::all().await {
        let mailer = Arc::new(Mailer::new(&mail_config(&sink)).unwrap().unwrap());
        db.kith.configure_mail(Some(mailer.clone()));
        db.kith.set_public_url("https://crm.example.org/");
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        mailer_plugin(&manager, "mailer", true).await;
        // Another plugin that receives every event it may: never the mailer's outcomes.
        let (manifest, wasm) = hostile("bystander");
        let manifest = manifest
            .replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "")
            .replace("events = [\"contact.*\"]", "events = [\"*\"]");
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.enable(&admin(), "bystander", Grants::All).await.unwrap();
        let worker = kith_core::service::mail::worker::start(&db.kith, mailer);
        sink.fail_temp(true);
        let address = |who: &str| format!("{who}-{}@example.net", db.name);
        let ada = db.create("contact", json!({"firstName": "Ada", "email": address("ada")})).await.unwrap().id();
        let perm = db.create("contact", json!({"firstName": "Perm", "email": address("perm")})).await.unwrap().id();
        let temp = db.create("contact", json!({"firstName": "Temp", "email": address("temp")})).await.unwrap().id();
        db.create("contact", json!({"firstName": "Nobody"})).await.unwrap();

        // Ada's message, as the relay received it.
        let got = eventually(60, "Ada's message", || async { to(&sink, &address("ada")).into_iter().next() }).await;
        let message_id = eventually(30, "the Message-ID kept by the plugin", || async {
            kv_json(&db, "mailer", &format!("msgid:{ada}")).await
        })
        .await;
        let message_id = message_id.as_str().unwrap().to_owned();
        assert_eq!(got.from, "kith@example.org", "{}: the envelope sender", db.name);
        assert_eq!(got.header("Message-ID"), Some(format!("<{message_id}>")), "{}", db.name);
        let from = got.header("From").unwrap_or_default();
        assert!(from.contains("Kith Tests") && from.ends_with("<kith@example.org>"), "{}: {from}", db.name);
        assert_eq!(got.header("Subject").as_deref(), Some("Welcome, Ada"), "{}", db.name);
        assert_eq!(got.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        assert_eq!(got.header("X-Kith-Test").as_deref(), Some("mail"));
        assert!(got.header("Date").is_some());
        let unsubscribe = got.header("List-Unsubscribe").unwrap();
        let link = unsubscribe.trim_matches(['<', '>']);
        assert!(link.starts_with(&format!("https://crm.example.org/p/mailer/hello?c={ada}&exp=")), "{link}");
        assert!(got.data.contains("multipart/alternative"), "{}", got.data);
        assert!(
            got.data.contains("Say hello (https://crm.example.org/p/mailer/hello?c="),
            "text derived from HTML: {}",
            got.data
        );
        // The link is the plugin's, signed with a key it never saw; a changed one is refused.
        let key = kith_core::store::plugins::link_key(db.kith.store.conn(), "mailer").await.unwrap();
        let now = chrono::Utc::now().timestamp();
        let params = kith_core::plugin::links::verify(&key, "mailer", link, now).unwrap();
        assert_eq!(params, vec![("c".to_owned(), ada.to_string())]);
        assert!(
            kith_core::plugin::links::verify(&key, "mailer", &link.replace(&ada.to_string(), &perm.to_string()), now)
                .is_err()
        );
        assert!(kith_core::plugin::links::verify(&key, "bystander", link, now).is_err());

        // The outcome, to the mailer.
        let sent =
            eventually(30, "mail.sent", || async { kv_json(&db, "mailer", &format!("outcome:{ada}")).await }).await;
        assert_eq!(sent["kind"], "mail.sent", "{}: {sent}", db.name);
        assert_eq!(sent["payload"]["messageId"], message_id.as_str());
        assert_eq!(sent["payload"]["attempts"], 1);
        // A 5xx fails at once.
        let failed =
            eventually(30, "mail.failed", || async { kv_json(&db, "mailer", &format!("outcome:{perm}")).await }).await;
        assert_eq!(failed["kind"], "mail.failed", "{}: {failed}", db.name);
        assert!(failed["payload"]["error"].as_str().unwrap().contains("550"), "{failed}");
        assert_eq!(failed["payload"]["attempts"], 1);
        assert!(to(&sink, &address("perm")).is_empty());
        // A 4xx is tried again, and goes through once the relay takes it.
        let waiting = eventually(30, "a refused first attempt", || async {
            mail_rows(&db).await.into_iter().find(|r| r.recipient == address("temp") && r.attempts >= 1)
        })
        .await;
        assert_eq!(waiting.state, kith_core::store::mail::MailState::Queued, "{}: {waiting:?}", db.name);
        assert!(waiting.last_error.as_deref().unwrap_or_default().contains("451"), "{waiting:?}");
        sink.fail_temp(false);
        let retried = eventually(60, "the retried message", || async {
            kv_json(&db, "mailer", &format!("outcome:{temp}")).await
        })
        .await;
        assert_eq!(retried["kind"], "mail.sent", "{}: {retried}", db.name);
        assert!(retried["payload"]["attempts"].as_i64().unwrap() >= 2, "{retried}");
        assert_eq!(to(&sink, &address("temp")).len(), 1);
        assert_eq!(to(&sink, &address("ada")).len(), 1, "{}: sent once", db.name);

        // Nobody else heard of the mailer's outcomes.
        let conn = db.kith.store.conn();
        for key in kith_core::store::plugins::kv_keys(conn, "bystander", "", 1_000).await.unwrap() {
            let value = kv_get(conn, "bystander", &key).await.unwrap().unwrap_or_default();
            assert!(!String::from_utf8_lossy(&value).contains("mail."), "{}: bystander saw {key}", db.name);
        }
        let states: Vec<_> = mail_rows(&db).await.into_iter().map(|r| (r.recipient, r.state)).collect();
        assert_eq!(states.len(), 3, "{}: {states:?}", db.name);

        // Erasing Ada removes her messages and empties her outcome events.
        kith_core::service::privacy::erase(&db.kith, &admin(), ada, "request").await.unwrap();
        let left: Vec<_> = mail_rows(&db).await.into_iter().map(|r| r.recipient).collect();
        assert!(!left.contains(&address("ada")) && left.len() == 2, "{}: {left:?}", db.name);
        let payload = if db.name == "postgres" { "CAST(payload AS TEXT)" } else { "payload" };
        let sql = format!(
            "SELECT count(*) FROM event_outbox WHERE audience IS NOT NULL AND {payload} LIKE '%{}%'",
            address("ada")
        );
        let backend = conn.get_database_backend();
        let row = conn.query_one_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap().unwrap();
        assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 0, "{}: her address left in a mail event", db.name);
        worker.stop().await;
        manager.stop().await;
        db.cleanup().await;
    }
    sink.stop().await;
}

/// Through GraphQL (a plugin mutation): a message queued by a call that fails is never sent;
/// no grant, a sender the configuration does not allow, a forged header and no relay are each
/// refused with a clear message, and the server goes on.
#[tokio::test]
async fn refused_and_rolled_back_sends_send_nothing() {
    let Some(sink) = SmtpSink::start_or_skip("mail::refused_and_rolled_back_sends_send_nothing").await else { return };
    for db in TestDb::all().await {
        let mailer = Arc::new(Mailer::new(&mail_config(&sink)).unwrap().unwrap());
        db.kith.configure_mail(Some(mailer.clone()));
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        mailer_plugin(&manager, "mailer", true).await;
        let worker = kith_core::service::mail::worker::start(&db.kith, mailer.clone());
        let call = |how: &str, to: &str| {
            let (server, agent) = (&server, &agent);
            let query = format!("mutation {{ mailThenFail(to: \"{to}\", how: \"{how}\") }}");
            async move { server.gql(agent, &query, json!({})).await }
        };
        let rollback = format!("rollback-{}@example.net", db.name);
        let answer = call("error", &rollback).await;
        assert_eq!(code(&answer), "PLUGIN_FAILED", "{}: {answer}", db.name);
        let kept = format!("kept-{}@example.net", db.name);
        let answer = call("ok", &kept).await;
        let id = answer["data"]["mailThenFail"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
        let got = eventually(60, "the kept message", || async { to(&sink, &kept).into_iter().next() }).await;
        assert_eq!(got.header("Message-ID"), Some(format!("<{id}>")));
        assert!(to(&sink, &rollback).is_empty(), "{}: a failed call sends nothing", db.name);
        assert_eq!(mail_rows(&db).await.len(), 1, "{}", db.name);

        // A sender the configuration does not allow.
        manager.set_setting(&admin(), "mailer", "sender", Some(json!("spoof@elsewhere.net"))).await.unwrap();
        let answer = call("ok", &kept).await;
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("spoof@elsewhere.net") && message.contains("senders"), "{}: {answer}", db.name);
        manager.set_setting(&admin(), "mailer", "sender", None).await.unwrap();
        // Two recipients in one address, or none.
        let answer = call("ok", "a@example.net, b@example.net").await;
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("to:"), "{answer}");
        // No relay.
        db.kith.configure_mail(None);
        let answer = call("ok", &kept).await;
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("not configured"), "{answer}");
        db.kith.configure_mail(Some(mailer.clone()));
        // Without the grant (the same mutation, from another plugin).
        manager.disable(&admin(), "mailer").await.unwrap();
        mailer_plugin(&manager, "ungranted", false).await;
        let answer = call("ok", &kept).await;
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("mail:send"), "{}: {answer}", db.name);
        assert_eq!(mail_rows(&db).await.len(), 1, "{}: nothing else was queued", db.name);
        // The server is still up.
        let answer = server.gql(&agent, "{ contacts(first: 1) { edges { node { id } } } }", json!({})).await;
        assert!(answer["errors"].is_null(), "{answer}");
        worker.stop().await;
        manager.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
    sink.stop().await;
}

/// `kith serve` (a child process) killed with SIGKILL while it sends a backlog: after a restart
/// every message is sent; those the relay had taken before the kill (the outcome not yet
/// written) are sent again with the same `Message-ID`, so a receiver can tell the repeat.
#[tokio::test]
async fn queued_mail_survives_a_kill_of_kith() {
    let Some(sink) = SmtpSink::start_or_skip("mail::queued_mail_survives_a_kill_of_kith").await else { return };
    for db in TestDb::all().await {
        let offline = kith_core::plugin::manager::PluginManager::new(db.kith.clone(), &plugins_config()).unwrap();
        mailer_plugin(&offline, "mailer", true).await;
        let recipients: Vec<String> = (0..10).map(|i| format!("kill{i}-{}@example.net", db.name)).collect();
        for (i, email) in recipients.iter().enumerate() {
            db.create("contact", json!({"firstName": format!("K{i}"), "email": email})).await.unwrap();
        }
        let cache = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugin-cache-test").to_owned();
        let env = |per_second: u32| {
            vec![
                ("KITH_LOG_FORMAT", "json".to_owned()),
                ("KITH_PLUGINS__INSTALL_BUNDLED", "false".to_owned()),
                ("KITH_PLUGINS__CACHE_DIR", cache.clone()),
                ("KITH_PLUGINS__POLL_INTERVAL_MS", "20".to_owned()),
                ("KITH_MAIL__RELAY", "127.0.0.1".to_owned()),
                ("KITH_MAIL__PORT", sink.port.to_string()),
                ("KITH_MAIL__TLS", "none".to_owned()),
                ("KITH_MAIL__SENDERS", "[\"@example.org\"]".to_owned()),
                ("KITH_MAIL__PER_SECOND", per_second.to_string()),
                ("KITH_MAIL__TIMEOUT_MS", "1000".to_owned()),
                ("KITH_MAIL__POLL_INTERVAL_MS", "50".to_owned()),
            ]
        };
        let mine = |sink: &SmtpSink| -> Vec<Received> {
            sink.received().into_iter().filter(|m| m.to.iter().any(|t| recipients.contains(t))).collect()
        };
        // Two a second: the kill comes while the first round is still sending.
        let (mut first, _, _) = crate::observability::spawn_serve(&db.url, &env(2)).await;
        eventually(60, "two messages through the first process", || async { (mine(&sink).len() >= 2).then_some(()) })
            .await;
        first.start_kill().unwrap();
        let _ = first.wait().await;
        let before = mine(&sink).len();
        assert!(before < recipients.len(), "{}: the kill came too late to mean anything ({before} sent)", db.name);
        let rows = mail_rows(&db).await;
        assert_eq!(rows.len(), recipients.len(), "{}: every message was queued before the kill", db.name);

        let (mut second, _, _) = crate::observability::spawn_serve(&db.url, &env(100)).await;
        eventually(90, "every message sent after the restart", || async {
            let rows = mail_rows(&db).await;
            rows.iter().all(|r| r.state == kith_core::store::mail::MailState::Sent).then_some(())
        })
        .await;
        let got = mine(&sink);
        for row in mail_rows(&db).await {
            let copies: Vec<&Received> = got.iter().filter(|m| m.to.contains(&row.recipient)).collect();
            assert!(!copies.is_empty(), "{}: {} never arrived", db.name, row.recipient);
            for copy in &copies {
                assert_eq!(copy.header("Message-ID"), Some(format!("<{}>", row.message_id)), "{}", db.name);
            }
            assert!(copies.len() <= 2, "{}: {} arrived {} times", db.name, row.recipient, copies.len());
        }
        let repeats = got.len() - recipients.len();
        assert!(repeats <= before, "{}: only messages in flight at the kill repeat ({repeats} of {before})", db.name);
        second.start_kill().unwrap();
        let _ = second.wait().await;
        db.cleanup().await;
    }
    sink.stop().await;
}
