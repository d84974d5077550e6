//! API tokens: the list (name, role, first characters, created, last used, expiry, revoked),
//! a form for a new token (`createApiToken`) whose secret is shown once, on the answer to that
//! form and never again, and revoking (`revokeApiToken`).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::{Value as Json, json};

use crate::console::admin::{
    admin_page, field, offered, refusal, role_select, section_page, submit, text_of, when, write,
};
use crate::console::pages::query;
use crate::console::session::Session;
use crate::console::{Answer, form, text};
use crate::domain::actor::Role;
use crate::http::AppState;

/// The list and the new-token form (with what was submitted and why it was refused).
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
        "{ apiTokens { id name prefix role createdAt lastUsedAt expiresAt revokedAt } }",
        json!({}),
    )
    .await;
    let tokens = listed.data["apiTokens"].as_array().cloned().unwrap_or_default();
    let value = |name: &str| field(submitted, name);
    let content = html! {
        h1 { (text::TOKENS) }
        (refusal(Some(&listed)))
        @if tokens.is_empty() { p.muted { (text::NOTHING_YET) } } @else {
            div.table-wrap { table {
                thead { tr {
                    @for column in [text::NAME, text::ROLE, text::TOKEN_PREFIX, text::CREATED, text::LAST_USED, text::EXPIRES, text::REVOKED] {
                        th scope="col" { (column) }
                    }
                    th scope="col" { span.skip { (text::REVOKE) } }
                } }
                tbody {
                    @for token in &tokens {
                        tr {
                            td { (text_of(&token["name"])) }
                            td { (form::humanize_value(text_of(&token["role"]))) }
                            td { code { (text_of(&token["prefix"])) "…" } }
                            td { (when(&token["createdAt"])) }
                            td { @if token["lastUsedAt"].is_null() { (text::NEVER) } @else { (when(&token["lastUsedAt"])) } }
                            td { @if token["expiresAt"].is_null() { (text::NEVER) } @else { (when(&token["expiresAt"])) } }
                            td { (when(&token["revokedAt"])) }
                            td {
                                @if token["revokedAt"].is_null() {
                                    form method="post" action=(format!("/admin/tokens/{}/revoke", text_of(&token["id"]))) {
                                        input type="hidden" name="_csrf" value=(session.csrf);
                                        button.danger type="submit" aria-label=(format!("{} {}", text::REVOKE, text_of(&token["name"]))) { (text::REVOKE) }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        h2 #new-token { (text::NEW_TOKEN) }
        (refusal(answer))
        form.record method="post" action="/admin/tokens" aria-labelledby="new-token" {
            input type="hidden" name="_csrf" value=(session.csrf);
            div { label for="t-name" { (text::NAME) " *" } input #t-name type="text" name="name" value=(value("name")) required; }
            div { (role_select("t-role", form::submitted(submitted, "role").unwrap_or("VIEWER"))) }
            div { label for="t-days" { (text::EXPIRES_IN_DAYS) } input #t-days type="number" name="expiresInDays" min="1" value=(value("expiresInDays")); }
            div.actions { button type="submit" { (text::CREATE) } }
        }
    };
    admin_page(state, session, answer, text::TOKENS, content)
}

/// `GET /admin/tokens`.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    list_page(&state, &session, &[], None).await
}

/// `POST /admin/tokens`: makes a token and shows its secret, this once.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| field(&submitted, name);
    // What is not a whole number goes as typed, and the API says why it is not one.
    let days = match value("expiresInDays") {
        days if days.is_empty() => Json::Null,
        days => days.parse::<i64>().map_or(Json::String(days), Json::from),
    };
    let answer = match submit(
        &state,
        &session,
        &submitted,
        "mutation($name: String!, $role: UserRole!, $days: Int) { createApiToken(name: $name, role: $role, expiresInDays: $days) }",
        json!({ "name": value("name"), "role": value("role"), "days": days }),
    )
    .await
    {
        Ok(answer) => answer,
        Err(refusal) => return *refusal,
    };
    let Some(secret) = answer.data["createApiToken"].as_str() else {
        return list_page(&state, &session, &submitted, Some(&answer)).await;
    };
    let content = html! {
        h1 { (text::TOKEN_CREATED) }
        div.ok role="status" {
            p { (text::TOKEN_ONCE) }
            p { label for="secret" { (value("name")) } }
            input #secret type="text" readonly value=(secret) size="72";
        }
        p { a href="/admin/tokens" { (text::BACK_TO_TOKENS) } }
    };
    section_page(&state, &session, StatusCode::CREATED, text::TOKENS, content)
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let answer = match write(
        &state,
        &session,
        &submitted,
        "mutation($id: String!) { revokeApiToken(idOrName: $id) }",
        json!({ "id": id }),
        "/admin/tokens",
    )
    .await
    {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    list_page(&state, &session, &[], Some(&answer)).await
}
