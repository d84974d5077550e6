//! Read-only views across records: the audit log, full-text search, the pipeline and ticket
//! reports, contact growth and duplicate contacts.

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};
use async_graphql::{Name, Value as GqlValue};

use crate::api::args::{arg_id, arg_opt_i64, arg_opt_id, arg_opt_string, kith};
use crate::api::auth::{Access, authorize, caller_role};
use crate::api::error::{bad_input, to_gql};
use crate::api::schema::obj;
use crate::domain::naming::{self};
use crate::domain::object::{ObjectDef, Registry};
use crate::service::workflow;

/// Read-only views: the audit log, search, the reports and duplicate contacts.
pub(crate) fn fields(registry: &Registry, mut query: Object) -> Object {
    let searchable: Vec<&Arc<ObjectDef>> = registry.in_order().filter(|def| !def.search_fields.is_empty()).collect();
    query = query.field(
        Field::new("auditLog", TypeRef::named_nn_list_nn("AuditEntry"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Manage)?;
                let instant = |name: &str| -> async_graphql::Result<Option<chrono::DateTime<chrono::Utc>>> {
                    match arg_opt_string(&ctx, name)? {
                        Some(text) => crate::domain::value::parse_datetime(&text)
                            .map(Some)
                            .ok_or_else(|| bad_input(name, "must be an RFC 3339 instant")),
                        None => Ok(None),
                    }
                };
                let after = match arg_opt_string(&ctx, "after")? {
                    Some(text) => Some(
                        crate::store::audit::AuditCursor::decode(&text)
                            .ok_or_else(|| bad_input("after", "is not a cursor of the audit log"))?,
                    ),
                    None => None,
                };
                let filter = crate::store::audit::AuditQuery {
                    object: ctx.args.try_get("object")?.string()?.to_owned(),
                    record_id: arg_opt_id(&ctx, "id")?,
                    actor: arg_opt_string(&ctx, "actor")?.filter(|a| !a.is_empty()),
                    action: arg_opt_string(&ctx, "action")?.filter(|a| !a.is_empty()),
                    from: instant("from")?,
                    to: instant("to")?,
                    after,
                };
                let (default, most) = crate::api::cost::AUDIT_LOG_FIRST;
                let limit = arg_opt_i64(&ctx, "first")?.unwrap_or(default).clamp(1, most) as u64;
                let entries =
                    crate::store::audit::search(kith(&ctx)?.store.conn(), &filter, limit).await.map_err(to_gql)?;
                // Values of fields the caller may not read stay out of what changed.
                let (registry, role) = (kith(&ctx)?.registry(), caller_role(&ctx));
                let values = entries.into_iter().map(|(mut e, cursor)| {
                    if let (Some(def), serde_json::Value::Object(changes)) = (registry.get(&e.object), &mut e.changes) {
                        def.redact(role, changes);
                    }
                    FieldValue::value(obj(vec![
                        ("occurredAt", GqlValue::String(e.occurred_at.to_string())),
                        ("actorKind", GqlValue::String(e.actor_kind)),
                        ("actorId", e.actor_id.map(GqlValue::String).unwrap_or(GqlValue::Null)),
                        ("actorName", GqlValue::String(e.actor_name)),
                        ("action", GqlValue::String(e.action)),
                        ("object", GqlValue::String(e.object)),
                        ("recordId", e.record_id.map(|id| GqlValue::String(id.to_string())).unwrap_or(GqlValue::Null)),
                        ("changes", GqlValue::from_json(e.changes).unwrap_or(GqlValue::Null)),
                        ("cursor", GqlValue::String(cursor.encode())),
                    ]))
                });
                Ok(Some(FieldValue::list(values.collect::<Vec<_>>())))
            })
        })
        .description(
            "Who changed what on one object, newest first (MANAGER): optionally one record, one actor (its \
             name or id as recorded), one action, the instants in [from, to), and the entries after a \
             cursor (an entry's `cursor`).",
        )
        .argument(InputValue::new("object", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("id", TypeRef::named(TypeRef::ID)))
        .argument(InputValue::new("actor", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("action", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("from", TypeRef::named("DateTime")))
        .argument(InputValue::new("to", TypeRef::named("DateTime")))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT))),
    );
    query = query.field(
        Field::new("search", TypeRef::named_nn_list_nn("SearchHit"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Read)?;
                let text = ctx.args.try_get("query")?.string()?.to_owned();
                if text.chars().count() > 200 {
                    return Err(bad_input("query", "at most 200 characters"));
                }
                let (default, most) = crate::api::cost::SEARCH_FIRST;
                let limit = arg_opt_i64(&ctx, "first")?.unwrap_or(default).clamp(1, most) as u64;
                let registry = kith(&ctx)?.registry();
                let object_of = |value: &str| {
                    naming::object_of_value(&registry, value)
                        .map(|def| def.name.clone())
                        .ok_or_else(|| bad_input("types", format!("`{value}` is not searchable")))
                };
                let types: Vec<String> = match ctx.args.get("types").filter(|v| !v.is_null()) {
                    Some(list) => list.list()?.iter().map(|v| object_of(v.enum_name()?)).collect::<Result<_, _>>()?,
                    None => Vec::new(),
                };
                let hits = crate::store::search::search(kith(&ctx)?.store.conn(), &text, &types, limit)
                    .await
                    .map_err(to_gql)?;
                let values = hits.into_iter().map(|h| {
                    let object = registry
                        .get(&h.object)
                        .map_or_else(|| h.object.to_ascii_uppercase(), |def| naming::enum_value(def));
                    FieldValue::value(obj(vec![
                        ("object", GqlValue::Enum(Name::new(object))),
                        ("recordId", GqlValue::String(h.record_id.to_string())),
                        ("title", GqlValue::String(h.title)),
                        ("score", GqlValue::from_json(serde_json::json!(h.score)).unwrap_or(GqlValue::Null)),
                    ]))
                });
                Ok(Some(FieldValue::list(values.collect::<Vec<_>>())))
            })
        })
        .description(format!(
            "Ranked full-text search over {}; every word must match (prefixes count).",
            naming::words(&searchable.iter().map(|d| d.plural.as_str()).collect::<Vec<_>>())
        ))
        .argument(InputValue::new("query", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("types", TypeRef::named_nn_list("SearchType")))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT))),
    );
    query = query.field(
        Field::new("pipelineReport", TypeRef::named_nn("PipelineReport"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Manage)?;
                let id = arg_id(&ctx, "pipelineId")?;
                let report = crate::service::reports::pipeline_report(kith(&ctx)?, id).await.map_err(to_gql)?;
                let money = |amounts: &std::collections::BTreeMap<String, rust_decimal::Decimal>| {
                    GqlValue::List(
                        amounts
                            .iter()
                            .map(|(c, a)| obj(vec![("currency", GqlValue::String(c.clone())), ("amount", GqlValue::String(a.to_string()))]))
                            .collect(),
                    )
                };
                let float = |f: Option<f64>| f.map(|f| GqlValue::from_json(serde_json::json!(f)).unwrap_or(GqlValue::Null)).unwrap_or(GqlValue::Null);
                let stages = report
                    .stages
                    .iter()
                    .map(|l| {
                        obj(vec![
                            ("stageId", GqlValue::String(l.stage_id.to_string())),
                            ("name", GqlValue::String(l.name.clone())),
                            ("kind", GqlValue::Enum(Name::new(&l.kind))),
                            ("probability", GqlValue::Number(l.probability.into())),
                            ("count", GqlValue::Number(l.count.into())),
                            ("amounts", money(&l.amounts)),
                        ])
                    })
                    .collect();
                Ok(Some(FieldValue::value(obj(vec![
                    ("stages", GqlValue::List(stages)),
                    ("forecast", money(&report.forecast)),
                    ("winRate", float(report.win_rate)),
                    ("averageDaysToClose", float(report.average_days_to_close)),
                ]))))
            })
        })
        .description("Deals per stage with their amounts, the probability-weighted forecast, the win rate and the mean days to close (MANAGER).")
        .argument(InputValue::new("pipelineId", TypeRef::named_nn(TypeRef::ID))),
    );
    query = query.field(
        Field::new("ticketReport", TypeRef::named_nn("TicketReport"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Manage)?;
                let at = |name: &'static str| -> async_graphql::Result<chrono::DateTime<chrono::Utc>> {
                    let text = ctx.args.try_get(name)?.string()?;
                    crate::domain::value::parse_datetime(text).ok_or_else(|| bad_input(name, "expected an RFC 3339 date-time"))
                };
                let report = crate::service::reports::ticket_report(kith(&ctx)?, at("from")?, at("to")?).await.map_err(to_gql)?;
                let float = |f: Option<f64>| f.map(|f| GqlValue::from_json(serde_json::json!(f)).unwrap_or(GqlValue::Null)).unwrap_or(GqlValue::Null);
                Ok(Some(FieldValue::value(obj(vec![
                    ("volume", GqlValue::Number(report.volume.into())),
                    ("firstResponseMinutesP50", float(report.first_response_minutes.0)),
                    ("firstResponseMinutesP90", float(report.first_response_minutes.1)),
                    ("resolutionMinutesP50", float(report.resolution_minutes.0)),
                    ("resolutionMinutesP90", float(report.resolution_minutes.1)),
                    ("slaBreachRate", float(report.sla_breach_rate)),
                    ("csatAverage", float(report.csat_average)),
                    ("rated", GqlValue::Number(report.rated.into())),
                ]))))
            })
        })
        .description("Tickets created in [from, to): volume, response and resolution time percentiles, SLA breach rate, CSAT (MANAGER).")
        .argument(InputValue::new("from", TypeRef::named_nn("DateTime")))
        .argument(InputValue::new("to", TypeRef::named_nn("DateTime"))),
    );
    query = query.field(
        Field::new("contactGrowth", TypeRef::named_nn_list_nn("GrowthPoint"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Manage)?;
                let date = |name: &'static str| -> async_graphql::Result<chrono::NaiveDate> {
                    let text = ctx.args.try_get(name)?.string()?;
                    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .map_err(|_| bad_input(name, "expected a date (YYYY-MM-DD)"))
                };
                let interval = ctx.args.try_get("interval")?.enum_name()?.to_owned();
                let points =
                    crate::service::reports::contact_growth(kith(&ctx)?, date("from")?, date("to")?, &interval)
                        .await
                        .map_err(to_gql)?;
                let values = points.into_iter().map(|(start, count, total)| {
                    FieldValue::value(obj(vec![
                        ("periodStart", GqlValue::String(start.format("%Y-%m-%d").to_string())),
                        ("newContacts", GqlValue::Number(count.into())),
                        ("totalContacts", GqlValue::Number(total.into())),
                    ]))
                });
                Ok(Some(FieldValue::list(values.collect::<Vec<_>>())))
            })
        })
        .description("New contacts per DAY, WEEK (from Monday) or MONTH in [from, to), with running totals (MANAGER).")
        .argument(InputValue::new("from", TypeRef::named_nn("Date")))
        .argument(InputValue::new("to", TypeRef::named_nn("Date")))
        .argument(InputValue::new("interval", TypeRef::named_nn("GrowthInterval"))),
    );
    query = query.field(
        Field::new("contactDuplicates", TypeRef::named_nn_list_nn("ContactDuplicate"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Read)?;
                let id = arg_id(&ctx, "id")?;
                let (default, most) = crate::api::cost::DUPLICATES_FIRST;
                let limit = arg_opt_i64(&ctx, "first")?.unwrap_or(default).clamp(1, most) as usize;
                let found = workflow::contact_duplicates(kith(&ctx)?, id, limit).await.map_err(to_gql)?;
                Ok(Some(FieldValue::list(found.into_iter().map(FieldValue::owned_any))))
            })
        })
        .description("Contacts that look like the same person (same phone, same name, same last name and company), likeliest first.")
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT))),
    );
    query
}
