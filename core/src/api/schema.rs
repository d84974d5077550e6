//! Builds the dynamic GraphQL schema from the object registry.
//!
//! Per object `T` (e.g. `Contact`): the output type, `TConnection` / `TEdge`, `TFilter`,
//! `TOrderBy`, `TCreateInput` / `TUpdateInput`; queries `t(id)` and `ts(filter, orderBy, first,
//! after, last, before)`; mutations `createT`, `updateT`, `deleteT`, `restoreT`; relations both
//! ways (`Contact.company`, `Company.contacts`), batched with a DataLoader.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, Scalar, Schema,
    SchemaError, TypeRef,
};
use async_graphql::{Name, Value as GqlValue};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::api::auth::{Access, authorize, guarded};
use crate::api::error::{bad_input, coded, to_gql};
use crate::api::loader::{Prefetched, RecordLoader, TagLoader, prefetch_relations};
use crate::config::ApiConfig;
use crate::domain::code::Code;
use crate::domain::filter::{Condition, Filter, Op, OrderBy, Target};
use crate::domain::object::{Access as FieldAccess, FieldDef, ObjectDef, Registry};
use crate::domain::value::{FieldKind, Value};
use crate::service::input::Input;
use crate::service::{Kith, records as record_service, timeline, users, workflow};
use crate::store::custom_fields;
use crate::store::records::{self, ListQuery, Page, PageRequest, Record};

/// Most inputs of one batch create.
const MAX_BATCH_INPUTS: usize = 100;

/// Names the batch input an error came from: `inputs[3].email`.
fn prefix_field(err: crate::error::Error, index: usize) -> crate::error::Error {
    match err {
        crate::error::Error::Domain(crate::domain::DomainError::Validation { field, reason }) => {
            crate::error::Error::Domain(crate::domain::DomainError::Validation {
                field: format!("inputs[{index}].{field}"),
                reason,
            })
        }
        other => other,
    }
}

/// Objects with generic create/update/delete/restore mutations.
const MUTABLE: &[&str] = &["contact", "company", "pipeline", "stage", "deal", "ticket", "activity", "segment"];

fn upper_first(s: &str) -> String {
    let mut out = s.to_owned();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

fn enum_name(def: &ObjectDef, field: &FieldDef) -> String {
    format!("{}{}", def.type_name, upper_first(&field.name))
}

fn scalar_name(def: &ObjectDef, field: &FieldDef) -> String {
    match &field.kind {
        FieldKind::Id | FieldKind::Ref(_) => "ID".into(),
        FieldKind::Int => "Int".into(),
        FieldKind::Decimal => "Decimal".into(),
        FieldKind::Bool => "Boolean".into(),
        FieldKind::Date => "Date".into(),
        FieldKind::DateTime => "DateTime".into(),
        FieldKind::Json => "JSON".into(),
        FieldKind::Enum(_) => enum_name(def, field),
        FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Currency => "String".into(),
    }
}

/// Whether the schema declares a stored field non-null: `id`, `createdAt`, `version`, and
/// required fields that are not read-only.
pub(crate) fn non_null(field: &FieldDef) -> bool {
    field.name == "id"
        || field.name == "createdAt"
        || field.name == "version"
        || (field.required && field.access != FieldAccess::ReadOnly)
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

pub(crate) fn kith<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Kith> {
    ctx.data::<Kith>()
}

fn arg_json(ctx: &ResolverContext<'_>, name: &str) -> Option<Json> {
    ctx.args.get(name).filter(|v| !v.is_null()).and_then(|v| v.as_value().clone().into_json().ok())
}

fn arg_id(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Uuid> {
    let text = ctx.args.try_get(name)?.string()?;
    Uuid::parse_str(text).map_err(|_| bad_input(name, format!("`{text}` is not an id")))
}

fn arg_opt_id(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<Uuid>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(_) => arg_id(ctx, name).map(Some),
        None => Ok(None),
    }
}

fn arg_opt_i64(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<i64>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(v.i64()?)),
        None => Ok(None),
    }
}

fn arg_opt_bool(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<bool>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(v.boolean()?)),
        None => Ok(None),
    }
}

fn arg_opt_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<String>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(v.string()?.to_owned())),
        None => Ok(None),
    }
}

/// A page of records with what `totalCount` needs.
struct Connection {
    page: Page,
    def: Arc<ObjectDef>,
    filter: Filter,
}

/// Reads `filter`, `orderBy`, `first`, `after`, `last`, `before`.
async fn list_query(
    ctx: &ResolverContext<'_>,
    def: &ObjectDef,
    extra: Option<Filter>,
    limits: ApiConfig,
) -> async_graphql::Result<ListQuery> {
    let kith = kith(ctx)?;
    let filter_json = arg_json(ctx, "filter");
    let order_json = arg_json(ctx, "orderBy");
    // Custom field definitions are read only when the filter or the order names one.
    let custom = if def.custom_fields && (mentions_custom(filter_json.as_ref()) || mentions_custom(order_json.as_ref()))
    {
        custom_fields::for_object(kith.store.conn(), &def.name).await.map_err(to_gql)?
    } else {
        Vec::new()
    };
    let mut filter = match filter_json {
        Some(json) => Filter::from_json(def, &custom, &json).map_err(|e| to_gql(e.into()))?,
        None => Filter::all(),
    };
    if let Some(extra) = extra {
        filter = Filter::And(vec![extra, filter]);
    }
    let mut order = Vec::new();
    if let Some(Json::Array(items)) = order_json {
        if items.len() > 5 {
            return Err(bad_input("orderBy", "at most 5 sort keys"));
        }
        for item in &items {
            order.push(OrderBy::from_json(def, &custom, item).map_err(|e| to_gql(e.into()))?);
        }
    }
    let first = arg_opt_i64(ctx, "first")?;
    let last = arg_opt_i64(ctx, "last")?;
    let after = arg_opt_string(ctx, "after")?;
    let before = arg_opt_string(ctx, "before")?;
    let size = |name: &str, n: Option<i64>| -> async_graphql::Result<u64> {
        match n {
            None => Ok(limits.default_page_size),
            Some(n) if n < 0 => Err(bad_input(name, "must not be negative")),
            Some(n) if n as u64 > limits.max_page_size => {
                Err(bad_input(name, format!("at most {} per page", limits.max_page_size)))
            }
            Some(n) => Ok(n as u64),
        }
    };
    let page = match (first, last, &before) {
        (Some(_), Some(_), _) => return Err(bad_input("last", "give `first` or `last`, not both")),
        (None, Some(_), _) | (None, None, Some(_)) => {
            if after.is_some() {
                return Err(bad_input("after", "`after` goes with `first`"));
            }
            PageRequest::Backward { last: size("last", last)?, before }
        }
        _ => {
            if before.is_some() {
                return Err(bad_input("before", "`before` goes with `last`"));
            }
            PageRequest::Forward { first: size("first", first)?, after }
        }
    };
    Ok(ListQuery { filter, order, page, include_deleted: false })
}

/// Whether a filter or order argument names a custom field anywhere (as a key or a value).
fn mentions_custom(json: Option<&Json>) -> bool {
    match json {
        None => false,
        Some(Json::Object(map)) => {
            map.iter().any(|(key, value)| key.starts_with("customField") || mentions_custom(Some(value)))
        }
        Some(Json::Array(items)) => items.iter().any(|item| mentions_custom(Some(item))),
        Some(Json::String(s)) => s.starts_with("customField"),
        Some(_) => false,
    }
}

fn list_args(field: Field, def: &ObjectDef) -> Field {
    field
        .argument(InputValue::new("filter", TypeRef::named(format!("{}Filter", def.type_name))))
        .argument(InputValue::new("orderBy", TypeRef::named_nn_list(format!("{}OrderBy", def.type_name))))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)))
}

fn connection_field(name: String, def: Arc<ObjectDef>, reverse: Option<String>, limits: ApiConfig) -> Field {
    let type_name = format!("{}Connection", def.type_name);
    let field_def = def.clone();
    let field = Field::new(name, TypeRef::named_nn(type_name), move |ctx| {
        let def = def.clone();
        let reverse = reverse.clone();
        FieldFuture::new(async move {
            authorize(&ctx, Access::Read)?;
            let extra = match &reverse {
                Some(ref_field) => {
                    let parent = record_of(&ctx)?;
                    Some(Filter::Cond(Condition {
                        target: Target::Field(ref_field.clone()),
                        kind: FieldKind::Id,
                        op: Op::Eq(Value::Uuid(parent.id())),
                    }))
                }
                None => None,
            };
            let query = list_query(&ctx, &def, extra, limits).await?;
            let fields = projection(&ctx, &def, &query.order);
            let look_ahead = ctx.look_ahead();
            let cursors = look_ahead.field("pageInfo").exists() || look_ahead.field("edges").field("cursor").exists();
            let kith = kith(&ctx)?;
            // Plain edges are answered directly, their relations joined into the page's statement.
            let page = match crate::api::direct::plan(&ctx, kith, &def) {
                Some(plan) => {
                    let rows = records::list_rows(kith.store.conn(), &def, &query, fields.as_deref(), &plan.joins())
                        .await
                        .map_err(to_gql)?;
                    let ids: Vec<Uuid> = (0..rows.rows.len()).map(|row| rows.id(row)).collect();
                    crate::api::extension::prefetch(&ctx, &def, &ids).await;
                    plan.answer(&ctx, rows, &query.order, cursors)
                }
                None => {
                    let page = records::list_joined(kith.store.conn(), &def, &query, fields.as_deref(), &[], cursors)
                        .await
                        .map_err(to_gql)?;
                    let ids: Vec<Uuid> = page.records.iter().map(|(_, r)| r.id()).collect();
                    crate::api::extension::prefetch(&ctx, &def, &ids).await;
                    if let Ok(cache) = ctx.data::<Prefetched>() {
                        let nodes = ctx.look_ahead().field("edges").field("node");
                        let rows: Vec<&Record> = page.records.iter().map(|(_, r)| r).collect();
                        prefetch_relations(kith, cache, &def, |name| nodes.field(name).exists(), &rows).await;
                    }
                    page
                }
            };
            Ok(Some(FieldValue::owned_any(Connection { page, def, filter: query.filter })))
        })
    });
    list_args(field, &field_def)
}

/// The fields a connection's page must read, from what the query selects under
/// `edges { node { .. } }`: the selected scalars, the reference behind each selected forward
/// relation (`company` needs `companyId`), the sort keys and `id`. `None` (read everything)
/// as soon as a selected field needs more than that.
fn projection(ctx: &ResolverContext<'_>, def: &ObjectDef, order: &[OrderBy]) -> Option<Vec<String>> {
    let mut names: Vec<String> = vec!["id".to_owned()];
    for key in order {
        match &key.target {
            Target::Field(name) => names.push(name.clone()),
            Target::Custom { .. } => names.push("customFields".to_owned()),
            Target::Tag => return None,
        }
    }
    selected_fields(ctx.look_ahead().field("edges").field("node").selection_fields(), def, names)
}

/// `names` plus the fields the selections read of a record of `def` (see [`projection`]);
/// `None` as soon as one needs more than its stored fields.
fn selected_fields<'a>(
    selections: impl IntoIterator<Item = async_graphql::SelectionField<'a>>,
    def: &ObjectDef,
    mut names: Vec<String>,
) -> Option<Vec<String>> {
    for node in selections {
        for field in node.selection_set() {
            let name = field.name();
            if def.field_def(name).is_some() {
                names.push(name.to_owned());
                continue;
            }
            // Resolved from the id alone.
            if matches!(name, "__typename" | "tags" | "timeline") {
                continue;
            }
            let reference = format!("{name}Id");
            if matches!(def.field_def(&reference).map(|f| &f.kind), Some(FieldKind::Ref(_))) {
                names.push(reference);
                continue;
            }
            return None;
        }
    }
    Some(names)
}

fn object_type(def: &Arc<ObjectDef>, registry: &Registry, limits: ApiConfig) -> Vec<Object> {
    let mut object = Object::new(def.type_name.clone()).description(def.description.clone());
    for field in &def.fields {
        let ty = scalar_name(def, field);
        let non_null = non_null(field);
        let type_ref = if non_null { TypeRef::named_nn(ty) } else { TypeRef::named(ty) };
        let name = field.name.clone();
        let kind = field.kind.clone();
        object = object.field(
            // A stored field is read from the record at hand: a ready value, no future to box.
            Field::new(field.name.clone(), type_ref, move |ctx| match record_of(&ctx) {
                // A null is no value: `null` where the field may be null (an enum could not
                // take `Value::Null`), an error where it may not.
                Ok(record) => match record.get(&name) {
                    Value::Null => FieldFuture::Value(None),
                    value => FieldFuture::Value(Some(FieldValue::value(to_gql_value(&kind, value)))),
                },
                Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err) }),
            })
            .description(field.description.clone()),
        );
        // Forward relation: `companyId` also gives `company`.
        if let FieldKind::Ref(target) = &field.kind {
            let relation = field.name.strip_suffix("Id").filter(|r| def.field_def(r).is_none());
            if let (Some(target_def), Some(relation)) = (registry.get(target), relation) {
                let name = field.name.clone();
                let target: Arc<str> = Arc::from(target.as_str());
                object = object.field(Field::new(relation, TypeRef::named(target_def.type_name.clone()), move |ctx| {
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
    for other in registry.objects() {
        let refs: Vec<&FieldDef> = other.references().filter(|(_, t)| *t == def.name).map(|(f, _)| f).collect();
        for field in &refs {
            let name = if other.name == "ticketComment" && def.name == "ticket" {
                "comments".to_owned()
            } else if refs.len() == 1 {
                other.plural.clone()
            } else {
                format!("{}By{}", other.plural, upper_first(field.name.trim_end_matches("Id")))
            };
            object = object.field(connection_field(name, other.clone(), Some(field.name.clone()), limits));
        }
    }
    if def.name == "segment" {
        let field = Field::new("members", TypeRef::named_nn("SegmentMemberConnection"), move |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Read)?;
                let segment = record_of(&ctx)?;
                let object = segment.get("object").to_string().to_ascii_lowercase();
                let kith = kith(&ctx)?;
                let def = kith.object(&object).map_err(to_gql)?;
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
    if matches!(def.name.as_str(), "contact" | "company" | "deal" | "ticket") {
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

    let connection = Object::new(format!("{}Connection", def.type_name))
        .field(Field::new("edges", TypeRef::named_nn_list_nn(format!("{}Edge", def.type_name)), |ctx| {
            match ctx.parent_value.try_downcast_ref::<Connection>() {
                Ok(connection) => {
                    let edges = connection.page.records.iter().map(|edge| FieldValue::borrowed_any(edge));
                    FieldFuture::Value(Some(FieldValue::list(edges)))
                }
                Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err) }),
            }
        }))
        .field(Field::new("pageInfo", TypeRef::named_nn("PageInfo"), |ctx| {
            FieldFuture::new(async move {
                let connection = ctx.parent_value.try_downcast_ref::<Connection>()?;
                Ok(Some(FieldValue::value(page_info(&connection.page))))
            })
        }))
        .field(Field::new("totalCount", TypeRef::named_nn(TypeRef::INT), |ctx| {
            FieldFuture::new(async move {
                let connection = ctx.parent_value.try_downcast_ref::<Connection>()?;
                let n = records::count(kith(&ctx)?.store.conn(), &connection.def, &connection.filter, false)
                    .await
                    .map_err(to_gql)?;
                Ok(Some(FieldValue::value(GqlValue::Number(n.into()))))
            })
        }));
    let edge = Object::new(format!("{}Edge", def.type_name))
        .field(Field::new("cursor", TypeRef::named_nn(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                let (cursor, _) = ctx.parent_value.try_downcast_ref::<(String, Record)>()?;
                Ok(Some(FieldValue::value(GqlValue::String(cursor.clone()))))
            })
        }))
        .field(Field::new("node", TypeRef::named_nn(def.type_name.clone()), |ctx| {
            match ctx.parent_value.try_downcast_ref::<(String, Record)>() {
                Ok((_, record)) => FieldFuture::Value(Some(FieldValue::borrowed_any(record))),
                Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err) }),
            }
        }));
    vec![object, connection, edge]
}

/// `PageInfo` of a page.
fn page_info(page: &Page) -> GqlValue {
    obj(vec![
        ("hasNextPage", GqlValue::Boolean(page.has_next)),
        ("hasPreviousPage", GqlValue::Boolean(page.has_previous)),
        ("startCursor", page.records.first().map(|(c, _)| GqlValue::String(c.clone())).unwrap_or(GqlValue::Null)),
        ("endCursor", page.records.last().map(|(c, _)| GqlValue::String(c.clone())).unwrap_or(GqlValue::Null)),
    ])
}

fn clone_error(err: &Arc<crate::error::Error>) -> crate::error::Error {
    match &**err {
        crate::error::Error::Domain(d) => crate::error::Error::Domain(d.clone()),
        crate::error::Error::Unavailable(e) => crate::error::Error::Unavailable(e.clone()),
        other => crate::error::Error::internal(other.to_string()),
    }
}

fn filter_input(def: &ObjectDef) -> InputObject {
    let name = format!("{}Filter", def.type_name);
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

fn scalar_filter(scalar: &str, text: bool, ordered: bool) -> InputObject {
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

fn write_input(def: &ObjectDef, create: bool) -> InputObject {
    let mut input = InputObject::new(format!("{}{}Input", def.type_name, if create { "Create" } else { "Update" }));
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
        let type_ref = if create && field.required && !(def.name == "deal" && field.name == "currency") {
            TypeRef::named_nn(ty)
        } else {
            TypeRef::named(ty)
        };
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

/// Runs `f` as the caller in a write transaction, answering once it has committed. Concurrent
/// mutations share a transaction and its commit (`store::group`); `f` may be called again if
/// its group is run again, so it takes what it needs afresh each time.
async fn write<T, F>(ctx: &ResolverContext<'_>, access: Access, mut f: F) -> async_graphql::Result<T>
where
    T: Send + 'static,
    F: for<'t> FnMut(
            &'t crate::store::Tx,
            Kith,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::Result<T>> + Send + 't>>
        + Send
        + 'static,
{
    let actor = authorize(ctx, access)?;
    let kith = kith(ctx)?.clone();
    let store = kith.store.clone();
    let written = store.write(actor, Box::new(move |tx| f(tx, kith.clone()))).await.map_err(to_gql);
    if let Ok(cache) = ctx.data::<Prefetched>() {
        cache.clear();
    }
    written
}

fn input_of(ctx: &ResolverContext<'_>, def: &ObjectDef) -> async_graphql::Result<Input> {
    let json = arg_json(ctx, "input").unwrap_or(Json::Object(Default::default()));
    Input::from_json(def, &json).map_err(to_gql)
}

fn mutations(def: &Arc<ObjectDef>, mut mutation: Object) -> Object {
    let t = def.type_name.clone();
    let d = def.clone();
    mutation = mutation.field(
        Field::new(
            format!("create{t}"),
            TypeRef::named_nn(t.clone()),
            guarded(Access::Write, move |ctx| {
                let def = d.clone();
                FieldFuture::new(async move {
                    let input = input_of(&ctx, &def)?;
                    let name = def.name.clone();
                    let record = write(&ctx, Access::Write, move |tx, kith| {
                        let (name, input) = (name.clone(), input.clone());
                        Box::pin(async move { record_service::create_final(tx, &kith.registry(), &name, input).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(record)))
                })
            }),
        )
        .argument(InputValue::new("input", TypeRef::named_nn(format!("{t}CreateInput")))),
    );
    let d = def.clone();
    mutation = mutation.field(
        Field::new(
            format!("update{t}"),
            TypeRef::named_nn(t.clone()),
            guarded(Access::Write, move |ctx| {
                let def = d.clone();
                FieldFuture::new(async move {
                    let id = arg_id(&ctx, "id")?;
                    let version = arg_opt_i64(&ctx, "expectedVersion")?;
                    let input = input_of(&ctx, &def)?;
                    let name = def.name.clone();
                    let record = write(&ctx, Access::Write, move |tx, kith| {
                        let (name, input) = (name.clone(), input.clone());
                        Box::pin(async move {
                            record_service::update(tx, &kith.registry(), &name, id, input, version).await
                        })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(record)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("input", TypeRef::named_nn(format!("{t}UpdateInput"))))
        .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
    );
    let d = def.clone();
    let plural = upper_first(&def.plural);
    mutation = mutation.field(
        Field::new(format!("create{plural}"), TypeRef::named_nn_list_nn(t.clone()), guarded(Access::Write, move |ctx| {
            let def = d.clone();
            FieldFuture::new(async move {
                let upsert = arg_opt_bool(&ctx, "upsert")?.unwrap_or(false);
                let items = match arg_json(&ctx, "inputs") {
                    Some(Json::Array(items)) => items,
                    _ => Vec::new(),
                };
                if items.is_empty() || items.len() > MAX_BATCH_INPUTS {
                    return Err(bad_input("inputs", format!("give 1 to {MAX_BATCH_INPUTS} inputs")));
                }
                let mut inputs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    inputs.push(Input::from_json(&def, item).map_err(|e| to_gql(prefix_field(e, i)))?);
                }
                let name = def.name.clone();
                // All or nothing: one transaction; an error names the input it came from.
                let created = write(&ctx, Access::Write, move |tx, kith| {
                    let (name, inputs) = (name.clone(), inputs.clone());
                    Box::pin(async move {
                        let mut out = Vec::with_capacity(inputs.len());
                        for (i, input) in inputs.into_iter().enumerate() {
                            let res = if upsert {
                                record_service::upsert(tx, &kith.registry(), &name, input).await.map(|(r, _)| r)
                            } else {
                                record_service::create_final(tx, &kith.registry(), &name, input).await
                            };
                            out.push(res.map_err(|e| prefix_field(e, i))?);
                        }
                        Ok(out)
                    })
                })
                .await?;
                Ok(Some(FieldValue::list(created.into_iter().map(FieldValue::owned_any))))
            })
        }))
        .description("Creates several records in one transaction (all or nothing); with `upsert`, records whose unique key (e-mail, domain) exists are updated instead.")
        .argument(InputValue::new("inputs", TypeRef::named_nn_list_nn(format!("{t}CreateInput"))))
        .argument(InputValue::new("upsert", TypeRef::named(TypeRef::BOOLEAN))),
    );
    for (verb, restore) in [("delete", false), ("restore", true)] {
        let d = def.clone();
        mutation = mutation.field(
            Field::new(
                format!("{verb}{t}"),
                TypeRef::named_nn(t.clone()),
                guarded(Access::Manage, move |ctx| {
                    let def = d.clone();
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "id")?;
                        let name = def.name.clone();
                        let record = write(&ctx, Access::Manage, move |tx, kith| {
                            let name = name.clone();
                            Box::pin(async move {
                                if restore {
                                    record_service::restore(tx, &kith.registry(), &name, id).await
                                } else {
                                    record_service::delete(tx, &kith.registry(), &name, id).await
                                }
                            })
                        })
                        .await?;
                        Ok(Some(FieldValue::owned_any(record)))
                    })
                }),
            )
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        );
    }
    mutation
}

fn workflow_mutations(mut mutation: Object) -> Object {
    mutation = mutation.field(
        Field::new(
            "moveDeal",
            TypeRef::named_nn("Deal"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let (id, stage, version) =
                        (arg_id(&ctx, "id")?, arg_id(&ctx, "stageId")?, arg_opt_i64(&ctx, "expectedVersion")?);
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        Box::pin(async move { workflow::move_deal(tx, &k.registry(), id, stage, version).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("stageId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
    );
    mutation = mutation.field(
        Field::new(
            "closeDeal",
            TypeRef::named_nn("Deal"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let id = arg_id(&ctx, "id")?;
                    let won = ctx.args.try_get("outcome")?.enum_name()? == "WON";
                    let reason = arg_opt_string(&ctx, "reason")?;
                    let version = arg_opt_i64(&ctx, "expectedVersion")?;
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        let reason = reason.clone();
                        Box::pin(async move { workflow::close_deal(tx, &k.registry(), id, won, reason, version).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("outcome", TypeRef::named_nn("DealOutcome")))
        .argument(InputValue::new("reason", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
    );
    mutation = mutation.field(
        Field::new(
            "changeTicketStatus",
            TypeRef::named_nn("Ticket"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let id = arg_id(&ctx, "id")?;
                    let status = ctx.args.try_get("status")?.enum_name()?.to_owned();
                    let version = arg_opt_i64(&ctx, "expectedVersion")?;
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        let status = status.clone();
                        Box::pin(async move { workflow::change_status(tx, &k.registry(), id, &status, version).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("status", TypeRef::named_nn("TicketStatus")))
        .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
    );
    mutation = mutation.field(
        Field::new(
            "assignTicket",
            TypeRef::named_nn("Ticket"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let (id, assignee, version) =
                        (arg_id(&ctx, "id")?, arg_opt_id(&ctx, "assigneeId")?, arg_opt_i64(&ctx, "expectedVersion")?);
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        Box::pin(async move { workflow::assign(tx, &k.registry(), id, assignee, version).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("assigneeId", TypeRef::named(TypeRef::ID)))
        .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
    );
    mutation = mutation.field(
        Field::new(
            "addTicketComment",
            TypeRef::named_nn("TicketComment"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let id = arg_id(&ctx, "ticketId")?;
                    let body = ctx.args.try_get("body")?.string()?.to_owned();
                    let public = arg_opt_bool(&ctx, "public")?.unwrap_or(true);
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        let body = body.clone();
                        Box::pin(async move { workflow::add_comment(tx, &k.registry(), id, &body, public).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("ticketId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("body", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("public", TypeRef::named(TypeRef::BOOLEAN))),
    );
    mutation = mutation.field(
        Field::new(
            "rateTicket",
            TypeRef::named_nn("Ticket"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let id = arg_id(&ctx, "id")?;
                    let rating = ctx.args.try_get("rating")?.i64()?;
                    let comment = arg_opt_string(&ctx, "comment")?;
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        let comment = comment.clone();
                        Box::pin(async move { workflow::rate(tx, &k.registry(), id, rating, comment).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("rating", TypeRef::named_nn(TypeRef::INT)))
        .argument(InputValue::new("comment", TypeRef::named(TypeRef::STRING))),
    );
    mutation = mutation.field(
        Field::new(
            "completeTask",
            TypeRef::named_nn("Activity"),
            guarded(Access::Write, |ctx| {
                FieldFuture::new(async move {
                    let id = arg_id(&ctx, "id")?;
                    let r = write(&ctx, Access::Write, move |tx, k| {
                        Box::pin(async move { workflow::complete_task(tx, &k.registry(), id).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
    );
    mutation = mutation.field(
        Field::new(
            "mergeContacts",
            TypeRef::named_nn("Contact"),
            guarded(Access::Manage, |ctx| {
                FieldFuture::new(async move {
                    let (keep, merge) = (arg_id(&ctx, "keepId")?, arg_id(&ctx, "mergeId")?);
                    let r = write(&ctx, Access::Manage, move |tx, k| {
                        Box::pin(async move { workflow::merge_contacts(tx, &k.registry(), keep, merge).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(r)))
                })
            }),
        )
        .argument(InputValue::new("keepId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("mergeId", TypeRef::named_nn(TypeRef::ID))),
    );
    mutation.field(
        Field::new("login", TypeRef::named_nn("Session"), |ctx| {
            FieldFuture::new(async move {
                let email = ctx.args.try_get("email")?.string()?.to_owned();
                let password = ctx.args.try_get("password")?.string()?.to_owned();
                let client = ctx.data_opt::<crate::api::auth::ClientAddr>().and_then(|c| c.0);
                let (token, info) = users::login(kith(&ctx)?, client, &email, &password).await.map_err(to_gql)?;
                let mut map = async_graphql::indexmap::IndexMap::new();
                map.insert(Name::new("token"), GqlValue::String(token));
                map.insert(Name::new("role"), GqlValue::Enum(Name::new(info.role.as_str())));
                map.insert(
                    Name::new("expiresAt"),
                    info.expires_at
                        .map(|t| GqlValue::String(crate::domain::value::format_datetime(t)))
                        .unwrap_or(GqlValue::Null),
                );
                Ok(Some(FieldValue::value(GqlValue::Object(map))))
            })
        })
        .argument(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("password", TypeRef::named_nn(TypeRef::STRING))),
    )
}

pub(crate) fn obj(pairs: Vec<(&str, GqlValue)>) -> GqlValue {
    let mut map = async_graphql::indexmap::IndexMap::new();
    for (k, v) in pairs {
        map.insert(Name::new(k), v);
    }
    GqlValue::Object(map)
}

fn custom_field_value(def: &crate::domain::custom_field::CustomFieldDef) -> GqlValue {
    obj(vec![
        ("object", GqlValue::String(def.object.clone())),
        ("key", GqlValue::String(def.key.clone())),
        ("label", GqlValue::String(def.label.clone())),
        ("kind", GqlValue::Enum(Name::new(&def.kind))),
        ("required", GqlValue::Boolean(def.required)),
        ("options", GqlValue::List(def.options.iter().cloned().map(GqlValue::String).collect())),
    ])
}

/// Admin and audit operations: the audit log, custom fields, users and tokens.
fn admin_fields(mut query: Object, mut mutation: Object) -> (Object, Object) {
    query = query.field(
        Field::new("auditLog", TypeRef::named_nn_list_nn("AuditEntry"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Manage)?;
                let object = ctx.args.try_get("object")?.string()?.to_owned();
                let id = arg_opt_id(&ctx, "id")?;
                let (default, most) = crate::api::cost::AUDIT_LOG_FIRST;
                let limit = arg_opt_i64(&ctx, "first")?.unwrap_or(default).clamp(1, most) as u64;
                let entries =
                    crate::store::audit::list(kith(&ctx)?.store.conn(), &object, id, limit).await.map_err(to_gql)?;
                let values = entries.into_iter().map(|e| {
                    FieldValue::value(obj(vec![
                        ("occurredAt", GqlValue::String(e.occurred_at.to_string())),
                        ("actorKind", GqlValue::String(e.actor_kind)),
                        ("actorId", e.actor_id.map(GqlValue::String).unwrap_or(GqlValue::Null)),
                        ("actorName", GqlValue::String(e.actor_name)),
                        ("action", GqlValue::String(e.action)),
                        ("object", GqlValue::String(e.object)),
                        ("recordId", e.record_id.map(|id| GqlValue::String(id.to_string())).unwrap_or(GqlValue::Null)),
                        ("changes", GqlValue::from_json(e.changes).unwrap_or(GqlValue::Null)),
                    ]))
                });
                Ok(Some(FieldValue::list(values.collect::<Vec<_>>())))
            })
        })
        .argument(InputValue::new("object", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("id", TypeRef::named(TypeRef::ID)))
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
                let types: Vec<String> = match ctx.args.get("types").filter(|v| !v.is_null()) {
                    Some(list) => list.list()?.iter().map(|v| v.enum_name().map(|n| n.to_ascii_lowercase())).collect::<Result<_, _>>()?,
                    None => Vec::new(),
                };
                let hits = crate::store::search::search(kith(&ctx)?.store.conn(), &text, &types, limit).await.map_err(to_gql)?;
                let values = hits.into_iter().map(|h| {
                    FieldValue::value(obj(vec![
                        ("object", GqlValue::Enum(Name::new(h.object.to_ascii_uppercase()))),
                        ("recordId", GqlValue::String(h.record_id.to_string())),
                        ("title", GqlValue::String(h.title)),
                        ("score", GqlValue::from_json(serde_json::json!(h.score)).unwrap_or(GqlValue::Null)),
                    ]))
                });
                Ok(Some(FieldValue::list(values.collect::<Vec<_>>())))
            })
        })
        .description("Ranked full-text search over contacts, companies, deals and tickets; every word must match (prefixes count).")
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
    query = query.field(
        Field::new("customFields", TypeRef::named_nn_list_nn("CustomField"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Read)?;
                let object = ctx.args.try_get("object")?.string()?.to_owned();
                let defs = custom_fields::for_object(kith(&ctx)?.store.conn(), &object).await.map_err(to_gql)?;
                Ok(Some(FieldValue::list(
                    defs.iter().map(|d| FieldValue::value(custom_field_value(d))).collect::<Vec<_>>(),
                )))
            })
        })
        .argument(InputValue::new("object", TypeRef::named_nn(TypeRef::STRING))),
    );
    mutation = mutation.field(
        Field::new(
            "defineCustomField",
            TypeRef::named_nn("CustomField"),
            guarded(Access::Admin, |ctx| {
                FieldFuture::new(async move {
                    let options = match arg_json(&ctx, "options") {
                        Some(Json::Array(items)) => {
                            items.into_iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
                        }
                        _ => Vec::new(),
                    };
                    let def = crate::domain::custom_field::CustomFieldDef {
                        object: ctx.args.try_get("object")?.string()?.to_owned(),
                        key: ctx.args.try_get("key")?.string()?.to_owned(),
                        label: ctx.args.try_get("label")?.string()?.to_owned(),
                        kind: ctx.args.try_get("kind")?.enum_name()?.to_owned(),
                        required: arg_opt_bool(&ctx, "required")?.unwrap_or(false),
                        options,
                    };
                    let value = custom_field_value(&def);
                    write(&ctx, Access::Admin, move |tx, _| {
                        let def = def.clone();
                        Box::pin(async move { record_service::define_custom_field(tx, &def).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::value(value)))
                })
            }),
        )
        .argument(InputValue::new("object", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("key", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("label", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("kind", TypeRef::named_nn("CustomFieldKind")))
        .argument(InputValue::new("required", TypeRef::named(TypeRef::BOOLEAN)))
        .argument(InputValue::new("options", TypeRef::named_nn_list(TypeRef::STRING))),
    );
    mutation = mutation.field(
        Field::new(
            "createUser",
            TypeRef::named_nn("User"),
            guarded(Access::Admin, |ctx| {
                FieldFuture::new(async move {
                    let email = ctx.args.try_get("email")?.string()?.to_owned();
                    let name = ctx.args.try_get("name")?.string()?.to_owned();
                    let role: crate::domain::actor::Role = ctx
                        .args
                        .try_get("role")?
                        .enum_name()?
                        .parse()
                        .map_err(|e: crate::domain::DomainError| to_gql(e.into()))?;
                    let password = arg_opt_string(&ctx, "password")?;
                    let user = write(&ctx, Access::Admin, move |tx, k| {
                        let (email, name, password) = (email.clone(), name.clone(), password.clone());
                        Box::pin(async move {
                            users::create_user(tx, &k.registry(), &email, &name, role, password.as_deref()).await
                        })
                    })
                    .await?;
                    Ok(Some(FieldValue::owned_any(user)))
                })
            }),
        )
        .argument(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("role", TypeRef::named_nn("UserRole")))
        .argument(InputValue::new("password", TypeRef::named(TypeRef::STRING))),
    );
    mutation = mutation.field(
        Field::new(
            "createApiToken",
            TypeRef::named_nn(TypeRef::STRING),
            guarded(Access::Admin, |ctx| {
                FieldFuture::new(async move {
                    let name = ctx.args.try_get("name")?.string()?.to_owned();
                    let role: crate::domain::actor::Role = ctx
                        .args
                        .try_get("role")?
                        .enum_name()?
                        .parse()
                        .map_err(|e: crate::domain::DomainError| to_gql(e.into()))?;
                    let days = arg_opt_i64(&ctx, "expiresInDays")?;
                    let (_, secret) = write(&ctx, Access::Admin, move |tx, _| {
                        let name = name.clone();
                        Box::pin(async move { users::create_token(tx, &name, role, None, days).await })
                    })
                    .await?;
                    Ok(Some(FieldValue::value(GqlValue::String(secret))))
                })
            }),
        )
        .description("Creates an API token and returns it; it is shown only this once.")
        .argument(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("role", TypeRef::named_nn("UserRole")))
        .argument(InputValue::new("expiresInDays", TypeRef::named(TypeRef::INT))),
    );
    mutation = mutation.field(
        Field::new(
            "revokeApiToken",
            TypeRef::named_nn(TypeRef::INT),
            guarded(Access::Admin, |ctx| {
                FieldFuture::new(async move {
                    let token = ctx.args.try_get("idOrName")?.string()?.to_owned();
                    let ids = write(&ctx, Access::Admin, move |tx, _| {
                        let token = token.clone();
                        Box::pin(async move { users::revoke_token(tx, &token).await })
                    })
                    .await?;
                    kith(&ctx)?.auth_cache.clear();
                    Ok(Some(FieldValue::value(GqlValue::Number((ids.len() as u64).into()))))
                })
            }),
        )
        .argument(InputValue::new("idOrName", TypeRef::named_nn(TypeRef::STRING))),
    );
    (query, mutation)
}

/// `recordChanged(object)`: every committed change, live, for views that must stay current.
fn subscription() -> async_graphql::dynamic::Subscription {
    use async_graphql::dynamic::{Subscription, SubscriptionField, SubscriptionFieldFuture};
    Subscription::new("Subscription").field(
        SubscriptionField::new("recordChanged", TypeRef::named_nn("RecordChange"), |ctx| {
            SubscriptionFieldFuture::new(async move {
                let role = authorize(&ctx, Access::Read)?.role;
                let object = arg_opt_string(&ctx, "object")?;
                let kith = kith(&ctx)?.clone();
                if let Some(object) = &object
                    && !role.allows(crate::service::events::read_role(&kith.registry(), object))
                {
                    return Err(coded(Code::Forbidden, format!("your role may not read `{object}` records")));
                }
                let receiver = kith.events.subscribe();
                let stream = futures_util::stream::unfold(receiver, move |mut receiver| {
                    let object = object.clone();
                    let kith = kith.clone();
                    async move {
                        loop {
                            match receiver.recv().await {
                                // Only what the caller's role may read through queries (the
                                // registry of the moment: a plugin's objects come and go).
                                Ok(event)
                                    if object.as_deref().is_none_or(|o| o == event.object)
                                        && role.allows(crate::service::events::read_role(
                                            &kith.registry(),
                                            &event.object,
                                        )) =>
                                {
                                    let value = obj(vec![
                                        ("seq", GqlValue::String(event.seq.to_string())),
                                        ("kind", GqlValue::String(event.kind.clone())),
                                        ("object", GqlValue::String(event.object.clone())),
                                        (
                                            "recordId",
                                            event
                                                .record_id
                                                .map(|id| GqlValue::String(id.to_string()))
                                                .unwrap_or(GqlValue::Null),
                                        ),
                                        ("actor", GqlValue::String(event.actor.clone())),
                                        (
                                            "payload",
                                            GqlValue::from_json(event.payload.clone()).unwrap_or(GqlValue::Null),
                                        ),
                                    ]);
                                    return Some((Ok::<_, async_graphql::Error>(FieldValue::value(value)), receiver));
                                }
                                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                            }
                        }
                    }
                });
                Ok(stream)
            })
        })
        .description("Every committed change (of one object when `object` is given: `contact`, `deal`, ...).")
        .argument(InputValue::new("object", TypeRef::named(TypeRef::STRING))),
    )
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
                Ok(Some(FieldValue::value(value)))
            })
        }));
    }
    object
}

/// Builds the schema for `registry`.
/// `services` may be `None` to build the schema only for its SDL.
pub fn build_schema(registry: &Registry, services: Option<Kith>, limits: ApiConfig) -> Result<Schema, SchemaError> {
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
        builder = builder.register(scalar_filter(scalar, text, ordered));
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
        for object in object_type(def, registry, limits) {
            builder = builder.register(object);
        }
        for field in &def.fields {
            if let FieldKind::Enum(values) = &field.kind {
                let name = enum_name(def, field);
                builder = builder.register(Enum::new(name.clone()).items(values.iter().map(String::as_str)));
                builder = builder.register(scalar_filter(&name, false, false));
            }
        }
        let sort_fields = def.fields.iter().filter(|f| f.kind != FieldKind::Json).map(|f| f.name.as_str());
        builder = builder
            .register(filter_input(def))
            .register(Enum::new(format!("{}SortField", def.type_name)).items(sort_fields))
            .register(
                InputObject::new(format!("{}OrderBy", def.type_name))
                    .field(InputValue::new("field", TypeRef::named(format!("{}SortField", def.type_name))))
                    .field(InputValue::new("customField", TypeRef::named(TypeRef::STRING)))
                    .field(InputValue::new("direction", TypeRef::named("SortDirection")))
                    .field(InputValue::new("nulls", TypeRef::named("NullsOrder"))),
            );
        if MUTABLE.contains(&def.name.as_str()) || def.plugin.is_some() {
            builder = builder.register(write_input(def, true)).register(write_input(def, false));
            mutation = mutations(def, mutation);
        }
        let d = def.clone();
        query = query.field(
            Field::new(def.name.clone(), TypeRef::named(def.type_name.clone()), move |ctx| {
                let def = d.clone();
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Read)?;
                    let id = arg_id(&ctx, "id")?;
                    // Only the selected fields (and what tells a deleted record) are read.
                    let base = vec!["id".to_owned(), "deletedAt".to_owned()];
                    let fields = selected_fields(ctx.look_ahead().selection_fields(), &def, base);
                    match records::get_live_fields(kith(&ctx)?.store.conn(), &def, id, fields.as_deref()).await {
                        Ok(record) => Ok(Some(FieldValue::owned_any(record))),
                        Err(crate::error::Error::Domain(crate::domain::DomainError::NotFound { .. })) => Ok(None),
                        Err(e) => Err(to_gql(e)),
                    }
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        );
        query = query.field(connection_field(def.plural.clone(), def.clone(), None, limits));
    }
    mutation = workflow_mutations(mutation);
    let (query, mutation) = admin_fields(query, mutation);
    let (registered, query, mutation) = crate::api::plugins::register(builder, query, mutation);
    let (registered, query, mutation) = crate::api::extension::register(registered, query, mutation, registry);
    builder = registered;
    builder = builder.register(subscription()).register(value_object(
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
        .register(
            Object::new("SegmentMemberConnection")
                .field(Field::new("edges", TypeRef::named_nn_list_nn("SegmentMemberEdge"), |ctx| {
                    FieldFuture::new(async move {
                        let connection = ctx.parent_value.try_downcast_ref::<Connection>()?;
                        let type_name = connection.def.type_name.clone();
                        let edges = connection.page.records.iter().map(|(cursor, record)| {
                            FieldValue::owned_any((cursor.clone(), record.clone(), type_name.clone()))
                        });
                        Ok(Some(FieldValue::list(edges)))
                    })
                }))
                .field(Field::new("pageInfo", TypeRef::named_nn("PageInfo"), |ctx| {
                    FieldFuture::new(async move {
                        let connection = ctx.parent_value.try_downcast_ref::<Connection>()?;
                        Ok(Some(FieldValue::value(page_info(&connection.page))))
                    })
                }))
                .field(Field::new("totalCount", TypeRef::named_nn(TypeRef::INT), |ctx| {
                    FieldFuture::new(async move {
                        let connection = ctx.parent_value.try_downcast_ref::<Connection>()?;
                        let n = records::count(kith(&ctx)?.store.conn(), &connection.def, &connection.filter, false)
                            .await
                            .map_err(to_gql)?;
                        Ok(Some(FieldValue::value(GqlValue::Number(n.into()))))
                    })
                })),
        )
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
        .register(Enum::new("SearchType").items(["CONTACT", "COMPANY", "DEAL", "TICKET"]))
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
            ],
        ));
    builder = builder
        .register(query)
        .register(mutation)
        .limit_depth(limits.max_depth)
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

/// The GraphQL names an object brings: its types, its query fields and its mutation fields
/// (as `build_schema` derives them).
pub fn object_names(def: &ObjectDef) -> (Vec<String>, Vec<String>, Vec<String>) {
    let t = &def.type_name;
    let mut types: Vec<String> =
        ["", "Connection", "Edge", "Filter", "SortField", "OrderBy", "CreateInput", "UpdateInput"]
            .iter()
            .map(|suffix| format!("{t}{suffix}"))
            .collect();
    for field in &def.fields {
        if matches!(field.kind, FieldKind::Enum(_)) {
            let name = enum_name(def, field);
            types.push(format!("{name}Filter"));
            types.push(name);
        }
    }
    let queries = vec![def.name.clone(), def.plural.clone()];
    let mutations = ["create", "update", "delete", "restore"]
        .iter()
        .map(|verb| format!("{verb}{t}"))
        .chain([format!("create{}", upper_first(&def.plural))])
        .collect();
    (types, queries, mutations)
}

/// Type names and, per type, field names, read back from SDL.
pub(crate) fn sdl_names(sdl: &str) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in sdl.lines() {
        let trimmed = line.trim();
        let mut words = trimmed.split_whitespace();
        match words.next() {
            Some("type" | "input" | "enum" | "scalar" | "union" | "interface")
                if !line.starts_with(char::is_whitespace) =>
            {
                let name: String =
                    words.next().unwrap_or_default().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.entry(name.clone()).or_default();
                current = trimmed.ends_with('{').then_some(name);
            }
            Some("}") => current = None,
            Some(word) if line.starts_with(char::is_whitespace) => {
                if let Some(ty) = &current {
                    let field: String = word.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !field.is_empty() {
                        out.entry(ty.clone()).or_default().insert(field);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Refuses objects whose GraphQL names (types, query and mutation fields, the reverse relations
/// they add to the objects they reference) are taken in the schema of `base`, or clash among
/// themselves. The message names the clash.
pub fn check_additions(base: &Registry, added: &[ObjectDef]) -> Result<(), String> {
    let schema = build_schema(base, None, ApiConfig::default()).map_err(|e| e.0)?;
    let names = sdl_names(&schema.sdl());
    let empty = std::collections::BTreeSet::new();
    let mut taken_types: std::collections::BTreeSet<String> = names.keys().cloned().collect();
    let mut taken_queries = names.get("Query").unwrap_or(&empty).clone();
    let mut taken_mutations = names.get("Mutation").unwrap_or(&empty).clone();
    let mut relations: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for def in added {
        let (types, queries, mutations) = object_names(def);
        for ty in types {
            if !taken_types.insert(ty.clone()) {
                return Err(format!("object `{}` needs the GraphQL type `{ty}`, which exists already", def.name));
            }
        }
        for q in queries {
            if !taken_queries.insert(q.clone()) {
                return Err(format!("object `{}` needs the query `{q}`, which exists already", def.name));
            }
        }
        for m in mutations {
            if !taken_mutations.insert(m.clone()) {
                return Err(format!("object `{}` needs the mutation `{m}`, which exists already", def.name));
            }
        }
    }
    // Reverse relations land on the referenced type (`Contact.donations`).
    let mut all = base.clone();
    all.extend(added.to_vec())?;
    for def in added {
        let refs: Vec<(&FieldDef, &str)> = def.references().collect();
        for (field, target) in &refs {
            let Some(target_def) = all.get(target) else { continue };
            let same_target = refs.iter().filter(|(_, t)| t == target).count();
            let name = if same_target == 1 {
                def.plural.clone()
            } else {
                format!("{}By{}", def.plural, upper_first(field.name.trim_end_matches("Id")))
            };
            let existing = names.get(&target_def.type_name).unwrap_or(&empty);
            let fresh = relations.entry(target_def.type_name.clone()).or_default();
            if existing.contains(&name) || !fresh.insert(name.clone()) {
                return Err(format!(
                    "object `{}` would add `{}.{name}`, which exists already",
                    def.name, target_def.type_name
                ));
            }
        }
    }
    Ok(())
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

/// Keeps the coded-error helper reachable for HTTP-level errors.
pub fn error_response(code: Code, message: &str) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![
        coded(code, message.to_owned()).into_server_error(async_graphql::Pos::default()),
    ])
}
