//! Plugin extension points end to end (kith:plugin@1.2): computed fields resolved a page at a
//! time, plugin queries and mutations with typed arguments and checked results, roles, name
//! clashes, aggregates on both databases, and scheduled jobs (manual runs over GraphQL and the
//! CLI, the lease, missed-run policies, two processes).

use std::time::Duration;

use chrono::Utc;
use kith_core::domain::actor::Role;
use kith_core::domain::filter::Filter;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_core::store::aggregate::{Bucket, GroupBy, Metric, MetricKind, aggregate};
use kith_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::util::{Server, admin, code, eventually, plugins_config, run_cli_env, token, welcome};

async fn enable_welcome(runtime: &kith_core::plugin::PluginManager, manifest: &str) {
    runtime.install(&admin(), manifest, &welcome().1).await.unwrap();
    runtime.enable(&admin(), "welcome", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
}

#[tokio::test]
async fn computed_fields_queries_and_mutations_work_through_graphql() {
    let (manifest, wasm) = welcome();
    welcome_works_end_to_end("welcome", &manifest, &wasm).await;
}

/// What the welcome plugin does, through Kith's public interfaces, on both databases: run
/// against the Rust plugin and against its ports to Python and TypeScript
/// (`tests/it/sdks.rs`), each installed as its toolchain built it. A blocklisted e-mail domain
/// refused before the write; a welcome task and a greeting per new contact; the computed field
/// for a page in one call; a query with its declared role and argument types; a mutation whose
/// own error names the field; the daily job run by hand, once per day; the contributions gone
/// while the plugin is disabled.
pub(crate) async fn welcome_works_end_to_end(id: &str, manifest: &str, wasm: &[u8]) {
    let table = |object: &str| kith_core::plugin::objects::table_name(id, object);
    for db in TestDb::all().await {
        let name = format!("{id} on {}", db.name);
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let manager_token = token(&db, Role::Manager).await;
        let admin_token = token(&db, Role::Admin).await;
        // A contact from before the plugin: never greeted.
        let early = db.create("contact", json!({"firstName": "Early", "lastName": "Bird"})).await.unwrap();
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        runtime.install(&admin(), manifest, wasm).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        runtime.set_setting(&admin(), id, "blocked_domains", Some(json!(["spam.test"]))).await.unwrap();
        runtime.enable(&admin(), id, Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();

        // Before the write: a blocklisted domain is refused, whatever its case, and nothing is stored.
        let create = "mutation($n: String, $e: String) { createContact(input: {firstName: $n, email: $e}) { id } }";
        let refused = server.gql(&agent, create, json!({"n": "Bot", "e": "bot@SPAM.test"})).await;
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("e-mail addresses at spam.test are not accepted"), "{name}: {refused}");
        assert_eq!(db.count_rows("contact").await, 1, "{name}");

        for i in 0..5 {
            let created = server.gql(&agent, create, json!({"n": format!("P{i}"), "e": null})).await;
            assert!(created["data"]["createContact"]["id"].is_string(), "{name}: {created}");
        }
        eventually(20, "greetings", || async { (db.count_rows(&table("greeting")).await == 5).then_some(()) }).await;
        let tasks = server
            .gql(
                &agent,
                "{ activities(first: 10, filter: {subject: {eq: \"Welcome P3\"}}) { edges { node { kind dueAt contact { firstName } } } } }",
                json!({}),
            )
            .await;
        let task = &tasks["data"]["activities"]["edges"][0]["node"];
        assert_eq!(task["kind"], "TASK", "{name}: {tasks}");
        assert_eq!(task["contact"]["firstName"], "P3", "{name}: {tasks}");
        let due = task["dueAt"].as_str().and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok());
        let days = due.map(|d| (d.with_timezone(&Utc) - Utc::now()).num_hours());
        assert!(days.is_some_and(|h| (70..=72).contains(&h)), "{name}: due in three days: {tasks}");

        // A page of contacts with the computed field: one plugin call for the whole page.
        let plugin = runtime.loaded(id).unwrap();
        let before = plugin.compute_calls();
        let page = server
            .gql(
                &agent,
                "{ contacts(first: 50, orderBy: [{field: firstName}]) { edges { node { id firstName welcomeStatus } } } }",
                json!({}),
            )
            .await;
        assert_eq!(plugin.compute_calls() - before, 1, "{name}: one call for the page");
        let edges = page["data"]["contacts"]["edges"].as_array().unwrap_or_else(|| panic!("{name}: {page}"));
        assert_eq!(edges.len(), 6);
        for edge in edges {
            let expected = if edge["node"]["id"] == json!(early.id().to_string()) { "PENDING" } else { "GREETED" };
            assert_eq!(edge["node"]["welcomeStatus"], expected, "{name}: {edge}");
        }

        // A query with a declared result type and role.
        let stats = "query($s: Date) { greetingStats(since: $s) { total firstAt lastAt byMonth { month greetings } } }";
        let answer = server.gql(&manager_token, stats, json!({"s": null})).await;
        let this_month = format!("{}-01", &Utc::now().format("%Y-%m"));
        assert_eq!(answer["data"]["greetingStats"]["total"], 5, "{name}: {answer}");
        assert_eq!(
            answer["data"]["greetingStats"]["byMonth"],
            json!([{"month": this_month, "greetings": 5}]),
            "{name}"
        );
        assert!(answer["data"]["greetingStats"]["lastAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{answer}");
        let later = server.gql(&manager_token, stats, json!({"s": "2999-01-01"})).await;
        assert_eq!(later["data"]["greetingStats"]["total"], 0, "{name}: {later}");
        assert_eq!(later["data"]["greetingStats"]["byMonth"], json!([]), "{name}");
        // The declared role: MANAGER.
        let refused = server.gql(&agent, stats, json!({"s": null})).await;
        assert_eq!(code(&refused), "FORBIDDEN", "{name}: {refused}");
        // Argument types are checked before the plugin sees them.
        let before = plugin.calls();
        for bad in [json!("2026-13-45"), json!(5), json!("yesterday")] {
            let response = server.gql(&manager_token, stats, json!({"s": bad})).await;
            assert_eq!(code(&response), "BAD_USER_INPUT", "{name}: {response}");
            assert_eq!(response["errors"][0]["extensions"]["field"], "since", "{name}: {response}");
        }
        let wrong_type =
            server.gql(&agent, "mutation { greetAgain(contactId: \"x\", subject: 5) { taskId } }", json!({})).await;
        assert!(wrong_type["errors"][0]["message"].as_str().unwrap_or_default().contains("subject"), "{wrong_type}");
        let missing = server.gql(&agent, "mutation { greetAgain { taskId } }", json!({})).await;
        assert!(missing["errors"].is_array() && missing["data"].is_null(), "{name}: {missing}");
        assert_eq!(plugin.calls(), before, "{name}: refused calls never reach the plugin");

        // A mutation: the plugin's own error names the field; success writes through the host.
        let again = "mutation($c: ID!, $s: String) { greetAgain(contactId: $c, subject: $s) { taskId subject } }";
        let unknown = server.gql(&agent, again, json!({"c": uuid::Uuid::now_v7().to_string()})).await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT", "{name}: {unknown}");
        assert_eq!(unknown["errors"][0]["extensions"]["field"], "contactId", "{name}");
        let done = server.gql(&agent, again, json!({"c": early.id().to_string(), "s": "Hello {name}"})).await;
        assert_eq!(done["data"]["greetAgain"]["subject"], "Hello Early Bird", "{name}: {done}");
        let task_id = done["data"]["greetAgain"]["taskId"].as_str().unwrap().to_owned();
        let task =
            server.gql(&agent, "query($id: ID!) { activity(id: $id) { subject kind } }", json!({"id": task_id})).await;
        assert_eq!(task["data"]["activity"], json!({"subject": "Hello Early Bird", "kind": "TASK"}), "{name}");
        let viewer = token(&db, Role::Viewer).await;
        let as_viewer = server.gql(&viewer, again, json!({"c": early.id().to_string()})).await;
        assert_eq!(code(&as_viewer), "FORBIDDEN", "{name}: mutations default to AGENT");

        // The daily job, run by hand twice: one digest for the day before.
        let run = format!("mutation {{ runPluginJob(id: \"{id}\", job: \"digest\") {{ status error }} }}");
        for _ in 0..2 {
            let done = server.gql(&admin_token, &run, json!({})).await;
            assert_eq!(done["data"]["runPluginJob"]["status"], "succeeded", "{name}: {done}");
        }
        assert_eq!(db.count_rows(&table("welcomeDigest")).await, 1, "{name}");

        // Disabled: the contributions leave the schema; enabled: back.
        runtime.disable(&admin(), id).await.unwrap();
        runtime.refresh().await.unwrap();
        let gone = server.gql(&agent, "{ contacts(first: 1) { edges { node { welcomeStatus } } } }", json!({})).await;
        assert!(gone["errors"][0]["message"].as_str().unwrap_or_default().contains("welcomeStatus"), "{name}: {gone}");
        let gone = server.gql(&manager_token, stats, json!({"s": null})).await;
        assert!(gone["errors"].is_array(), "{name}: {gone}");
        runtime.enable(&admin(), id, Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let back = server.gql(&manager_token, stats, json!({"s": null})).await;
        assert_eq!(back["data"]["greetingStats"]["total"], 5, "{name}: {back}");

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn results_of_the_wrong_type_and_plugin_errors_are_clear_errors() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let manager_token = token(&db, Role::Manager).await;
    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    // The manifest promises an Int, the plugin answers an object.
    let lying = welcome().0.replace("returns = \"GreetingStats!\"", "returns = \"Int!\"");
    enable_welcome(&runtime, &lying).await;
    let answer = server.gql(&manager_token, "{ greetingStats }", json!({})).await;
    assert_eq!(code(&answer), "PLUGIN_FAILED", "{answer}");
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("not a Int!"), "{answer}");
    // The server keeps serving.
    let ok = server.gql(&manager_token, "{ contacts(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(ok["data"]["contacts"]["totalCount"], 0, "{ok}");
    runtime.stop().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_computed_value_outside_its_enum_is_a_plugin_error_at_its_path() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    // A computed field answering outside its declared enum: `PLUGIN_FAILED` at the field's
    // path, `null` there (the field is nullable here), the rest of each node answered.
    let outside = welcome()
        .0
        .replace("values = [\"GREETED\", \"PENDING\"]", "values = [\"WAITING\", \"DONE\"]")
        .replace("type = \"WelcomeStatus!\"", "type = \"WelcomeStatus\"");
    assert_ne!(outside, welcome().0, "the manifest changed");
    enable_welcome(&runtime, &outside).await;
    let agent = token(&db, Role::Agent).await;
    server.gql(&agent, "mutation { createContact(input: { firstName: \"Eve\" }) { id } }", json!({})).await;
    let answer =
        server.gql(&agent, "{ contacts(first: 5) { edges { node { firstName welcomeStatus } } } }", json!({})).await;
    assert_eq!(code(&answer), "PLUGIN_FAILED", "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["plugin"], "welcome", "{answer}");
    assert_eq!(answer["errors"][0]["path"], json!(["contacts", "edges", 0, "node", "welcomeStatus"]), "{answer}");
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("one of WAITING, DONE"), "{answer}");
    assert_eq!(
        answer["data"]["contacts"]["edges"][0]["node"],
        json!({"firstName": "Eve", "welcomeStatus": null}),
        "{answer}"
    );
    runtime.stop().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn clashing_contributions_are_refused_at_enable() {
    let db = TestDb::sqlite().await;
    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    enable_welcome(&runtime, &welcome().0).await;
    // The welcome component under other ids, with contributions that clash.
    let other = |id: &str, extra: &str| {
        format!(
            "manifest_version = 1\nid = \"{id}\"\nname = \"Other\"\nversion = \"1.0.0\"\nsdk_version = \"1.4.0\"\ncapabilities = [\"contacts:read\"]\n{extra}"
        )
    };
    let cases = [
        ("dup-query", "[[queries]]\nname = \"greetingStats\"\nreturns = \"Int\"\n", "greetingStats"),
        ("core-query", "[[queries]]\nname = \"contacts\"\nreturns = \"Int\"\n", "Query.contacts"),
        ("core-field", "[[fields]]\nobject = \"contact\"\nname = \"email\"\ntype = \"String\"\n", "Contact.email"),
        (
            "dup-field",
            "[[fields]]\nobject = \"contact\"\nname = \"welcomeStatus\"\ntype = \"String\"\n",
            "welcomeStatus",
        ),
        ("core-type", "[[enums]]\nname = \"Contact\"\nvalues = [\"A\"]\n", "Contact"),
        ("dup-type", "[[enums]]\nname = \"WelcomeStatus\"\nvalues = [\"A\"]\n", "WelcomeStatus"),
        ("core-mutation", "[[mutations]]\nname = \"createContact\"\nreturns = \"Int\"\n", "createContact"),
    ];
    for (id, extra, clash) in cases {
        runtime.install(&admin(), &other(id, extra), &welcome().1).await.unwrap();
        let err = runtime.enable(&admin(), id, Grants::All).await.unwrap_err().to_string();
        assert!(err.contains(clash) && err.contains("cannot enable"), "{id}: {err}");
    }
    // A component that does not export the extension interface cannot declare any.
    let old = include_bytes!("../fixtures/welcome-sdk-1.0.0.wasm");
    let manifest = include_str!("../fixtures/welcome-sdk-1.0.0.toml")
        .replace("sdk_version = \"1.0.0\"", "sdk_version = \"1.2.0\"")
        .replace("id = \"welcome\"", "id = \"old\"");
    let err =
        runtime.install(&admin(), &format!("{manifest}\n[[queries]]\nname = \"x\"\nreturns = \"Int\"\n"), old).await;
    assert!(err.is_err());
    runtime.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn aggregates_group_sum_and_bucket_in_the_database() {
    for db in TestDb::all().await {
        let name = db.name;
        let pipeline = db.create("pipeline", json!({"name": "Sales", "currency": "EUR"})).await.unwrap();
        let stage = db
            .create("stage", json!({"pipelineId": pipeline.id().to_string(), "name": "New", "position": 1, "probability": 10, "kind": "OPEN"}))
            .await
            .unwrap();
        for (title, amount, currency, close) in [
            ("a", "10.25", "EUR", "2026-01-05"),
            ("b", "0.75", "EUR", "2026-01-06"),
            ("c", "100", "USD", "2026-03-31"),
            ("d", "5", "EUR", "2025-12-29"),
        ] {
            db.create(
                "deal",
                json!({"title": title, "amount": amount, "currency": currency, "pipelineId": pipeline.id().to_string(),
                       "stageId": stage.id().to_string(), "expectedCloseDate": close}),
            )
            .await
            .unwrap();
        }
        let deal = db.kith.object("deal").unwrap();
        let conn = db.kith.store.conn();
        let metrics = [
            Metric { kind: MetricKind::Count, field: None },
            Metric { kind: MetricKind::Sum, field: Some("amount".into()) },
            Metric { kind: MetricKind::Min, field: Some("expectedCloseDate".into()) },
            Metric { kind: MetricKind::Max, field: Some("title".into()) },
        ];
        let by_currency = [GroupBy { field: "currency".into(), bucket: None }];
        let rows = aggregate(conn, &deal, &Filter::all(), &by_currency, &metrics, 100, None).await.unwrap();
        let text: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!([
                    r.keys.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
                    r.values.iter().map(|v| v.to_json()).collect::<Vec<_>>()
                ])
            })
            .collect();
        assert_eq!(
            text,
            vec![json!([["EUR"], [3, "16", "2025-12-29", "d"]]), json!([["USD"], [1, "100", "2026-03-31", "c"]])],
            "{name}"
        );
        for (bucket, expected) in [
            (Bucket::Year, vec![("2025-01-01", 1), ("2026-01-01", 3)]),
            (Bucket::Month, vec![("2025-12-01", 1), ("2026-01-01", 2), ("2026-03-01", 1)]),
            // 2025-12-29 and 2026-01-05 are Mondays.
            (Bucket::Week, vec![("2025-12-29", 1), ("2026-01-05", 2), ("2026-03-30", 1)]),
            (Bucket::Day, vec![("2025-12-29", 1), ("2026-01-05", 1), ("2026-01-06", 1), ("2026-03-31", 1)]),
        ] {
            let group = [GroupBy { field: "expectedCloseDate".into(), bucket: Some(bucket) }];
            let rows = aggregate(conn, &deal, &Filter::all(), &group, &metrics[..1], 100, None).await.unwrap();
            let got: Vec<(String, i64)> =
                rows.iter().map(|r| (r.keys[0].to_string(), r.values[0].as_int().unwrap())).collect();
            let expected: Vec<(String, i64)> = expected.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
            assert_eq!(got, expected, "{name} {bucket:?}");
        }
        // Ordered by a metric (the top N), and distinct counts.
        let top = aggregate(conn, &deal, &Filter::all(), &by_currency, &metrics, 1, Some((1, true))).await.unwrap();
        assert_eq!(top.len(), 1, "{name}");
        assert_eq!(top[0].keys[0].to_string(), "USD", "{name}: the largest sum first");
        let distinct = [Metric { kind: MetricKind::CountDistinct, field: Some("currency".into()) }];
        let rows = aggregate(conn, &deal, &Filter::all(), &[], &distinct, 1, None).await.unwrap();
        assert_eq!(rows[0].values[0].as_int(), Some(2), "{name}");
        assert!(aggregate(conn, &deal, &Filter::all(), &[], &distinct, 1, Some((3, false))).await.is_err());
        // Datetimes bucket too (every deal was created this year).
        let group = [GroupBy { field: "createdAt".into(), bucket: Some(Bucket::Year) }];
        let rows = aggregate(conn, &deal, &Filter::all(), &group, &metrics[..1], 100, None).await.unwrap();
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(rows[0].keys[0].to_string(), format!("{}-01-01", Utc::now().format("%Y")), "{name}");
        // Bad requests are clear errors.
        for (group, metric, part) in [
            (vec![GroupBy { field: "nope".into(), bucket: None }], metrics[0].clone(), "nope"),
            (vec![GroupBy { field: "title".into(), bucket: Some(Bucket::Day) }], metrics[0].clone(), "not a date"),
            (vec![], Metric { kind: MetricKind::Sum, field: Some("title".into()) }, "not a number"),
            (vec![], Metric { kind: MetricKind::Max, field: None }, "name a field"),
        ] {
            let err =
                aggregate(conn, &deal, &Filter::all(), &group, &[metric], 10, None).await.unwrap_err().to_string();
            assert!(err.contains(part), "{name}: {err}");
        }
        db.cleanup().await;
    }
}

async fn set_next_run(db: &TestDb, plugin: &str, job: &str, at: chrono::DateTime<Utc>) {
    let backend = db.kith.store.conn().get_database_backend();
    let at = kith_core::domain::value::format_datetime(at);
    let sql = if backend == sea_orm::DbBackend::Postgres {
        format!(
            "UPDATE plugin_job SET next_run_at = '{at}'::timestamptz WHERE plugin_id = '{plugin}' AND job = '{job}'"
        )
    } else {
        format!("UPDATE plugin_job SET next_run_at = '{at}' WHERE plugin_id = '{plugin}' AND job = '{job}'")
    };
    db.kith.store.conn().execute_unprepared(&sql).await.unwrap();
}

#[tokio::test]
async fn jobs_run_by_hand_on_schedule_and_after_downtime() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let admin_token = token(&db, Role::Admin).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        enable_welcome(&runtime, &welcome().0).await;

        let jobs = server
            .gql(&admin_token, "{ pluginJobs(id: \"welcome\") { name schedule missed nextRunAt running } }", json!({}))
            .await;
        let job = &jobs["data"]["pluginJobs"][0];
        assert_eq!(job["name"], "digest", "{name}: {jobs}");
        assert_eq!(job["missed"], "catch-up");
        assert!(job["nextRunAt"].as_str().is_some_and(|t| t.contains("T00:05:00")), "{name}: {job}");

        // By hand over GraphQL: the run is recorded, the job's writes happened.
        let run = "mutation { runPluginJob(id: \"welcome\", job: \"digest\") { id trigger status durationMs error } }";
        let done = server.gql(&admin_token, run, json!({})).await;
        assert_eq!(done["data"]["runPluginJob"]["status"], "succeeded", "{name}: {done}");
        assert_eq!(done["data"]["runPluginJob"]["trigger"], "manual");
        assert_eq!(db.count_rows("p_welcome_welcome_digest").await, 1, "{name}");
        let agent = token(&db, Role::Agent).await;
        assert_eq!(code(&server.gql(&agent, run, json!({})).await), "FORBIDDEN");
        let unknown = server
            .gql(&admin_token, "mutation { runPluginJob(id: \"welcome\", job: \"nope\") { id } }", json!({}))
            .await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT", "{name}: {unknown}");

        // While another process holds the job's lease, a second run is refused.
        let now = Utc::now();
        assert!(
            kith_core::store::jobs::take(
                db.kith.store.conn(),
                "welcome",
                "digest",
                "elsewhere",
                now,
                now + chrono::TimeDelta::seconds(60),
                None,
            )
            .await
            .unwrap()
        );
        let busy = server.gql(&admin_token, run, json!({})).await;
        assert_eq!(code(&busy), "CONFLICT", "{name}: {busy}");
        kith_core::store::jobs::release(db.kith.store.conn(), "welcome", "digest", "elsewhere", None, None)
            .await
            .unwrap();

        // Missed while no process was up, with `catch-up`: one run, then the next is in the future.
        set_next_run(&db, "welcome", "digest", now - chrono::TimeDelta::hours(30)).await;
        let runs_query = "{ pluginJobRuns(id: \"welcome\", job: \"digest\") { trigger status scheduledFor } }";
        eventually(10, "a catch-up run", || async {
            let runs = server.gql(&admin_token, runs_query, json!({})).await;
            let run = &runs["data"]["pluginJobRuns"][0];
            (run["trigger"] == "catch-up" && run["status"] == "succeeded").then_some(())
        })
        .await;
        // Then the lease is given back and the next run is in the future.
        eventually(10, "the lease to be released", || async {
            let states = kith_core::store::jobs::list(db.kith.store.conn(), "welcome").await.unwrap();
            (states[0].lease_until.is_none() && states[0].next_run_at.is_some_and(|at| at > Utc::now())).then_some(())
        })
        .await;
        let runs = server.gql(&admin_token, runs_query, json!({})).await;
        assert_eq!(runs["data"]["pluginJobRuns"].as_array().unwrap().len(), 2, "{name}: {runs}");

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn missed_runs_are_skipped_and_due_runs_run_once_across_processes() {
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let skipping = welcome().0.replace("missed = \"catch-up\"", "missed = \"skip\"");
    let first = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    enable_welcome(&first, &skipping).await;
    let second = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    second.refresh().await.unwrap();
    assert!(second.loaded("welcome").is_some());

    set_next_run(&db, "welcome", "digest", Utc::now() - chrono::TimeDelta::hours(3)).await;
    let skipped = eventually(10, "a skipped run", || async {
        let runs = kith_core::store::jobs::runs(db.kith.store.conn(), "welcome", None, 10).await.unwrap();
        runs.into_iter().next()
    })
    .await;
    assert_eq!((skipped.status.as_str(), skipped.trigger.as_str()), ("skipped", "schedule"));
    assert_eq!(db.count_rows("p_welcome_welcome_digest").await, 0, "a skipped run runs nothing");

    // Due now: exactly one of the two processes runs it.
    let due = Utc::now() - chrono::TimeDelta::seconds(1);
    set_next_run(&db, "welcome", "digest", due).await;
    eventually(10, "a scheduled run", || async {
        let runs = kith_core::store::jobs::runs(db.kith.store.conn(), "welcome", None, 10).await.unwrap();
        runs.iter().any(|r| r.status == "succeeded").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let runs = kith_core::store::jobs::runs(db.kith.store.conn(), "welcome", None, 10).await.unwrap();
    let scheduled: Vec<_> = runs.iter().filter(|r| r.trigger == "schedule" && r.status != "skipped").collect();
    assert_eq!(scheduled.len(), 1, "{runs:?}");
    assert_eq!(db.count_rows("p_welcome_welcome_digest").await, 1);
    first.stop().await;
    second.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn the_cli_lists_and_runs_jobs() {
    let db = TestDb::sqlite().await;
    {
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        enable_welcome(&runtime, &welcome().0).await;
        runtime.stop().await;
    }
    let cache = vec![("KITH_PLUGINS__CACHE_DIR".to_owned(), plugins_config().cache_dir)];
    let cli = |args: &'static [&'static str]| run_cli_env(&db.url, args, "", cache.clone());
    let listed = cli(&["plugin", "jobs", "welcome"]).await.unwrap();
    assert!(listed.stdout.starts_with("digest\t5 0 * * *\tnext "), "{}", listed.stdout);
    let ran = cli(&["plugin", "run-job", "welcome", "digest"]).await.unwrap();
    assert!(ran.stdout.contains("\tsucceeded\t"), "{}", ran.stdout);
    assert_eq!(db.count_rows("p_welcome_welcome_digest").await, 1);
    let runs = cli(&["plugin", "jobs", "welcome", "--runs"]).await.unwrap();
    assert!(runs.stdout.contains("\tdigest\tmanual\tsucceeded\t"), "{}", runs.stdout);
    let err = cli(&["plugin", "run-job", "welcome", "nope"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("no job `nope`"), "{err:#}");
    db.cleanup().await;
}
