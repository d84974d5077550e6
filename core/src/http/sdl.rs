//! `GET /graphql/schema.graphql`: the SDL of exactly the schema this server answers with, the
//! enabled plugins' objects, fields and operations included (the schema is rebuilt when they
//! change, and the current one is printed), for code generators and schema registries.
//!
//! It needs a bearer token, of any role (`401 UNAUTHENTICATED` without one or with a bad one,
//! the body shaped as the GraphQL answers' errors), counts against the token's rate limit, and
//! is refused (`403 FORBIDDEN`) when `api.introspection` is off: it tells what introspection
//! would.

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::code::Code;
use crate::service::users;

use super::{AppState, gql_error, unauthenticated, unavailable};

/// The SDL's media type: GraphQL's own, as text, in UTF-8.
const SDL_CONTENT_TYPE: &str = "application/graphql; charset=utf-8";

/// `GET /graphql/schema.graphql`.
pub async fn schema(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        return unauthenticated(&headers);
    }
    let actor = match users::authenticate_cached(&state.kith, token).await {
        Ok(Some(actor)) => actor,
        Ok(None) => return unauthenticated(&headers),
        Err(crate::error::Error::Unavailable(err)) => {
            tracing::error!(error = %err, "the database is unreachable while authenticating a schema request");
            return unavailable(&headers);
        }
        Err(err) => {
            tracing::error!(error = %err, "authenticating a schema request");
            return gql_error(StatusCode::INTERNAL_SERVER_ERROR, &headers, Code::Internal, "internal error");
        }
    };
    if !state.rate_limiter.allow(actor.id.as_deref().unwrap_or("anonymous")) {
        return gql_error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            Code::RateLimited,
            "too many requests for this token; slow down",
        );
    }
    if !state.api.introspection {
        return gql_error(
            StatusCode::FORBIDDEN,
            &headers,
            Code::Forbidden,
            "schema introspection is turned off on this server (api.introspection), and with it the SDL",
        );
    }
    let sdl = state.current_schema().sdl();
    let mut response = sdl.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(SDL_CONTENT_TYPE));
    // The schema changes when plugins come and go: always ask again.
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
