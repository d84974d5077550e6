//! What plugins add to the GraphQL schema besides objects: their output types and enums,
//! computed fields on objects (resolved for a whole page in one plugin call through a
//! DataLoader), and their queries and mutations (arguments checked against the declared types
//! before the plugin sees them, results checked against the declared type before the caller
//! does, the declared role enforced).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, SchemaBuilder, TypeRef,
};
use async_graphql::{ErrorExtensions, Name, Value as GqlValue};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::api::error::coded;
use crate::domain::actor::Actor;
use crate::domain::code::Code;
use crate::domain::extension::{ComputedField, Extension, OperationKind, TypeExpr, check_value};
use crate::domain::object::{ObjectDef, Registry};
use crate::service::Kith;

fn type_ref(ty: &TypeExpr) -> TypeRef {
    let name = ty.name.clone();
    match (ty.list, ty.non_null) {
        (None, false) => TypeRef::named(name),
        (None, true) => TypeRef::named_nn(name),
        (Some(false), false) => TypeRef::named_list(name),
        (Some(true), false) => TypeRef::named_nn_list(name),
        (Some(false), true) => TypeRef::named_list_nn(name),
        (Some(true), true) => TypeRef::named_nn_list_nn(name),
    }
}

/// Turns a checked JSON value into GraphQL output of `ty` (enum values become enum names).
fn to_output(extension: &Extension, ty: &TypeExpr, value: Json) -> GqlValue {
    if value.is_null() {
        return GqlValue::Null;
    }
    if let (Some(item_non_null), Json::Array(items)) = (ty.list, &value) {
        let item_ty = TypeExpr { name: ty.name.clone(), list: None, non_null: item_non_null };
        return GqlValue::List(items.iter().map(|item| to_output(extension, &item_ty, item.clone())).collect());
    }
    if extension.enum_def(&ty.name).is_some() {
        return match value {
            Json::String(s) => GqlValue::Enum(Name::new(s)),
            _ => GqlValue::Null,
        };
    }
    if let Some(def) = extension.types.iter().find(|t| t.name == ty.name) {
        let mut map = async_graphql::indexmap::IndexMap::new();
        if let Json::Object(mut fields) = value {
            for (field, field_ty) in &def.fields {
                let field_value = fields.remove(field).unwrap_or(Json::Null);
                map.insert(Name::new(field), to_output(extension, field_ty, field_value));
            }
        }
        return GqlValue::Object(map);
    }
    GqlValue::from_json(value).unwrap_or(GqlValue::Null)
}

fn plugin_runtime(kith: &Kith, plugin: &str) -> async_graphql::Result<Arc<crate::plugin::runtime::LoadedPlugin>> {
    crate::plugin::PluginManager::of(kith)
        .and_then(|manager| manager.loaded(plugin))
        .filter(|p| p.active)
        .ok_or_else(|| coded(Code::Unavailable, format!("the plugin `{plugin}` is not running in this Kith process")))
}

/// A computed field of one record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComputedKey {
    /// The plugin that computes it.
    pub plugin: Arc<str>,
    /// The object.
    pub object: Arc<str>,
    /// The field.
    pub field: Arc<str>,
    /// The record.
    pub id: Uuid,
}

/// Batches computed fields: every `Contact.loyaltyTier` of a page is one plugin call.
pub struct ComputedLoader {
    /// Core services.
    pub kith: Kith,
}

/// One plugin call for `field` of `object` over `ids`: the values in order, as JSON.
async fn compute(
    kith: &Kith,
    plugin: &str,
    object: &str,
    field: &str,
    ids: &[Uuid],
) -> Result<Vec<Json>, Arc<async_graphql::Error>> {
    let runtime = plugin_runtime(kith, plugin).map_err(Arc::new)?;
    let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let fail = |message: String| Arc::new(coded(Code::PluginFailed, message));
    let called = runtime.call_compute_field(object, field, &texts).await;
    if let Some(manager) = crate::plugin::PluginManager::of(kith) {
        manager.note_outcome(&runtime, called.as_ref().err(), &format!("computing `{field}`"));
    }
    let values = match called {
        Ok(Ok(values)) => values,
        Ok(Err(reason)) => {
            let reason = crate::plugin::output::for_caller(&reason);
            return Err(fail(format!("the plugin `{plugin}` could not compute `{field}`: {reason}")));
        }
        Err(failure) => {
            tracing::warn!(plugin = %plugin, field = %field, error = %failure, "computed field failed");
            return Err(fail(format!("the plugin `{plugin}` failed computing `{field}`: {failure}")));
        }
    };
    if values.len() != ids.len() {
        return Err(fail(format!(
            "the plugin `{plugin}` returned {} values of `{field}` for {} records",
            values.len(),
            ids.len()
        )));
    }
    values
        .iter()
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|_| fail(format!("the plugin `{plugin}` returned a `{field}` that is not JSON")))
        })
        .collect()
}

impl Loader<ComputedKey> for ComputedLoader {
    type Value = Json;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[ComputedKey]) -> Result<HashMap<ComputedKey, Json>, Self::Error> {
        // (plugin, object, field) → the ids of this tick.
        type Group = (Arc<str>, Arc<str>, Arc<str>);
        let mut groups: BTreeMap<Group, Vec<Uuid>> = BTreeMap::new();
        for key in keys {
            groups.entry((key.plugin.clone(), key.object.clone(), key.field.clone())).or_default().push(key.id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((plugin, object, field), ids) in groups {
            let values = compute(&self.kith, &plugin, &object, &field, &ids).await?;
            for (id, value) in ids.into_iter().zip(values) {
                out.insert(
                    ComputedKey { plugin: plugin.clone(), object: object.clone(), field: field.clone(), id },
                    value,
                );
            }
        }
        Ok(out)
    }
}

/// Computed values fetched ahead for a whole page by its connection (per request).
#[derive(Debug, Default)]
pub struct ComputedCache(std::sync::Mutex<HashMap<ComputedKey, Result<Json, Arc<async_graphql::Error>>>>);

/// Called by a connection once its page is read: every computed field the query selects on
/// its nodes is fetched for the whole page in one plugin call now, instead of through the
/// DataLoader (which waits for its batching delay). A failure is kept for each record's field
/// to report: the plugin is not called again for the same page (a failing plugin would
/// otherwise cost its budget twice, and count two failures).
pub async fn prefetch(ctx: &ResolverContext<'_>, def: &ObjectDef, ids: &[Uuid]) {
    if ids.is_empty() {
        return;
    }
    let (Ok(kith), Ok(cache)) = (crate::api::args::kith(ctx), ctx.data::<ComputedCache>()) else { return };
    let registry = kith.registry();
    for extension in registry.extensions() {
        for field in extension.fields.iter().filter(|f| f.object == def.name) {
            if !ctx.look_ahead().field("edges").field("node").field(&field.name).exists() {
                continue;
            }
            let computed = compute(kith, &extension.plugin, &field.object, &field.name, ids).await;
            let plugin: Arc<str> = Arc::from(extension.plugin.as_str());
            let (object, name): (Arc<str>, Arc<str>) =
                (Arc::from(field.object.as_str()), Arc::from(field.name.as_str()));
            let mut cache = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let key =
                |id: Uuid| ComputedKey { plugin: plugin.clone(), object: object.clone(), field: name.clone(), id };
            match computed {
                Ok(values) => {
                    for (id, value) in ids.iter().zip(values) {
                        cache.insert(key(*id), Ok(value));
                    }
                }
                Err(err) => {
                    for id in ids {
                        cache.insert(key(*id), Err(err.clone()));
                    }
                }
            }
        }
    }
}

/// The fields plugins compute on `def`, to add to its GraphQL type.
pub fn computed_fields(def: &ObjectDef, registry: &Registry) -> Vec<Field> {
    let mut out = Vec::new();
    for extension in registry.extensions() {
        for field in extension.fields.iter().filter(|f| f.object == def.name) {
            out.push(computed_field(extension.clone(), field.clone()));
        }
    }
    out
}

fn computed_field(extension: Arc<Extension>, field: ComputedField) -> Field {
    let ty = type_ref(&field.ty);
    let description = if field.description.is_empty() {
        format!("Computed by the plugin `{}`.", extension.plugin)
    } else {
        format!("{} (Computed by the plugin `{}`.)", field.description, extension.plugin)
    };
    let field = Arc::new(field);
    Field::new(field.name.clone(), ty, move |ctx| {
        let extension = extension.clone();
        let field = field.clone();
        FieldFuture::new(async move {
            let record = crate::api::object::record_of(&ctx)?;
            let key = ComputedKey {
                plugin: Arc::from(extension.plugin.as_str()),
                object: Arc::from(field.object.as_str()),
                field: Arc::from(field.name.as_str()),
                id: record.id(),
            };
            let cached = ctx
                .data_opt::<ComputedCache>()
                .and_then(|cache| cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key));
            let value = match cached {
                Some(Ok(value)) => value,
                Some(Err(err)) => return Err((*err).clone()),
                None => {
                    let loader = ctx.data::<DataLoader<ComputedLoader>>()?;
                    loader.load_one(key).await.map_err(|e| (*e).clone())?.unwrap_or(Json::Null)
                }
            };
            checked_output(&extension, &field.ty, value, &field.name).map(some_value)
        })
    })
    .description(description)
}

/// A plugin's answer as a field's value: null as no value at all. async-graphql takes
/// `FieldValue::value(Null)` for a value, so a null object would answer as an object of nulls
/// (and a non-null field inside it as an error) instead of `null`.
fn some_value(value: GqlValue) -> Option<FieldValue<'static>> {
    (value != GqlValue::Null).then(|| FieldValue::value(value))
}

/// Checks a plugin's answer against its declared type, then converts it.
fn checked_output(extension: &Extension, ty: &TypeExpr, value: Json, what: &str) -> async_graphql::Result<GqlValue> {
    if let Err(reason) = check_value(extension, ty, &value, what) {
        tracing::warn!(plugin = %extension.plugin, %reason, "a plugin answered with the wrong type");
        let plugin = extension.plugin.clone();
        return Err(coded(
            Code::PluginFailed,
            format!("the plugin `{}` answered `{what}` with a value that is not a {ty}: {reason}", extension.plugin),
        )
        .extend_with(move |_, ext| ext.set("plugin", plugin.clone())));
    }
    Ok(to_output(extension, ty, value))
}

/// Registers every plugin's types and enums, and adds its operations to `Query` / `Mutation`.
pub fn register(
    mut builder: SchemaBuilder,
    mut query: Object,
    mut mutation: Object,
    registry: &Registry,
) -> (SchemaBuilder, Object, Object) {
    for extension in registry.extensions() {
        for def in &extension.enums {
            let mut e = Enum::new(def.name.clone()).items(def.values.iter().map(String::as_str));
            if !def.description.is_empty() {
                e = e.description(def.description.clone());
            }
            builder = builder.register(e);
        }
        for def in &extension.types {
            let mut object = Object::new(def.name.clone());
            if !def.description.is_empty() {
                object = object.description(def.description.clone());
            }
            for (name, ty) in &def.fields {
                let key = name.clone();
                object = object.field(Field::new(name.clone(), type_ref(ty), move |ctx| {
                    let key = key.clone();
                    FieldFuture::new(async move {
                        let value = match ctx.parent_value.try_to_value()? {
                            GqlValue::Object(map) => map.get(key.as_str()).cloned().unwrap_or(GqlValue::Null),
                            _ => GqlValue::Null,
                        };
                        // Null as no value (`some_value`): an enum field refused
                        // `FieldValue::value(Null)` ("invalid item for enum").
                        Ok(some_value(value))
                    })
                }));
            }
            builder = builder.register(object);
        }
        for (index, operation) in extension.operations.iter().enumerate() {
            let field = operation_field(extension.clone(), index);
            match operation.kind {
                OperationKind::Query => query = query.field(field),
                OperationKind::Mutation => mutation = mutation.field(field),
            }
        }
    }
    (builder, query, mutation)
}

fn operation_field(extension: Arc<Extension>, index: usize) -> Field {
    let operation = &extension.operations[index];
    let description = if operation.description.is_empty() {
        format!("Answered by the plugin `{}`; needs the {} role.", extension.plugin, operation.role)
    } else {
        format!(
            "{} (Answered by the plugin `{}`; needs the {} role.)",
            operation.description, extension.plugin, operation.role
        )
    };
    let arguments: Vec<InputValue> =
        operation.arguments.iter().map(|(name, ty)| InputValue::new(name.clone(), type_ref(ty))).collect();
    let (name, returns) = (operation.name.clone(), type_ref(&operation.returns));
    let mut field = Field::new(name, returns, move |ctx| {
        let extension = extension.clone();
        FieldFuture::new(async move { run_operation(&ctx, &extension, index).await.map(some_value) })
    })
    .description(description);
    for argument in arguments {
        field = field.argument(argument);
    }
    field
}

async fn run_operation(
    ctx: &ResolverContext<'_>,
    extension: &Extension,
    index: usize,
) -> async_graphql::Result<GqlValue> {
    let operation = &extension.operations[index];
    let actor = ctx
        .data_opt::<Actor>()
        .ok_or_else(|| coded(Code::Unauthenticated, "a valid `Authorization: Bearer <token>` header is required"))?;
    // GraphQL checked the shapes; `run_operation` checks the forms of Decimal, Date and
    // DateTime, the role, and the answer.
    let mut arguments = serde_json::Map::new();
    for name in operation.arguments.keys() {
        if let Some(value) = ctx.args.get(name) {
            arguments.insert(name.clone(), value.as_value().clone().into_json().unwrap_or(Json::Null));
        }
    }
    let kith = crate::api::args::kith(ctx)?;
    let outcome = crate::plugin::operation::run_operation(kith, extension, &operation.name, actor, &arguments).await;
    // A plugin mutation may have changed records a page read ahead.
    if let Ok(cache) = ctx.data::<crate::api::loader::Prefetched>() {
        cache.clear();
    }
    match outcome {
        Ok(value) => Ok(to_output(extension, &operation.returns, value)),
        Err(failure) => {
            let field = failure.field.clone();
            Err(async_graphql::Error::new(failure.message).extend_with(|_, ext| {
                ext.set("code", failure.code.as_str());
                if let Some(field) = &field {
                    ext.set("field", field.clone());
                }
            }))
        }
    }
}
