//! Admin operations: custom field definitions, users and API tokens.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};
use async_graphql::{Name, Value as GqlValue};
use serde_json::Value as Json;

use crate::api::args::{arg_json, arg_opt_bool, arg_opt_i64, arg_opt_string, kith};
use crate::api::auth::{Access, authorize, guarded};
use crate::api::crud::write;
use crate::api::error::to_gql;
use crate::api::schema::obj;
use crate::service::{records as record_service, users};
use crate::store::custom_fields;

pub(crate) fn custom_field_value(def: &crate::domain::custom_field::CustomFieldDef) -> GqlValue {
    obj(vec![
        ("object", GqlValue::String(def.object.clone())),
        ("key", GqlValue::String(def.key.clone())),
        ("label", GqlValue::String(def.label.clone())),
        ("kind", GqlValue::Enum(Name::new(&def.kind))),
        ("required", GqlValue::Boolean(def.required)),
        ("options", GqlValue::List(def.options.iter().cloned().map(GqlValue::String).collect())),
    ])
}

/// Admin operations: custom fields, users and tokens.
pub(crate) fn register(mut query: Object, mut mutation: Object) -> (Object, Object) {
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
                    write(&ctx, Access::Admin, move |tx, kith| {
                        let def = def.clone();
                        Box::pin(async move { record_service::define_custom_field(tx, &kith.registry(), &def).await })
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
                    let role: crate::domain::actor::Role = role_of(ctx.args.try_get("role")?)?;
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
                    let role: crate::domain::actor::Role = role_of(ctx.args.try_get("role")?)?;
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
    let (query, mutation) = (query.field(api_tokens_field()), mutation.field(update_user_field()));
    (query, mutation)
}

/// A role argument or input field.
fn role_of(value: async_graphql::dynamic::ValueAccessor<'_>) -> async_graphql::Result<crate::domain::actor::Role> {
    value.enum_name()?.parse().map_err(|e: crate::domain::DomainError| to_gql(e.into()))
}

/// An instant, or null.
fn instant(t: Option<chrono::DateTime<chrono::Utc>>) -> GqlValue {
    t.map(|t| GqlValue::String(crate::domain::value::format_datetime(t))).unwrap_or(GqlValue::Null)
}

/// `apiTokens`: every API token, newest first, without its secret (ADMIN).
fn api_tokens_field() -> Field {
    Field::new("apiTokens", TypeRef::named_nn_list_nn("ApiToken"), |ctx| {
        FieldFuture::new(async move {
            authorize(&ctx, Access::Admin)?;
            let tokens = crate::store::tokens::list(kith(&ctx)?.store.conn()).await.map_err(to_gql)?;
            let values = tokens.into_iter().map(|t| {
                FieldValue::value(obj(vec![
                    ("id", GqlValue::String(t.id.to_string())),
                    ("name", GqlValue::String(t.name)),
                    ("prefix", GqlValue::String(t.prefix)),
                    ("role", GqlValue::Enum(Name::new(t.role.as_str()))),
                    ("createdAt", instant(t.created_at)),
                    ("lastUsedAt", instant(t.last_used_at)),
                    ("expiresAt", instant(t.expires_at)),
                    ("revokedAt", instant(t.revoked_at)),
                ]))
            });
            Ok(Some(FieldValue::list(values.collect::<Vec<_>>())))
        })
    })
    .description("Every API token, newest first: never its secret, only its first characters (ADMIN).")
}

/// `updateUser`: a user's name, role or whether they are active (ADMIN); never leaves Kith
/// without an active ADMIN. The user's sessions answer with the new role, or stop, at once.
fn update_user_field() -> Field {
    Field::new(
        "updateUser",
        TypeRef::named_nn("User"),
        guarded(Access::Admin, |ctx| {
            FieldFuture::new(async move {
                let id = crate::api::args::arg_id(&ctx, "id")?;
                let input = ctx.args.try_get("input")?.object()?;
                let given = |name: &str| input.get(name).filter(|v| !v.is_null());
                let change = users::UserChange {
                    name: given("name").map(|v| v.string().map(str::to_owned)).transpose()?,
                    role: given("role").map(role_of).transpose()?,
                    active: given("active").map(|v| v.boolean()).transpose()?,
                };
                let version = arg_opt_i64(&ctx, "expectedVersion")?;
                let user = write(&ctx, Access::Admin, move |tx, k| {
                    let change = change.clone();
                    Box::pin(async move { users::update_user(tx, &k.registry(), id, change, version).await })
                })
                .await?;
                kith(&ctx)?.auth_cache.forget(None, Some(id));
                Ok(Some(FieldValue::owned_any(user)))
            })
        }),
    )
    .description(
        "Changes a user's name, role or whether they may sign in (ADMIN). Refused (CONFLICT) when it \
         would leave no active ADMIN. An inactive user's sessions stop working.",
    )
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .argument(InputValue::new("input", TypeRef::named_nn("UpdateUserInput")))
    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT)))
}
