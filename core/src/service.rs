//! Use cases: each composes domain rules and store calls inside one transaction, and leaves an
//! audit entry and an outbox event for every record it changes.

pub mod events;
pub mod export;
pub mod import;
pub mod input;
pub mod records;
pub mod reports;
pub mod seed;
pub mod timeline;
pub mod users;
pub mod workflow;

use std::sync::{Arc, RwLock, Weak};

use crate::domain::DomainError;
use crate::domain::object::{ObjectDef, Registry};
use crate::error::Result;
use crate::plugin::PluginManager;
use crate::store::Store;

/// The core services: the database and the object registry.
#[derive(Debug, Clone)]
pub struct Kith {
    /// The database.
    pub store: Store,
    /// Every object Kith knows.
    pub registry: Arc<Registry>,
    /// Recently resolved bearer tokens (see `users::authenticate_cached`).
    pub auth_cache: Arc<users::AuthCache>,
    /// Committed events, as read back from the outbox, for live subscribers.
    pub events: Arc<events::EventHub>,
    /// The plugin runtime serving this process, if one is attached (weak: it holds `Kith`).
    plugins: Arc<RwLock<Weak<PluginManager>>>,
}

impl Kith {
    /// Core services over `store` with the core objects.
    pub fn new(store: Store) -> Kith {
        Kith {
            store,
            registry: Arc::new(Registry::core()),
            auth_cache: Arc::default(),
            events: Arc::default(),
            plugins: Arc::default(),
        }
    }

    /// Makes `manager` the plugin runtime of this process (for the API's admin operations).
    pub fn attach_plugins(&self, manager: &Arc<PluginManager>) {
        *self.plugins.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::downgrade(manager);
    }

    /// The attached plugin runtime.
    pub fn plugins(&self) -> Option<Arc<PluginManager>> {
        self.plugins.read().unwrap_or_else(std::sync::PoisonError::into_inner).upgrade()
    }

    /// The definition of `object`, or a validation error naming it.
    pub fn object(&self, object: &str) -> Result<Arc<ObjectDef>> {
        object_def(&self.registry, object)
    }
}

/// The definition of `object` in `registry`.
pub fn object_def(registry: &Registry, object: &str) -> Result<Arc<ObjectDef>> {
    registry
        .get(object)
        .cloned()
        .ok_or_else(|| DomainError::invalid("object", format!("unknown object `{object}`")).into())
}
