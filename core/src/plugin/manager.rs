//! The plugin lifecycle (install, enable with grants, disable, upgrade, settings, uninstall,
//! dead letters and replay) and the set of plugins this process runs, kept in step with the
//! database so that changes made by any process (or the CLI) apply without a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value as Json, json};
use wasmtime::component::Linker;

use crate::config::PluginsConfig;
use crate::domain::DomainError;
use crate::domain::actor::Actor;
use crate::domain::hook::{HookFuture, PendingWrite, WriteHook, WriteOp};
use crate::plugin::engine::{PluginEngine, content_hash, inspect};
use crate::plugin::extension::low_role_writes;
use crate::plugin::host::{HostState, PluginContext, v1};
use crate::plugin::manifest::{FailurePolicy, Manifest};
use crate::plugin::objects;
use crate::plugin::runtime::{CallFailure, LoadedPlugin, linker};
use crate::plugin::{PluginError, SUPPORTED_SDK};
use crate::service::Kith;
use crate::store::audit;
use crate::store::plugins::{self, PluginRow};

/// Which capabilities an admin grants when enabling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Exactly these; every requested capability must be among them.
    List(Vec<String>),
    /// Everything the manifest requests (`--grant-all`).
    All,
}

/// What `replay` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayOutcome {
    /// Dead letters delivered successfully now.
    pub replayed: usize,
    /// Dead letters that failed again (they stay on the list).
    pub failed: usize,
}

/// Runs and manages plugins.
pub struct PluginManager {
    /// Kith's services.
    pub kith: Kith,
    /// Runtime settings.
    pub config: PluginsConfig,
    engine: PluginEngine,
    linker: Linker<HostState>,
    loaded: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
    running: AtomicBool,
    refreshing: tokio::sync::Mutex<()>,
    /// This process's name in delivery leases.
    pub owner: String,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager").field("owner", &self.owner).finish_non_exhaustive()
    }
}

/// Masks secret settings for display.
pub fn visible_settings(manifest: &Manifest, stored: &Json) -> Json {
    let mut out = Map::new();
    for (key, def) in &manifest.settings {
        let value = if def.secret {
            if stored.get(key).is_some() { json!("********") } else { Json::Null }
        } else {
            stored
                .get(key)
                .cloned()
                .or_else(|| def.default.as_ref().and_then(|d| serde_json::to_value(d).ok()))
                .unwrap_or(Json::Null)
        };
        out.insert(key.clone(), value);
    }
    Json::Object(out)
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
            let _ = plugins::release(self.kith.store.conn(), &id, &self.owner).await;
        }
        self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        // Nothing keeps plugin objects in step any more: the API falls back to core objects.
        self.refresh_objects(&[]);
    }

    /// Whether this manager runs plugins.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn read_loaded(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<LoadedPlugin>>> {
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
        self.refresh_objects(&enabled);
        Ok(())
    }

    /// Makes the registry hold the core objects plus those of the enabled plugins (whether or
    /// not their code loads: the data and its API do not need it).
    fn refresh_objects(&self, enabled: &[(String, Manifest)]) {
        let mut registry = crate::domain::object::Registry::core();
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
        let current = self.kith.registry();
        if !current.same_as(&registry) {
            tracing::info!(objects = registry.objects().count(), "object registry changed");
            self.kith.set_registry(registry);
        }
    }

    /// Refuses enabling (or upgrading an enabled) plugin whose objects, types, computed fields
    /// or operations clash with core or with the other enabled plugins, by name or in GraphQL.
    async fn check_objects(&self, manifest: &Manifest) -> Result<(), PluginError> {
        let mut base = crate::domain::object::Registry::core();
        let mut others = Vec::new();
        for row in plugins::list(self.kith.store.conn()).await? {
            if row.enabled && row.id != manifest.id {
                let other = Manifest::parse(&row.manifest)?;
                base.extend(objects::object_defs(&other))
                    .map_err(|err| PluginError::invalid(format!("plugin `{}`: {err}", row.id)))?;
                others.push(other);
            }
        }
        for other in &others {
            base.add_extension(crate::plugin::extension::extension(other))
                .map_err(|err| PluginError::invalid(format!("plugin `{}`: {err}", other.id)))?;
        }
        let defs = objects::object_defs(manifest);
        let extension = crate::plugin::extension::extension(manifest);
        let mut next = base.clone();
        next.extend(defs.clone())
            .and_then(|()| crate::api::schema::check_additions(&base, &defs))
            .and_then(|()| crate::api::extension::check_extension(&next, &extension))
            .and_then(|()| next.add_extension(extension))
            .map_err(|err| PluginError::invalid(format!("cannot enable `{}`: {err}", manifest.id)))
    }

    async fn load(&self, row: &PluginRow) -> Result<LoadedPlugin, PluginError> {
        let manifest = Manifest::parse(&row.manifest)?;
        let bytes = plugins::component(self.kith.store.conn(), &row.component_hash)
            .await?
            .ok_or_else(|| PluginError::Component(format!("component {} is missing", row.component_hash)))?;
        let engine = self.engine.clone();
        let hash = row.component_hash.clone();
        let component = tokio::task::spawn_blocking(move || engine.compile(&hash, &bytes))
            .await
            .map_err(|e| PluginError::Runtime(format!("compile task: {e}")))??;
        let context = Arc::new(PluginContext {
            id: row.id.clone(),
            grants: row.grants.iter().cloned().collect(),
            settings: manifest.effective_settings(&row.settings),
            kith: self.kith.clone(),
            http: crate::plugin::http::HttpPolicy {
                origins: row.grants.iter().filter_map(|g| crate::plugin::http::capability_origin(g)).collect(),
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

    async fn changed(&self) {
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %err, "reloading plugins");
        }
    }

    /// Checks a manifest and component and compiles it (which also fills the compile cache).
    async fn validate(&self, manifest_text: &str, bytes: &[u8]) -> Result<(Manifest, String), PluginError> {
        let manifest = Manifest::parse(manifest_text)?;
        let info = inspect(bytes)?;
        let (major, minor, patch) = info.sdk_version;
        let declared = manifest.sdk()?;
        if declared != info.sdk_version {
            return Err(PluginError::invalid(format!(
                "plugin.toml says sdk_version {}, but the component was built with SDK {major}.{minor}.{patch}",
                manifest.sdk_version
            )));
        }
        match SUPPORTED_SDK.iter().find(|(m, _)| *m == major) {
            None => {
                let supported: Vec<_> = SUPPORTED_SDK.iter().map(|(m, n)| format!("{m}.0 to {m}.{n}")).collect();
                return Err(PluginError::invalid(format!(
                    "the plugin was built with SDK {major}.{minor}.{patch}; this Kith runs SDK {}",
                    supported.join(", ")
                )));
            }
            Some((_, newest)) if minor > *newest => {
                return Err(PluginError::invalid(format!(
                    "the plugin needs SDK {major}.{minor}, newer than this Kith's {major}.{newest}: upgrade Kith"
                )));
            }
            Some(_) => {}
        }
        let hash = content_hash(bytes);
        let engine = self.engine.clone();
        let owned = bytes.to_vec();
        let hash_for_compile = hash.clone();
        let component = tokio::task::spawn_blocking(move || engine.compile(&hash_for_compile, &owned))
            .await
            .map_err(|e| PluginError::Runtime(format!("compile task: {e}")))??;
        // Type-check against the world now rather than at first use.
        self.linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Component(format!("the component does not fit kith:plugin@1: {e:#}")))
            .and_then(|pre| {
                v1::BaseIndices::new(&pre)
                    .map_err(|e| PluginError::Component(format!("missing kith:plugin@1 exports: {e:#}")))?;
                if manifest.contributes()
                    && crate::plugin::host::v1_ext::exports::kith::plugin::extension::GuestIndices::new(&pre).is_err()
                {
                    return Err(PluginError::Component(
                        "the manifest declares fields, queries, mutations or jobs, but the component does not \
                         export kith:plugin/extension (build it with kith-plugin-sdk 1.2 or later)"
                            .into(),
                    ));
                }
                Ok(())
            })?;
        Ok((manifest, hash))
    }

    pub(crate) async fn get(&self, id: &str) -> Result<PluginRow, PluginError> {
        plugins::get(self.kith.store.conn(), id).await?.ok_or_else(|| PluginError::NotFound(id.to_owned()))
    }

    /// Every installed plugin.
    pub async fn list(&self) -> Result<Vec<PluginRow>, PluginError> {
        Ok(plugins::list(self.kith.store.conn()).await?)
    }

    /// One installed plugin.
    pub async fn plugin(&self, id: &str) -> Result<PluginRow, PluginError> {
        self.get(id).await
    }

    /// Installs a plugin, disabled. It runs once an admin enables it with grants.
    pub async fn install(&self, actor: &Actor, manifest_text: &str, bytes: &[u8]) -> Result<PluginRow, PluginError> {
        self.install_with(actor, manifest_text, bytes, false).await
    }

    /// Plans the change from the objects recorded for the plugin (a previous version, or an
    /// install kept after `uninstall` without `--purge`) to those `manifest` declares; refused
    /// when destructive and not confirmed.
    async fn plan_objects(&self, manifest: &Manifest, allow_destructive: bool) -> Result<objects::Plan, PluginError> {
        let recorded = crate::store::plugin_objects::stored(self.kith.store.conn(), &manifest.id).await?;
        let plan = objects::plan(&manifest.id, &recorded, &manifest.objects)?;
        if !plan.destructive.is_empty() && !allow_destructive {
            return Err(PluginError::invalid(format!(
                "version {} of `{}` changes its objects destructively: {}. Data will be lost; confirm with \
                 --allow-destructive (GraphQL: allowDestructive: true)",
                manifest.version,
                manifest.id,
                plan.destructive.join("; ")
            )));
        }
        Ok(plan)
    }

    /// Installs a plugin, creating (or migrating, with `allow_destructive` when that loses data)
    /// the tables of its objects.
    pub async fn install_with(
        &self,
        actor: &Actor,
        manifest_text: &str,
        bytes: &[u8],
        allow_destructive: bool,
    ) -> Result<PluginRow, PluginError> {
        let (manifest, hash) = self.validate(manifest_text, bytes).await?;
        if plugins::get(self.kith.store.conn(), &manifest.id).await?.is_some() {
            return Err(PluginError::invalid(format!(
                "a plugin `{}` is installed already: use upgrade to replace it",
                manifest.id
            )));
        }
        let plan = self.plan_objects(&manifest, allow_destructive).await?;
        let tx = self.kith.store.begin(actor).await?;
        plugins::put_component(tx.conn(), &hash, bytes, tx.now).await?;
        objects::apply(&tx, &manifest.id, &plan).await?;
        let row = PluginRow {
            id: manifest.id.clone(),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            sdk_version: manifest.sdk_version.clone(),
            manifest: manifest_text.to_owned(),
            component_hash: hash.clone(),
            enabled: false,
            grants: Vec::new(),
            settings: json!({}),
            status: "disabled".into(),
            last_error: None,
            consecutive_failures: 0,
            delivered: 0,
            failures: 0,
            dead_letters: 0,
            denied_calls: 0,
            generation: 1,
            installed_at: crate::domain::value::Value::Null,
            updated_at: crate::domain::value::Value::Null,
        };
        plugins::insert(tx.conn(), &row, tx.now).await?;
        audit::record(
            &tx,
            "plugin.install",
            "plugin",
            None,
            json!({
                "plugin": manifest.id,
                "version": manifest.version,
                "component": hash,
                "objects": objects::describe(&plan),
            }),
        )
        .await?;
        tx.commit().await?;
        self.get(&manifest.id).await
    }

    /// Enables a plugin with grants (also resumes a suspended one). Events that happened while
    /// it was disabled are not delivered; a resumed plugin continues where it stopped.
    pub async fn enable(&self, actor: &Actor, id: &str, grants: Grants) -> Result<PluginRow, PluginError> {
        self.enable_with(actor, id, grants, false).await
    }

    /// [`PluginManager::enable`]. A plugin with mutations that let callers below AGENT write
    /// through it ([`low_role_writes`]) is refused unless `allow_low_role_writes`: its calls
    /// run with the plugin's grants, not the caller's role. The audit entry lists them.
    pub async fn enable_with(
        &self,
        actor: &Actor,
        id: &str,
        grants: Grants,
        allow_low_role_writes: bool,
    ) -> Result<PluginRow, PluginError> {
        let row = self.get(id).await?;
        let manifest = Manifest::parse(&row.manifest)?;
        let requested: BTreeSet<&String> = manifest.capabilities.iter().collect();
        let granted: Vec<String> = match grants {
            Grants::All => manifest.capabilities.clone(),
            Grants::List(list) => {
                let list: BTreeSet<String> = list.into_iter().map(|g| g.trim().to_owned()).collect();
                if let Some(extra) = list.iter().find(|g| !requested.contains(g)) {
                    return Err(PluginError::invalid(format!(
                        "`{id}` does not request `{extra}`; it requests: {}",
                        manifest.capabilities.join(", ")
                    )));
                }
                let missing: Vec<_> = manifest.capabilities.iter().filter(|c| !list.contains(*c)).cloned().collect();
                if !missing.is_empty() {
                    return Err(PluginError::invalid(format!(
                        "`{id}` requests {} that you did not grant: grant every requested capability \
                         (--grant {}) or use --grant-all",
                        missing.join(", "),
                        manifest.capabilities.join(",")
                    )));
                }
                list.into_iter().collect()
            }
        };
        let low = low_role_writes(&manifest, &granted);
        if !low.is_empty() && !allow_low_role_writes {
            return Err(PluginError::invalid(format!(
                "`{id}` has mutations that let callers below AGENT write: {}. Raise their `role` in plugin.toml, \
                 or enable it anyway with --allow-low-role-writes (GraphQL: allowLowRoleWrites: true)",
                low.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            )));
        }
        let resume = row.enabled;
        if !resume {
            self.check_objects(&manifest).await?;
        }
        let tx = self.kith.store.begin(actor).await?;
        plugins::set_enabled(tx.conn(), id, true, &granted, tx.now).await?;
        if !resume {
            plugins::reset_cursor(tx.conn(), id).await?;
        }
        let action = if resume { "plugin.resume" } else { "plugin.enable" };
        let mut entry = json!({"plugin": id, "grants": granted});
        if !low.is_empty() {
            entry["lowRoleWrites"] = json!(low.iter().map(ToString::to_string).collect::<Vec<_>>());
        }
        audit::record(&tx, action, "plugin", None, entry).await?;
        tx.commit().await?;
        self.changed().await;
        self.get(id).await
    }

    /// Disables a plugin: it stops at once in every process; its data stays.
    pub async fn disable(&self, actor: &Actor, id: &str) -> Result<PluginRow, PluginError> {
        let row = self.get(id).await?;
        let tx = self.kith.store.begin(actor).await?;
        plugins::set_enabled(tx.conn(), id, false, &row.grants, tx.now).await?;
        plugins::release_any(tx.conn(), id).await?;
        audit::record(&tx, "plugin.disable", "plugin", None, json!({"plugin": id})).await?;
        tx.commit().await?;
        self.changed().await;
        self.get(id).await
    }

    /// Replaces a plugin's version. Capabilities the new version adds must be granted in
    /// `new_grants`; capabilities it no longer requests are revoked.
    pub async fn upgrade(
        &self,
        actor: &Actor,
        manifest_text: &str,
        bytes: &[u8],
        new_grants: &[String],
    ) -> Result<PluginRow, PluginError> {
        self.upgrade_with(actor, manifest_text, bytes, new_grants, false, false).await
    }

    /// [`PluginManager::upgrade`], migrating the plugin's objects; a destructive migration
    /// needs `allow_destructive`. An enabled plugin whose new version lets callers below AGENT
    /// write in a way the old one did not needs `allow_low_role_writes` (as `enable_with`).
    pub async fn upgrade_with(
        &self,
        actor: &Actor,
        manifest_text: &str,
        bytes: &[u8],
        new_grants: &[String],
        allow_destructive: bool,
        allow_low_role_writes: bool,
    ) -> Result<PluginRow, PluginError> {
        let (manifest, hash) = self.validate(manifest_text, bytes).await?;
        let row = self.get(&manifest.id).await?;
        let old = Manifest::parse(&row.manifest)?;
        let added: Vec<String> =
            manifest.capabilities.iter().filter(|c| !old.capabilities.contains(c)).cloned().collect();
        let ungranted: Vec<&String> = added.iter().filter(|c| !new_grants.contains(c)).collect();
        if row.enabled && !ungranted.is_empty() {
            return Err(PluginError::invalid(format!(
                "version {} of `{}` requests new capabilities: {}; grant them with --grant {}",
                manifest.version,
                manifest.id,
                added.join(", "),
                added.join(",")
            )));
        }
        let grants: Vec<String> = manifest
            .capabilities
            .iter()
            .filter(|c| row.grants.contains(c) || new_grants.contains(c))
            .cloned()
            .collect();
        if row.enabled && !allow_low_role_writes {
            let before = low_role_writes(&old, &row.grants);
            let added: Vec<String> = low_role_writes(&manifest, &grants)
                .into_iter()
                .filter(|low| !before.contains(low))
                .map(|low| low.to_string())
                .collect();
            if !added.is_empty() {
                return Err(PluginError::invalid(format!(
                    "version {} of `{}` adds mutations that let callers below AGENT write: {}. Raise their \
                     `role` in plugin.toml, or upgrade anyway with --allow-low-role-writes (GraphQL: \
                     allowLowRoleWrites: true)",
                    manifest.version,
                    manifest.id,
                    added.join("; ")
                )));
            }
        }
        let mut settings = row.settings.as_object().cloned().unwrap_or_default();
        settings.retain(|key, _| manifest.settings.contains_key(key));
        let next = PluginRow {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            sdk_version: manifest.sdk_version.clone(),
            manifest: manifest_text.to_owned(),
            component_hash: hash.clone(),
            grants,
            settings: Json::Object(settings),
            ..row.clone()
        };
        let plan = self.plan_objects(&manifest, allow_destructive).await?;
        if row.enabled {
            self.check_objects(&manifest).await?;
        }
        let tx = self.kith.store.begin(actor).await?;
        plugins::put_component(tx.conn(), &hash, bytes, tx.now).await?;
        plugins::replace_version(tx.conn(), &next, tx.now).await?;
        objects::apply(&tx, &manifest.id, &plan).await?;
        audit::record(
            &tx,
            "plugin.upgrade",
            "plugin",
            None,
            json!({
                "plugin": manifest.id,
                "from": row.version,
                "to": manifest.version,
                "component": hash,
                "objects": objects::describe(&plan),
            }),
        )
        .await?;
        plugins::prune_components(tx.conn()).await?;
        tx.commit().await?;
        self.changed().await;
        self.get(&manifest.id).await
    }

    /// Removes a plugin; with `purge` also its key–value store and dead letters.
    pub async fn uninstall(&self, actor: &Actor, id: &str, purge: bool) -> Result<(), PluginError> {
        self.get(id).await?;
        let tx = self.kith.store.begin(actor).await?;
        plugins::delete(tx.conn(), id, purge).await?;
        crate::store::jobs::purge(tx.conn(), id, purge).await?;
        if purge {
            objects::purge(&tx, id).await?;
        }
        plugins::prune_components(tx.conn()).await?;
        audit::record(&tx, "plugin.uninstall", "plugin", None, json!({"plugin": id, "purge": purge})).await?;
        tx.commit().await?;
        self.changed().await;
        Ok(())
    }

    /// Sets one setting (`None` clears it back to its default), checked against its type.
    pub async fn set_setting(
        &self,
        actor: &Actor,
        id: &str,
        key: &str,
        value: Option<Json>,
    ) -> Result<PluginRow, PluginError> {
        let row = self.get(id).await?;
        let manifest = Manifest::parse(&row.manifest)?;
        let def = manifest.settings.get(key).ok_or_else(|| {
            let known: Vec<_> = manifest.settings.keys().cloned().collect();
            PluginError::invalid(format!("`{id}` has no setting `{key}` (settings: {})", known.join(", ")))
        })?;
        let mut settings = row.settings.as_object().cloned().unwrap_or_default();
        match value {
            Some(value) => {
                def.kind.check(key, &value)?;
                settings.insert(key.to_owned(), value);
            }
            None => {
                settings.remove(key);
            }
        }
        let tx = self.kith.store.begin(actor).await?;
        plugins::set_settings(tx.conn(), id, Json::Object(settings), tx.now).await?;
        // Secret values never reach the audit log.
        audit::record(&tx, "plugin.configure", "plugin", None, json!({"plugin": id, "setting": key})).await?;
        tx.commit().await?;
        self.changed().await;
        self.get(id).await
    }

    /// A plugin's dead letters.
    pub async fn dead_letters(&self, id: &str, pending_only: bool) -> Result<Vec<plugins::DeadLetter>, PluginError> {
        self.get(id).await?;
        Ok(plugins::dead_letters(self.kith.store.conn(), id, pending_only).await?)
    }

    /// Delivers a plugin's pending dead letters again, now, in order.
    pub async fn replay(&self, actor: &Actor, id: &str) -> Result<ReplayOutcome, PluginError> {
        let row = self.get(id).await?;
        if !row.enabled {
            return Err(PluginError::invalid(format!("enable `{id}` before replaying its events")));
        }
        let plugin = match self.loaded(id) {
            Some(plugin) => plugin,
            None => Arc::new(self.load(&row).await?),
        };
        let mut outcome = ReplayOutcome::default();
        for letter in plugins::dead_letters(self.kith.store.conn(), id, true).await? {
            let events = crate::store::outbox::read(self.kith.store.conn(), letter.seq - 1, 1).await?;
            let Some(event) = events.into_iter().find(|e| e.seq == letter.seq) else { continue };
            let wit = crate::plugin::delivery::to_wit(&event);
            let (delivered, tx) = plugin.call_events(std::slice::from_ref(&wit), event.depth).await;
            match delivered {
                // The event's effects and its being replayed commit together.
                Ok(Ok(())) => {
                    match tx {
                        Some(tx) => {
                            plugins::mark_replayed(tx.conn(), letter.id, Utc::now()).await?;
                            tx.commit().await?;
                        }
                        None => plugins::mark_replayed(self.kith.store.conn(), letter.id, Utc::now()).await?,
                    }
                    outcome.replayed += 1;
                }
                Ok(Err(failure)) => {
                    outcome.failed += 1;
                    tracing::warn!(plugin = %id, seq = letter.seq, error = %failure.message, "replay failed");
                }
                Err(failure) => {
                    outcome.failed += 1;
                    tracing::warn!(plugin = %id, seq = letter.seq, error = %failure, "replay failed");
                }
            }
        }
        let tx = self.kith.store.begin(actor).await?;
        audit::record(
            &tx,
            "plugin.replay",
            "plugin",
            None,
            json!({"plugin": id, "replayed": outcome.replayed, "failed": outcome.failed}),
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
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

    async fn run_hooks(self: Arc<Self>, write: PendingWrite<'_>) -> Result<Option<Map<String, Json>>, DomainError> {
        let hooking = |p: &LoadedPlugin| {
            p.manifest.before_write.as_ref().is_some_and(|h| h.objects.iter().any(|o| o == write.object))
                && (p.manifest.owns(write.object)
                    || crate::plugin::manifest::object_capability(write.object, false)
                        .is_some_and(|read| p.context.grants.contains(&read)))
        };
        // A suspended plugin cannot vet writes: a fail-closed one refuses them until an admin
        // resumes (or disables) it, as its manifest asks.
        let loaded: Vec<Arc<LoadedPlugin>> = self.read_loaded().values().cloned().collect();
        if let Some(closed) = loaded.iter().find(|p| {
            !p.active
                && hooking(p)
                && p.manifest.before_write.as_ref().is_some_and(|h| h.on_failure == FailurePolicy::Deny)
        }) {
            return Err(DomainError::Rejected {
                plugin: closed.id().to_owned(),
                reason: "the plugin is suspended and refuses writes when it cannot check them; an admin must \
                         resume it (`kith plugin enable`) or disable it"
                    .into(),
            });
        }
        let hooks: Vec<Arc<LoadedPlugin>> = loaded.into_iter().filter(|p| p.active && hooking(p)).collect();
        let mut after = write.after.clone();
        let mut patch = Map::new();
        for plugin in hooks {
            let Some(hook) = plugin.manifest.before_write.clone() else { continue };
            let change = v1::kith::plugin::types::Change {
                object: write.object.to_owned(),
                operation: match write.op {
                    WriteOp::Create => v1::kith::plugin::types::Operation::Create,
                    WriteOp::Update => v1::kith::plugin::types::Operation::Update,
                    WriteOp::Delete => v1::kith::plugin::types::Operation::Delete,
                },
                id: write.id.clone(),
                before: write.before.as_ref().map(Json::to_string),
                after: after.to_string(),
                actor: write.actor.label(),
            };
            let budget = Duration::from_millis(hook.timeout_ms);
            let verdict = plugin.call_before_write(&change, budget).await;
            use v1::kith::plugin::types::Verdict;
            if verdict.is_ok() && plugin.clear_failed() {
                // A hook that answers again ends a run of failures (from its own task: this runs
                // inside the write's transaction).
                let kith = self.kith.clone();
                let id = plugin.id().to_owned();
                tokio::spawn(async move {
                    if let Err(err) = plugins::record_success(kith.store.conn(), &id, 0).await {
                        tracing::warn!(plugin = %id, error = %err, "cannot reset the failure count");
                    }
                });
            }
            match verdict {
                Ok(Verdict::Allow) => {}
                Ok(Verdict::Deny(reason)) => {
                    let reason = crate::plugin::output::for_caller(&reason);
                    return Err(DomainError::Rejected { plugin: plugin.id().to_owned(), reason });
                }
                Ok(Verdict::Modify(fields)) => {
                    let fields: Map<String, Json> =
                        serde_json::from_str(&fields).map_err(|_| DomainError::Rejected {
                            plugin: plugin.id().to_owned(),
                            reason: "the plugin returned a malformed change".into(),
                        })?;
                    if let Json::Object(map) = &mut after {
                        map.extend(fields.clone());
                    }
                    patch.extend(fields);
                }
                Err(failure) => {
                    plugin.mark_failed();
                    let manager = self.clone();
                    let id = plugin.id().to_owned();
                    let message = format!("before-write: {failure}");
                    // Recorded in its own task: this runs inside the write's transaction.
                    tokio::spawn(async move { manager.record_failure(&id, &message).await });
                    if hook.on_failure == FailurePolicy::Deny {
                        return Err(DomainError::Rejected {
                            plugin: plugin.id().to_owned(),
                            reason: format!("the plugin failed ({failure}) and refuses writes when it fails"),
                        });
                    }
                    tracing::warn!(plugin = %plugin.id(), error = %failure, "before-write failed; allowing the write (fail-open policy)");
                }
            }
        }
        Ok((!patch.is_empty()).then_some(patch))
    }
}

/// The write hook installed in the store: a weak reference, so the store does not keep the
/// manager alive.
#[derive(Debug)]
struct Hook(Weak<PluginManager>);

impl WriteHook for Hook {
    fn wants(&self, object: &str) -> bool {
        self.0.upgrade().is_some_and(|manager| {
            // Suspended plugins too: a fail-closed one refuses writes while suspended.
            manager
                .read_loaded()
                .values()
                .any(|p| p.manifest.before_write.as_ref().is_some_and(|h| h.objects.iter().any(|o| o == object)))
        })
    }

    fn before_write<'a>(&'a self, write: PendingWrite<'a>) -> HookFuture<'a> {
        let manager = self.0.upgrade();
        Box::pin(async move {
            match manager {
                Some(manager) => manager.run_hooks(write).await,
                None => Ok(None),
            }
        })
    }
}
