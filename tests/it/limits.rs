//! What the GraphQL API refuses to spend: the per-token rate limit, depth, complexity (reports
//! and lists cost what they return, counted before anything runs), page size, introspection and
//! suggestions, and the request's time limit.

use std::time::Duration;

use kith_core::config::ApiConfig;
use kith_core::domain::actor::{Actor, Role};
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Server, code, token};

#[tokio::test]
async fn requests_over_the_per_token_budget_are_rate_limited() {
    let db = TestDb::sqlite().await;
    let server = Server::start_with(&db, ApiConfig { rate_limit_per_minute: 3, ..ApiConfig::default() }).await;
    let limited = token(&db, Role::Viewer).await;
    let other = token(&db, Role::Viewer).await;
    let body = json!({"query": "{ contacts { totalCount } }"}).to_string();
    for _ in 0..3 {
        assert_eq!(server.post("application/json", Some(&limited), &body).await.0, 200);
    }
    let (status, reply) = server.post("application/json", Some(&limited), &body).await;
    assert_eq!(status, 429, "{reply}");
    assert_eq!(code(&serde_json::from_str(&reply).unwrap()), "RATE_LIMITED");
    assert_eq!(server.post("application/json", Some(&other), &body).await.0, 200, "budgets are per token");
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn depth_complexity_page_size_and_introspection_limits() {
    let db = TestDb::sqlite().await;
    let api = ApiConfig {
        max_depth: 5,
        max_complexity: 60,
        max_page_size: 20,
        introspection: false,
        suggestions: false,
        ..ApiConfig::default()
    };
    let server = Server::start_with(&db, api).await;
    let viewer = token(&db, Role::Viewer).await;
    let deep = server
        .gql(&viewer, "{ contacts { edges { node { company { contacts { edges { node { id } } } } } } } }", json!({}))
        .await;
    assert!(deep["errors"][0]["message"].as_str().unwrap_or_default().contains("too deep"), "{deep}");
    let wide = server.gql(&viewer, "{ a: contacts { totalCount } b: contacts { totalCount } c: contacts { totalCount } d: companies { totalCount } e: deals { totalCount } f: tickets { totalCount } g: activities { totalCount } h: stages { totalCount } i: pipelines { totalCount } j: segments { totalCount } k: users { totalCount } l: contacts { totalCount } m: contacts { totalCount } n: contacts { totalCount } o: contacts { totalCount } p: contacts { totalCount } q: contacts { totalCount } r: contacts { totalCount } s: contacts { totalCount } t: contacts { totalCount } u: contacts { totalCount } v: contacts { totalCount } w: contacts { totalCount } x: contacts { totalCount } y: contacts { totalCount } z: contacts { totalCount } aa: contacts { totalCount } ab: contacts { totalCount } ac: contacts { totalCount } ad: contacts { totalCount } ae: contacts { totalCount } }", json!({})).await;
    assert!(wide["errors"][0]["message"].as_str().unwrap_or_default().contains("complex"), "{wide}");
    assert_eq!(code(&wide), "QUERY_TOO_COMPLEX", "{wide}");
    let big = server.gql(&viewer, "{ contacts(first: 21) { totalCount } }", json!({})).await;
    assert_eq!(code(&big), "BAD_USER_INPUT", "{big}");
    let introspection = server.gql(&viewer, "{ __schema { types { name } } }", json!({})).await;
    assert!(introspection["data"].is_null() || introspection["errors"].is_array(), "{introspection}");
    assert!(
        introspection.to_string().contains("introspection") || introspection["data"]["__schema"].is_null(),
        "{introspection}"
    );
    let typo = server.gql(&viewer, "{ contactz { totalCount } }", json!({})).await;
    assert!(!typo.to_string().contains("Did you mean"), "no suggestions: {typo}");
    server.stop().await;
    db.cleanup().await;
}

/// Issue 21: 1,000 aliases of a long daily growth report used to count 2,000 (async-graphql
/// counts each field once) and ran for seconds; now each costs its points, and the request is
/// refused before any resolver runs.
#[tokio::test]
async fn many_long_growth_reports_are_refused_before_running_and_one_still_answers() {
    for db in TestDb::all().await {
        let server = Server::start_with_body(&db, 1 << 20).await;
        let manager = token(&db, Role::Manager).await;
        for name in ["A", "B", "C"] {
            db.create("contact", json!({"firstName": name})).await.unwrap();
        }
        let to = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
        let range = json!({"f": (to - chrono::Duration::days(999)).to_string(), "t": to.to_string()});
        let aliases = |n: usize, fields: &str| {
            let body: String = (0..n)
                .map(|i| format!("a{i}: contactGrowth(from: $f, to: $t, interval: DAY) {{ {fields} }} "))
                .collect();
            format!("query($f: Date!, $t: Date!) {{ {body}}}")
        };
        let refused = server.gql(&manager, &aliases(1000, "newContacts"), range.clone()).await;
        assert_eq!(code(&refused), "QUERY_TOO_COMPLEX", "{}: {refused}", db.name);
        assert!(refused["data"].is_null(), "{}: nothing ran: {refused}", db.name);
        assert_eq!(refused["errors"].as_array().map(Vec::len), Some(1), "{}: one error, not one per alias", db.name);
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("limit of 2000") && message.contains("`a0: contactGrowth` alone costs 1049 (999 items)"),
            "{}: {message}",
            db.name
        );
        // Ranges over the cap are refused by each resolver before reading: they still cost
        // their base, so a thousand of them are refused whole too.
        let over_cap = json!({"f": "2020-01-01", "t": "2030-01-01"});
        let refused = server.gql(&manager, &aliases(1000, "newContacts"), over_cap).await;
        assert_eq!(code(&refused), "QUERY_TOO_COMPLEX", "{}: {refused}", db.name);

        let one = server.gql(&manager, &aliases(1, "periodStart newContacts totalContacts"), range).await;
        let points = one["data"]["a0"].as_array().unwrap_or_else(|| panic!("{}: {one}", db.name));
        assert_eq!(points.len(), 999, "{}", db.name);
        assert_eq!(points.iter().map(|p| p["newContacts"].as_i64().unwrap_or(0)).sum::<i64>(), 3);
        assert_eq!(points[998]["totalContacts"], 3, "{}: {one}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_growth_report_costs_its_range() {
    let db = TestDb::sqlite().await;
    let server = Server::start_with(&db, ApiConfig { max_complexity: 500, ..ApiConfig::default() }).await;
    let manager = token(&db, Role::Manager).await;
    let q = "query($f: Date!, $t: Date!, $i: GrowthInterval!) { contactGrowth(from: $f, to: $t, interval: $i) { periodStart newContacts } }";
    let growth = |days: i64, interval: &str| json!({"f": "2024-01-01", "t": (chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(days)).to_string(), "i": interval});
    // 600 days: 50 + 600 points, over a limit of 500; 300 days fit, and so do 600 days by week.
    let long = server.gql(&manager, q, growth(600, "DAY")).await;
    assert_eq!(code(&long), "QUERY_TOO_COMPLEX", "{long}");
    assert!(
        long["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`contactGrowth` alone costs 650 (600 items)"),
        "{long}"
    );
    let short = server.gql(&manager, q, growth(300, "DAY")).await;
    assert_eq!(short["data"]["contactGrowth"].as_array().map(Vec::len), Some(300), "{short}");
    let weekly = server.gql(&manager, q, growth(600, "WEEK")).await;
    assert_eq!(weekly["data"]["contactGrowth"].as_array().map(Vec::len), Some(86), "{weekly}");
    // Lists cost their `first`: 500 audit entries are over the limit, 50 fit.
    let audit = |first: i64| format!("{{ auditLog(object: \"contact\", first: {first}) {{ action }} }}");
    assert_eq!(code(&server.gql(&manager, &audit(500), json!({})).await), "QUERY_TOO_COMPLEX");
    let fits = server.gql(&manager, &audit(50), json!({})).await;
    assert!(fits["data"]["auditLog"].is_array(), "{fits}");
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_time_is_stopped_with_timeout_and_writes_nothing() {
    use sea_orm::ConnectionTrait;
    for db in TestDb::all().await {
        let server = Server::start_with(&db, ApiConfig { timeout_ms: 300, ..ApiConfig::default() }).await;
        let agent = token(&db, Role::Agent).await;
        let warm = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(warm["data"]["contacts"]["totalCount"], 0, "{warm}");
        // Something else holds the database: on SQLite the write lock (the mutation cannot
        // start), on PostgreSQL a lock on the contact table that even reads wait for.
        let blocker = db.kith.store.begin(&Actor::system("test")).await.unwrap();
        let sqlite = db.kith.store.backend() == sea_orm::DbBackend::Sqlite;
        let query = if sqlite {
            "mutation { createContact(input: {firstName: \"Late\"}) { id } }"
        } else {
            blocker.conn().execute_unprepared("LOCK TABLE contact IN ACCESS EXCLUSIVE MODE").await.unwrap();
            "{ contacts(filter: {firstName: {eq: \"Late\"}}) { totalCount } }"
        };
        let body = json!({ "query": query }).to_string();
        let (status, reply) = server.post("application/json", Some(&agent), &body).await;
        assert_eq!(status, 504, "{}: {reply}", db.name);
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(code(&reply), "TIMEOUT", "{}: {reply}", db.name);
        assert!(reply["errors"][0]["message"].as_str().unwrap_or_default().contains("300 ms"), "{reply}");
        blocker.rollback().await.unwrap();
        // The stopped mutation never runs, even once the lock is free; the server serves on.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(after["data"]["contacts"]["totalCount"], 0, "{}: {after}", db.name);
        let made =
            server.gql(&agent, "mutation { createContact(input: {firstName: \"Now\"}) { id } }", json!({})).await;
        assert!(made["data"]["createContact"]["id"].is_string(), "{}: {made}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}
