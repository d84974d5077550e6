//! Administration at `/admin`: users and roles, API tokens, custom fields, plugins and the audit
//! log. Offered only to ADMINs (the menu entry, the pages); every read and write is still the
//! API's ADMIN (or MANAGER, for the audit log) operation run as the signed-in user, so a role
//! that may not do something is refused by the API whatever it posts.
//!
//! - `users`: the users, a new user with a role, a user's name, role and whether they are active.
//! - `tokens`: API tokens; a new token's secret is shown once, on the page that made it.
//! - `custom_fields`: the custom fields of each object, and a form to define one.
//! - `plugins`: installed plugins, their health, grants, operations, settings, dead letters and jobs.
//! - `audit`: the audit log, filtered, a page at a time.

pub mod audit;
pub mod custom_fields;
pub mod plugins;
pub mod tokens;
pub mod users;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value as Json;

use crate::console::form;
use crate::console::pages::{messages, problem, query, render};
use crate::console::session::{Session, check_csrf};
use crate::console::{Answer, text};
use crate::domain::actor::{Actor, Role};
use crate::domain::code::Code;
use crate::domain::value::FieldKind;
use crate::http::AppState;

/// The sections, with their paths and the least role the API lets use them.
const SECTIONS: &[(&str, &str, Role)] = &[
    ("/admin/users", text::USERS, Role::Admin),
    ("/admin/tokens", text::TOKENS, Role::Admin),
    ("/admin/fields", text::CUSTOM_FIELDS, Role::Admin),
    ("/admin/plugins", text::PLUGINS, Role::Admin),
    ("/admin/audit", text::AUDIT_LOG, Role::Manager),
];

/// The sections `actor` may use.
fn sections(actor: &Actor) -> impl Iterator<Item = &'static (&'static str, &'static str, Role)> + '_ {
    SECTIONS.iter().filter(|(_, _, least)| actor.role.allows(*least))
}

/// The roles, most powerful first.
const ROLES: [Role; 4] = [Role::Admin, Role::Manager, Role::Agent, Role::Viewer];

/// Whether `actor` is offered the administration pages (the API's ADMIN operations).
pub(crate) fn may_administer(actor: &Actor) -> bool {
    actor.role.allows(Role::Admin)
}

/// Refuses a page to a role the API would refuse its operations (what it may not do is not
/// offered).
fn offered(state: &AppState, session: &Session, least: Role) -> Result<(), Box<Response>> {
    if session.actor.role.allows(least) {
        Ok(())
    } else {
        Err(Box::new(problem(state, session, StatusCode::FORBIDDEN, text::FORBIDDEN)))
    }
}

/// An administration page with the API's refusal of the form it shows again, if any (403
/// when the role may not, else 422).
fn admin_page(state: &AppState, session: &Session, refused: Option<&Answer>, title: &str, content: Markup) -> Response {
    let status = match refused.and_then(Answer::code) {
        None => StatusCode::OK,
        Some(Code::Forbidden) => StatusCode::FORBIDDEN,
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    section_page(state, session, status, title, content)
}

/// An administration page: the sections' menu, then `content`.
fn section_page(state: &AppState, session: &Session, status: StatusCode, title: &str, content: Markup) -> Response {
    let content = html! {
        nav.actions aria-label=(text::ADMIN_MENU) {
            @for (href, label, _) in sections(&session.actor) { a href=(href) aria-current=[(*label == title).then_some("page")] { (label) } }
        }
        (content)
    };
    render(state, session, status, title.to_owned(), content)
}

/// `GET /admin`: the sections.
pub async fn index(State(state): State<AppState>, session: Session) -> Response {
    if let Err(refusal) = offered(&state, &session, Role::Admin) {
        return *refusal;
    }
    let content = html! {
        h1 { (text::ADMINISTRATION) }
        ul { @for (href, label, _) in sections(&session.actor) { li { a href=(href) { (label) } } } }
    };
    render(&state, &session, StatusCode::OK, text::ADMINISTRATION.to_owned(), content)
}

/// Runs a submitted form's mutation as the signed-in user; refused, with nothing done, without
/// the session's CSRF token.
async fn submit(
    state: &AppState,
    session: &Session,
    submitted: &[(String, String)],
    document: &str,
    variables: Json,
) -> Result<Answer, Box<Response>> {
    check_csrf(session, form::submitted(submitted, "_csrf").unwrap_or_default())?;
    Ok(query(state, session, document, variables).await)
}

/// Runs a submitted form's mutation: `Err` is the answer to send, a redirect to `back` when
/// the API took it (so reloading does not repeat it) or the CSRF refusal; `Ok` is the API's
/// refusal, to show beside the form.
async fn write(
    state: &AppState,
    session: &Session,
    submitted: &[(String, String)],
    document: &str,
    variables: Json,
    back: &str,
) -> Result<Answer, Box<Response>> {
    let answer = submit(state, session, submitted, document, variables).await?;
    if answer.errors.is_empty() { Err(Box::new(Redirect::to(back).into_response())) } else { Ok(answer) }
}

/// Why the API refused, beside the form that asked.
fn refusal(answer: Option<&Answer>) -> Markup {
    html! {
        @if let Some(answer) = answer.filter(|a| !a.errors.is_empty()) {
            div.notice role="alert" { p { (text::NOT_DONE) " " (messages(answer)) } }
        }
    }
}

/// A labelled choice of role.
fn role_select(id: &str, selected: &str) -> Markup {
    html! {
        label for=(id) { (text::ROLE) }
        select #(id) name="role" {
            @for role in ROLES { option value=(role.as_str()) selected[selected == role.as_str()] { (form::humanize_value(role.as_str())) } }
        }
    }
}

/// An instant as people read it (empty when none).
fn when(value: &Json) -> String {
    form::display(&FieldKind::DateTime, value)
}

/// A submitted form field, trimmed (empty when absent).
fn field(submitted: &[(String, String)], name: &str) -> String {
    form::submitted(submitted, name).unwrap_or_default().trim().to_owned()
}

/// A string of a JSON answer (empty when none).
fn text_of(value: &Json) -> &str {
    value.as_str().unwrap_or_default()
}
