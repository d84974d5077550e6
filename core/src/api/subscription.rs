//! `recordChanged`: committed changes, live, filtered to what the caller's role may read (the
//! objects, and of their records the fields).

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{FieldValue, InputValue, TypeRef};
use serde_json::Value as Json;

use crate::api::args::{arg_opt_string, kith};
use crate::api::auth::{Access, authorize};
use crate::api::error::coded;
use crate::api::schema::obj;
use crate::domain::actor::Role;
use crate::domain::code::Code;
use crate::domain::object::ObjectDef;

/// `recordChanged(object)`: every committed change, live, for views that must stay current.
pub(crate) fn subscription() -> async_graphql::dynamic::Subscription {
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
                                        && !kith.events.is_forgotten(&event)
                                        && role.allows(crate::service::events::read_role(
                                            &kith.registry(),
                                            &event.object,
                                        )) =>
                                {
                                    let mut payload = event.payload.clone();
                                    if let Some(def) = kith.registry().get(&event.object) {
                                        redact_payload(def, role, &mut payload);
                                    }
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
                                        ("payload", GqlValue::from_json(payload).unwrap_or(GqlValue::Null)),
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

/// An event's payload without the values `role` may not read: of its record (`record`) and
/// of what changed (`changes`).
fn redact_payload(def: &ObjectDef, role: Role, payload: &mut Json) {
    for part in ["record", "changes"] {
        if let Some(Json::Object(values)) = payload.get_mut(part) {
            def.redact(role, values);
        }
    }
}
