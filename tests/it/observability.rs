//! What operators see of a running Kith: `/metrics` (requests by operation and outcome with
//! latency buckets, GraphQL errors by code, plugin calls, group commits, pools, outbox lag),
//! where it is served (main listener with an ADMIN token, a separate bind, or not at all), the
//! access log of every request and OpenTelemetry traces exported over OTLP/HTTP to a receiver
//! on loopback, the last two from `kith serve` run as a child process of its own.
//!
//! The metrics recorder is one per process and every server of this test binary records into
//! it, so assertions compare a scrape before with a scrape after, on series only this test
//! makes (its own operation names).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_core::config::{ApiConfig, MetricsConfig, ServerConfig};
use kith_core::domain::actor::Role;
use kith_core::http::metrics::Exporter;
use kith_core::http::{AppState, app};
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_tests::TestDb;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use crate::util::{Server, admin, eventually, exchange, plugins_config, token, welcome};

/// The sum of the samples of `name` whose labels include every one of `labels`.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Whether `text` has a sample of `name` with `labels`.
fn has(text: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    text.lines().any(|line| {
        let series = line.rsplit_once(' ').map_or("", |(s, _)| s);
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
    })
}

pub(crate) async fn scrape(server: &Server, token: Option<&str>) -> (u16, String) {
    let reply = exchange(server.addr, "GET", "/metrics", token, b"", "").await;
    (reply.status, reply.body)
}

pub(crate) fn metrics_on_main() -> MetricsConfig {
    MetricsConfig { enabled: true, ..MetricsConfig::default() }
}

#[tokio::test]
async fn metrics_show_requests_errors_plugin_calls_group_commits_pools_and_outbox_lag() {
    for db in TestDb::all().await {
        let state = AppState::new(db.kith.clone(), &ApiConfig::default())
            .unwrap()
            .with_metrics(Exporter::new(&metrics_on_main()).unwrap());
        let server = Server::start_router(app(state, &ServerConfig::default())).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = welcome();
        runtime.install(&admin(), &manifest, &wasm).await.unwrap();
        runtime.enable(&admin(), "welcome", Grants::All).await.unwrap();
        let admin_token = token(&db, Role::Admin).await;
        let agent = token(&db, Role::Agent).await;

        // On the main listener, only an ADMIN's token reads it.
        assert_eq!(scrape(&server, None).await.0, 401, "{}", db.name);
        assert_eq!(scrape(&server, Some(&agent)).await.0, 403, "{}", db.name);
        let (status, before) = scrape(&server, Some(&admin_token)).await;
        assert_eq!(status, 200, "{}: {before}", db.name);

        let create = json!({
            "query": "mutation ObservedCreate { createContact(input: {firstName: \"Ada\"}) { id } }",
            "operationName": "ObservedCreate",
        });
        let created = exchange(server.addr, "POST", "/graphql", Some(&agent), b"", &create.to_string()).await;
        assert_eq!(created.status, 200, "{}: {}", db.name, created.body);
        assert!(created.json()["data"]["createContact"]["id"].is_string(), "{}: {}", db.name, created.body);
        let invalid = json!({
            "query": "mutation ObservedInvalid { createContact(input: {firstName: \"X\", email: \"nope\"}) { id } }",
            "operationName": "ObservedInvalid",
        });
        let refused = exchange(server.addr, "POST", "/graphql", Some(&agent), b"", &invalid.to_string()).await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{}: {}", db.name, refused.body);
        let anonymous = exchange(server.addr, "POST", "/graphql", None, b"", &create.to_string()).await;
        assert_eq!(anonymous.status, 401, "{}: {}", db.name, anonymous.body);

        let (_, after) = scrape(&server, Some(&admin_token)).await;
        let delta = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
        let ok = [("route", "/graphql"), ("operation", "ObservedCreate"), ("outcome", "ok")];
        assert_eq!(delta("kith_http_requests_total", &ok), 1.0, "{}: {after}", db.name);
        assert_eq!(delta("kith_http_request_duration_seconds_count", &ok), 1.0, "{}: {after}", db.name);
        assert!(
            has(&after, "kith_http_request_duration_seconds_bucket", &[ok[0], ok[1], ok[2], ("le", "0.005")]),
            "latency buckets: {after}"
        );
        let failed = [("route", "/graphql"), ("operation", "ObservedInvalid"), ("outcome", "error")];
        assert_eq!(delta("kith_http_requests_total", &failed), 1.0, "{}: {after}", db.name);
        let unauthenticated = [("operation", "ObservedCreate"), ("outcome", "client_error")];
        assert_eq!(delta("kith_http_requests_total", &unauthenticated), 1.0, "{}: {after}", db.name);
        assert!(delta("kith_graphql_errors_total", &[("code", "BAD_USER_INPUT")]) >= 1.0, "{}: {after}", db.name);
        assert!(delta("kith_graphql_errors_total", &[("code", "UNAUTHENTICATED")]) >= 1.0, "{}: {after}", db.name);
        // The welcome plugin's `before-write` ran for the contact.
        let hook = [("plugin", "welcome"), ("export", "before-write"), ("outcome", "ok")];
        assert!(delta("kith_plugin_calls_total", &hook) >= 1.0, "{}: {after}", db.name);
        assert!(
            has(
                &after,
                "kith_plugin_call_duration_seconds_bucket",
                &[("plugin", "welcome"), ("export", "before-write")]
            ),
            "{after}"
        );
        assert!(delta("kith_group_commit_size_count", &[]) >= 1.0, "{}: {after}", db.name);
        assert!(has(&after, "kith_group_commit_size_bucket", &[("le", "1")]), "{after}");
        let max = sample(&after, "kith_db_pool_connections", &[("pool", "transactions"), ("state", "max")]);
        assert!(max >= 1.0, "{}: {after}", db.name);
        assert!(has(&after, "kith_outbox_lag_seconds", &[("plugin", "welcome")]), "{}: {after}", db.name);
        assert!(has(&after, "kith_outbox_pending_events", &[("plugin", "welcome")]), "{}: {after}", db.name);
        assert!(after.contains("# HELP kith_http_requests_total "), "described: {after}");

        // Once the welcome event is delivered, nothing is pending for it.
        eventually(20, "the outbox lag back to 0", || async {
            let (_, text) = scrape(&server, Some(&admin_token)).await;
            (sample(&text, "kith_outbox_pending_events", &[("plugin", "welcome")]) == 0.0
                && sample(&text, "kith_outbox_lag_seconds", &[("plugin", "welcome")]) == 0.0)
                .then_some(())
        })
        .await;
        let (_, jobs) = scrape(&server, Some(&admin_token)).await;
        assert!(
            sample(
                &jobs,
                "kith_plugin_calls_total",
                &[("plugin", "welcome"), ("export", "on-event"), ("outcome", "ok")]
            ) >= 1.0,
            "{}: {jobs}",
            db.name
        );
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn metrics_on_a_separate_bind_are_only_there_and_off_means_404() {
    let db = TestDb::sqlite().await;
    // Off (the default): nothing at /metrics.
    let off = Server::start(&db).await;
    assert_eq!(scrape(&off, None).await.0, 404);
    off.stop().await;

    let config = MetricsConfig { enabled: true, bind: "127.0.0.1:0".into(), require_token: true };
    let state =
        AppState::new(db.kith.clone(), &ApiConfig::default()).unwrap().with_metrics(Exporter::new(&config).unwrap());
    let main = Server::start_router(app(state.clone(), &ServerConfig::default())).await;
    let separate = Server::start_router(kith_core::http::metrics::router(state)).await;
    let admin_token = token(&db, Role::Admin).await;
    assert_eq!(scrape(&main, Some(&admin_token)).await.0, 404, "the main listener does not serve it");
    let health = exchange(main.addr, "GET", "/healthz", None, b"", "").await;
    assert_eq!(health.status, 200);
    // No token on the separate listener; it shows the main listener's requests.
    let (status, text) = scrape(&separate, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(sample(&text, "kith_http_requests_total", &[("route", "/healthz"), ("outcome", "ok")]) >= 1.0, "{text}");
    assert!(
        sample(&text, "kith_http_requests_total", &[("route", "unmatched"), ("outcome", "client_error")]) >= 1.0,
        "the 404 of /metrics on the main listener: {text}"
    );
    let other = exchange(separate.addr, "GET", "/graphql", None, b"", "").await;
    assert_eq!(other.status, 404, "only /metrics there");
    main.stop().await;
    separate.stop().await;
    db.cleanup().await;
}

/// Spans received by a loopback OTLP/HTTP receiver.
type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver on loopback: `POST /v1/traces` with an `ExportTraceServiceRequest` in
/// protobuf.
async fn otlp_receiver() -> (std::net::SocketAddr, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                };
                let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
                sink.lock().unwrap().extend(spans);
                (axum::http::StatusCode::OK, Vec::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

/// `kith serve` as a child process with `env`, its standard error collected line by line; its
/// address once it listens.
pub(crate) async fn spawn_serve(
    url: &str,
    env: &[(&str, String)],
) -> (tokio::process::Child, std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kith-child"));
    command
        .args(["--database", url, "serve", "--bind", "127.0.0.1:0"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let collected = lines.clone();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            collected.lock().unwrap().push(line);
        }
    });
    let addr = eventually(60, "kith serve to listen", || async {
        lines.lock().unwrap().iter().find_map(|line| {
            let json: Value = serde_json::from_str(line).ok()?;
            (json["fields"]["message"] == "kith is listening")
                .then(|| json["fields"]["address"].as_str().and_then(|a| a.parse().ok()))
                .flatten()
        })
    })
    .await;
    (child, addr, lines)
}

/// The access-log lines (JSON) collected so far.
fn access_lines(lines: &Mutex<Vec<String>>) -> Vec<Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|json| json["target"] == "kith::access")
        .map(|json| json["fields"].clone())
        .collect()
}

#[tokio::test]
async fn kith_serve_logs_every_request_and_exports_its_traces() {
    for db in TestDb::all().await {
        let (receiver, received) = otlp_receiver().await;
        let agent = token(&db, Role::Agent).await;
        let cache = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugin-cache-test").to_owned();
        let env = [
            ("KITH_LOG_FORMAT", "json".to_owned()),
            ("KITH_TRACING_OTLP_ENDPOINT", format!("http://{receiver}")),
            ("KITH_PLUGINS_ENABLE_BUNDLED", "true".to_owned()),
            ("KITH_PLUGINS_CACHE_DIR", cache),
        ];
        let (child, addr, lines) = spawn_serve(&db.url, &env).await;

        // A 401, a console page and a traced GraphQL request, each with its access-log line.
        let anonymous =
            exchange(addr, "POST", "/graphql", None, b"", r#"{"query":"{ contacts { totalCount } }"}"#).await;
        assert_eq!(anonymous.status, 401, "{}: {}", db.name, anonymous.body);
        let login = exchange(addr, "GET", "/login", None, b"x-request-id: observed-login\r\n", "").await;
        // Without a user yet, the console sends a visitor to set up the first administrator.
        assert!(matches!(login.status, 200 | 303), "{}: {}", db.name, login.status);
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let parent_id = "00f067aa0ba902b7";
        let traceparent = format!("traceparent: 00-{trace_id}-{parent_id}-01\r\nx-request-id: observed-create\r\n");
        let create = json!({
            "query": "mutation TracedCreate { createContact(input: {firstName: \"Grace\"}) { id } }",
            "operationName": "TracedCreate",
        });
        let created =
            exchange(addr, "POST", "/graphql", Some(&agent), traceparent.as_bytes(), &create.to_string()).await;
        assert_eq!(created.status, 200, "{}: {}", db.name, created.body);
        assert!(created.json()["data"]["createContact"]["id"].is_string(), "{}: {}", db.name, created.body);

        let logged = eventually(20, "three access-log lines", || async {
            let lines = access_lines(&lines);
            (lines.len() >= 3).then_some(lines)
        })
        .await;
        let refused = logged.iter().find(|l| l["status"] == 401).unwrap_or_else(|| panic!("a 401 line: {logged:?}"));
        assert_eq!(refused["method"], "POST");
        assert_eq!(refused["path"], "/graphql");
        assert_eq!(refused["operation"], "anonymous");
        assert_eq!(refused["actor"], "-");
        assert_ne!(refused["request_id"], "-", "{refused}");
        assert!(refused["duration_ms"].as_f64().is_some(), "{refused}");
        let page = logged.iter().find(|l| l["request_id"] == "observed-login").unwrap_or_else(|| panic!("{logged:?}"));
        assert_eq!(
            (page["method"].as_str(), page["path"].as_str(), page["status"].as_u64()),
            (Some("GET"), Some("/login"), Some(u64::from(login.status)))
        );
        let traced =
            logged.iter().find(|l| l["request_id"] == "observed-create").unwrap_or_else(|| panic!("{logged:?}"));
        assert_eq!(traced["operation"], "TracedCreate", "{traced}");
        assert_eq!(traced["status"], 200, "{traced}");
        let actor = traced["actor"].as_str().unwrap_or("-");
        assert!(actor != "-" && uuid::Uuid::parse_str(actor).is_ok(), "the agent's token: {traced}");

        // SIGTERM: the server stops gracefully and sends the spans it still holds.
        let pid = child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let mut child = child;
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops").unwrap();
        assert!(status.success(), "{}: {status}: {:?}", db.name, lines.lock().unwrap());

        let spans = eventually(20, "the request and plugin spans", || async {
            let spans = received.lock().unwrap().clone();
            let request = spans.iter().find(|s| hex(&s.trace_id) == trace_id && hex(&s.parent_span_id) == parent_id)?;
            let plugin = spans.iter().find(|s| s.name == "plugin_call" && hex(&s.trace_id) == trace_id)?;
            Some((request.clone(), plugin.clone()))
        })
        .await;
        let (request, plugin) = spans;
        assert_eq!(request.name, "POST /graphql", "{request:?}");
        assert_eq!(attribute(&request, "operation").as_deref(), Some("TracedCreate"), "{request:?}");
        assert_eq!(attribute(&request, "request_id").as_deref(), Some("observed-create"), "{request:?}");
        assert_eq!(attribute(&plugin, "plugin").as_deref(), Some("welcome"), "{plugin:?}");
        assert_eq!(attribute(&plugin, "export").as_deref(), Some("before-write"), "{plugin:?}");
        // The plugin call is inside the request (through the group commit's task).
        let all = received.lock().unwrap().clone();
        let mut parent = plugin.parent_span_id.clone();
        let mut depth = 0;
        while parent != request.span_id && depth < 16 {
            let Some(up) = all.iter().find(|s| s.span_id == parent) else { break };
            parent = up.parent_span_id.clone();
            depth += 1;
        }
        assert_eq!(parent, request.span_id, "the plugin span descends from the request span: {all:?}");
        db.cleanup().await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_readme_lists_every_metric() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let missing: Vec<&str> = kith_core::telemetry::METRICS
        .iter()
        .map(|(name, ..)| *name)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "README lacks {missing:?}");
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana-kith.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    let exprs = dashboard.to_string();
    for name in [
        "kith_http_requests_total",
        "kith_http_request_duration_seconds_bucket",
        "kith_graphql_errors_total",
        "kith_outbox_lag_seconds",
    ] {
        assert!(exprs.contains(name), "the Grafana dashboard charts {name}");
    }
}
