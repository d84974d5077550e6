//! Configuration: defaults, then `kith.toml`, then `KITH_*` environment variables, then flags.
//!
//! Unknown keys in a file are errors, so a typo never silently falls back to a default. An
//! unknown `KITH_*` environment variable is only a warning naming the nearest setting: other
//! programs' variables share the prefix (`KITH_BIN` for a wrapper script), and refusing them would
//! make Kith unusable in their environment.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The commented example configuration, checked in as `kith.example.toml`.
pub const EXAMPLE: &str = include_str!("../../kith.example.toml");

/// Environment variables that start with `KITH_` but are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["KITH_CONFIG", "KITH_TEST_DATABASE_URL"];

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. The cause is the error's `source`, not part of its message,
    /// so a chain printed with `{:#}` names it once.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A layer has a bad or unknown key.
    #[error("{origin}: {message}")]
    Invalid {
        /// Which layer (`kith.toml`, `environment`).
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// All of Kith's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    /// The HTTP server.
    pub server: ServerConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// Logging.
    pub log: LogConfig,
    /// The GraphQL API.
    pub api: ApiConfig,
    /// The plugin runtime.
    pub plugins: PluginsConfig,
    /// Personal data: retention policies.
    pub privacy: PrivacyConfig,
    /// `/metrics` in the Prometheus text format.
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces.
    pub tracing: TracingConfig,
    /// Outbound webhooks.
    pub webhooks: WebhooksConfig,
    /// E-mail through an SMTP relay.
    pub mail: MailConfig,
}

/// `[metrics]`: `GET /metrics` in the Prometheus text format.
///
/// Off by default: nothing is recorded then (the `metrics` facade without a recorder is a
/// no-op), and a server on a public address shows nothing of its operations, plugins or load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record metrics and serve `/metrics`.
    pub enabled: bool,
    /// A separate address (`127.0.0.1:9464`) serving only `/metrics`, without a token; the main
    /// listener then answers `/metrics` with 404. Empty: `/metrics` is on the main listener.
    pub bind: String,
    /// On the main listener, `/metrics` needs `Authorization: Bearer <token>` of an ADMIN's API
    /// token (Prometheus's `authorization` setting sends it).
    pub require_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig { enabled: false, bind: String::new(), require_token: true }
    }
}

impl MetricsConfig {
    /// The separate address, when one is set.
    pub fn separate_bind(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let bind = self.bind.trim();
        if bind.is_empty() {
            return Ok(None);
        }
        bind.parse()
            .map(Some)
            .map_err(|_| invalid("metrics.bind", "must be an address and port such as 127.0.0.1:9464"))
    }
}

/// `[tracing]`: OpenTelemetry traces (a span per request and per plugin call; an incoming W3C
/// `traceparent` is the request's parent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Where spans go, over OTLP/HTTP in protobuf: the collector's base URL
    /// (`http://127.0.0.1:4318`; `/v1/traces` is added). Empty: no traces (the default).
    pub otlp_endpoint: String,
    /// The `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> TracingConfig {
        TracingConfig { otlp_endpoint: String::new(), service_name: "kith".into() }
    }
}

/// `[webhooks]`: how this process delivers outbound webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Deliver webhooks from this process (several processes sharing a database take turns per
    /// endpoint).
    pub enabled: bool,
    /// Allow endpoints on private, loopback and link-local addresses (checked on the resolved
    /// address and every redirect).
    pub allow_private: bool,
    /// First retry delay; each further retry waits about twice as long (with jitter).
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// How long one event is retried before it goes to the dead-letter list.
    pub retry_for_secs: u64,
    /// How long an endpoint may fail (no success at all) before it is disabled.
    pub disable_after_secs: u64,
    /// How long a rotated-out secret still signs deliveries, next to the new one.
    pub rotation_overlap_secs: u64,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// How often the outbox is checked for new events.
    pub poll_interval_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> WebhooksConfig {
        WebhooksConfig {
            enabled: true,
            allow_private: false,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            retry_for_secs: 3 * 24 * 3600,
            disable_after_secs: 5 * 24 * 3600,
            rotation_overlap_secs: 24 * 3600,
            timeout_ms: 10_000,
            poll_interval_ms: 200,
        }
    }
}

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// None: only for a relay on the same machine or network.
    None,
}

/// `[mail]`: e-mail that plugins send (`kith:plugin/mail`), through an SMTP relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The relay's host name; empty: no e-mail (plugins' sends are refused as unavailable).
    pub relay: String,
    /// The relay's port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: MailTls,
    /// The relay's user name (empty: no authentication).
    pub user: String,
    /// Its password: better in the environment (`KITH_MAIL__PASSWORD`) or in `password_file`.
    pub password: String,
    /// A file holding the password (a container secret), read at start.
    pub password_file: String,
    /// The senders plugins may use: addresses (`appeals@example.org`) or whole domains
    /// (`@example.org`).
    pub senders: Vec<String>,
    /// Send the queue from this process (several processes sharing a database share it).
    pub enabled: bool,
    /// Most messages sent per second by this process.
    pub per_second: u32,
    /// Connections to the relay kept open and used at once.
    pub connections: u32,
    /// Attempts before a temporarily failing message fails for good.
    pub max_attempts: u32,
    /// The first retry's delay (seconds); each next waits about twice as long, at most an hour.
    pub retry_base_secs: u64,
    /// Timeout of each exchange with the relay.
    pub timeout_ms: u64,
    /// How often the queue is checked for due messages.
    pub poll_interval_ms: u64,
}

impl Default for MailConfig {
    fn default() -> MailConfig {
        MailConfig {
            relay: String::new(),
            port: 587,
            tls: MailTls::Starttls,
            user: String::new(),
            password: String::new(),
            password_file: String::new(),
            senders: Vec::new(),
            enabled: true,
            per_second: 50,
            connections: 4,
            max_attempts: 8,
            retry_base_secs: 60,
            timeout_ms: 30_000,
            poll_interval_ms: 500,
        }
    }
}

impl MailConfig {
    /// The password: `password_file`'s content (without its trailing line break) when set,
    /// else `password`.
    pub fn password(&self) -> Result<String, String> {
        if self.password_file.is_empty() {
            return Ok(self.password.clone());
        }
        std::fs::read_to_string(&self.password_file)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| format!("password_file `{}`: {e}", self.password_file))
    }
}

/// `[privacy]`: what Kith does on its own about personal data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Retention policies (`[[privacy.retention]]`): `kith serve` runs them once a day, one
    /// process of those sharing a database; `kith privacy retention` runs them on demand.
    pub retention: Vec<RetentionPolicy>,
}

/// A `[[privacy.retention]]` policy: erase the contacts with nothing new for `inactive_days`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Its name, written in the audit entry of each person it erases.
    pub name: String,
    /// Erase a contact when neither it nor any record referring to it (an activity, a deal, a
    /// ticket, a plugin's gift) was created or changed for this many days, it has no open deal
    /// or ticket, and it is not on legal hold.
    pub inactive_days: u32,
    /// Only the contacts this filter selects, in the filter language of lists, as JSON
    /// (`{"lifecycleStage": {"eq": "LEAD"}}`); every contact when absent.
    #[serde(default)]
    pub filter: Option<String>,
    /// Only report (in the log) whom it would erase.
    #[serde(default)]
    pub dry_run: bool,
}

/// `[plugins]`: how this process runs plugins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Run plugins (hooks and event delivery) in this process.
    pub enabled: bool,
    /// Where compiled components are cached ("" disables the cache).
    pub cache_dir: String,
    /// Install the bundled plugins (disabled) at start-up when they are missing.
    pub install_bundled: bool,
    /// Also enable the bundled plugins, granting what they request.
    pub enable_bundled: bool,
    /// Consecutive failures after which a plugin is suspended until an admin resumes it.
    pub suspend_after: u32,
    /// Delivery attempts of one event before it goes to the dead-letter list.
    pub max_attempts: u32,
    /// First retry delay; each further retry waits twice as long (at most 5 minutes).
    pub retry_base_ms: u64,
    /// Longest chain of plugin writes causing events; deeper events are dead-lettered (loops).
    pub max_event_depth: u32,
    /// Most events in one call of a plugin.
    pub batch_size: u32,
    /// How often the outbox is checked for new events.
    pub poll_interval_ms: u64,
}

impl Default for PluginsConfig {
    fn default() -> PluginsConfig {
        PluginsConfig {
            enabled: true,
            cache_dir: ".kith/plugin-cache".into(),
            install_bundled: true,
            enable_bundled: false,
            suspend_after: 5,
            max_attempts: 5,
            retry_base_ms: 1_000,
            max_event_depth: 8,
            batch_size: 100,
            poll_interval_ms: 100,
        }
    }
}

/// `[api]`: the limits every GraphQL request is held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// Page size when `first` / `last` is not given.
    pub default_page_size: u64,
    /// Largest `first` / `last`.
    pub max_page_size: u64,
    /// Deepest query nesting.
    pub max_depth: usize,
    /// Highest query complexity.
    pub max_complexity: usize,
    /// Allow schema introspection (and the SDL at `GET /graphql/schema.graphql`).
    pub introspection: bool,
    /// Serve GraphiQL at `GET /graphql` to browsers (from the binary; see `http::graphiql`).
    pub graphiql: bool,
    /// Suggest field names on typos.
    pub suggestions: bool,
    /// Requests per minute per token (anonymous requests share one budget); 0 disables.
    pub rate_limit_per_minute: u32,
    /// Longest a GraphQL request may run, in milliseconds; past it, it is stopped and answered
    /// with the error code `TIMEOUT` (a write that had not started is never run).
    pub timeout_ms: u64,
    /// How long the answer to a mutation sent with an `Idempotency-Key` is kept for replay, in
    /// hours.
    pub idempotency_hours: u64,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            max_batch: 10,
            default_page_size: 50,
            max_page_size: 200,
            max_depth: 12,
            max_complexity: 2_000,
            introspection: true,
            graphiql: true,
            suggestions: true,
            rate_limit_per_minute: 1_200,
            timeout_ms: 10_000,
            idempotency_hours: 24,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Longest a request may take before it is answered with a timeout.
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest CSV file the console's import page accepts, in bytes.
    pub max_upload_bytes: usize,
    /// Where people reach this Kith (`https://crm.example.org`): links in e-mail and signed
    /// plugin links start with it. Empty: `http://` and `bind`.
    pub public_url: String,
}

impl ServerConfig {
    /// [`ServerConfig::public_url`], or `http://BIND` when empty.
    pub fn public_url(&self) -> String {
        if self.public_url.trim().is_empty() {
            format!("http://{}", self.bind)
        } else {
            self.public_url.trim().trim_end_matches('/').to_owned()
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://kith.db` (a file path works too) or `postgres://user@host/db`.
    pub url: String,
    /// Most pooled connections.
    pub max_connections: u32,
    /// SQLite durability: `full` (survives power loss) or `normal` (survives a crash of Kith).
    pub sqlite_synchronous: String,
    /// Apply pending migrations at start-up.
    pub auto_migrate: bool,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `kith_core=debug,info`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
            max_body_bytes: 1 << 20,
            max_upload_bytes: 64 << 20,
            public_url: String::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            url: "sqlite://kith.db".into(),
            max_connections: 16,
            sqlite_synchronous: "full".into(),
            auto_migrate: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { format: "text".into(), level: "info".into() }
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(over)) => merge(base, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { origin: origin.to_owned(), message: message.into() }
}

/// A setting that was ignored, for the user to see (the CLI prints these to standard error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning(pub String);

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Turns `KITH_*` variables into a TOML table. `KITH_SECTION__KEY` and `KITH_SECTION_KEY` both
/// name `section.key`; values are read as TOML (numbers, booleans) and otherwise as strings.
/// A variable that names no setting is left out, with a warning.
fn env_table(
    vars: impl IntoIterator<Item = (String, String)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<toml::Table, ConfigError> {
    let sections = toml::Table::try_from(Config::default()).map_err(|e| invalid("defaults", e.to_string()))?;
    let mut table = toml::Table::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("KITH_") else { continue };
        if NON_CONFIG_ENV.contains(&name.as_str()) {
            continue;
        }
        let rest = rest.to_ascii_lowercase();
        let (section, key) = match rest.split_once("__") {
            Some((section, key)) => (section.to_owned(), key.to_owned()),
            None => match sections.keys().find(|s| rest.starts_with(&format!("{s}_"))) {
                Some(section) => (section.clone(), rest[section.len() + 1..].to_owned()),
                None => (String::new(), String::new()),
            },
        };
        let known = sections.get(&section).and_then(toml::Value::as_table).is_some_and(|t| t.contains_key(&key));
        if !known {
            warnings.push(unknown_variable(&name, &sections));
            continue;
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        if let toml::Value::Table(t) = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
            t.insert(key, value);
        }
    }
    Ok(table)
}

/// The warning for `name`, a `KITH_*` variable that is no setting: ignored, and the nearest
/// variable Kith reads when it is close enough to be a typo of it.
fn unknown_variable(name: &str, sections: &toml::Table) -> ConfigWarning {
    let mut candidates: Vec<String> = NON_CONFIG_ENV.iter().map(|v| (*v).to_owned()).collect();
    // The spelling the user chose (`__` or `_` between section and key) is offered first, so it
    // wins a tie.
    let nested_first = name.contains("__");
    for (section, keys) in sections {
        for key in keys.as_table().into_iter().flat_map(toml::Table::keys) {
            let nested = format!("KITH_{section}__{key}").to_ascii_uppercase();
            let flat = format!("KITH_{section}_{key}").to_ascii_uppercase();
            if nested_first {
                candidates.extend([nested, flat]);
            } else {
                candidates.extend([flat, nested]);
            }
        }
    }
    let upper = name.to_ascii_uppercase();
    let nearest = candidates
        .iter()
        .map(|candidate| (edit_distance(&upper, candidate), candidate))
        .min_by_key(|(distance, _)| *distance)
        // A third of the name may differ (`KITH_DATABSE_URL`, `KITH_SERVER__BINDD`); further off,
        // the variable is most likely another program's (`KITH_BIN`).
        .filter(|(distance, candidate)| *distance <= (candidate.len() - "KITH_".len()) / 3);
    match nearest {
        Some((_, candidate)) => {
            ConfigWarning(format!("{name} is not a Kith setting and is ignored; did you mean {candidate}?"))
        }
        None => ConfigWarning(format!("{name} is not a Kith setting and is ignored")),
    }
}

/// The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions), by byte:
/// variable names are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

impl Config {
    /// Loads defaults, then the file (when given), then the environment. Warnings (unknown
    /// `KITH_*` variables) go to `tracing`; [`Config::load_with_warnings`] returns them instead.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let (config, warnings) = Config::load_with_warnings(file, env)?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }

    /// [`Config::load`], returning the warnings for the caller to show: the CLI loads its
    /// configuration before logging is set up, and prints them to standard error.
    pub fn load_with_warnings(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let mut warnings = Vec::new();
        let mut table = toml::Table::try_from(Config::default()).map_err(|e| invalid("defaults", e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
            let origin = path.display().to_string();
            let over: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(&origin, e.to_string()))?;
            // Check the file on its own, so its errors name the file.
            Config::deserialize(toml::Value::Table({
                let mut t = table.clone();
                merge(&mut t, over.clone());
                t
            }))
            .map_err(|e| invalid(&origin, e.to_string()))?;
            merge(&mut table, over);
        }
        merge(&mut table, env_table(env, &mut warnings)?);
        let config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| invalid("environment", e.to_string()))?;
        config.validate()?;
        Ok((config, warnings))
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.database.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(invalid("database.sqlite_synchronous", "must be `full` or `normal`"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be `text` or `json`"));
        }
        if self.server.max_body_bytes == 0 || self.server.max_upload_bytes == 0 || self.server.request_timeout_secs == 0
        {
            return Err(invalid(
                "server",
                "max_body_bytes, max_upload_bytes and request_timeout_secs must be positive",
            ));
        }
        if self.webhooks.timeout_ms == 0 || self.webhooks.retry_base_ms == 0 || self.webhooks.poll_interval_ms == 0 {
            return Err(invalid("webhooks", "timeout_ms, retry_base_ms and poll_interval_ms must be positive"));
        }
        if self.api.max_batch == 0 || self.api.max_page_size == 0 || self.api.default_page_size > self.api.max_page_size
        {
            return Err(invalid(
                "api",
                "max_batch and max_page_size must be positive, default_page_size at most max_page_size",
            ));
        }
        if self.api.timeout_ms == 0 {
            return Err(invalid("api.timeout_ms", "must be positive"));
        }
        if self.api.idempotency_hours == 0 || self.api.idempotency_hours > 24 * 365 {
            return Err(invalid("api.idempotency_hours", "must be from 1 to 8760 (a year)"));
        }
        self.metrics.separate_bind()?;
        let endpoint = self.tracing.otlp_endpoint.trim();
        if !endpoint.is_empty() {
            match url::Url::parse(endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
                _ => return Err(invalid("tracing.otlp_endpoint", "must be an http:// or https:// URL")),
            }
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be positive"));
        }
        Ok(())
    }

    /// Store options derived from `[database]`.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        let mut options = crate::store::StoreOptions::new(&self.database.url);
        options.max_connections = self.database.max_connections;
        options.sqlite_synchronous_full = self.database.sqlite_synchronous == "full";
        options
    }
}

#[cfg(test)]
mod tests;
