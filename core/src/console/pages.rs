//! The pages every object gets, built from its registry entry: a list (columns, a filter
//! builder, sorting, cursor paging), a record page (fields, related records both ways, values
//! plugins compute, the timeline), and search across objects. Forms are `console::edit`.
//! Every read is a GraphQL operation run as the signed-in user.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api::auth::ClientAddr;
use crate::console::form::{self};
use crate::console::session::Session;
use crate::console::{Answer, Chrome, assets, layout, may_delete, may_read, may_write, run, text};
use crate::domain::actor::Role;
use crate::domain::naming::{self, Suffix};
use crate::domain::object::{Access, FieldDef, ObjectDef, Registry};
use crate::domain::value::FieldKind;
use crate::http::AppState;

/// Records a list page shows at once.
const PAGE: i64 = 50;
/// Related records a record page shows per relation.
const RELATED: i64 = 5;

/// A console page for `session`.
pub(crate) fn render(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    title: String,
    content: Markup,
) -> Response {
    let chrome = Chrome { title, actor: &session.actor, csrf: &session.csrf };
    assets::secure(crate::console::respond(status, layout(state, &chrome, content)).into_response())
}

/// A page that says why nothing else is shown.
pub(crate) fn problem(state: &AppState, session: &Session, status: StatusCode, message: &str) -> Response {
    render(state, session, status, text::BRAND.to_owned(), html! { p.notice role="alert" { (message) } })
}

/// The object whose plural is `plural`, if the caller may read it.
pub(crate) fn object(state: &AppState, session: &Session, plural: &str) -> Result<Arc<ObjectDef>, Box<Response>> {
    let registry = state.kith.registry();
    match registry.objects().find(|d| d.plural == plural) {
        Some(def) if may_read(state, &session.actor, def) => Ok(def.clone()),
        Some(_) => Err(Box::new(problem(state, session, StatusCode::FORBIDDEN, text::FORBIDDEN))),
        None => Err(Box::new(problem(state, session, StatusCode::NOT_FOUND, text::NO_SUCH_OBJECT))),
    }
}

/// The object of a posted form, once its CSRF token is checked.
pub(crate) fn posted_object(
    state: &AppState,
    session: &Session,
    plural: &str,
    submitted: &[(String, String)],
) -> Result<Arc<ObjectDef>, Box<Response>> {
    crate::console::session::check_csrf(session, form::submitted(submitted, "_csrf").unwrap_or_default())?;
    object(state, session, plural)
}

/// Runs an operation as the session's user.
pub(crate) async fn query(state: &AppState, session: &Session, document: &str, variables: Json) -> Answer {
    run(state, Some(&session.actor), ClientAddr(None), document, variables).await
}

/// An answer's errors as one message.
pub(crate) fn messages(answer: &Answer) -> String {
    answer.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")
}

/// `GET /`: first-run setup while there is no user, else the first list of the menu.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Ok(false) = crate::store::users::any(state.kith.store.conn()).await {
        return Redirect::to("/setup").into_response();
    }
    if crate::console::session::cookie(&headers, crate::console::session::SESSION_COOKIE).is_none() {
        return Redirect::to("/login").into_response();
    }
    let registry = state.kith.registry();
    let first =
        registry.in_order().find(|d| d.menu).map_or_else(|| "/login".to_owned(), |d| format!("/o/{}", d.plural));
    Redirect::to(&first).into_response()
}

/// Query of a list page.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The filter's field.
    pub f: Option<String>,
    /// The filter's operator (`eq`, `ilike`, ...).
    pub op: Option<String>,
    /// The filter's value.
    pub v: Option<String>,
    /// The sort field.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub dir: Option<String>,
    /// The page after this cursor.
    pub after: Option<String>,
    /// The page before this cursor.
    pub before: Option<String>,
    /// The columns shown, comma-separated (the registry's list columns when absent).
    pub cols: Option<String>,
}

/// The columns a list shows: `col` values of the query string (the column chooser's boxes),
/// else `cols`, else the registry's list columns; only fields a list can show and `role` may
/// read (a list hides the others).
pub(crate) fn columns_of(def: &ObjectDef, q: &ListQuery, raw_query: Option<&str>, role: Role) -> Vec<String> {
    let shown = |name: &str| def.field_def(name).is_some_and(|f| listable(f, role));
    let picked: Vec<String> = raw_query
        .map(|raw| {
            url::form_urlencoded::parse(raw.as_bytes())
                .filter(|(k, _)| k == "col")
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let wanted: Vec<String> = if !picked.is_empty() {
        picked
    } else if let Some(cols) = q.cols.as_deref().filter(|c| !c.is_empty()) {
        cols.split(',').map(str::to_owned).collect()
    } else {
        def.list_columns.clone()
    };
    let mut columns: Vec<String> = Vec::new();
    for column in wanted {
        if shown(&column) && !columns.contains(&column) {
            columns.push(column);
        }
    }
    if columns.is_empty() {
        columns = def.list_columns.iter().filter(|c| shown(c)).cloned().collect();
    }
    columns
}

/// Whether a list can show `field` to `role` as a column (and offer it to filter and sort by).
pub(crate) fn listable(field: &FieldDef, role: Role) -> bool {
    field.kind != FieldKind::Json && field.name != "customFields" && field.name != "id" && field.readable_by(role)
}

/// The filter of a list page's query, or why it cannot be one.
pub(crate) fn filter_of(def: &ObjectDef, q: &ListQuery) -> Result<Option<Json>, String> {
    let (Some(field), Some(op)) = (q.f.as_deref().filter(|f| !f.is_empty()), q.op.as_deref()) else { return Ok(None) };
    let Some(field_def) = def.field_def(field).filter(|f| f.kind != FieldKind::Json) else {
        return Err(format!("`{field}` cannot be filtered"));
    };
    if !text::OPS.iter().any(|(name, _)| *name == op) {
        return Err(format!("`{op}` is not a condition"));
    }
    let raw = q.v.clone().unwrap_or_default();
    let value = match (op, &field_def.kind) {
        ("isNull", _) => Json::Bool(true),
        ("ilike", _) => Json::String(format!("%{}%", raw.replace('%', "\\%"))),
        (_, FieldKind::Int) => {
            Json::from(raw.trim().parse::<i64>().map_err(|_| format!("{}: {}", field_def.label, text::NOT_A_NUMBER))?)
        }
        (_, FieldKind::Bool) => Json::Bool(matches!(raw.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")),
        (_, FieldKind::Enum(values)) => {
            let wanted = raw.trim().to_ascii_uppercase().replace(' ', "_");
            if !values.contains(&wanted) {
                return Err(format!(
                    "{}: {}",
                    field_def.label,
                    values.iter().map(|v| form::humanize_value(v)).collect::<Vec<_>>().join(", ")
                ));
            }
            Json::String(wanted)
        }
        _ => Json::String(raw.trim().to_owned()),
    };
    Ok(Some(json!({ field: { op: value } })))
}

/// The query string of a list page, with `changes` applied.
pub(crate) fn list_href(def: &ObjectDef, q: &ListQuery, changes: &[(&str, Option<&str>)]) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (key, value) in [("f", &q.f), ("op", &q.op), ("v", &q.v), ("sort", &q.sort), ("dir", &q.dir), ("cols", &q.cols)]
    {
        if let Some(value) = value {
            pairs.push((key, value.clone()));
        }
    }
    for (key, value) in changes {
        pairs.retain(|(k, _)| k != key);
        if let Some(value) = value {
            pairs.push((key, (*value).to_owned()));
        }
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    if query.is_empty() { format!("/o/{}", def.plural) } else { format!("/o/{}?{query}", def.plural) }
}

/// `GET /o/{plural}`: a page of records.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(plural): Path<String>,
    Query(mut q): Query<ListQuery>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let def = match object(&state, &session, &plural) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let registry = state.kith.registry();
    let role = session.actor.role;
    let columns = columns_of(&def, &q, raw_query.as_deref(), role);
    if columns != def.list_columns {
        q.cols = Some(columns.join(","));
    }
    let (filter, filter_error) = match filter_of(&def, &q) {
        Ok(filter) => (filter, None),
        Err(message) => (None, Some(message)),
    };
    let sortable = |s: &String| def.field_def(s).is_some_and(|f| f.kind != FieldKind::Json && f.readable_by(role));
    let order = q.sort.as_ref().filter(|s| sortable(s)).map(|field| {
        let direction = if q.dir.as_deref() == Some("desc") { "DESC" } else { "ASC" };
        json!([{ "field": field, "direction": direction }])
    });
    let document = format!(
        "query($first: Int, $after: String, $last: Int, $before: String, $filter: {filter}, $orderBy: [{order}!]) {{ \
         {plural}(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {{ \
         totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} edges {{ node {{ {selection} }} }} }} }}",
        filter = naming::object_type(&def, Suffix::Filter),
        order = naming::object_type(&def, Suffix::OrderBy),
        plural = def.plural,
        selection = form::selection(&registry, &def, &columns, role),
    );
    let backward = q.before.is_some() && q.after.is_none();
    let variables = json!({
        "first": (!backward).then_some(PAGE),
        "after": q.after,
        "last": backward.then_some(PAGE),
        "before": if backward { q.before.clone() } else { None },
        "filter": filter,
        "orderBy": order,
    });
    let answer = query(&state, &session, &document, variables).await;
    let connection = &answer.data[&def.plural];
    let edges = connection["edges"].as_array().cloned().unwrap_or_default();
    let info = &connection["pageInfo"];
    let filterable: Vec<_> = def.fields.iter().filter(|f| f.kind != FieldKind::Json && f.readable_by(role)).collect();
    let toolbar = crate::console::bulk::toolbar(&state, &session, &def, &q, &columns, filter.is_some()).await;
    let content = html! {
        h1 { (def.plural_label) }
        div.actions {
            span.muted { (connection["totalCount"].as_i64().unwrap_or(0)) " " (text::RECORDS) }
            @if def.mutable && may_write(&session.actor) {
                a.button href=(format!("/o/{}/new", def.plural)) { (text::NEW) " " (def.label.to_lowercase()) }
            }
        }
        form.filter method="get" action=(format!("/o/{}", def.plural)) {
            div {
                label for="filter-field" { (text::FILTER_FIELD) }
                select #filter-field name="f" {
                    @for field in &filterable { option value=(field.name) selected[q.f.as_deref() == Some(field.name.as_str())] { (field.label) } }
                }
            }
            div {
                label for="filter-op" { (text::FILTER_OP) }
                select #filter-op name="op" {
                    @for (op, label) in text::OPS { option value=(op) selected[q.op.as_deref() == Some(*op)] { (label) } }
                }
            }
            div {
                label for="filter-value" { (text::FILTER_VALUE) }
                input #filter-value type="text" name="v" value=(q.v.clone().unwrap_or_default());
            }
            @if let Some(sort) = &q.sort { input type="hidden" name="sort" value=(sort); }
            @if let Some(dir) = &q.dir { input type="hidden" name="dir" value=(dir); }
            @if let Some(cols) = &q.cols { input type="hidden" name="cols" value=(cols); }
            button type="submit" { (text::FILTER) }
            @if q.f.is_some() { a href=(format!("/o/{}", def.plural)) { (text::CLEAR) } }
        }
        @if let Some(message) = &filter_error { p.notice role="alert" { (message) } }
        @if !answer.errors.is_empty() { p.notice role="alert" { (messages(&answer)) } }
        (toolbar)
        @if edges.is_empty() && answer.errors.is_empty() {
            p.muted { (text::EMPTY) }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { span.skip-label { (text::SELECT) } }
                        @for column in &columns {
                            @let field = def.field_def(column);
                            @let label = field.map(|f| f.label.clone()).unwrap_or_default();
                            @let descending = q.sort.as_deref() == Some(column.as_str()) && q.dir.as_deref() != Some("desc");
                            th scope="col" aria-sort=[(q.sort.as_deref() == Some(column.as_str())).then(|| if q.dir.as_deref() == Some("desc") { "descending" } else { "ascending" })] {
                                a href=(list_href(&def, &q, &[("sort", Some(column)), ("dir", Some(if descending { "desc" } else { "asc" }))])) { (label) }
                            }
                        }
                    } }
                    tbody {
                        @for edge in &edges {
                            @let node = &edge["node"];
                            @let id = node["id"].as_str().unwrap_or_default();
                            tr {
                                td { (crate::console::bulk::tick(id, &form::title_of(&def, role, node))) }
                                @for (i, column) in columns.iter().enumerate() {
                                    @if let Some(field) = def.field_def(column) {
                                        td {
                                            @if i == 0 {
                                                a href=(format!("/o/{}/{id}", def.plural)) {
                                                    @let shown = form::display(&field.kind, &node[column]);
                                                    @if shown.is_empty() { (form::title_of(&def, role, node)) } @else { (shown) }
                                                }
                                            } @else {
                                                (form::cell(&registry, &def, field, node, role))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.actions aria-label="Pages" {
            @if info["hasPreviousPage"].as_bool() == Some(true) || (q.after.is_some()) {
                @if let Some(start) = info["startCursor"].as_str() {
                    a href=(list_href(&def, &q, &[("before", Some(start)), ("after", None)])) rel="prev" { (text::PREVIOUS) }
                }
            }
            @if info["hasNextPage"].as_bool() == Some(true) || backward {
                @if let Some(end) = info["endCursor"].as_str() {
                    a href=(list_href(&def, &q, &[("after", Some(end)), ("before", None)])) rel="next" { (text::NEXT) }
                }
            }
        }
    };
    render(&state, &session, StatusCode::OK, def.plural_label.clone(), content)
}

/// The values plugins compute on `def`, as a GraphQL selection, with what each is.
fn computed_selection(registry: &Registry, def: &ObjectDef) -> (String, Vec<(String, Vec<String>)>) {
    let mut selection = String::new();
    let mut shown = Vec::new();
    for extension in registry.extensions() {
        for field in extension.fields.iter().filter(|f| f.object == def.name) {
            match extension.types.iter().find(|t| t.name == field.ty.name) {
                Some(ty) => {
                    let subfields: Vec<String> = ty
                        .fields
                        .iter()
                        .filter(|(_, t)| t.is_scalar() || extension.enum_def(&t.name).is_some())
                        .map(|(name, _)| name.clone())
                        .collect();
                    if subfields.is_empty() {
                        continue;
                    }
                    selection.push_str(&format!(" {} {{ {} }}", field.name, subfields.join(" ")));
                    shown.push((field.name.clone(), subfields));
                }
                None => {
                    selection.push_str(&format!(" {}", field.name));
                    shown.push((field.name.clone(), Vec::new()));
                }
            }
        }
    }
    (selection, shown)
}

/// Whether a record page shows its related records of `other` (through `other`'s `field`): the
/// caller may read them, and the reference (a relation tells its value).
fn shows_relation(state: &AppState, session: &Session, other: &ObjectDef, field: &FieldDef) -> bool {
    may_read(state, &session.actor, other) && field.readable_by(session.actor.role)
}

/// The JSON of one record with everything its page shows, or the answer's errors.
pub(crate) async fn read_record(state: &AppState, session: &Session, def: &ObjectDef, id: &str, full: bool) -> Answer {
    let registry = state.kith.registry();
    let role = session.actor.role;
    let names: Vec<String> = def.fields.iter().map(|f| f.name.clone()).collect();
    let mut selection = form::selection(&registry, def, &names, role);
    if def.taggable {
        selection.push_str(" tags");
    }
    if full {
        for (other, field, relation) in naming::reverse_relations(&registry, def) {
            if shows_relation(state, session, other, field) {
                selection.push_str(&format!(
                    " {relation}(first: {RELATED}) {{ totalCount edges {{ node {{ id {} }} }} }}",
                    other.title_fields(role).join(" ")
                ));
            }
        }
        if def.timeline {
            selection.push_str(" timeline(first: 20) { at kind summary }");
        }
        selection.push_str(&computed_selection(&registry, def).0);
    }
    let document = format!("query($id: ID!) {{ {}(id: $id) {{ {selection} }} }}", def.name);
    query(state, session, &document, json!({ "id": id })).await
}

/// The custom fields of `def`, as form fields (none when it has none, or the caller may not
/// read them).
pub(crate) async fn custom_fields(state: &AppState, session: &Session, def: &ObjectDef) -> Vec<form::CustomField> {
    if !def.custom_fields {
        return Vec::new();
    }
    let answer = query(
        state,
        session,
        "query($object: String!) { customFields(object: $object) { key label kind required options } }",
        json!({ "object": def.name }),
    )
    .await;
    form::custom_fields(answer.data["customFields"].as_array().map(Vec::as_slice).unwrap_or_default())
}

/// `GET /o/{plural}/{id}`: a record's page.
pub async fn record(
    State(state): State<AppState>,
    session: Session,
    Path((plural, id)): Path<(String, String)>,
) -> Response {
    let def = match object(&state, &session, &plural) {
        Ok(def) => def,
        Err(response) => return *response,
    };
    let registry = state.kith.registry();
    let role = session.actor.role;
    let answer = read_record(&state, &session, &def, &id, true).await;
    let node = &answer.data[&def.name];
    if node.is_null() {
        let message = if answer.errors.is_empty() { text::NOT_FOUND.to_owned() } else { messages(&answer) };
        return problem(&state, &session, StatusCode::NOT_FOUND, &message);
    }
    let title = form::title_of(&def, role, node);
    let timeline = if def.timeline {
        Some(crate::console::timeline::section(&state, &session, &def, &id, &node["timeline"]).await)
    } else {
        None
    };
    let (_, computed) = computed_selection(&registry, &def);
    let custom = custom_fields(&state, &session, &def).await;
    let content = html! {
        p.muted { a href=(format!("/o/{}", def.plural)) { (def.plural_label) } }
        h1 { (title) }
        div.actions {
            @if def.mutable && may_write(&session.actor) {
                a.button href=(format!("/o/{}/{id}/edit", def.plural)) { (text::EDIT) }
            }
            @if def.name == "contact" {
                a.button.secondary href=(format!("/privacy/{id}")) { (text::PRIVACY) }
            }
            @if def.mutable && may_delete(&session.actor) {
                form method="post" action=(format!("/o/{}/{id}/delete", def.plural)) {
                    input type="hidden" name="_csrf" value=(session.csrf);
                    button.danger type="submit" { (text::DELETE) }
                }
            }
        }
        @for (group, fields) in def.field_groups() {
            @let label = group.unwrap_or(text::DETAILS_GROUP);
            @let editable = def.mutable && may_write(&session.actor) && fields.iter().any(|f| f.access == Access::Write);
            section.group aria-label=(label) {
                div.group-head {
                    h2 { (label) }
                    @if editable {
                        @let href = format!("/o/{}/{id}/edit?group={}", def.plural, url::form_urlencoded::byte_serialize(label.as_bytes()).collect::<String>());
                        // With script, the group's form replaces the group in place.
                        a.edit-group href=(href) hx-get=(href) hx-target="closest section" hx-select="form.record" hx-swap="innerHTML" {
                            (text::EDIT) span.skip-label { " " (label) }
                        }
                    }
                }
                dl.fields {
                    @for field in &fields {
                        dt { (field.label) }
                        dd { (form::cell(&registry, &def, field, node, role)) }
                    }
                    @if group.is_none() {
                        @for (field, (_, value)) in custom.iter().zip(form::custom_values(&custom, node)) {
                            dt { (field.field.label) }
                            dd { (form::show(&field.field.kind, &value)) }
                        }
                        @if def.taggable {
                            dt { "Tags" }
                            dd { (node["tags"].as_array().map(|t| t.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if !computed.is_empty() {
            h2 { (text::COMPUTED) }
            dl.fields {
                @for (name, subfields) in &computed {
                    @if subfields.is_empty() {
                        dt { (crate::domain::object::humanize(name)) }
                        dd { (form::display(&FieldKind::Text, &node[name])) }
                    } @else {
                        @for sub in subfields {
                            dt { (crate::domain::object::humanize(sub)) }
                            dd { (form::display(&FieldKind::Text, &node[name][sub])) }
                        }
                    }
                }
            }
        }
        @for (other, field, relation) in naming::reverse_relations(&registry, &def) {
            @if shows_relation(&state, &session, other, field) {
                @let connection = &node[&relation];
                h2 { (crate::domain::object::humanize(&relation)) " (" (connection["totalCount"].as_i64().unwrap_or(0)) ")" }
                ul {
                    @for edge in connection["edges"].as_array().cloned().unwrap_or_default() {
                        @let related = &edge["node"];
                        li { a href=(format!("/o/{}/{}", other.plural, related["id"].as_str().unwrap_or_default())) { (form::title_of(other, role, related)) } }
                    }
                }
                @if connection["totalCount"].as_i64().unwrap_or(0) > RELATED {
                    a href=(format!("/o/{}?f={}&op=eq&v={id}", other.plural, field.name)) { (text::SEE_ALL) }
                }
            }
        }
        @if let Some(timeline) = &timeline { (timeline) }
    };
    render(&state, &session, StatusCode::OK, title, content)
}

/// Query of `/search`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// The words.
    pub q: Option<String>,
}

/// `GET /search`: ranked hits across objects; only the list when htmx asks (as-you-type).
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    _connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let words = q.q.unwrap_or_default();
    let registry = state.kith.registry();
    let answer = if words.trim().is_empty() {
        None
    } else {
        Some(
            query(
                &state,
                &session,
                "query($q: String!) { search(query: $q, first: 20) { object recordId title } }",
                json!({ "q": words }),
            )
            .await,
        )
    };
    let hits: Vec<(String, String, String)> = answer
        .as_ref()
        .and_then(|a| a.data["search"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|hit| {
            let def = naming::object_of_value(&registry, hit["object"].as_str()?)?;
            Some((
                format!("/o/{}/{}", def.plural, hit["recordId"].as_str()?),
                hit["title"].as_str()?.to_owned(),
                def.label.clone(),
            ))
        })
        .collect();
    let refused = answer.as_ref().filter(|a| !a.errors.is_empty()).map(messages);
    let list = html! {
        @if let Some(message) = &refused { p.notice role="alert" { (message) } }
        @else if answer.is_some() {
            @if hits.is_empty() { p.muted { (text::NO_HITS) } }
            @else {
                ul {
                    @for (href, title, label) in &hits { li { a href=(href) { (title) } " " span.muted { (label) } } }
                }
            }
        }
    };
    if headers.contains_key("hx-request") {
        return assets::secure(crate::console::respond(StatusCode::OK, list));
    }
    render(&state, &session, StatusCode::OK, text::SEARCH.to_owned(), html! { h1 { (text::SEARCH) } (list) })
}
