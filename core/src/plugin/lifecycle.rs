//! Changing what is installed: install (with the object migration plan), enable with grants,
//! disable, upgrade, uninstall, settings, and the dead letters and their replay. Every change
//! is one transaction with its audit entry; every process picks it up on its next refresh.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Map, Value as Json, json};

use crate::domain::actor::Actor;
use crate::plugin::engine::{content_hash, inspect};
use crate::plugin::extension::low_role_writes;
use crate::plugin::host::v1;
use crate::plugin::manifest::Manifest;
use crate::plugin::objects;
use crate::plugin::{PluginError, SUPPORTED_SDK};
use crate::store::audit;
use crate::store::plugins::{self, PluginRow};

use crate::plugin::PluginManager;

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
    /// Refuses enabling (or upgrading an enabled) plugin whose objects, types, computed fields
    /// or operations clash with core or with the other enabled plugins, by name or in GraphQL.
    pub(crate) async fn check_objects(&self, manifest: &Manifest) -> Result<(), PluginError> {
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
        let mut next = base;
        next.extend(defs)
            .and_then(|()| next.add_extension(extension))
            .and_then(|()| crate::domain::naming::Names::of(&next).map(drop))
            .map_err(|err| PluginError::invalid(format!("cannot enable `{}`: {err}", manifest.id)))
    }

    /// Checks a manifest and component and compiles it (which also fills the compile cache).
    pub(crate) async fn validate(&self, manifest_text: &str, bytes: &[u8]) -> Result<(Manifest, String), PluginError> {
        let manifest = Manifest::parse(manifest_text)?;
        let info = inspect(bytes)?;
        let (major, minor, patch) = info.sdk_version;
        let declared = manifest.sdk()?;
        // What a JavaScript or Python engine pulls in for `fetch`: plugins have their own HTTP.
        if let Some(http) = info.imports.iter().find(|i| i.starts_with("wasi:http/")) {
            return Err(PluginError::Component(format!(
                "the component imports `{http}`, which Kith does not give plugins: they reach HTTP through \
                 `kith:plugin/http` (granted origins, secrets kept by Kith). Build it without WASI HTTP \
                 (componentize-js: `-d http -d fetch-event`; componentize-py: do not use a `wasi:http` world)"
            )));
        }
        // A language runtime's heap is part of the component: an instance could never start.
        let cap = manifest.limits.memory_mib << 20;
        if info.initial_memory > cap {
            let needs = info.initial_memory.div_ceil(1 << 20);
            let what = format!(
                "the component starts with {needs} MiB of linear memory (its language runtime's initial heap), more \
                 than its cap of {} MiB",
                manifest.limits.memory_mib
            );
            // Room to run beyond the start; a plugin may have 256 MiB at most.
            return Err(PluginError::invalid(if needs + 16 <= 256 {
                format!("{what}: set `memory_mib = {}` (or more) under `[limits]` in plugin.toml", needs + 16)
            } else {
                format!("{what}, and more than the 256 MiB a plugin may have: make the component smaller")
            }));
        }
        if declared != info.sdk_version {
            return Err(PluginError::invalid(if info.recorded {
                format!(
                    "plugin.toml says sdk_version {}, but the component was built with SDK {major}.{minor}.{patch}",
                    manifest.sdk_version
                )
            } else {
                format!(
                    "plugin.toml says sdk_version {}, but the component uses kith:plugin@{major}.{minor}.{patch} \
                     (the version of the interfaces it imports and exports): set sdk_version = \"{major}.{minor}.{patch}\"",
                    manifest.sdk_version
                )
            }));
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
                v1::BaseIndices::new(&pre).map_err(|e| {
                    PluginError::Component(format!(
                        "the component does not export what every plugin does (`on-event` and `before-write` of \
                             a `kith:plugin` world, `base` or `plugin`; the SDKs export both): {e:#}"
                    ))
                })?;
                if manifest.contributes()
                    && crate::plugin::host::v1_ext::exports::kith::plugin::extension::GuestIndices::new(&pre).is_err()
                {
                    return Err(PluginError::Component(
                        "the manifest declares fields, queries, mutations or jobs, but the component does not \
                         export kith:plugin/extension: build it against the world `plugin` of kith:plugin 1.2 or \
                         later (the Rust, TypeScript and Python SDKs do; world `base` has no extension exports)"
                            .into(),
                    ));
                }
                Ok(())
            })?;
        Ok((manifest, hash))
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
    pub(crate) async fn plan_objects(
        &self,
        manifest: &Manifest,
        allow_destructive: bool,
    ) -> Result<objects::Plan, PluginError> {
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
            plugins::reset_cursor(tx.conn(), id, manifest.delivery.partitions).await?;
        }
        ensure_custom_fields(&tx, &self.kith, &manifest).await?;
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
        if row.enabled {
            ensure_custom_fields(&tx, &self.kith, &manifest).await?;
        }
        // Another number of partitions: the cursors are split anew (no event skipped).
        plugins::repartition(tx.conn(), &manifest.id, manifest.delivery.partitions).await?;
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
                let grants_origin = manifest
                    .capabilities
                    .iter()
                    .any(|c| crate::plugin::http::capability_setting(c).is_some_and(|(k, _)| k == key));
                if grants_origin
                    && let Some(url) = value.as_str().filter(|u| !u.trim().is_empty())
                    && crate::plugin::http::url_origin(url).is_none()
                {
                    return Err(PluginError::invalid(format!(
                        "`{key}` must be an http:// or https:// URL with a host (`{url}` is not): it is where `{id}` may connect"
                    )));
                }
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
}

/// Defines the custom fields the manifest keeps (`[[custom_fields]]`) that do not exist yet, in
/// `tx`; one that exists with another kind refuses the enable (or upgrade).
async fn ensure_custom_fields(
    tx: &crate::store::Tx,
    kith: &crate::service::Kith,
    manifest: &Manifest,
) -> Result<(), PluginError> {
    for spec in &manifest.custom_fields {
        let existing = crate::store::custom_fields::for_object(tx.conn(), &spec.object).await?;
        match existing.iter().find(|d| d.key == spec.key) {
            Some(def) if def.kind == spec.kind => {}
            Some(def) => {
                return Err(PluginError::invalid(format!(
                    "`{}` keeps the {} custom field `{}` as {}, but it exists as {}: rename or remove that field first",
                    manifest.id, spec.object, spec.key, spec.kind, def.kind
                )));
            }
            None => {
                crate::service::records::define_custom_field(tx, &kith.registry(), &spec.definition()).await.map_err(
                    |err| PluginError::invalid(format!("`{}`: custom field `{}`: {err}", manifest.id, spec.key)),
                )?;
            }
        }
    }
    Ok(())
}
