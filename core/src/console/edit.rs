//! Creating, editing and deleting any record through forms built from its registry entry: a
//! choice list for each reference, a message beside each field the API refuses, and a version
//! conflict explained (who changed the record since it was opened) with the choice to reload
//! or to overwrite. Every write is a GraphQL mutation run as the signed-in user, so the API's
//! roles, validation and plugin hooks decide.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Map, Value as Json, json};

use crate::console::form::{self, Choice, CustomField};
use crate::console::session::Session;
use crate::console::{Answer, may_read, may_write, text};
use crate::domain::code::Code;
use crate::domain::naming::{self, Suffix};
use crate::domain::object::{FieldDef, ObjectDef};
use crate::domain::value::FieldKind;
use crate::http::AppState;

use crate::console::pages::{custom_fields, messages, object, problem, query, read_record, render};

/// Up to [`CHOICES`] records of `target` to offer in a choice list (by its naming field), or
/// `None` when the caller may not read them.
pub(crate) async fn records_to_choose(state: &AppState, session: &Session, target: &ObjectDef) -> Option<Vec<Choice>> {
    if !may_read(state, &session.actor, target) {
        return None;
    }
    let role = session.actor.role;
    // By name, when the caller may read it (sorting by a field tells its values).
    let order = if target.readable(&target.name_field, role) { target.name_field.as_str() } else { "createdAt" };
    let document = format!(
        "query {{ {}(first: {CHOICES}, orderBy: [{{field: {order}}}]) {{ edges {{ node {{ id {} }} }} }} }}",
        target.plural,
        target.title_fields(role).join(" ")
    );
    let answer = query(state, session, &document, json!({})).await;
    let edges = answer.data[&target.plural]["edges"].as_array().cloned().unwrap_or_default();
    Some(
        edges
            .iter()
            .map(|edge| Choice {
                id: edge["node"]["id"].as_str().unwrap_or_default().to_owned(),
                title: form::title_of(target, role, &edge["node"]),
            })
            .collect(),
    )
}

/// The choice list of each reference the form sets.
async fn choices(state: &AppState, session: &Session, def: &ObjectDef, create: bool) -> BTreeMap<String, Vec<Choice>> {
    let registry = state.kith.registry();
    let mut out = BTreeMap::new();
    for field in form::writable(def, create) {
        let FieldKind::Ref(target) = &field.kind else { continue };
        let Some(target) = registry.get(target) else { continue };
        if let Some(list) = records_to_choose(state, session, target).await {
            out.insert(field.name.clone(), list);
        }
    }
    out
}

/// The object a submitted form writes to. Refused, with nothing done, without the session's
/// CSRF token, for an object the caller may not read, or for one without generic writes.
fn form_object(
    state: &AppState,
    session: &Session,
    plural: &str,
    submitted: &[(String, String)],
) -> Result<std::sync::Arc<ObjectDef>, Box<Response>> {
    let def = crate::console::pages::posted_object(state, session, plural, submitted)?;
    if !def.mutable {
        return Err(Box::new(problem(state, session, StatusCode::FORBIDDEN, text::FORBIDDEN)));
    }
    Ok(def)
}

/// What a form page shows besides the fields.
struct FormPage<'a> {
    def: &'a ObjectDef,
    /// `None` for a new record.
    id: Option<&'a str>,
    values: &'a Json,
    version: Option<i64>,
    errors: &'a [(String, String)],
    notice: Option<Markup>,
    choices: &'a BTreeMap<String, Vec<Choice>>,
    custom: &'a [CustomField],
    /// Only this group of the record page's fields (`text::DETAILS_GROUP` for the ungrouped).
    group: Option<&'a str>,
}

/// Whether `field` is in `group` (every field when no group is asked for).
fn in_group(field: &FieldDef, group: Option<&str>) -> bool {
    match group {
        None => true,
        Some(text::DETAILS_GROUP) => field.group.is_none(),
        Some(group) => field.group.as_deref() == Some(group),
    }
}

fn form_markup(session: &Session, page: &FormPage<'_>) -> Markup {
    let create = page.id.is_none();
    let def = page.def;
    let action = match page.id {
        Some(id) => format!("/o/{}/{id}", def.plural),
        None => format!("/o/{}", def.plural),
    };
    let general: Vec<&(String, String)> = page
        .errors
        .iter()
        .filter(|(field, _)| def.field_def(field).is_none() && !page.custom.iter().any(|c| c.field.name == *field))
        .collect();
    html! {
        h1 { @if create { (text::NEW) " " (def.label.to_lowercase()) } @else { (text::EDIT) " " (def.label.to_lowercase()) } }
        @if let Some(notice) = &page.notice { (notice) }
        @if !general.is_empty() {
            div.notice role="alert" { (text::FIX_ERRORS) ul { @for (_, message) in &general { li { (message) } } } }
        }
        form.record method="post" action=(action) {
            input type="hidden" name="_csrf" value=(session.csrf);
            @if let Some(version) = page.version { input type="hidden" name="_version" value=(version); }
            @for field in form::writable(def, create).into_iter().filter(|f| in_group(f, page.group)) {
                @let error = page.errors.iter().find(|(f, _)| *f == field.name).map(|(_, m)| m.as_str());
                @if create || field.readable_by(session.actor.role) {
                    div { (form::widget(field, &page.values[&field.name], error, page.choices.get(&field.name).map(Vec::as_slice))) }
                } @else {
                    // A value the caller may not read is neither shown nor sent back (so kept).
                    div { (field.label) ": " (form::restricted(field)) }
                }
            }
            @let details = matches!(page.group, None | Some(text::DETAILS_GROUP));
            @for custom in page.custom.iter().filter(|_| details) {
                @let error = page.errors.iter().find(|(f, _)| *f == custom.field.name).map(|(_, m)| m.as_str());
                div { (form::widget(&custom.field, &page.values[&custom.field.name], error, None)) }
            }
            @if def.taggable && details {
                label for="f-tags" { (text::TAGS) }
                input #f-tags type="text" name="tags" value=(page.values["tags"].as_array().map(|t| t.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default());
            }
            div.actions {
                // After a conflict (the only notice), saving again overwrites the other change.
                button type="submit" { @if create { (text::CREATE) } @else if page.notice.is_some() { (text::OVERWRITE) } @else { (text::SAVE) } }
                a href=(match page.id { Some(id) => format!("/o/{}/{id}", def.plural), None => format!("/o/{}", def.plural) }) { (text::CANCEL) }
            }
        }
    }
}

/// `GET /o/{plural}/new`.
pub async fn new_record(State(state): State<AppState>, session: Session, Path(plural): Path<String>) -> Response {
    let def = match object(&state, &session, &plural) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    if !def.mutable || !may_write(&session.actor) {
        return problem(&state, &session, StatusCode::FORBIDDEN, text::FORBIDDEN);
    }
    let choices = choices(&state, &session, &def, true).await;
    let custom = custom_fields(&state, &session, &def).await;
    let page = FormPage {
        def: &def,
        id: None,
        values: &Json::Null,
        version: None,
        errors: &[],
        notice: None,
        choices: &choices,
        custom: &custom,
        group: None,
    };
    let title = format!("{} {}", text::NEW, def.label.to_lowercase());
    render(&state, &session, StatusCode::OK, title, form_markup(&session, &page))
}

/// The form's values as a JSON object, to show the form again as it was submitted.
fn submitted_values(def: &ObjectDef, custom: &[CustomField], form: &[(String, String)], create: bool) -> Json {
    let mut values = Map::new();
    for field in form::writable(def, create).into_iter().chain(custom.iter().map(|c| &c.field)) {
        if let Some(value) = form::submitted(form, &field.name) {
            let value = match field.kind {
                FieldKind::Bool => Json::Bool(value == "true"),
                _ => Json::String(value.to_owned()),
            };
            values.insert(field.name.clone(), value);
        }
    }
    if let Some(tags) = form::submitted(form, "tags") {
        values.insert("tags".into(), Json::Array(tags.split(',').map(|t| Json::String(t.trim().to_owned())).collect()));
    }
    Json::Object(values)
}

/// Errors of an answer by field (those that name one) or for the whole form.
fn answer_errors(answer: &Answer) -> Vec<(String, String)> {
    answer
        .errors
        .iter()
        .map(|e| {
            let field = e.field.clone().unwrap_or_default();
            let field = field.strip_prefix("input.").unwrap_or(&field).to_owned();
            (field, e.message.clone())
        })
        .collect()
}

/// The GraphQL input of a submitted form: its fields, tags and custom fields, or a message per
/// value that does not parse.
fn record_input(
    def: &ObjectDef,
    custom: &[CustomField],
    submitted: &[(String, String)],
    create: bool,
) -> Result<Map<String, Json>, Vec<(String, String)>> {
    let fields = form::writable(def, create);
    match (form::input_of(&fields, submitted, create, def.taggable), form::custom_input(custom, submitted, create)) {
        (Ok(mut input), Ok(values)) => {
            if let Some(values) = values {
                input.insert("customFields".into(), values);
            }
            Ok(input)
        }
        (input, values) => Err(input.err().into_iter().chain(values.err()).flatten().collect()),
    }
}

/// `POST /o/{plural}`: creates a record from the form.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    Path(plural): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let def = match form_object(&state, &session, &plural, &submitted) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let custom = custom_fields(&state, &session, &def).await;
    let errors = match record_input(&def, &custom, &submitted, true) {
        Ok(input) => {
            let document = format!(
                "mutation($input: {}!) {{ {}(input: $input) {{ id }} }}",
                naming::object_type(&def, Suffix::CreateInput),
                naming::mutation(&def, "create")
            );
            let answer = query(&state, &session, &document, json!({ "input": input })).await;
            if let Some(id) = answer.data[naming::mutation(&def, "create")]["id"].as_str() {
                // The list's quick add goes back to the list.
                if form::submitted(&submitted, "_back") == Some("list") {
                    return Redirect::to(&format!("/o/{}", def.plural)).into_response();
                }
                return Redirect::to(&format!("/o/{}/{id}", def.plural)).into_response();
            }
            if answer.code() == Some(Code::Forbidden) {
                return problem(&state, &session, StatusCode::FORBIDDEN, &messages(&answer));
            }
            answer_errors(&answer)
        }
        Err(errors) => errors,
    };
    let choices = choices(&state, &session, &def, true).await;
    let values = submitted_values(&def, &custom, &submitted, true);
    let page = FormPage {
        def: &def,
        id: None,
        values: &values,
        version: None,
        errors: &errors,
        notice: None,
        choices: &choices,
        custom: &custom,
        group: None,
    };
    let title = format!("{} {}", text::NEW, def.label.to_lowercase());
    render(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, title, form_markup(&session, &page))
}

/// Query of an edit page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct EditQuery {
    /// Only this group of fields (the record page edits a group in place).
    pub group: Option<String>,
}

/// `GET /o/{plural}/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    Path((plural, id)): Path<(String, String)>,
    Query(q): Query<EditQuery>,
) -> Response {
    let def = match object(&state, &session, &plural) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    if !def.mutable || !may_write(&session.actor) {
        return problem(&state, &session, StatusCode::FORBIDDEN, text::FORBIDDEN);
    }
    let answer = read_record(&state, &session, &def, &id, false).await;
    let node = &answer.data[&def.name];
    if node.is_null() {
        return problem(&state, &session, StatusCode::NOT_FOUND, text::NOT_FOUND);
    }
    let choices = choices(&state, &session, &def, false).await;
    let custom = custom_fields(&state, &session, &def).await;
    let mut values = node.clone();
    if let Json::Object(map) = &mut values {
        map.extend(form::custom_values(&custom, node));
    }
    let page = FormPage {
        def: &def,
        id: Some(&id),
        values: &values,
        version: node["version"].as_i64(),
        errors: &[],
        notice: None,
        choices: &choices,
        custom: &custom,
        group: q.group.as_deref(),
    };
    let title = format!("{} {}", text::EDIT, form::title_of(&def, session.actor.role, node));
    render(&state, &session, StatusCode::OK, title, form_markup(&session, &page))
}

/// Who changed a record last, as its audit log says (when the caller may read it).
async fn last_changed_by(state: &AppState, session: &Session, def: &ObjectDef, id: &str) -> Option<String> {
    let answer = query(
        state,
        session,
        "query($object: String!, $id: ID) { auditLog(object: $object, id: $id, first: 1) { actorName } }",
        json!({ "object": def.name, "id": id }),
    )
    .await;
    answer.data["auditLog"][0]["actorName"].as_str().map(str::to_owned)
}

/// `POST /o/{plural}/{id}`: saves the form; on a version conflict, says who changed the record
/// and offers to reload or to overwrite.
pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path((plural, id)): Path<(String, String)>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let def = match form_object(&state, &session, &plural, &submitted) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let version = form::submitted(&submitted, "_version").and_then(|v| v.parse::<i64>().ok());
    let custom = custom_fields(&state, &session, &def).await;
    let mut notice = None;
    let mut shown_version = version;
    let errors = match record_input(&def, &custom, &submitted, false) {
        Ok(input) => {
            let document = format!(
                "mutation($id: ID!, $input: {}!, $version: Int) {{ {}(id: $id, input: $input, expectedVersion: $version) {{ id }} }}",
                naming::object_type(&def, Suffix::UpdateInput),
                naming::mutation(&def, "update")
            );
            let answer =
                query(&state, &session, &document, json!({ "id": id, "input": input, "version": version })).await;
            if answer.data[naming::mutation(&def, "update")]["id"].as_str().is_some() {
                return Redirect::to(&format!("/o/{}/{id}", def.plural)).into_response();
            }
            match answer.code() {
                Some(Code::Conflict) if version.is_some() => {
                    let current = read_record(&state, &session, &def, &id, false).await;
                    shown_version = current.data[&def.name]["version"].as_i64();
                    let by = last_changed_by(&state, &session, &def, &id).await;
                    notice = Some(html! {
                        div.notice role="alert" {
                            p { strong { (text::CONFLICT) @if let Some(by) = &by { " " (text::CONFLICT_BY) " " (by) } "." } }
                            p { (text::CONFLICT_CHOICE) }
                            a.button.secondary href=(format!("/o/{}/{id}/edit", def.plural)) { (text::RELOAD) }
                        }
                    });
                    Vec::new()
                }
                Some(Code::Forbidden) => return problem(&state, &session, StatusCode::FORBIDDEN, &messages(&answer)),
                Some(Code::NotFound) => return problem(&state, &session, StatusCode::NOT_FOUND, text::NOT_FOUND),
                _ => answer_errors(&answer),
            }
        }
        Err(errors) => errors,
    };
    let choices = choices(&state, &session, &def, false).await;
    let values = submitted_values(&def, &custom, &submitted, false);
    let status = if notice.is_some() { StatusCode::CONFLICT } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = FormPage {
        def: &def,
        id: Some(&id),
        values: &values,
        version: shown_version,
        errors: &errors,
        notice,
        choices: &choices,
        custom: &custom,
        group: None,
    };
    render(
        &state,
        &session,
        status,
        format!("{} {}", text::EDIT, def.label.to_lowercase()),
        form_markup(&session, &page),
    )
}

/// `POST /o/{plural}/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path((plural, id)): Path<(String, String)>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let def = match form_object(&state, &session, &plural, &submitted) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let document = format!("mutation($id: ID!) {{ {}(id: $id) {{ id }} }}", naming::mutation(&def, "delete"));
    let answer = query(&state, &session, &document, json!({ "id": id })).await;
    if answer.errors.is_empty() {
        return Redirect::to(&format!("/o/{}", def.plural)).into_response();
    }
    let status =
        if answer.code() == Some(Code::Forbidden) { StatusCode::FORBIDDEN } else { StatusCode::UNPROCESSABLE_ENTITY };
    problem(&state, &session, status, &messages(&answer))
}

/// Records a reference's choice list offers.
/// Records a reference's choice list offers.
pub(crate) const CHOICES: i64 = 100;
