//! A record's timeline on its page: what happened (newest first), its open tasks with a button
//! to complete each, and a form to add a note, call, meeting, e-mail or task. Activities link
//! to a record through the activity field that references the record's object (`contactId`,
//! `dealId`, ...), found in the registry, so any object activities can point at gets it.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Value as Json, json};

use crate::console::pages::{messages, posted_object, problem, query};
use crate::console::session::{Session, check_csrf};
use crate::console::{form, may_write, text};
use crate::domain::object::{ObjectDef, Registry};
use crate::domain::value::FieldKind;
use crate::http::AppState;

/// Open tasks a record page lists.
const OPEN_TASKS: i64 = 20;

/// The activity field that links an activity to a record of `def`, if there is one.
pub fn link_field(registry: &Registry, def: &ObjectDef) -> Option<String> {
    let activity = registry.get("activity")?;
    activity
        .fields
        .iter()
        .find(|f| matches!(&f.kind, FieldKind::Ref(target) if target == &def.name))
        .map(|f| f.name.clone())
}

/// The timeline section of the record `id` of `def`: `items` as the record's `timeline` field
/// answered, then its open tasks and the form to add an activity.
pub async fn section(state: &AppState, session: &Session, def: &ObjectDef, id: &str, items: &Json) -> Markup {
    let registry = state.kith.registry();
    let link = link_field(&registry, def);
    let writable = may_write(&session.actor);
    let tasks = match &link {
        Some(link) => open_tasks(state, session, link, id).await,
        None => Vec::new(),
    };
    html! {
        section aria-labelledby="timeline" {
            h2 #timeline { (text::TIMELINE) }
            @if !tasks.is_empty() {
                h3 { (text::OPEN_TASKS) }
                ul.plain #open-tasks {
                    @for task in &tasks {
                        li {
                            (task["subject"].as_str().unwrap_or_default())
                            @if !task["dueAt"].is_null() { " · " span.muted { (text::DUE) " " (form::show(&FieldKind::DateTime, &task["dueAt"])) } }
                            @if writable {
                                form.inline method="post" action=(format!("/o/{}/{id}/tasks/{}/complete", def.plural, task["id"].as_str().unwrap_or_default())) {
                                    input type="hidden" name="_csrf" value=(session.csrf);
                                    button.secondary type="submit" { (text::COMPLETE_TASK) }
                                }
                            }
                        }
                    }
                }
            }
            ul.plain {
                @for item in items.as_array().into_iter().flatten() {
                    li { span.muted { (form::show(&FieldKind::DateTime, &item["at"])) } " · " (item["summary"].as_str().unwrap_or_default()) }
                }
            }
            @if writable && link.is_some() {
                details {
                    summary { (text::ADD_ACTIVITY) }
                    form.stack method="post" action=(format!("/o/{}/{id}/activity", def.plural)) {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        label for="a-kind" { (text::ACTIVITY_KIND) }
                        select #a-kind name="kind" {
                            @for (value, label) in text::ACTIVITY_KINDS { option value=(value) { (label) } }
                        }
                        label for="a-subject" { (text::SUBJECT) }
                        input #a-subject type="text" name="subject" required;
                        label for="a-body" { (text::DETAILS) }
                        textarea #a-body name="body" rows="3" {}
                        label for="a-due" { (text::DUE_FOR_TASKS) }
                        input #a-due type="datetime-local" name="dueAt";
                        button type="submit" { (text::ADD) }
                    }
                }
            }
        }
    }
}

async fn open_tasks(state: &AppState, session: &Session, link: &str, id: &str) -> Vec<Json> {
    let answer = query(
        state,
        session,
        "query($filter: ActivityFilter, $first: Int) {
           activities(filter: $filter, first: $first, orderBy: [{field: dueAt, direction: ASC}]) { edges { node { id subject dueAt } } } }",
        json!({
            "filter": { link: { "eq": id }, "kind": { "eq": "TASK" }, "completedAt": { "isNull": true } },
            "first": OPEN_TASKS,
        }),
    )
    .await;
    answer.data["activities"]["edges"].as_array().into_iter().flatten().map(|e| e["node"].clone()).collect()
}

/// `POST /o/{plural}/{id}/activity`: adds a note, call, meeting, e-mail or task to the record.
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    Path((plural, id)): Path<(String, String)>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let def = match posted_object(&state, &session, &plural, &submitted) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let Some(link) = link_field(&state.kith.registry(), &def) else {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::NO_TIMELINE);
    };
    let value = |name: &str| form::submitted(&submitted, name).map(str::trim).filter(|v| !v.is_empty());
    let mut input = json!({
        "kind": value("kind").unwrap_or("NOTE"),
        "subject": value("subject").unwrap_or_default(),
        link: id,
    });
    if let Some(body) = value("body") {
        input["body"] = json!(body);
    }
    if let Some(due) = value("dueAt") {
        // `datetime-local` gives minutes, without seconds or zone: UTC, as the form says.
        input["dueAt"] = json!(format!("{due}:00Z"));
    }
    let answer = query(
        &state,
        &session,
        "mutation($input: ActivityCreateInput!) { createActivity(input: $input) { id } }",
        json!({ "input": input }),
    )
    .await;
    if !answer.errors.is_empty() {
        return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer));
    }
    Redirect::to(&format!("/o/{plural}/{id}#timeline")).into_response()
}

/// `POST /o/{plural}/{id}/tasks/{task}/complete`.
pub async fn complete(
    State(state): State<AppState>,
    session: Session,
    Path((plural, id, task)): Path<(String, String, String)>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, form::submitted(&submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let answer =
        query(&state, &session, "mutation($id: ID!) { completeTask(id: $id) { id } }", json!({ "id": task })).await;
    if !answer.errors.is_empty() {
        return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer));
    }
    Redirect::to(&format!("/o/{plural}/{id}#timeline")).into_response()
}
