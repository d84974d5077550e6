//! Reading resolver arguments: ids, optional scalars and JSON, each with a `BAD_USER_INPUT`
//! error naming the argument when it does not parse. Every resolver of the API reads its
//! arguments through these.

use async_graphql::dynamic::ResolverContext;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::api::error::bad_input;
use crate::service::Kith;

pub(crate) fn arg_json(ctx: &ResolverContext<'_>, name: &str) -> Option<Json> {
    ctx.args.get(name).filter(|v| !v.is_null()).and_then(|v| v.as_value().clone().into_json().ok())
}

pub(crate) fn arg_id(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Uuid> {
    let text = ctx.args.try_get(name)?.string()?;
    Uuid::parse_str(text).map_err(|_| bad_input(name, format!("`{text}` is not an id")))
}

pub(crate) fn arg_opt_id(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<Uuid>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(_) => arg_id(ctx, name).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn arg_opt_i64(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<i64>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(v.i64()?)),
        None => Ok(None),
    }
}

pub(crate) fn arg_opt_bool(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<bool>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(v.boolean()?)),
        None => Ok(None),
    }
}

pub(crate) fn arg_opt_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<String>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(v.string()?.to_owned())),
        None => Ok(None),
    }
}

/// Kith's services, as the schema carries them.
pub(crate) fn kith<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Kith> {
    ctx.data::<Kith>()
}

/// The string `name` (non-null).
pub(crate) fn arg_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<String> {
    Ok(ctx.args.try_get(name)?.string()?.to_owned())
}

/// The list of strings `name`; empty when absent or null.
pub(crate) fn arg_strings(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Vec<String>> {
    match ctx.args.get(name).filter(|v| !v.is_null()) {
        Some(list) => list.list()?.iter().map(|v| v.string().map(str::to_owned)).collect(),
        None => Ok(Vec::new()),
    }
}
