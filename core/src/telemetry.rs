//! What a running Kith tells its operators, set up once per process: the log (a `tracing`
//! subscriber writing text or JSON to standard error), OpenTelemetry traces exported over
//! OTLP/HTTP when `[tracing] otlp_endpoint` is set, and the metrics recorder that `/metrics`
//! renders (`http::metrics`).
//!
//! Metrics go through the `metrics` facade: code anywhere records with `metrics::counter!` and
//! friends, which do nothing until [`metrics_handle`] installs the Prometheus recorder (only
//! when `[metrics] enabled`). Every metric Kith records is in [`METRICS`], with its help text.

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::Config;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a bad endpoint).
    #[error("cannot export traces to {endpoint}: {message}")]
    Otlp {
        /// The configured endpoint.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// The metrics recorder could not be installed (another one was, in this process).
    #[error("cannot record metrics: {0}")]
    Metrics(String),
}

/// What a kind of metric is, for its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down (set at each scrape).
    Gauge,
    /// A distribution in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

/// Every metric Kith records: name, kind, labels and help. README's metrics table lists the
/// same names (a test checks it).
pub const METRICS: &[(&str, Kind, &str, &str)] = &[
    (
        "kith_http_requests_total",
        Kind::Counter,
        "route, operation, outcome",
        "HTTP requests by route pattern, GraphQL operation name and outcome (ok, error, client_error, server_error)",
    ),
    (
        "kith_http_request_duration_seconds",
        Kind::Histogram,
        "route, operation, outcome",
        "HTTP request latency, from the request's arrival to its answer",
    ),
    ("kith_graphql_errors_total", Kind::Counter, "code", "GraphQL errors answered, by extensions.code"),
    (
        "kith_db_pool_connections",
        Kind::Gauge,
        "pool, state",
        "Database connections by pool (transactions, statements) and state (in_use, idle, max)",
    ),
    (
        "kith_db_pool_waits_total",
        Kind::Counter,
        "pool",
        "Times a statement or transaction found every connection of its pool taken and waited",
    ),
    ("kith_group_commit_size", Kind::Histogram, "", "Writes committed together in one group commit"),
    ("kith_group_commit_waiting", Kind::Gauge, "", "Writes queued for a group commit at the scrape"),
    ("kith_group_commit_reruns_total", Kind::Counter, "", "Group commits rolled back and rerun with savepoints"),
    (
        "kith_plugin_calls_total",
        Kind::Counter,
        "plugin, export, outcome",
        "Plugin calls by plugin, export and outcome (ok, error: the plugin reported one, failed)",
    ),
    ("kith_plugin_call_duration_seconds", Kind::Histogram, "plugin, export", "Plugin call latency"),
    (
        "kith_outbox_lag_seconds",
        Kind::Gauge,
        "plugin",
        "Age of the oldest event not yet delivered to each enabled plugin (0: none pending)",
    ),
    ("kith_outbox_pending_events", Kind::Gauge, "plugin", "Events after each enabled plugin's delivery cursor"),
    ("kith_job_runs_total", Kind::Counter, "plugin, job, outcome", "Plugin job runs by outcome (succeeded, failed)"),
    ("kith_job_duration_seconds", Kind::Histogram, "plugin, job", "Plugin job run time"),
    ("kith_webhook_deliveries_total", Kind::Counter, "outcome", "Webhook deliveries by outcome"),
    ("kith_webhook_delivery_duration_seconds", Kind::Histogram, "", "Webhook delivery latency"),
];

/// Latency buckets (seconds): 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Group commit sizes (writes).
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// A gauge not set for this long (a plugin disabled since) leaves `/metrics`.
const GAUGE_IDLE: Duration = Duration::from_secs(600);
/// How often histograms' recorded samples are folded into their buckets between scrapes, so
/// that memory stays flat when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's recorder, once [`metrics_handle`] has installed it.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's Prometheus recorder, installed at the first call (later calls, from any
/// server of the process, share it; tests start many).
pub fn metrics_handle() -> Result<PrometheusHandle, TelemetryError> {
    RECORDER.get_or_init(install_recorder).clone().map_err(TelemetryError::Metrics)
}

/// Whether metrics are recorded in this process: callers skip building labels when not.
pub fn recording() -> bool {
    matches!(RECORDER.get(), Some(Ok(_)))
}

fn install_recorder() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Full("kith_group_commit_size".into()), SIZE_BUCKETS)
        })
        .map_err(|err| err.to_string())?
        .idle_timeout(metrics_util::MetricKindMask::GAUGE, Some(GAUGE_IDLE))
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|err| err.to_string())?;
    for (name, kind, _, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new().name("kith-metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP);
            upkeep.run_upkeep();
        }
    });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot start the metrics upkeep thread; histograms are folded at scrapes only");
    }
    Ok(handle)
}

/// The process's tracing set-up: keep it until the process ends, then [`Telemetry::shutdown`]
/// sends the spans still buffered.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still buffered and stops exporting.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The batch exporter's thread blocks on the flush; the runtime keeps serving the
            // HTTP client's task meanwhile.
            if let Err(err) = provider.shutdown() {
                tracing::warn!(error = %err, "flushing traces at shutdown");
            }
        }
    }
}

/// Sets up logging (once per process: later calls leave the first subscriber in place) and,
/// when `[tracing] otlp_endpoint` is set, span export over OTLP/HTTP. Call it inside a tokio
/// runtime: the exporter sends on it.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},sqlx=warn,sea_orm=warn", config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let log = if config.log.format == "json" {
        tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).boxed()
    };
    let provider = match config.tracing.otlp_endpoint.trim() {
        "" => None,
        endpoint => Some(tracer_provider(endpoint, &config.tracing.service_name)?),
    };
    // Spans are exported whatever the log level: Kith's own info spans (requests, plugin calls).
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("kith"))
            .with_filter(tracing_subscriber::filter::Targets::new().with_target("kith_core", tracing::Level::INFO))
    });
    let _ = tracing_subscriber::registry().with(log.with_filter(filter)).with(traces).try_init();
    Ok(Telemetry { provider })
}

/// A provider batching spans to `endpoint`'s `/v1/traces`.
fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let failed = |message: String| TelemetryError::Otlp { endpoint: endpoint.to_owned(), message };
    let runtime = tokio::runtime::Handle::try_current().map_err(|err| failed(err.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(OtlpClient { runtime })
        .build()
        .map_err(|err| failed(err.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_owned()).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Longest an export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest collector answer read.
const MAX_ANSWER: usize = 1 << 20;

/// The OTLP exporter's HTTP client: hyper (HTTP/1.1, TLS with the web's roots for `https`), run
/// on Kith's tokio runtime. The SDK's batch exporter calls it from a thread of its own, so each
/// request is a task spawned on the runtime.
#[derive(Debug)]
struct OtlpClient {
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(EXPORT_TIMEOUT, send(request)).await {
                Ok(result) => result,
                Err(_) => Err("the collector did not answer in time".into()),
            }
        });
        task.await?
    }
}

/// Sends one request on a connection of its own.
async fn send(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or("the endpoint has no host")?.to_owned();
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let (mut parts, body) = request.into_parts();
    parts.uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
    let authority = uri.authority().map_or(host.as_str(), |a| a.as_str()).to_owned();
    parts.headers.insert(hyper::header::HOST, authority.parse()?);
    let request = hyper::Request::from_parts(parts, Full::new(body));
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let response = if tls {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host)?;
        let stream = tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    };
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}

fn tls_config() -> std::sync::Arc<tokio_rustls::rustls::ClientConfig> {
    use tokio_rustls::rustls;
    static CONFIG: OnceLock<std::sync::Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            std::sync::Arc::new(config)
        })
        .clone()
}

/// The remote parent of a request: its W3C `traceparent` (and `tracestate`), if valid.
pub fn remote_parent(headers: &axum::http::HeaderMap) -> Option<opentelemetry::Context> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    headers.get("traceparent")?;
    let context = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` a child of the request's remote parent (no-op when traces are not exported).
pub fn adopt_remote_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if let Some(parent) = remote_parent(headers) {
        let _ = span.set_parent(parent);
    }
}
