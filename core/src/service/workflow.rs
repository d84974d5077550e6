//! Workflow operations: moving and closing deals, the ticket lifecycle, tasks and merging
//! contacts. Each is one transaction with its audit entries and events.

use serde_json::json;
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::filter::{Condition, Filter, Op, OrderBy, Target};
use crate::domain::object::Registry;
use crate::domain::ticket;
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::Result;
use crate::service::input::Input;
use crate::service::records::{self, Effects, apply_update, check_version};
use crate::service::{object_def, references};
use crate::store::records::{ListQuery, PageRequest, Record, get_live, list};
use crate::store::{Tx, audit, outbox, tags};

fn eq(field: &str, kind: FieldKind, value: Value) -> Filter {
    Filter::Cond(Condition { target: Target::Field(field.into()), kind, op: Op::Eq(value) })
}

fn one(name: &str, value: Value) -> Fields {
    let mut fields = Fields::new();
    fields.insert(name.to_owned(), value);
    fields
}

/// Moves a deal to another stage of its pipeline.
pub async fn move_deal(
    tx: &Tx,
    registry: &Registry,
    deal_id: Uuid,
    stage_id: Uuid,
    expected_version: Option<i64>,
) -> Result<Record> {
    let input = Input { fields: one("stageId", Value::Uuid(stage_id)), ..Input::default() };
    records::update(tx, registry, "deal", deal_id, input, expected_version).await
}

/// Closes a deal as won or lost: it moves to its pipeline's first WON (or LOST) stage.
pub async fn close_deal(
    tx: &Tx,
    registry: &Registry,
    deal_id: Uuid,
    won: bool,
    reason: Option<String>,
    expected_version: Option<i64>,
) -> Result<Record> {
    let deal_def = object_def(registry, "deal")?;
    let deal = get_live(tx.conn(), &deal_def, deal_id).await?;
    check_version(&deal, expected_version)?;
    let pipeline_id = deal.get("pipelineId").as_uuid().unwrap_or_default();
    let kind = if won { "WON" } else { "LOST" };
    let stage_def = object_def(registry, "stage")?;
    let filter = Filter::And(vec![
        eq("pipelineId", FieldKind::Ref("pipeline".into()), Value::Uuid(pipeline_id)),
        eq("kind", FieldKind::Text, Value::Text(kind.into())),
    ]);
    let query = ListQuery {
        filter,
        order: vec![OrderBy::asc("position")],
        page: PageRequest::Forward { first: 1, after: None },
        include_deleted: false,
    };
    let (_, stage) = list(tx.conn(), &stage_def, &query)
        .await?
        .records
        .into_iter()
        .next()
        .ok_or_else(|| DomainError::conflict(format!("the deal's pipeline has no {kind} stage")))?;
    let mut fields = one("stageId", Value::Uuid(stage.id()));
    if !won {
        fields.insert("lostReason".into(), reason.map(Value::Text).unwrap_or(Value::Null));
    } else if reason.is_some() {
        return Err(DomainError::invalid("reason", "only a lost deal has a reason").into());
    }
    apply_update(tx, registry, &deal_def, deal, fields, None, None, Effects::default()).await
}

/// Changes a ticket's status along the allowed transitions.
pub async fn change_status(
    tx: &Tx,
    registry: &Registry,
    ticket_id: Uuid,
    status: &str,
    expected_version: Option<i64>,
) -> Result<Record> {
    let def = object_def(registry, "ticket")?;
    let ticket = get_live(tx.conn(), &def, ticket_id).await?;
    check_version(&ticket, expected_version)?;
    let status = status.to_ascii_uppercase();
    let from = ticket.get("status").as_text().unwrap_or("NEW").to_owned();
    ticket::check_transition(&from, &status)?;
    let mut changes = one("status", Value::Text(status.clone()));
    if status == "SOLVED" {
        changes.insert("solvedAt".into(), Value::DateTime(tx.now));
    }
    let effects = Effects {
        events: vec![("status_changed".into(), json!({"from": from, "to": status}))],
        ticket_events: vec![("status_changed".into(), Some(from), Some(status))],
        ..Effects::default()
    };
    apply_update(tx, registry, &def, ticket, changes, None, None, effects).await
}

/// Assigns a ticket to a user (or unassigns it with `None`).
pub async fn assign(
    tx: &Tx,
    registry: &Registry,
    ticket_id: Uuid,
    assignee: Option<Uuid>,
    expected_version: Option<i64>,
) -> Result<Record> {
    let def = object_def(registry, "ticket")?;
    let ticket = get_live(tx.conn(), &def, ticket_id).await?;
    check_version(&ticket, expected_version)?;
    let from = ticket.get("assigneeId").as_uuid();
    if from == assignee {
        return Ok(ticket);
    }
    let effects = Effects {
        events: vec![(
            "assigned".into(),
            json!({"from": from.map(|u| u.to_string()), "to": assignee.map(|u| u.to_string())}),
        )],
        ticket_events: vec![("assigned".into(), from.map(|u| u.to_string()), assignee.map(|u| u.to_string()))],
        ..Effects::default()
    };
    let changes = one("assigneeId", assignee.map(Value::Uuid).unwrap_or(Value::Null));
    apply_update(tx, registry, &def, ticket, changes, None, None, effects).await
}

/// Adds a comment to a ticket. The first public comment by a person records the first
/// response time.
pub async fn add_comment(tx: &Tx, registry: &Registry, ticket_id: Uuid, body: &str, public: bool) -> Result<Record> {
    let def = object_def(registry, "ticket")?;
    let ticket = get_live(tx.conn(), &def, ticket_id).await?;
    let input = Input::fields([
        ("ticketId", Value::Uuid(ticket_id)),
        ("body", Value::Text(body.to_owned())),
        ("public", Value::Bool(public)),
    ]);
    let comment = records::create(tx, registry, "ticketComment", input).await?;
    let mut changes = Fields::new();
    if public && ticket.get("firstRespondedAt").is_null() {
        changes.insert("firstRespondedAt".into(), Value::DateTime(tx.now));
    }
    let effects = Effects {
        events: vec![("commented".into(), json!({"commentId": comment.id().to_string(), "public": public}))],
        ticket_events: vec![("commented".into(), None, Some(if public { "public" } else { "internal" }.into()))],
        ..Effects::default()
    };
    apply_update(tx, registry, &def, ticket, changes, None, None, effects).await?;
    Ok(comment)
}

/// Records the customer's satisfaction with a solved or closed ticket.
pub async fn rate(
    tx: &Tx,
    registry: &Registry,
    ticket_id: Uuid,
    rating: i64,
    comment: Option<String>,
) -> Result<Record> {
    ticket::check_rating(rating)?;
    let def = object_def(registry, "ticket")?;
    let ticket = get_live(tx.conn(), &def, ticket_id).await?;
    let status = ticket.get("status").as_text().unwrap_or("NEW").to_owned();
    if !ticket::can_rate(&status) {
        return Err(
            DomainError::conflict(format!("a {status} ticket cannot be rated yet (only SOLVED or CLOSED)")).into()
        );
    }
    let mut changes = one("satisfactionRating", Value::Int(rating));
    changes.insert("satisfactionComment".into(), comment.map(Value::Text).unwrap_or(Value::Null));
    let effects = Effects {
        events: vec![("rated".into(), json!({"rating": rating}))],
        ticket_events: vec![("rated".into(), None, Some(rating.to_string()))],
        ..Effects::default()
    };
    apply_update(tx, registry, &def, ticket, changes, None, None, effects).await
}

/// Marks a task done.
pub async fn complete_task(tx: &Tx, registry: &Registry, activity_id: Uuid) -> Result<Record> {
    let def = object_def(registry, "activity")?;
    let activity = get_live(tx.conn(), &def, activity_id).await?;
    if activity.get("kind").as_text() != Some("TASK") {
        return Err(DomainError::invalid("id", "only a TASK can be completed").into());
    }
    if !activity.get("completedAt").is_null() {
        return Err(DomainError::conflict("the task is already completed").into());
    }
    let effects = Effects { events: vec![("completed".into(), json!({}))], ..Effects::default() };
    apply_update(tx, registry, &def, activity, one("completedAt", Value::DateTime(tx.now)), None, None, effects).await
}

/// Merges contact `merge_id` into `keep_id`: the kept contact gains the other's values where
/// it has none, its tags and every record that references it (deals, tickets, activities,
/// plugin records, those of disabled plugins too: `service::references`); the merged contact
/// is soft-deleted. The audit entry and event of the merge say how many records of each
/// object moved (`moved`).
pub async fn merge_contacts(tx: &Tx, registry: &Registry, keep_id: Uuid, merge_id: Uuid) -> Result<Record> {
    if keep_id == merge_id {
        return Err(DomainError::invalid("mergeId", "cannot merge a contact into itself").into());
    }
    let contact_def = object_def(registry, "contact")?;
    let keep = get_live(tx.conn(), &contact_def, keep_id).await?;
    let merge = get_live(tx.conn(), &contact_def, merge_id).await?;
    // Every reference to the merged contact, in core objects and plugin objects (the disabled
    // plugins' too), moves to the kept one.
    let moved = references::repoint(tx, registry, &contact_def, merge_id, keep_id).await?;
    tags::move_all(tx, "contact", merge_id, keep_id).await?;
    // Fill the kept contact's blanks; the e-mail moves only after the merged contact is gone.
    let mut fill = Fields::new();
    for field in &contact_def.fields {
        let name = field.name.as_str();
        if matches!(field.access, crate::domain::object::Access::ReadOnly) || name == "customFields" || name == "email"
        {
            continue;
        }
        if keep.get(name).is_null() && !merge.get(name).is_null() {
            fill.insert(name.to_owned(), merge.get(name).clone());
        }
    }
    let merged_custom = match (keep.get("customFields"), merge.get("customFields")) {
        (Value::Json(serde_json::Value::Object(k)), Value::Json(serde_json::Value::Object(m))) => {
            let mut out = m.clone();
            out.extend(k.clone());
            Some(serde_json::Value::Object(out))
        }
        _ => None,
    };
    let merge_email = merge.get("email").clone();
    records::delete(tx, registry, "contact", merge_id).await?;
    if keep.get("email").is_null() && !merge_email.is_null() {
        fill.insert("email".into(), merge_email);
    }
    let kept = apply_update(tx, registry, &contact_def, keep, fill, merged_custom, None, Effects::default()).await?;
    let detail = json!({"keptId": keep_id.to_string(), "mergedId": merge_id.to_string(), "moved": moved});
    audit::record(tx, "merge", "contact", Some(keep_id), detail.clone()).await?;
    outbox::emit(tx, vec![records::event(&contact_def, "merged", &kept, detail)]).await?;
    Ok(kept)
}

/// A likely duplicate of a contact, with why it is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    /// The other contact.
    pub contact: Record,
    /// Higher is likelier (the sum of the reasons' weights).
    pub score: i64,
    /// `same phone`, `same name`, `same last name and company`.
    pub reasons: Vec<String>,
}

/// Live contacts that look like the same person as `id`, likeliest first.
pub async fn contact_duplicates(kith: &crate::service::Kith, id: Uuid, limit: usize) -> Result<Vec<Duplicate>> {
    use std::collections::HashMap;
    let def = kith.object("contact")?;
    let conn = kith.store.conn();
    let contact = get_live(conn, &def, id).await?;
    let text = |name: &str| contact.get(name).as_text().map(str::to_owned);
    let ilike_exact = |field: &str, value: &str| {
        Filter::Cond(Condition {
            target: Target::Field(field.into()),
            kind: FieldKind::Text,
            op: Op::Ilike(crate::store::query::escape_like(value)),
        })
    };
    let mut rules: Vec<(&str, i64, Filter)> = Vec::new();
    if let Some(phone) = text("phone") {
        rules.push(("same phone", 60, eq("phone", FieldKind::Text, Value::Text(phone))));
    }
    if let (Some(first), Some(last)) = (text("firstName"), text("lastName")) {
        rules.push((
            "same name",
            50,
            Filter::And(vec![ilike_exact("firstName", &first), ilike_exact("lastName", &last)]),
        ));
    }
    if let (Some(last), Some(company)) = (text("lastName"), contact.get("companyId").as_uuid()) {
        rules.push((
            "same last name and company",
            30,
            Filter::And(vec![
                ilike_exact("lastName", &last),
                eq("companyId", FieldKind::Ref("company".into()), Value::Uuid(company)),
            ]),
        ));
    }
    let mut found: HashMap<Uuid, Duplicate> = HashMap::new();
    for (reason, weight, filter) in rules {
        let query = ListQuery {
            filter,
            order: Vec::new(),
            page: PageRequest::Forward { first: 50, after: None },
            include_deleted: false,
        };
        for (_, other) in list(conn, &def, &query).await?.records {
            if other.id() == id {
                continue;
            }
            let entry =
                found.entry(other.id()).or_insert_with(|| Duplicate { contact: other, score: 0, reasons: Vec::new() });
            entry.score += weight;
            entry.reasons.push(reason.to_owned());
        }
    }
    let mut out: Vec<Duplicate> = found.into_values().collect();
    out.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.contact.id().cmp(&b.contact.id())));
    out.truncate(limit);
    Ok(out)
}
