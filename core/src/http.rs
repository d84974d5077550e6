//! The HTTP server: routes, middleware (request ids, tracing, body limit, timeout) and graceful
//! shutdown. GraphQL mounts here.
//!
//! - `idempotency`: `Idempotency-Key` on `POST /graphql`.
//! - `embedded`: files built into the binary (the console's, GraphiQL's).
//! - `graphiql`: GraphiQL at `GET /graphql`, served from the binary, under a strict CSP.
//! - `sdl`: `GET /graphql/schema.graphql`, the SDL of the schema being served.
//! - `metrics`: the access log and request metrics of every route, and `/metrics`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use std::sync::{Arc, RwLock};

use async_graphql::dynamic::Schema;
use async_graphql::{BatchRequest, Executor};
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use std::net::SocketAddr;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use axum::extract::ConnectInfo;
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;

use crate::api::auth::ClientAddr;
use crate::api::build_schema;
use crate::api::schema::{error_response, request_data};
use crate::config::ServerConfig;
use crate::domain::code::Code;
use crate::service::{Kith, users};

pub mod embedded;
pub mod graphiql;
pub mod idempotency;
pub mod metrics;
pub mod plugin_routes;
pub mod sdl;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Core services.
    pub kith: Kith,
    /// The GraphQL schema and the registry version it was built from; rebuilt on the first
    /// request after the registry changes (a plugin's objects came or went).
    schema: Arc<RwLock<(u64, Schema)>>,
    /// The API settings the schema is built with.
    api: crate::config::ApiConfig,
    /// Most operations per batched request.
    pub max_batch: usize,
    /// Per-token request budget.
    pub rate_limiter: Arc<RateLimiter>,
    /// Parsed documents of recent queries.
    pub documents: Arc<crate::api::documents::DocumentCache>,
    /// `Idempotency-Key` settings and this process's sweep of expired keys.
    pub idempotency_keys: Arc<idempotency::Keys>,
    /// The code that lets a client off loopback create the first admin (`/setup`); printed by
    /// `kith serve` while Kith has no user.
    pub setup_code: String,
    /// Uploaded CSV files waiting for their column mapping (`console::import`).
    pub staged_imports: Arc<crate::console::import::Staged>,
    /// `/metrics`, when `[metrics] enabled` (see [`AppState::with_metrics`]).
    pub metrics: Option<Arc<metrics::Exporter>>,
}

/// A token bucket per caller: `per_minute` requests a minute, refilled continuously, with
/// bursts up to a minute's worth.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests a minute per key (0: unlimited).
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter { per_minute, buckets: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    /// Takes one request from `key`'s budget; false when it is spent.
    pub fn allow(&self, key: &str) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let capacity = f64::from(self.per_minute);
        let now = std::time::Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > 100_000 {
            // Forget idle callers rather than grow without bound.
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 120);
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * capacity / 60.0).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl AppState {
    /// The schema for the current registry, rebuilt first when the registry has changed. A
    /// failed rebuild keeps serving the previous schema (and says so in the log).
    pub fn current_schema(&self) -> Schema {
        let version = self.kith.registry_version();
        {
            let slot = self.schema.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.0 == version {
                return slot.1.clone();
            }
        }
        let mut slot = self.schema.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.0 != version {
            let (registry, kith, api) = (self.kith.registry(), self.kith.clone(), self.api);
            // Plugins are checked for clashes when enabled; should two processes enable clashing
            // plugins at once, the registry's naming plan refuses it before anything is built.
            let built = crate::domain::naming::Names::of(&registry)
                .and_then(|_| build_schema(&registry, Some(kith), api).map_err(|err| err.0));
            match built {
                Ok(schema) => *slot = (version, schema),
                Err(err) => {
                    tracing::error!(error = %err, "cannot rebuild the GraphQL schema; serving the previous one");
                    slot.0 = version;
                }
            }
        }
        slot.1.clone()
    }

    /// State with a schema built from the registry.
    pub fn new(kith: Kith, api: &crate::config::ApiConfig) -> Result<AppState, async_graphql::dynamic::SchemaError> {
        let version = kith.registry_version();
        let schema = build_schema(&kith.registry(), Some(kith.clone()), *api)?;
        kith.events.start(kith.store.clone());
        Ok(AppState {
            kith,
            schema: Arc::new(RwLock::new((version, schema))),
            api: *api,
            max_batch: api.max_batch,
            rate_limiter: Arc::new(RateLimiter::new(api.rate_limit_per_minute)),
            documents: Arc::new(crate::api::documents::DocumentCache::new(512)),
            idempotency_keys: Arc::new(idempotency::Keys::new(
                api.idempotency_hours,
                Duration::from_millis(api.timeout_ms),
            )),
            setup_code: crate::store::tokens::generate().chars().rev().take(8).collect(),
            staged_imports: Arc::default(),
            metrics: None,
        })
    }

    /// The same state serving `/metrics` through `exporter` (`None`: metrics are off).
    pub fn with_metrics(mut self, exporter: Option<Arc<metrics::Exporter>>) -> AppState {
        self.metrics = exporter;
        self
    }
}

/// The error of non-GraphQL routes: a status and a short message.
#[derive(Debug)]
pub struct AppError(pub StatusCode, pub String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with every route and middleware.
pub fn app(state: AppState, config: &ServerConfig) -> Router {
    let metrics_here = state.metrics.as_ref().is_some_and(|m| m.on_main_listener());
    let router = Router::new();
    let router = if metrics_here { router.route("/metrics", get(metrics::scrape_main)) } else { router };
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/graphql", get(graphiql::page).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphql/schema.graphql", get(sdl::schema))
        .route("/graphiql/{name}", get(graphiql::asset))
        .merge(crate::console::router())
        .merge(plugin_routes::router())
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        // Uploads have their own, larger limit.
        .merge(crate::console::import::router(config.max_upload_bytes))
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ))
        // The access log and the request metrics (timeouts included).
        .layer(axum::middleware::from_fn(metrics::observe))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            let span = tracing::info_span!(
                "request",
                request_id = %id,
                method = %request.method(),
                path = %request.uri().path(),
                operation = tracing::field::Empty,
                status = tracing::field::Empty,
                otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
                otel.kind = "server",
            );
            // An incoming W3C `traceparent` is the parent of the exported span.
            crate::telemetry::adopt_remote_parent(&span, request.headers());
            span
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Pages, scripts and answers travel gzipped to clients that accept it.
        // (Never a protocol switch: a WebSocket handshake carries no body to encode.)
        .layer(tower_http::compression::CompressionLayer::new().compress_when(tower_http::compression::Predicate::and(
            tower_http::compression::predicate::DefaultPredicate::new(),
            |status: StatusCode, _: axum::http::Version, _: &axum::http::HeaderMap, _: &axum::http::Extensions| {
                status != StatusCode::SWITCHING_PROTOCOLS
            },
        )))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The database answers, within [`READY_TIMEOUT`].
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    match tokio::time::timeout(READY_TIMEOUT, state.kith.store.ping()).await {
        Ok(Ok(())) => Ok(axum::Json(json!({ "status": "ready" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(AppError(StatusCode::SERVICE_UNAVAILABLE, "database unreachable".into()))
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer within a second");
            Err(AppError(StatusCode::SERVICE_UNAVAILABLE, "the database did not answer within 1 s".into()))
        }
    }
}

/// Whether the client accepts `application/graphql-response+json` (GraphQL over HTTP).
fn graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/graphql-response+json"))
}

fn gql_reply(status: StatusCode, headers: &HeaderMap, body: String) -> Response {
    // GraphQL over HTTP: answer in the media type the client asked for.
    let content_type =
        if graphql_response_json(headers) { "application/graphql-response+json" } else { "application/json" };
    (status, [(CONTENT_TYPE, content_type)], body).into_response()
}

/// A batch's answers as JSON. An answer that never ran has no `data` entry at all (GraphQL
/// spec, "Response Format": an error before execution means no `data`), not `data: null`.
fn response_json(response: &async_graphql::BatchResponse) -> serde_json::Result<String> {
    use async_graphql::BatchResponse;
    // Errors but no data, and no error at a field: nothing was executed.
    let before_execution = |r: &async_graphql::Response| {
        r.data == async_graphql::Value::Null && !r.errors.is_empty() && r.errors.iter().all(|e| e.path.is_empty())
    };
    let any = match response {
        BatchResponse::Single(r) => before_execution(r),
        BatchResponse::Batch(rs) => rs.iter().any(before_execution),
    };
    if !any {
        return serde_json::to_string(response);
    }
    let one = |r: &async_graphql::Response| -> serde_json::Result<serde_json::Value> {
        let mut value = serde_json::to_value(r)?;
        if before_execution(r)
            && let Some(map) = value.as_object_mut()
        {
            map.remove("data");
        }
        Ok(value)
    };
    match response {
        BatchResponse::Single(r) => serde_json::to_string(&one(r)?),
        BatchResponse::Batch(rs) => serde_json::to_string(&rs.iter().map(one).collect::<serde_json::Result<Vec<_>>>()?),
    }
}

fn gql_error(status: StatusCode, headers: &HeaderMap, code: Code, message: &str) -> Response {
    let body = response_json(&async_graphql::BatchResponse::Single(error_response(code, message)))
        .unwrap_or_else(|_| "{}".into());
    let mut reply = gql_reply(status, headers, body);
    metrics::note(&mut reply, |noted| noted.codes.push(code.as_str()));
    reply
}

/// `POST /graphql`: JSON only (a `text/plain` or form post is refused, closing the CSRF hole
/// of "simple" cross-site requests), batches capped, the bearer token resolved to the caller.
/// Everything after reading the body, the token check included, runs under `api.timeout_ms`.
/// A mutation may carry an `Idempotency-Key` (see [`idempotency`]).
async fn graphql(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return gql_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &headers,
            Code::BadRequest,
            "send GraphQL requests as `Content-Type: application/json`",
        );
    }
    let key = match idempotency::key(&headers) {
        Ok(key) => key,
        Err(message) => return gql_error(StatusCode::BAD_REQUEST, &headers, Code::BadRequest, &message),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return gql_error(
                StatusCode::BAD_REQUEST,
                &headers,
                Code::BadRequest,
                &format!("malformed GraphQL request: {err}"),
            );
        }
    };
    let size = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    if size == 0 || size > state.max_batch {
        return gql_error(
            StatusCode::BAD_REQUEST,
            &headers,
            Code::BadRequest,
            &format!("a batch holds 1 to {} operations", state.max_batch),
        );
    }
    let key = key.map(|key| Key { fingerprint: idempotency::fingerprint(&body), key });
    let client = ClientAddr(connect.map(|c| c.0.0.ip()));
    let limit = Duration::from_millis(state.api.timeout_ms);
    let operation = metrics::operation_name(&batch);
    // Dropping the execution on time-out drops its reads; a write still queued for its group
    // is then skipped (`store::group`), and a key it held is settled by what its writes did.
    let mut response = match tokio::time::timeout(limit, execute(&state, &headers, client, batch, key)).await {
        Ok(Executed { response, keyed: None }) => response,
        // Stored outside the time limit: the answer exists, and it must not be lost now.
        Ok(Executed { response, keyed: Some((reserved, body)) }) => {
            reserved.finish(response.status(), &body).await;
            response
        }
        Err(_) => {
            tracing::warn!(timeout_ms = state.api.timeout_ms, "a GraphQL request timed out");
            gql_error(
                StatusCode::GATEWAY_TIMEOUT,
                &headers,
                Code::Timeout,
                &format!("the request took longer than {} ms and was stopped", state.api.timeout_ms),
            )
        }
    };
    metrics::note(&mut response, |noted| noted.operation = Some(operation));
    response
}

/// A request's `Idempotency-Key` and its body's fingerprint.
struct Key {
    key: String,
    fingerprint: String,
}

/// An answer, and the key it is to be stored under with its body.
struct Executed {
    response: Response,
    keyed: Option<(idempotency::Reserved, String)>,
}

impl From<Response> for Executed {
    fn from(response: Response) -> Executed {
        Executed { response, keyed: None }
    }
}

/// How long a client should wait before retrying a request the database could not serve.
const RETRY_AFTER_SECS: u64 = 2;

fn unavailable(headers: &HeaderMap) -> Response {
    let mut response = gql_error(
        StatusCode::SERVICE_UNAVAILABLE,
        headers,
        Code::Unavailable,
        "the database is unavailable; retry shortly",
    );
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// The answer to a request without a valid token: the same whether the token is missing,
/// unknown, expired or revoked (a caller learns nothing about a token it does not hold), with
/// `WWW-Authenticate: Bearer` (RFC 6750).
pub(crate) fn unauthenticated(headers: &HeaderMap) -> Response {
    let mut response = gql_error(
        StatusCode::UNAUTHORIZED,
        headers,
        Code::Unauthenticated,
        "a valid `Authorization: Bearer <token>` header is required (only `login` and introspection run without \
         one); the token may be missing, invalid, expired or revoked",
    );
    response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Authenticates, checks the rate limit, takes the idempotency key and runs `batch`.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    client: ClientAddr,
    batch: BatchRequest,
    key: Option<Key>,
) -> Executed {
    let actor = match headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap_or_default()) {
        None => None,
        Some(value) => {
            let token =
                value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or_default().trim();
            match users::authenticate_cached(&state.kith, token).await {
                Ok(Some(actor)) => Some(actor),
                Ok(None) => return unauthenticated(headers).into(),
                Err(crate::error::Error::Unavailable(err)) => {
                    tracing::error!(error = %err, "the database is unreachable while authenticating a request");
                    return unavailable(headers).into();
                }
                Err(err) => {
                    tracing::error!(error = %err, "authenticating a request");
                    return gql_error(StatusCode::INTERNAL_SERVER_ERROR, headers, Code::Internal, "internal error")
                        .into();
                }
            }
        }
    };
    let rate_key = actor.as_ref().and_then(|a| a.id.clone()).unwrap_or_else(|| "anonymous".to_owned());
    if !state.rate_limiter.allow(&rate_key) {
        return gql_error(
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            Code::RateLimited,
            "too many requests for this token; slow down",
        )
        .into();
    }
    let prepare = |request: async_graphql::Request| {
        let mut request = request_data(state.documents.prepare(request), &state.kith, actor.clone()).data(client);
        // Without a token only `login` and introspection run: anything else is refused before
        // its document is validated, so an anonymous caller learns nothing from its arguments.
        if actor.is_none() && !request.parsed_query().is_ok_and(anonymous_allowed) {
            return Err(());
        }
        Ok(request)
    };
    let batch = match batch {
        BatchRequest::Single(request) => prepare(request).map(BatchRequest::Single),
        BatchRequest::Batch(requests) => {
            requests.into_iter().map(prepare).collect::<Result<Vec<_>, ()>>().map(BatchRequest::Batch)
        }
    };
    let Ok(mut batch) = batch else { return unauthenticated(headers).into() };
    // The key belongs to the token that sent it; an anonymous caller's key is ignored.
    let caller = actor.as_ref().and_then(|actor| actor.id.as_deref());
    let reserved = match (key, caller) {
        (Some(key), Some(caller)) => match idempotency::kind(&mut batch) {
            idempotency::Kind::Read => None,
            idempotency::Kind::Secret(field) => {
                return gql_error(
                    StatusCode::BAD_REQUEST,
                    headers,
                    Code::BadRequest,
                    &format!(
                        "`{field}` answers with a secret Kith does not keep, so it cannot be sent with an \
                         `Idempotency-Key`"
                    ),
                )
                .into();
            }
            idempotency::Kind::Write => {
                match state.idempotency_keys.begin(&state.kith.store, caller, &key.key, &key.fingerprint).await {
                    Ok(idempotency::Begin::Run(reserved)) => Some(reserved),
                    Ok(idempotency::Begin::Replay { status, body }) => {
                        let mut reply = gql_reply(status, headers, body);
                        reply.headers_mut().insert(idempotency::REPLAYED, idempotency::replayed());
                        return reply.into();
                    }
                    Ok(idempotency::Begin::Conflict { message, retry }) => {
                        let mut reply = gql_error(StatusCode::CONFLICT, headers, Code::Conflict, message);
                        if retry {
                            reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1u64));
                        }
                        return reply.into();
                    }
                    Err(crate::error::Error::Unavailable(err)) => {
                        tracing::error!(error = %err, "the database is unreachable while reserving an idempotency key");
                        return unavailable(headers).into();
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "reserving an idempotency key");
                        return gql_error(StatusCode::INTERNAL_SERVER_ERROR, headers, Code::Internal, "internal error")
                            .into();
                    }
                }
            }
        },
        _ => None,
    };
    let schema = state.current_schema();
    let mut response = match &reserved {
        Some(reserved) => reserved.watch().scope(schema.execute_batch(batch)).await,
        None => schema.execute_batch(batch).await,
    };
    match &mut response {
        async_graphql::BatchResponse::Single(r) => crate::api::error::finish(r),
        async_graphql::BatchResponse::Batch(rs) => rs.iter_mut().for_each(crate::api::error::finish),
    }
    // GraphQL over HTTP: a request that never ran (it did not parse or validate, or its
    // variables did not fit) is a 400 in the new media type; `application/json` keeps 200.
    let never_ran = match &response {
        async_graphql::BatchResponse::Single(r) => crate::api::error::is_request_error(r),
        async_graphql::BatchResponse::Batch(rs) => rs.iter().all(crate::api::error::is_request_error),
    };
    // Nothing answered because the database could not be reached: say so with 503, which
    // clients and proxies retry, rather than 200.
    let all_unavailable = match &response {
        async_graphql::BatchResponse::Single(r) => only_unavailable(r),
        async_graphql::BatchResponse::Batch(rs) => rs.iter().all(only_unavailable),
    };
    let (status, body) = match response_json(&response) {
        Ok(body) if all_unavailable => (StatusCode::SERVICE_UNAVAILABLE, body),
        Ok(body) if never_ran && graphql_response_json(headers) => (StatusCode::BAD_REQUEST, body),
        Ok(body) => (StatusCode::OK, body),
        Err(_) => {
            let body = serde_json::to_string(&error_response(Code::Internal, "internal error")).unwrap_or_default();
            (StatusCode::INTERNAL_SERVER_ERROR, body)
        }
    };
    let keyed = reserved.map(|reserved| (reserved, body.clone()));
    let mut reply = gql_reply(status, headers, body);
    let codes = metrics::codes_of(&response);
    let caller = actor.as_ref().and_then(metrics::caller_id);
    metrics::note(&mut reply, |noted| {
        noted.codes = codes;
        noted.caller = caller;
    });
    if status == StatusCode::SERVICE_UNAVAILABLE {
        reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    Executed { response: reply, keyed }
}

/// A response with no data whose errors include `UNAVAILABLE`.
fn only_unavailable(response: &async_graphql::Response) -> bool {
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == async_graphql::Value::from(Code::Unavailable.as_str()))
    });
    let no_data = match &response.data {
        async_graphql::Value::Null => true,
        async_graphql::Value::Object(map) => map.values().all(|v| *v == async_graphql::Value::Null),
        _ => false,
    };
    unavailable && no_data
}

/// Whether an anonymous caller may run `document`: every operation selects only `login` and
/// introspection fields (through fragments too).
fn anonymous_allowed(document: &ExecutableDocument) -> bool {
    fn allowed(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
        depth < 8
            && set.items.iter().all(|item| match &item.node {
                Selection::Field(field) => {
                    matches!(field.node.name.node.as_str(), "login" | "__schema" | "__type" | "__typename")
                }
                Selection::InlineFragment(fragment) => allowed(document, &fragment.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .is_some_and(|fragment| allowed(document, &fragment.node.selection_set.node, depth + 1)),
            })
    }
    document.operations.iter().all(|(_, operation)| allowed(document, &operation.node.selection_set.node, 0))
}

/// `GET /graphql/ws`: subscriptions over graphql-transport-ws (and the older graphql-ws). The
/// token goes in the `connection_init` payload as `{"Authorization": "Bearer <token>"}`.
async fn graphql_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    use std::str::FromStr as _;
    let protocol = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols.split(',').find_map(|p| async_graphql::http::WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return AppError(StatusCode::BAD_REQUEST, "ask for the graphql-transport-ws (or graphql-ws) protocol".into())
            .into_response();
    };
    let schema = state.current_schema();
    let kith = state.kith.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_socket(socket, schema, protocol, kith))
}

/// The close code sent when the socket's token stops standing for its caller.
const CLOSE_REVOKED: u16 = 4403;

/// Serves one subscription socket until the client leaves, or until its token is revoked,
/// expires or loses its user (then the socket is closed with [`CLOSE_REVOKED`]).
async fn serve_socket(
    socket: axum::extract::ws::WebSocket,
    schema: Schema,
    protocol: async_graphql::http::WebSocketProtocols,
    kith: Kith,
) {
    use axum::extract::ws::{CloseFrame, Message};
    use futures_util::{SinkExt, StreamExt};

    let (mut sink, stream) = socket.split();
    let input = stream.take_while(|message| std::future::ready(message.is_ok())).filter_map(|message| {
        std::future::ready(match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
            _ => None,
        })
    });
    let (signed_in, signed_in_rx) = tokio::sync::oneshot::channel();
    let init_kith = kith.clone();
    let output =
        async_graphql::http::WebSocket::new(schema, input, protocol).on_connection_init(move |payload| async move {
            let header = ["Authorization", "authorization", "token"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let token = header.strip_prefix("Bearer ").unwrap_or(&header).trim().to_owned();
            match users::authenticate_until(&init_kith.store, &token).await {
                Ok(Some((actor, expires_at))) => {
                    let mut data = async_graphql::Data::default();
                    data.insert(actor.clone());
                    let _ = signed_in.send(Grant { token, actor, expires_at });
                    Ok(data)
                }
                _ => Err(async_graphql::Error::new(
                    "UNAUTHENTICATED: a valid token is required in the connection_init payload",
                )),
            }
        });
    let output = output.map(|message| match message {
        async_graphql::http::WsMessage::Text(text) => Message::Text(text.into()),
        async_graphql::http::WsMessage::Close(code, reason) => {
            Message::Close(Some(CloseFrame { code, reason: reason.into() }))
        }
    });
    futures_util::pin_mut!(output);
    let revoked = until_revoked(kith, signed_in_rx);
    futures_util::pin_mut!(revoked);
    loop {
        tokio::select! {
            message = output.next() => match message {
                Some(message) => {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            () = &mut revoked => {
                let close = CloseFrame { code: CLOSE_REVOKED, reason: "the token was revoked or expired".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
                return;
            }
        }
    }
}

/// Who a subscription socket signed in as.
struct Grant {
    token: String,
    actor: crate::domain::actor::Actor,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Completes when the socket's token no longer stands for the caller it signed in as: it was
/// revoked, it expired, its user was deactivated, deleted or given another role. Revocations
/// and user changes arrive as events (from any Kith process on the database, within the event
/// hub's poll); the token is checked again on each, and every [`RECHECK`] in any case.
async fn until_revoked(kith: Kith, signed_in: tokio::sync::oneshot::Receiver<Grant>) {
    /// How often a socket's token is checked again without an event asking for it.
    const RECHECK: Duration = Duration::from_secs(30);
    let Ok(grant) = signed_in.await else { return std::future::pending().await };
    let mut events = kith.events.subscribe();
    let token_id = grant.actor.id.clone();
    let user_id = grant.actor.user_id.map(|id| id.to_string());
    let expiry = async {
        match grant.expires_at.and_then(|at| (at - chrono::Utc::now()).to_std().ok()) {
            Some(left) => tokio::time::sleep(left).await,
            None if grant.expires_at.is_some() => {}
            None => std::future::pending().await,
        }
    };
    futures_util::pin_mut!(expiry);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    loop {
        let check = tokio::select! {
            () = &mut expiry => return,
            _ = recheck.tick() => true,
            event = events.recv() => match event {
                Ok(event) => {
                    let id = event.record_id.map(|id| id.to_string());
                    (event.object == "token" && id.is_some() && id == token_id)
                        || (event.object == "user" && id.is_some() && id == user_id)
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    events = kith.events.subscribe();
                    true
                }
            },
        };
        if !check {
            continue;
        }
        match users::authenticate_until(&kith.store, &grant.token).await {
            Ok(Some((actor, _))) if actor.role == grant.actor.role => {}
            Ok(_) => {
                kith.auth_cache.forget(grant.actor.id.as_deref().and_then(|id| id.parse().ok()), None);
                return;
            }
            // The database is away: the grant stands until it can be checked.
            Err(err) => tracing::warn!(error = %err, "checking a subscription's token again"),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(true);
        },
    );
    let deadline = async move {
        while !*stopping_rx.borrow() {
            if stopping_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        res = server.into_future() => res,
        () = deadline => {
            tracing::warn!("shutdown grace period over: dropping remaining requests");
            Ok(())
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
