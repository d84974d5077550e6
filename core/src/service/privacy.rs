//! Personal data: what Kith holds about a person (the export for a request of access), forgetting
//! them (erasure), and their consent history. What each object holds and what erasure does to it
//! come from the registry: references to the person, `personal` fields and the object's
//! [`Erasure`] policy, for core objects, enabled plugins' objects and the dormant objects of
//! disabled plugins alike.
//!
//! Erasure is planned first (the same plan answers a dry run and lists what an export holds):
//! starting from the person's contact and the contacts merged into it, every record that refers
//! to an erased record is deleted, unlinked, anonymised or kept by its object's policy, until no
//! new record is erased. The plan then runs in one transaction; on SQLite the freed space is
//! purged after the commit (`store::privacy::purge_freed`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Datelike;
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::actor::Actor;
use crate::domain::filter::{Condition, Filter, Op, Target};
use crate::domain::object::{Erasure, ObjectDef, Registry};
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::Result;
use crate::service::Kith;
use crate::service::records::Effects;
use crate::store::outbox::NewEvent;
use crate::store::records::{self, ListQuery, PageRequest, Record};
use crate::store::{Tx, audit, outbox, privacy, search, tags};

/// Records read per page while planning.
const PAGE: u64 = 500;

/// What erasure does to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Removed for good.
    Delete,
    /// Kept; the listed references cleared.
    Unlink(Vec<String>),
    /// Kept; the listed references and the `personal` fields cleared.
    Anonymise(Vec<String>),
    /// Kept as it is, for the legal basis given.
    Keep(String),
}

impl Action {
    fn policy(&self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Unlink(_) => "unlink",
            Action::Anonymise(_) => "anonymise",
            Action::Keep(_) => "keep",
        }
    }
}

/// The records of one object a person's request touches, with what erasure does to each.
#[derive(Debug, Clone)]
pub struct Touched {
    /// The object.
    pub def: Arc<ObjectDef>,
    /// Its plugin is installed but disabled: the table is there, the API is not.
    pub dormant: bool,
    /// The records, each with its action, in the order they were found.
    pub records: Vec<(Record, Action)>,
}

/// Everything a person's request touches: their contacts (the one asked about first, then
/// those merged into it) and every record that refers to what is erased.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The contact asked about.
    pub contact_id: Uuid,
    /// The contacts erased: the one asked about and those merged into it, as records.
    pub contacts: Vec<Record>,
    /// The other records, by object, in the order objects were reached.
    pub touched: Vec<Touched>,
}

/// One line of an erasure report: an object and what happens to how many of its records.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureLine {
    /// The object.
    pub object: String,
    /// The plugin that declares it; `None` for core objects.
    pub plugin: Option<String>,
    /// `delete`, `unlink`, `anonymise` or `keep`.
    pub policy: String,
    /// For `keep`: why.
    pub legal_basis: Option<String>,
    /// How many records.
    pub records: u64,
}

/// What an erasure did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReport {
    /// The contact asked about.
    pub contact_id: Uuid,
    /// Nothing was written.
    pub dry_run: bool,
    /// Per object and policy.
    pub lines: Vec<ErasureLine>,
}

/// The objects whose records may hold references: the registry's, then the dormant ones.
fn all_objects(registry: &Registry) -> Vec<(Arc<ObjectDef>, bool)> {
    let mut out: Vec<(Arc<ObjectDef>, bool)> = registry.in_order().map(|d| (d.clone(), false)).collect();
    out.extend(registry.dormant().map(|d| (d.clone(), true)));
    out
}

fn in_filter(field: &str, target: &str, ids: &BTreeSet<Uuid>) -> Filter {
    Filter::Cond(Condition {
        target: Target::Field(field.to_owned()),
        kind: FieldKind::Ref(target.to_owned()),
        op: Op::In(ids.iter().map(|id| Value::Uuid(*id)).collect()),
    })
}

/// Every record of `def` (deleted ones too) matching `filter`.
async fn read_all<C: crate::store::stats::Planned>(db: &C, def: &ObjectDef, filter: Filter) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let query = ListQuery {
            filter: filter.clone(),
            order: Vec::new(),
            page: PageRequest::Forward { first: PAGE, after: after.clone() },
            include_deleted: true,
        };
        let page = records::list(db, def, &query).await?;
        for (cursor, record) in page.records {
            after = Some(cursor);
            out.push(record);
        }
        if !page.has_next {
            return Ok(out);
        }
    }
}

/// The contact `id` and every contact merged into it (and into those), deleted ones included.
async fn contacts_of<C: crate::store::stats::Planned>(db: &C, contact: &ObjectDef, id: Uuid) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = vec![id];
    while let Some(next) = queue.pop() {
        if !seen.insert(next) {
            continue;
        }
        let Some(record) = records::get(db, contact, next).await? else {
            if next == id {
                return Err(DomainError::not_found("contact", next).into());
            }
            continue;
        };
        out.push(record);
        queue.extend(privacy::merged_into(db, next).await?);
    }
    Ok(out)
}

/// Refuses a request when plugins are installed but not loaded in this process: their objects
/// would be missing from the registry, and with them the records they hold about the person.
async fn check_plugins_loaded(kith: &Kith) -> Result<()> {
    if kith.plugins().is_none() && !crate::store::plugins::list(kith.store.conn()).await?.is_empty() {
        return Err(DomainError::conflict(
            "plugins are installed but this process does not run them (plugins.enabled = false), so their records \
             would be missed: use a process that runs plugins, or `kith privacy`",
        )
        .into());
    }
    Ok(())
}

/// Plans a request about contact `id` (see the module docs).
pub async fn plan<C: crate::store::stats::Planned>(db: &C, registry: &Registry, id: Uuid) -> Result<Plan> {
    let contact_def = crate::service::object_def(registry, "contact")?;
    let contacts = contacts_of(db, &contact_def, id).await?;
    let objects = all_objects(registry);
    let mut erased: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    erased.insert("contact".into(), contacts.iter().map(Record::id).collect());
    loop {
        let mut touched = Vec::new();
        let mut next = erased.clone();
        for (def, dormant) in &objects {
            if def.name == "contact" {
                continue;
            }
            // The records of `def` pointing at an erased record, with the fields that do.
            let mut found: BTreeMap<Uuid, (Record, Vec<String>)> = BTreeMap::new();
            for (field, target) in def.references() {
                let Some(ids) = erased.get(target).filter(|ids| !ids.is_empty()) else { continue };
                for record in read_all(db, def, in_filter(&field.name, target, ids)).await? {
                    found.entry(record.id()).or_insert_with(|| (record, Vec::new())).1.push(field.name.clone());
                }
            }
            if found.is_empty() {
                continue;
            }
            let mut records = Vec::new();
            for (id, (record, fields)) in found {
                // A reference that cannot be cleared (required) cannot be unlinked: its record goes.
                let required = fields.iter().any(|f| def.field_def(f).is_some_and(|f| f.required));
                let action = match &def.erasure {
                    Erasure::Delete => Action::Delete,
                    Erasure::DeleteIfOnly | Erasure::Unlink | Erasure::Anonymise if required => Action::Delete,
                    Erasure::DeleteIfOnly => {
                        // Links are references to anything but users (who did the work).
                        let only_erased = def.references().filter(|(_, t)| *t != "user").all(|(f, t)| {
                            record.get(&f.name).as_uuid().is_none_or(|v| erased.get(t).is_some_and(|s| s.contains(&v)))
                        });
                        if only_erased { Action::Delete } else { Action::Unlink(fields) }
                    }
                    Erasure::Unlink => Action::Unlink(fields),
                    Erasure::Anonymise => Action::Anonymise(fields),
                    Erasure::Keep(basis) => Action::Keep(basis.clone()),
                };
                if action == Action::Delete {
                    next.entry(def.name.clone()).or_default().insert(id);
                }
                records.push((record, action));
            }
            touched.push(Touched { def: def.clone(), dormant: *dormant, records });
        }
        if next == erased {
            return Ok(Plan { contact_id: id, contacts, touched });
        }
        erased = next;
    }
}

impl Plan {
    /// The report of this plan: per object and policy, how many records.
    pub fn report(&self, dry_run: bool) -> ErasureReport {
        let mut lines = vec![ErasureLine {
            object: "contact".into(),
            plugin: None,
            policy: "delete".into(),
            legal_basis: None,
            records: self.contacts.len() as u64,
        }];
        for touched in &self.touched {
            let mut counts: BTreeMap<(&'static str, Option<String>), u64> = BTreeMap::new();
            for (_, action) in &touched.records {
                let basis = match action {
                    Action::Keep(basis) => Some(basis.clone()),
                    _ => None,
                };
                *counts.entry((action.policy(), basis)).or_default() += 1;
            }
            for ((policy, legal_basis), records) in counts {
                lines.push(ErasureLine {
                    object: touched.def.name.clone(),
                    plugin: touched.def.plugin.clone(),
                    policy: policy.into(),
                    legal_basis,
                    records,
                });
            }
        }
        ErasureReport { contact_id: self.contact_id, dry_run, lines }
    }

    /// The values a search of the database for this person would look for beyond record ids:
    /// their e-mail addresses and phone numbers.
    fn needles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for contact in &self.contacts {
            for field in ["email", "phone"] {
                if let Some(text) = contact.get(field).as_text().filter(|t| t.len() >= 4) {
                    out.push(text.to_owned());
                }
            }
        }
        out
    }
}

/// The contacts (live or deleted) whose e-mail is `email`, ignoring case.
pub async fn contacts_with_email(kith: &Kith, email: &str) -> Result<Vec<Uuid>> {
    let email = email.trim();
    if email.is_empty() {
        return Err(DomainError::invalid("email", "is empty").into());
    }
    let def = kith.object("contact")?;
    let escaped: String =
        email.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    let filter = Filter::Cond(Condition {
        target: Target::Field("email".into()),
        kind: FieldKind::Email,
        op: Op::Ilike(escaped),
    });
    Ok(read_all(kith.store.conn(), &def, filter).await?.iter().map(Record::id).collect())
}

/// Refuses a request about a contact on legal hold.
fn check_hold(plan: &Plan) -> Result<()> {
    if let Some(held) = plan.contacts.iter().find(|c| c.get("legalHold").as_bool() == Some(true)) {
        return Err(DomainError::conflict(format!(
            "contact {} is on legal hold: lift the hold (legalHold: false) before erasing",
            held.id()
        ))
        .into());
    }
    Ok(())
}

/// The fields a record of `def` loses under `action`, set to null (a required text field gets
/// the erased marker instead, so the row stays valid).
fn cleared(def: &ObjectDef, action: &Action) -> Fields {
    let mut out = Fields::new();
    let (refs, personal) = match action {
        Action::Unlink(refs) => (refs, false),
        Action::Anonymise(refs) => (refs, true),
        _ => return out,
    };
    for name in refs {
        out.insert(name.clone(), Value::Null);
    }
    if personal {
        for field in def.personal_fields() {
            let value = if field.required && matches!(field.kind, FieldKind::Text) {
                Value::Text(privacy::ERASED.into())
            } else if field.required {
                continue;
            } else {
                Value::Null
            };
            out.insert(field.name.clone(), value);
        }
    }
    out
}

/// Erases the person of contact `id` (see the module docs): irreversible. `reason` is kept in
/// the one audit entry that remains; it must not itself hold personal data.
pub async fn erase(kith: &Kith, actor: &Actor, id: Uuid, reason: &str) -> Result<ErasureReport> {
    let report = erase_unpurged(kith, actor, id, reason).await?;
    privacy::purge_freed(&kith.store).await?;
    Ok(report)
}

/// [`erase`] without purging the freed space, for a run that erases many people and purges once.
async fn erase_unpurged(kith: &Kith, actor: &Actor, id: Uuid, reason: &str) -> Result<ErasureReport> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::invalid("reason", "say why the person is erased (a request, a policy)").into());
    }
    check_plugins_loaded(kith).await?;
    let registry = kith.registry();
    let tx = kith.store.begin(actor).await?;
    let plan = plan(tx.conn(), &registry, id).await?;
    check_hold(&plan)?;
    run(&tx, &registry, &plan, reason).await?;
    tx.commit().await?;
    Ok(plan.report(false))
}

/// What [`erase`] would do, without writing anything.
pub async fn erase_dry_run(kith: &Kith, id: Uuid) -> Result<ErasureReport> {
    check_plugins_loaded(kith).await?;
    let plan = plan(kith.store.conn(), &kith.registry(), id).await?;
    check_hold(&plan)?;
    Ok(plan.report(true))
}

async fn run(tx: &Tx, registry: &Registry, plan: &Plan, reason: &str) -> Result<()> {
    let mut events = Vec::new();
    // Kept records first: once unlinked they no longer hold the rows about to go.
    for touched in &plan.touched {
        let def = &touched.def;
        let mut anonymised = Vec::new();
        for (record, action) in &touched.records {
            let changes = cleared(def, action);
            if changes.is_empty() {
                continue;
            }
            let mut written = changes.clone();
            let version = record.get("version").as_int().filter(|_| def.versioned);
            if let Some(v) = version {
                written.insert("version".into(), Value::Int(v + 1));
                written.insert("updatedAt".into(), Value::DateTime(tx.now));
            }
            if !records::update(tx.conn(), def, record.id(), version, &written).await? {
                return Err(DomainError::conflict("a record changed during the erasure; run it again").into());
            }
            let fields: Vec<&String> = changes.keys().collect();
            audit::record(
                tx,
                "erase",
                &def.name,
                Some(record.id()),
                json!({"policy": action.policy(), "cleared": fields}),
            )
            .await?;
            let mut after = record.fields.clone();
            after.extend(written);
            let after = Record { fields: after };
            if !touched.dormant {
                search::index(tx, def, std::slice::from_ref(&after)).await?;
                let payload = json!({"record": after.to_json(), "erasure": action.policy()});
                events.push(NewEvent {
                    kind: format!("{}.updated", def.name),
                    object: def.name.clone(),
                    record_id: Some(record.id()),
                    payload,
                });
            }
            if matches!(action, Action::Anonymise(_)) {
                anonymised.push(record.id());
            }
        }
        if !anonymised.is_empty() {
            let personal: Vec<String> = def.personal_fields().map(|f| f.name.clone()).collect();
            privacy::scrub_audit(tx, &def.name, &anonymised, Some(&personal)).await?;
            privacy::scrub_outbox(tx, &anonymised).await?;
        }
    }
    // Then the deleted records, those found last (the children) first; the ids of all that is
    // erased (deleted or anonymised) go into the erasure event and the searches below.
    let mut erased_ids: Vec<Uuid> = plan
        .touched
        .iter()
        .flat_map(|t| t.records.iter().filter(|(_, a)| matches!(a, Action::Anonymise(_))).map(|(r, _)| r.id()))
        .collect();
    for touched in plan.touched.iter().rev() {
        let ids: Vec<Uuid> =
            touched.records.iter().filter(|(_, a)| *a == Action::Delete).map(|(r, _)| r.id()).rev().collect();
        forget(tx, &touched.def, &ids).await?;
        erased_ids.extend(ids);
    }
    let contact_ids: Vec<Uuid> = plan.contacts.iter().map(Record::id).collect();
    let contact_def = crate::service::object_def(registry, "contact")?;
    forget(tx, &contact_def, &contact_ids).await?;
    erased_ids.extend(&contact_ids);
    let mut needles = plan.needles();
    needles.extend(erased_ids.iter().map(Uuid::to_string));
    privacy::forget_idempotent_answers(tx, &needles).await?;
    privacy::scrub_import_runs(tx, &needles).await?;
    privacy::forget_mail(tx, &needles).await?;
    let report = plan.report(false);
    let detail = json!({"reason": reason, "records": report.lines});
    audit::record(tx, "erase", "contact", Some(plan.contact_id), detail).await?;
    events.push(NewEvent {
        kind: "contact.erased".into(),
        object: "contact".into(),
        record_id: Some(plan.contact_id),
        // The ids of everything deleted or anonymised, so that live subscribers drop events
        // about them still in their buffers (`service::events`); no personal value.
        payload: json!({
            "record": {"id": plan.contact_id.to_string()},
            "erasedIds": erased_ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        }),
    });
    outbox::emit(tx, events).await
}

/// Removes records `ids` of `def` with everything kept beside them: search entries, tags, the
/// values in their audit entries and outbox events.
async fn forget(tx: &Tx, def: &ObjectDef, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    for id in ids {
        records::delete_hard(tx.conn(), def, *id).await?;
    }
    privacy::forget_search(tx, ids).await?;
    privacy::forget_tags(tx, ids).await?;
    privacy::scrub_audit(tx, &def.name, ids, None).await?;
    privacy::scrub_outbox(tx, ids).await?;
    Ok(())
}

/// An object's fields, for the reader of an export.
fn schema(def: &ObjectDef) -> Json {
    let fields: Vec<Json> = def
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "type": kind_name(&f.kind),
                "description": f.description,
                "personal": f.personal,
            })
        })
        .collect();
    json!({"label": def.label, "description": def.description, "fields": fields})
}

fn kind_name(kind: &FieldKind) -> String {
    match kind {
        FieldKind::Id => "id".into(),
        FieldKind::Text => "text".into(),
        FieldKind::Email => "email".into(),
        FieldKind::Url => "url".into(),
        FieldKind::Int => "integer".into(),
        FieldKind::Decimal => "decimal".into(),
        FieldKind::Currency => "currency".into(),
        FieldKind::Bool => "boolean".into(),
        FieldKind::Date => "date".into(),
        FieldKind::DateTime => "datetime".into(),
        FieldKind::Enum(values) => format!("enum({})", values.join(", ")),
        FieldKind::Json => "json".into(),
        FieldKind::Ref(target) => format!("reference to {target}"),
    }
}

/// The export document of contact `id`: everything Kith's records hold about the person (see
/// the module docs), without what plugins add through their export queries (`plugin::privacy`
/// adds that). Read-only; the caller audits it.
pub async fn export(kith: &Kith, actor: &Actor, id: Uuid) -> Result<Json> {
    check_plugins_loaded(kith).await?;
    let registry = kith.registry();
    let db = kith.store.conn();
    let plan = plan(db, &registry, id).await?;
    let contact_def = crate::service::object_def(&registry, "contact")?;
    let ids: Vec<Uuid> = plan.contacts.iter().map(Record::id).collect();
    let tag_map = tags::for_records(db, &ids).await?;
    let contacts: Vec<Json> = plan
        .contacts
        .iter()
        .map(|c| {
            let mut json = c.to_json();
            if let Json::Object(map) = &mut json {
                map.insert("tags".into(), json!(tag_map.get(&c.id()).cloned().unwrap_or_default()));
            }
            json
        })
        .collect();
    let mut core = Map::new();
    let mut plugins: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut restricted = BTreeSet::new();
    for touched in &plan.touched {
        let record_ids: Vec<Uuid> = touched.records.iter().map(|(r, _)| r.id()).collect();
        let tag_map = if touched.def.taggable { tags::for_records(db, &record_ids).await? } else { Default::default() };
        let records: Vec<Json> = touched
            .records
            .iter()
            .map(|(r, _)| {
                let mut json = r.to_json();
                if let Json::Object(map) = &mut json {
                    // Fields the exporting user may not read stay out, named, so that someone
                    // who may (an ADMIN) runs the export instead.
                    for field in touched.def.fields.iter().filter(|f| !f.readable_by(actor.role)) {
                        if map.get(&field.name).is_some_and(|v| !v.is_null()) {
                            restricted.insert(format!("{}.{}", touched.def.type_name, field.name));
                        }
                    }
                    touched.def.redact(actor.role, map);
                    if let Some(t) = tag_map.get(&r.id()) {
                        map.insert("tags".into(), json!(t));
                    }
                }
                json
            })
            .collect();
        let mut entry = json!({"schema": schema(&touched.def), "records": records});
        if touched.dormant
            && let Json::Object(map) = &mut entry
        {
            map.insert("pluginDisabled".into(), json!(true));
        }
        match &touched.def.plugin {
            Some(plugin) => {
                plugins.entry(plugin.clone()).or_default().insert(touched.def.name.clone(), entry);
            }
            None => {
                core.insert(touched.def.name.clone(), entry);
            }
        }
    }
    let mut audit_entries = Vec::new();
    for contact in &ids {
        for entry in audit::list(db, "contact", Some(*contact), 10_000).await? {
            audit_entries.push(json!({
                "occurredAt": entry.occurred_at.to_json(),
                "actor": entry.actor_name,
                "action": entry.action,
                "recordId": entry.record_id.map(|r| r.to_string()),
                "changes": entry.changes,
            }));
        }
    }
    Ok(json!({
        "format": "kith.personal-data.v1",
        "generatedAt": Value::DateTime(chrono::Utc::now()).to_json(),
        "generatedBy": actor.label(),
        "contactId": id.to_string(),
        "contacts": contacts,
        "contactSchema": schema(&contact_def),
        "segments": segments_of(kith, &contact_def, &ids).await?,
        "records": Json::Object(core),
        "plugins": plugins.into_iter().map(|(k, v)| (k, Json::Object(v))).collect::<Map<String, Json>>(),
        "audit": audit_entries,
        "restrictedFields": restricted.into_iter().collect::<Vec<_>>(),
    }))
}

/// The contact segments that select any of `ids` today.
async fn segments_of(kith: &Kith, contact: &ObjectDef, ids: &[Uuid]) -> Result<Vec<Json>> {
    let registry = kith.registry();
    let segment = crate::service::object_def(&registry, "segment")?;
    let db = kith.store.conn();
    let all = read_all(
        db,
        &segment,
        Filter::Cond(Condition {
            target: Target::Field("object".into()),
            kind: FieldKind::Text,
            op: Op::Eq(Value::Text("CONTACT".into())),
        }),
    )
    .await?;
    let custom = crate::store::custom_fields::for_object(db, "contact").await?;
    let mut out = Vec::new();
    for seg in all.into_iter().filter(|s| s.get("deletedAt").is_null()) {
        let Value::Json(filter) = seg.get("filter") else { continue };
        let Ok(filter) = Filter::from_json(contact, &custom, filter) else { continue };
        let mine = Filter::And(vec![
            filter,
            Filter::Cond(Condition {
                target: Target::Field("id".into()),
                kind: FieldKind::Id,
                op: Op::In(ids.iter().map(|id| Value::Uuid(*id)).collect()),
            }),
        ]);
        if records::count(db, contact, &mine, false).await? > 0 {
            out.push(json!({"id": seg.id().to_string(), "name": seg.get("name").to_json()}));
        }
    }
    Ok(out)
}

/// Records that `actor` exported the personal data of contact `id`.
pub async fn audit_export(kith: &Kith, actor: &Actor, id: Uuid) -> Result<()> {
    kith.store
        .write(
            actor,
            Box::new(move |tx| {
                Box::pin(async move {
                    audit::record(tx, "export", "contact", Some(id), json!({"personalData": true})).await
                })
            }),
        )
        .await
}

/// A consent given or withdrawn, as a caller states it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentInput {
    /// EMAIL, PHONE, SMS, POST or ALL.
    pub channel: String,
    /// GRANTED or WITHDRAWN.
    pub status: String,
    /// How (form, import, call, ...).
    pub source: Option<String>,
    /// The wording or version of the statement.
    pub statement: Option<String>,
    /// When; now when not given.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Appends a consent record for contact `contact_id`.
pub(crate) async fn append_consent(
    tx: &Tx,
    registry: &Registry,
    contact_id: Uuid,
    consent: &ConsentInput,
) -> Result<Record> {
    let def = crate::service::object_def(registry, "consent")?;
    let check = |field: &str, value: &str| -> Result<()> {
        match &def.field_def(field).map(|f| &f.kind) {
            Some(FieldKind::Enum(values)) if values.iter().any(|v| v == value) => Ok(()),
            Some(FieldKind::Enum(values)) => {
                Err(DomainError::invalid(field, format!("`{value}` is not one of {}", values.join(", "))).into())
            }
            _ => Ok(()),
        }
    };
    check("channel", &consent.channel)?;
    check("status", &consent.status)?;
    let text = |t: &Option<String>| {
        t.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(|t| Value::Text(t.to_owned())).unwrap_or(Value::Null)
    };
    let mut fields = Fields::new();
    fields.insert("id".into(), Value::Uuid(Uuid::now_v7()));
    fields.insert("contactId".into(), Value::Uuid(contact_id));
    fields.insert("channel".into(), Value::Text(consent.channel.clone()));
    fields.insert("status".into(), Value::Text(consent.status.clone()));
    fields.insert("occurredAt".into(), Value::DateTime(consent.occurred_at.unwrap_or(tx.now)));
    fields.insert("source".into(), text(&consent.source));
    fields.insert("statement".into(), text(&consent.statement));
    fields.insert("recordedBy".into(), Value::Text(tx.actor.label()));
    fields.insert("createdAt".into(), Value::DateTime(tx.now));
    records::insert(tx.conn(), &def, std::slice::from_ref(&fields)).await?;
    let record = Record { fields };
    audit::record_created(tx, &def.name, record.id(), &record.fields, None).await?;
    outbox::emit(tx, vec![crate::service::records::event(&def, "created", &record, Json::Null)]).await?;
    Ok(record)
}

/// Appends the consent records a contact write makes: opting in or out of e-mail, do-not-contact
/// set or lifted; `explicit` (what `recordConsent` stated) replaces the change on its channel
/// and is recorded even when no field changed (a consent confirmed again, a new statement).
pub(crate) async fn record_consent_changes(
    tx: &Tx,
    registry: &Registry,
    before: Option<&Fields>,
    after: &Record,
    explicit: Option<ConsentInput>,
) -> Result<()> {
    let mut changes = consent_changes(before, &after.fields);
    if let Some(explicit) = explicit {
        changes.retain(|c| c.channel != explicit.channel);
        changes.push(explicit);
    }
    for change in &changes {
        append_consent(tx, registry, after.id(), change).await?;
    }
    Ok(())
}

/// The consent changes between two states of a contact.
fn consent_changes(before: Option<&Fields>, after: &Fields) -> Vec<ConsentInput> {
    let flag = |fields: Option<&Fields>, name: &str| fields.and_then(|f| f.get(name)).and_then(Value::as_bool);
    let source = after.get("emailOptInSource").and_then(|v| v.as_text().map(str::to_owned));
    let mut out = Vec::new();
    for (field, channel, granted_when) in [("emailOptIn", "EMAIL", true), ("doNotContact", "ALL", false)] {
        let was = flag(before, field).unwrap_or(false);
        let is = flag(Some(after), field).unwrap_or(false);
        if was == is {
            continue;
        }
        let status = if is == granted_when { "GRANTED" } else { "WITHDRAWN" };
        out.push(ConsentInput {
            channel: channel.into(),
            status: status.into(),
            source: if channel == "EMAIL" { source.clone() } else { None },
            statement: None,
            occurred_at: None,
        });
    }
    out
}

/// Records a consent written as a `consent` record (by a plugin with `consents:write`): as
/// [`record_consent`], so the contact's own fields follow and the history stays true to them.
pub(crate) async fn create_consent(tx: &Tx, registry: &Registry, fields: &Fields) -> Result<Record> {
    let text = |name: &str| fields.get(name).and_then(Value::as_text).map(str::to_owned);
    let contact_id = fields
        .get("contactId")
        .and_then(Value::as_uuid)
        .ok_or_else(|| DomainError::invalid("contactId", "is required"))?;
    let consent = ConsentInput {
        channel: text("channel").ok_or_else(|| DomainError::invalid("channel", "is required"))?,
        status: text("status").ok_or_else(|| DomainError::invalid("status", "is required"))?,
        source: text("source"),
        statement: text("statement"),
        occurred_at: fields.get("occurredAt").and_then(Value::as_datetime),
    };
    record_consent(tx, registry, contact_id, consent).await
}

/// Records a consent given or withdrawn: the contact's own fields follow (e-mail opt-in and its
/// time and source, do-not-contact), and the history gains the record with its statement.
pub async fn record_consent(tx: &Tx, registry: &Registry, contact_id: Uuid, consent: ConsentInput) -> Result<Record> {
    let contact_def = crate::service::object_def(registry, "contact")?;
    let contact = records::get_live(tx.conn(), &contact_def, contact_id).await?;
    let granted = consent.status == "GRANTED";
    let mut changes = Fields::new();
    match consent.channel.as_str() {
        "EMAIL" => {
            changes.insert("emailOptIn".into(), Value::Bool(granted));
            if granted {
                changes.insert("emailOptInAt".into(), Value::DateTime(consent.occurred_at.unwrap_or(tx.now)));
                if let Some(source) = &consent.source {
                    changes.insert("emailOptInSource".into(), Value::Text(source.clone()));
                }
            }
        }
        "ALL" => {
            changes.insert("doNotContact".into(), Value::Bool(!granted));
        }
        _ => {}
    }
    let effects = Effects { consent: Some(consent.clone()), ..Effects::default() };
    crate::service::records::apply_update(tx, registry, &contact_def, contact, changes, None, None, effects).await?;
    let consent_def = crate::service::object_def(registry, "consent")?;
    let mut latest =
        read_all(tx.conn(), &consent_def, in_filter("contactId", "contact", &BTreeSet::from([contact_id])))
            .await?
            .into_iter()
            .filter(|c| c.get("channel").as_text() == Some(consent.channel.as_str()))
            .collect::<Vec<_>>();
    latest.sort_by_key(|c| c.id());
    latest.pop().ok_or_else(|| DomainError::conflict("the consent was not recorded").into())
}

/// The contacts retention policy `policy` selects at `now` (see `config::RetentionPolicy`), at
/// most `limit` of them, oldest first: the rest wait for the next run.
pub async fn expired(
    kith: &Kith,
    policy: &crate::config::RetentionPolicy,
    now: chrono::DateTime<chrono::Utc>,
    limit: u64,
) -> Result<Vec<Uuid>> {
    use crate::domain::filter::OrderBy;
    let registry = kith.registry();
    let db = kith.store.conn();
    let contact = crate::service::object_def(&registry, "contact")?;
    let cutoff = now - chrono::Duration::days(i64::from(policy.inactive_days));
    let cond = |field: &str, kind: FieldKind, op: Op| {
        Filter::Cond(Condition { target: Target::Field(field.into()), kind, op })
    };
    let mut parts = vec![
        cond("updatedAt", FieldKind::DateTime, Op::Lt(Value::DateTime(cutoff))),
        cond("legalHold", FieldKind::Bool, Op::Neq(Value::Bool(true))),
    ];
    if let Some(text) = &policy.filter {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| DomainError::invalid("filter", format!("retention policy `{}`: {e}", policy.name)))?;
        let custom = crate::store::custom_fields::for_object(db, "contact").await?;
        parts.push(Filter::from_json(&contact, &custom, &json)?);
    }
    let query = ListQuery {
        filter: Filter::And(parts),
        order: vec![OrderBy { target: Target::Field("updatedAt".into()), desc: false, nulls_first: false }],
        page: PageRequest::Forward { first: limit, after: None },
        include_deleted: true,
    };
    let candidates = records::list(db, &contact, &query).await?.records;
    let objects = all_objects(&registry);
    let mut out = Vec::new();
    'contacts: for (_, candidate) in candidates {
        let id = candidate.id();
        let ids = BTreeSet::from([id]);
        for (def, _) in &objects {
            for (field, _) in def.references().filter(|(_, t)| *t == "contact") {
                let mut recent = vec![cond("createdAt", FieldKind::DateTime, Op::Gte(Value::DateTime(cutoff)))];
                if def.field_def("updatedAt").is_some() {
                    recent.push(cond("updatedAt", FieldKind::DateTime, Op::Gte(Value::DateTime(cutoff))));
                }
                let mut open = Filter::Or(recent);
                // Whatever its age, an open deal or ticket keeps the person.
                if def.name == "deal" {
                    open = Filter::Or(vec![open, cond("closedAt", FieldKind::DateTime, Op::IsNull(true))]);
                } else if def.name == "ticket" {
                    let closed = ["SOLVED", "CLOSED"].map(|s| Value::Text(s.into())).to_vec();
                    open = Filter::Or(vec![open, cond("status", FieldKind::Text, Op::NotIn(closed))]);
                }
                let filter = Filter::And(vec![in_filter(&field.name, "contact", &ids), open]);
                if records::count(db, def, &filter, false).await? > 0 {
                    continue 'contacts;
                }
            }
        }
        out.push(id);
    }
    Ok(out)
}

/// What a retention run did for one person.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionOutcome {
    /// The policy that selected them.
    pub policy: String,
    /// The contact.
    pub contact_id: Uuid,
    /// Erased (false in a dry run, or when the erasure failed: see `error`).
    pub erased: bool,
    /// Why the erasure failed.
    pub error: Option<String>,
}

/// Runs `policies` now: each selected person is erased (one transaction and audit entry each),
/// or only listed when `dry_run` (or the policy's own `dry_run`) says so.
pub async fn run_retention(
    kith: &Kith,
    policies: &[crate::config::RetentionPolicy],
    dry_run: bool,
) -> Result<Vec<RetentionOutcome>> {
    let actor = Actor::system("retention");
    let mut out = Vec::new();
    for policy in policies {
        let ids = expired(kith, policy, chrono::Utc::now(), 1_000).await?;
        for contact_id in ids {
            let mut outcome = RetentionOutcome { policy: policy.name.clone(), contact_id, erased: false, error: None };
            if !(dry_run || policy.dry_run) {
                let reason =
                    format!("retention policy `{}`: nothing new for {} days", policy.name, policy.inactive_days);
                match erase_unpurged(kith, &actor, contact_id, &reason).await {
                    Ok(_) => outcome.erased = true,
                    Err(err) => outcome.error = Some(err.to_string()),
                }
            }
            out.push(outcome);
        }
    }
    if out.iter().any(|o| o.erased) {
        privacy::purge_freed(&kith.store).await?;
    }
    Ok(out)
}

/// Runs the retention policies once a day, in whichever of the processes sharing the database
/// claims the day first (`store::counter::claim`); checked hourly, for as long as the runtime.
pub fn spawn_retention(kith: Kith, policies: Vec<crate::config::RetentionPolicy>) {
    if policies.is_empty() {
        return;
    }
    tokio::spawn(async move {
        loop {
            let day = chrono::Utc::now().date_naive().num_days_from_ce();
            match crate::store::counter::claim(kith.store.conn(), "privacy_retention_day", i64::from(day)).await {
                Ok(true) => match run_retention(&kith, &policies, false).await {
                    Ok(outcomes) => {
                        for o in &outcomes {
                            tracing::info!(policy = %o.policy, contact = %o.contact_id, erased = o.erased, error = ?o.error, "retention");
                        }
                        tracing::info!(people = outcomes.len(), "retention policies ran");
                    }
                    Err(err) => tracing::error!(error = %err, "retention policies failed; retried tomorrow"),
                },
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "cannot claim today's retention run"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        }
    });
}
