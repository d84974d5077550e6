//! Who is calling and what they may do: roles are checked here and nowhere else.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, ResolverContext, TypeRef};
use async_graphql::{Name, Value as GqlValue};

use crate::api::args::kith;
use crate::api::error::{coded, to_gql};
use crate::domain::actor::{Actor, Role};
use crate::domain::code::Code;
use crate::domain::filter::{Filter, OrderBy, Target};
use crate::domain::object::ObjectDef;
use crate::service::users;

/// What an operation does, which decides the role it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read records.
    Read,
    /// Create or update records, run workflows.
    Write,
    /// Delete, restore and merge records; read reports and the audit log.
    Manage,
    /// Users, tokens, custom fields, plugins.
    Admin,
}

impl Access {
    /// The least role allowed to do it.
    pub fn role(self) -> Role {
        match self {
            Access::Read => Role::Viewer,
            Access::Write => Role::Agent,
            Access::Manage => Role::Manager,
            Access::Admin => Role::Admin,
        }
    }
}

/// The caller, if the role allows `access`; UNAUTHENTICATED or FORBIDDEN otherwise.
pub fn authorize<'a>(ctx: &ResolverContext<'a>, access: Access) -> async_graphql::Result<&'a Actor> {
    let actor = ctx
        .data_opt::<Actor>()
        .ok_or_else(|| coded(Code::Unauthenticated, "a valid `Authorization: Bearer <token>` header is required"))?;
    if actor.role.allows(access.role()) {
        Ok(actor)
    } else {
        Err(coded(Code::Forbidden, format!("this needs the {} role; you have {}", access.role(), actor.role)))
    }
}

/// The caller's role; VIEWER, the weakest, when nobody is signed in (root fields refuse such
/// callers before any record is read).
pub fn caller_role(ctx: &ResolverContext<'_>) -> Role {
    ctx.data_opt::<Actor>().map_or(Role::Viewer, |actor| actor.role)
}

/// `Ok` when the caller may read `field` of `def`; FORBIDDEN, naming the field and the role it
/// needs, otherwise. Every stored field and forward relation of a record checks it.
pub fn check_field(ctx: &ResolverContext<'_>, def: &ObjectDef, field: &str) -> async_graphql::Result<()> {
    def.check_readable(field, caller_role(ctx), "reading").map_err(|e| to_gql(e.into()))
}

/// What a field answers when [`check_field`] refused it: null, with the error (at the field's
/// path) among the response's errors, so the rest of the record still reads. (A resolver's own
/// error would leave the field out of the response instead, and without a path.)
pub fn unreadable<'a>(ctx: &ResolverContext<'a>, err: async_graphql::Error) -> FieldFuture<'a> {
    ctx.add_error(ctx.set_error_path(err.into_server_error(ctx.item.pos)));
    FieldFuture::Value(None)
}

/// `Ok` when a list's filter and sort order compare only fields the caller may read (a filter
/// or a sort on a field tells what it holds, and so do keyset cursors); FORBIDDEN, naming the
/// field and the role it needs, otherwise. Every list checks it (connections, relations,
/// segments' members), so a reverse relation through a reference the caller may not read is
/// refused too.
pub fn check_list(
    ctx: &ResolverContext<'_>,
    def: &ObjectDef,
    filter: &Filter,
    order: &[OrderBy],
) -> async_graphql::Result<()> {
    let role = caller_role(ctx);
    filter.check_readable(def, role).map_err(|e| to_gql(e.into()))?;
    for key in order {
        if let Target::Field(name) = &key.target {
            def.check_readable(name, role, "sorting by").map_err(|e| to_gql(e.into()))?;
        }
    }
    Ok(())
}

/// The address a request came from, for the login throttle (`None` when unknown, as in
/// in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

/// A root field's resolver that checks the caller's role for `access` before anything else,
/// so a caller without the role hears UNAUTHENTICATED or FORBIDDEN, never what is wrong with
/// its arguments. Every mutation is built with it.
pub fn guarded<F>(access: Access, resolve: F) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync
where
    F: for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static,
{
    move |ctx| match authorize(&ctx, access) {
        Ok(_) => resolve(ctx),
        Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue<'_>>, _>(err) }),
    }
}

/// `login(email, password)`: a session token for a user, behind the login throttle.
pub(crate) fn login_field() -> Field {
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
    .argument(InputValue::new("password", TypeRef::named_nn(TypeRef::STRING)))
}
