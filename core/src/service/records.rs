//! Generic create, update, delete and restore for every object, with the per-object rules that
//! need the database (a deal's stage must belong to its pipeline, a ticket gets a number and SLA
//! due times, ...).

use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::Role;
use crate::domain::custom_field::validate_values;
use crate::domain::hook::{PendingWrite, WriteOp};
use crate::domain::object::{ObjectDef, Registry};
use crate::domain::rules::{self, Mode};
use crate::domain::ticket::{SlaPolicy, sla_due};
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::{Error, Result};
use crate::service::input::Input;
use crate::service::object_def;
use crate::service::references;
use crate::store::outbox::NewEvent;
use crate::store::records::{self, Record};
use crate::store::{Tx, audit, custom_fields, outbox, search, tags};

/// Side effects a write has beyond its own row, applied after the row is written.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Extra events beyond `<object>.created` / `.updated`.
    pub(crate) events: Vec<(String, Json)>,
    /// A deal entered a stage: (from, to).
    pub(crate) stage_change: Option<(Option<Uuid>, Uuid)>,
    /// Ticket history: (kind, from, to).
    pub(crate) ticket_events: Vec<(String, Option<String>, Option<String>)>,
    /// A contact's consent as stated by `recordConsent` (see `service::privacy`).
    pub(crate) consent: Option<crate::service::privacy::ConsentInput>,
}

/// Builds an outbox event about `record`.
pub(crate) fn event(object: &ObjectDef, kind: &str, record: &Record, extra: Json) -> NewEvent {
    let mut payload = json!({ "record": record.to_json() });
    if let (Json::Object(map), Json::Object(extra)) = (&mut payload, extra) {
        map.extend(extra);
    }
    NewEvent {
        kind: format!("{}.{kind}", object.name),
        object: object.name.clone(),
        record_id: Some(record.id()),
        payload,
    }
}

/// Creates a record.
pub async fn create(tx: &Tx, registry: &Registry, object: &str, input: Input) -> Result<Record> {
    create_with(tx, registry, object, input, false).await
}

/// Creates a record as the last use its write makes of it: the caller runs no statement that
/// reads or refers to the new row afterwards (a GraphQL `createX`). A grouped write may then
/// hold the row back and write the group's new rows in one statement ([`Tx::insert_record`]).
pub async fn create_final(tx: &Tx, registry: &Registry, object: &str, input: Input) -> Result<Record> {
    create_with(tx, registry, object, input, true).await
}

async fn create_with(tx: &Tx, registry: &Registry, object: &str, mut input: Input, last_use: bool) -> Result<Record> {
    let def = object_def(registry, object)?;
    resolve_tag_edit(tx, None, &mut input).await?;
    rules::check_input(&def, &input.fields, Mode::Create)?;
    if def.name == "consent" {
        // A consent is history the contact's fields follow, never a row on its own.
        return crate::service::privacy::create_consent(tx, registry, &input.fields).await;
    }
    let custom = load_custom(tx, &def, input.custom_fields.is_some()).await?;
    let mut after = input.fields;
    if def.custom_fields {
        after.insert("customFields".into(), Value::Json(validate_values(&custom, None, input.custom_fields.as_ref())?));
    }
    let mut effects = Effects::default();
    before_write(tx, registry, &def, None, &mut after, &mut effects).await?;
    rules::prepare(&def, None, &mut after, tx.now)?;
    check_references(tx, registry, &def, None, &after).await?;
    stamp_new(&def, &mut after, tx);
    run_write_hook(tx, registry, &def, WriteOp::Create, None, &mut after).await?;
    let consents = def.name == "contact" && (flag(&after, "emailOptIn") || flag(&after, "doNotContact"));
    // Nothing after the row refers to it (no tags, no history rows, no consent records, nothing
    // the caller does): a group may hold it back and write its rows in one statement.
    if last_use
        && input.tags.is_none()
        && effects.stage_change.is_none()
        && effects.ticket_events.is_empty()
        && !consents
    {
        tx.insert_record(&def, &after).await?;
    } else {
        records::insert(tx.conn(), &def, std::slice::from_ref(&after)).await?;
    }
    let record = Record { fields: after };
    if let Some(names) = &input.tags {
        tags::set(tx, &def.name, record.id(), names).await?;
    }
    let tag_names = input.tags.as_deref().map(tags::clean_names).transpose()?;
    audit::record_created(tx, &def.name, record.id(), &record.fields, tag_names.as_deref()).await?;
    search::index_new(tx, &def, std::slice::from_ref(&record)).await?;
    if consents {
        crate::service::privacy::record_consent_changes(tx, registry, None, &record, None).await?;
    }
    after_write(tx, &def, &record, effects, "created", Json::Null).await?;
    Ok(record)
}

/// Turns an input's `addTags` / `removeTags` into its full tag list, against record `id`'s
/// stored tags (none for a new record).
pub(crate) async fn resolve_tag_edit(tx: &Tx, id: Option<Uuid>, input: &mut Input) -> Result<()> {
    let Some(edit) = input.tag_edit.take() else { return Ok(()) };
    let stored = match id {
        Some(id) => tags::for_records(tx.conn(), &[id]).await?.remove(&id).unwrap_or_default(),
        None => Vec::new(),
    };
    input.tags = Some(edit.apply(stored));
    Ok(())
}

/// Sets id, timestamps and version on a new record.
pub(crate) fn stamp_new(def: &ObjectDef, after: &mut Fields, tx: &Tx) {
    after.insert("id".into(), Value::Uuid(Uuid::now_v7()));
    after.insert("createdAt".into(), Value::DateTime(tx.now));
    if def.versioned {
        after.insert("updatedAt".into(), Value::DateTime(tx.now));
        after.insert("version".into(), Value::Int(1));
    }
    if def.soft_delete {
        after.insert("deletedAt".into(), Value::Null);
    }
}

async fn load_custom(
    tx: &Tx,
    def: &ObjectDef,
    given: bool,
) -> Result<Vec<crate::domain::custom_field::CustomFieldDef>> {
    if def.custom_fields {
        tx.custom_fields(&def.name).await
    } else if given {
        Err(DomainError::invalid("customFields", format!("{} has no custom fields", def.type_name)).into())
    } else {
        Ok(Vec::new())
    }
}

/// Refuses an update based on a stale version.
pub fn check_version(record: &Record, expected: Option<i64>) -> Result<()> {
    if let (Some(expected), Some(current)) = (expected, record.get("version").as_int())
        && expected != current
    {
        return Err(DomainError::conflict(format!(
            "stale version: you have version {expected}, the record is at version {current}; reload it and retry"
        ))
        .into());
    }
    Ok(())
}

/// Updates a record from caller input.
pub async fn update(
    tx: &Tx,
    registry: &Registry,
    object: &str,
    id: Uuid,
    input: Input,
    expected_version: Option<i64>,
) -> Result<Record> {
    let def = object_def(registry, object)?;
    rules::check_input(&def, &input.fields, Mode::Update)?;
    let before = records::get_live(tx.conn(), &def, id).await?;
    check_version(&before, expected_version)?;
    let mut input = input;
    resolve_tag_edit(tx, Some(id), &mut input).await?;
    apply_update(tx, registry, &def, before, input.fields, input.custom_fields, input.tags, Effects::default()).await
}

/// Writes `changes` (already checked for access) onto `before`, running every rule, and
/// records the audit entry and events. Internal workflows use it to set read-only fields.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply_update(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    before: Record,
    changes: Fields,
    custom: Option<Json>,
    new_tags: Option<Vec<String>>,
    effects: Effects,
) -> Result<Record> {
    match prepare_update(tx, registry, def, before, changes, custom, new_tags, effects).await? {
        PreparedUpdate::Unchanged(record) => Ok(record),
        PreparedUpdate::Write(write) => {
            if !records::update(tx.conn(), def, write.id, write.expected, &write.written).await? {
                return Err(changed_meanwhile());
            }
            finish_update(tx, registry, def, *write).await
        }
    }
}

/// The conflict of a versioned write that found its row at another version.
pub(crate) fn changed_meanwhile() -> Error {
    DomainError::conflict("the record was changed by someone else meanwhile; reload it and retry").into()
}

/// An update whose rules have run: nothing to write, or the row to write.
pub(crate) enum PreparedUpdate {
    /// Nothing changes: the record as it is.
    Unchanged(Record),
    /// What to write, and what the write then records.
    Write(Box<UpdateWrite>),
}

/// The row an update writes ([`PreparedUpdate::Write`]).
pub(crate) struct UpdateWrite {
    pub(crate) id: Uuid,
    /// The version the row must still have (versioned objects).
    pub(crate) expected: Option<i64>,
    /// The columns to set, with the new version and `updatedAt`.
    pub(crate) written: Fields,
    before: Record,
    after: Fields,
    diff: Vec<(String, Value, Value)>,
    tag_change: Option<(Vec<String>, Vec<String>)>,
    effects: Effects,
}

/// The first half of [`apply_update`]: every rule, the references, the plugins' `before-write`,
/// the diff; no statement writes.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn prepare_update(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    before: Record,
    changes: Fields,
    custom: Option<Json>,
    new_tags: Option<Vec<String>>,
    mut effects: Effects,
) -> Result<PreparedUpdate> {
    let id = before.id();
    let mut after = before.fields.clone();
    after.extend(changes);
    if custom.is_some() {
        let defs = load_custom(tx, def, true).await?;
        let previous = match before.get("customFields") {
            Value::Json(j) => Some(j.clone()),
            _ => None,
        };
        after.insert("customFields".into(), Value::Json(validate_values(&defs, previous.as_ref(), custom.as_ref())?));
    }
    before_write(tx, registry, def, Some(&before), &mut after, &mut effects).await?;
    rules::prepare(def, Some(&before.fields), &mut after, tx.now)?;
    check_references(tx, registry, def, Some(&before.fields), &after).await?;
    if !rules::diff(&before.fields, &after).is_empty() {
        run_write_hook(tx, registry, def, WriteOp::Update, Some(&before), &mut after).await?;
    }
    let diff = rules::diff(&before.fields, &after);
    let tag_change = match &new_tags {
        Some(names) => {
            let old = tags::for_records(tx.conn(), &[id]).await?.remove(&id).unwrap_or_default();
            let new = tags::clean_names(names)?;
            let same = old.len() == new.len() && old.iter().all(|o| new.iter().any(|n| n.eq_ignore_ascii_case(o)));
            (!same).then_some((old, new))
        }
        None => None,
    };
    if diff.is_empty() && tag_change.is_none() && effects.events.is_empty() && effects.consent.is_none() {
        return Ok(PreparedUpdate::Unchanged(before));
    }
    let mut written: Fields = diff.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect();
    if def.versioned {
        let version = before.get("version").as_int().unwrap_or(1);
        after.insert("updatedAt".into(), Value::DateTime(tx.now));
        after.insert("version".into(), Value::Int(version + 1));
        written.insert("updatedAt".into(), Value::DateTime(tx.now));
        written.insert("version".into(), Value::Int(version + 1));
    }
    let expected = before.get("version").as_int().filter(|_| def.versioned);
    Ok(PreparedUpdate::Write(Box::new(UpdateWrite { id, expected, written, before, after, diff, tag_change, effects })))
}

/// The second half of [`apply_update`], once its row is written: tags, the audit entry, search,
/// consent history, events.
pub(crate) async fn finish_update(tx: &Tx, registry: &Registry, def: &ObjectDef, write: UpdateWrite) -> Result<Record> {
    let UpdateWrite { id, before, after, diff, tag_change, mut effects, .. } = write;
    if let Some((_, new)) = &tag_change {
        tags::set(tx, &def.name, id, new).await?;
    }
    let mut changes = audit::changes_json(&diff);
    if let (Some((old, new)), Json::Object(map)) = (&tag_change, &mut changes) {
        map.insert("tags".into(), json!({"before": old, "after": new}));
    }
    let record = Record { fields: after };
    audit::record(tx, "update", &def.name, Some(id), changes.clone()).await?;
    search::reindex(tx, def, &before, &record).await?;
    if def.name == "contact" {
        let explicit = effects.consent.take();
        crate::service::privacy::record_consent_changes(tx, registry, Some(&before.fields), &record, explicit).await?;
    }
    after_write(tx, def, &record, effects, "updated", json!({ "changes": changes })).await?;
    Ok(record)
}

/// Asks the write hook (plugins) about a write, if one wants writes to this object. Fields it
/// changes go through the core rules again; a refusal aborts the write.
pub(crate) async fn run_write_hook(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    op: WriteOp,
    before: Option<&Record>,
    after: &mut Fields,
) -> Result<()> {
    let Some(hook) = tx.hook_for(&def.name) else { return Ok(()) };
    let after_json = Record { fields: after.clone() }.to_json();
    let id = get(after, "id").as_uuid().map(|id| id.to_string()).unwrap_or_default();
    let write = PendingWrite {
        object: &def.name,
        op,
        id,
        before: before.map(Record::to_json),
        after: after_json,
        actor: &tx.actor,
    };
    let Some(patch) = hook.before_write(write).await? else { return Ok(()) };
    if op == WriteOp::Delete {
        return Ok(());
    }
    let input = Input::from_json(def, &Json::Object(patch))?;
    rules::check_input(def, &input.fields, Mode::Update)?;
    after.extend(input.fields);
    rules::prepare(def, before.map(|b| &b.fields), after, tx.now)?;
    check_references(tx, registry, def, before.map(|b| &b.fields), after).await
}

/// Deletes a record: soft (sets `deletedAt`) where the object supports it, for good otherwise.
/// The records that reference it follow their fields' `on_delete` (`service::references`).
pub async fn delete(tx: &Tx, registry: &Registry, object: &str, id: Uuid) -> Result<Record> {
    let def = object_def(registry, object)?;
    delete_record(tx, registry, &def, id, 0).await
}

/// [`delete`] of a record of a live object, `depth` cascades away from the delete asked for.
pub(crate) async fn delete_record(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    id: Uuid,
    depth: usize,
) -> Result<Record> {
    let before = records::get_live(tx.conn(), def, id).await?;
    before_delete(tx, registry, def, &before).await?;
    let mut after = before.fields.clone();
    after.insert("deletedAt".into(), Value::DateTime(tx.now));
    run_write_hook(tx, registry, def, WriteOp::Delete, Some(&before), &mut after).await?;
    if !def.soft_delete {
        if def.name == "user" {
            return Err(DomainError::conflict(
                "users are deactivated (active: false), not deleted, to keep their history",
            )
            .into());
        }
        records::delete_hard(tx.conn(), def, id).await?;
        audit::record(tx, "delete", &def.name, Some(id), json!({})).await?;
        outbox::emit(tx, vec![event(def, "deleted", &before, Json::Null)]).await?;
        return Ok(before);
    }
    let mut changes = Fields::new();
    changes.insert("deletedAt".into(), Value::DateTime(tx.now));
    let record = write_bookkeeping(tx, def, before, changes, "delete", Some("deleted")).await?;
    references::deleted(tx, registry, def, id, depth).await?;
    Ok(record)
}

/// Restores a soft-deleted record, and the records its delete cascaded to. Unique values
/// (e-mail, domain) are checked again.
pub async fn restore(tx: &Tx, registry: &Registry, object: &str, id: Uuid) -> Result<Record> {
    let def = object_def(registry, object)?;
    restore_record(tx, registry, &def, id, 0).await
}

/// [`restore`] of a record of a live object, `depth` cascades away from the restore asked for.
pub(crate) async fn restore_record(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    id: Uuid,
    depth: usize,
) -> Result<Record> {
    if !def.soft_delete {
        return Err(DomainError::invalid("object", format!("{} records cannot be restored", def.type_name)).into());
    }
    let before = records::get(tx.conn(), def, id).await?.ok_or_else(|| DomainError::not_found(&def.name, id))?;
    let deleted_at = before.get("deletedAt").clone();
    if deleted_at.is_null() {
        return Err(DomainError::conflict(format!("{} {id} is not deleted", def.name)).into());
    }
    let mut changes = Fields::new();
    changes.insert("deletedAt".into(), Value::Null);
    let record = write_bookkeeping(tx, def, before, changes, "restore", Some("restored")).await?;
    references::restored(tx, registry, def, id, &deleted_at, depth).await?;
    Ok(record)
}

/// Writes bookkeeping `changes` (`deletedAt`, a reference moved or cleared) without the rules
/// of an update: the version and `updatedAt` move on, and an audit entry is written; with an
/// `event_kind` (`deleted`), also the search index and an event. Without one (a dormant
/// object's record, see `service::references`) the row and its audit entry are all.
pub(crate) async fn write_bookkeeping(
    tx: &Tx,
    def: &ObjectDef,
    before: Record,
    mut changes: Fields,
    action: &str,
    event_kind: Option<&str>,
) -> Result<Record> {
    let id = before.id();
    let version = before.get("version").as_int();
    if let Some(v) = version {
        changes.insert("version".into(), Value::Int(v + 1));
        changes.insert("updatedAt".into(), Value::DateTime(tx.now));
    }
    if !records::update(tx.conn(), def, id, version, &changes).await? {
        return Err(changed_meanwhile());
    }
    let mut fields = before.fields.clone();
    let diff: Vec<_> = changes.iter().map(|(k, v)| (k.clone(), before.get(k).clone(), v.clone())).collect();
    fields.extend(changes);
    let record = Record { fields };
    audit::record(tx, action, &def.name, Some(id), audit::changes_json(&diff)).await?;
    if let Some(event_kind) = event_kind {
        search::index(tx, def, std::slice::from_ref(&record)).await?;
        outbox::emit(tx, vec![event(def, event_kind, &record, Json::Null)]).await?;
    }
    Ok(record)
}

/// Checks that every reference that changed points at a live record of the right object.
pub(crate) async fn check_references(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    before: Option<&Fields>,
    after: &Fields,
) -> Result<()> {
    let mut named = Vec::new();
    for (field, target) in def.references() {
        let Some(id) = after.get(&field.name).and_then(Value::as_uuid) else { continue };
        if before.and_then(|b| b.get(&field.name)).and_then(Value::as_uuid) == Some(id) {
            continue;
        }
        named.push((field, target, object_def(registry, target)?, id));
    }
    if named.is_empty() {
        return Ok(());
    }
    // Every reference the write names, in one statement.
    let targets: Vec<(&ObjectDef, Uuid)> = named.iter().map(|(_, _, def, id)| (def.as_ref(), *id)).collect();
    let live = records::live(tx.conn(), &targets).await?;
    for ((field, target, target_def, id), live) in named.iter().zip(live) {
        if !live {
            return Err(DomainError::invalid(&field.name, format!("no {target} with id {id}")).into());
        }
        if *target == "user" && field.name == "assigneeId" {
            let user = records::get_live_fields(tx.conn(), target_def, *id, Some(&["active".to_owned()])).await?;
            if user.get("active").as_bool() == Some(false) {
                return Err(DomainError::invalid(&field.name, "the user is inactive").into());
            }
        }
    }
    Ok(())
}

async fn sla_policy(tx: &Tx, priority: &str) -> Result<SlaPolicy> {
    let (first_response_minutes, resolution_minutes) = crate::store::records::sla_policy(tx.conn(), priority)
        .await?
        .ok_or_else(|| Error::internal(format!("no SLA policy for {priority}")))?;
    Ok(SlaPolicy { first_response_minutes, resolution_minutes })
}

fn flag(fields: &Fields, name: &str) -> bool {
    get(fields, name).as_bool() == Some(true)
}

fn get<'a>(fields: &'a Fields, name: &str) -> &'a Value {
    fields.get(name).unwrap_or(&Value::Null)
}

/// Per-object rules that read the database, run before the generic rules.
pub(crate) async fn before_write(
    tx: &Tx,
    registry: &Registry,
    def: &ObjectDef,
    before: Option<&Record>,
    after: &mut Fields,
    effects: &mut Effects,
) -> Result<()> {
    match def.name.as_str() {
        "contact" => {
            // Placing or lifting a legal hold decides whether a person may be erased: managers.
            let held = |fields: Option<&Fields>| fields.is_some_and(|f| flag(f, "legalHold"));
            if held(before.map(|b| &b.fields)) != held(Some(after)) && !tx.actor.role.allows(Role::Manager) {
                return Err(DomainError::Forbidden(format!(
                    "placing or lifting a legal hold needs the MANAGER role; you have {}",
                    tx.actor.role
                ))
                .into());
            }
            Ok(())
        }
        "deal" => deal_before_write(tx, registry, before, after, effects).await,
        "ticket" => {
            let priority = get(after, "priority").as_text().unwrap_or("NORMAL").to_owned();
            after.insert("priority".into(), Value::Text(priority.clone()));
            match before {
                None => {
                    let number = crate::store::counter::next(tx, "ticket_number").await?;
                    after.insert("number".into(), Value::Int(number));
                    after.insert("status".into(), Value::Text("NEW".into()));
                    let (first, resolution) = sla_due(tx.now, sla_policy(tx, &priority).await?);
                    after.insert("firstResponseDueAt".into(), Value::DateTime(first));
                    after.insert("resolutionDueAt".into(), Value::DateTime(resolution));
                    effects.ticket_events.push(("created".into(), None, Some("NEW".into())));
                }
                Some(before) => {
                    let old = before.get("priority").as_text().unwrap_or("NORMAL").to_owned();
                    if old != priority {
                        // Due times follow the priority, counted from creation.
                        let created = before.get("createdAt").as_datetime().unwrap_or(tx.now);
                        let (first, resolution) = sla_due(created, sla_policy(tx, &priority).await?);
                        after.insert("firstResponseDueAt".into(), Value::DateTime(first));
                        after.insert("resolutionDueAt".into(), Value::DateTime(resolution));
                        effects.ticket_events.push(("priority_changed".into(), Some(old), Some(priority)));
                    }
                }
            }
            Ok(())
        }
        "ticketComment" if before.is_none() => {
            after.insert("authorId".into(), tx.actor.user_id.map(Value::Uuid).unwrap_or(Value::Null));
            after.insert("authorName".into(), Value::Text(tx.actor.label()));
            Ok(())
        }
        "stage" if before.is_none() => {
            // A stage is added to a live pipeline only.
            if let Some(pipeline_id) = get(after, "pipelineId").as_uuid() {
                let pipeline = object_def(registry, "pipeline")?;
                records::get_live(tx.conn(), &pipeline, pipeline_id).await.map_err(|_| {
                    Error::Domain(DomainError::invalid("pipelineId", format!("no pipeline with id {pipeline_id}")))
                })?;
            }
            Ok(())
        }
        "segment" => {
            let object = get(after, "object").as_text().unwrap_or("CONTACT");
            let target = crate::domain::naming::object_of_value(registry, object)
                .filter(|def| def.segmentable)
                .cloned()
                .ok_or_else(|| DomainError::invalid("object", format!("`{object}` cannot be segmented")))?;
            let custom = tx.custom_fields(&target.name).await?;
            let filter = match get(after, "filter") {
                Value::Json(j) => j.clone(),
                _ => Json::Null,
            };
            crate::domain::filter::Filter::from_json(&target, &custom, &filter)?;
            Ok(())
        }
        "user" => {
            if let Some(role) = get(after, "role").as_text() {
                role.parse::<crate::domain::actor::Role>()?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn deal_before_write(
    tx: &Tx,
    registry: &Registry,
    before: Option<&Record>,
    after: &mut Fields,
    effects: &mut Effects,
) -> Result<()> {
    let pipeline_def = object_def(registry, "pipeline")?;
    let stage_def = object_def(registry, "stage")?;
    let pipeline_id =
        get(after, "pipelineId").as_uuid().ok_or_else(|| DomainError::invalid("pipelineId", "is required"))?;
    let stage_id = get(after, "stageId").as_uuid().ok_or_else(|| DomainError::invalid("stageId", "is required"))?;
    let pipeline = match records::get(tx.conn(), &pipeline_def, pipeline_id).await? {
        Some(p) if p.get("deletedAt").is_null() => p,
        _ => return Err(DomainError::invalid("pipelineId", format!("no pipeline with id {pipeline_id}")).into()),
    };
    let stage = match records::get(tx.conn(), &stage_def, stage_id).await? {
        Some(s) if s.get("deletedAt").is_null() => s,
        _ => return Err(DomainError::invalid("stageId", format!("no stage with id {stage_id}")).into()),
    };
    if stage.get("pipelineId").as_uuid() != Some(pipeline_id) {
        return Err(DomainError::invalid("stageId", "the stage belongs to another pipeline than the deal").into());
    }
    if get(after, "currency").is_null() {
        after.insert("currency".into(), pipeline.get("currency").clone());
    }
    let old_stage = before.and_then(|b| b.get("stageId").as_uuid());
    if old_stage != Some(stage_id) {
        let kind = stage.get("kind").as_text().unwrap_or("OPEN").to_owned();
        after.insert("stageChangedAt".into(), Value::DateTime(tx.now));
        let closed = matches!(kind.as_str(), "WON" | "LOST");
        after.insert("closedAt".into(), if closed { Value::DateTime(tx.now) } else { Value::Null });
        if kind != "LOST" && before.is_some() {
            after.insert("lostReason".into(), Value::Null);
        }
        effects.stage_change = Some((old_stage, stage_id));
        let detail = json!({"fromStageId": old_stage.map(|s| s.to_string()), "toStageId": stage_id.to_string(), "stageKind": kind});
        if before.is_some() {
            effects.events.push(("stage_changed".into(), detail.clone()));
        }
        // A deal created in a closing stage (one recorded after the fact) was won or lost too.
        match kind.as_str() {
            "WON" => effects.events.push(("won".into(), detail)),
            "LOST" => effects.events.push(("lost".into(), detail)),
            _ => {}
        }
    }
    Ok(())
}

async fn before_delete(tx: &Tx, registry: &Registry, def: &ObjectDef, record: &Record) -> Result<()> {
    use crate::domain::filter::{Condition, Filter, Op, Target};
    references::check_restrict(tx, registry, def, record.id()).await?;
    let blocking_field = match def.name.as_str() {
        "stage" => "stageId",
        "pipeline" => "pipelineId",
        _ => return Ok(()),
    };
    let deal = object_def(registry, "deal")?;
    let filter = Filter::Cond(Condition {
        target: Target::Field(blocking_field.into()),
        kind: FieldKind::Ref(def.name.clone()),
        op: Op::Eq(Value::Uuid(record.id())),
    });
    let n = records::count(tx.conn(), &deal, &filter, false).await?;
    if n > 0 {
        return Err(
            DomainError::conflict(format!("{n} deal(s) are still in this {}; move them first", def.name)).into()
        );
    }
    Ok(())
}

/// Writes what a record write implies beyond its row, then the events.
pub(crate) async fn after_write(
    tx: &Tx,
    def: &ObjectDef,
    record: &Record,
    effects: Effects,
    kind: &str,
    extra: Json,
) -> Result<()> {
    use crate::store::history;
    if let Some((from, to)) = effects.stage_change {
        history::deal_stage(tx, record.id(), from, to).await?;
    }
    for (kind, from, to) in &effects.ticket_events {
        history::ticket_event(tx, record.id(), kind, from.as_deref(), to.as_deref()).await?;
    }
    let mut events = vec![event(def, kind, record, extra)];
    for (kind, detail) in effects.events {
        events.push(event(def, &kind, record, detail));
    }
    outbox::emit(tx, events).await
}

/// Defines a custom field on an object (an admin operation), with its audit entry and event.
pub async fn define_custom_field(
    tx: &Tx,
    registry: &Registry,
    def: &crate::domain::custom_field::CustomFieldDef,
) -> Result<Uuid> {
    def.validate(registry)?;
    let id = custom_fields::insert(tx, def).await?;
    let detail = serde_json::to_value(def).map_err(|e| Error::internal(e.to_string()))?;
    audit::record(tx, "create", "customField", Some(id), detail.clone()).await?;
    outbox::emit(
        tx,
        vec![NewEvent {
            kind: "customField.defined".into(),
            object: "customField".into(),
            record_id: Some(id),
            payload: detail,
        }],
    )
    .await?;
    Ok(id)
}

/// Creates a record, or — when its natural key (a contact's e-mail, a company's domain) matches
/// a live record — updates that record with the input instead. Returns the record and whether
/// it was created.
pub async fn upsert(tx: &Tx, registry: &Registry, object: &str, input: Input) -> Result<(Record, bool)> {
    use crate::domain::filter::{Condition, Filter, Op, Target};
    let def = object_def(registry, object)?;
    let Some(key) = def.natural_key.clone() else {
        return Err(DomainError::invalid("upsert", format!("{} has no unique key to upsert on", def.type_name)).into());
    };
    let mut probe = input.fields.get(&key).cloned().unwrap_or(Value::Null);
    if let (true, Value::Text(domain)) = (key == "domain", &probe) {
        probe = Value::Text(crate::domain::value::normalize_domain("domain", domain)?);
    }
    if !probe.is_null() {
        let kind = def.field_def(&key).map(|f| f.kind.clone()).unwrap_or(FieldKind::Text);
        let filter = Filter::Cond(Condition { target: Target::Field(key.clone()), kind, op: Op::Eq(probe) });
        if let Some(existing) = records::select_where(tx.conn(), &def, &filter).await?.into_iter().next() {
            let record = update(tx, registry, object, existing.id(), input, None).await?;
            return Ok((record, false));
        }
    }
    Ok((create(tx, registry, object, input).await?, true))
}
