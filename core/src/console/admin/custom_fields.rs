//! Custom fields: those of each object that has them (`customFields`), and a form to define
//! one (`defineCustomField`) of any kind the API accepts. Record forms and pages show them
//! (`console::edit`, `console::pages`).

use axum::extract::{Form, State};
use axum::response::Response;
use maud::html;
use serde_json::{Value as Json, json};

use crate::console::admin::{admin_page, field, offered, refusal, text_of, write};
use crate::console::pages::query;
use crate::console::session::Session;
use crate::console::{Answer, form, text};
use crate::domain::actor::Role;
use crate::domain::custom_field::KINDS;
use crate::http::AppState;

/// The page: each object's custom fields, then the form (with what was submitted and why it
/// was refused).
async fn list_page(
    state: &AppState,
    session: &Session,
    submitted: &[(String, String)],
    answer: Option<&Answer>,
) -> Response {
    if let Err(refusal) = offered(state, session, Role::Admin) {
        return *refusal;
    }
    let objects: Vec<_> = state.kith.registry().in_order().filter(|d| d.custom_fields).cloned().collect();
    let selection: Vec<String> = objects
        .iter()
        .enumerate()
        .map(|(i, def)| {
            format!(
                "f{i}: customFields(object: {}) {{ key label kind required options }}",
                Json::from(def.name.as_str())
            )
        })
        .collect();
    let listed = query(state, session, &format!("{{ {} }}", selection.join(" ")), json!({})).await;
    let value = |name: &str| field(submitted, name);
    let content = html! {
        h1 { (text::CUSTOM_FIELDS) }
        (refusal(Some(&listed)))
        @for (i, def) in objects.iter().enumerate() {
            @let fields = listed.data[format!("f{i}")].as_array().cloned().unwrap_or_default();
            @if !fields.is_empty() {
                h2 { (def.plural_label) }
                div.table-wrap { table {
                    thead { tr { @for column in [text::LABEL, text::KEY, text::KIND, text::REQUIRED, text::OPTIONS] { th scope="col" { (column) } } } }
                    tbody {
                        @for field in &fields {
                            tr {
                                td { (text_of(&field["label"])) }
                                td { code { (text_of(&field["key"])) } }
                                td { (form::humanize_value(text_of(&field["kind"]))) }
                                td { @if field["required"].as_bool() == Some(true) { (text::YES) } @else { (text::NO) } }
                                td { (field["options"].as_array().map(|o| o.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                            }
                        }
                    }
                } }
            }
        }
        h2 #new-field { (text::NEW_CUSTOM_FIELD) }
        (refusal(answer))
        form.record method="post" action="/admin/fields" aria-labelledby="new-field" {
            input type="hidden" name="_csrf" value=(session.csrf);
            div {
                label for="c-object" { (text::OBJECT) }
                select #c-object name="object" {
                    @for def in &objects { option value=(def.name) selected[value("object") == def.name] { (def.label) } }
                }
            }
            div { label for="c-key" { (text::KEY) " *" } input #c-key type="text" name="key" value=(value("key")) required; }
            div { label for="c-label" { (text::LABEL) " *" } input #c-label type="text" name="label" value=(value("label")) required; }
            div {
                label for="c-kind" { (text::KIND) }
                select #c-kind name="kind" {
                    @for kind in KINDS { option value=(kind) selected[value("kind") == *kind] { (form::humanize_value(kind)) } }
                }
            }
            div {
                input #c-required type="checkbox" name="required" value="true" checked[value("required") == "true"];
                label for="c-required" { (text::REQUIRED) }
            }
            div { label for="c-options" { (text::OPTIONS) } textarea #c-options name="options" rows="3" { (value("options")) } }
            div.actions { button type="submit" { (text::DEFINE) } }
        }
    };
    admin_page(state, session, answer, text::CUSTOM_FIELDS, content)
}

/// `GET /admin/fields`.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    list_page(&state, &session, &[], None).await
}

/// `POST /admin/fields`: defines a custom field (`defineCustomField`).
pub async fn define(
    State(state): State<AppState>,
    session: Session,
    Form(submitted): Form<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| field(&submitted, name);
    let options: Vec<String> =
        value("options").lines().map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
    let answer = match write(
        &state,
        &session,
        &submitted,
        "mutation($object: String!, $key: String!, $label: String!, $kind: CustomFieldKind!, $required: Boolean, $options: [String!]) { \
         defineCustomField(object: $object, key: $key, label: $label, kind: $kind, required: $required, options: $options) { key } }",
        json!({
            "object": value("object"),
            "key": value("key"),
            "label": value("label"),
            "kind": value("kind"),
            "required": value("required") == "true",
            "options": options,
        }), "/admin/fields").await {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    list_page(&state, &session, &submitted, Some(&answer)).await
}
