//! Helpers shared by the test modules: a Kith server on loopback with its tokens and raw HTTP
//! exchanges, the `kith` CLI run in-process, the plugins' test configuration, polling, and
//! query plans. A helper used by one module only stays in that module.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kith_core::config::{ApiConfig, PluginsConfig, ServerConfig};
use kith_core::domain::actor::{Actor, Role};
use kith_core::http::{AppState, app, serve};
use kith_core::service::users;
use kith_tests::TestDb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Kith HTTP server over a test database, on a loopback port of its own.
pub(crate) struct Server {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// With the default API settings.
    pub(crate) async fn start(db: &TestDb) -> Server {
        Server::start_with(db, ApiConfig::default()).await
    }

    /// With the default API settings and a body cap of `max_body_bytes`.
    pub(crate) async fn start_with_body(db: &TestDb, max_body_bytes: usize) -> Server {
        Server::start_full(db, ApiConfig::default(), max_body_bytes).await
    }

    /// With these API settings (and a body cap of 64 KiB).
    pub(crate) async fn start_with(db: &TestDb, api: ApiConfig) -> Server {
        Server::start_full(db, api, 64 * 1024).await
    }

    async fn start_full(db: &TestDb, api: ApiConfig, max_body_bytes: usize) -> Server {
        let state = AppState::new(db.kith.clone(), &api).unwrap();
        Server::start_router(app(state, &ServerConfig { max_body_bytes, ..ServerConfig::default() })).await
    }

    /// Serving `router` (from [`app`], or any other).
    pub(crate) async fn start_router(router: axum::Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Server { addr, stop: Some(stop), task }
    }

    /// Shuts it down gracefully and waits until it has.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }

    /// Sends a raw `POST /graphql` of `content_type` and returns (status, body).
    pub(crate) async fn post(&self, content_type: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let reply = exchange_as(self.addr, "POST", "/graphql", content_type, token, b"", body).await;
        (reply.status, reply.body)
    }

    /// Runs a GraphQL operation with `token` and returns its answer (status 200 expected).
    pub(crate) async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = json!({"query": query, "variables": variables}).to_string();
        let (status, body) = self.post("application/json", Some(token), &body).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

/// A new API token of `role` (named after it): its secret.
pub(crate) async fn token(db: &TestDb, role: Role) -> String {
    let tx = db.kith.store.begin(&Actor::system("test")).await.unwrap();
    let (_, secret) = users::create_token(&tx, &format!("{role}"), role, None, None).await.unwrap();
    tx.commit().await.unwrap();
    secret
}

/// The first error's `extensions.code` in a GraphQL answer (`none` without one).
pub(crate) fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

/// The actor tests act as outside any request: the system, which may do everything.
pub(crate) fn admin() -> Actor {
    Actor::system("test")
}

/// What a raw HTTP exchange answered.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The header lines, lower case.
    pub(crate) head: String,
    /// The body.
    pub(crate) body: String,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The first error's `extensions.code` (`none` without one).
    pub(crate) fn code(&self) -> String {
        self.json()["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned()
    }

    /// Whether the answer is a stored one replayed for an `Idempotency-Key`.
    pub(crate) fn replayed(&self) -> bool {
        self.head.contains("\r\nidempotent-replayed: true")
    }
}

/// Sends one JSON request (`Connection: close`) with the bearer `token`, the `extra` header
/// bytes as they are (each line ending in `\r\n`) and `body`, and reads the whole answer.
pub(crate) async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[u8],
    body: &str,
) -> Reply {
    exchange_as(addr, method, path, "application/json", token, extra, body).await
}

/// [`exchange`] with a body of `content_type`.
pub(crate) async fn exchange_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    token: Option<&str>,
    extra: &[u8],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{auth}").into_bytes();
    request.extend_from_slice(extra);
    request.extend_from_slice(format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    stream.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    // The test's own backstop, far above every limit under test.
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut out))
        .await
        .expect("an answer within a minute")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    Reply { status, head: head.to_ascii_lowercase(), body }
}

/// Polls `check` until it returns `Some`, for at most `secs` seconds.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The plugin runtime's settings for tests: a shared compile cache, no bundled plugins, and
/// retries, suspensions and polls fast enough to watch.
pub(crate) fn plugins_config() -> PluginsConfig {
    PluginsConfig {
        cache_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugin-cache-test").into(),
        install_bundled: false,
        suspend_after: 3,
        max_attempts: 3,
        retry_base_ms: 20,
        poll_interval_ms: 20,
        ..PluginsConfig::default()
    }
}

/// A plugin runtime over `db` with the bundled `donors` plugin installed, enabled with every
/// grant, and its objects and operations in the registry.
pub(crate) async fn donors_runtime(db: &TestDb) -> std::sync::Arc<kith_core::plugin::manager::PluginManager> {
    let runtime = kith_core::plugin::start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let donors = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "donors").unwrap();
    runtime.install(&admin(), donors.manifest, donors.component).await.unwrap();
    runtime.enable(&admin(), "donors", kith_core::plugin::manager::Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    runtime
}

/// A "Grants" pipeline in USD with the stages Ask (20 %), Proposal (50 %), Won and Lost: its id
/// and its stages' ids in that order.
pub(crate) async fn grants_pipeline(db: &TestDb) -> (String, Vec<String>) {
    let pipeline = db.create("pipeline", json!({"name": "Grants", "currency": "USD"})).await.unwrap().id().to_string();
    let mut stages = Vec::new();
    for (position, (stage, probability, kind)) in
        [("Ask", 20, "OPEN"), ("Proposal", 50, "OPEN"), ("Won", 100, "WON"), ("Lost", 0, "LOST")]
            .into_iter()
            .enumerate()
    {
        let stage = json!({"pipelineId": pipeline, "name": stage, "position": position, "probability": probability, "kind": kind});
        stages.push(db.create("stage", stage).await.unwrap().id().to_string());
    }
    (pipeline, stages)
}

/// The bundled welcome plugin: (manifest, component).
pub(crate) fn welcome() -> (String, Vec<u8>) {
    let b = kith_core::plugin::bundled::BUNDLED[0];
    (b.manifest.to_owned(), b.component.to_vec())
}

/// The hostile test plugin under another `id`: (manifest, component).
pub(crate) fn hostile(id: &str) -> (String, Vec<u8>) {
    let manifest =
        include_str!("../plugins/hostile/plugin.toml").replace("id = \"hostile\"", &format!("id = \"{id}\""));
    let wasm =
        std::fs::read(concat!(env!("TEST_PLUGINS_DIR"), "/kith_test_plugin_hostile.wasm")).expect("hostile.wasm");
    (manifest, wasm)
}

/// What a CLI run printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `kith --database URL ARGS...` with `stdin`.
pub(crate) async fn run_cli(url: &str, args: &[&str], stdin: &str) -> anyhow::Result<Output> {
    run_cli_env(url, args, stdin, Vec::new()).await
}

/// [`run_cli`] with only the environment given.
pub(crate) async fn run_cli_env(
    url: &str,
    args: &[&str],
    stdin: &str,
    env: Vec<(String, String)>,
) -> anyhow::Result<Output> {
    let mut argv = vec!["kith".to_owned(), "--database".to_owned(), url.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let io = kith_core::cli::Io { stdin: &mut input, stdout: &mut stdout, stderr: &mut stderr };
    kith_core::cli::run(argv.into_iter().map(Into::into), env, io).await?;
    Ok(Output { stdout: String::from_utf8(stdout)?, stderr: String::from_utf8(stderr)? })
}

/// What a run of the `kith` binary's entry point did: its exit status, and what it printed
/// (errors included, as the binary prints them).
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: u8,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `kith ARGS...` through `kith_core::cli::main`, the binary's own entry point, with only
/// the environment given.
pub(crate) async fn run_kith(args: &[&str], env: Vec<(String, String)>) -> Finished {
    let argv = std::iter::once("kith").chain(args.iter().copied()).map(std::ffi::OsString::from);
    let mut input = std::io::Cursor::new(Vec::new());
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let io = kith_core::cli::Io { stdin: &mut input, stdout: &mut stdout, stderr: &mut stderr };
    let status = kith_core::cli::main(argv, env, io).await;
    Finished { status, stdout: String::from_utf8(stdout).unwrap(), stderr: String::from_utf8(stderr).unwrap() }
}

/// The query plan of `statement`: SQLite's `EXPLAIN QUERY PLAN`, or PostgreSQL's `EXPLAIN` with
/// scans and sorts priced out (an empty table plans as a scan; this says what the indexes can
/// do).
pub(crate) async fn query_plan(db: &TestDb, statement: &sea_orm::Statement) -> Vec<String> {
    query_plan_with(db, statement, &["enable_seqscan = off", "enable_sort = off", "enable_bitmapscan = off"]).await
}

/// [`query_plan`], with these PostgreSQL `settings` (`name = value`) for the `EXPLAIN`.
pub(crate) async fn query_plan_with(db: &TestDb, statement: &sea_orm::Statement, settings: &[&str]) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let conn = db.kith.store.conn();
    let backend = conn.get_database_backend();
    let values = statement.values.clone().map(|v| v.0).unwrap_or_default();
    if backend == sea_orm::DbBackend::Sqlite {
        let explain = Statement::from_sql_and_values(backend, format!("EXPLAIN QUERY PLAN {}", statement.sql), values);
        let rows = conn.query_all_raw(explain).await.unwrap();
        rows.iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect()
    } else {
        // In a transaction, so the settings end with it.
        let tx = db.kith.store.begin(&Actor::system("test")).await.unwrap();
        for setting in settings {
            tx.conn().execute_unprepared(&format!("SET LOCAL {setting}")).await.unwrap();
        }
        let explain = Statement::from_sql_and_values(backend, format!("EXPLAIN {}", statement.sql), values);
        let rows = tx.conn().query_all_raw(explain).await.unwrap();
        let plan = rows.iter().map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap()).collect();
        tx.rollback().await.unwrap();
        plan
    }
}

/// A README's guide, between `<!-- guide: start -->` and `<!-- guide: end -->`: its `sh` blocks
/// as one bash script (with `set -euo pipefail`), and the lines its `text` blocks say it prints.
pub(crate) fn guide(readme: &str) -> (String, Vec<String>) {
    let start = readme.find("<!-- guide: start -->").expect("the guide's start marker");
    let end = readme.find("<!-- guide: end -->").expect("the guide's end marker");
    let guide = &readme[start..end];
    let block = |tag: &str| -> Vec<String> {
        let fence = format!("```{tag}\n");
        guide.split(&fence).skip(1).map(|rest| rest.split("```").next().unwrap_or_default().to_owned()).collect()
    };
    let script = format!("set -euo pipefail\n{}", block("sh").join("\n"));
    let expected = block("text").iter().flat_map(|b| b.lines().map(str::to_owned)).collect();
    (script, expected)
}

/// The tools of `tools` not on the `PATH`.
pub(crate) fn missing_tools<'a>(tools: &[&'a str]) -> Vec<&'a str> {
    tools
        .iter()
        .copied()
        .filter(|tool| {
            !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool} > /dev/null")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}

/// Fails unless `stdout` holds each line of `expected`, in order (`…` standing for anything).
pub(crate) fn assert_prints(stdout: &str, stderr: &str, expected: &[String], what: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut at = 0;
    for want in expected {
        let matches = |line: &str| match want.split_once('…') {
            Some((head, tail)) => line.starts_with(head) && line.ends_with(tail),
            None => line == want,
        };
        match lines[at..].iter().position(|line| matches(line)) {
            Some(found) => at += found + 1,
            None => panic!("{what}: the guide did not print `{want}` (after line {at}):\n{stdout}\n{stderr}"),
        }
    }
}
