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

/// Gives the errors async-graphql raises before anything runs their code, a one-line message
/// and only valid locations: `GRAPHQL_PARSE_FAILED` for a document that does not parse,
/// `GRAPHQL_VALIDATION_FAILED` for one the schema refuses (variables of the wrong type
/// included), `QUERY_TOO_DEEP` for the parser's recursion limit. Errors that already carry a
/// code (the depth and cost limits) keep it. Installed first, so it sees every other
/// extension's errors.
#[derive(Debug, Clone, Copy)]
pub struct SpecErrors;

impl async_graphql::extensions::ExtensionFactory for SpecErrors {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(SpecErrors)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for SpecErrors {
    async fn parse_query(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: async_graphql::extensions::NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<async_graphql::parser::types::ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|error| {
            let code = if error.message.starts_with("The recursion depth of the query cannot be greater than")
                || error.message.starts_with("recursion limit exceeded")
            {
                Code::QueryTooDeep
            } else if error.message.starts_with("The number of directives") {
                Code::GraphqlValidationFailed
            } else {
                Code::GraphqlParseFailed
            };
            request_error(error, code)
        })
    }

    async fn validation(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors.into_iter().map(|error| request_error(error, Code::GraphqlValidationFailed)).collect()
        })
    }
}

/// `error` with `code` unless it has one, its message on one line and its unknown (0:0)
/// locations dropped.
pub fn request_error(mut error: async_graphql::ServerError, code: Code) -> async_graphql::ServerError {
    error.message = one_line(&error.message);
    error.locations.retain(|pos| pos.line > 0 && pos.column > 0);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code.as_str());
    }
    error
}

/// A message on one line. The parser's messages draw the document over several lines
/// (` --> 1:4`, the source line, a caret, `= expected selection`): only what was expected is
/// kept, as "syntax error: expected selection" (the position is in `locations`).
pub fn one_line(message: &str) -> String {
    if !message.contains('\n') {
        return message.to_owned();
    }
    let expected = message.lines().find_map(|line| line.trim_start().strip_prefix("= ")).map(str::trim);
    match expected {
        Some(expected) => format!("syntax error: {expected}"),
        None => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The codes of errors that stop a request before it runs: with
/// `Accept: application/graphql-response+json` they answer HTTP 400.
pub const REQUEST_CODES: [Code; 4] =
    [Code::GraphqlParseFailed, Code::GraphqlValidationFailed, Code::QueryTooDeep, Code::QueryTooComplex];

/// Gives every error of `response` a code: one without a path stopped the request before it ran
/// (an unknown operation name, say: `GRAPHQL_VALIDATION_FAILED`); one with a path is a field
/// error Kith did not code itself (async-graphql found a resolver's answer malformed:
/// `INTERNAL`). Locations that are not known (0:0) are dropped.
pub fn finish(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let coded = error.extensions.as_ref().is_some_and(|x| x.get("code").is_some());
        if !coded && error.path.is_empty() {
            *error = request_error(
                std::mem::replace(error, async_graphql::ServerError::new("", None)),
                Code::GraphqlValidationFailed,
            );
        } else if !coded {
            tracing::error!(message = %error.message, path = ?error.path, "a field failed without an error code");
            error.extensions.get_or_insert_with(Default::default).set("code", Code::Internal.as_str());
        }
        error.locations.retain(|pos| pos.line > 0 && pos.column > 0);
    }
}

/// Whether `response` is a request that never ran: no data, and only errors of
/// [`REQUEST_CODES`].
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| {
            let code = error.extensions.as_ref().and_then(|x| x.get("code"));
            REQUEST_CODES.iter().any(|c| code == Some(&async_graphql::Value::from(c.as_str())))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_messages_become_one_line() {
        let Err(error) = async_graphql::parser::parse_query("{ contacts { ") else { panic!("does not parse") };
        let error = request_error(async_graphql::ServerError::from(error), Code::GraphqlParseFailed);
        assert!(!error.message.contains('\n'), "{}", error.message);
        assert!(error.message.starts_with("syntax error: expected"), "{}", error.message);
        assert!(error.locations.iter().all(|pos| pos.line >= 1 && pos.column >= 1), "{:?}", error.locations);
        assert!(!error.locations.is_empty());
        assert_eq!(one_line("Unknown field \"x\""), "Unknown field \"x\"");
        assert_eq!(one_line("a\n  b"), "a b");
    }

    #[test]
    fn a_coded_error_keeps_its_code_and_unknown_locations_are_dropped() {
        let mut error = coded(Code::QueryTooDeep, "deep").into_server_error(async_graphql::Pos { line: 0, column: 0 });
        error = request_error(error, Code::GraphqlValidationFailed);
        assert!(error.locations.is_empty());
        let code = error.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from(Code::QueryTooDeep.as_str())));
    }
}
