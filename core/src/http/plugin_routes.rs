//! `/p/PLUGIN/...`: the inbound HTTP routes plugins declare (`[[routes]]`, SDK 1.3), answered by
//! their `http-handler` export.
//!
//! Kith checks everything before the plugin runs: the plugin is enabled and active, a declared
//! route matches the method and path (else 404, or 405 with `Allow`), a `token` route's bearer
//! token (401), the route's rate (429) and body cap (413). The plugin never sees the caller's
//! `Authorization` or `Cookie` headers. Its answer goes out with only the headers a page or an
//! API needs, and with a content security policy that sandboxes it: a plugin's page runs no
//! script and cannot act with the console's session that shares this origin.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::AppState;
use crate::plugin::host::v1_ext::exports::kith::plugin::http_handler as wit;
use crate::plugin::manager::PluginManager;
use crate::plugin::routes::RouteAccess;
use crate::service::users;

/// What every plugin page is served with: no scripts, no plugins, no framing, forms only to
/// this origin, and an opaque origin of its own (`sandbox`), so it reaches nothing of the
/// console's.
pub const PAGE_POLICY: &str = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; sandbox allow-forms allow-top-navigation";

/// Headers a plugin's answer may carry (besides `x-` headers).
const ANSWER_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "cache-control",
    "content-disposition",
    "content-language",
    "etag",
    "last-modified",
    "expires",
    "vary",
    "link",
    "retry-after",
];

/// The routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/p/{plugin}/{*path}", any(handle))
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

async fn handle(
    State(state): State<AppState>,
    Path((plugin, path)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let not_found = || plain(StatusCode::NOT_FOUND, "no such page");
    let Some(loaded) = PluginManager::of(&state.kith).and_then(|m| m.loaded(&plugin)).filter(|p| p.active) else {
        return not_found();
    };
    let path = format!("/{path}");
    let routes = &loaded.manifest.routes;
    let Some((index, route)) = routes.iter().enumerate().find(|(_, r)| r.matches(method.as_str(), &path)) else {
        let allowed: Vec<&str> =
            routes.iter().filter(|r| r.matches(&r.method, &path)).map(|r| r.method.as_str()).collect();
        if allowed.is_empty() {
            return not_found();
        }
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        return response;
    };
    let caller = match route.access {
        RouteAccess::Public => None,
        RouteAccess::Token => {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .unwrap_or_default();
            match users::authenticate_cached(&state.kith, token).await {
                Ok(Some(actor)) if !token.is_empty() => Some(actor.label()),
                Ok(_) => {
                    let mut response = plain(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return response;
                }
                Err(err) => {
                    tracing::error!(error = %err, "authenticating a plugin route's request");
                    return plain(StatusCode::SERVICE_UNAVAILABLE, "cannot check the token now; try again");
                }
            }
        }
    };
    if !loaded.route_allowed(index) {
        let mut response = plain(StatusCode::TOO_MANY_REQUESTS, "too many requests; slow down");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let Ok(body) = axum::body::to_bytes(body, route.max_body_bytes).await else {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than this page accepts ({} bytes)", route.max_body_bytes),
        );
    };
    let request = wit::Request {
        method: method.as_str().to_owned(),
        route: route.path.clone(),
        path,
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION && *name != header::COOKIE)
            .filter_map(|(name, value)| {
                Some(wit::Header { name: name.as_str().to_owned(), value: value.to_str().ok()?.to_owned() })
            })
            .collect(),
        body: body.to_vec(),
        caller,
    };
    match loaded.call_route(&request).await {
        Ok(answer) => answer_of(answer, method == Method::HEAD),
        Err(failure) => {
            tracing::warn!(plugin = %plugin, route = %route.path, error = %failure, "a plugin route failed");
            plain(StatusCode::BAD_GATEWAY, "the plugin could not answer")
        }
    }
}

fn answer_of(answer: wit::Response, head: bool) -> Response {
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| (200..600).contains(&s.as_u16()))
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = if head { Response::new(Body::empty()) } else { Response::new(Body::from(answer.body)) };
    *response.status_mut() = status;
    let out = response.headers_mut();
    for h in answer.headers {
        let name = h.name.to_ascii_lowercase();
        if !(ANSWER_HEADERS.contains(&name.as_str()) || name.starts_with("x-")) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (header::HeaderName::try_from(name), HeaderValue::from_str(&h.value)) {
            out.append(name, value);
        }
    }
    out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !out.contains_key(header::CONTENT_TYPE) {
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    }
    response
}
