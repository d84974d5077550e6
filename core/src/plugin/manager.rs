//! `PluginManager`: the set of plugins this process runs, kept in step with the database so
//! that changes made by any process (or the CLI) apply without a restart; their failures and
//! suspension. Changing what is installed is `plugin::lifecycle`; vetting writes is
//! `plugin::write_hook`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde_json::json;
use wasmtime::component::Linker;

use crate::config::PluginsConfig;
use crate::domain::actor::Actor;
use crate::plugin::PluginError;
use crate::plugin::engine::PluginEngine;
use crate::plugin::host::{HostState, PluginContext};
use crate::plugin::manifest::Manifest;
use crate::plugin::objects;
use crate::plugin::runtime::{CallFailure, LoadedPlugin, linker};
use crate::service::Kith;
use crate::store::audit;
use crate::store::plugins::{self, PluginRow};

pub use crate::plugin::lifecycle::{Grants, ReplayOutcome, visible_settings};
use crate::plugin::write_hook::Hook;

/// Runs and manages plugins.
pub struct PluginManager {
    /// Kith's services.
    pub kith: Kith,
    /// Runtime settings.
    pub config: PluginsConfig,
    pub(crate) engine: PluginEngine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) loaded: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
    pub(crate) running: AtomicBool,
    pub(crate) refreshing: tokio::sync::Mutex<()>,
    /// This process's name in delivery leases.
    pub owner: String,
    /// Where the next delivery round starts among a plugin's partitions (it moves on by the
    /// partitions each round took, so one process serves them all in turn).
    pub(crate) delivery_turn: std::sync::atomic::AtomicU64,
}

impl crate::domain::hook::PluginRuntime for PluginManager {
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

impl PluginManager {
    /// Attaches `manager` to its services as their plugin runtime.
    pub fn attach(manager: &Arc<PluginManager>) {
        let runtime: Arc<dyn crate::domain::hook::PluginRuntime> = manager.clone();
        manager.kith.attach_plugins(&runtime);
    }

    /// The plugin runtime attached to `kith`, while it runs.
    pub fn of(kith: &Kith) -> Option<Arc<PluginManager>> {
        kith.plugins()?.into_any().downcast::<PluginManager>().ok()
    }
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager").field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl PluginManager {
    /// A manager over `kith` (not running plugins until [`PluginManager::start`]).
    pub fn new(kith: Kith, config: &PluginsConfig) -> Result<Arc<PluginManager>, PluginError> {
        let cache = (!config.cache_dir.is_empty()).then(|| std::path::PathBuf::from(&config.cache_dir));
        let engine = PluginEngine::new(cache)?;
        let linker = linker(&engine)?;
        Ok(Arc::new(PluginManager {
            kith,
            config: config.clone(),
            engine,
            linker,
            loaded: RwLock::default(),
            running: AtomicBool::new(false),
            refreshing: tokio::sync::Mutex::new(()),
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7()),
            delivery_turn: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Loads the enabled plugins, installs the write hook and starts event delivery and the
    /// reload loop. Both tasks end when the manager is dropped.
    pub async fn start(self: &Arc<Self>) -> Result<(), PluginError> {
        self.running.store(true, Ordering::SeqCst);
        self.refresh().await?;
        self.kith.store.set_write_hook(Some(Arc::new(Hook(Arc::downgrade(self)))));
        crate::plugin::delivery::spawn(Arc::downgrade(self));
        crate::plugin::jobs::spawn(Arc::downgrade(self));
        Ok(())
    }

    /// Loads the enabled plugins and installs the write hook, without the background tasks
    /// (event delivery, scheduler): for a one-off command such as `kith plugin run-job`.
    pub async fn start_for_command(self: &Arc<Self>) -> Result<(), PluginError> {
        self.running.store(true, Ordering::SeqCst);
        self.refresh().await?;
        self.kith.store.set_write_hook(Some(Arc::new(Hook(Arc::downgrade(self)))));
        Ok(())
    }

    /// Stops running plugins in this process (hooks off, delivery leases released).
    pub async fn stop(&self) {
        self.running.store(false, Ordering::SeqCst);
        self.kith.store.set_write_hook(None);
        let ids: Vec<String> = self.read_loaded().keys().cloned().collect();
        for id in ids {
            let _ = plugins::release(self.kith.store.conn(), &id, None, &self.owner).await;
        }
        self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        // Nothing keeps plugin objects in step any more: the API falls back to core objects.
        self.refresh_objects(&[], &[]);
    }

    /// Whether this manager runs plugins.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    pub(crate) fn read_loaded(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<LoadedPlugin>>> {
        self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The loaded plugins that are enabled and not suspended.
    pub fn active(&self) -> Vec<Arc<LoadedPlugin>> {
        self.read_loaded().values().filter(|p| p.active).cloned().collect()
    }

    /// A loaded plugin.
    pub fn loaded(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.read_loaded().get(id).cloned()
    }

    /// Brings the loaded plugins in line with the database: loads new and changed enabled
    /// plugins, drops disabled and removed ones.
    pub async fn refresh(&self) -> Result<(), PluginError> {
        if !self.is_running() {
            return Ok(());
        }
        let _guard = self.refreshing.lock().await;
        let rows = plugins::list(self.kith.store.conn()).await?;
        let current: BTreeMap<String, i64> =
            self.read_loaded().iter().map(|(id, p)| (id.clone(), p.generation)).collect();
        let mut next = BTreeMap::new();
        let mut enabled = Vec::new();
        let mut disabled = Vec::new();
        for row in rows.iter().filter(|row| !row.enabled) {
            match Manifest::parse(&row.manifest) {
                Ok(manifest) => disabled.push((row.id.clone(), manifest)),
                Err(err) => tracing::error!(plugin = %row.id, error = %err, "unreadable manifest"),
            }
        }
        for row in rows.into_iter().filter(|row| row.enabled) {
            match Manifest::parse(&row.manifest) {
                Ok(manifest) => enabled.push((row.id.clone(), manifest)),
                Err(err) => tracing::error!(plugin = %row.id, error = %err, "unreadable manifest"),
            }
            if current.get(&row.id) == Some(&row.generation)
                && let Some(plugin) = self.loaded(&row.id)
            {
                next.insert(row.id.clone(), plugin);
                continue;
            }
            match self.load(&row).await {
                Ok(plugin) => {
                    tracing::info!(plugin = %row.id, version = %row.version, status = %row.status, "plugin loaded");
                    if let Err(err) = crate::plugin::jobs::sync(self, &plugin.manifest).await {
                        tracing::warn!(plugin = %row.id, error = %err, "cannot schedule the plugin's jobs");
                    }
                    // Tables made before indexes ended with `id` get theirs rebuilt, once.
                    for def in objects::object_defs(&plugin.manifest) {
                        match crate::store::plugin_objects::upgrade_indexes(self.kith.store.conn(), &def).await {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::info!(plugin = %row.id, object = %def.name, indexes = n, "rebuilt indexes to end with id")
                            }
                            Err(err) => {
                                tracing::warn!(plugin = %row.id, object = %def.name, error = %err, "cannot rebuild indexes")
                            }
                        }
                    }
                    next.insert(row.id.clone(), Arc::new(plugin));
                }
                Err(err) => {
                    tracing::error!(plugin = %row.id, error = %err, "cannot load plugin");
                    let _ = plugins::record_failure(
                        self.kith.store.conn(),
                        &row.id,
                        &format!("cannot load: {err}"),
                        i64::MAX,
                        Utc::now(),
                    )
                    .await;
                }
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, old) in loaded.iter() {
            if next.get(id).is_none_or(|new| !Arc::ptr_eq(new, old)) {
                old.drain();
            }
        }
        *loaded = next;
        drop(loaded);
        self.refresh_objects(&enabled, &disabled);
        Ok(())
    }

    /// Makes the registry hold the core objects plus those of the enabled plugins (whether or
    /// not their code loads: the data and its API do not need it), and, as dormant objects,
    /// those of the disabled ones (their tables stay: merges and deletes still reach them).
    pub(crate) fn refresh_objects(&self, enabled: &[(String, Manifest)], disabled: &[(String, Manifest)]) {
        let registry = registry_of(enabled, disabled);
        let current = self.kith.registry();
        if !current.same_as(&registry) {
            tracing::info!(objects = registry.objects().count(), "object registry changed");
            self.kith.set_registry(registry);
        }
    }

    pub(crate) async fn load(&self, row: &PluginRow) -> Result<LoadedPlugin, PluginError> {
        let manifest = Manifest::parse(&row.manifest)?;
        let bytes = plugins::component(self.kith.store.conn(), &row.component_hash)
            .await?
            .ok_or_else(|| PluginError::Component(format!("component {} is missing", row.component_hash)))?;
        let engine = self.engine.clone();
        let hash = row.component_hash.clone();
        let component = tokio::task::spawn_blocking(move || engine.compile(&hash, &bytes))
            .await
            .map_err(|e| PluginError::Runtime(format!("compile task: {e}")))??;
        // Its link key now, outside any call: made on first use inside a call, it would be a
        // second writer waiting on the call's own transaction (SQLite has one).
        let link_key = plugins::link_key(self.kith.store.conn(), &row.id).await?;
        let settings = manifest.effective_settings(&row.settings);
        let context = Arc::new(PluginContext {
            id: row.id.clone(),
            grants: row.grants.iter().cloned().collect(),
            kith: self.kith.clone(),
            http: crate::plugin::http::HttpPolicy {
                origins: crate::plugin::http::granted_origins(&row.grants, &settings),
                secrets: manifest
                    .settings
                    .iter()
                    .filter(|(_, def)| def.secret)
                    .filter_map(|(key, _)| Some((key.clone(), row.settings.get(key)?.as_str()?.to_owned())))
                    .collect(),
                rate: Arc::new(crate::plugin::http::RateLimit::new(manifest.limits.http_per_minute)),
            },
            kv_quota: crate::store::plugins::KvQuota {
                max_keys: crate::plugin::host::MAX_KV_KEYS,
                max_bytes: i64::try_from(manifest.limits.kv_mib << 20).unwrap_or(i64::MAX),
            },
            kv_usage: std::sync::Mutex::default(),
            chained_writes: std::sync::Mutex::new((std::time::Instant::now(), 0)),
            write_limits: (manifest.limits.writes_per_event, manifest.limits.chained_writes_per_minute),
            mail_rate: crate::plugin::http::RateLimit::new(manifest.limits.mail_per_minute),
            link_key: tokio::sync::OnceCell::new_with(Some(link_key)),
            settings,
        });
        let plugin = LoadedPlugin::new(
            &self.engine,
            &self.linker,
            &component,
            manifest,
            row.generation,
            row.status == "active",
            context,
        )?;
        // A run of failures continues across reloads until a call succeeds.
        if row.consecutive_failures > 0 {
            plugin.mark_failed();
        }
        Ok(plugin)
    }

    pub(crate) async fn changed(&self) {
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %err, "reloading plugins");
        }
    }

    pub(crate) async fn get(&self, id: &str) -> Result<PluginRow, PluginError> {
        plugins::get(self.kith.store.conn(), id).await?.ok_or_else(|| PluginError::NotFound(id.to_owned()))
    }

    /// Suspends a plugin at once (it went over a budget), says so in the log and the audit
    /// log, and stops running it in this process.
    pub async fn suspend(&self, id: &str, reason: &str) {
        let suspended = async {
            let tx = self.kith.store.begin(&Actor::system("plugin budget")).await?;
            let suspended = plugins::suspend(tx.conn(), id, reason, Utc::now()).await?;
            if suspended {
                audit::record(&tx, "plugin.suspended", "plugin", None, json!({"plugin": id, "reason": reason})).await?;
            }
            tx.commit().await?;
            Ok::<_, crate::Error>(suspended)
        }
        .await;
        match suspended {
            Ok(true) => {
                tracing::error!(plugin = %id, %reason, "plugin suspended; resume it with `kith plugin enable`");
                self.changed().await;
            }
            Ok(false) => {}
            Err(err) => tracing::error!(plugin = %id, error = %err, "cannot suspend a plugin over its budget"),
        }
    }

    /// Records how a call made outside event delivery ended (a computed field, a query, a
    /// mutation): a failure of the plugin's own counts toward the run that suspends it, as for
    /// event handlers; a success after failures ends the run. Recorded in a task of its own.
    pub fn note_outcome(self: &Arc<Self>, plugin: &LoadedPlugin, failure: Option<&CallFailure>, what: &str) {
        match failure {
            Some(failure) if failure.counts() => {
                plugin.mark_failed();
                let manager = self.clone();
                let id = plugin.id().to_owned();
                let message = format!("{what}: {failure}");
                let over_budget = matches!(failure, CallFailure::OverBudget(_));
                tokio::spawn(async move {
                    if over_budget {
                        manager.suspend(&id, &message).await;
                    } else {
                        manager.record_failure(&id, &message).await;
                    }
                });
            }
            Some(_) => {}
            None => {
                if plugin.clear_failed() {
                    let kith = self.kith.clone();
                    let id = plugin.id().to_owned();
                    tokio::spawn(async move {
                        if let Err(err) = plugins::record_success(kith.store.conn(), &id, 0).await {
                            tracing::warn!(plugin = %id, error = %err, "cannot reset the failure count");
                        }
                    });
                }
            }
        }
    }

    /// Records a failed call; suspends the plugin after `suspend_after` in a row.
    pub async fn record_failure(&self, id: &str, error: &str) {
        tracing::warn!(target: "kith::plugin", plugin = %id, error = %error, "plugin call failed");
        // What an admin reads back (`kith plugin show`) is capped like what a caller hears.
        let error = crate::plugin::output::for_caller(error);
        let error = error.as_str();
        let suspend_after = i64::from(self.config.suspend_after.max(1));
        match plugins::record_failure(self.kith.store.conn(), id, error, suspend_after, Utc::now()).await {
            Ok(true) => {
                tracing::error!(plugin = %id, "plugin suspended after repeated failures; resume it with `kith plugin enable`");
                self.changed().await;
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(plugin = %id, error = %err, "cannot record a plugin failure"),
        }
    }
}

/// The registry of the core objects plus those of the `enabled` plugins (their objects, then
/// their fields and operations), with the `disabled` plugins' objects dormant.
fn registry_of(enabled: &[(String, Manifest)], disabled: &[(String, Manifest)]) -> crate::domain::object::Registry {
    let mut registry = crate::domain::object::Registry::core();
    registry.set_dormant(disabled.iter().flat_map(|(_, manifest)| objects::object_defs(manifest)).collect());
    for (id, manifest) in enabled {
        if let Err(err) = registry.extend(objects::object_defs(manifest)) {
            tracing::error!(plugin = %id, error = %err, "leaving out the plugin's objects");
        }
    }
    for (id, manifest) in enabled {
        if let Err(err) = registry.add_extension(crate::plugin::extension::extension(manifest)) {
            tracing::error!(plugin = %id, error = %err, "leaving out the plugin's fields and operations");
        }
    }
    registry
}

/// The registry a server running plugins on `kith`'s database builds, as the database stands:
/// what [`PluginManager::refresh`] makes of the plugin rows, without loading any plugin's code
/// (the objects and the API come from the manifests alone). For `kith schema print --live`.
pub async fn registry_in_database(kith: &Kith) -> Result<crate::domain::object::Registry, PluginError> {
    let rows = plugins::list(kith.store.conn()).await?;
    let (mut enabled, mut disabled) = (Vec::new(), Vec::new());
    for row in rows {
        match Manifest::parse(&row.manifest) {
            Ok(manifest) if row.enabled => enabled.push((row.id.clone(), manifest)),
            Ok(manifest) => disabled.push((row.id.clone(), manifest)),
            Err(err) => tracing::error!(plugin = %row.id, error = %err, "unreadable manifest"),
        }
    }
    Ok(registry_of(&enabled, &disabled))
}
