//! Batching of record lookups: every `Contact.company` of a page becomes one query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

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
