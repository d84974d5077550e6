//! Batching of record lookups: every `Contact.company` of a page becomes one query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::domain::object::ObjectDef;
use crate::service::Kith;
use crate::store::records::{self, Record};

/// Loads records by (object, id), grouping the keys of one request tick by object.
pub struct RecordLoader {
    /// Core services.
    pub kith: Kith,
}

impl Loader<(Arc<str>, Uuid)> for RecordLoader {
    type Value = Record;
    type Error = Arc<crate::error::Error>;

    async fn load(&self, keys: &[(Arc<str>, Uuid)]) -> Result<HashMap<(Arc<str>, Uuid), Record>, Self::Error> {
        let mut by_object: HashMap<Arc<str>, Vec<Uuid>> = HashMap::new();
        for (object, id) in keys {
            by_object.entry(object.clone()).or_default().push(*id);
        }
        let mut out = HashMap::new();
        for (object, ids) in by_object {
            let def = self.kith.object(&object).map_err(Arc::new)?;
            for record in records::get_many(self.kith.store.conn(), &def, &ids).await.map_err(Arc::new)? {
                if def.soft_delete && !record.get("deletedAt").is_null() {
                    continue;
                }
                out.insert((object.clone(), record.id()), record);
            }
        }
        Ok(out)
    }
}

/// Loads the tags of records by id.
pub struct TagLoader {
    /// Core services.
    pub kith: Kith,
}

impl Loader<Uuid> for TagLoader {
    type Value = Vec<String>;
    type Error = Arc<crate::error::Error>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<String>>, Self::Error> {
        let mut found = crate::store::tags::for_records(self.kith.store.conn(), keys).await.map_err(Arc::new)?;
        Ok(keys.iter().map(|id| (*id, found.remove(id).unwrap_or_default())).collect())
    }
}

/// Records of a page's forward relations, read ahead by its connection (per request) and
/// shared by every node that points at one (not copied per node): every `Contact.company` of a
/// page of contacts comes from one query made as soon as the page is read, without waiting for
/// the DataLoader's batching delay. `None`: the reference points at nothing live.
#[derive(Debug, Default)]
pub struct Prefetched(std::sync::Mutex<ByObject>);

/// Read-ahead records by object name, then id.
type ByObject = HashMap<String, HashMap<Uuid, Option<Arc<Record>>>>;

impl Prefetched {
    /// What was read ahead for `(object, id)`; `None` when it was not.
    pub fn get(&self, object: &str, id: Uuid) -> Option<Option<Arc<Record>>> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(object).and_then(|records| records.get(&id)).cloned()
    }

    /// Forgets everything read ahead: called by every mutation, so a later field of the same
    /// operation reads what that mutation left, not what a page read before it.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// Reads ahead, in one query per relation, the targets of each forward relation (`company` for
/// `companyId`) that the query selects on the page's nodes. A failure is left to the field's own
/// resolver (through the DataLoader) to report.
pub async fn prefetch_relations(
    kith: &Kith,
    cache: &Prefetched,
    def: &ObjectDef,
    selected: impl Fn(&str) -> bool,
    records: &[&Record],
) {
    for field in &def.fields {
        let crate::domain::value::FieldKind::Ref(target) = &field.kind else { continue };
        let Some(relation) = field.name.strip_suffix("Id") else { continue };
        if def.field_def(relation).is_some() || !selected(relation) {
            continue;
        }
        let Ok(target_def) = kith.object(target) else { continue };
        let mut ids: Vec<Uuid> = records.iter().filter_map(|r| r.get(&field.name).as_uuid()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            continue;
        }
        let Ok(found) = records::get_many(kith.store.conn(), &target_def, &ids).await else { continue };
        let mut by_id: HashMap<Uuid, Arc<Record>> = found
            .into_iter()
            .filter(|r| !target_def.soft_delete || r.get("deletedAt").is_null())
            .map(|r| (r.id(), Arc::new(r)))
            .collect();
        let mut map = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let read = map.entry(target.clone()).or_default();
        for id in ids {
            read.insert(id, by_id.remove(&id));
        }
    }
}
