//! Outbound webhooks over GraphQL, all ADMIN: `webhooks`, `webhook`, `webhookDeliveries`,
//! `createWebhook` (its secret answered once), `updateWebhook`, `deleteWebhook`,
//! `rotateWebhookSecret`, `enableWebhook`, `pingWebhook` and `replayWebhookDeliveries`. The
//! work is `service::webhooks`; delivery is `service::webhook_delivery`.

use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, SchemaBuilder, TypeRef,
};
use async_graphql::{Name, Value as GqlValue};
use serde_json::Value as Json;

use crate::api::args::{arg_id, arg_json, arg_opt_i64, arg_opt_id, arg_opt_string, kith};
use crate::api::auth::{Access, authorize, guarded};
use crate::api::crud::write;
use crate::api::error::to_gql;
use crate::api::schema::{obj, value_object};
use crate::domain::DomainError;
use crate::domain::value::{FieldKind, Value, format_datetime};
use crate::service::webhooks::{self, WebhookInput};
use crate::store::webhooks::{self as store, DeliveryRow, Replay, WebhookRow};

/// Most deliveries one page holds.
const MAX_PAGE: i64 = 500;

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> GqlValue {
    at.map(|at| GqlValue::String(format_datetime(at))).unwrap_or(GqlValue::Null)
}

fn text(value: &Option<String>) -> GqlValue {
    value.clone().map(GqlValue::String).unwrap_or(GqlValue::Null)
}

fn webhook_value(row: &WebhookRow) -> GqlValue {
    let filter = row
        .filter
        .as_deref()
        .and_then(|f| serde_json::from_str::<Json>(f).ok())
        .and_then(|f| GqlValue::from_json(f).ok())
        .unwrap_or(GqlValue::Null);
    let now = chrono::Utc::now();
    obj(vec![
        ("id", GqlValue::String(row.id.to_string())),
        ("url", GqlValue::String(row.url.clone())),
        ("events", GqlValue::List(row.events.iter().cloned().map(GqlValue::String).collect())),
        ("filter", filter),
        ("description", text(&row.description)),
        ("enabled", GqlValue::Boolean(row.enabled)),
        ("disabledReason", text(&row.disabled_reason)),
        ("failingSince", time(row.failing_since)),
        ("previousSecretValidUntil", time(row.previous_secret_until.filter(|until| *until > now))),
        ("createdAt", time(Some(row.created_at))),
        ("updatedAt", time(Some(row.updated_at))),
    ])
}

fn delivery_value(row: &DeliveryRow) -> GqlValue {
    let int = |n: Option<i64>| n.map(|n| GqlValue::Number(n.into())).unwrap_or(GqlValue::Null);
    obj(vec![
        ("id", GqlValue::String(row.id.to_string())),
        ("webhookId", GqlValue::String(row.webhook_id.to_string())),
        ("eventId", GqlValue::String(row.event_id.to_string())),
        ("seq", GqlValue::String(row.seq.to_string())),
        ("type", GqlValue::String(row.kind.clone())),
        ("state", GqlValue::Enum(Name::new(row.state.to_ascii_uppercase()))),
        ("attempts", GqlValue::Number(row.attempts.into())),
        ("statusCode", int(row.status_code)),
        ("latencyMs", int(row.latency_ms)),
        ("response", text(&row.response)),
        ("error", text(&row.error)),
        ("nextAttemptAt", time(row.next_attempt_at)),
        ("lastAttemptAt", time(row.last_attempt_at)),
        ("createdAt", time(Some(row.created_at))),
    ])
}

fn input_of(json: Option<Json>) -> async_graphql::Result<WebhookInput> {
    let Some(Json::Object(map)) = json else { return Ok(WebhookInput::default()) };
    let string = |key: &str| map.get(key).and_then(Json::as_str).map(str::to_owned);
    let events = match map.get("events") {
        Some(Json::Array(items)) => {
            Some(items.iter().filter_map(Json::as_str).map(str::to_owned).collect::<Vec<String>>())
        }
        _ => None,
    };
    // The filter may come as JSON or as JSON text (a CLI flag, a form).
    let filter = match map.get("filter") {
        Some(Json::String(text)) => Some(
            serde_json::from_str(text)
                .map_err(|e| to_gql(DomainError::invalid("filter", format!("not JSON: {e}")).into()))?,
        ),
        other => other.cloned(),
    };
    Ok(WebhookInput { url: string("url"), events, filter, description: string("description") })
}

async fn checked(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
    current: Option<&WebhookRow>,
    input: &WebhookInput,
) -> async_graphql::Result<()> {
    let kith = kith(ctx)?;
    webhooks::check_input(kith.store.conn(), &kith.registry(), &kith.webhook_config(), current, input)
        .await
        .map_err(to_gql)
}

async fn find(ctx: &async_graphql::dynamic::ResolverContext<'_>, id: uuid::Uuid) -> async_graphql::Result<WebhookRow> {
    store::get(kith(ctx)?.store.conn(), id)
        .await
        .map_err(to_gql)?
        .ok_or_else(|| to_gql(DomainError::not_found("webhook", id).into()))
}

fn datetime(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
    name: &str,
) -> async_graphql::Result<Option<chrono::DateTime<chrono::Utc>>> {
    match arg_opt_string(ctx, name)? {
        None => Ok(None),
        Some(text) => match Value::parse(name, &FieldKind::DateTime, &text).map_err(|e| to_gql(e.into()))? {
            Value::DateTime(at) => Ok(Some(at)),
            _ => Ok(None),
        },
    }
}

/// Registers the webhook types, queries and mutations.
pub(crate) fn register(
    mut builder: SchemaBuilder,
    mut query: Object,
    mut mutation: Object,
) -> (SchemaBuilder, Object, Object) {
    builder = builder
        .register(Enum::new("WebhookDeliveryState").items(["PENDING", "DELIVERED", "DEAD"]))
        .register(
            value_object(
                "Webhook",
                &[
                    ("id", TypeRef::named_nn(TypeRef::ID)),
                    ("url", TypeRef::named_nn(TypeRef::STRING)),
                    ("events", TypeRef::named_nn_list_nn(TypeRef::STRING)),
                    ("filter", TypeRef::named("JSON")),
                    ("description", TypeRef::named(TypeRef::STRING)),
                    ("enabled", TypeRef::named_nn(TypeRef::BOOLEAN)),
                    ("disabledReason", TypeRef::named(TypeRef::STRING)),
                    ("failingSince", TypeRef::named("DateTime")),
                    ("previousSecretValidUntil", TypeRef::named("DateTime")),
                    ("createdAt", TypeRef::named_nn("DateTime")),
                    ("updatedAt", TypeRef::named_nn("DateTime")),
                ],
            )
            .description("An endpoint outbound webhooks are delivered to (its secret is never shown again)."),
        )
        .register(
            value_object(
                "WebhookDelivery",
                &[
                    ("id", TypeRef::named_nn(TypeRef::ID)),
                    ("webhookId", TypeRef::named_nn(TypeRef::ID)),
                    ("eventId", TypeRef::named_nn(TypeRef::ID)),
                    ("seq", TypeRef::named_nn(TypeRef::STRING)),
                    ("type", TypeRef::named_nn(TypeRef::STRING)),
                    ("state", TypeRef::named_nn("WebhookDeliveryState")),
                    ("attempts", TypeRef::named_nn(TypeRef::INT)),
                    ("statusCode", TypeRef::named(TypeRef::INT)),
                    ("latencyMs", TypeRef::named(TypeRef::INT)),
                    ("response", TypeRef::named(TypeRef::STRING)),
                    ("error", TypeRef::named(TypeRef::STRING)),
                    ("nextAttemptAt", TypeRef::named("DateTime")),
                    ("lastAttemptAt", TypeRef::named("DateTime")),
                    ("createdAt", TypeRef::named_nn("DateTime")),
                ],
            )
            .description(
                "One event sent (or to send) to an endpoint: `id` is the `webhook-id` header, the same on every attempt.",
            ),
        )
        .register(value_object(
            "CreatedWebhook",
            &[("webhook", TypeRef::named_nn("Webhook")), ("secret", TypeRef::named_nn(TypeRef::STRING))],
        ))
        .register(
            InputObject::new("WebhookInput")
                .field(InputValue::new("url", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new("events", TypeRef::named_nn_list(TypeRef::STRING)))
                .field(InputValue::new("filter", TypeRef::named("JSON")))
                .field(InputValue::new("description", TypeRef::named(TypeRef::STRING))),
        );

    query = query
        .field(
            Field::new("webhooks", TypeRef::named_nn_list_nn("Webhook"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let rows = store::list(kith(&ctx)?.store.conn()).await.map_err(to_gql)?;
                    Ok(Some(FieldValue::list(rows.iter().map(|r| FieldValue::value(webhook_value(r))))))
                })
            })
            .description("Every webhook endpoint (ADMIN)."),
        )
        .field(
            Field::new("webhook", TypeRef::named("Webhook"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let id = arg_id(&ctx, "id")?;
                    let row = store::get(kith(&ctx)?.store.conn(), id).await.map_err(to_gql)?;
                    Ok(row.map(|r| FieldValue::value(webhook_value(&r))))
                })
            })
            .description("One webhook endpoint (ADMIN).")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new("webhookDeliveries", TypeRef::named_nn_list_nn("WebhookDelivery"), |ctx| {
                FieldFuture::new(async move {
                    authorize(&ctx, Access::Admin)?;
                    let id = arg_id(&ctx, "webhookId")?;
                    let state = match ctx.args.get("state") {
                        Some(v) if !v.is_null() => Some(v.enum_name()?.to_ascii_lowercase()),
                        _ => None,
                    };
                    let first = arg_opt_i64(&ctx, "first")?.unwrap_or(50);
                    if !(1..=MAX_PAGE).contains(&first) {
                        return Err(to_gql(
                            DomainError::invalid("first", format!("must be between 1 and {MAX_PAGE}")).into(),
                        ));
                    }
                    let after = arg_opt_id(&ctx, "after")?;
                    find(&ctx, id).await?;
                    let rows = store::deliveries(kith(&ctx)?.store.conn(), id, state.as_deref(), first as u64, after)
                        .await
                        .map_err(to_gql)?;
                    Ok(Some(FieldValue::list(rows.iter().map(|r| FieldValue::value(delivery_value(r))))))
                })
            })
            .description(
                "An endpoint's delivery log, newest first (`state: DEAD` is its dead-letter list); `after` is the \
                 last delivery id of the previous page (ADMIN).",
            )
            .argument(InputValue::new("webhookId", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("state", TypeRef::named("WebhookDeliveryState")))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("after", TypeRef::named(TypeRef::ID))),
        );

    mutation = mutation
        .field(
            Field::new(
                "createWebhook",
                TypeRef::named_nn("CreatedWebhook"),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let input = input_of(arg_json(&ctx, "input"))?;
                        checked(&ctx, None, &input).await?;
                        let (row, secret) = write(&ctx, Access::Admin, move |tx, _| {
                            let input = input.clone();
                            Box::pin(async move { webhooks::create(tx, &input).await })
                        })
                        .await?;
                        Ok(Some(FieldValue::value(obj(vec![
                            ("webhook", webhook_value(&row)),
                            ("secret", GqlValue::String(secret)),
                        ]))))
                    })
                }),
            )
            .description(
                "Creates a webhook endpoint: `events` are event types (`contact.created`, `deal.*`, `*`), `filter` \
                 (the filter language of lists) applies to the record after the change. Answers its signing \
                 secret, shown only this once (ADMIN).",
            )
            .argument(InputValue::new("input", TypeRef::named_nn("WebhookInput"))),
        )
        .field(
            Field::new(
                "updateWebhook",
                TypeRef::named_nn("Webhook"),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "id")?;
                        let input = input_of(arg_json(&ctx, "input"))?;
                        let current = find(&ctx, id).await?;
                        checked(&ctx, Some(&current), &input).await?;
                        let row = write(&ctx, Access::Admin, move |tx, _| {
                            let input = input.clone();
                            Box::pin(async move { webhooks::update(tx, id, &input).await })
                        })
                        .await?;
                        Ok(Some(FieldValue::value(webhook_value(&row))))
                    })
                }),
            )
            .description("Changes a webhook endpoint; absent fields stay, a null `filter` removes it (ADMIN).")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("input", TypeRef::named_nn("WebhookInput"))),
        )
        .field(
            Field::new(
                "deleteWebhook",
                TypeRef::named_nn(TypeRef::BOOLEAN),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "id")?;
                        write(&ctx, Access::Admin, move |tx, _| {
                            Box::pin(async move { webhooks::delete(tx, id).await })
                        })
                        .await?;
                        Ok(Some(FieldValue::value(GqlValue::Boolean(true))))
                    })
                }),
            )
            .description("Deletes a webhook endpoint and its delivery log (ADMIN).")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new(
                "rotateWebhookSecret",
                TypeRef::named_nn(TypeRef::STRING),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "id")?;
                        let overlap =
                            std::time::Duration::from_secs(kith(&ctx)?.webhook_config().rotation_overlap_secs);
                        let secret = write(&ctx, Access::Admin, move |tx, _| {
                            Box::pin(async move { webhooks::rotate_secret(tx, id, overlap).await })
                        })
                        .await?;
                        Ok(Some(FieldValue::value(GqlValue::String(secret))))
                    })
                }),
            )
            .description(
                "A new signing secret, shown only this once; the old one also signs (a second signature) for \
                 `[webhooks] rotation_overlap_secs` (ADMIN).",
            )
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new(
                "enableWebhook",
                TypeRef::named_nn("Webhook"),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "id")?;
                        let row = write(&ctx, Access::Admin, move |tx, _| {
                            Box::pin(async move { webhooks::enable(tx, id).await })
                        })
                        .await?;
                        Ok(Some(FieldValue::value(webhook_value(&row))))
                    })
                }),
            )
            .description("Enables a disabled webhook endpoint; its pending deliveries are sent at once (ADMIN).")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new(
                "pingWebhook",
                TypeRef::named_nn(TypeRef::BOOLEAN),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "id")?;
                        write(&ctx, Access::Admin, move |tx, _| Box::pin(async move { webhooks::ping(tx, id).await }))
                            .await?;
                        Ok(Some(FieldValue::value(GqlValue::Boolean(true))))
                    })
                }),
            )
            .description("Sends a `webhook.ping` test event to the endpoint, the way every event goes (ADMIN).")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new(
                "replayWebhookDeliveries",
                TypeRef::named_nn(TypeRef::INT),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let id = arg_id(&ctx, "webhookId")?;
                        let which =
                            match (arg_opt_id(&ctx, "deliveryId")?, datetime(&ctx, "from")?, datetime(&ctx, "to")?) {
                                (Some(delivery), None, None) => Replay::One(delivery),
                                (None, Some(from), to) => Replay::Between(from, to.unwrap_or_else(chrono::Utc::now)),
                                _ => {
                                    return Err(to_gql(
                                        DomainError::invalid(
                                            "deliveryId",
                                            "give either `deliveryId` or a time range (`from`, and `to` or now)",
                                        )
                                        .into(),
                                    ));
                                }
                            };
                        let retry_for = std::time::Duration::from_secs(kith(&ctx)?.webhook_config().retry_for_secs);
                        let n = write(&ctx, Access::Admin, move |tx, _| {
                            Box::pin(async move { webhooks::replay(tx, id, which, retry_for).await })
                        })
                        .await?;
                        Ok(Some(FieldValue::value(GqlValue::Number(n.into()))))
                    })
                }),
            )
            .description(
                "Sends delivered or dead deliveries again, with their ids: one (`deliveryId`) or those queued from \
                 `from` to `to` (default now). Answers how many (ADMIN).",
            )
            .argument(InputValue::new("webhookId", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("deliveryId", TypeRef::named(TypeRef::ID)))
            .argument(InputValue::new("from", TypeRef::named("DateTime")))
            .argument(InputValue::new("to", TypeRef::named("DateTime"))),
        );
    (builder, query, mutation)
}
