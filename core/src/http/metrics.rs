//! What every request leaves behind: its access-log line, its count and latency in the metrics,
//! and `GET /metrics` (the Prometheus text format) when `[metrics] enabled`.
//!
//! [`observe`] wraps every route. Handlers say what only they know through the response's
//! extensions ([`Noted`]: the GraphQL operation name, the error codes answered, the caller) or,
//! for the console's session extractor, through the request's [`CallerSlot`]. Labels stay
//! bounded: the route is the matched pattern (`/o/{plural}/{id}`), never the path, and
//! operation names are GraphQL names seen first, [`MAX_OPERATIONS`] at most.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_graphql::BatchRequest;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::MetricsConfig;
use crate::domain::actor::Role;
use crate::domain::code::Code;
use crate::http::AppState;
use crate::service::users;
use crate::telemetry::TelemetryError;

/// Distinct GraphQL operation names counted under their own name; later ones count as `other`.
pub const MAX_OPERATIONS: usize = 200;
/// Longest operation name counted under its own name.
const MAX_OPERATION_LEN: usize = 64;

/// `/metrics` of this server: the process's recorder and where it is served.
#[derive(Debug, Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    /// Served on the main listener (no `[metrics] bind`).
    on_main_listener: bool,
    /// The main listener asks for an ADMIN's token.
    require_token: bool,
}

impl Exporter {
    /// The exporter `config` asks for (`None` when metrics are off), installing the process's
    /// recorder on first use.
    pub fn new(config: &MetricsConfig) -> Result<Option<Arc<Exporter>>, TelemetryError> {
        if !config.enabled {
            return Ok(None);
        }
        let separate = config.separate_bind().map_err(|err| TelemetryError::Metrics(err.to_string()))?;
        Ok(Some(Arc::new(Exporter {
            handle: crate::telemetry::metrics_handle()?,
            on_main_listener: separate.is_none(),
            require_token: config.require_token,
        })))
    }

    /// Whether the main listener serves `/metrics`.
    pub fn on_main_listener(&self) -> bool {
        self.on_main_listener
    }
}

/// The router of a separate `[metrics] bind`: `/metrics` only, with no token.
pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(scrape_open)).with_state(state)
}

/// `GET /metrics` on the main listener (see [`Exporter`]).
pub(crate) async fn scrape_main(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(exporter) = state.metrics.clone() else { return StatusCode::NOT_FOUND.into_response() };
    if exporter.require_token {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or_default();
        match users::authenticate_cached(&state.kith, token).await {
            Ok(Some(actor)) if actor.role == Role::Admin => {}
            Ok(Some(_)) => return (StatusCode::FORBIDDEN, "/metrics needs an ADMIN's API token\n").into_response(),
            Ok(None) => {
                return (StatusCode::UNAUTHORIZED, "/metrics needs `Authorization: Bearer <token>` of an ADMIN\n")
                    .into_response();
            }
            Err(err) => {
                tracing::error!(error = %err, "checking the token of a /metrics scrape");
                return (StatusCode::SERVICE_UNAVAILABLE, "cannot check the token now\n").into_response();
            }
        }
    }
    render(&state, &exporter).await
}

/// `GET /metrics` on the separate listener.
async fn scrape_open(State(state): State<AppState>) -> Response {
    match state.metrics.clone() {
        Some(exporter) => render(&state, &exporter).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sets the gauges read at scrape time (pools, group commit queue, outbox lag: one query) and
/// renders every metric.
async fn render(state: &AppState, exporter: &Exporter) -> Response {
    let store = &state.kith.store;
    for pool in store.pool_stats() {
        for (stat, value) in [("in_use", pool.in_use), ("idle", pool.idle), ("max", pool.max)] {
            metrics::gauge!("kith_db_pool_connections", "pool" => pool.pool, "state" => stat).set(value as f64);
        }
    }
    let group = store.group_stats();
    metrics::gauge!("kith_group_commit_waiting").set(group.waiting as f64);
    metrics::counter!("kith_group_commit_reruns_total").absolute(group.reruns);
    match crate::store::plugins::delivery_lag(store.conn()).await {
        Ok(lags) => {
            let now = chrono::Utc::now();
            for lag in lags {
                let age =
                    lag.oldest.map_or(0.0, |oldest| ((now - oldest).num_milliseconds() as f64 / 1_000.0).max(0.0));
                metrics::gauge!("kith_outbox_lag_seconds", "plugin" => lag.plugin.clone()).set(age);
                metrics::gauge!("kith_outbox_pending_events", "plugin" => lag.plugin).set(lag.pending as f64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "reading the outbox lag for /metrics"),
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], exporter.handle.render()).into_response()
}

/// What a handler tells [`observe`] about its answer, in the response's extensions.
#[derive(Debug, Clone, Default)]
pub struct Noted {
    /// The GraphQL operation name (see [`operation_name`]).
    pub operation: Option<String>,
    /// The error codes of the answer, one per error (`unknown` for a code Kith does not
    /// know, which should not happen).
    pub codes: Vec<&'static str>,
    /// Who asked (a user's id, else the token's).
    pub caller: Option<String>,
}

/// Adds to the notes of `response`.
pub fn note(response: &mut Response, add: impl FnOnce(&mut Noted)) {
    let extensions = response.extensions_mut();
    match extensions.get_mut::<Noted>() {
        Some(noted) => add(noted),
        None => {
            let mut noted = Noted::default();
            add(&mut noted);
            extensions.insert(noted);
        }
    }
}

/// The error codes in a GraphQL answer.
pub fn codes_of(response: &async_graphql::BatchResponse) -> Vec<&'static str> {
    let responses = match response {
        async_graphql::BatchResponse::Single(r) => std::slice::from_ref(r),
        async_graphql::BatchResponse::Batch(rs) => rs.as_slice(),
    };
    responses
        .iter()
        .flat_map(|r| &r.errors)
        .map(|error| {
            let code = error.extensions.as_ref().and_then(|x| x.get("code"));
            match code {
                Some(async_graphql::Value::String(code)) => {
                    Code::ALL.iter().find(|known| known.as_str() == code).map_or("unknown", |known| known.as_str())
                }
                _ => "unknown",
            }
        })
        .collect()
}

/// Who a request was made by, filled in by whatever authenticates it deeper down (the console's
/// session); [`observe`] puts an empty one in every request's extensions.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<String>>);

impl CallerSlot {
    /// Records the caller (the first call wins).
    pub fn set(&self, caller: &crate::domain::actor::Actor) {
        if let Some(id) = caller_id(caller) {
            let _ = self.0.set(id);
        }
    }
}

/// The id the access log names a caller by: its user's, else its own.
pub fn caller_id(actor: &crate::domain::actor::Actor) -> Option<String> {
    actor.user_id.map(|id| id.to_string()).or_else(|| actor.id.clone())
}

/// The operation label of a GraphQL request: its `operationName` when given and a GraphQL name,
/// `anonymous` without one, `batch` for a batch, `other` past [`MAX_OPERATIONS`] distinct
/// names and `invalid` for anything that is not a name.
pub fn operation_name(batch: &BatchRequest) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let name = match batch {
        BatchRequest::Batch(_) => return "batch".into(),
        BatchRequest::Single(request) => match &request.operation_name {
            None => return "anonymous".into(),
            Some(name) => name,
        },
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_OPERATION_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return "invalid".into();
    }
    let mut seen = SEEN.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(name.as_str()) {
        return name.clone();
    }
    if seen.len() >= MAX_OPERATIONS {
        return "other".into();
    }
    seen.insert(name.clone());
    name.clone()
}

/// Middleware on every route: the request's access-log line (`info`, target `kith::access`),
/// `kith_http_requests_total`, `kith_http_request_duration_seconds` and
/// `kith_graphql_errors_total`, and the request span's `status` and `operation`.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let request_id =
        request.headers().get(crate::http::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status();
    let noted = response.extensions().get::<Noted>();
    let operation = noted.and_then(|n| n.operation.clone()).unwrap_or_else(|| "-".to_owned());
    let caller = noted.and_then(|n| n.caller.clone()).or_else(|| slot.0.get().cloned()).unwrap_or_else(|| "-".into());
    let codes = noted.map(|n| n.codes.as_slice()).unwrap_or_default();
    let outcome = if status.is_server_error() {
        "server_error"
    } else if status.is_client_error() {
        "client_error"
    } else if !codes.is_empty() {
        "error"
    } else {
        "ok"
    };
    if crate::telemetry::recording() {
        for code in codes {
            metrics::counter!("kith_graphql_errors_total", "code" => *code).increment(1);
        }
        let labels = [("route", route), ("operation", operation.clone()), ("outcome", outcome.to_owned())];
        metrics::counter!("kith_http_requests_total", &labels).increment(1);
        metrics::histogram!("kith_http_request_duration_seconds", &labels).record(took.as_secs_f64());
    }
    let span = tracing::Span::current();
    span.record("status", status.as_u16());
    span.record("operation", operation.as_str());
    tracing::info!(
        target: "kith::access",
        method = %method,
        path = %path,
        operation = %operation,
        status = status.as_u16(),
        duration_ms = took.as_secs_f64() * 1_000.0,
        actor = %caller,
        request_id = %request_id,
        "request"
    );
    response
}
