//! The workflow mutations: changes with rules of their own (a deal's stage and outcome, a
//! ticket's status, assignee, comments and rating, a task's completion, merging contacts),
//! described as one table. Each reads its arguments, runs its `service::workflow` call in a
//! write transaction as the caller, and answers the changed record.

use std::future::Future;
use std::pin::Pin;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, TypeRef};

use crate::api::args::{arg_id, arg_opt_bool, arg_opt_i64, arg_opt_id, arg_opt_string};
use crate::api::auth::{Access, guarded};
use crate::api::crud::write;
use crate::service::{Kith, workflow};
use crate::store::Tx;
use crate::store::records::Record;

/// Reads a mutation's arguments.
type Parse<A> = fn(&ResolverContext<'_>) -> async_graphql::Result<A>;

/// Runs a mutation with its arguments, in the caller's write transaction.
type Run<A> = for<'t> fn(&'t Tx, Kith, A) -> Pin<Box<dyn Future<Output = crate::Result<Record>> + Send + 't>>;

/// One workflow mutation: `name(arguments): returns!`, for callers with `access`.
fn workflow_field<A: Clone + Send + Sync + 'static>(
    (name, returns, access): (&str, &str, Access),
    arguments: &[(&str, TypeRef)],
    parse: Parse<A>,
    run: Run<A>,
) -> Field {
    let field = Field::new(
        name,
        TypeRef::named_nn(returns),
        guarded(access, move |ctx| {
            FieldFuture::new(async move {
                let args = parse(&ctx)?;
                let record = write(&ctx, access, move |tx, kith| run(tx, kith, args.clone())).await?;
                Ok(Some(FieldValue::owned_any(record)))
            })
        }),
    );
    arguments.iter().fold(field, |field, (arg, ty)| field.argument(InputValue::new(*arg, ty.clone())))
}

/// Adds the workflow mutations to `mutation`.
pub(crate) fn register(mutation: Object) -> Object {
    let id = || TypeRef::named_nn(TypeRef::ID);
    let version = || ("expectedVersion", TypeRef::named(TypeRef::INT));
    let text = || TypeRef::named(TypeRef::STRING);
    mutation
        .field(workflow_field(
            ("moveDeal", "Deal", Access::Write),
            &[("id", id()), ("stageId", id()), version()],
            |ctx| Ok((arg_id(ctx, "id")?, arg_id(ctx, "stageId")?, arg_opt_i64(ctx, "expectedVersion")?)),
            |tx, k, (id, stage, version)| {
                Box::pin(async move { workflow::move_deal(tx, &k.registry(), id, stage, version).await })
            },
        ))
        .field(workflow_field(
            ("closeDeal", "Deal", Access::Write),
            &[("id", id()), ("outcome", TypeRef::named_nn("DealOutcome")), ("reason", text()), version()],
            |ctx| {
                let won = ctx.args.try_get("outcome")?.enum_name()? == "WON";
                Ok((arg_id(ctx, "id")?, won, arg_opt_string(ctx, "reason")?, arg_opt_i64(ctx, "expectedVersion")?))
            },
            |tx, k, (id, won, reason, version)| {
                Box::pin(async move { workflow::close_deal(tx, &k.registry(), id, won, reason, version).await })
            },
        ))
        .field(workflow_field(
            ("changeTicketStatus", "Ticket", Access::Write),
            &[("id", id()), ("status", TypeRef::named_nn("TicketStatus")), version()],
            |ctx| {
                let status = ctx.args.try_get("status")?.enum_name()?.to_owned();
                Ok((arg_id(ctx, "id")?, status, arg_opt_i64(ctx, "expectedVersion")?))
            },
            |tx, k, (id, status, version)| {
                Box::pin(async move { workflow::change_status(tx, &k.registry(), id, &status, version).await })
            },
        ))
        .field(workflow_field(
            ("assignTicket", "Ticket", Access::Write),
            &[("id", id()), ("assigneeId", TypeRef::named(TypeRef::ID)), version()],
            |ctx| Ok((arg_id(ctx, "id")?, arg_opt_id(ctx, "assigneeId")?, arg_opt_i64(ctx, "expectedVersion")?)),
            |tx, k, (id, assignee, version)| {
                Box::pin(async move { workflow::assign(tx, &k.registry(), id, assignee, version).await })
            },
        ))
        .field(workflow_field(
            ("addTicketComment", "TicketComment", Access::Write),
            &[
                ("ticketId", id()),
                ("body", TypeRef::named_nn(TypeRef::STRING)),
                ("public", TypeRef::named(TypeRef::BOOLEAN)),
            ],
            |ctx| {
                let body = ctx.args.try_get("body")?.string()?.to_owned();
                Ok((arg_id(ctx, "ticketId")?, body, arg_opt_bool(ctx, "public")?.unwrap_or(true)))
            },
            |tx, k, (id, body, public)| {
                Box::pin(async move { workflow::add_comment(tx, &k.registry(), id, &body, public).await })
            },
        ))
        .field(workflow_field(
            ("rateTicket", "Ticket", Access::Write),
            &[("id", id()), ("rating", TypeRef::named_nn(TypeRef::INT)), ("comment", text())],
            |ctx| {
                let rating = ctx.args.try_get("rating")?.i64()?;
                Ok((arg_id(ctx, "id")?, rating, arg_opt_string(ctx, "comment")?))
            },
            |tx, k, (id, rating, comment)| {
                Box::pin(async move { workflow::rate(tx, &k.registry(), id, rating, comment).await })
            },
        ))
        .field(workflow_field(
            ("completeTask", "Activity", Access::Write),
            &[("id", id())],
            |ctx| arg_id(ctx, "id"),
            |tx, k, id| Box::pin(async move { workflow::complete_task(tx, &k.registry(), id).await }),
        ))
        .field(workflow_field(
            ("mergeContacts", "Contact", Access::Manage),
            &[("keepId", id()), ("mergeId", id())],
            |ctx| Ok((arg_id(ctx, "keepId")?, arg_id(ctx, "mergeId")?)),
            |tx, k, (keep, merge)| {
                Box::pin(async move { workflow::merge_contacts(tx, &k.registry(), keep, merge).await })
            },
        ))
}
