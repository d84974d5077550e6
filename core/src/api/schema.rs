//! Builds the dynamic GraphQL schema from the object registry.
//!
//! Per object `T` (e.g. `Contact`): the output type, `TConnection` / `TEdge`, `TFilter`,
//! `TOrderBy`, `TCreateInput` / `TUpdateInput`; queries `t(id)` and `ts(filter, orderBy, first,
//! after, last, before)`; mutations `createT`, `updateT`, `deleteT`, `restoreT`; relations both
//! ways (`Contact.company`, `Company.contacts`), batched with a DataLoader.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Scalar, Schema, SchemaError, TypeRef,
};
use async_graphql::{Name, Value as GqlValue};

use crate::api::connection::Connection;
use crate::api::error::coded;
use crate::api::loader::{Prefetched, RecordLoader, TagLoader};
use crate::config::ApiConfig;
use crate::domain::code::Code;
use crate::domain::naming::{self};
use crate::domain::object::{ObjectDef, Registry};
use crate::service::{Kith, workflow};
use crate::store::records::Record;

pub(crate) fn obj(pairs: Vec<(&str, GqlValue)>) -> GqlValue {
    let mut map = async_graphql::indexmap::IndexMap::new();
    for (k, v) in pairs {
        map.insert(Name::new(k), v);
    }
    GqlValue::Object(map)
}

pub(crate) fn value_object(name: &str, fields: &[(&str, TypeRef)]) -> Object {
    let mut object = Object::new(name);
    for (field, ty) in fields {
        let key = (*field).to_owned();
        object = object.field(Field::new(*field, ty.clone(), move |ctx| {
            let key = key.clone();
            FieldFuture::new(async move {
                let value = match ctx.parent_value.try_to_value()? {
                    GqlValue::Object(map) => map.get(key.as_str()).cloned().unwrap_or(GqlValue::Null),
                    _ => GqlValue::Null,
                };
                // Null as no value (see `api::extension::register`).
                Ok((value != GqlValue::Null).then(|| FieldValue::value(value)))
            })
        }));
    }
    object
}

/// Builds the schema for `registry`.
/// `services` may be `None` to build the schema only for its SDL.
pub fn build_schema(registry: &Registry, services: Option<Kith>, limits: ApiConfig) -> Result<Schema, SchemaError> {
    let searchable: Vec<&Arc<ObjectDef>> = registry.in_order().filter(|def| !def.search_fields.is_empty()).collect();
    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"));
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    for (scalar, doc) in [
        ("Decimal", "An exact decimal number, as a string: \"1234.50\"."),
        ("Date", "A calendar date, YYYY-MM-DD."),
        ("DateTime", "An instant, RFC 3339 in UTC: 2026-11-22T10:00:00.000000Z."),
        ("JSON", "Any JSON value."),
    ] {
        builder = builder.register(Scalar::new(scalar).description(doc));
    }
    for (scalar, text, ordered) in [
        ("String", true, true),
        ("Int", false, true),
        ("Decimal", false, true),
        ("Boolean", false, false),
        ("Date", false, true),
        ("DateTime", false, true),
        ("ID", false, false),
    ] {
        builder = builder.register(crate::api::object::scalar_filter(scalar, text, ordered));
    }
    builder = builder
        .register(Enum::new("SortDirection").item("ASC").item("DESC"))
        .register(Enum::new("NullsOrder").item("FIRST").item("LAST"))
        .register(Enum::new("DealOutcome").item("WON").item("LOST"))
        .register(value_object(
            "PageInfo",
            &[
                ("hasNextPage", TypeRef::named_nn(TypeRef::BOOLEAN)),
                ("hasPreviousPage", TypeRef::named_nn(TypeRef::BOOLEAN)),
                ("startCursor", TypeRef::named(TypeRef::STRING)),
                ("endCursor", TypeRef::named(TypeRef::STRING)),
            ],
        ))
        .register(value_object(
            "TimelineItem",
            &[
                ("at", TypeRef::named_nn("DateTime")),
                ("kind", TypeRef::named_nn(TypeRef::STRING)),
                ("object", TypeRef::named_nn(TypeRef::STRING)),
                ("recordId", TypeRef::named_nn(TypeRef::ID)),
                ("summary", TypeRef::named_nn(TypeRef::STRING)),
                ("detail", TypeRef::named("JSON")),
            ],
        ))
        .register(value_object(
            "Session",
            &[
                ("token", TypeRef::named_nn(TypeRef::STRING)),
                ("role", TypeRef::named_nn("UserRole")),
                ("expiresAt", TypeRef::named("DateTime")),
            ],
        ));
    for def in registry.objects() {
        builder = crate::api::object::register(builder, def, registry, limits);
        query = crate::api::crud::queries(def, query, limits);
        if def.mutable {
            mutation = crate::api::crud::mutations(def, mutation);
        }
    }
    mutation = crate::api::workflow::register(mutation);
    mutation = mutation.field(crate::api::auth::login_field());
    let query = crate::api::reports::fields(registry, query);
    let (query, mutation) = crate::api::admin::register(query, mutation);
    let (with_import, query, mutation) = crate::api::import::register(builder, query, mutation);
    builder = with_import;
    let (with_privacy, query, mutation) = crate::api::privacy::register(builder, query, mutation);
    builder = with_privacy;
    let (with_webhooks, query, mutation) = crate::api::webhooks::register(builder, query, mutation);
    builder = with_webhooks;
    let (registered, query, mutation) = crate::api::plugins::register(builder, query, mutation);
    let (registered, query, mutation) = crate::api::extension::register(registered, query, mutation, registry);
    builder = registered;
    builder = builder.register(crate::api::subscription::subscription()).register(value_object(
        "RecordChange",
        &[
            ("seq", TypeRef::named_nn(TypeRef::STRING)),
            ("kind", TypeRef::named_nn(TypeRef::STRING)),
            ("object", TypeRef::named_nn(TypeRef::STRING)),
            ("recordId", TypeRef::named(TypeRef::ID)),
            ("actor", TypeRef::named_nn(TypeRef::STRING)),
            ("payload", TypeRef::named_nn("JSON")),
        ],
    ));
    builder = builder
        .register(
            Object::new("ContactDuplicate")
                .field(Field::new("contact", TypeRef::named_nn("Contact"), |ctx| {
                    FieldFuture::new(async move {
                        let dup = ctx.parent_value.try_downcast_ref::<workflow::Duplicate>()?;
                        Ok(Some(FieldValue::borrowed_any(&dup.contact)))
                    })
                }))
                .field(Field::new("score", TypeRef::named_nn(TypeRef::INT), |ctx| {
                    FieldFuture::new(async move {
                        let dup = ctx.parent_value.try_downcast_ref::<workflow::Duplicate>()?;
                        Ok(Some(FieldValue::value(GqlValue::Number(dup.score.into()))))
                    })
                }))
                .field(Field::new("reasons", TypeRef::named_nn_list_nn(TypeRef::STRING), |ctx| {
                    FieldFuture::new(async move {
                        let dup = ctx.parent_value.try_downcast_ref::<workflow::Duplicate>()?;
                        Ok(Some(FieldValue::value(GqlValue::List(
                            dup.reasons.iter().cloned().map(GqlValue::String).collect(),
                        ))))
                    })
                })),
        )
        .register(value_object(
            "Money",
            &[("currency", TypeRef::named_nn(TypeRef::STRING)), ("amount", TypeRef::named_nn("Decimal"))],
        ))
        .register(value_object(
            "StageReport",
            &[
                ("stageId", TypeRef::named_nn(TypeRef::ID)),
                ("name", TypeRef::named_nn(TypeRef::STRING)),
                ("kind", TypeRef::named_nn("StageKind")),
                ("probability", TypeRef::named_nn(TypeRef::INT)),
                ("count", TypeRef::named_nn(TypeRef::INT)),
                ("amounts", TypeRef::named_nn_list_nn("Money")),
            ],
        ))
        .register(value_object(
            "PipelineReport",
            &[
                ("stages", TypeRef::named_nn_list_nn("StageReport")),
                ("forecast", TypeRef::named_nn_list_nn("Money")),
                ("winRate", TypeRef::named(TypeRef::FLOAT)),
                ("averageDaysToClose", TypeRef::named(TypeRef::FLOAT)),
            ],
        ))
        .register(value_object(
            "TicketReport",
            &[
                ("volume", TypeRef::named_nn(TypeRef::INT)),
                ("firstResponseMinutesP50", TypeRef::named(TypeRef::FLOAT)),
                ("firstResponseMinutesP90", TypeRef::named(TypeRef::FLOAT)),
                ("resolutionMinutesP50", TypeRef::named(TypeRef::FLOAT)),
                ("resolutionMinutesP90", TypeRef::named(TypeRef::FLOAT)),
                ("slaBreachRate", TypeRef::named(TypeRef::FLOAT)),
                ("csatAverage", TypeRef::named(TypeRef::FLOAT)),
                ("rated", TypeRef::named_nn(TypeRef::INT)),
            ],
        ))
        .register(Enum::new("GrowthInterval").items(["DAY", "WEEK", "MONTH"]))
        .register(value_object(
            "GrowthPoint",
            &[
                ("periodStart", TypeRef::named_nn("Date")),
                ("newContacts", TypeRef::named_nn(TypeRef::INT)),
                ("totalContacts", TypeRef::named_nn(TypeRef::INT)),
            ],
        ))
        .register(
            async_graphql::dynamic::Union::new("SegmentMember")
                .possible_type("Contact")
                .possible_type("Company")
                .possible_type("Deal")
                .possible_type("Ticket")
                .possible_type("Activity"),
        )
        .register(crate::api::connection::with_page_fields(Object::new("SegmentMemberConnection").field(Field::new(
            "edges",
            TypeRef::named_nn_list_nn("SegmentMemberEdge"),
            |ctx| {
                FieldFuture::new(async move {
                    let connection = ctx.parent_value.try_downcast_ref::<Connection>()?;
                    let type_name = connection.def.type_name.clone();
                    let edges = connection.page.records.iter().map(|(cursor, record)| {
                        FieldValue::owned_any((cursor.clone(), record.clone(), type_name.clone()))
                    });
                    Ok(Some(FieldValue::list(edges)))
                })
            },
        ))))
        .register(
            Object::new("SegmentMemberEdge")
                .field(Field::new("cursor", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                    FieldFuture::new(async move {
                        let (cursor, _, _) = ctx.parent_value.try_downcast_ref::<(String, Record, String)>()?;
                        Ok(Some(FieldValue::value(GqlValue::String(cursor.clone()))))
                    })
                }))
                .field(Field::new("node", TypeRef::named_nn("SegmentMember"), |ctx| {
                    FieldFuture::new(async move {
                        let (_, record, type_name) = ctx.parent_value.try_downcast_ref::<(String, Record, String)>()?;
                        Ok(Some(FieldValue::borrowed_any(record).with_type(type_name.clone())))
                    })
                })),
        )
        .register(Enum::new("SearchType").items(searchable.iter().map(|def| naming::enum_value(def))))
        .register(value_object(
            "SearchHit",
            &[
                ("object", TypeRef::named_nn("SearchType")),
                ("recordId", TypeRef::named_nn(TypeRef::ID)),
                ("title", TypeRef::named_nn(TypeRef::STRING)),
                ("score", TypeRef::named_nn(TypeRef::FLOAT)),
            ],
        ))
        .register(Enum::new("CustomFieldKind").items(crate::domain::custom_field::KINDS.iter().copied()))
        .register(value_object(
            "CustomField",
            &[
                ("object", TypeRef::named_nn(TypeRef::STRING)),
                ("key", TypeRef::named_nn(TypeRef::STRING)),
                ("label", TypeRef::named_nn(TypeRef::STRING)),
                ("kind", TypeRef::named_nn("CustomFieldKind")),
                ("required", TypeRef::named_nn(TypeRef::BOOLEAN)),
                ("options", TypeRef::named_nn_list_nn(TypeRef::STRING)),
            ],
        ))
        .register(value_object(
            "AuditEntry",
            &[
                ("occurredAt", TypeRef::named_nn("DateTime")),
                ("actorKind", TypeRef::named_nn(TypeRef::STRING)),
                ("actorId", TypeRef::named(TypeRef::STRING)),
                ("actorName", TypeRef::named_nn(TypeRef::STRING)),
                ("action", TypeRef::named_nn(TypeRef::STRING)),
                ("object", TypeRef::named_nn(TypeRef::STRING)),
                ("recordId", TypeRef::named(TypeRef::ID)),
                ("changes", TypeRef::named_nn("JSON")),
                ("cursor", TypeRef::named_nn(TypeRef::STRING)),
            ],
        ))
        .register(value_object(
            "ApiToken",
            &[
                ("id", TypeRef::named_nn(TypeRef::ID)),
                ("name", TypeRef::named_nn(TypeRef::STRING)),
                ("prefix", TypeRef::named_nn(TypeRef::STRING)),
                ("role", TypeRef::named_nn("UserRole")),
                ("createdAt", TypeRef::named_nn("DateTime")),
                ("lastUsedAt", TypeRef::named("DateTime")),
                ("expiresAt", TypeRef::named("DateTime")),
                ("revokedAt", TypeRef::named("DateTime")),
            ],
        ))
        .register(
            InputObject::new("UpdateUserInput")
                .description("What `updateUser` changes; a field left out stays as it is.")
                .field(InputValue::new("name", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new("role", TypeRef::named("UserRole")))
                .field(InputValue::new("active", TypeRef::named(TypeRef::BOOLEAN))),
        );
    builder = builder
        .register(query)
        .register(mutation)
        // First, so it codes the errors of the extensions after it (`api::error::SpecErrors`).
        .extension(crate::api::error::SpecErrors)
        // Paths and nulls for field errors (`api::field_errors`), around every other hook.
        .extension(crate::api::field_errors::FieldErrors)
        // Not `limit_depth`: it counts introspection too, and refused graphql-js's standard
        // introspection query (`api::depth`).
        .extension(crate::api::depth::DepthLimit::new(limits.max_depth))
        // Not `limit_complexity`: `CostLimit` applies the limit to async-graphql's count plus
        // what sized fields (reports, `first`) will return, which the dynamic schema cannot say.
        .extension(crate::api::cost::CostLimit::new(limits.max_complexity))
        .extension(crate::api::direct::DirectEdgesExtension);
    if let Some(services) = services {
        builder = builder.data(services);
    }
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    if !limits.suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the core schema, as committed in `schemas/graphql/schema.graphql`.
pub fn core_sdl() -> Result<String, SchemaError> {
    let schema = build_schema(&Registry::core(), None, ApiConfig::default())?;
    Ok(schema.sdl())
}

/// Per-request data: the caller and the batching loaders.
pub fn request_data(
    request: async_graphql::Request,
    kith: &Kith,
    actor: Option<crate::domain::actor::Actor>,
) -> async_graphql::Request {
    let request = request
        .data(DataLoader::new(RecordLoader { kith: kith.clone() }, tokio::spawn))
        .data(DataLoader::new(TagLoader { kith: kith.clone() }, tokio::spawn))
        .data(DataLoader::new(crate::api::extension::ComputedLoader { kith: kith.clone() }, tokio::spawn))
        .data(crate::api::extension::ComputedCache::default())
        .data(Prefetched::default())
        .data(crate::api::direct::DirectEdges::default());
    match actor {
        Some(actor) => request.data(actor),
        None => request,
    }
}

/// An answer with one coded error and no place in a document (HTTP-level errors: no
/// `locations`).
pub fn error_response(code: Code, message: &str) -> async_graphql::Response {
    let mut error = coded(code, message.to_owned()).into_server_error(async_graphql::Pos::default());
    error.locations.clear();
    async_graphql::Response::from_errors(vec![error])
}
