//! An object's GraphQL types: the output type (stored fields, forward and reverse relations,
//! tags, timeline, computed fields), its filter input and its create / update inputs, and how
//! stored values become GraphQL values.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::SchemaBuilder;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef,
};
use async_graphql::{Name, Value as GqlValue};
use serde_json::Value as Json;

use crate::api::args::{arg_opt_i64, kith};
use crate::api::auth::{Access, authorize, check_field, unreadable};
use crate::api::connection::{Connection, connection_field, list_query};
use crate::api::error::{bad_input, to_gql};
use crate::api::loader::{Prefetched, RecordLoader, TagLoader};
use crate::config::ApiConfig;
use crate::domain::actor::Role;
use crate::domain::filter::Filter;
use crate::domain::naming::{self, Suffix};
use crate::domain::object::{Access as FieldAccess, FieldDef, ObjectDef, Registry};
use crate::domain::value::{FieldKind, Value};
use crate::service::timeline;
use crate::store::custom_fields;
use crate::store::records::{self, Record};

pub(crate) fn scalar_name(def: &ObjectDef, field: &FieldDef) -> String {
    match &field.kind {
        FieldKind::Id | FieldKind::Ref(_) => "ID".into(),
        FieldKind::Int => "Int".into(),
        FieldKind::Decimal => "Decimal".into(),
        FieldKind::Bool => "Boolean".into(),
        FieldKind::Date => "Date".into(),
        FieldKind::DateTime => "DateTime".into(),
        FieldKind::Json => "JSON".into(),
        FieldKind::Enum(_) => naming::enum_type(def, field),
        FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Currency => "String".into(),
    }
}

/// Whether the schema declares a stored field non-null: `id`, `createdAt`, `version`, and
/// required fields that are not read-only and every role may read (a field a role may not
/// read answers null, with FORBIDDEN, to that role).
pub(crate) fn non_null(field: &FieldDef) -> bool {
    field.name == "id"
        || field.name == "createdAt"
        || field.name == "version"
        || (field.required && field.access != FieldAccess::ReadOnly && field.read_role == Role::Viewer)
}

/// A field value as GraphQL sees it.
pub(crate) fn to_gql_value(kind: &FieldKind, value: &Value) -> GqlValue {
    match value {
        Value::Null => GqlValue::Null,
        Value::Bool(b) => GqlValue::Boolean(*b),
        Value::Int(n) => GqlValue::Number((*n).into()),
        Value::Text(s) if matches!(kind, FieldKind::Enum(_)) => GqlValue::Enum(Name::new(s)),
        Value::Text(s) => GqlValue::String(s.clone()),
        Value::Json(j) => GqlValue::from_json(j.clone()).unwrap_or(GqlValue::Null),
        // The value's text, as `Display` gives it, without formatting it twice.
        other => GqlValue::String(match other.to_json() {
            Json::String(s) => s,
            Json::Null => String::new(),
            json => json.to_string(),
        }),
    }
}

/// [`to_gql_value`], taking the value (its text or JSON moves instead of being copied).
pub(crate) fn into_gql_value(kind: &FieldKind, value: Value) -> GqlValue {
    match value {
        Value::Text(s) if !matches!(kind, FieldKind::Enum(_)) => GqlValue::String(s),
        Value::Json(j) => GqlValue::from_json(j).unwrap_or(GqlValue::Null),
        other => to_gql_value(kind, &other),
    }
}

/// The record a field belongs to: owned by its parent value, or shared (a record a page read
/// ahead for its relations).
pub(crate) fn record_of<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Record> {
    if let Some(shared) = ctx.parent_value.downcast_ref::<Arc<Record>>() {
        return Ok(shared);
    }
    ctx.parent_value.try_downcast_ref::<Record>()
}

pub(crate) fn object_type(def: &Arc<ObjectDef>, registry: &Registry, limits: ApiConfig) -> Vec<Object> {
    let mut object = Object::new(def.type_name.clone()).description(def.description.clone());
    for field in &def.fields {
        let ty = scalar_name(def, field);
        let non_null = non_null(field);
        let type_ref = if non_null { TypeRef::named_nn(ty) } else { TypeRef::named(ty) };
        let name = field.name.clone();
        let kind = field.kind.clone();
        // Only a field some role may not read pays for the check.
        let guarded = (field.read_role > Role::Viewer).then(|| def.clone());
        object = object.field(
            // A stored field is read from the record at hand: a ready value, no future to box.
            Field::new(field.name.clone(), type_ref, move |ctx| {
                if let Some(def) = &guarded
                    && let Err(err) = check_field(&ctx, def, &name)
                {
                    return unreadable(&ctx, err);
                }
                match record_of(&ctx) {
                    // A null is no value: `null` where the field may be null (an enum could not
                    // take `Value::Null`), an error where it may not.
                    Ok(record) => match record.get(&name) {
                        Value::Null => FieldFuture::Value(None),
                        value => FieldFuture::Value(Some(FieldValue::value(to_gql_value(&kind, value)))),
                    },
                    Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err) }),
                }
            })
            .description(field.description.clone()),
        );
        // Forward relation: `companyId` also gives `company`.
        if let (FieldKind::Ref(target), Some(relation)) = (&field.kind, naming::forward_relation(registry, def, field))
            && let Some(target_def) = registry.get(target)
        {
            let name = field.name.clone();
            let target: Arc<str> = Arc::from(target.as_str());
            // The related record tells the reference's value.
            let guarded = (field.read_role > Role::Viewer).then(|| def.clone());
            object = object.field(Field::new(relation, TypeRef::named(target_def.type_name.clone()), move |ctx| {
                if let Some(def) = &guarded
                    && let Err(err) = check_field(&ctx, def, &name)
                {
                    return unreadable(&ctx, err);
                }
                // No reference: null at once, without a trip through the loader; a record
                // its page read ahead: at once too.
                if let Ok(record) = record_of(&ctx) {
                    let Some(id) = record.get(&name).as_uuid() else { return FieldFuture::Value(None) };
                    if let Some(found) = ctx.data::<Prefetched>().ok().and_then(|cache| cache.get(&target, id)) {
                        return FieldFuture::Value(found.map(FieldValue::owned_any));
                    }
                }
                let name = name.clone();
                let target = target.clone();
                FieldFuture::new(async move {
                    let Some(id) = record_of(&ctx)?.get(&name).as_uuid() else { return Ok(None) };
                    let loader = ctx.data::<DataLoader<RecordLoader>>()?;
                    let record = loader.load_one((target, id)).await.map_err(|e| to_gql(clone_error(&e)))?;
                    Ok(record.map(FieldValue::owned_any))
                })
            }));
        }
    }
    for computed in crate::api::extension::computed_fields(def, registry) {
        object = object.field(computed);
    }
    if def.taggable {
        object = object.field(Field::new("tags", TypeRef::named_nn_list_nn(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                let id = record_of(&ctx)?.id();
                let loader = ctx.data::<DataLoader<TagLoader>>()?;
                let tags = loader.load_one(id).await.map_err(|e| to_gql(clone_error(&e)))?.unwrap_or_default();
                Ok(Some(FieldValue::value(GqlValue::List(tags.into_iter().map(GqlValue::String).collect()))))
            })
        }));
    }
    // Reverse relations: every object with a reference to this one.
    for (other, field, name) in naming::reverse_relations(registry, def) {
        object = object.field(connection_field(name, other.clone(), Some(field.name.clone()), limits));
    }
    if def.name == "segment" && def.plugin.is_none() {
        let field = Field::new("members", TypeRef::named_nn("SegmentMemberConnection"), move |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Read)?;
                let segment = record_of(&ctx)?;
                let kith = kith(&ctx)?;
                let object = segment.get("object").to_string();
                let def = naming::object_of_value(&kith.registry(), &object)
                    .cloned()
                    .ok_or_else(|| bad_input("object", format!("`{object}` is not an object")))?;
                let custom = custom_fields::for_object(kith.store.conn(), &def.name).await.map_err(to_gql)?;
                let stored = match segment.get("filter") {
                    Value::Json(j) => j.clone(),
                    _ => Json::Null,
                };
                let saved = Filter::from_json(&def, &custom, &stored).map_err(|e| to_gql(e.into()))?;
                let query = list_query(&ctx, &def, Some(saved), limits).await?;
                let page = records::list(kith.store.conn(), &def, &query).await.map_err(to_gql)?;
                Ok(Some(FieldValue::owned_any(Connection { page, def, filter: query.filter })))
            })
        });
        let field = field
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)));
        object = object.field(field.description("The records the segment's filter selects now, oldest first."));
    }
    if def.timeline {
        let object_name = def.name.clone();
        object = object.field(
            Field::new("timeline", TypeRef::named_nn_list_nn("TimelineItem"), move |ctx| {
                let object_name = object_name.clone();
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Read)?;
                    let limit = arg_opt_i64(&ctx, "first")?.unwrap_or(50).clamp(1, 500) as u64;
                    let id = record_of(&ctx)?.id();
                    let items = timeline::timeline(kith(&ctx)?, &object_name, id, limit).await.map_err(to_gql)?;
                    let values = items
                        .into_iter()
                        .map(|item| {
                            let mut map = async_graphql::indexmap::IndexMap::new();
                            map.insert(
                                Name::new("at"),
                                GqlValue::String(crate::domain::value::format_datetime(item.at)),
                            );
                            map.insert(Name::new("kind"), GqlValue::String(item.kind));
                            map.insert(Name::new("object"), GqlValue::String(item.object));
                            map.insert(Name::new("recordId"), GqlValue::String(item.record_id.to_string()));
                            map.insert(Name::new("summary"), GqlValue::String(item.summary));
                            map.insert(Name::new("detail"), GqlValue::from_json(item.detail).unwrap_or(GqlValue::Null));
                            FieldValue::value(GqlValue::Object(map))
                        })
                        .collect::<Vec<_>>();
                    Ok(Some(FieldValue::list(values)))
                })
            })
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT))),
        );
    }

    let [connection, edge] = crate::api::connection::types(def);
    vec![object, connection, edge]
}

pub(crate) fn clone_error(err: &Arc<crate::error::Error>) -> crate::error::Error {
    match &**err {
        crate::error::Error::Domain(d) => crate::error::Error::Domain(d.clone()),
        crate::error::Error::Unavailable(e) => crate::error::Error::Unavailable(e.clone()),
        other => crate::error::Error::internal(other.to_string()),
    }
}

pub(crate) fn filter_input(def: &ObjectDef) -> InputObject {
    let name = naming::object_type(def, Suffix::Filter);
    let mut input = InputObject::new(name.clone())
        .field(InputValue::new("and", TypeRef::named_nn_list(name.clone())))
        .field(InputValue::new("or", TypeRef::named_nn_list(name.clone())))
        .field(InputValue::new("not", TypeRef::named(name)));
    for field in def.fields.iter().filter(|f| f.kind != FieldKind::Json) {
        input = input
            .field(InputValue::new(field.name.clone(), TypeRef::named(format!("{}Filter", scalar_name(def, field)))));
    }
    if def.custom_fields {
        input = input.field(
            InputValue::new("customFields", TypeRef::named("JSON"))
                .description("Per custom key, an object of operators: `{tier: {eq: \"gold\"}}`."),
        );
    }
    if def.taggable {
        input = input.field(InputValue::new("tags", TypeRef::named("StringFilter")));
    }
    input
}

pub(crate) fn scalar_filter(scalar: &str, text: bool, ordered: bool) -> InputObject {
    let mut input = InputObject::new(format!("{scalar}Filter"))
        .field(InputValue::new("eq", TypeRef::named(scalar)))
        .field(InputValue::new("neq", TypeRef::named(scalar)))
        .field(InputValue::new("in", TypeRef::named_nn_list(scalar)))
        .field(InputValue::new("notIn", TypeRef::named_nn_list(scalar)))
        .field(InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN)));
    if ordered {
        for op in ["lt", "lte", "gt", "gte"] {
            input = input.field(InputValue::new(op, TypeRef::named(scalar)));
        }
    }
    if text {
        for op in ["like", "ilike", "startsWith"] {
            input = input.field(InputValue::new(op, TypeRef::named(TypeRef::STRING)));
        }
    }
    input
}

pub(crate) fn write_input(def: &ObjectDef, create: bool) -> InputObject {
    let suffix = if create { Suffix::CreateInput } else { Suffix::UpdateInput };
    let mut input = InputObject::new(naming::object_type(def, suffix));
    for field in &def.fields {
        let writable = match field.access {
            FieldAccess::Write => true,
            FieldAccess::CreateOnly => create,
            FieldAccess::ReadOnly => false,
        };
        if !writable || field.name == "customFields" {
            continue;
        }
        let ty = scalar_name(def, field);
        let type_ref = if create && field.required { TypeRef::named_nn(ty) } else { TypeRef::named(ty) };
        input = input.field(InputValue::new(field.name.clone(), type_ref).description(field.description.clone()));
    }
    if def.custom_fields {
        input = input.field(InputValue::new("customFields", TypeRef::named("JSON")));
    }
    if def.taggable {
        input = input.field(InputValue::new("tags", TypeRef::named_nn_list(TypeRef::STRING)));
    }
    input
}

/// Registers the types of `def`: its output, connection and edge types, its enums and their
/// filters, its filter and sort inputs, and its create / update inputs when it is mutable.
pub(crate) fn register(
    mut builder: SchemaBuilder,
    def: &Arc<ObjectDef>,
    registry: &Registry,
    limits: ApiConfig,
) -> SchemaBuilder {
    for object in object_type(def, registry, limits) {
        builder = builder.register(object);
    }
    for field in &def.fields {
        if let FieldKind::Enum(values) = &field.kind {
            let name = naming::enum_type(def, field);
            builder = builder.register(Enum::new(name.clone()).items(values.iter().map(String::as_str)));
            builder = builder.register(scalar_filter(&name, false, false));
        }
    }
    let sort_fields = def.fields.iter().filter(|f| f.kind != FieldKind::Json).map(|f| f.name.as_str());
    builder = builder
        .register(filter_input(def))
        .register(Enum::new(naming::object_type(def, Suffix::SortField)).items(sort_fields))
        .register(
            InputObject::new(naming::object_type(def, Suffix::OrderBy))
                .field(InputValue::new("field", TypeRef::named(naming::object_type(def, Suffix::SortField))))
                .field(InputValue::new("customField", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new("direction", TypeRef::named("SortDirection")))
                .field(InputValue::new("nulls", TypeRef::named("NullsOrder"))),
        );
    if def.mutable {
        builder = builder.register(write_input(def, true)).register(write_input(def, false));
    }
    builder
}
