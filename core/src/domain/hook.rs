//! Write hooks: something outside the core (plugins) that may allow, refuse or amend a write
//! before it is stored. The service layer calls the hook inside the write's transaction, after
//! the core rules ran, and re-checks the core rules on whatever the hook changed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value as Json};

use crate::domain::DomainError;
use crate::domain::actor::Actor;

/// The kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// A new record.
    Create,
    /// Changed fields.
    Update,
    /// A soft delete.
    Delete,
}

/// A write about to be stored.
#[derive(Debug, Clone)]
pub struct PendingWrite<'a> {
    /// The object kind.
    pub object: &'a str,
    /// Create, update or delete.
    pub op: WriteOp,
    /// The record id.
    pub id: String,
    /// The stored record, for updates and deletes (API JSON).
    pub before: Option<Json>,
    /// The record as it would be stored (API JSON).
    pub after: Json,
    /// Who is writing.
    pub actor: &'a Actor,
}

/// What a hook decided: `Ok(None)` lets the write through, `Ok(Some(fields))` lets it through
/// with those fields changed, an error refuses it.
pub type HookResult = Result<Option<Map<String, Json>>, DomainError>;

/// A boxed future of a hook's decision.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = HookResult> + Send + 'a>>;

/// Something that vets writes.
pub trait WriteHook: Send + Sync + fmt::Debug {
    /// Whether any hook wants to see writes to `object` (checked first, cheaply).
    fn wants(&self, object: &str) -> bool;

    /// Decides about `write`.
    fn before_write<'a>(&'a self, write: PendingWrite<'a>) -> HookFuture<'a>;
}

/// The plugin runtime, as the services hold it: attached to them by the layer that runs it, and
/// reached back for by the layers above (which know the concrete type and downcast to it). The
/// services never call into it, so they do not depend on the plugin layer.
pub trait PluginRuntime: std::any::Any + Send + Sync + fmt::Debug {
    /// Itself, for the layers above to downcast.
    fn into_any(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn std::any::Any + Send + Sync>;
}
