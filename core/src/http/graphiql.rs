//! GraphiQL at `GET /graphql`, served whole from the binary: GraphiQL 3.9.0, React and
//! ReactDOM 18.3.1 (their UMD builds, vendored from npm into `core/assets/graphiql/`, MIT, see
//! the README there) and Kith's own page script. Nothing loads from anywhere but Kith: the page
//! works offline, and the token typed into it reaches no third-party code.
//!
//! - Only a browser asking for HTML (`Accept: text/html`) gets the page; any other `GET
//!   /graphql` is `405` with `Allow: POST` and a GraphQL error: GET never executes an operation.
//!   With `api.graphiql = false` every `GET /graphql` is that `405`.
//! - The page's script (`kith-graphiql.js`) mounts GraphiQL with the HTTP fetcher on
//!   `/graphql`, subscriptions over graphql-transport-ws on `/graphql/ws` of the same host (the
//!   bundle carries graphql-ws; the header editor's headers go in `connection_init`), and the
//!   header editor pre-set to `{"Authorization": "Bearer <token>"}` from a token pasted once in
//!   the page's token bar and kept in the browser's `localStorage` until "Forget".
//! - A Content-Security-Policy allows Kith's own origin only: scripts from files (no inline
//!   script, no `eval`), `connect-src` the page's own origin and its `ws:`/`wss:` twin (CSP
//!   `'self'` does not cover WebSockets in every browser, so it is named from the `Host`
//!   header, when that is a plain host name), styles from files (GraphiQL and CodeMirror set
//!   styles through the DOM, which a policy does not restrict), fonts and images as `data:`
//!   URLs (GraphiQL's stylesheet embeds its fonts). The browser test checks that GraphiQL
//!   causes no violation of it.

use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, ALLOW, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::code::Code;

use super::AppState;

/// The embedded files: name, content type, bytes.
const FILES: &[crate::http::embedded::File] = &[
    (
        "react.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
    ("graphiql.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.js")),
    ("graphiql.css", "text/css; charset=utf-8", include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.css")),
    ("kith-graphiql.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/graphiql/kith-graphiql.js")),
    ("kith-graphiql.css", "text/css; charset=utf-8", include_bytes!("../../assets/graphiql/kith-graphiql.css")),
];

/// The URL of an embedded file, with a digest of the files: a changed file gets a new URL, so
/// browsers may keep each one for good.
fn path(name: &str) -> String {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let digest = DIGEST.get_or_init(|| crate::http::embedded::digest(FILES));
    format!("/graphiql/{name}?v={digest}")
}

/// `GET /graphiql/{name}`: one of the page's files, cached for good (its URL changes with it).
pub async fn asset(Path(name): Path<String>) -> Response {
    crate::http::embedded::serve(FILES, &name)
}

/// The page's policy; `host` (the `Host` header, when it is a plain host name) adds the
/// page's own WebSocket origins to `connect-src`.
pub fn content_security_policy(host: Option<&str>) -> String {
    let sockets =
        host.filter(|host| plain_host(host)).map(|host| format!(" ws://{host} wss://{host}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'{sockets}; form-action 'none'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    )
}

/// Whether `host` is a host name or address with an optional port, and nothing that could
/// add to the policy it is written into.
fn plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Whether the request asks for an HTML page (a browser's navigation does).
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

/// `GET /graphql`: GraphiQL for a browser (when `api.graphiql` is on), `405` for anything else.
/// Never executes an operation.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.api.graphiql || !wants_html(&headers) {
        let message = if state.api.graphiql {
            "GET /graphql runs no operation: send operations with POST (a browser asking for HTML gets GraphiQL)"
        } else {
            "GET /graphql runs no operation: send operations with POST (GraphiQL is turned off: api.graphiql)"
        };
        let mut response = super::gql_error(StatusCode::METHOD_NOT_ALLOWED, &headers, Code::BadRequest, message);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL · Kith</title>
<link rel="stylesheet" href="{graphiql_css}">
<link rel="stylesheet" href="{kith_css}">
</head>
<body>
<form id="kith-token" class="kith-token">
<a href="/" class="kith-home">Kith</a>
<label for="kith-token-input">API token</label>
<input id="kith-token-input" type="password" autocomplete="off" spellcheck="false" placeholder="paste a token (kith token create, or the console's API tokens page)">
<button type="submit">Use token</button>
<button type="button" id="kith-token-forget">Forget</button>
<span id="kith-token-state" role="status"></span>
</form>
<main id="graphiql" class="kith-graphiql">Loading GraphiQL…</main>
<noscript>GraphiQL needs JavaScript; scripts can also send GraphQL with POST /graphql.</noscript>
<script src="{react}"></script>
<script src="{react_dom}"></script>
<script src="{graphiql}"></script>
<script src="{kith}"></script>
</body>
</html>
"#,
        graphiql_css = path("graphiql.css"),
        kith_css = path("kith-graphiql.css"),
        react = path("react.js"),
        react_dom = path("react-dom.js"),
        graphiql = path("graphiql.js"),
        kith = path("kith-graphiql.js"),
    );
    let mut response = axum::response::Html(html).into_response();
    let response_headers = response.headers_mut();
    // A plain host always makes a valid header; were it not, the strictest policy stands.
    let policy = HeaderValue::from_str(&content_security_policy(host))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    response_headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
