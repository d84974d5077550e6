//! Plugins' part in a personal-data export: each enabled plugin whose manifest names an export
//! query (`[privacy] export`) is asked, as the exporting user, what it holds about the person
//! beyond its objects' records (which `service::privacy` exports already), and its answer is
//! added under the plugin's id. A plugin that fails is named in the document, which then says it
//! is incomplete, as it does when fields the exporting user may not read were left out
//! (`restrictedFields`): an export never looks whole when it is not.

use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::domain::actor::Actor;
use crate::error::Result;
use crate::plugin::manager::PluginManager;
use crate::service::{Kith, privacy};

/// The export document of contact `id` with what plugins add, audited as `actor`'s export.
pub async fn export(kith: &Kith, actor: &Actor, id: Uuid) -> Result<Json> {
    let mut doc = privacy::export(kith, actor, id).await?;
    let mut added = Map::new();
    let mut failed = Vec::new();
    if let Some(manager) = PluginManager::of(kith) {
        let registry = kith.registry();
        for plugin in manager.active() {
            let Some(query) = &plugin.manifest.privacy.export else { continue };
            let Some(extension) = registry.extensions().iter().find(|e| e.plugin == plugin.id()) else { continue };
            let mut arguments = Map::new();
            arguments.insert("contactId".into(), json!(id.to_string()));
            match crate::plugin::operation::run_operation(kith, extension, query, actor, &arguments).await {
                Ok(answer) => {
                    added.insert(plugin.id().to_owned(), answer);
                }
                Err(failure) => {
                    tracing::warn!(plugin = %plugin.id(), error = %failure, "a plugin's personal-data export failed");
                    failed.push(json!({"plugin": plugin.id(), "error": failure.to_string()}));
                }
            }
        }
    }
    if let Json::Object(map) = &mut doc {
        let restricted = map.get("restrictedFields").and_then(Json::as_array).is_some_and(|r| !r.is_empty());
        map.insert("pluginExports".into(), Json::Object(added));
        map.insert("complete".into(), json!(failed.is_empty() && !restricted));
        map.insert("failedPlugins".into(), Json::Array(failed));
    }
    privacy::audit_export(kith, actor, id).await?;
    Ok(doc)
}
