//! The ticket inbox: open tickets by what is due first, filtered by queue, status, priority and
//! assignee, with SLA badges (due soon, breached); and a ticket's conversation page with only
//! the status changes the workflow allows, public replies and internal notes, assignment to
//! oneself, and the customer's rating. Every change is a workflow mutation
//! (`changeTicketStatus`, `addTicketComment`, `assignTicket`) run as the signed-in user.

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::console::form;
use crate::console::pages::{messages, problem, query, render};
use crate::console::session::{Session, check_csrf};
use crate::console::{may_write, text};
use crate::domain::ticket::{PRIORITIES, STATUSES, can_rate, can_transition};
use crate::domain::value::FieldKind;
use crate::http::AppState;

/// Tickets the inbox shows at once.
const PAGE: i64 = 100;
/// How close to its due time a ticket is "due soon".
const DUE_SOON_HOURS: i64 = 2;
/// Statuses the inbox shows when none is chosen: the ones still waiting on someone.
const WAITING: &[&str] = &["NEW", "OPEN", "PENDING", "ON_HOLD"];

/// Query of `/inbox`.
#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    /// One status; the waiting ones when absent.
    pub status: Option<String>,
    /// One priority.
    pub priority: Option<String>,
    /// One queue.
    pub queue: Option<String>,
    /// `me`, `none`, or nothing for anyone.
    pub assignee: Option<String>,
}

/// The SLA badge of a ticket: what is due next, and whether it is breached or due soon.
pub fn sla_badge(ticket: &Json, now: DateTime<Utc>) -> Option<(&'static str, &'static str)> {
    if matches!(ticket["status"].as_str(), Some("SOLVED" | "CLOSED")) {
        return None;
    }
    let due =
        if ticket["firstRespondedAt"].is_null() { &ticket["firstResponseDueAt"] } else { &ticket["resolutionDueAt"] };
    let due = DateTime::parse_from_rfc3339(due.as_str()?).ok()?.with_timezone(&Utc);
    if due < now {
        Some(("breached", text::SLA_BREACHED))
    } else if due < now + Duration::hours(DUE_SOON_HOURS) {
        Some(("due-soon", text::SLA_DUE_SOON))
    } else {
        None
    }
}

fn badge(ticket: &Json, now: DateTime<Utc>) -> Markup {
    html! { @if let Some((class, label)) = sla_badge(ticket, now) { span class=(format!("badge {class}")) { (label) } } }
}

fn select(id: &str, label: &str, values: &[&str], chosen: Option<&str>, any: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select #(id) name=(id) {
                option value="" { (any) }
                @for v in values { option value=(v) selected[chosen == Some(*v)] { (form::humanize_value(v)) } }
            }
        }
    }
}

/// `GET /inbox`.
pub async fn inbox(State(state): State<AppState>, session: Session, Query(q): Query<InboxQuery>) -> Response {
    let mut conditions = vec![match q.status.as_deref().filter(|s| STATUSES.contains(s)) {
        Some(status) => json!({"status": {"eq": status}}),
        None => json!({"status": {"in": WAITING}}),
    }];
    if let Some(priority) = q.priority.as_deref().filter(|p| PRIORITIES.contains(p)) {
        conditions.push(json!({"priority": {"eq": priority}}));
    }
    if let Some(queue) = q.queue.as_deref().filter(|s| !s.is_empty()) {
        conditions.push(json!({"queue": {"eq": queue}}));
    }
    match q.assignee.as_deref() {
        Some("me") => conditions.push(json!({"assigneeId": {"eq": session.actor.user_id}})),
        Some("none") => conditions.push(json!({"assigneeId": {"isNull": true}})),
        _ => {}
    }
    let answer = query(
        &state,
        &session,
        "query($filter: TicketFilter, $first: Int) {
           tickets(filter: $filter, first: $first, orderBy: [{field: resolutionDueAt, nulls: LAST}, {field: number}]) {
             totalCount edges { node { id number subject status priority queue firstResponseDueAt firstRespondedAt resolutionDueAt
               assignee { id name } contact { id firstName lastName email } } } } }",
        json!({"filter": {"and": conditions}, "first": PAGE}),
    )
    .await;
    let now = Utc::now();
    let tickets: Vec<Json> = answer.data["tickets"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .collect();
    let content = html! {
        h1 { (text::INBOX) }
        form.filter method="get" action="/inbox" {
            (select("status", text::STATUS, STATUSES, q.status.as_deref(), text::WAITING_STATUSES))
            (select("priority", text::PRIORITY, PRIORITIES, q.priority.as_deref(), text::ANY))
            div { label for="queue" { (text::QUEUE) } input #queue type="text" name="queue" value=(q.queue.clone().unwrap_or_default()); }
            div {
                label for="assignee" { (text::ASSIGNEE) }
                select #assignee name="assignee" {
                    option value="" { (text::ANY) }
                    option value="me" selected[q.assignee.as_deref() == Some("me")] { (text::ME) }
                    option value="none" selected[q.assignee.as_deref() == Some("none")] { (text::NOBODY) }
                }
            }
            button type="submit" { (text::FILTER) }
        }
        @if !answer.errors.is_empty() { p.notice role="alert" { (messages(&answer)) } }
        p.muted { (answer.data["tickets"]["totalCount"].as_i64().unwrap_or(0)) " " (text::TICKETS) }
        div.table-wrap { table {
            thead { tr {
                th scope="col" { "#" } th scope="col" { (text::SUBJECT) } th scope="col" { (text::STATUS) }
                th scope="col" { (text::PRIORITY) } th scope="col" { (text::REQUESTER) } th scope="col" { (text::ASSIGNEE) } th scope="col" { (text::SLA) }
            } }
            tbody { @for t in &tickets {
                @let id = t["id"].as_str().unwrap_or_default();
                tr {
                    td { (t["number"].as_i64().unwrap_or(0)) }
                    td { a href=(format!("/inbox/{id}")) { (t["subject"].as_str().unwrap_or_default()) } }
                    td { (form::display(&FieldKind::Enum(Vec::new()), &t["status"])) }
                    td { (form::display(&FieldKind::Enum(Vec::new()), &t["priority"])) }
                    td { (requester(&t["contact"])) }
                    td { (t["assignee"]["name"].as_str().unwrap_or(text::NONE)) }
                    td { (badge(t, now)) }
                }
            } }
        } }
    };
    render(&state, &session, StatusCode::OK, text::INBOX.to_owned(), content)
}

fn requester(contact: &Json) -> String {
    let name = format!(
        "{} {}",
        contact["firstName"].as_str().unwrap_or_default(),
        contact["lastName"].as_str().unwrap_or_default()
    );
    let name = name.trim();
    if name.is_empty() { contact["email"].as_str().unwrap_or(text::NONE).to_owned() } else { name.to_owned() }
}

/// `GET /inbox/{id}`: the conversation and what may be done with it.
pub async fn ticket(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<Map<String, Json>>,
) -> Response {
    let answer = query(
        &state,
        &session,
        "query($id: ID!) { ticket(id: $id) { id number subject description status priority queue version
           firstResponseDueAt firstRespondedAt resolutionDueAt satisfactionRating satisfactionComment
           assignee { id name } contact { id firstName lastName email }
           comments(first: 200) { edges { node { id body public authorName createdAt } } } } }",
        json!({"id": id}),
    )
    .await;
    let t = &answer.data["ticket"];
    if t.is_null() {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::NOT_FOUND);
    }
    let status = t["status"].as_str().unwrap_or_default();
    let writable = may_write(&session.actor);
    let next: Vec<&str> = STATUSES.iter().copied().filter(|to| *to != status && can_transition(status, to)).collect();
    let title = format!("#{} {}", t["number"].as_i64().unwrap_or(0), t["subject"].as_str().unwrap_or_default());
    let version = t["version"].as_i64().unwrap_or(0);
    let content = html! {
        p.muted { a href="/inbox" { (text::INBOX) } }
        h1 { (title) " " (badge(t, Utc::now())) }
        @if let Some(error) = q.get("error").and_then(Json::as_str) { p.notice role="alert" { (error) } }
        dl.fields {
            dt { (text::STATUS) } dd { (form::humanize_value(status)) }
            dt { (text::PRIORITY) } dd { (form::display(&FieldKind::Enum(Vec::new()), &t["priority"])) }
            dt { (text::REQUESTER) } dd { @if let Some(cid) = t["contact"]["id"].as_str() { a href=(format!("/o/contacts/{cid}")) { (requester(&t["contact"])) } } @else { (text::NONE) } }
            dt { (text::ASSIGNEE) } dd { (t["assignee"]["name"].as_str().unwrap_or(text::NONE)) }
            dt { (text::QUEUE) } dd { (t["queue"].as_str().unwrap_or(text::NONE)) }
            @if let Some(rating) = t["satisfactionRating"].as_i64() {
                dt { (text::RATING) } dd { (rating) " / 5 " span.muted { (t["satisfactionComment"].as_str().unwrap_or_default()) } }
            }
        }
        @if let Some(description) = t["description"].as_str() { p { (description) } }
        @if writable {
            div.actions {
                @for to in &next {
                    form method="post" action=(format!("/inbox/{id}/status")) {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        input type="hidden" name="version" value=(version);
                        input type="hidden" name="status" value=(to);
                        button.secondary type="submit" { (text::MARK_AS) " " (form::humanize_value(to)) }
                    }
                }
                @if t["assignee"]["id"].as_str() != session.actor.user_id.map(|u| u.to_string()).as_deref() {
                    form method="post" action=(format!("/inbox/{id}/assign")) {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        input type="hidden" name="version" value=(version);
                        button.secondary type="submit" { (text::ASSIGN_TO_ME) }
                    }
                }
            }
        }
        @if writable && can_rate(status) {
            details {
                summary { (text::RECORD_RATING) }
                form.inline method="post" action=(format!("/inbox/{id}/rate")) {
                    input type="hidden" name="_csrf" value=(session.csrf);
                    label for="rating" { (text::RATING) }
                    select #rating name="rating" {
                        @for n in (1..=5).rev() { option value=(n) selected[t["satisfactionRating"].as_i64() == Some(n)] { (n) " / 5" } }
                    }
                    label for="rating-comment" { (text::RATING_COMMENT) }
                    input #rating-comment type="text" name="comment" value=(t["satisfactionComment"].as_str().unwrap_or_default());
                    button type="submit" { (text::SAVE) }
                }
            }
        }
        h2 { (text::CONVERSATION) }
        ul.plain.conversation {
            @for edge in t["comments"]["edges"].as_array().cloned().unwrap_or_default() {
                @let c = &edge["node"];
                li class=(if c["public"].as_bool() == Some(false) { "note" } else { "reply" }) {
                    p.muted {
                        (c["authorName"].as_str().unwrap_or_default()) " · " (form::show(&FieldKind::DateTime, &c["createdAt"]))
                        @if c["public"].as_bool() == Some(false) { " · " strong { (text::INTERNAL_NOTE) } }
                    }
                    p { (c["body"].as_str().unwrap_or_default()) }
                }
            }
        }
        @if writable {
            form.record method="post" action=(format!("/inbox/{id}/comment")) {
                input type="hidden" name="_csrf" value=(session.csrf);
                label for="body" { (text::REPLY) }
                textarea #body name="body" rows="4" required {}
                div {
                    input type="hidden" name="public" value="true";
                    input #internal type="checkbox" name="public" value="false";
                    label for="internal" { (text::AS_INTERNAL_NOTE) }
                }
                div.actions { button type="submit" { (text::SEND) } }
            }
        }
    };
    render(&state, &session, StatusCode::OK, title, content)
}

/// A change from the ticket page.
#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    /// The CSRF token.
    #[serde(rename = "_csrf")]
    pub csrf: String,
    /// The version the page showed.
    pub version: Option<i64>,
    /// The status to change to.
    pub status: Option<String>,
}

/// `POST /inbox/{id}/rate`: the customer's satisfaction rating, as they gave it.
pub async fn rate(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let rating = form::submitted(&submitted, "rating").and_then(|r| r.parse::<i64>().ok()).unwrap_or(0);
    let comment = form::submitted(&submitted, "comment").map(str::trim).filter(|c| !c.is_empty());
    let token = form::submitted(&submitted, "_csrf").unwrap_or_default();
    let document = "mutation($id: ID!, $r: Int!, $c: String) { rateTicket(id: $id, rating: $r, comment: $c) { id } }";
    act(&state, &session, &id, token, document, json!({"id": id, "r": rating, "c": comment})).await
}

/// Runs `document` on the ticket `id` once the form's CSRF `token` is checked, then goes back to
/// the ticket, with the API's error when there is one.
async fn act(state: &AppState, session: &Session, id: &str, token: &str, document: &str, variables: Json) -> Response {
    if let Err(refusal) = check_csrf(session, token) {
        return *refusal;
    }
    let answer = query(state, session, document, variables).await;
    back(id, &answer)
}

fn back(id: &str, answer: &crate::console::Answer) -> Response {
    if answer.errors.is_empty() {
        return Redirect::to(&format!("/inbox/{id}")).into_response();
    }
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("error", &messages(answer)).finish();
    Redirect::to(&format!("/inbox/{id}?{query}")).into_response()
}

/// `POST /inbox/{id}/status`.
pub async fn change_status(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let document = "mutation($id: ID!, $s: TicketStatus!, $v: Int) { changeTicketStatus(id: $id, status: $s, expectedVersion: $v) { id } }";
    act(&state, &session, &id, &form.csrf, document, json!({"id": id, "s": form.status, "v": form.version})).await
}

/// `POST /inbox/{id}/assign`: to the signed-in user.
pub async fn assign(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let document =
        "mutation($id: ID!, $a: ID, $v: Int) { assignTicket(id: $id, assigneeId: $a, expectedVersion: $v) { id } }";
    let variables = json!({"id": id, "a": session.actor.user_id, "v": form.version});
    act(&state, &session, &id, &form.csrf, document, variables).await
}

/// `POST /inbox/{id}/comment`.
pub async fn comment(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let body = form::submitted(&submitted, "body").unwrap_or_default().trim().to_owned();
    let public = form::submitted(&submitted, "public") != Some("false");
    let token = form::submitted(&submitted, "_csrf").unwrap_or_default();
    let document =
        "mutation($id: ID!, $b: String!, $p: Boolean) { addTicketComment(ticketId: $id, body: $b, public: $p) { id } }";
    act(&state, &session, &id, token, document, json!({"id": id, "b": body, "p": public})).await
}
