//! The generic record operations every mutable object gets: `t(id)`, `createT`, `updateT`,
//! `createTs` (batch, optionally upserting), `deleteT`, `restoreT`; and `write`, which runs a
//! mutation's work in a write transaction as the caller.

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, TypeRef};
use serde_json::Value as Json;

use crate::api::args::{arg_id, arg_json, arg_opt_bool, arg_opt_i64, kith};
use crate::api::auth::{Access, authorize, guarded};
use crate::api::connection::selected_fields;
use crate::api::error::{bad_input, to_gql};
use crate::api::loader::Prefetched;
use crate::config::ApiConfig;
use crate::domain::naming::{self, Suffix};
use crate::domain::object::ObjectDef;
use crate::service::input::Input;
use crate::service::{Kith, records as record_service};
use crate::store::records::{self};

/// Most inputs of one batch create.
pub(crate) const MAX_BATCH_INPUTS: usize = 100;

/// Names the batch input an error came from: `inputs[3].email`.
pub(crate) fn prefix_field(err: crate::error::Error, index: usize) -> crate::error::Error {
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

/// Runs `f` as the caller in a write transaction, answering once it has committed. Concurrent
/// mutations share a transaction and its commit (`store::group`); `f` may be called again if
/// its group is run again, so it takes what it needs afresh each time.
pub(crate) async fn write<T, F>(ctx: &ResolverContext<'_>, access: Access, mut f: F) -> async_graphql::Result<T>
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

pub(crate) fn input_of(ctx: &ResolverContext<'_>, def: &ObjectDef) -> async_graphql::Result<Input> {
    let json = arg_json(ctx, "input").unwrap_or(Json::Object(Default::default()));
    Input::from_json(def, &json).map_err(to_gql)
}

pub(crate) fn mutations(def: &Arc<ObjectDef>, mut mutation: Object) -> Object {
    let t = def.type_name.clone();
    let d = def.clone();
    mutation = mutation.field(
        Field::new(
            naming::mutation(def, "create"),
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
        .argument(InputValue::new("input", TypeRef::named_nn(naming::object_type(def, Suffix::CreateInput)))),
    );
    let d = def.clone();
    mutation = mutation.field(
        Field::new(
            naming::mutation(def, "update"),
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
        .argument(InputValue::new("input", TypeRef::named_nn(naming::object_type(def, Suffix::UpdateInput))))
        .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
    );
    let d = def.clone();
    mutation = mutation.field(
        Field::new(naming::batch_create(def), TypeRef::named_nn_list_nn(t.clone()), guarded(Access::Write, move |ctx| {
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
        .argument(InputValue::new("inputs", TypeRef::named_nn_list_nn(naming::object_type(def, Suffix::CreateInput))))
        .argument(InputValue::new("upsert", TypeRef::named(TypeRef::BOOLEAN))),
    );
    for (verb, restore) in [("delete", false), ("restore", true)] {
        let d = def.clone();
        mutation = mutation.field(
            Field::new(
                naming::mutation(def, verb),
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

/// `t(id)` and `ts(...)`: one record, and a page of records.
pub(crate) fn queries(def: &Arc<ObjectDef>, query: Object, limits: ApiConfig) -> Object {
    let d = def.clone();
    query
        .field(
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
        )
        .field(crate::api::connection::connection_field(def.plural.clone(), def.clone(), None, limits))
}
