//! A record's timeline: its activities, deal stage changes and ticket events in time order.

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::filter::{Condition, Filter, Op, OrderBy, Target};
use crate::domain::object::ObjectDef;
use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::service::Kith;
use crate::store::history;
use crate::store::records::{ListQuery, PageRequest, get_live, list};

/// Most entries a timeline returns.
pub const MAX_ITEMS: u64 = 500;

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineItem {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// `activity`, `deal_stage` or `ticket_event`.
    pub kind: String,
    /// The object of the record it is about (`activity`, `deal`, `ticket`).
    pub object: String,
    /// That record.
    pub record_id: Uuid,
    /// A one-line summary.
    pub summary: String,
    /// Details.
    pub detail: Json,
}

fn refers_to(field: &str, target: &str, id: Uuid) -> Filter {
    Filter::Cond(Condition {
        target: Target::Field(field.into()),
        kind: FieldKind::Ref(target.into()),
        op: Op::Eq(Value::Uuid(id)),
    })
}

/// The field of `def` that refers to `target`, if one does.
fn link_to<'d>(def: &'d ObjectDef, target: &str) -> Option<&'d str> {
    def.references().find(|(_, t)| *t == target).map(|(field, _)| field.name.as_str())
}

/// The timeline of a record of an object with one (`ObjectDef::timeline`), newest first.
pub async fn timeline(kith: &Kith, object: &str, id: Uuid, limit: u64) -> Result<Vec<TimelineItem>> {
    let limit = limit.clamp(1, MAX_ITEMS);
    let registry = kith.registry();
    let def = kith.object(object)?;
    let activity = kith.object("activity")?;
    let link = link_to(&activity, object).filter(|_| def.timeline).ok_or_else(|| {
        let owners: Vec<&str> = registry.objects().filter(|d| d.timeline).map(|d| d.plural.as_str()).collect();
        DomainError::invalid("object", format!("timelines exist for {}", owners.join(", ")))
    })?;
    get_live(kith.store.conn(), &def, id).await?;
    let db = kith.store.conn();
    let mut items = Vec::new();

    let query = ListQuery {
        filter: refers_to(link, object, id),
        order: vec![OrderBy { target: Target::Field("occurredAt".into()), desc: true, nulls_first: false }],
        page: PageRequest::Forward { first: limit, after: None },
        include_deleted: false,
    };
    for (_, record) in list(db, &activity, &query).await?.records {
        items.push(TimelineItem {
            at: record.get("occurredAt").as_datetime().unwrap_or_default(),
            kind: "activity".into(),
            object: "activity".into(),
            record_id: record.id(),
            summary: format!("{}: {}", record.get("kind"), record.get("subject")),
            detail: record.to_json(),
        });
    }

    // The stage changes and ticket events of the record itself, or of the deals and tickets
    // that refer to it.
    for (target, kind) in [("deal", "deal_stage"), ("ticket", "ticket_event")] {
        let target_def = kith.object(target)?;
        let ids: Vec<Uuid> = if object == target {
            vec![id]
        } else if let Some(field) = link_to(&target_def, object) {
            let query = ListQuery {
                filter: refers_to(field, object, id),
                order: Vec::new(),
                page: PageRequest::Forward { first: 200, after: None },
                include_deleted: false,
            };
            list(db, &target_def, &query).await?.records.into_iter().map(|(_, r)| r.id()).collect()
        } else {
            Vec::new()
        };
        if ids.is_empty() {
            continue;
        }
        let rows = if target == "deal" {
            history::deal_stages(db, &ids).await?
        } else {
            history::ticket_events(db, &ids).await?
        };
        for row in rows {
            let summary = match (target, row.kind.as_str()) {
                ("deal", _) => "deal moved to a new stage".to_owned(),
                (_, "created") => "ticket created".to_owned(),
                (_, other) => format!("ticket {}", other.replace('_', " ")),
            };
            items.push(TimelineItem {
                at: row.at.as_datetime().unwrap_or_default(),
                kind: kind.into(),
                object: target.into(),
                record_id: row.record_id,
                summary,
                detail: json!({"event": row.kind, "from": row.from, "to": row.to, "actor": row.actor}),
            });
        }
    }
    items.sort_by_key(|item| std::cmp::Reverse(item.at));
    items.truncate(limit as usize);
    Ok(items)
}
