//! A contact's privacy page (`/privacy/{id}`): the consent history with a form to record a
//! consent given or withdrawn, the legal hold, the download of everything Kith holds about the
//! person (MANAGER), and erasure with its plan and a typed confirmation (ADMIN). Every action is
//! a GraphQL operation run as the signed-in user, so the API's rules and audit apply.

use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Value as Json, json};

use crate::console::pages::{messages, problem, query, render};
use crate::console::session::{Session, check_csrf};
use crate::console::{form, may_delete, may_write, text};
use crate::domain::actor::Role;
use crate::domain::value::FieldKind;
use crate::http::AppState;

fn label<'a>(pairs: &'a [(&'a str, &'a str)], value: &'a str) -> &'a str {
    pairs.iter().find(|(v, _)| *v == value).map_or(value, |(_, l)| l)
}

fn plan_table(lines: &Json) -> Markup {
    html! {
        table {
            thead { tr { @for h in text::ERASE_COLUMNS { th scope="col" { (h) } } } }
            tbody {
                @for line in lines.as_array().into_iter().flatten() {
                    tr {
                        td.num { (line["records"].as_i64().unwrap_or(0)) }
                        td {
                            (crate::domain::object::humanize(line["object"].as_str().unwrap_or_default()))
                            @if let Some(plugin) = line["plugin"].as_str() { span.muted { " (" (plugin) ")" } }
                        }
                        td { (label(&text::POLICIES, line["policy"].as_str().unwrap_or_default())) }
                        td { (line["legalBasis"].as_str().unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// `GET /privacy/{id}`.
pub async fn page(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let answer = query(
        &state,
        &session,
        "query($id: ID!) { contact(id: $id) { id firstName lastName email legalHold
           consents(first: 200, orderBy: [{field: occurredAt, direction: DESC}]) {
             edges { node { occurredAt channel status source statement recordedBy } } } } }",
        json!({ "id": id }),
    )
    .await;
    let contact = &answer.data["contact"];
    if contact.is_null() {
        let message = if answer.errors.is_empty() { text::NOT_FOUND.to_owned() } else { messages(&answer) };
        return problem(&state, &session, StatusCode::NOT_FOUND, &message);
    }
    let registry = state.kith.registry();
    let title = registry.get("contact").map(|def| form::title_of(def, session.actor.role, contact)).unwrap_or_default();
    let plan = if session.actor.role.allows(Role::Admin) {
        let answer = query(
            &state,
            &session,
            "query($id: ID!) { erasurePlan(contactId: $id) { lines { object plugin policy legalBasis records } } }",
            json!({ "id": id }),
        )
        .await;
        Some(if answer.errors.is_empty() {
            Ok(answer.data["erasurePlan"]["lines"].clone())
        } else {
            Err(messages(&answer))
        })
    } else {
        None
    };
    let held = contact["legalHold"].as_bool() == Some(true);
    let consents: Vec<Json> =
        contact["consents"]["edges"].as_array().into_iter().flatten().map(|e| e["node"].clone()).collect();
    let content = html! {
        p.muted { a href=(format!("/o/contacts/{id}")) { (title) } }
        h1 { (text::PRIVACY_OF) (title) }
        section aria-labelledby="consents" {
            h2 #consents { (text::CONSENT_HISTORY) }
            @if consents.is_empty() {
                p.muted { (text::NO_CONSENT) }
            } @else {
                table {
                    thead { tr { @for h in text::CONSENT_COLUMNS { th scope="col" { (h) } } } }
                    tbody {
                        @for c in &consents {
                            tr {
                                td { (form::show(&FieldKind::DateTime, &c["occurredAt"])) }
                                td { (label(&text::CONSENT_CHANNELS, c["channel"].as_str().unwrap_or_default())) }
                                td { (label(&text::CONSENT_STATUSES, c["status"].as_str().unwrap_or_default())) }
                                td { (c["source"].as_str().unwrap_or_default()) }
                                td { (c["statement"].as_str().unwrap_or_default()) }
                                td { (c["recordedBy"].as_str().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            @if may_write(&session.actor) {
                details {
                    summary { (text::RECORD_CONSENT) }
                    form.stack method="post" action=(format!("/privacy/{id}/consent")) {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        label for="c-channel" { (text::CHANNEL) }
                        select #c-channel name="channel" {
                            @for (value, name) in text::CONSENT_CHANNELS { option value=(value) { (name) } }
                        }
                        label for="c-status" { (text::CONSENT_STATUS) }
                        select #c-status name="status" {
                            @for (value, name) in text::CONSENT_STATUSES { option value=(value) { (name) } }
                        }
                        label for="c-source" { (text::CONSENT_SOURCE) }
                        input #c-source type="text" name="source";
                        label for="c-statement" { (text::CONSENT_STATEMENT) }
                        textarea #c-statement name="statement" rows="2" {}
                        button type="submit" { (text::RECORD) }
                    }
                }
            }
        }
        section aria-labelledby="hold" {
            h2 #hold { (text::LEGAL_HOLD) }
            p { (if held { text::ON_HOLD } else { text::NOT_ON_HOLD }) }
            @if may_delete(&session.actor) {
                form method="post" action=(format!("/privacy/{id}/hold")) {
                    input type="hidden" name="_csrf" value=(session.csrf);
                    input type="hidden" name="hold" value=(if held { "false" } else { "true" });
                    button.secondary type="submit" { (if held { text::LIFT_HOLD } else { text::PLACE_HOLD }) }
                }
            }
        }
        @if may_delete(&session.actor) {
            section aria-labelledby="access" {
                h2 #access { (text::EXPORT_HEADING) }
                p { (text::EXPORT_HELP) }
                form method="post" action=(format!("/privacy/{id}/export")) {
                    input type="hidden" name="_csrf" value=(session.csrf);
                    button type="submit" { (text::DOWNLOAD_EXPORT) }
                }
            }
        }
        @if let Some(plan) = &plan {
            section aria-labelledby="erase" {
                h2 #erase { (text::ERASE_HEADING) }
                p { (text::ERASE_HELP) }
                @match plan {
                    Ok(lines) => {
                        (plan_table(lines))
                        @if !held {
                            form.stack method="post" action=(format!("/privacy/{id}/erase")) {
                                input type="hidden" name="_csrf" value=(session.csrf);
                                label for="e-reason" { (text::ERASE_REASON) }
                                input #e-reason type="text" name="reason" required;
                                label for="e-confirm" { (text::ERASE_CONFIRM) }
                                input #e-confirm type="text" name="confirm" required autocomplete="off";
                                button.danger type="submit" { (text::ERASE) }
                            }
                        }
                    }
                    Err(message) => p.notice role="alert" { (message) },
                }
            }
        }
    };
    render(&state, &session, StatusCode::OK, format!("{}{title}", text::PRIVACY_OF), content)
}

fn value<'a>(submitted: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form::submitted(submitted, name).map(str::trim).filter(|v| !v.is_empty())
}

/// Runs `document` for a posted form, once its CSRF token is checked, and goes back to `back`
/// (or says why not).
async fn act(
    state: &AppState,
    session: &Session,
    submitted: &[(String, String)],
    document: &str,
    variables: Json,
    back: String,
) -> Response {
    if let Err(refusal) = check_csrf(session, form::submitted(submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let answer = query(state, session, document, variables).await;
    if !answer.errors.is_empty() {
        return problem(state, session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer));
    }
    Redirect::to(&back).into_response()
}

/// `POST /privacy/{id}/consent`.
pub async fn consent(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let variables = json!({
        "id": id,
        "channel": value(&submitted, "channel").unwrap_or("EMAIL"),
        "status": value(&submitted, "status").unwrap_or("GRANTED"),
        "source": value(&submitted, "source"),
        "statement": value(&submitted, "statement"),
    });
    let document = "mutation($id: ID!, $channel: ConsentChannel!, $status: ConsentStatus!, $source: String, $statement: String) {
           recordConsent(contactId: $id, channel: $channel, status: $status, source: $source, statement: $statement) { id } }";
    act(&state, &session, &submitted, document, variables, format!("/privacy/{id}#consents")).await
}

/// `POST /privacy/{id}/hold`: places or lifts the legal hold (managers; the API says so).
pub async fn hold(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let variables = json!({ "id": id, "hold": value(&submitted, "hold") == Some("true") });
    let document = "mutation($id: ID!, $hold: Boolean!) { updateContact(id: $id, input: {legalHold: $hold}) { id } }";
    act(&state, &session, &submitted, document, variables, format!("/privacy/{id}#hold")).await
}

/// `POST /privacy/{id}/export`: the export document as a download (a POST: it is audited).
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, form::submitted(&submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let answer =
        query(&state, &session, "mutation($id: ID!) { exportPersonalData(contactId: $id) }", json!({ "id": id })).await;
    if !answer.errors.is_empty() {
        return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer));
    }
    let body = serde_json::to_string_pretty(&answer.data["exportPersonalData"]).unwrap_or_default();
    let disposition = format!("attachment; filename=\"personal-data-{id}.json\"");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `POST /privacy/{id}/erase`: erases the person and shows what was done.
pub async fn erase(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, form::submitted(&submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let answer = query(
        &state,
        &session,
        "mutation($id: ID!, $reason: String!, $confirm: String!) {
           erasePersonalData(contactId: $id, reason: $reason, confirm: $confirm) { lines { object plugin policy legalBasis records } } }",
        json!({
            "id": id,
            "reason": value(&submitted, "reason").unwrap_or_default(),
            "confirm": value(&submitted, "confirm").unwrap_or_default(),
        }),
    )
    .await;
    if !answer.errors.is_empty() {
        return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer));
    }
    let content = html! {
        h1 { (text::ERASED) }
        (plan_table(&answer.data["erasePersonalData"]["lines"]))
        p { a href="/o/contacts" { "Contacts" } }
    };
    render(&state, &session, StatusCode::OK, text::ERASED.to_owned(), content)
}
