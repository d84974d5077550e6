//! What the clients developers reach for first meet, on both databases: GraphiQL at `GET
//! /graphql`, served from the binary under a strict Content-Security-Policy (its headers over
//! plain HTTP; in a real headless Chromium with the network closed: it renders, keeps a pasted
//! token, runs a query and a subscription with it, and its docs explorer shows the schema's
//! types, with no CSP violation and nothing loaded from elsewhere), `GET /graphql` never
//! running an operation, the switch that turns GraphiQL off, and the live SDL: `GET
//! /graphql/schema.graphql` (a token required, the plugins enabled at run time included) and
//! `kith schema print --live`. The third-party clients themselves (graphql-js, Python `gql`,
//! graphql-codegen, the graphql-http audit) run in `tests/conformance/run`.

use std::io::Write as _;
use std::net::SocketAddr;

use kith_core::config::ApiConfig;
use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use kith_tests::browser::{BrowserError, Chromium};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::util::{Reply, Server, donors_runtime, exchange, run_cli, run_cli_env, token};

/// A raw `GET path` with these header lines (each ending in `\r\n`, `Host` among them).
async fn get(addr: SocketAddr, path: &str, headers: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    Reply { status, head: head.to_ascii_lowercase(), body }
}

/// The value of the header `name` (lower case) in `reply`.
fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.head.lines().find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

/// A browser's navigation to GraphiQL, on `host`.
fn browser_headers(host: &str) -> String {
    format!("Host: {host}\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n")
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary_under_a_strict_policy() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let page = get(server.addr, "/graphql", &browser_headers("kith.example.org:8080")).await;
        assert_eq!(page.status, 200, "{name}: {page:?}");
        assert!(header(&page, "content-type").is_some_and(|t| t.starts_with("text/html")), "{name}: {}", page.head);
        let policy = header(&page, "content-security-policy").unwrap_or_default().to_owned();
        for directive in [
            "default-src 'self'",
            "script-src 'self';",
            "connect-src 'self' ws://kith.example.org:8080 wss://kith.example.org:8080;",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(policy.contains(directive), "{name}: `{directive}` in {policy}");
        }
        let script_src = policy.split(';').find(|d| d.trim().starts_with("script-src")).unwrap_or_default();
        assert!(!script_src.contains("unsafe"), "{name}: {policy}");
        assert_eq!(header(&page, "x-frame-options"), Some("deny"), "{name}");
        assert_eq!(header(&page, "cache-control"), Some("no-store"), "{name}");

        // Every script and stylesheet is Kith's own file; no inline script; no other origin.
        let lower = page.body.to_ascii_lowercase();
        assert!(!lower.contains("http://") && !lower.contains("https://") && !lower.contains("//cdn"), "{name}");
        assert_eq!(lower.matches("<script").count(), lower.matches("<script src=\"/graphiql/").count(), "{name}");
        let files: Vec<&str> =
            page.body.split('"').filter(|part| part.starts_with("/graphiql/") && part.contains("?v=")).collect();
        assert_eq!(files.len(), 6, "{name}: {files:?}");
        for file in files {
            let asset = get(server.addr, file, "Host: x\r\n").await;
            assert_eq!(asset.status, 200, "{name}: {file}");
            let kind = header(&asset, "content-type").unwrap_or_default();
            let expected = if file.contains(".css") { "text/css" } else { "text/javascript" };
            assert!(kind.starts_with(expected), "{name}: {file} is {kind}");
            assert!(header(&asset, "cache-control").is_some_and(|c| c.contains("immutable")), "{name}: {file}");
            assert!(asset.body.len() > 100, "{name}: {file} is empty");
        }
        assert_eq!(get(server.addr, "/graphiql/nothing.js", "Host: x\r\n").await.status, 404, "{name}");

        // A Host that could write into the policy names no WebSocket origin, and adds nothing.
        let odd = get(server.addr, "/graphql", &browser_headers("x; script-src *")).await;
        let odd_policy = header(&odd, "content-security-policy").unwrap_or_default();
        assert!(odd_policy.contains("connect-src 'self';") && !odd_policy.contains('*'), "{name}: {odd_policy}");

        // GET never runs an operation: a client that is not a browser asking for HTML hears
        // 405 with `Allow: POST`; a browser gets the page, and nothing is written.
        let admin = token(&db, Role::Admin).await;
        let mutation = "/graphql?query=mutation%7BcreateContact(input%3A%7BfirstName%3A%22Got%22%7D)%7Bid%7D%7D";
        let auth = format!("Authorization: Bearer {admin}\r\n");
        for accept in ["application/json", "application/graphql-response+json", "*/*"] {
            let refused = get(server.addr, mutation, &format!("Host: x\r\nAccept: {accept}\r\n{auth}")).await;
            assert_eq!(refused.status, 405, "{name}: {accept}: {refused:?}");
            assert_eq!(header(&refused, "allow"), Some("post"), "{name}");
            assert_eq!(refused.code(), "BAD_REQUEST", "{name}: {}", refused.body);
        }
        let page = get(server.addr, mutation, &format!("{}{auth}", browser_headers("x"))).await;
        assert!(page.status == 200 && page.body.contains("id=\"graphiql\""), "{name}: {page:?}");
        let contacts = server.gql(&admin, "{ contacts { edges { node { id } } } }", json!({})).await;
        assert_eq!(contacts["data"]["contacts"]["edges"], json!([]), "{name}: {contacts}");
        server.stop().await;

        // Turned off: every GET /graphql is the 405; POST still answers.
        let server = Server::start_with(&db, ApiConfig { graphiql: false, ..ApiConfig::default() }).await;
        let off = get(server.addr, "/graphql", &browser_headers("x")).await;
        assert_eq!(off.status, 405, "{name}: {off:?}");
        assert!(off.body.contains("api.graphiql"), "{name}: {}", off.body);
        let typename = server.gql(&admin, "{ __typename }", json!({})).await;
        assert_eq!(typename["data"]["__typename"], "Query", "{name}");
        server.stop().await;
    }
}

/// `GET /graphql/schema.graphql` with `token` (none: no header).
async fn sdl(server: &Server, token: Option<&str>) -> Reply {
    exchange(server.addr, "GET", "/graphql/schema.graphql", token, b"", "").await
}

#[tokio::test]
async fn the_live_sdl_needs_a_token_and_follows_the_plugins() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut bodies = Vec::new();
        for (token, message) in [(None, "header is required"), (Some("kith_nonsense"), "invalid, expired or revoked")] {
            let refused = sdl(&server, token).await;
            bodies.push(refused.body.clone());
            assert_eq!(refused.status, 401, "{name}: {refused:?}");
            assert!(header(&refused, "content-type").is_some_and(|t| t.starts_with("application/json")), "{name}");
            assert_eq!(refused.code(), "UNAUTHENTICATED", "{name}");
            assert!(refused.json()["errors"][0]["message"].as_str().unwrap().contains(message), "{name}");
        }
        assert_eq!(bodies[0], bodies[1], "{name}: a missing and a bad token are answered alike");
        // Any role reads it.
        let viewer = token(&db, Role::Viewer).await;
        let before = sdl(&server, Some(&viewer)).await;
        assert_eq!(before.status, 200, "{name}: {before:?}");
        assert_eq!(header(&before, "content-type"), Some("application/graphql; charset=utf-8"), "{name}");
        assert!(before.body.contains("type Query {") && before.body.contains("type Contact {"), "{name}");
        assert!(!before.body.contains("type Donation {"), "{name}");

        // A plugin enabled while the server runs: the next read holds its objects and fields.
        let runtime = donors_runtime(&db).await;
        let after = sdl(&server, Some(&viewer)).await;
        assert_eq!(after.status, 200, "{name}");
        for part in ["type Donation {", "donorSummary: DonorSummary", "createDonation(", "type DonorSummary {"] {
            assert!(after.body.contains(part), "{name}: `{part}` missing from the live SDL");
        }

        // The CLI prints the same schema from the database; the plain print stays the core one.
        let plain = run_cli(&db.url, &["schema", "print"], "").await.unwrap().stdout;
        let live = run_cli(&db.url, &["schema", "print", "--live"], "").await.unwrap().stdout;
        assert_eq!(live, after.body, "{name}: `kith schema print --live` differs from what the server serves");
        assert_ne!(live, plain, "{name}");
        assert!(!plain.contains("type Donation {"), "{name}");
        assert_eq!(plain, before.body, "{name}: the core schema differs from what a server without plugins serves");
        // Into a file, as the plain print can.
        let out = kith_tests::temp_dir().join("live.graphql");
        run_cli(&db.url, &["schema", "print", "--live", "--output", out.to_str().unwrap()], "").await.unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), live, "{name}");
        // A configuration that runs no plugins serves, and prints, the core schema.
        let env = vec![("KITH_PLUGINS__ENABLED".to_owned(), "false".to_owned())];
        let without = run_cli_env(&db.url, &["schema", "print", "--live"], "", env).await.unwrap().stdout;
        assert_eq!(without, plain, "{name}");

        // Disabled again: gone from the next read.
        runtime.disable(&crate::util::admin(), "donors").await.unwrap();
        runtime.refresh().await.unwrap();
        let disabled = sdl(&server, Some(&viewer)).await;
        assert!(!disabled.body.contains("type Donation {"), "{name}");
        runtime.stop().await;
        server.stop().await;

        // With introspection off the schema is not told this way either.
        let server = Server::start_with(&db, ApiConfig { introspection: false, ..ApiConfig::default() }).await;
        let hidden = sdl(&server, Some(&viewer)).await;
        assert_eq!(hidden.status, 403, "{name}: {hidden:?}");
        assert_eq!(hidden.code(), "FORBIDDEN", "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn schema_print_live_needs_an_existing_database() {
    let missing = kith_tests::temp_dir().join("absent.db");
    let url = format!("sqlite://{}", missing.display());
    let err = run_cli(&url, &["schema", "print", "--live"], "").await.unwrap_err().to_string();
    assert!(err.contains("there is no database at"), "{err}");
    assert!(!missing.exists());
}

/// What the GraphiQL walk shares.
struct Walk {
    browser: Chromium,
    base: String,
}

/// `Err(what)` unless `ok`.
fn ensure(ok: bool, what: impl std::fmt::Display) -> Result<(), BrowserError> {
    if ok { Ok(()) } else { Err(BrowserError(what.to_string())) }
}

/// The text of every CodeMirror editor on the page (query, variables, headers, response).
const EDITORS: &str =
    "[...document.querySelectorAll('.CodeMirror')].map(e => e.CodeMirror ? e.CodeMirror.getValue() : '')";

impl Walk {
    /// Whether some editor's text contains `text`.
    async fn editor_shows(&mut self, text: &str) -> Result<bool, BrowserError> {
        let js = format!("{EDITORS}.some(v => v.includes({}))", json!(text));
        Ok(self.browser.eval(&js).await? == true)
    }

    /// Puts `query` (one operation of `kind`: `query`, `subscription`) in the query editor and,
    /// once GraphiQL has parsed it (its editor keeps the operations it found, after a short
    /// debounce), runs it with the execute button.
    async fn run(&mut self, kind: &str, query: &str) -> Result<(), BrowserError> {
        let editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror";
        self.browser.eval(&format!("{editor}.setValue({})", json!(query))).await?;
        self.browser
            .wait_for(&format!(
                "{editor}.getValue() === {q} && {editor}.operations?.length === 1 && {editor}.operations[0].operation === {k}",
                q = json!(query),
                k = json!(kind)
            ))
            .await?;
        self.browser.click(".graphiql-execute-button").await
    }

    /// The response pane's text.
    async fn response(&mut self) -> Result<String, BrowserError> {
        let value = self
            .browser
            .eval("document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? ''")
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }
}

/// The walk: GraphiQL renders offline; a pasted token is kept and goes in the headers; a query
/// runs with it; the docs explorer shows the schema; a subscription streams a change; nothing
/// broke the policy or came from elsewhere.
async fn graphiql_walk(walk: &mut Walk, server: &Server, admin: &str) -> Result<(), BrowserError> {
    // Violations of the policy are collected from the first script on.
    walk.browser
        .call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.__violations = []; document.addEventListener('securitypolicyviolation', \
                   e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"}),
        )
        .await?;
    let base = walk.base.clone();
    walk.browser.goto(&format!("{base}/graphql")).await?;
    walk.browser.wait_for("document.querySelector('.graphiql-container .graphiql-query-editor .CodeMirror')").await?;
    ensure(walk.editor_shows("contacts(first: 5)").await?, "the default query is not in the editor")?;
    ensure(!walk.editor_shows("Bearer").await?, "a token in the headers before one was given")?;

    // The token, pasted once: kept in localStorage, in the header editor.
    walk.browser.type_into("#kith-token-input", admin).await?;
    walk.browser.click("#kith-token button[type=submit]").await?;
    let header_line = format!("\"Authorization\": \"Bearer {admin}\"");
    walk.browser.wait_for(&format!("{EDITORS}.some(v => v.includes({}))", json!(header_line))).await?;
    let kept = walk.browser.eval("localStorage.getItem('kith.graphiql.token')").await?;
    ensure(kept == admin, format!("localStorage holds {kept}"))?;

    // A query with it.
    walk.run("query", "{ contacts(first: 5) { edges { node { firstName lastName } } } }").await?;
    walk.browser
        .wait_for(
            "document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue().includes('Lovelace')",
        )
        .await?;
    let answer: Value = serde_json::from_str(&walk.response().await?).map_err(|e| BrowserError(e.to_string()))?;
    ensure(
        answer["data"]["contacts"]["edges"][0]["node"]["firstName"] == "Ada",
        format!("the query answered {answer}"),
    )?;

    // The docs explorer: the root types, then a type's fields.
    walk.browser.click("button[aria-label='Show Documentation Explorer']").await?;
    walk.browser
        .wait_for("document.querySelector('.graphiql-doc-explorer')?.textContent.includes('Subscription')")
        .await?;
    walk.browser.click(".graphiql-doc-explorer a.graphiql-doc-explorer-type-name").await?;
    walk.browser.wait_for("document.querySelector('.graphiql-doc-explorer')?.textContent.includes('contacts')").await?;
    let docs = walk.browser.eval("document.querySelector('.graphiql-doc-explorer').textContent").await?;
    let docs = docs.as_str().unwrap_or_default().to_owned();
    ensure(docs.contains("ContactConnection"), format!("the docs show {docs}"))?;

    // A subscription over /graphql/ws with the header editor's token: a change made meanwhile
    // arrives in the response pane.
    walk.run("subscription", "subscription { recordChanged(object: \"contact\") { object kind recordId } }").await?;
    // The socket is up once the server answers `connection_ack`; a create before it would be
    // missed, so create until one arrives (each is a distinct contact).
    let mut created = 0;
    loop {
        created += 1;
        let made = server
            .gql(
                admin,
                "mutation($n: String!) { createContact(input: {firstName: $n}) { id } }",
                json!({"n": format!("Grace {created}")}),
            )
            .await;
        ensure(made["errors"].is_null(), format!("creating a contact: {made}"))?;
        let response = walk.response().await?;
        if response.contains("\"recordChanged\"") {
            ensure(response.contains("\"object\": \"contact\""), format!("the subscription answered {response}"))?;
            break;
        }
        ensure(created < 100, format!("no change arrived over the subscription: {response}"))?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Reloaded: the kept token is in the headers again; "Forget" removes it.
    walk.browser.goto(&format!("{base}/graphql?again")).await?;
    walk.browser.wait_for(&format!("{EDITORS}.some(v => v.includes({}))", json!(header_line))).await?;
    walk.browser.click("#kith-token-forget").await?;
    walk.browser.wait_for(&format!("!{EDITORS}.some(v => v.includes('Bearer'))")).await?;
    let kept = walk.browser.eval("localStorage.getItem('kith.graphiql.token')").await?;
    ensure(kept.is_null(), format!("after Forget, localStorage holds {kept}"))?;

    // Nothing broke the policy, and nothing came from another origin.
    let violations = walk.browser.eval("window.__violations").await?;
    ensure(violations == json!([]), format!("Content-Security-Policy violations: {violations}"))?;
    let elsewhere = walk
        .browser
        .eval(&format!(
            "performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith({}))",
            json!(base)
        ))
        .await?;
    ensure(elsewhere == json!([]), format!("loaded from elsewhere: {elsewhere}"))
}

#[tokio::test]
async fn graphiql_runs_offline_in_a_real_browser() {
    for db in TestDb::all().await {
        let Some(browser) = Chromium::launch().await.unwrap() else {
            // In CI a missing browser is a failure: `.ci/run` installs one.
            assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: no Chromium found");
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (Chromium): GraphiQL in a real browser: no Chromium found (install Debian's `chromium`, or set CHROMIUM)"
            );
            return;
        };
        let server = Server::start(&db).await;
        let admin = token(&db, Role::Admin).await;
        let made = server
            .gql(
                &admin,
                "mutation { createContact(input: {firstName: \"Ada\", lastName: \"Lovelace\"}) { id } }",
                json!({}),
            )
            .await;
        assert!(made["errors"].is_null(), "{made}");
        let mut walk = Walk { browser, base: format!("http://{}", server.addr) };
        if let Err(err) = graphiql_walk(&mut walk, &server, &admin).await {
            let shot = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../target/console-screenshots/{}-graphiql-failure.png", db.name));
            let saved = walk.browser.screenshot(&shot).await;
            panic!("{}: {err} (screenshot: {} {saved:?})", db.name, shot.display());
        }
        walk.browser.close().await;
        server.stop().await;
    }
}
