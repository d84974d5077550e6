//! The audit log (`auditLog`, MANAGER and up): filtered by object, actor, action and a range of
//! days, newest first, a page at a time through the log's cursors.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::console::admin::{admin_page, offered, refusal, text_of, when};
use crate::console::pages::query;
use crate::console::session::Session;
use crate::console::text;
use crate::domain::actor::Role;
use crate::http::AppState;

/// Entries a page shows.
const PAGE: i64 = 50;

/// What the audit log records besides the registry's objects.
const OTHER_OBJECTS: &[&str] = &["customField", "plugin", "token"];

/// Query of `/admin/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// The object kind.
    pub object: Option<String>,
    /// The actor's name or id.
    pub actor: Option<String>,
    /// The action.
    pub action: Option<String>,
    /// The first day (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// The day after the last (`YYYY-MM-DD`).
    pub to: Option<String>,
    /// The page after this cursor.
    pub after: Option<String>,
}

/// The instant a day starts (UTC), or why `day` is not one.
fn day_start(label: &str, day: Option<&str>) -> Result<Option<String>, String> {
    match day.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(day) => chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map(|d| Some(format!("{d}T00:00:00Z")))
            .map_err(|_| format!("{label}: {}", text::NOT_A_DAY)),
    }
}

/// `GET /admin/audit`.
pub async fn log(State(state): State<AppState>, session: Session, Query(q): Query<AuditQuery>) -> Response {
    if let Err(refusal) = offered(&state, &session, Role::Manager) {
        return *refusal;
    }
    let registry = state.kith.registry();
    let mut objects: Vec<(String, String)> = registry.in_order().map(|d| (d.name.clone(), d.label.clone())).collect();
    objects.extend(OTHER_OBJECTS.iter().map(|o| ((*o).to_owned(), crate::domain::object::humanize(o))));
    let object = q.object.clone().filter(|o| !o.is_empty()).unwrap_or_else(|| "contact".to_owned());
    let range = day_start(text::FROM_DAY, q.from.as_deref())
        .and_then(|from| Ok((from, day_start(text::BEFORE_DAY, q.to.as_deref())?)));
    let blank = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let (entries, answer, problem) = match range {
        Ok((from, to)) => {
            let answer = query(
                &state,
                &session,
                "query($object: String!, $actor: String, $action: String, $from: DateTime, $to: DateTime, $after: String, $first: Int) { \
                 auditLog(object: $object, actor: $actor, action: $action, from: $from, to: $to, after: $after, first: $first) { \
                 occurredAt actorKind actorName action object recordId changes cursor } }",
                json!({
                    "object": object, "actor": blank(&q.actor), "action": blank(&q.action),
                    "from": from, "to": to, "after": blank(&q.after), "first": PAGE,
                }),
            )
            .await;
            (answer.data["auditLog"].as_array().cloned().unwrap_or_default(), Some(answer), None)
        }
        Err(message) => (Vec::new(), None, Some(message)),
    };
    let href = |after: Option<&str>| {
        let pairs = [
            ("object", Some(object.clone())),
            ("actor", blank(&q.actor)),
            ("action", blank(&q.action)),
            ("from", blank(&q.from)),
            ("to", blank(&q.to)),
            ("after", after.map(str::to_owned)),
        ];
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))))
            .finish();
        format!("/admin/audit?{query}")
    };
    let next = entries.last().filter(|_| entries.len() as i64 == PAGE).map(|e| href(Some(text_of(&e["cursor"]))));
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let content = html! {
        h1 { (text::AUDIT_LOG) }
        form.filter method="get" action="/admin/audit" {
            div {
                label for="a-object" { (text::OBJECT) }
                select #a-object name="object" { @for (name, label) in &objects { option value=(name) selected[*name == object] { (label) } } }
            }
            div { label for="a-actor" { (text::ACTOR) } input #a-actor type="text" name="actor" value=(value(&q.actor)); }
            div { label for="a-action" { (text::ACTION) } input #a-action type="text" name="action" value=(value(&q.action)); }
            div { label for="a-from" { (text::FROM_DAY) } input #a-from type="date" name="from" value=(value(&q.from)); }
            div { label for="a-to" { (text::BEFORE_DAY) } input #a-to type="date" name="to" value=(value(&q.to)); }
            button type="submit" { (text::FILTER) }
        }
        @if let Some(message) = &problem { p.notice role="alert" { (message) } }
        (refusal(answer.as_ref()))
        @if entries.is_empty() { p.muted { (text::NOTHING_YET) } } @else {
            div.table-wrap { table {
                thead { tr { @for column in [text::WHEN, text::WHO, text::WHAT, text::RECORD, text::CHANGES] { th scope="col" { (column) } } } }
                tbody {
                    @for entry in &entries {
                        tr {
                            td { (when(&entry["occurredAt"])) }
                            td { (text_of(&entry["actorName"])) " " span.muted { "(" (text_of(&entry["actorKind"])) ")" } }
                            td { (text_of(&entry["action"])) }
                            td {
                                @match (registry.get(text_of(&entry["object"])), entry["recordId"].as_str()) {
                                    (Some(def), Some(id)) => { a href=(format!("/o/{}/{id}", def.plural)) { (id) } }
                                    (_, id) => { (id.unwrap_or_default()) }
                                }
                            }
                            td { (entry["changes"].as_object().map(|c| c.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_else(|| Json::to_string(&entry["changes"]))) }
                        }
                    }
                }
            } }
        }
        nav.actions aria-label="Pages" {
            @if q.after.is_some() {
                a href=(href(None)) { (text::FIRST_PAGE) }
            }
            @if let Some(next) = &next { a href=(next) rel="next" { (text::NEXT) } }
        }
    };
    admin_page(&state, &session, None, text::AUDIT_LOG, content)
}
