//! Plugins: the installed ones with their status and health, and a page per plugin with the
//! capabilities it requests and those granted, its queries and mutations with their roles,
//! enabling (choosing the grants) and disabling, its settings (secret ones only ever as the
//! API masks them; a value sent is never shown back) with a form to set one, its dead letters
//! with replay, and its jobs with their latest runs and a button to run one now.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value as Json, json};

use crate::console::admin::{admin_page, field, offered, refusal, text_of, when, write};
use crate::console::pages::{problem, query};
use crate::console::session::{Session, check_csrf};
use crate::console::{Answer, form, text};
use crate::domain::actor::Role;
use crate::http::AppState;

/// What the list and a plugin's page read of each plugin.
const PLUGIN: &str = "id name version description enabled status lastError grants requestedCapabilities settings \
                      operations { kind name role lowRoleWrite } \
                      stats { delivered failures consecutiveFailures deadLetters deniedCalls }";

/// A plugin's health in a few words.
fn health(plugin: &Json) -> Markup {
    let stats = &plugin["stats"];
    let count = |name: &str| stats[name].as_i64().unwrap_or(0);
    html! {
        @if count("failures") == 0 && count("deadLetters") == 0 && count("deniedCalls") == 0 && plugin["lastError"].is_null() {
            (text::HEALTHY)
        } @else {
            (count("failures")) " " (text::FAILURES) ", " (count("deadLetters")) " " (text::DEAD_LETTERS.to_lowercase())
            ", " (count("deniedCalls")) " " (text::DENIED_CALLS)
            @if let Some(error) = plugin["lastError"].as_str() { br; span.muted { (error) } }
        }
    }
}

/// `GET /admin/plugins`: the installed plugins.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    if let Err(refusal) = offered(&state, &session, Role::Admin) {
        return *refusal;
    }
    let listed = query(&state, &session, &format!("{{ plugins {{ {PLUGIN} }} }}"), json!({})).await;
    let plugins = listed.data["plugins"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { (text::PLUGINS) }
        (refusal(Some(&listed)))
        @if plugins.is_empty() && listed.errors.is_empty() { p.muted { (text::NOTHING_YET) } }
        @if !plugins.is_empty() {
            div.table-wrap { table {
                thead { tr { @for column in [text::NAME, text::VERSION, text::STATUS, text::HEALTH] { th scope="col" { (column) } } } }
                tbody {
                    @for plugin in &plugins {
                        tr {
                            td { a href=(format!("/admin/plugins/{}", text_of(&plugin["id"]))) { (text_of(&plugin["name"])) } }
                            td { (text_of(&plugin["version"])) }
                            td { (form::humanize_value(text_of(&plugin["status"]))) }
                            td { (health(plugin)) }
                        }
                    }
                }
            } }
        }
    };
    admin_page(&state, &session, None, text::PLUGINS, content)
}

/// What a form on a plugin's page asked and the API answered.
struct Outcome<'a> {
    /// The form: `enable`, `disable`, `setting`, `replay` or `run`.
    action: &'a str,
    answer: &'a Answer,
}

/// The refusal beside the form `action`, if it was that form that asked.
fn beside(outcome: Option<&Outcome<'_>>, action: &str) -> Markup {
    refusal(outcome.filter(|o| o.action == action).map(|o| o.answer))
}

/// A hidden CSRF field and `action` as a form posting to the plugin's page.
fn action_form(session: &Session, id: &str, action: &str, fields: Markup, button: &str) -> Markup {
    html! {
        form.record method="post" action=(format!("/admin/plugins/{id}/{action}")) {
            input type="hidden" name="_csrf" value=(session.csrf);
            (fields)
            div.actions { button type="submit" { (button) } }
        }
    }
}

/// The capabilities requested and granted, and the enable or disable form.
fn capabilities(session: &Session, plugin: &Json, outcome: Option<&Outcome<'_>>) -> Markup {
    let list = |name: &str| -> Vec<String> {
        plugin[name]
            .as_array()
            .map(|a| a.iter().filter_map(Json::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (requested, granted) = (list("requestedCapabilities"), list("grants"));
    let mut all = requested.clone();
    all.extend(granted.iter().filter(|g| !requested.contains(g)).cloned());
    let id = text_of(&plugin["id"]);
    let low_role_writes =
        plugin["operations"].as_array().is_some_and(|ops| ops.iter().any(|o| !o["lowRoleWrite"].is_null()));
    html! {
        h2 { (text::CAPABILITIES) }
        div.table-wrap { table {
            thead { tr { @for column in [text::CAPABILITY, text::REQUESTED, text::GRANTED] { th scope="col" { (column) } } } }
            tbody {
                @for capability in &all {
                    tr {
                        td { code { (capability) } }
                        td { @if requested.contains(capability) { (text::YES) } @else { (text::NO) } }
                        td { @if granted.contains(capability) { (text::YES) } @else { (text::NO) } }
                    }
                }
            }
        } }
        @if plugin["status"].as_str() == Some("ACTIVE") {
            (beside(outcome, "disable"))
            (action_form(session, id, "disable", html! {}, text::DISABLE))
        } @else {
            (beside(outcome, "enable"))
            (action_form(session, id, "enable", html! {
                fieldset {
                    legend { (text::GRANT) }
                    @for (i, capability) in requested.iter().enumerate() {
                        div {
                            input #(format!("grant-{i}")) type="checkbox" name="grants" value=(capability) checked;
                            label for=(format!("grant-{i}")) { code { (capability) } }
                        }
                    }
                }
                @if low_role_writes {
                    div {
                        input #low-role-writes type="checkbox" name="allowLowRoleWrites" value="true";
                        label for="low-role-writes" { (text::ALLOW_LOW_ROLE_WRITES) }
                    }
                }
            }, text::ENABLE))
        }
    }
}

/// The operations and their roles.
fn operations(plugin: &Json) -> Markup {
    let operations = plugin["operations"].as_array().cloned().unwrap_or_default();
    html! {
        @if !operations.is_empty() {
            h2 { (text::PLUGIN_OPERATIONS) }
            div.table-wrap { table {
                thead { tr { @for column in [text::NAME, text::KIND, text::LEAST_ROLE, text::LOW_ROLE_WRITE] { th scope="col" { (column) } } } }
                tbody {
                    @for operation in &operations {
                        tr {
                            td { code { (text_of(&operation["name"])) } }
                            td { (form::humanize_value(text_of(&operation["kind"]))) }
                            td { (form::humanize_value(text_of(&operation["role"]))) }
                            td { (text_of(&operation["lowRoleWrite"])) }
                        }
                    }
                }
            } }
        }
    }
}

/// A setting's value as listed (what the API answers: secret ones masked).
fn shown_setting(value: &Json) -> String {
    match value {
        Json::Array(items) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect::<Vec<_>>().join(", ")
        }
        other => form::display(&crate::domain::value::FieldKind::Text, other),
    }
}

/// The settings and the form to set one; the value field always starts empty.
fn settings(session: &Session, plugin: &Json, outcome: Option<&Outcome<'_>>) -> Markup {
    let settings = plugin["settings"].as_object().cloned().unwrap_or_default();
    let id = text_of(&plugin["id"]);
    html! {
        @if !settings.is_empty() {
            h2 { (text::SETTINGS) }
            dl.fields { @for (key, value) in &settings { dt { code { (key) } } dd { (shown_setting(value)) } } }
            (beside(outcome, "setting"))
            (action_form(session, id, "setting", html! {
                div {
                    label for="s-key" { (text::SETTING) }
                    select #s-key name="key" { @for key in settings.keys() { option value=(key) { (key) } } }
                }
                div {
                    label for="s-value" { (text::VALUE) }
                    textarea #s-value name="value" rows="3" aria-describedby="s-hint" {}
                    div.muted #s-hint { (text::SETTING_HINT) }
                }
            }, text::SET))
        }
    }
}

/// The dead letters and the replay form.
fn dead_letters(session: &Session, id: &str, letters: &[Json], outcome: Option<&Outcome<'_>>) -> Markup {
    html! {
        h2 { (text::DEAD_LETTERS) }
        @if letters.is_empty() { p.muted { (text::NO_DEAD_LETTERS) } } @else {
            div.table-wrap { table {
                thead { tr { @for column in [text::EVENT, text::ATTEMPTS, text::ERROR, text::FAILED_AT] { th scope="col" { (column) } } } }
                tbody {
                    @for letter in letters {
                        tr {
                            td { (text_of(&letter["kind"])) }
                            td { (letter["attempts"].as_i64().unwrap_or(0)) }
                            td { (text_of(&letter["error"])) }
                            td { (when(&letter["failedAt"])) }
                        }
                    }
                }
            } }
            (beside(outcome, "replay"))
            (action_form(session, id, "replay", html! {}, text::REPLAY))
        }
        @if letters.is_empty() { (beside(outcome, "replay")) }
    }
}

/// The jobs, a run-now button each, and the latest runs.
fn jobs(session: &Session, id: &str, jobs: &[Json], runs: &[Json], outcome: Option<&Outcome<'_>>) -> Markup {
    html! {
        @if !jobs.is_empty() {
            h2 { (text::JOBS) }
            (beside(outcome, "run"))
            div.table-wrap { table {
                thead { tr {
                    @for column in [text::JOB, text::SCHEDULE, text::NEXT_RUN, text::LAST_RUN] { th scope="col" { (column) } }
                    th scope="col" { span.skip { (text::RUN_NOW) } }
                } }
                tbody {
                    @for job in jobs {
                        tr {
                            td { code { (text_of(&job["name"])) } br; span.muted { (text_of(&job["description"])) } }
                            td { code { (text_of(&job["schedule"])) } }
                            td { (when(&job["nextRunAt"])) }
                            td { (when(&job["lastRunAt"])) }
                            td {
                                form method="post" action=(format!("/admin/plugins/{id}/run")) {
                                    input type="hidden" name="_csrf" value=(session.csrf);
                                    input type="hidden" name="job" value=(text_of(&job["name"]));
                                    button type="submit" aria-label=(format!("{} {}", text::RUN_NOW, text_of(&job["name"]))) { (text::RUN_NOW) }
                                }
                            }
                        }
                    }
                }
            } }
            h3 { (text::LATEST_RUNS) }
            @if runs.is_empty() { p.muted { (text::NOTHING_YET) } } @else {
                div.table-wrap { table {
                    thead { tr { @for column in [text::JOB, text::TRIGGER, text::STARTED, text::DURATION_MS, text::STATUS, text::ERROR] { th scope="col" { (column) } } } }
                    tbody {
                        @for run in runs {
                            tr {
                                td { (text_of(&run["job"])) }
                                td { (text_of(&run["trigger"])) }
                                td { (when(&run["startedAt"])) }
                                td { (run["durationMs"].as_i64().map(|d| d.to_string()).unwrap_or_default()) }
                                td { (text_of(&run["status"])) }
                                td { (text_of(&run["error"])) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// A plugin's page, with the refusal of the form that asked (if any).
async fn plugin_page(state: &AppState, session: &Session, id: &str, outcome: Option<&Outcome<'_>>) -> Response {
    if let Err(refusal) = offered(state, session, Role::Admin) {
        return *refusal;
    }
    let document = format!(
        "query($id: ID!) {{ plugins {{ {PLUGIN} }} pluginDeadLetters(id: $id, pendingOnly: true) {{ kind attempts error failedAt }} \
         pluginJobs(id: $id) {{ name description schedule nextRunAt lastRunAt }} \
         pluginJobRuns(id: $id, first: 10) {{ job trigger startedAt durationMs status error }} }}"
    );
    let read = query(state, session, &document, json!({ "id": id })).await;
    let plugins = read.data["plugins"].as_array().cloned().unwrap_or_default();
    let Some(plugin) = plugins.iter().find(|p| p["id"].as_str() == Some(id)) else {
        return problem(state, session, StatusCode::NOT_FOUND, text::NO_SUCH_PLUGIN);
    };
    let array = |name: &str| read.data[name].as_array().cloned().unwrap_or_default();
    let content = html! {
        p.muted { a href="/admin/plugins" { (text::PLUGINS) } }
        h1 { (text_of(&plugin["name"])) " " span.muted { (text_of(&plugin["version"])) } }
        p { (text_of(&plugin["description"])) }
        dl.fields {
            dt { (text::STATUS) } dd { (form::humanize_value(text_of(&plugin["status"]))) }
            dt { (text::HEALTH) } dd { (health(plugin)) }
        }
        (capabilities(session, plugin, outcome))
        (operations(plugin))
        (settings(session, plugin, outcome))
        (dead_letters(session, id, &array("pluginDeadLetters"), outcome))
        (jobs(session, id, &array("pluginJobs"), &array("pluginJobRuns"), outcome))
    };
    admin_page(state, session, outcome.map(|o| o.answer), text::PLUGINS, content)
}

/// `GET /admin/plugins/{id}`.
pub async fn show(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    plugin_page(&state, &session, &id, None).await
}

/// A submitted setting's value as the setting's current value is typed: a list one item per
/// line, a number or yes/no as such, anything else (and a secret) as text.
fn setting_value(current: &Json, raw: &str) -> Json {
    match current {
        Json::Array(_) => Json::Array(
            raw.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| Json::String(l.to_owned())).collect(),
        ),
        Json::Number(_) => raw
            .trim()
            .parse::<i64>()
            .map(Json::from)
            .or_else(|_| raw.trim().parse::<f64>().map(Json::from))
            .unwrap_or_else(|_| Json::String(raw.trim().to_owned())),
        Json::Bool(_) => Json::Bool(raw.trim() == "true"),
        _ => Json::String(raw.trim().to_owned()),
    }
}

/// The mutation and variables of form `action` on plugin `id`, or `None` for no such form.
async fn mutation_of(
    state: &AppState,
    session: &Session,
    id: &str,
    action: &str,
    submitted: &[(String, String)],
) -> Option<(&'static str, Json)> {
    let value = |name: &str| field(submitted, name);
    Some(match action {
        "enable" => {
            let grants: Vec<&str> = submitted.iter().filter(|(k, _)| k == "grants").map(|(_, v)| v.as_str()).collect();
            (
                "mutation($id: ID!, $grants: [String], $low: Boolean) { enablePlugin(id: $id, grants: $grants, allowLowRoleWrites: $low) { id } }",
                json!({ "id": id, "grants": grants, "low": value("allowLowRoleWrites") == "true" }),
            )
        }
        "disable" => ("mutation($id: ID!) { disablePlugin(id: $id) { id } }", json!({ "id": id })),
        "setting" => {
            let key = value("key");
            let current = query(state, session, "{ plugins { id settings } }", json!({})).await;
            let settings = current.data["plugins"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["id"].as_str() == Some(id)).map(|p| p["settings"][&key].clone()));
            (
                "mutation($id: ID!, $key: String!, $value: JSON) { setPluginSetting(id: $id, key: $key, value: $value) { id } }",
                json!({ "id": id, "key": key, "value": setting_value(&settings.unwrap_or(Json::Null), &value("value")) }),
            )
        }
        "replay" => ("mutation($id: ID!) { replayPluginEvents(id: $id) { replayed failed } }", json!({ "id": id })),
        "run" => (
            "mutation($id: ID!, $job: String!) { runPluginJob(id: $id, job: $job) { id } }",
            json!({ "id": id, "job": value("job") }),
        ),
        _ => return None,
    })
}

/// `POST /admin/plugins/{id}/{action}`: enables, disables, sets a setting, replays dead
/// letters or runs a job now.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, form::submitted(&submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let Some((document, variables)) = mutation_of(&state, &session, &id, &action, &submitted).await else {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::NOT_FOUND);
    };
    let back = format!("/admin/plugins/{id}");
    let answer = match write(&state, &session, &submitted, document, variables, &back).await {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    plugin_page(&state, &session, &id, Some(&Outcome { action: &action, answer: &answer })).await
}
