//! The plugin runtime: third-party code compiled to wasm32-wasip2 components, run sandboxed by
//! wasmtime against the `kith:plugin` WIT contract (`schemas/wit/`).
//!
//! - `manifest`: `plugin.toml`.
//! - `engine`: the wasmtime engine, epoch ticker and compile cache; component inspection.
//! - `host`: the bindings and per-call state, with the grant and budget checks.
//! - `host_functions`: the host functions, each checking through `host` first.
//! - `runtime`: one plugin's warm instance pool and its calls under budgets.
//! - `manager`: the set of loaded plugins kept in step with the database; failures and
//!   suspension.
//! - `lifecycle`: install / enable / upgrade / disable / uninstall, settings, replay.
//! - `write_hook`: the `WriteHook` that runs `before-write`.
//! - `delivery`: at-least-once, ordered event delivery from the outbox.
//! - `objects`: plugin-declared objects (registry entries, tables, the migration planner).
//! - `extension`: the manifest's GraphQL contributions (types, computed fields, queries,
//!   mutations) and jobs.
//! - `operation`: running a plugin query or mutation for GraphQL or `kith plugin call`.
//! - `privacy`: plugins' export queries in a person's personal-data export.
//! - `jobs`: the scheduler: leases, run history, missed-run policy.
//! - `bundled`: the plugins shipped inside the `kith` binary.
//!
//! Architecture Invariant: a plugin reaches Kith only through `host` and `host_functions`, and every host function
//! checks the plugin's grants before doing anything. Writes a plugin makes go through the same
//! service functions (validation, transaction, audit log, events) as any other write.

pub mod bundled;
pub mod delivery;
pub mod engine;
pub mod extension;
pub mod host;
pub mod host_functions;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod links;
pub mod manager;
pub mod manifest;
pub mod objects;
pub mod operation;
pub mod output;
pub mod privacy;
pub mod routes;
pub mod runtime;
pub mod write_hook;

pub use manager::PluginManager;

/// Starts the plugin runtime of a server process: installs the bundled plugins when they are
/// missing (and enables them when configured to), loads the enabled plugins, installs the
/// write hook and starts event delivery.
pub async fn start_runtime(
    kith: &crate::service::Kith,
    config: &crate::config::PluginsConfig,
) -> Result<std::sync::Arc<PluginManager>, PluginError> {
    let manager = PluginManager::new(kith.clone(), config)?;
    if config.install_bundled {
        let actor = crate::domain::actor::Actor::system("bundled-plugins");
        for bundled in bundled::BUNDLED {
            let installed = manager.list().await?.into_iter().find(|p| p.id == bundled.id);
            let row = match installed {
                Some(row) if row.version != bundled_version(bundled.manifest) => {
                    // A newer Kith ships a newer bundled plugin: upgrade it (additive changes
                    // only; anything destructive is left to the admin).
                    match manager.upgrade(&actor, bundled.manifest, bundled.component, &[]).await {
                        Ok(row) => {
                            tracing::info!(plugin = %row.id, version = %row.version, "upgraded bundled plugin");
                            row
                        }
                        Err(err) => {
                            tracing::warn!(plugin = %row.id, error = %err, "cannot upgrade the bundled plugin");
                            row
                        }
                    }
                }
                Some(row) => row,
                None => {
                    let row = manager.install(&actor, bundled.manifest, bundled.component).await?;
                    tracing::info!(plugin = %row.id, version = %row.version, "installed bundled plugin");
                    row
                }
            };
            if config.enable_bundled && !row.enabled {
                let row = manager.enable(&actor, bundled.id, manager::Grants::All).await?;
                tracing::info!(plugin = %row.id, grants = %row.grants.join(","), "enabled bundled plugin");
            }
        }
    }
    manager.start().await?;
    PluginManager::attach(&manager);
    Ok(manager)
}

fn bundled_version(manifest: &str) -> String {
    manifest::Manifest::parse(manifest).map(|m| m.version).unwrap_or_default()
}

/// The `kith:plugin` major versions this Kith runs, with the newest minor of each.
pub const SUPPORTED_SDK: &[(u16, u16)] = &[(1, 4)];

/// Why a plugin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// `plugin.toml` is malformed; names the key.
    #[error("plugin.toml: `{key}`: {reason}")]
    Manifest {
        /// The offending key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The component is not a usable Kith plugin.
    #[error("component: {0}")]
    Component(String),
    /// No such plugin.
    #[error("no plugin `{0}` is installed")]
    NotFound(String),
    /// A request that does not fit the plugin's state or manifest (grants, settings, ids).
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with what is happening (a job already running).
    #[error("{0}")]
    Conflict(String),
    /// Reading a file failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        reason: String,
    },
    /// The engine could not start or link.
    #[error("plugin runtime: {0}")]
    Runtime(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::error::Error),
}

impl PluginError {
    /// A manifest error naming `key`.
    pub fn manifest(key: &str, reason: impl Into<String>) -> PluginError {
        PluginError::Manifest { key: key.to_owned(), reason: reason.into() }
    }

    /// An invalid request.
    pub fn invalid(reason: impl Into<String>) -> PluginError {
        PluginError::Invalid(reason.into())
    }
}
