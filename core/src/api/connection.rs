//! Pages of records: `ts(filter, orderBy, first, after, last, before)` and the reverse
//! relations (`Company.contacts`), their `TConnection` / `TEdge` types, reading the arguments
//! into a `ListQuery`, and reading only the fields a query selects.

use std::sync::Arc;

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, TypeRef};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::api::args::{arg_json, arg_opt_i64, arg_opt_string, kith};
use crate::api::auth::{Access, authorize, check_field, check_list};
use crate::api::error::{bad_input, to_gql};
use crate::api::loader::{Prefetched, prefetch_relations};
use crate::api::object::record_of;
use crate::api::schema::obj;
use crate::config::ApiConfig;
use crate::domain::filter::{Condition, Filter, Op, OrderBy, Target};
use crate::domain::naming::{self, Suffix};
use crate::domain::object::ObjectDef;
use crate::domain::value::{FieldKind, Value};
use crate::store::custom_fields;
use crate::store::records::{self, ListQuery, Page, PageRequest, Record};

/// A page of records with what `totalCount` needs.
pub(crate) struct Connection {
    pub(crate) page: Page,
    pub(crate) def: Arc<ObjectDef>,
    pub(crate) filter: Filter,
}

/// Reads `filter`, `orderBy`, `first`, `after`, `last`, `before`.
pub(crate) async fn list_query(
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
    check_list(ctx, def, &filter, &order)?;
    Ok(ListQuery { filter, order, page, include_deleted: false })
}

/// Whether a filter or order argument names a custom field anywhere (as a key or a value).
pub(crate) fn mentions_custom(json: Option<&Json>) -> bool {
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

pub(crate) fn list_args(field: Field, def: &ObjectDef) -> Field {
    field
        .argument(InputValue::new("filter", TypeRef::named(naming::object_type(def, Suffix::Filter))))
        .argument(InputValue::new("orderBy", TypeRef::named_nn_list(naming::object_type(def, Suffix::OrderBy))))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)))
}

pub(crate) fn connection_field(name: String, def: Arc<ObjectDef>, reverse: Option<String>, limits: ApiConfig) -> Field {
    let type_name = naming::object_type(&def, Suffix::Connection);
    let field_def = def.clone();
    let field = Field::new(name, TypeRef::named_nn(type_name), move |ctx| {
        let def = def.clone();
        let reverse = reverse.clone();
        FieldFuture::new(async move {
            authorize(&ctx, Access::Read)?;
            let extra = match &reverse {
                Some(ref_field) => {
                    // A relation through a reference tells its value.
                    check_field(&ctx, &def, ref_field)?;
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
pub(crate) fn projection(ctx: &ResolverContext<'_>, def: &ObjectDef, order: &[OrderBy]) -> Option<Vec<String>> {
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
pub(crate) fn selected_fields<'a>(
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

/// `PageInfo` of a page.
pub(crate) fn page_info(page: &Page) -> GqlValue {
    obj(vec![
        ("hasNextPage", GqlValue::Boolean(page.has_next)),
        ("hasPreviousPage", GqlValue::Boolean(page.has_previous)),
        ("startCursor", page.records.first().map(|(c, _)| GqlValue::String(c.clone())).unwrap_or(GqlValue::Null)),
        ("endCursor", page.records.last().map(|(c, _)| GqlValue::String(c.clone())).unwrap_or(GqlValue::Null)),
    ])
}

/// `TConnection` and `TEdge` of an object.
pub(crate) fn types(def: &Arc<ObjectDef>) -> [Object; 2] {
    let connection = Object::new(naming::object_type(def, Suffix::Connection)).field(Field::new(
        "edges",
        TypeRef::named_nn_list_nn(naming::object_type(def, Suffix::Edge)),
        |ctx| match ctx.parent_value.try_downcast_ref::<Connection>() {
            Ok(connection) => {
                let edges = connection.page.records.iter().map(|edge| FieldValue::borrowed_any(edge));
                FieldFuture::Value(Some(FieldValue::list(edges)))
            }
            Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err) }),
        },
    ));
    let connection = with_page_fields(connection);
    let edge = Object::new(naming::object_type(def, Suffix::Edge))
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
    [connection, edge]
}

/// `pageInfo` and `totalCount` on a connection type whose values are [`Connection`]s (the
/// `totalCount` is one `COUNT`, only when selected).
pub(crate) fn with_page_fields(object: Object) -> Object {
    object
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
        }))
}
