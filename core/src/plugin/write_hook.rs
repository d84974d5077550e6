//! `before-write`: the `WriteHook` the store calls inside a write, which asks each active plugin
//! that hooks the object (on a warm instance, within its budget) to allow, refuse or amend it,
//! following the plugin's failure policy when it traps or times out.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value as Json};

use crate::domain::DomainError;
use crate::domain::actor::ActorKind;
use crate::domain::hook::{HookFuture, PendingWrite, WriteHook, WriteOp};
use crate::plugin::host::v1;
use crate::plugin::manifest::FailurePolicy;
use crate::plugin::runtime::LoadedPlugin;
use crate::store::plugins::{self};

use crate::plugin::PluginManager;

impl PluginManager {
    pub(crate) async fn run_hooks(
        self: Arc<Self>,
        write: PendingWrite<'_>,
    ) -> Result<Option<Map<String, Json>>, DomainError> {
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
        // A plugin's own write skips its hook when its manifest says so (`own_writes = false`).
        let own = |p: &LoadedPlugin| {
            write.actor.kind == ActorKind::Plugin
                && write.actor.id.as_deref() == Some(p.id())
                && p.manifest.before_write.as_ref().is_some_and(|h| !h.own_writes)
        };
        let hooks: Vec<Arc<LoadedPlugin>> = loaded.into_iter().filter(|p| p.active && hooking(p) && !own(p)).collect();
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
pub(crate) struct Hook(pub(crate) Weak<PluginManager>);

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
