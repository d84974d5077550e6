//! Users and roles: the list (name, e-mail, role, active), a form for a new user with a role
//! (`createUser`), and a user's page to change their name, role or whether they may sign in
//! (`updateUser`, which keeps at least one active ADMIN).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value as Json, json};

use crate::console::admin::{admin_page, field, offered, refusal, role_select, text_of, write};
use crate::console::pages::{problem, query};
use crate::console::session::Session;
use crate::console::{Answer, form, text};
use crate::domain::actor::Role;
use crate::http::AppState;

/// Users a page lists.
const USERS: i64 = 200;

/// The list and the new-user form (with what was submitted and why it was refused).
async fn list_page(
    state: &AppState,
    session: &Session,
    submitted: &[(String, String)],
    answer: Option<&Answer>,
) -> Response {
    if let Err(refusal) = offered(state, session, Role::Admin) {
        return *refusal;
    }
    let listed = query(
        state,
        session,
        &format!("{{ users(first: {USERS}, orderBy: [{{field: name}}]) {{ edges {{ node {{ id name email role active }} }} }} }}"),
        json!({}),
    )
    .await;
    let value = |name: &str| field(submitted, name);
    let edges = listed.data["users"]["edges"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { (text::USERS) }
        (refusal(Some(&listed)))
        div.table-wrap { table {
            thead { tr { th scope="col" { (text::NAME) } th scope="col" { (text::EMAIL) } th scope="col" { (text::ROLE) } th scope="col" { (text::ACTIVE_COLUMN) } } }
            tbody {
                @for edge in &edges {
                    @let user = &edge["node"];
                    tr {
                        td { a href=(format!("/admin/users/{}", text_of(&user["id"]))) { (text_of(&user["name"])) } }
                        td { (text_of(&user["email"])) }
                        td { (form::humanize_value(text_of(&user["role"]))) }
                        td { @if user["active"].as_bool() == Some(true) { (text::YES) } @else { (text::NO) } }
                    }
                }
            }
        } }
        h2 #new-user { (text::NEW_USER) }
        (refusal(answer))
        form.record method="post" action="/admin/users" aria-labelledby="new-user" {
            input type="hidden" name="_csrf" value=(session.csrf);
            div { label for="u-name" { (text::NAME) " *" } input #u-name type="text" name="name" value=(value("name")) required; }
            div { label for="u-email" { (text::EMAIL) " *" } input #u-email type="email" name="email" value=(value("email")) required; }
            div { (role_select("u-role", form::submitted(submitted, "role").unwrap_or("AGENT"))) }
            div { label for="u-password" { (text::PASSWORD_OPTIONAL) } input #u-password type="password" name="password" autocomplete="new-password"; }
            div.actions { button type="submit" { (text::CREATE) } }
        }
    };
    admin_page(state, session, answer, text::USERS, content)
}

/// `GET /admin/users`.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    list_page(&state, &session, &[], None).await
}

/// `POST /admin/users`: creates a user (`createUser`).
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| field(&submitted, name);
    let password = Some(value("password")).filter(|p| !p.is_empty());
    let answer = match write(
        &state,
        &session,
        &submitted,
        "mutation($email: String!, $name: String!, $role: UserRole!, $password: String) { \
         createUser(email: $email, name: $name, role: $role, password: $password) { id } }",
        json!({ "email": value("email"), "name": value("name"), "role": value("role"), "password": password }),
        "/admin/users",
    )
    .await
    {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    list_page(&state, &session, &submitted, Some(&answer)).await
}

/// A user's form: name, role, active, with the version it shows.
fn user_form(session: &Session, id: &str, user: &Json) -> Markup {
    html! {
        form.record method="post" action=(format!("/admin/users/{id}")) {
            input type="hidden" name="_csrf" value=(session.csrf);
            @if let Some(version) = user["version"].as_i64() { input type="hidden" name="_version" value=(version); }
            div { label for="u-name" { (text::NAME) " *" } input #u-name type="text" name="name" value=(text_of(&user["name"])) required; }
            div { (role_select("u-role", text_of(&user["role"]))) }
            div {
                input type="hidden" name="active" value="false";
                input #u-active type="checkbox" name="active" value="true" checked[user["active"].as_bool() == Some(true)];
                label for="u-active" { (text::ACTIVE) }
            }
            div.actions { button type="submit" { (text::SAVE) } a href="/admin/users" { (text::CANCEL) } }
        }
    }
}

/// A user's page, or why there is none.
async fn user_page(
    state: &AppState,
    session: &Session,
    id: &str,
    shown: Option<&Json>,
    answer: Option<&Answer>,
) -> Response {
    if let Err(refusal) = offered(state, session, Role::Admin) {
        return *refusal;
    }
    let read = query(
        state,
        session,
        "query($id: ID!) { user(id: $id) { id name email role active version } }",
        json!({ "id": id }),
    )
    .await;
    let user = &read.data["user"];
    if user.is_null() {
        return problem(state, session, StatusCode::NOT_FOUND, text::NOT_FOUND);
    }
    let content = html! {
        p.muted { a href="/admin/users" { (text::USERS) } }
        h1 { (text::EDIT_USER) " " (text_of(&user["email"])) }
        (refusal(answer))
        (user_form(session, id, shown.unwrap_or(user)))
    };
    admin_page(state, session, answer, text::USERS, content)
}

/// `GET /admin/users/{id}`.
pub async fn edit(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    user_page(&state, &session, &id, None, None).await
}

/// `POST /admin/users/{id}`: changes the user (`updateUser`).
pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| field(&submitted, name);
    let input = json!({ "name": value("name"), "role": value("role"), "active": value("active") == "true" });
    let version = value("_version").parse::<i64>().ok();
    let answer = match write(
        &state,
        &session,
        &submitted,
        "mutation($id: ID!, $input: UpdateUserInput!, $version: Int) { \
         updateUser(id: $id, input: $input, expectedVersion: $version) { id } }",
        json!({ "id": id, "input": input.clone(), "version": version }),
        "/admin/users",
    )
    .await
    {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    let mut shown = input;
    shown["version"] = json!(version);
    user_page(&state, &session, &id, Some(&shown), Some(&answer)).await
}
