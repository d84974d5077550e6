//! What a list page does beyond showing a page: choose its columns, save its filter as a
//! segment, export every matching record as CSV, act on the ticked records at once (tag,
//! assign, delete, export) and add a record inline. Each is the API's: a bulk action is one
//! GraphQL document of aliased mutations (run in order, each with the version it was shown),
//! so every record goes through the same roles, hooks and audit as one edit.

use axum::extract::{Form, Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Map, Value as Json, json};

use crate::console::form::{self, Choice};
use crate::console::pages::{
    ListQuery, columns_of, filter_of, list_href, listable, messages, object, posted_object, problem, query,
};
use crate::console::reports::csv_download;
use crate::console::session::Session;
use crate::console::{may_delete, may_write, text};
use crate::domain::actor::Role;
use crate::domain::naming::{self, Suffix};
use crate::domain::object::{FieldDef, ObjectDef, Registry};
use crate::domain::value::FieldKind;
use crate::http::AppState;

/// Records an export reads at most.
const EXPORT_MAX: usize = 50_000;
/// Records read per request while exporting (within any sensible `api.max_page_size`).
const EXPORT_PAGE: i64 = 100;
/// Records one bulk action takes at most (a page).
const BULK_MAX: usize = 100;

/// The field that says who is responsible for a record (a reference to a user), if any.
fn owner_field(def: &ObjectDef) -> Option<&FieldDef> {
    def.fields.iter().find(|f| matches!(&f.kind, FieldKind::Ref(target) if target == "user"))
}

/// Fields a quick-add row can take with a plain control: required or listed, not references.
fn quick_fields(def: &ObjectDef, columns: &[String]) -> Option<Vec<FieldDef>> {
    let writable = form::writable(def, true);
    let simple = |f: &FieldDef| {
        matches!(
            f.kind,
            FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Int | FieldKind::Decimal | FieldKind::Date
        )
    };
    // A record that needs a reference or another kind of value gets the full form instead.
    if writable.iter().any(|f| f.required && !simple(f)) {
        return None;
    }
    let fields: Vec<FieldDef> =
        writable.into_iter().filter(|f| simple(f) && (f.required || columns.contains(&f.name))).cloned().collect();
    (!fields.is_empty()).then_some(fields)
}

/// The tools above a list: columns, export, save as segment, bulk actions, quick add.
pub async fn toolbar(
    state: &AppState,
    session: &Session,
    def: &ObjectDef,
    q: &ListQuery,
    columns: &[String],
    filtered: bool,
) -> Markup {
    let registry = state.kith.registry();
    let export = list_href(def, q, &[("after", None), ("before", None)]).replacen(
        &format!("/o/{}", def.plural),
        &format!("/o/{}/export.csv", def.plural),
        1,
    );
    let showable: Vec<&FieldDef> = def.fields.iter().filter(|f| listable(f, session.actor.role)).collect();
    let writer = def.mutable && may_write(&session.actor);
    let owners = match owner_field(def).and_then(|f| match &f.kind {
        FieldKind::Ref(target) => registry.get(target).cloned(),
        _ => None,
    }) {
        Some(user) if writer => crate::console::edit::records_to_choose(state, session, &user).await,
        _ => None,
    };
    let quick = if writer { quick_fields(def, columns) } else { None };
    html! {
        div.tools {
            details {
                summary { (text::COLUMNS) }
                form method="get" action=(format!("/o/{}", def.plural)) {
                    @for (key, value) in [("f", &q.f), ("op", &q.op), ("v", &q.v), ("sort", &q.sort), ("dir", &q.dir)] {
                        @if let Some(value) = value { input type="hidden" name=(key) value=(value); }
                    }
                    fieldset {
                        legend { (text::COLUMNS_SHOWN) }
                        @for field in &showable {
                            label.check { input type="checkbox" name="col" value=(field.name) checked[columns.contains(&field.name)]; " " (field.label) }
                        }
                    }
                    button type="submit" { (text::SHOW) }
                }
            }
            a.button.secondary href=(export) download { (text::EXPORT_CSV) }
            @if def.segmentable && writer && filtered {
                details {
                    summary { (text::SAVE_AS_SEGMENT) }
                    form.inline method="post" action=(format!("/o/{}/segment", def.plural)) {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        @for (key, value) in [("f", &q.f), ("op", &q.op), ("v", &q.v)] {
                            @if let Some(value) = value { input type="hidden" name=(key) value=(value); }
                        }
                        label for="segment-name" { (text::SEGMENT_NAME) }
                        input #segment-name type="text" name="name" required;
                        button type="submit" { (text::SAVE) }
                    }
                }
            }
            @if let Some(fields) = &quick {
                details {
                    summary { (text::QUICK_ADD) " " (def.label.to_lowercase()) }
                    form.inline method="post" action=(format!("/o/{}", def.plural)) {
                        input type="hidden" name="_csrf" value=(session.csrf);
                        input type="hidden" name="_back" value="list";
                        @for field in fields { div { (form::widget(field, &Json::Null, None, None)) } }
                        button type="submit" { (text::CREATE) }
                    }
                }
            }
        }
        form #bulk.inline method="post" action=(format!("/o/{}/bulk", def.plural)) {
            input type="hidden" name="_csrf" value=(session.csrf);
            label for="bulk-action" { (text::WITH_TICKED) }
            select #bulk-action name="action" {
                option value="export" { (text::EXPORT_CSV) }
                @if writer && def.taggable { option value="tag" { (text::ADD_TAG) } }
                @if writer && owners.is_some() { option value="assign" { (text::ASSIGN_TO) } }
                @if def.mutable && may_delete(&session.actor) { option value="delete" { (text::DELETE) } }
            }
            @if writer && def.taggable {
                label for="bulk-tag" { (text::TAG) }
                input #bulk-tag type="text" name="tag";
            }
            @if let Some(owners) = &owners {
                label for="bulk-owner" { (text::OWNER) }
                select #bulk-owner name="owner" { @for Choice { id, title } in owners { option value=(id) { (title) } } }
            }
            button type="submit" { (text::APPLY) }
        }
    }
}

/// The tick box of a list row, part of the bulk form.
pub fn tick(id: &str, title: &str) -> Markup {
    html! { input type="checkbox" name="id" value=(id) form="bulk" aria-label=(format!("{} {title}", text::SELECT)); }
}

/// Reads records of `def` matching `filter` (the ids in `ids` when given) with `columns`, in
/// pages, up to `max`.
async fn read_all(
    state: &AppState,
    session: &Session,
    registry: &Registry,
    def: &ObjectDef,
    filter: Option<Json>,
    columns: &[String],
    max: usize,
) -> Result<Vec<Json>, String> {
    let document = format!(
        "query($first: Int, $after: String, $filter: {filter}) {{ {plural}(first: $first, after: $after, filter: $filter) {{ \
         pageInfo {{ hasNextPage endCursor }} edges {{ node {{ version {selection} }} }} }} }}",
        filter = naming::object_type(def, Suffix::Filter),
        plural = def.plural,
        selection = form::selection(registry, def, columns, session.actor.role),
    );
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    while out.len() < max {
        let answer = query(
            state,
            session,
            &document,
            json!({ "first": EXPORT_PAGE.min((max - out.len()) as i64), "after": after, "filter": filter }),
        )
        .await;
        if !answer.errors.is_empty() {
            return Err(messages(&answer));
        }
        let connection = &answer.data[&def.plural];
        out.extend(connection["edges"].as_array().into_iter().flatten().map(|e| e["node"].clone()));
        match connection["pageInfo"]["endCursor"].as_str() {
            Some(cursor) if connection["pageInfo"]["hasNextPage"] == true => after = Some(cursor.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// `records` as CSV rows under their columns' labels, values as the list shows them (the
/// columns are those `role` may read: see [`columns_of`]).
fn csv_rows(
    registry: &Registry,
    def: &ObjectDef,
    columns: &[String],
    records: &[Json],
    role: Role,
) -> Vec<Vec<String>> {
    let fields: Vec<&FieldDef> = columns.iter().filter_map(|c| def.field_def(c)).collect();
    let mut rows =
        vec![std::iter::once("id".to_owned()).chain(fields.iter().map(|f| f.name.clone())).collect::<Vec<_>>()];
    for record in records {
        rows.push(
            std::iter::once(record["id"].as_str().unwrap_or_default().to_owned())
                .chain(fields.iter().map(|f| form::cell_text(registry, def, f, record, role)))
                .collect(),
        );
    }
    rows
}

/// `GET /o/{plural}/export.csv`: every record matching the list's filter (up to 50,000), with
/// the list's columns.
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    Path(plural): Path<String>,
    Query(q): Query<ListQuery>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let def = match object(&state, &session, &plural) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let filter = match filter_of(&def, &q) {
        Ok(filter) => filter,
        Err(message) => return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &message),
    };
    let registry = state.kith.registry();
    let role = session.actor.role;
    let columns = columns_of(&def, &q, raw_query.as_deref(), role);
    match read_all(&state, &session, &registry, &def, filter, &columns, EXPORT_MAX).await {
        Ok(records) => {
            csv_download(&format!("{}.csv", def.plural), &csv_rows(&registry, &def, &columns, &records, role))
        }
        Err(message) => problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

/// `POST /o/{plural}/segment`: saves the list's filter as a segment, then shows it.
pub async fn save_segment(
    State(state): State<AppState>,
    session: Session,
    Path(plural): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let def = match posted_object(&state, &session, &plural, &submitted) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let get = |key: &str| form::submitted(&submitted, key).map(str::to_owned);
    let q = ListQuery { f: get("f"), op: get("op"), v: get("v"), ..ListQuery::default() };
    let filter = match filter_of(&def, &q) {
        Ok(Some(filter)) => filter,
        Ok(None) => return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, text::SEGMENT_NEEDS_FILTER),
        Err(message) => return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &message),
    };
    let answer = query(
        &state,
        &session,
        "mutation($input: SegmentCreateInput!) { createSegment(input: $input) { id } }",
        json!({ "input": { "name": get("name").unwrap_or_default(), "object": def.name.to_ascii_uppercase(), "filter": filter } }),
    )
    .await;
    match answer.data["createSegment"]["id"].as_str() {
        Some(id) => Redirect::to(&format!("/o/segments/{id}")).into_response(),
        None => problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer)),
    }
}

/// `POST /o/{plural}/bulk`: the chosen action on the ticked records.
pub async fn bulk(
    State(state): State<AppState>,
    session: Session,
    Path(plural): Path<String>,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let def = match posted_object(&state, &session, &plural, &submitted) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let ids: Vec<String> = submitted.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.clone()).take(BULK_MAX).collect();
    if ids.is_empty() {
        return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, text::TICK_FIRST);
    }
    let registry = state.kith.registry();
    let action = form::submitted(&submitted, "action").unwrap_or("export");
    let filter = json!({ "id": { "in": ids } });
    let role = session.actor.role;
    let columns = columns_of(&def, &ListQuery::default(), None, role);
    let wanted: Vec<String> = if action == "tag" { vec!["tags".to_owned()] } else { Vec::new() };
    let records = match read_all(
        &state,
        &session,
        &registry,
        &def,
        Some(filter),
        if action == "export" { &columns } else { &wanted },
        BULK_MAX,
    )
    .await
    {
        Ok(records) => records,
        Err(message) => return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &message),
    };
    let (mutation, inputs): (String, Vec<Map<String, Json>>) = match action {
        "export" => {
            return csv_download(&format!("{}.csv", def.plural), &csv_rows(&registry, &def, &columns, &records, role));
        }
        "tag" => {
            let Some(tag) = form::submitted(&submitted, "tag").map(str::trim).filter(|t| !t.is_empty()) else {
                return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, text::TAG_NEEDED);
            };
            let inputs = records
                .iter()
                .map(|r| {
                    let mut tags: Vec<Json> = r["tags"].as_array().cloned().unwrap_or_default();
                    if !tags.iter().any(|t| t.as_str() == Some(tag)) {
                        tags.push(json!(tag));
                    }
                    Map::from_iter([("tags".to_owned(), Json::Array(tags))])
                })
                .collect();
            (naming::mutation(&def, "update"), inputs)
        }
        "assign" => {
            let (Some(field), Some(owner)) = (owner_field(&def), form::submitted(&submitted, "owner")) else {
                return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, text::FORBIDDEN);
            };
            let input = Map::from_iter([(field.name.clone(), json!(owner))]);
            (naming::mutation(&def, "update"), records.iter().map(|_| input.clone()).collect())
        }
        "delete" => (naming::mutation(&def, "delete"), Vec::new()),
        _ => return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, text::FORBIDDEN),
    };
    // One document: the mutations run one after another, each record with the version shown.
    let mut declared = Vec::new();
    let mut fields = Vec::new();
    let mut variables = Map::new();
    for (i, record) in records.iter().enumerate() {
        declared.push(format!("$id{i}: ID!"));
        variables.insert(format!("id{i}"), record["id"].clone());
        if action == "delete" {
            fields.push(format!("r{i}: {mutation}(id: $id{i}) {{ id }}"));
        } else {
            declared.push(format!("$in{i}: {}!, $v{i}: Int", naming::object_type(&def, Suffix::UpdateInput)));
            variables.insert(format!("in{i}"), Json::Object(inputs[i].clone()));
            variables.insert(format!("v{i}"), record["version"].clone());
            fields.push(format!("r{i}: {mutation}(id: $id{i}, input: $in{i}, expectedVersion: $v{i}) {{ id }}"));
        }
    }
    let document = format!("mutation({}) {{ {} }}", declared.join(", "), fields.join(" "));
    let answer = query(&state, &session, &document, Json::Object(variables)).await;
    if !answer.errors.is_empty() {
        return problem(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &messages(&answer));
    }
    Redirect::to(&format!("/o/{}", def.plural)).into_response()
}
