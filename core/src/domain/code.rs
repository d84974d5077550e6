//! Every error code the API can answer (`extensions.code`), in one place: resolvers, the HTTP
//! layer and plugin operations name a [`Code`], never a string, and the README lists them all
//! (a test checks it).

use std::fmt;

/// An error code of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A value is missing, malformed or out of range (`extensions.field` names it).
    BadUserInput,
    /// The HTTP request itself is malformed (not JSON, a bad header, a batch too large).
    BadRequest,
    /// No such record.
    NotFound,
    /// The caller's role may not do this.
    Forbidden,
    /// No valid token.
    Unauthenticated,
    /// A stale version, a duplicate unique value, a workflow step not allowed, an idempotency
    /// key used for another request.
    Conflict,
    /// Too many requests or attempts (`extensions.retryAfter` where known).
    RateLimited,
    /// The request ran past its time limit.
    Timeout,
    /// The document does not parse as GraphQL (`locations` points at the error).
    GraphqlParseFailed,
    /// The document is not valid against the schema, or its variables do not fit their types.
    GraphqlValidationFailed,
    /// The document nests deeper than the depth limit (`api.max_depth` for data; introspection
    /// has its own bound).
    QueryTooDeep,
    /// The request costs more than the complexity limit.
    QueryTooComplex,
    /// The database (or a plugin's runtime) cannot be reached now; retry.
    Unavailable,
    /// A plugin refused the write in its `before-write` hook.
    RejectedByPlugin,
    /// A plugin failed (trapped, timed out, answered the wrong type).
    PluginFailed,
    /// Something Kith did not expect; the detail is in the server log.
    Internal,
}

impl Code {
    /// Every code.
    pub const ALL: [Code; 16] = [
        Code::BadUserInput,
        Code::BadRequest,
        Code::NotFound,
        Code::Forbidden,
        Code::Unauthenticated,
        Code::Conflict,
        Code::RateLimited,
        Code::Timeout,
        Code::GraphqlParseFailed,
        Code::GraphqlValidationFailed,
        Code::QueryTooDeep,
        Code::QueryTooComplex,
        Code::Unavailable,
        Code::RejectedByPlugin,
        Code::PluginFailed,
        Code::Internal,
    ];

    /// The code as the API writes it (`BAD_USER_INPUT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::BadRequest => "BAD_REQUEST",
            Code::NotFound => "NOT_FOUND",
            Code::Forbidden => "FORBIDDEN",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Conflict => "CONFLICT",
            Code::RateLimited => "RATE_LIMITED",
            Code::Timeout => "TIMEOUT",
            Code::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::QueryTooDeep => "QUERY_TOO_DEEP",
            Code::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Code::Unavailable => "UNAVAILABLE",
            Code::RejectedByPlugin => "REJECTED_BY_PLUGIN",
            Code::PluginFailed => "PLUGIN_FAILED",
            Code::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
