//! The host side of `kith:plugin@1`: the bindings, and the state each plugin instance's store
//! carries (the call's mode, budgets, transaction and output) with the checks every host
//! function makes first (`plugin::host_functions`): grants, budgets, write permission. A
//! refused call returns `error-code.denied` to the plugin (never a trap) and is audited.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as Json;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::domain::actor::{Actor, Role};
use crate::error::Error;
use crate::plugin::manifest::object_capability;
use crate::service::Kith;
use crate::store::plugins;

/// Bindings of `kith:plugin@1` (one module per supported major version), generated from the
/// newest 1.x WIT: world `base` (what every 1.x component exports).
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../schemas/wit/v1.4.0",
        world: "base",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// The `extension` export of components built with SDK 1.2 or later and the `http-handler`
/// export of SDK 1.3 or later (each looked up when present), sharing the imports of [`v1`].
pub mod v1_ext {
    wasmtime::component::bindgen!({
        path: "../schemas/wit/v1.4.0",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "kith:plugin/types": super::v1::kith::plugin::types,
            "kith:plugin/host": super::v1::kith::plugin::host,
            "kith:plugin/http": super::v1::kith::plugin::http,
            "kith:plugin/aggregate": super::v1::kith::plugin::aggregate,
            "kith:plugin/mail": super::v1::kith::plugin::mail,
            "kith:plugin/links": super::v1::kith::plugin::links,
            "kith:plugin/bulk": super::v1::kith::plugin::bulk,
        },
    });
}

use v1::kith::plugin::types::{ErrorCode, HostError};

use crate::plugin::host_functions::invalid;

/// Most log lines one call may write; the rest are dropped and counted.
pub const MAX_LOG_LINES: u32 = 100;
/// Longest log line kept (longer ones are cut).
pub const MAX_LOG_BYTES: usize = 4_096;
/// Longest key–value key.
pub const MAX_KV_KEY: usize = 256;
/// Largest key–value value.
pub const MAX_KV_VALUE: usize = 64 << 10;
/// Most keys per plugin.
pub const MAX_KV_KEYS: i64 = 10_000;
/// Bytes one plugin call may pass into host calls that store or send data (key–value writes,
/// record writes, HTTP requests), in all: the documented 8 MiB per call.
pub const MAX_CALL_BYTES: usize = 8 << 20;
/// Refused calls audited per call (the rest are only counted).
const MAX_AUDITED_DENIALS: usize = 5;

/// What a plugin is allowed, shared by all its instances.
#[derive(Debug)]
pub struct PluginContext {
    /// The plugin id.
    pub id: String,
    /// Granted capabilities.
    pub grants: BTreeSet<String>,
    /// Effective non-secret settings.
    pub settings: BTreeMap<String, Json>,
    /// Kith's services.
    pub kith: Kith,
    /// Where it may send HTTP requests, and its secrets for them.
    pub http: crate::plugin::http::HttpPolicy,
    /// What its key–value store may hold (`[limits] kv_mib`).
    pub kv_quota: plugins::KvQuota,
    /// What its key–value store holds, as this process last knew it (see [`KvUsageCache`]).
    pub kv_usage: std::sync::Mutex<KvUsageCache>,
    /// When this minute began, and the records written in it while handling chained events.
    pub chained_writes: std::sync::Mutex<(std::time::Instant, u32)>,
    /// `[limits] writes_per_event` and `chained_writes_per_minute`.
    pub write_limits: (u32, u32),
    /// `[limits] mail_per_minute`.
    pub mail_rate: crate::plugin::http::RateLimit,
    /// The key that signs its links, once read (or made) in the database.
    pub link_key: tokio::sync::OnceCell<[u8; 32]>,
}

/// What a plugin's key–value store holds, kept in memory so a write does not read every key's
/// size: read from the database at most every [`KvUsageCache::FRESH`] and moved by each write
/// of this process in between. Writes of other processes, and writes of calls that roll back,
/// make it drift until the next read; the quota is a bound on a runaway plugin, not an exact
/// count.
#[derive(Debug, Default)]
pub struct KvUsageCache {
    usage: Option<(plugins::KvUsage, std::time::Instant)>,
}

impl KvUsageCache {
    /// How long a read of the database is trusted.
    const FRESH: std::time::Duration = std::time::Duration::from_secs(10);

    /// The usage, if known and fresh.
    pub(crate) fn known(&self) -> Option<plugins::KvUsage> {
        self.usage.filter(|(_, at)| at.elapsed() < Self::FRESH).map(|(usage, _)| usage)
    }

    /// The usage after a write; `read` when the write read it from the database.
    pub(crate) fn update(&mut self, usage: plugins::KvUsage, read: bool) {
        let at = match self.usage {
            Some((_, at)) if !read => at,
            _ => std::time::Instant::now(),
        };
        self.usage = Some((usage, at));
    }
}

/// Why the current call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    /// Handling events of causation depth `depth`.
    Event {
        /// The deepest event of the batch.
        depth: u32,
    },
    /// Inside a write (`before-write`): reads only.
    BeforeWrite,
    /// A computed field or a query: reads only.
    ReadOnly,
    /// A mutation or a scheduled job: reads and writes.
    Command,
}

/// The per-call bookkeeping.
#[derive(Debug)]
pub struct CallState {
    /// Why the call runs.
    pub mode: CallMode,
    /// Log lines written.
    pub log_lines: u32,
    /// Log lines dropped.
    pub dropped_logs: u32,
    /// Refused calls: (capability, function).
    pub denied: Vec<(String, String)>,
    /// Bytes passed into data-carrying host calls so far (see [`MAX_CALL_BYTES`]).
    pub bytes_in: usize,
    /// Records written in this call (event calls only).
    pub writes: u32,
    /// Most records this call may write: `writes_per_event` times its events (events only).
    pub write_budget: Option<u32>,
    /// Why the call went over a write budget, if it did: the plugin is then suspended, and the
    /// call fails whatever the plugin answers.
    pub over_budget: Option<String>,
    /// The call's transaction, begun by its first write: every write of the call (records and
    /// key–value data) goes into it, and its reads see them. It commits only when the call
    /// succeeds (`plugin::runtime`), so a failed call leaves nothing.
    pub tx: Option<crate::store::Tx>,
}

impl CallState {
    /// Fresh state for a call.
    pub fn new(mode: CallMode) -> CallState {
        CallState {
            mode,
            log_lines: 0,
            dropped_logs: 0,
            denied: Vec::new(),
            bytes_in: 0,
            writes: 0,
            write_budget: None,
            over_budget: None,
            tx: None,
        }
    }
}

/// What a plugin instance's store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and table caps, and the linear memory the instance holds.
    pub limits: Limits,
    /// The guest's stdout and stderr, logged after each call.
    pub output: crate::plugin::output::CappedOutput,
    /// The last lines of the last call's output (e.g. a panic message).
    pub output_tail: String,
    /// The plugin.
    pub plugin: Arc<PluginContext>,
    /// The current call.
    pub call: CallState,
}

/// An instance's caps ([`StoreLimits`]), counting the linear memory it holds: what a plugin in
/// any language costs per instance (its runtime's heap included), for the benchmarks and health.
pub struct Limits {
    caps: StoreLimits,
    /// Bytes of linear memory, all memories of the instance together.
    pub memory: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.caps.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory += desired.saturating_sub(current);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.caps.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.caps.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.caps.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.caps.instances()
    }

    fn tables(&self) -> usize {
        self.caps.tables()
    }

    fn memories(&self) -> usize {
        self.caps.memories()
    }
}

/// Bytes of stdout/stderr kept per call (the rest is dropped and counted).
pub const OUTPUT_CAPACITY: usize = 64 << 10;
/// Lines of a call's output written to Kith's log.
const OUTPUT_LINES: usize = 50;

impl HostState {
    /// State for a new instance of `plugin`: WASI with nothing inherited (no files, no
    /// environment, no network, no clocks beyond WASI's), stdout and stderr captured.
    pub fn new(plugin: Arc<PluginContext>, limits: StoreLimits) -> HostState {
        let output = crate::plugin::output::CappedOutput::new(OUTPUT_CAPACITY);
        let wasi = WasiCtx::builder().stdout(output.clone()).stderr(output.clone()).max_random_size(64 << 10).build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(1_000);
        HostState {
            wasi,
            table,
            limits: Limits { caps: limits, memory: 0 },
            output,
            output_tail: String::new(),
            plugin,
            call: CallState::new(CallMode::Event { depth: 0 }),
        }
    }

    /// Logs what the guest printed during the call (its first lines), tagged with the plugin
    /// id, and says how much was left out.
    pub fn flush_output(&mut self) {
        let (bytes, dropped) = self.output.take();
        if bytes.is_empty() && dropped == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        // One log line per line printed, with what could forge another (a lone `\r`, terminal
        // escapes) escaped.
        let lines: Vec<String> =
            text.lines().filter(|l| !l.trim().is_empty()).map(crate::plugin::output::escape_controls).collect();
        for line in lines.iter().take(OUTPUT_LINES) {
            tracing::info!(target: "kith::plugin", plugin = %self.plugin.id, stream = "stdio", "{line}");
        }
        let skipped = lines.len().saturating_sub(OUTPUT_LINES);
        if skipped > 0 || dropped > 0 {
            tracing::warn!(target: "kith::plugin", plugin = %self.plugin.id, skipped_lines = skipped, dropped_bytes = dropped, "plugin output over the per-call limit was left out");
        }
        let tail: Vec<&str> = lines.iter().rev().take(3).map(String::as_str).collect();
        self.output_tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
    }

    /// The tail of what the guest printed in its last call (e.g. its panic message).
    pub fn output_tail(&self) -> String {
        self.output_tail.clone()
    }

    /// Counts a record write against the event budgets: `writes_per_event` for the call's
    /// events, and `chained_writes_per_minute` while handling events that plugin writes caused.
    /// Past either the write is refused and the call marked over budget (it then fails and the
    /// plugin is suspended: a plugin whose writes feed its own events grows without end).
    pub(crate) fn count_write(&mut self) -> Result<(), HostError> {
        let CallMode::Event { depth } = self.call.mode else { return Ok(()) };
        self.call.writes += 1;
        let (_, per_minute) = self.plugin.write_limits;
        let over = if self.call.write_budget.is_some_and(|budget| self.call.writes > budget) {
            Some(format!(
                "wrote more than {} records for one event (`[limits] writes_per_event`)",
                self.plugin.write_limits.0
            ))
        } else if depth > 0 {
            let mut window = self.plugin.chained_writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = std::time::Instant::now();
            if now.duration_since(window.0) >= std::time::Duration::from_secs(60) {
                *window = (now, 0);
            }
            window.1 += 1;
            (window.1 > per_minute).then(|| {
                format!(
                    "wrote more than {per_minute} records in a minute while handling events caused by plugin \
                     writes (`[limits] chained_writes_per_minute`)"
                )
            })
        } else {
            None
        };
        match over {
            Some(reason) => {
                self.call.over_budget.get_or_insert(reason.clone());
                Err(HostError {
                    code: ErrorCode::LimitExceeded,
                    message: format!("write refused: the plugin {reason}"),
                })
            }
            None => Ok(()),
        }
    }

    /// Counts `bytes` passed into a data-carrying host call against [`MAX_CALL_BYTES`].
    pub(crate) fn spend(&mut self, bytes: usize) -> Result<(), HostError> {
        self.call.bytes_in = self.call.bytes_in.saturating_add(bytes);
        if self.call.bytes_in > MAX_CALL_BYTES {
            return Err(HostError {
                code: ErrorCode::LimitExceeded,
                message: format!("a call may pass at most {} MiB of data into Kith", MAX_CALL_BYTES >> 20),
            });
        }
        Ok(())
    }

    pub(crate) fn check(&mut self, capability: &str, function: &str) -> Result<(), HostError> {
        if self.plugin.grants.contains(capability) {
            return Ok(());
        }
        self.call.denied.push((capability.to_owned(), function.to_owned()));
        Err(HostError {
            code: ErrorCode::Denied,
            message: format!("the plugin `{}` was not granted `{capability}` (needed by {function})", self.plugin.id),
        })
    }

    pub(crate) fn check_object(&mut self, object: &str, write: bool, function: &str) -> Result<(), HostError> {
        // Its own objects a plugin may always use (while enabled, they are in the registry).
        let own = self.plugin.kith.registry().get(object).is_some_and(|d| d.plugin.as_deref() == Some(&self.plugin.id));
        if own {
            return if write { self.writable() } else { Ok(()) };
        }
        let other = self.plugin.kith.registry().get(object).and_then(|d| Some((d.plugin.clone()?, d.plural.clone())));
        let capability = match (other, object_capability(object, write)) {
            (_, Some(capability)) => capability,
            // Another plugin's object: readable with its grant, never writable.
            (Some((plugin, plural)), None) if !write => {
                crate::plugin::manifest::plugin_object_capability(&plugin, &plural)
            }
            (Some((plugin, _)), None) => {
                return Err(invalid(format!(
                    "`{object}` belongs to plugin `{plugin}`: other plugins may only read it"
                )));
            }
            (None, None) => return Err(invalid(format!("`{object}` is not an object plugins can use"))),
        };
        self.check(&capability, function)?;
        if write { self.writable() } else { Ok(()) }
    }

    /// Writes wait for no other write: inside `before-write` (which runs within a write) they
    /// are refused.
    pub(crate) fn writable(&self) -> Result<(), HostError> {
        let context = match self.call.mode {
            CallMode::BeforeWrite => "inside before-write",
            CallMode::ReadOnly => "in computed fields and queries",
            CallMode::Event { .. } | CallMode::Command => return Ok(()),
        };
        Err(HostError { code: ErrorCode::Unavailable, message: format!("writes are not available {context}") })
    }

    /// The call's transaction, begun now if this is its first write.
    pub(crate) async fn write_tx(&mut self) -> Result<&crate::store::Tx, Error> {
        if self.call.tx.is_none() {
            let tx = self.plugin.kith.store.begin_held(&self.actor()).await?;
            self.call.tx = Some(tx);
        }
        self.call.tx.as_ref().ok_or_else(|| Error::internal("the call's transaction is gone"))
    }

    /// Where the call reads: its transaction once it wrote (to see its own writes).
    pub(crate) fn reader(&self) -> crate::store::txn::Reader<'_> {
        self.plugin.kith.store.reader(self.call.tx.as_ref())
    }

    pub(crate) fn actor(&self) -> Actor {
        let depth = match self.call.mode {
            CallMode::Event { depth } => depth + 1,
            CallMode::BeforeWrite | CallMode::ReadOnly | CallMode::Command => 1,
        };
        Actor::plugin(&self.plugin.id, Role::Agent, depth)
    }
}

/// Writes the audit entries and counters of the calls a plugin was refused. Runs in its own
/// task: a call inside a write (before-write) must not wait for another write.
pub fn report_denials(kith: &Kith, plugin: &str, denied: Vec<(String, String)>) {
    if denied.is_empty() {
        return;
    }
    let kith = kith.clone();
    let plugin = plugin.to_owned();
    tokio::spawn(async move {
        let total = denied.len() as i64;
        let result = async {
            let tx = kith.store.begin(&Actor::plugin(&plugin, Role::Viewer, 0)).await?;
            for (capability, function) in denied.iter().take(MAX_AUDITED_DENIALS) {
                crate::store::audit::record(
                    &tx,
                    "plugin.denied",
                    "plugin",
                    None,
                    serde_json::json!({"plugin": plugin, "capability": capability, "call": function}),
                )
                .await?;
            }
            plugins::add_denied(tx.conn(), &plugin, total).await?;
            tx.commit().await
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(plugin = %plugin, error = %err, "cannot record refused plugin calls");
        }
    });
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
