//! Use cases: each composes domain rules and store calls inside one transaction, and leaves an
//! audit entry and an outbox event for every record it changes.

pub mod bulk;
pub mod events;
pub mod export;
pub mod import;
pub mod input;
pub mod leased;
pub mod mail;
pub mod outbound;
pub mod privacy;
pub mod records;
pub mod references;
pub mod reports;
pub mod seed;
pub mod throttle;
pub mod timeline;
pub mod users;
pub mod webhook_delivery;
pub mod webhooks;
pub mod workflow;

use std::sync::{Arc, RwLock, Weak};

use crate::domain::DomainError;
use crate::domain::hook::PluginRuntime;
use crate::domain::object::{ObjectDef, Registry};
use crate::error::Result;
use crate::store::Store;

/// The core services: the database and the object registry.
#[derive(Debug, Clone)]
pub struct Kith {
    /// The database.
    pub store: Store,
    /// Every object Kith knows: the core ones and those of enabled plugins.
    objects: Arc<RegistryCell>,
    /// Recently resolved bearer tokens (see `users::authenticate_cached`).
    pub auth_cache: Arc<users::AuthCache>,
    /// Failed logins by account and client address (see `throttle`).
    pub login_throttle: Arc<throttle::LoginThrottle>,
    /// Committed events, as read back from the outbox, for live subscribers.
    pub events: Arc<events::EventHub>,
    /// The plugin runtime serving this process, if one is attached (weak: it holds `Kith`).
    plugins: Arc<RwLock<Option<Weak<dyn PluginRuntime>>>>,
    /// How this process checks and delivers webhooks (`[webhooks]`).
    webhooks: Arc<RwLock<crate::config::WebhooksConfig>>,
    /// The SMTP relay plugins' e-mail goes through (`[mail]`), if one is configured.
    mailer: Arc<RwLock<Option<Arc<crate::service::mail::Mailer>>>>,
    /// Where people reach this Kith (`[server] public_url`): signed links start with it.
    public_url: Arc<RwLock<String>>,
}

impl Kith {
    /// Core services over `store` with the core objects.
    pub fn new(store: Store) -> Kith {
        Kith {
            store,
            objects: Arc::new(RegistryCell::new(Registry::core())),
            auth_cache: Arc::default(),
            login_throttle: Arc::default(),
            events: Arc::default(),
            plugins: Arc::default(),
            webhooks: Arc::default(),
            mailer: Arc::default(),
            public_url: Arc::new(RwLock::new("http://127.0.0.1:8080".to_owned())),
        }
    }

    /// Sets the SMTP relay of this process (`[mail]`); `None`: no e-mail.
    pub fn configure_mail(&self, mailer: Option<Arc<crate::service::mail::Mailer>>) {
        *self.mailer.write().unwrap_or_else(std::sync::PoisonError::into_inner) = mailer;
    }

    /// The SMTP relay, if one is configured.
    pub fn mailer(&self) -> Option<Arc<crate::service::mail::Mailer>> {
        self.mailer.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sets where people reach this Kith (no trailing slash needed).
    pub fn set_public_url(&self, url: &str) {
        *self.public_url.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            url.trim_end_matches('/').to_owned();
    }

    /// Where people reach this Kith, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sets the `[webhooks]` settings of this process (every clone of this `Kith` sees them).
    pub fn configure_webhooks(&self, config: crate::config::WebhooksConfig) {
        *self.webhooks.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    /// The `[webhooks]` settings of this process.
    pub fn webhook_config(&self) -> crate::config::WebhooksConfig {
        self.webhooks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes `runtime` the plugin runtime of this process (for the API's admin operations).
    pub fn attach_plugins(&self, runtime: &Arc<dyn PluginRuntime>) {
        *self.plugins.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::downgrade(runtime));
    }

    /// The attached plugin runtime, while it runs.
    pub fn plugins(&self) -> Option<Arc<dyn PluginRuntime>> {
        self.plugins.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()?.upgrade()
    }

    /// The definition of `object`, or a validation error naming it.
    pub fn object(&self, object: &str) -> Result<Arc<ObjectDef>> {
        object_def(&self.registry(), object)
    }

    /// Every object Kith knows now (a snapshot: plugins may add or remove objects later).
    pub fn registry(&self) -> Arc<Registry> {
        self.objects.get()
    }

    /// Bumped whenever the registry changes, so derived things (the GraphQL schema) can follow.
    pub fn registry_version(&self) -> u64 {
        self.objects.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Brings the planner statistics of every record table (plugin objects' too) and of the
    /// search index up to date (see `store::stats::upkeep`); returns the tables analysed.
    pub async fn upkeep_statistics(&self) -> Result<Vec<String>> {
        let mut tables: Vec<String> = self.registry().objects().map(|def| def.table.clone()).collect();
        tables.push("search_entry".to_owned());
        self.store.upkeep_statistics(&tables).await
    }

    /// Runs [`Kith::upkeep_statistics`] and merges the search index's segments (SQLite) now and
    /// every `store::stats::UPKEEP_EVERY`.
    pub fn spawn_statistics_upkeep(&self) {
        let kith = self.clone();
        tokio::spawn(async move {
            loop {
                match kith.upkeep_statistics().await {
                    Ok(tables) if !tables.is_empty() => tracing::info!(?tables, "planner statistics refreshed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "cannot refresh the planner statistics"),
                }
                match kith.store.merge_search_segments(crate::store::stats::MERGE_BUDGET).await {
                    Ok(0) => {}
                    Ok(steps) => tracing::info!(steps, "search index segments merged"),
                    Err(err) => tracing::warn!(error = %err, "cannot merge the search index's segments"),
                }
                tokio::time::sleep(crate::store::stats::UPKEEP_EVERY).await;
            }
        });
    }

    /// Replaces the registry (the plugin runtime does, when the enabled plugins' objects change).
    pub fn set_registry(&self, registry: Registry) {
        let mut slot = self.objects.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(registry);
        self.objects.version.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The current registry and a version number bumped on each change.
#[derive(Debug)]
struct RegistryCell {
    current: RwLock<Arc<Registry>>,
    version: std::sync::atomic::AtomicU64,
}

impl RegistryCell {
    fn new(registry: Registry) -> RegistryCell {
        RegistryCell { current: RwLock::new(Arc::new(registry)), version: std::sync::atomic::AtomicU64::new(0) }
    }

    fn get(&self) -> Arc<Registry> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The definition of `object` in `registry`.
pub fn object_def(registry: &Registry, object: &str) -> Result<Arc<ObjectDef>> {
    registry
        .get(object)
        .cloned()
        .ok_or_else(|| DomainError::invalid("object", format!("unknown object `{object}`")).into())
}
