//! Mapping of core errors to GraphQL errors with `extensions.code`.

use async_graphql::ErrorExtensions;

use crate::domain::DomainError;
use crate::domain::code::Code;
use crate::error::Error;

/// A GraphQL error with a code and a message.
pub fn coded(code: Code, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

/// Maps a core error. Internal details are logged, never returned.
pub fn to_gql(err: Error) -> async_graphql::Error {
    match err {
        Error::Domain(DomainError::Validation { field, reason }) => {
            async_graphql::Error::new(format!("{field}: {reason}")).extend_with(|_, ext| {
                ext.set("code", Code::BadUserInput.as_str());
                ext.set("field", field.clone());
            })
        }
        Error::Domain(e @ DomainError::NotFound { .. }) => coded(Code::NotFound, e.to_string()),
        Error::Domain(e @ DomainError::Conflict(_)) => coded(Code::Conflict, e.to_string()),
        Error::Domain(e @ DomainError::Forbidden(_)) => coded(Code::Forbidden, e.to_string()),
        Error::Domain(e @ DomainError::Throttled { retry_after_secs }) => async_graphql::Error::new(e.to_string())
            .extend_with(|_, ext| {
                ext.set("code", Code::RateLimited.as_str());
                ext.set("retryAfter", retry_after_secs);
            }),
        Error::Domain(DomainError::Rejected { plugin, reason }) => {
            async_graphql::Error::new(format!("rejected by plugin `{plugin}`: {reason}")).extend_with(|_, ext| {
                ext.set("code", Code::RejectedByPlugin.as_str());
                ext.set("plugin", plugin.clone());
            })
        }
        Error::Database(e) => {
            tracing::error!(error = %e, "database error while serving GraphQL");
            coded(Code::Internal, "internal error")
        }
        Error::Unavailable(e) => {
            tracing::error!(error = %e, "the database is unreachable while serving GraphQL");
            coded(Code::Unavailable, "the database is unavailable; retry shortly")
        }
        Error::Internal(e) => {
            tracing::error!(error = %e, "internal error while serving GraphQL");
            coded(Code::Internal, "internal error")
        }
    }
}

/// A bad argument.
pub fn bad_input(field: &str, message: impl std::fmt::Display) -> async_graphql::Error {
    to_gql(Error::Domain(DomainError::invalid(field, message)))
}
