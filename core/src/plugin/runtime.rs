//! Running one plugin: a pool of warm instances, as many as its `[limits] instances` (never
//! shared between plugins, thrown away after any failure, after a bounded number of calls and on
//! upgrade), each call under an epoch deadline, a memory cap and a wall-clock backstop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};

use crate::plugin::PluginError;
use crate::plugin::engine::PluginEngine;
use crate::plugin::host::{CallMode, CallState, HostState, PluginContext, report_denials, v1, v1_ext};
use crate::plugin::manifest::Manifest;
use crate::plugin::output::for_caller;

/// Calls an instance serves before it is replaced.
pub const MAX_CALLS_PER_INSTANCE: u32 = 1_000;
/// Bytes a guest may pass into host calls per call.
const HOSTCALL_FUEL: usize = 8 << 20;

/// The words of a Rust panic as printed by the guest (`thread '…' panicked at src/lib.rs:3:5:`,
/// the message, `note: run with RUST_BACKTRACE=1 …`), without the location and the note.
fn panic_message(output_tail: &str) -> String {
    output_tail
        .split(" | ")
        .filter(|line| !(line.contains("panicked at ") || line.starts_with("note: ")))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// It ran past its time budget.
    Timeout(Duration),
    /// It trapped: a panic, an abort, a stack overflow, the memory cap...
    Trap(String),
    /// It succeeded, but its writes could not be committed.
    Storage(String),
    /// It went over a write budget: its writes are dropped and the plugin is suspended.
    OverBudget(String),
    /// Every instance it may have was busy for the whole budget (not the plugin's fault).
    Busy(u32),
}

/// A call's outcome as `/metrics` counts it: `ok`, `error` (the plugin answered with an error
/// of its own) or `failed` (it trapped, timed out, went over a budget, or found no instance).
fn outcome<T, E>(result: &Result<Result<T, E>, CallFailure>) -> &'static str {
    match result {
        Ok(Ok(_)) => "ok",
        Ok(Err(_)) => "error",
        Err(_) => "failed",
    }
}

impl CallFailure {
    /// Whether the failure is the plugin's own (counted toward a suspension), not Kith being
    /// busy.
    pub fn counts(&self) -> bool {
        !matches!(self, CallFailure::Busy(_))
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Timeout(budget) => write!(f, "timed out after {} ms", budget.as_millis()),
            CallFailure::Trap(message) => f.write_str(message),
            CallFailure::Storage(message) => write!(f, "its writes could not be saved: {message}"),
            CallFailure::OverBudget(reason) => write!(f, "suspended: it {reason}"),
            CallFailure::Busy(n) => write!(f, "all {n} of its instances stayed busy; try again"),
        }
    }
}

struct Warm {
    store: Store<HostState>,
    bindings: v1::Base,
    extension: Option<v1_ext::exports::kith::plugin::extension::Guest>,
    handler: Option<v1_ext::exports::kith::plugin::http_handler::Guest>,
    calls: u32,
    /// Its place under `[limits] instances`; an instance without one (made for a hook while
    /// all places were taken) is never pooled.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A plugin ready to run.
pub struct LoadedPlugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// The stored row's generation this was loaded from.
    pub generation: i64,
    /// Whether it is enabled and active (not suspended).
    pub active: bool,
    /// Grants, settings and services.
    pub context: Arc<PluginContext>,
    pre: wasmtime::component::InstancePre<HostState>,
    indices: v1::BaseIndices,
    extension: Option<v1_ext::exports::kith::plugin::extension::GuestIndices>,
    handler: Option<v1_ext::exports::kith::plugin::http_handler::GuestIndices>,
    /// Per declared route (in the manifest's order), its `per_minute` budget in this process.
    route_rates: Vec<crate::plugin::http::RateLimit>,
    engine: PluginEngine,
    pool: Mutex<Vec<Warm>>,
    /// Places for instances (`[limits] instances`): with its pool, the memory one plugin can
    /// take in this process is bounded.
    places: Arc<tokio::sync::Semaphore>,
    /// The most places taken at once so far.
    peak_places: std::sync::atomic::AtomicUsize,
    /// The most linear memory an instance held after a call.
    peak_memory: std::sync::atomic::AtomicUsize,
    /// Woken when an instance goes back to the pool: an idle instance keeps its place, so a
    /// call waiting for a place takes the returned instance instead.
    returned: tokio::sync::Notify,
    calls: std::sync::atomic::AtomicU64,
    compute_calls: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("id", &self.manifest.id).field("generation", &self.generation).finish()
    }
}

/// The linker every v1 plugin is instantiated with: WASI p2 (which Rust's std needs; nothing
/// is inherited) and Kith's host interface.
pub fn linker(engine: &PluginEngine) -> Result<Linker<HostState>, PluginError> {
    let mut linker = Linker::<HostState>::new(engine.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| PluginError::Runtime(format!("linking WASI: {e:#}")))?;
    v1::Base::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .map_err(|e| PluginError::Runtime(format!("linking the host API: {e:#}")))?;
    Ok(linker)
}

impl LoadedPlugin {
    /// Prepares `component` (compiled by `engine`) for instantiation.
    pub fn new(
        engine: &PluginEngine,
        linker: &Linker<HostState>,
        component: &wasmtime::component::Component,
        manifest: Manifest,
        generation: i64,
        active: bool,
        context: Arc<PluginContext>,
    ) -> Result<LoadedPlugin, PluginError> {
        let pre = linker.instantiate_pre(component).map_err(|e| {
            PluginError::Component(format!("the component does not fit the kith:plugin@1 world: {e:#}"))
        })?;
        let indices = v1::BaseIndices::new(&pre).map_err(|e| {
            PluginError::Component(format!("the component does not export the kith:plugin@1 functions: {e:#}"))
        })?;
        let extension = v1_ext::exports::kith::plugin::extension::GuestIndices::new(&pre).ok();
        if extension.is_none() && manifest.contributes() {
            return Err(PluginError::Component(
                "the manifest declares fields, queries, mutations or jobs, but the component does not export \
                 kith:plugin/extension: build it against the world `plugin` of kith:plugin 1.2 or later (the Rust, \
                 TypeScript and Python SDKs do; world `base` has no extension exports)"
                    .into(),
            ));
        }
        let handler = v1_ext::exports::kith::plugin::http_handler::GuestIndices::new(&pre).ok();
        if handler.is_none() && !manifest.routes.is_empty() {
            return Err(PluginError::Component(
                "the manifest declares routes, but the component does not export kith:plugin/http-handler \
                 (build it with kith-plugin-sdk 1.3 or later)"
                    .into(),
            ));
        }
        let route_rates = manifest.routes.iter().map(|r| crate::plugin::http::RateLimit::new(r.per_minute)).collect();
        let places = Arc::new(tokio::sync::Semaphore::new(manifest.limits.instances as usize));
        Ok(LoadedPlugin {
            manifest,
            generation,
            active,
            context,
            pre,
            indices,
            extension,
            handler,
            route_rates,
            engine: engine.clone(),
            pool: Mutex::default(),
            places,
            peak_places: std::sync::atomic::AtomicUsize::new(0),
            peak_memory: std::sync::atomic::AtomicUsize::new(0),
            returned: tokio::sync::Notify::new(),
            calls: std::sync::atomic::AtomicU64::new(0),
            compute_calls: std::sync::atomic::AtomicU64::new(0),
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// How many calls into the plugin this process made (any export, failed ones too).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many `compute-field` calls this process made (one per page and field).
    pub fn compute_calls(&self) -> u64 {
        self.compute_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most linear memory one instance of this process held after a call, in bytes (its
    /// language runtime's heap included).
    pub fn peak_memory_per_instance(&self) -> usize {
        self.peak_memory.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most instances under `[limits] instances` this process had at once.
    pub fn peak_instances(&self) -> usize {
        self.peak_places.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes that a call failed (its failure is being recorded).
    pub fn mark_failed(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a call failed since the last time this was asked; clears the mark.
    pub fn clear_failed(&self) -> bool {
        self.failed.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// A warm instance from the pool, or a new one. A call with a `wait` waits that long at
    /// most for a place under `[limits] instances`; a hook (`None`, inside a write, with a
    /// budget of milliseconds) never waits: without a free place it gets an instance that is
    /// dropped after the call.
    async fn instance(&self, wait: Option<Duration>) -> Result<Warm, CallFailure> {
        if let Some(warm) = self.idle() {
            return Ok(warm);
        }
        let permit = match wait {
            Some(wait) => {
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    // Registered before looking at the pool, so a return in between is not missed.
                    let returned = self.returned.notified();
                    tokio::pin!(returned);
                    returned.as_mut().enable();
                    if let Some(warm) = self.idle() {
                        return Ok(warm);
                    }
                    tokio::select! {
                        permit = self.places.clone().acquire_owned() => match permit {
                            Ok(permit) => break Some(permit),
                            Err(_) => return Err(CallFailure::Busy(self.manifest.limits.instances)),
                        },
                        () = &mut returned => continue,
                        () = tokio::time::sleep_until(deadline) => {
                            return Err(CallFailure::Busy(self.manifest.limits.instances));
                        }
                    }
                }
            }
            None => self.places.clone().try_acquire_owned().ok(),
        };
        let taken = self.manifest.limits.instances as usize - self.places.available_permits();
        self.peak_places.fetch_max(taken, std::sync::atomic::Ordering::Relaxed);
        // While this call waited, an instance may have come back.
        if let Some(warm) = self.idle() {
            return Ok(warm);
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size((self.manifest.limits.memory_mib << 20) as usize)
            .table_elements(100_000)
            .instances(32)
            .tables(32)
            .memories(32)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(self.engine.engine(), HostState::new(self.context.clone(), limits));
        store.limiter(|state| &mut state.limits);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        // Instantiation runs the guest's start code: give it a budget too.
        arm_deadline(&mut store, Duration::from_millis(1_000));
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| CallFailure::Trap(format!("cannot instantiate: {e:#}")))?;
        let bindings = self
            .indices
            .load(&mut store, &instance)
            .map_err(|e| CallFailure::Trap(format!("cannot load the exports: {e:#}")))?;
        let extension = match &self.extension {
            Some(indices) => Some(
                indices
                    .load(&mut store, &instance)
                    .map_err(|e| CallFailure::Trap(format!("cannot load the extension exports: {e:#}")))?,
            ),
            None => None,
        };
        let handler = match &self.handler {
            Some(indices) => Some(
                indices
                    .load(&mut store, &instance)
                    .map_err(|e| CallFailure::Trap(format!("cannot load the http-handler export: {e:#}")))?,
            ),
            None => None,
        };
        Ok(Warm { store, bindings, extension, handler, calls: 0, permit })
    }

    /// An idle instance from the pool.
    fn idle(&self) -> Option<Warm> {
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn give_back(&self, mut warm: Warm) {
        warm.calls += 1;
        warm.store.data_mut().flush_output();
        self.peak_memory.fetch_max(warm.store.data().limits.memory, std::sync::atomic::Ordering::Relaxed);
        if warm.calls >= MAX_CALLS_PER_INSTANCE || warm.permit.is_none() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every instance the plugin may have stays warm (a pool of four made all but four of
        // sixteen concurrent callers' instances afresh, call after call).
        if pool.len() < self.manifest.limits.instances as usize {
            pool.push(warm);
            drop(pool);
            self.returned.notify_one();
        }
    }

    /// Drops every warm instance (e.g. before an upgrade takes effect).
    pub fn drain(&self) {
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    fn failure(&self, warm: &mut Warm, err: &wasmtime::Error, budget: Duration) -> CallFailure {
        warm.store.data_mut().flush_output();
        if let Some(trap) = err.downcast_ref::<Trap>() {
            return match trap {
                Trap::Interrupt => CallFailure::Timeout(budget),
                Trap::StackOverflow => CallFailure::Trap("stack overflow".into()),
                // Rust keeps its stack in linear memory: overflowing it runs off the memory.
                Trap::MemoryOutOfBounds => CallFailure::Trap(
                    "out-of-bounds memory access (a stack overflow or memory corruption in the plugin)".into(),
                ),
                Trap::UnreachableCodeReached => {
                    // The panic's words reach the caller; where in the plugin's source it
                    // happened (and the wasm backtrace) stays in the server log.
                    let message = panic_message(&warm.store.data().output_tail());
                    tracing::warn!(plugin = %self.manifest.id, error = ?err, "a plugin call trapped");
                    CallFailure::Trap(if message.is_empty() {
                        "panicked or aborted (wasm `unreachable`)".into()
                    } else {
                        for_caller(&format!("panicked: {message}"))
                    })
                }
                other => CallFailure::Trap(format!("trapped: {other}")),
            };
        }
        let message = format!("{err:#}");
        if message.contains("forcing trap when growing memory") {
            return CallFailure::Trap(format!(
                "exceeded its memory limit of {} MiB (raise `memory_mib` under `[limits]` in plugin.toml, at most 256)",
                self.manifest.limits.memory_mib
            ));
        }
        // The full chain, with the wasm backtrace and the guest's source paths, is for the
        // server log; the caller hears the root cause's first line.
        tracing::warn!(plugin = %self.manifest.id, error = ?err, "a plugin call failed");
        let root = err.root_cause().to_string();
        CallFailure::Trap(for_caller(root.lines().next().unwrap_or("failed")))
    }

    /// [`LoadedPlugin::call_events`], unobserved.
    async fn run_events(
        &self,
        events: &[v1::kith::plugin::types::Event],
        depth: u32,
    ) -> (Result<Result<(), v1::kith::plugin::types::EventFailure>, CallFailure>, Option<crate::store::Tx>) {
        // Each event of the batch gets the plugin's per-event budget.
        let per_event = self.manifest.limits.event_timeout_ms;
        let budget = Duration::from_millis(per_event.saturating_mul(events.len().max(1) as u64).min(30_000));
        let mut warm = match self.instance(Some(budget)).await {
            Ok(warm) => warm,
            Err(failure) => return (Err(failure), None),
        };
        let mut call = CallState::new(CallMode::Event { depth });
        call.write_budget = Some(self.manifest.limits.writes_per_event.saturating_mul(events.len().max(1) as u32));
        warm.store.data_mut().call = call;
        arm_deadline(&mut warm.store, budget);
        let outcome =
            tokio::time::timeout(budget + grace(budget), warm.bindings.call_on_event(&mut warm.store, events)).await;
        self.finish(warm, outcome, budget)
    }

    /// [`LoadedPlugin::call_before_write`], unobserved.
    async fn run_before_write(
        &self,
        change: &v1::kith::plugin::types::Change,
        budget: Duration,
    ) -> Result<v1::kith::plugin::types::Verdict, CallFailure> {
        let mut warm = self.instance(None).await?;
        warm.store.data_mut().call = CallState::new(CallMode::BeforeWrite);
        arm_deadline(&mut warm.store, budget);
        let outcome =
            tokio::time::timeout(budget + grace(budget), warm.bindings.call_before_write(&mut warm.store, change))
                .await;
        // Writes are refused here: there is no transaction to settle.
        self.finish(warm, outcome, budget).0
    }

    /// [`LoadedPlugin::call_compute_field`], unobserved.
    async fn run_compute_field(
        &self,
        object: &str,
        field: &str,
        ids: &[String],
    ) -> Result<Result<Vec<String>, String>, CallFailure> {
        self.compute_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let budget = Duration::from_millis(self.manifest.limits.event_timeout_ms.max(1_000));
        let mut warm = self.instance(Some(budget)).await?;
        let Some(extension) = warm.extension.clone() else { return Err(no_extension()) };
        warm.store.data_mut().call = CallState::new(CallMode::ReadOnly);
        arm_deadline(&mut warm.store, budget);
        let outcome = tokio::time::timeout(
            budget + grace(budget),
            extension.call_compute_field(&mut warm.store, object, field, ids),
        )
        .await;
        self.finish(warm, outcome, budget).0
    }

    /// [`LoadedPlugin::call_operation`], unobserved.
    async fn run_operation(
        &self,
        name: &str,
        arguments: &str,
        caller: &str,
        write: bool,
    ) -> Result<Result<String, v1_ext::exports::kith::plugin::extension::OperationError>, CallFailure> {
        let budget = Duration::from_millis(self.manifest.limits.event_timeout_ms.max(1_000) * 5);
        let mut warm = self.instance(Some(budget)).await?;
        let Some(extension) = warm.extension.clone() else { return Err(no_extension()) };
        warm.store.data_mut().call = CallState::new(if write { CallMode::Command } else { CallMode::ReadOnly });
        arm_deadline(&mut warm.store, budget);
        let outcome = tokio::time::timeout(
            budget + grace(budget),
            extension.call_call_operation(&mut warm.store, name, arguments, caller),
        )
        .await;
        let (outcome, tx) = self.finish(warm, outcome, budget);
        settle(outcome, tx).await
    }

    /// [`LoadedPlugin::call_route`], unobserved.
    async fn run_route(
        &self,
        request: &v1_ext::exports::kith::plugin::http_handler::Request,
    ) -> Result<v1_ext::exports::kith::plugin::http_handler::Response, CallFailure> {
        let budget = Duration::from_millis(self.manifest.limits.event_timeout_ms.max(1_000) * 5);
        let mut warm = self.instance(Some(budget)).await?;
        let Some(handler) = warm.handler.clone() else {
            return Err(CallFailure::Trap("the component does not export kith:plugin/http-handler (SDK 1.3)".into()));
        };
        warm.store.data_mut().call = CallState::new(CallMode::Command);
        arm_deadline(&mut warm.store, budget);
        let outcome = tokio::time::timeout(budget + grace(budget), handler.call_handle(&mut warm.store, request)).await;
        let (outcome, tx) = self.finish(warm, outcome, budget);
        // A 5xx is a failure: its writes go; below that they are kept.
        let outcome = outcome.map(|response| if response.status >= 500 { Err(response) } else { Ok(response) });
        match settle(outcome, tx).await? {
            Ok(response) | Err(response) => Ok(response),
        }
    }

    /// Whether route `index` of the manifest may answer one more request this minute.
    pub fn route_allowed(&self, index: usize) -> bool {
        self.route_rates.get(index).is_some_and(crate::plugin::http::RateLimit::take)
    }

    /// Answers a request to one of the declared routes (SDK 1.3). Its writes commit when the
    /// status is below 500.
    pub async fn call_route(
        &self,
        request: &v1_ext::exports::kith::plugin::http_handler::Request,
    ) -> Result<v1_ext::exports::kith::plugin::http_handler::Response, CallFailure> {
        self.observed("http-handler", self.run_route(request), |result| match result {
            Ok(response) if response.status < 500 => "ok",
            _ => "failed",
        })
        .await
    }

    /// [`LoadedPlugin::call_job`], unobserved.
    async fn run_job(
        &self,
        job: &str,
        scheduled_for: &str,
        budget: Duration,
    ) -> Result<Result<bool, String>, CallFailure> {
        let mut warm = self.instance(Some(budget)).await?;
        let Some(extension) = warm.extension.clone() else { return Err(no_extension()) };
        warm.store.data_mut().call = CallState::new(CallMode::Command);
        arm_deadline(&mut warm.store, budget);
        let outcome =
            tokio::time::timeout(budget + grace(budget), extension.call_run_job(&mut warm.store, job, scheduled_for))
                .await;
        let (outcome, tx) = self.finish(warm, outcome, budget);
        let wrote = tx.is_some();
        settle(outcome, tx).await.map(|result| result.map(|()| wrote))
    }

    /// Delivers a batch of events. `Ok(Err(..))` is the plugin's own report of which event it
    /// could not handle. The call's writes come back uncommitted, in its transaction (if it
    /// wrote), for the caller to commit with the delivery cursor or to drop.
    pub async fn call_events(
        &self,
        events: &[v1::kith::plugin::types::Event],
        depth: u32,
    ) -> (Result<Result<(), v1::kith::plugin::types::EventFailure>, CallFailure>, Option<crate::store::Tx>) {
        self.observed("on-event", self.run_events(events, depth), |(result, _)| outcome(result)).await
    }

    /// Asks the plugin about a write.
    pub async fn call_before_write(
        &self,
        change: &v1::kith::plugin::types::Change,
        budget: Duration,
    ) -> Result<v1::kith::plugin::types::Verdict, CallFailure> {
        self.observed("before-write", self.run_before_write(change, budget), |result| match result {
            Ok(_) => "ok",
            Err(_) => "failed",
        })
        .await
    }

    /// Computes a declared field for a page of records (one call for all of `ids`).
    pub async fn call_compute_field(
        &self,
        object: &str,
        field: &str,
        ids: &[String],
    ) -> Result<Result<Vec<String>, String>, CallFailure> {
        self.observed("compute-field", self.run_compute_field(object, field, ids), outcome).await
    }

    /// Runs a declared query (`write = false`) or mutation.
    pub async fn call_operation(
        &self,
        name: &str,
        arguments: &str,
        caller: &str,
        write: bool,
    ) -> Result<Result<String, v1_ext::exports::kith::plugin::extension::OperationError>, CallFailure> {
        self.observed("call-operation", self.run_operation(name, arguments, caller, write), outcome).await
    }

    /// Runs a declared job with its own time budget; whether the run wrote (and committed)
    /// anything.
    pub async fn call_job(
        &self,
        job: &str,
        scheduled_for: &str,
        budget: Duration,
    ) -> Result<Result<bool, String>, CallFailure> {
        self.observed("run-job", self.run_job(job, scheduled_for, budget), outcome).await
    }

    /// Runs `call` of `export` in a `plugin_call` span (a child of the request's, exported with
    /// it when tracing is on) and counts it in `kith_plugin_calls_total` by its outcome and in
    /// `kith_plugin_call_duration_seconds`.
    async fn observed<R>(
        &self,
        export: &'static str,
        call: impl std::future::Future<Output = R>,
        outcome: impl FnOnce(&R) -> &'static str,
    ) -> R {
        let span = tracing::info_span!("plugin_call", plugin = %self.manifest.id, export);
        let started = Instant::now();
        let result = tracing::Instrument::instrument(call, span).await;
        let plugin = self.manifest.id.clone();
        metrics::counter!(
            "kith_plugin_calls_total",
            "plugin" => plugin.clone(),
            "export" => export,
            "outcome" => outcome(&result)
        )
        .increment(1);
        metrics::histogram!("kith_plugin_call_duration_seconds", "plugin" => plugin, "export" => export)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// The call's outcome, and its transaction if it wrote (uncommitted).
    fn finish<R>(
        &self,
        mut warm: Warm,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        budget: Duration,
    ) -> (Result<R, CallFailure>, Option<crate::store::Tx>) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let call = std::mem::replace(&mut warm.store.data_mut().call, CallState::new(CallMode::BeforeWrite));
        report_denials(&self.context.kith, self.id(), call.denied);
        if call.dropped_logs > 0 {
            tracing::warn!(target: "kith::plugin", plugin = %self.id(), dropped = call.dropped_logs, "log lines over the per-call limit were dropped");
        }
        let outcome = match outcome {
            // Whatever the plugin answered, a call over its write budget failed.
            Ok(Ok(_)) if call.over_budget.is_some() => {
                Err(CallFailure::OverBudget(call.over_budget.clone().unwrap_or_default()))
            }
            Ok(Ok(value)) => {
                self.give_back(warm);
                Ok(value)
            }
            // The instance may be poisoned: it is dropped, never reused.
            Ok(Err(err)) => Err(self.failure(&mut warm, &err, budget)),
            Err(_) => Err(CallFailure::Timeout(budget)),
        };
        (outcome, call.tx)
    }
}

/// Commits a call's writes when the call succeeded (and the plugin reported no error), and
/// rolls them back otherwise: a failed call leaves nothing.
async fn settle<T, E>(
    outcome: Result<Result<T, E>, CallFailure>,
    tx: Option<crate::store::Tx>,
) -> Result<Result<T, E>, CallFailure> {
    let Some(tx) = tx else { return outcome };
    match outcome {
        Ok(Ok(value)) => match tx.commit().await {
            Ok(()) => Ok(Ok(value)),
            Err(err) => {
                tracing::warn!(error = %err, "committing a plugin call's writes");
                // A rule's refusal is the caller's to read; a database failure's detail is not.
                let said = match &err {
                    crate::Error::Domain(refusal) => refusal.to_string(),
                    _ => "the database did not take them".to_owned(),
                };
                Err(CallFailure::Storage(for_caller(&said)))
            }
        },
        other => {
            if let Err(err) = tx.rollback().await {
                tracing::warn!(error = %err, "rolling back a failed plugin call's writes");
            }
            other
        }
    }
}

/// Slack for the wall-clock backstop over the epoch deadline (which only fires at epoch ticks).
fn grace(budget: Duration) -> Duration {
    budget / 2 + Duration::from_millis(50)
}

/// Makes the guest yield to tokio at every epoch tick (so it never holds a worker thread for
/// long) and trap once `budget` has passed.
fn arm_deadline(store: &mut Store<HostState>, budget: Duration) {
    let deadline = Instant::now() + budget;
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline { Ok(UpdateDeadline::Interrupt) } else { Ok(UpdateDeadline::Yield(1)) }
    });
    store.set_epoch_deadline(1);
}

fn no_extension() -> CallFailure {
    CallFailure::Trap("the component does not export kith:plugin/extension (SDK 1.2 or later)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_reaches_the_caller_without_its_place_in_the_source() {
        let tail = "thread '<unnamed>' panicked at tests/plugins/hostile/src/lib.rs:63:24: | boom on contact.created \
                    | note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace";
        assert_eq!(panic_message(tail), "boom on contact.created");
        assert_eq!(panic_message(""), "");
    }
}
