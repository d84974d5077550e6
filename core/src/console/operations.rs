//! A form for every plugin query and mutation the signed-in role may call, generated from its
//! typed arguments (a choice list for enums and for `...Id` arguments that name an object, a
//! date control for `Date`, ...), and its answer shown as a table. The call is the GraphQL
//! operation itself, so the plugin's declared role, argument checks and result checks apply.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Map, Value as Json};

use crate::console::form::{self, Choice};
use crate::console::pages::{messages, problem, query, render};
use crate::console::session::{Session, check_csrf};
use crate::console::text;
use crate::domain::extension::{Extension, Operation, OperationKind, TypeExpr};
use crate::domain::object::humanize;
use crate::http::AppState;

/// The operations `session` may call, with their plugin's contributions.
fn callable(state: &AppState, session: &Session) -> Vec<(std::sync::Arc<Extension>, Operation)> {
    let registry = state.kith.registry();
    let mut out = Vec::new();
    for extension in registry.extensions() {
        for operation in &extension.operations {
            if session.actor.role.allows(operation.role) {
                out.push((extension.clone(), operation.clone()));
            }
        }
    }
    out
}

/// `GET /ops`: every plugin operation the caller may run.
pub async fn index(State(state): State<AppState>, session: Session) -> Response {
    let operations = callable(&state, &session);
    let mut by_plugin: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for (extension, operation) in &operations {
        by_plugin.entry(extension.plugin.clone()).or_default().push(operation);
    }
    let content = html! {
        h1 { (text::OPERATIONS) }
        @if operations.is_empty() { p.muted { (text::NO_OPERATIONS) } }
        @for (plugin, list) in &by_plugin {
            h2 { (humanize(plugin)) }
            ul {
                @for operation in list {
                    li {
                        a href=(format!("/ops/{plugin}/{}", operation.name)) { (humanize(&operation.name)) }
                        @if !operation.description.is_empty() { " — " span.muted { (operation.description) } }
                    }
                }
            }
        }
    };
    render(&state, &session, StatusCode::OK, text::OPERATIONS.to_owned(), content)
}

/// The operation `plugin`'s `name`, if the caller may run it.
fn find(
    state: &AppState,
    session: &Session,
    plugin: &str,
    name: &str,
) -> Option<(std::sync::Arc<Extension>, Operation)> {
    callable(state, session).into_iter().find(|(e, o)| e.plugin == plugin && o.name == name)
}

/// Records to offer for an argument named after an object (`contactId`).
async fn choices_for(state: &AppState, session: &Session, argument: &str) -> Option<Vec<Choice>> {
    let registry = state.kith.registry();
    let target = registry.get(argument.strip_suffix("Id")?)?.clone();
    crate::console::edit::records_to_choose(state, session, &target).await
}

/// The control for one argument.
fn control(extension: &Extension, name: &str, ty: &TypeExpr, value: &str, choices: Option<&[Choice]>) -> Markup {
    let id = format!("a-{name}");
    let required = ty.non_null;
    html! {
        label for=(id) { (humanize(name)) @if required { " *" } @if ty.list.is_some() { " " span.muted { (text::ONE_PER_LINE) } } }
        @if ty.list.is_some() || ty.name == "JSON" {
            textarea #(id) name=(name) rows="3" required[required] { (value) }
        } @else if let Some(def) = extension.enum_def(&ty.name) {
            select #(id) name=(name) required[required] {
                @if !required { option value="" { (text::NONE) } }
                @for v in &def.values { option value=(v) selected[value == v] { (form::humanize_value(v)) } }
            }
        } @else if let Some(choices) = choices {
            select #(id) name=(name) required[required] {
                @if !required { option value="" { (text::NONE) } }
                @for c in choices { option value=(c.id) selected[value == c.id] { (c.title) } }
            }
        } @else if ty.name == "Boolean" {
            input type="hidden" name=(name) value="false";
            input #(id) type="checkbox" name=(name) value="true" checked[value == "true"];
        } @else {
            input #(id) name=(name) value=(value) required[required] type=(match ty.name.as_str() {
                "Int" | "Float" | "Decimal" => "number",
                "Date" => "date",
                "DateTime" => "datetime-local",
                _ => "text",
            }) step=[matches!(ty.name.as_str(), "Float" | "Decimal").then_some("any")];
        }
    }
}

/// The form of an operation, with what was entered and the answer under it.
async fn form_page(
    state: &AppState,
    session: &Session,
    (extension, operation): (&Extension, &Operation),
    values: &BTreeMap<String, String>,
    outcome: Option<Markup>,
) -> Markup {
    let mut controls = Vec::new();
    for (name, ty) in &operation.arguments {
        let choices = if ty.name == "ID" && ty.list.is_none() { choices_for(state, session, name).await } else { None };
        controls.push(control(extension, name, ty, values.get(name).map_or("", String::as_str), choices.as_deref()));
    }
    html! {
        p.muted { a href="/ops" { (text::OPERATIONS) } " · " (humanize(&extension.plugin)) }
        h1 { (humanize(&operation.name)) }
        @if !operation.description.is_empty() { p { (operation.description) } }
        form.record method="post" action=(format!("/ops/{}/{}", extension.plugin, operation.name)) {
            input type="hidden" name="_csrf" value=(session.csrf);
            @for c in &controls { div { (c) } }
            div.actions { button type="submit" { (text::RUN) } }
        }
        @if let Some(outcome) = outcome { h2 { (text::RESULT) } (outcome) }
    }
}

/// `GET /ops/{plugin}/{name}`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path((plugin, name)): Path<(String, String)>,
) -> Response {
    let Some((extension, operation)) = find(&state, &session, &plugin, &name) else {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::NO_SUCH_OPERATION);
    };
    let content = form_page(&state, &session, (&extension, &operation), &BTreeMap::new(), None).await;
    render(&state, &session, StatusCode::OK, humanize(&operation.name), content)
}

/// A submitted value as the argument's type wants it, or why it is not one.
fn argument_value(ty: &TypeExpr, raw: &str) -> Result<Json, String> {
    let one = |text: &str| -> Result<Json, String> {
        match ty.name.as_str() {
            "Int" => text.trim().parse::<i64>().map(Json::from).map_err(|_| text::NOT_A_NUMBER.to_owned()),
            "Float" => text.trim().parse::<f64>().map(Json::from).map_err(|_| text::NOT_A_NUMBER.to_owned()),
            "Boolean" => Ok(Json::Bool(text == "true")),
            "JSON" => serde_json::from_str(text).map_err(|_| text::NOT_JSON.to_owned()),
            "DateTime" if text.len() == 16 => Ok(Json::String(format!("{text}:00Z"))),
            _ => Ok(Json::String(text.trim().to_owned())),
        }
    };
    if ty.list.is_some() {
        raw.lines().map(str::trim).filter(|l| !l.is_empty()).map(one).collect::<Result<Vec<_>, _>>().map(Json::Array)
    } else {
        one(raw)
    }
}

/// The selection of a result of type `ty`: the scalar and enum fields of a plugin type.
fn selection(extension: &Extension, ty: &TypeExpr) -> String {
    match extension.types.iter().find(|t| t.name == ty.name) {
        Some(def) => {
            let fields: Vec<&str> = def
                .fields
                .iter()
                .filter(|(_, t)| t.is_scalar() || extension.enum_def(&t.name).is_some())
                .map(|(name, _)| name.as_str())
                .collect();
            format!(" {{ {} }}", fields.join(" "))
        }
        None => String::new(),
    }
}

/// An answer as people read it: a table for a list of objects, fields for an object.
fn show_value(value: &Json) -> Markup {
    match value {
        Json::Array(items) if items.iter().all(Json::is_object) && !items.is_empty() => {
            let columns: Vec<String> = items[0].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            html! {
                div.table-wrap { table {
                    thead { tr { @for c in &columns { th scope="col" { (humanize(c)) } } } }
                    tbody { @for item in items { tr { @for c in &columns { td { (form::display(&crate::domain::value::FieldKind::Text, &item[c])) } } } } }
                } }
            }
        }
        Json::Array(items) => {
            html! { ul { @for item in items { li { (form::display(&crate::domain::value::FieldKind::Text, item)) } } } }
        }
        Json::Object(map) => html! {
            dl.fields { @for (key, v) in map { dt { (humanize(key)) } dd { (form::display(&crate::domain::value::FieldKind::Text, v)) } } }
        },
        Json::Null => html! { p.muted { (text::NONE) } },
        other => html! { p { (form::display(&crate::domain::value::FieldKind::Text, other)) } },
    }
}

/// `POST /ops/{plugin}/{name}`: runs the operation with the form's values.
pub async fn run_operation(
    State(state): State<AppState>,
    session: Session,
    Path((plugin, name)): Path<(String, String)>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refusal) = check_csrf(&session, form::submitted(&submitted, "_csrf").unwrap_or_default()) {
        return *refusal;
    }
    let Some((extension, operation)) = find(&state, &session, &plugin, &name) else {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::NO_SUCH_OPERATION);
    };
    let mut values = BTreeMap::new();
    let mut variables = Map::new();
    let mut errors = Vec::new();
    for (argument, ty) in &operation.arguments {
        let raw = form::submitted(&submitted, argument).unwrap_or_default().to_owned();
        values.insert(argument.clone(), raw.clone());
        if raw.trim().is_empty() && ty.name != "Boolean" {
            continue;
        }
        match argument_value(ty, &raw) {
            Ok(value) => {
                variables.insert(argument.clone(), value);
            }
            Err(reason) => errors.push(format!("{}: {reason}", humanize(argument))),
        }
    }
    let (status, outcome) = if errors.is_empty() {
        let declared: Vec<String> = operation.arguments.iter().map(|(n, t)| format!("${n}: {t}")).collect();
        let passed: Vec<String> = operation.arguments.keys().map(|n| format!("{n}: ${n}")).collect();
        let keyword = if operation.kind == OperationKind::Mutation { "mutation" } else { "query" };
        let (declared, passed) = if declared.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("({})", declared.join(", ")), format!("({})", passed.join(", ")))
        };
        let document = format!(
            "{keyword}{declared} {{ {}{passed}{} }}",
            operation.name,
            selection(&extension, &operation.returns)
        );
        let answer = query(&state, &session, &document, Json::Object(variables)).await;
        if answer.errors.is_empty() {
            (StatusCode::OK, html! { div.ok role="status" { (show_value(&answer.data[&operation.name])) } })
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, html! { p.notice role="alert" { (messages(&answer)) } })
        }
    } else {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! { div.notice role="alert" { ul { @for e in &errors { li { (e) } } } } },
        )
    };
    let content = form_page(&state, &session, (&extension, &operation), &values, Some(outcome)).await;
    render(&state, &session, status, humanize(&operation.name), content)
}
