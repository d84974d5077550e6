//! Personal-data requests over GraphQL: `exportPersonalData` (MANAGER, audited),
//! `erasurePlan` and `erasePersonalData` (ADMIN; the mutation wants the confirmation `ERASE`),
//! and `recordConsent`. The work is `service::privacy`, with plugins' export queries added by
//! `plugin::privacy`.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, SchemaBuilder, TypeRef};

use crate::api::args::{arg_id, arg_opt_string, arg_string, kith};
use crate::api::auth::{Access, authorize, guarded};
use crate::api::crud::write;
use crate::api::error::{coded, to_gql};
use crate::api::schema::{obj, value_object};
use crate::domain::code::Code;
use crate::service::privacy::{self, ConsentInput, ErasureReport};

/// What `erasePersonalData` wants as `confirm`.
pub const CONFIRMATION: &str = "ERASE";

fn report_value(report: &ErasureReport) -> GqlValue {
    let text = |t: &Option<String>| t.clone().map(GqlValue::String).unwrap_or(GqlValue::Null);
    obj(vec![
        ("contactId", GqlValue::String(report.contact_id.to_string())),
        ("dryRun", GqlValue::Boolean(report.dry_run)),
        (
            "lines",
            GqlValue::List(
                report
                    .lines
                    .iter()
                    .map(|line| {
                        obj(vec![
                            ("object", GqlValue::String(line.object.clone())),
                            ("plugin", text(&line.plugin)),
                            ("policy", GqlValue::String(line.policy.clone())),
                            ("legalBasis", text(&line.legal_basis)),
                            ("records", GqlValue::Number((line.records as i64).into())),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// Registers the types, queries and mutations of personal-data requests.
pub(crate) fn register(mut builder: SchemaBuilder, query: Object, mutation: Object) -> (SchemaBuilder, Object, Object) {
    builder = builder
        .register(value_object(
            "ErasureLine",
            &[
                ("object", TypeRef::named_nn(TypeRef::STRING)),
                ("plugin", TypeRef::named(TypeRef::STRING)),
                ("policy", TypeRef::named_nn(TypeRef::STRING)),
                ("legalBasis", TypeRef::named(TypeRef::STRING)),
                ("records", TypeRef::named_nn(TypeRef::INT)),
            ],
        ))
        .register(value_object(
            "ErasureReport",
            &[
                ("contactId", TypeRef::named_nn(TypeRef::ID)),
                ("dryRun", TypeRef::named_nn(TypeRef::BOOLEAN)),
                ("lines", TypeRef::named_nn_list_nn("ErasureLine")),
            ],
        ));
    let query = query.field(
        Field::new("erasurePlan", TypeRef::named_nn("ErasureReport"), |ctx| {
            FieldFuture::new(async move {
                authorize(&ctx, Access::Admin)?;
                let id = arg_id(&ctx, "contactId")?;
                let report = privacy::erase_dry_run(kith(&ctx)?, id).await.map_err(to_gql)?;
                Ok(Some(FieldValue::value(report_value(&report))))
            })
        })
        .description(
            "What `erasePersonalData` would do to a person's records, per object and policy, without doing it (ADMIN).",
        )
        .argument(InputValue::new("contactId", TypeRef::named_nn(TypeRef::ID))),
    );
    let mutation = mutation
        .field(
            Field::new(
                "exportPersonalData",
                TypeRef::named_nn("JSON"),
                guarded(Access::Manage, |ctx| {
                    FieldFuture::new(async move {
                        let actor = authorize(&ctx, Access::Manage)?.clone();
                        let id = arg_id(&ctx, "contactId")?;
                        let doc = crate::plugin::privacy::export(kith(&ctx)?, &actor, id).await.map_err(to_gql)?;
                        Ok(Some(FieldValue::value(GqlValue::from_json(doc)?)))
                    })
                }),
            )
            .description(
                "Everything Kith holds about a person, as one JSON document (the right of access): the contact and \
                 the contacts merged into it, every record that refers to them in core and plugin objects with each \
                 object's schema, their consent history, segments, audit entries and what plugins add. Audited \
                 (MANAGER).",
            )
            .argument(InputValue::new("contactId", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new(
                "erasePersonalData",
                TypeRef::named_nn("ErasureReport"),
                guarded(Access::Admin, |ctx| {
                    FieldFuture::new(async move {
                        let actor = authorize(&ctx, Access::Admin)?.clone();
                        let id = arg_id(&ctx, "contactId")?;
                        let reason = arg_string(&ctx, "reason")?;
                        if arg_string(&ctx, "confirm")? != CONFIRMATION {
                            return Err(coded(
                                Code::BadUserInput,
                                format!("erasure cannot be undone: pass `confirm: \"{CONFIRMATION}\"` to go ahead"),
                            ));
                        }
                        let report = privacy::erase(kith(&ctx)?, &actor, id, &reason).await.map_err(to_gql)?;
                        Ok(Some(FieldValue::value(report_value(&report))))
                    })
                }),
            )
            .description(
                "Erases a person for good (the right to be forgotten): their contact and the contacts merged into \
                 it, and every record referring to them as each object's erasure policy says; their values leave \
                 the audit log, the outbox and the search index. One audit entry remains, with the reason. Refused \
                 for a contact on legal hold. Needs `confirm: \"ERASE\"` (ADMIN).",
            )
            .argument(InputValue::new("contactId", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("reason", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("confirm", TypeRef::named_nn(TypeRef::STRING))),
        )
        .field(
            Field::new(
                "recordConsent",
                TypeRef::named_nn("Consent"),
                guarded(Access::Write, |ctx| {
                    FieldFuture::new(async move {
                        let contact_id = arg_id(&ctx, "contactId")?;
                        let occurred_at = match arg_opt_string(&ctx, "occurredAt")? {
                            Some(text) => Some(
                                crate::domain::value::parse_datetime(&text)
                                    .ok_or_else(|| coded(Code::BadUserInput, "occurredAt: not an RFC 3339 instant"))?,
                            ),
                            None => None,
                        };
                        if occurred_at.is_some_and(|t| t > chrono::Utc::now() + chrono::Duration::minutes(5)) {
                            return Err(coded(Code::BadUserInput, "occurredAt: a consent is recorded once given"));
                        }
                        let consent = ConsentInput {
                            channel: ctx.args.try_get("channel")?.enum_name()?.to_owned(),
                            status: ctx.args.try_get("status")?.enum_name()?.to_owned(),
                            source: arg_opt_string(&ctx, "source")?,
                            statement: arg_opt_string(&ctx, "statement")?,
                            occurred_at,
                        };
                        let record = write(&ctx, Access::Write, move |tx, kith| {
                            let consent = consent.clone();
                            Box::pin(
                                async move { privacy::record_consent(tx, &kith.registry(), contact_id, consent).await },
                            )
                        })
                        .await?;
                        Ok(Some(FieldValue::owned_any(record)))
                    })
                }),
            )
            .description(
                "Records a consent given or withdrawn, with how (`source`) and the wording or version of the \
                 statement: the contact's e-mail opt-in or do-not-contact follows, and `Contact.consents` keeps \
                 the history.",
            )
            .argument(InputValue::new("contactId", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("channel", TypeRef::named_nn(consent_enum("channel"))))
            .argument(InputValue::new("status", TypeRef::named_nn(consent_enum("status"))))
            .argument(InputValue::new("source", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("statement", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("occurredAt", TypeRef::named("DateTime"))),
        );
    (builder, query, mutation)
}

/// The GraphQL enum of the consent object's field `field`, as the registry names it.
fn consent_enum(field: &str) -> String {
    let registry = crate::domain::object::Registry::core_static();
    match registry.get("consent").and_then(|def| Some((def.clone(), def.field_def(field)?.clone()))) {
        Some((def, field)) => crate::domain::naming::enum_type(&def, &field),
        None => TypeRef::STRING.to_owned(),
    }
}
