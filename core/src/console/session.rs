//! Sessions: sign-in at `/login` (the `login` mutation, so the login throttle applies), a
//! session cookie (HttpOnly, SameSite=Strict, Secure behind TLS) holding the session token,
//! CSRF tokens on every form, sign-out, and first-run setup of the first ADMIN (from a loopback
//! client, or with the setup code `kith serve` prints). Sessions end after
//! `users::SESSION_HOURS`, or when idle for `users::SESSION_IDLE_MINUTES`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::auth::ClientAddr;
use crate::console::{assets, page, run, text};
use crate::domain::actor::Actor;
use crate::domain::code::Code;
use crate::http::AppState;
use crate::service::users;

/// The cookie that holds the session token.
pub const SESSION_COOKIE: &str = "kith_session";
/// The cookie that holds the CSRF token of the sign-in and setup forms (before a session).
pub const FORM_COOKIE: &str = "kith_form";

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who it is, as the API resolves the token.
    pub actor: Actor,
    /// The session token (the cookie's value).
    pub secret: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// The CSRF token of a session: derived from its secret, so it needs no storage and cannot be
/// made without the (HttpOnly) cookie.
pub fn csrf_for(secret: &str) -> String {
    hex::encode(Sha256::digest(format!("kith-console-csrf\0{secret}").as_bytes()))
}

/// Whether `given` equals `expected`, in time independent of where they differ.
fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Whether the request came over TLS (directly or through a proxy that says so).
fn behind_tls(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure behind TLS.
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("kith_invalid=1"))
}

/// A path to go back to after signing in: only a local path.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_owned(),
        _ => "/".to_owned(),
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Session, Response> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
        let to_login = || {
            let target =
                format!("/login?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
            Redirect::to(&target).into_response()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE).filter(|s| !s.is_empty()) else {
            return Err(to_login());
        };
        match users::authenticate_cached(&state.kith, &secret).await {
            // A page counts against the session's request budget as an API request does.
            Ok(Some(actor)) if !state.rate_limiter.allow(actor.id.as_deref().unwrap_or(&actor.name)) => {
                let mut response = assets::secure(
                    crate::console::respond(
                        StatusCode::TOO_MANY_REQUESTS,
                        page(text::BRAND, html! { main #main { p.notice role="alert" { (text::SLOW_DOWN) } } }),
                    )
                    .into_response(),
                );
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
                Err(response)
            }
            Ok(Some(actor)) => {
                // For the access log.
                if let Some(slot) = parts.extensions.get::<crate::http::metrics::CallerSlot>() {
                    slot.set(&actor);
                }
                Ok(Session { actor, csrf: csrf_for(&secret), secret })
            }
            Ok(None) => Err(to_login()),
            Err(err) => {
                tracing::error!(error = %err, "console: cannot check a session");
                Err(assets::secure(
                    crate::console::respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        page(text::BRAND, html! { p.error { (text::INTERNAL) } }),
                    )
                    .into_response(),
                ))
            }
        }
    }
}

/// Checks a session form's CSRF token; the refusal page when it does not match.
pub fn check_csrf(session: &Session, given: &str) -> Result<(), Box<Response>> {
    if same(given, &session.csrf) { Ok(()) } else { Err(Box::new(refused())) }
}

/// The answer to a form whose CSRF token does not match: 403, nothing done.
fn refused() -> Response {
    assets::secure(
        crate::console::respond(
            StatusCode::FORBIDDEN,
            page(text::BRAND, html! { main #main { p.notice { (text::STALE_FORM) } } }),
        )
        .into_response(),
    )
}

/// A fresh random token for a form shown before a session exists (double-submit: the same
/// value in a cookie and in the form).
fn form_token() -> String {
    crate::store::tokens::generate()
}

/// Query of `/login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in.
    pub next: Option<String>,
    /// Set after signing out.
    pub out: Option<String>,
}

/// The sign-in form.
fn login_form(token: &str, next: &str, email: &str, message: Option<&str>) -> Markup {
    page(
        text::SIGN_IN,
        html! {
            main #main.narrow {
                h1 { (text::SIGN_IN) }
                @if let Some(message) = message { p.notice role="alert" { (message) } }
                form.record method="post" action="/login" {
                    input type="hidden" name="_csrf" value=(token);
                    input type="hidden" name="next" value=(next);
                    label for="email" { (text::EMAIL) }
                    input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                    label for="password" { (text::PASSWORD) }
                    input #password type="password" name="password" required autocomplete="current-password";
                    div.actions { button type="submit" { (text::SIGN_IN) } }
                }
            }
        },
    )
}

/// A page with a fresh form token in its cookie.
fn with_form_token(headers: &HeaderMap, status: StatusCode, token: &str, body: Markup) -> Response {
    let mut response = crate::console::respond(status, body).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(headers, FORM_COOKIE, token, 3600));
    assets::secure(response)
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    if let Ok(false) = crate::store::users::any(state.kith.store.conn()).await {
        return Redirect::to("/setup").into_response();
    }
    let token = form_token();
    let message = query.out.as_ref().map(|_| text::SIGNED_OUT);
    let next = local_path(query.next.as_deref());
    with_form_token(&headers, StatusCode::OK, &token, login_form(&token, &next, "", message))
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The form's CSRF token.
    #[serde(rename = "_csrf")]
    pub csrf: String,
    /// E-mail.
    pub email: String,
    /// Password.
    pub password: String,
    /// Where to go next.
    pub next: Option<String>,
}

/// Signs in through the `login` mutation and sets the session cookie.
async fn sign_in(state: &AppState, client: ClientAddr, email: &str, password: &str) -> Result<String, String> {
    let answer = run(
        state,
        None,
        client,
        "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
        serde_json::json!({"email": email, "password": password}),
    )
    .await;
    match answer.data["login"]["token"].as_str() {
        Some(token) => Ok(token.to_owned()),
        None => Err(match answer.code() {
            Some(Code::RateLimited) => {
                let wait = answer.errors.first().map(|e| e.message.clone()).unwrap_or_default();
                format!("{} {}", text::TOO_MANY_TRIES, wait.trim_start_matches(|c: char| !c.is_ascii_digit()))
                    .trim()
                    .to_owned()
            }
            Some(Code::Forbidden | Code::BadUserInput) => text::WRONG_LOGIN.to_owned(),
            _ => text::INTERNAL.to_owned(),
        }),
    }
}

/// The session cookie for `token`, and the form cookie cleared.
fn signed_in(headers: &HeaderMap, token: &str, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    let cookies = response.headers_mut();
    cookies.append(header::SET_COOKIE, set_cookie(headers, SESSION_COOKIE, token, users::SESSION_HOURS * 3600));
    cookies.append(header::SET_COOKIE, set_cookie(headers, FORM_COOKIE, "", 0));
    response
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, &expected) {
        return refused();
    }
    let next = local_path(form.next.as_deref());
    let client = ClientAddr(connect.map(|c| c.0.0.ip()));
    match sign_in(&state, client, &form.email, &form.password).await {
        Ok(token) => signed_in(&headers, &token, &next),
        Err(message) => {
            let token = form_token();
            let status = if message.starts_with(text::TOO_MANY_TRIES) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            with_form_token(&headers, status, &token, login_form(&token, &next, &form.email, Some(&message)))
        }
    }
}

/// A session form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The form's CSRF token.
    #[serde(rename = "_csrf")]
    pub csrf: String,
}

/// `POST /logout`: ends the session (its token is revoked) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, &form.csrf) {
        return *refusal;
    }
    if let Err(err) = users::end_session(&state.kith, &session.actor, &session.secret).await {
        tracing::error!(error = %err, "console: cannot end a session");
    }
    let mut response = Redirect::to("/login?out=1").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0));
    response
}

/// Whether first-run setup may be done from `client` without the setup code.
/// A request relayed by a proxy (which says so in `Forwarded` or `X-Forwarded-*`) comes from
/// loopback whoever sent it, so it is not taken as local.
fn loopback(client: Option<&axum::Extension<ConnectInfo<SocketAddr>>>, headers: &HeaderMap) -> bool {
    let relayed = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    !relayed && client.is_some_and(|c| c.0.0.ip().is_loopback())
}

/// The setup form.
fn setup_form(token: &str, with_code: bool, email: &str, name: &str, message: Option<&str>) -> Markup {
    page(
        text::SETUP,
        html! {
            main #main.narrow {
                h1 { (text::SETUP) }
                p { (text::SETUP_HINT) }
                @if let Some(message) = message { p.notice role="alert" { (message) } }
                form.record method="post" action="/setup" {
                    input type="hidden" name="_csrf" value=(token);
                    label for="name" { (text::YOUR_NAME) }
                    input #name type="text" name="name" value=(name) required autocomplete="name";
                    label for="email" { (text::EMAIL) }
                    input #email type="email" name="email" value=(email) required autocomplete="username";
                    label for="password" { (text::PASSWORD) }
                    input #password type="password" name="password" required minlength="10" autocomplete="new-password";
                    @if with_code {
                        label for="code" { (text::SETUP_CODE) }
                        input #code type="text" name="code" required autocomplete="off";
                    }
                    div.actions { button type="submit" { (text::CREATE) } }
                }
            }
        },
    )
}

/// `GET /setup`: the first-run page, while Kith has no user.
pub async fn setup_page(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    match crate::store::users::any(state.kith.store.conn()).await {
        Ok(false) => {}
        Ok(true) => return Redirect::to("/login").into_response(),
        Err(err) => {
            tracing::error!(error = %err, "console: cannot read users");
            return assets::secure(
                crate::console::respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    page(text::BRAND, html! { p.error { (text::INTERNAL) } }),
                )
                .into_response(),
            );
        }
    }
    let token = form_token();
    with_form_token(
        &headers,
        StatusCode::OK,
        &token,
        setup_form(&token, !loopback(connect.as_ref(), &headers), "", "", None),
    )
}

/// The setup form's fields.
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    /// The form's CSRF token.
    #[serde(rename = "_csrf")]
    pub csrf: String,
    /// The admin's e-mail.
    pub email: String,
    /// The admin's name.
    pub name: String,
    /// The admin's password.
    pub password: String,
    /// The setup code, from a client that is not on loopback.
    pub code: Option<String>,
}

/// `POST /setup`: creates the first ADMIN and signs them in.
pub async fn setup(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, &expected) {
        return refused();
    }
    let with_code = !loopback(connect.as_ref(), &headers);
    let again = |message: &str| {
        let token = form_token();
        with_form_token(
            &headers,
            StatusCode::BAD_REQUEST,
            &token,
            setup_form(&token, with_code, &form.email, &form.name, Some(message)),
        )
    };
    if with_code && !form.code.as_deref().is_some_and(|code| same(code.trim(), &state.setup_code)) {
        return again(text::WRONG_SETUP_CODE);
    }
    match users::create_first_admin(&state.kith, &form.email, &form.name, &form.password).await {
        Ok(_) => {}
        Err(crate::Error::Domain(crate::domain::DomainError::Conflict(_))) => return again(text::SETUP_DONE),
        Err(crate::Error::Domain(err)) => return again(&err.to_string()),
        Err(err) => {
            tracing::error!(error = %err, "console: first-run setup failed");
            return again(text::INTERNAL);
        }
    }
    let client = ClientAddr(connect.map(|c| c.0.0.ip()));
    match sign_in(&state, client, &form.email, &form.password).await {
        Ok(token) => signed_in(&headers, &token, "/"),
        Err(_) => Redirect::to("/login").into_response(),
    }
}
