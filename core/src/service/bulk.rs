//! Writes in bulk (`kith:plugin/bulk`, since WIT 1.4): many records of one object created or
//! updated in one call. Each item goes through what its single write goes through (input
//! checks, the object's rules, references, the plugins' `before-write`, audit entry, search
//! entry, event), but the statements are shared: the references of all items are checked with
//! one query per referenced object, the new rows are inserted together and the records to
//! update are read together.
//!
//! Items fail one by one: a failed item (a validation error, a reference to nothing, a refusal,
//! a stale version, a uniqueness conflict) writes nothing, and the others are written. What can
//! fail after an item's row is written fails the whole call, which then writes nothing: the call
//! runs in one step of the caller's transaction. A statement that may fail on its own (the
//! multi-row insert, an update of a unique field) runs in a nested step, so that on PostgreSQL
//! its failure does not abort the transaction.

use std::collections::{HashMap, HashSet};

use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::custom_field::validate_values;
use crate::domain::hook::WriteOp;
use crate::domain::object::{ObjectDef, Registry};
use crate::domain::rules::{self, Mode};
use crate::domain::value::{Fields, Value};
use crate::error::{Error, Result};
use crate::service::input::Input;
use crate::service::object_def;
use crate::service::records::{self as service, Effects};
use crate::store::records::{self, Record};
use crate::store::{Tx, audit, search};

/// Most items one bulk call may carry.
pub const MAX_ITEMS: usize = 1_000;

/// Whether a create takes the shared path: objects whose rules write history or number rows
/// (deals, tickets), consents, records with tags and contacts stating consent go one by one.
fn shared_create(def: &ObjectDef, input: &Input) -> bool {
    let consents = def.name == "contact"
        && ["emailOptIn", "doNotContact"].iter().any(|f| input.fields.get(*f).and_then(Value::as_bool) == Some(true));
    !matches!(def.name.as_str(), "consent" | "deal" | "ticket")
        && input.tags.is_none()
        && input.tag_edit.is_none()
        && !consents
}

/// Creates one record of `object` per input, in order; each result is that item's.
pub async fn create_many(
    tx: &Tx,
    registry: &Registry,
    object: &str,
    inputs: Vec<Input>,
) -> Result<Vec<Result<Record>>> {
    let def = object_def(registry, object)?;
    tx.step(create_all(tx, registry, &def, inputs)).await
}

async fn create_all(tx: &Tx, registry: &Registry, def: &ObjectDef, inputs: Vec<Input>) -> Result<Vec<Result<Record>>> {
    let mut results: Vec<Option<Result<Record>>> = inputs.iter().map(|_| None).collect();
    let custom = if def.custom_fields { tx.custom_fields(&def.name).await? } else { Vec::new() };
    // Checked and prepared, references not yet checked.
    let mut pending: Vec<(usize, Fields)> = Vec::new();
    for (index, input) in inputs.into_iter().enumerate() {
        if !shared_create(def, &input) {
            results[index] = Some(tx.step(service::create(tx, registry, &def.name, input)).await);
            continue;
        }
        match prepare_new(tx, registry, def, &custom, input).await {
            Ok(after) => pending.push((index, after)),
            Err(err) => results[index] = Some(Err(err)),
        }
    }
    let mut dangling = dangling_references(tx, registry, def, &pending).await?;
    let mut ready: Vec<(usize, Fields)> = Vec::with_capacity(pending.len());
    for (index, mut after) in pending {
        if let Some(err) = dangling.remove(&index) {
            results[index] = Some(Err(err.into()));
            continue;
        }
        service::stamp_new(def, &mut after, tx);
        match service::run_write_hook(tx, registry, def, WriteOp::Create, None, &mut after).await {
            Ok(()) => ready.push((index, after)),
            Err(err) => results[index] = Some(Err(err)),
        }
    }
    let rows: Vec<Fields> = ready.iter().map(|(_, fields)| fields.clone()).collect();
    let inserted: Vec<bool> = match tx.step(records::insert(tx.conn(), def, &rows)).await {
        Ok(()) => vec![true; rows.len()],
        // One of them holds a unique value already: each row on its own, to tell which.
        Err(Error::Domain(DomainError::Conflict(_))) => {
            let mut inserted = Vec::with_capacity(rows.len());
            for ((index, _), row) in ready.iter().zip(&rows) {
                match tx.step(records::insert(tx.conn(), def, std::slice::from_ref(row))).await {
                    Ok(()) => inserted.push(true),
                    Err(err @ Error::Domain(_)) => {
                        results[*index] = Some(Err(err));
                        inserted.push(false);
                    }
                    Err(err) => return Err(err),
                }
            }
            inserted
        }
        Err(err) => return Err(err),
    };
    let mut created = Vec::with_capacity(ready.len());
    for ((index, fields), ok) in ready.into_iter().zip(inserted) {
        if ok {
            let record = Record { fields };
            audit::record_created(tx, &def.name, record.id(), &record.fields, None).await?;
            created.push((index, record));
        }
    }
    if !def.search_fields.is_empty() {
        let records: Vec<Record> = created.iter().map(|(_, r)| r.clone()).collect();
        search::index_new(tx, def, &records).await?;
    }
    for (index, record) in created {
        service::after_write(tx, def, &record, Effects::default(), "created", Json::Null).await?;
        results[index] = Some(Ok(record));
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::internal("a bulk item was not written")))).collect())
}

/// An item's fields as its create would store them, before references, ids and hooks.
async fn prepare_new(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    custom: &[crate::domain::custom_field::CustomFieldDef],
    input: Input,
) -> Result<Fields> {
    rules::check_input(def, &input.fields, Mode::Create)?;
    let mut after = input.fields;
    if def.custom_fields {
        after.insert("customFields".into(), Value::Json(validate_values(custom, None, input.custom_fields.as_ref())?));
    } else if input.custom_fields.is_some() {
        return Err(DomainError::invalid("customFields", format!("{} has no custom fields", def.type_name)).into());
    }
    let mut effects = Effects::default();
    service::before_write(tx, registry, def, None, &mut after, &mut effects).await?;
    rules::prepare(def, None, &mut after, tx.now)?;
    Ok(after)
}

/// The items whose references point at no live record (or an inactive assignee), with the
/// error each gets: one query per referenced object for all items.
async fn dangling_references(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    items: &[(usize, Fields)],
) -> Result<HashMap<usize, DomainError>> {
    let mut out = HashMap::new();
    for (field, target) in def.references() {
        let ids: Vec<Uuid> = {
            let set: HashSet<Uuid> =
                items.iter().filter_map(|(_, f)| f.get(&field.name).and_then(Value::as_uuid)).collect();
            set.into_iter().collect()
        };
        if ids.is_empty() {
            continue;
        }
        let target_def = object_def(registry, target)?;
        let live: HashSet<Uuid> = records::get_many_fields(tx.conn(), &target_def, &["deletedAt", "active"], &ids)
            .await?
            .into_iter()
            .filter(|r| !target_def.soft_delete || r.get("deletedAt").is_null())
            .filter(|r| !(target == "user" && field.name == "assigneeId" && r.get("active").as_bool() == Some(false)))
            .map(|r| r.id())
            .collect();
        for (index, fields) in items {
            let Some(id) = fields.get(&field.name).and_then(Value::as_uuid) else { continue };
            if !live.contains(&id) && !out.contains_key(index) {
                let reason = if target == "user" && field.name == "assigneeId" {
                    format!("no active user with id {id}")
                } else {
                    format!("no {target} with id {id}")
                };
                out.insert(*index, DomainError::invalid(&field.name, reason));
            }
        }
    }
    Ok(out)
}

/// One update of [`update_many`].
#[derive(Debug)]
pub struct Update {
    /// The record.
    pub id: Uuid,
    /// What to change.
    pub input: Input,
    /// Only if the record is still at this version.
    pub expected_version: Option<i64>,
}

/// Applies each update, in order; each result is that item's. An id given twice fails the
/// second time (`invalid`): its first update already moved the version.
pub async fn update_many(
    tx: &Tx,
    registry: &Registry,
    object: &str,
    updates: Vec<Update>,
) -> Result<Vec<Result<Record>>> {
    let def = object_def(registry, object)?;
    tx.step(update_all(tx, registry, &def, updates)).await
}

async fn update_all(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    updates: Vec<Update>,
) -> Result<Vec<Result<Record>>> {
    let ids: Vec<Uuid> = updates.iter().map(|u| u.id).collect();
    let mut stored: HashMap<Uuid, Record> =
        records::get_many(tx.conn(), def, &ids).await?.into_iter().map(|r| (r.id(), r)).collect();
    let unique: HashSet<&str> = def.fields.iter().filter(|f| f.unique).map(|f| f.name.as_str()).collect();
    let mut seen = HashSet::new();
    let mut results: Vec<Option<Result<Record>>> = Vec::with_capacity(updates.len());
    // Rows of a plugin object to write together (their rules have run): index and write.
    let mut shared: Vec<(usize, Box<service::UpdateWrite>)> = Vec::new();
    for (index, Update { id, mut input, expected_version }) in updates.into_iter().enumerate() {
        results.push(None);
        if !seen.insert(id) {
            let err = DomainError::invalid("id", format!("record {id} is updated twice in one call"));
            results[index] = Some(Err(err.into()));
            continue;
        }
        let before = match stored.remove(&id) {
            Some(record) if !def.soft_delete || record.get("deletedAt").is_null() => record,
            _ => {
                results[index] = Some(Err(DomainError::not_found(&def.name, id).into()));
                continue;
            }
        };
        if let Err(err) = rules::check_input(def, &input.fields, Mode::Update)
            .map_err(Error::from)
            .and_then(|()| service::check_version(&before, expected_version))
        {
            results[index] = Some(Err(err));
            continue;
        }
        if let Err(err) = service::resolve_tag_edit(tx, Some(id), &mut input).await {
            results[index] = Some(Err(err));
            continue;
        }
        // A unique value or tags may make the write fail after a statement (on PostgreSQL that
        // aborts the transaction) or write more rows: such an item runs in a step of its own.
        // So does a contact, whose consent history follows its fields.
        let alone =
            def.name == "contact" || input.tags.is_some() || input.fields.keys().any(|k| unique.contains(k.as_str()));
        let (fields, custom, tags) = (input.fields, input.custom_fields, input.tags);
        let result = if alone {
            tx.step(service::apply_update(tx, registry, def, before, fields, custom, tags, Effects::default())).await
        } else if def.plugin.is_some() {
            // Its rules now; its row with the others', below.
            match service::prepare_update(tx, registry, def, before, fields, custom, tags, Effects::default()).await {
                Ok(service::PreparedUpdate::Unchanged(record)) => Ok(record),
                Ok(service::PreparedUpdate::Write(write)) => {
                    shared.push((index, write));
                    continue;
                }
                Err(err) => Err(err),
            }
        } else {
            service::apply_update(tx, registry, def, before, fields, custom, tags, Effects::default()).await
        };
        match result {
            Ok(record) => results[index] = Some(Ok(record)),
            Err(err @ Error::Domain(_)) => results[index] = Some(Err(err)),
            Err(err) => return Err(err),
        }
    }
    // A plugin object's rows: one statement per group of rows that set the same columns, each
    // row only at the version read above (another write since makes that item a conflict).
    if !shared.is_empty() {
        let rows: Vec<(Uuid, Option<i64>, &crate::domain::value::Fields)> =
            shared.iter().map(|(_, w)| (w.id, w.expected, &w.written)).collect();
        let written = crate::store::plugin_objects::update_rows(tx.conn(), def, &rows).await?;
        for (index, write) in shared {
            results[index] = Some(if written.contains(&write.id) {
                // The row is written: a failure now fails the whole call (the step undoes it).
                Ok(service::finish_update(tx, registry, def, *write).await?)
            } else {
                Err(service::changed_meanwhile())
            });
        }
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::internal("a bulk update was not made")))).collect())
}
