//! Forms from the registry: the widget for each kind of field (text, number, date, date and
//! time, yes/no, a choice of values, a reference to another record, JSON), and the way back
//! from submitted form values to a GraphQL input, with a message per field that does not
//! parse. Displaying values is here too, so a value looks the same in lists and forms.

use maud::{Markup, html};
use serde_json::{Map, Value as Json};

use crate::console::text;
use crate::domain::actor::Role;
use crate::domain::object::{Access, FieldDef, ObjectDef, Registry};
use crate::domain::value::FieldKind;

/// The fields a person may set: on create, writable and create-only fields; on update,
/// writable ones. Custom fields come apart ([`CustomField`]); ids and bookkeeping are Kith's.
pub fn writable(def: &ObjectDef, create: bool) -> Vec<&FieldDef> {
    def.fields
        .iter()
        .filter(|f| match f.access {
            Access::Write => true,
            Access::CreateOnly => create,
            Access::ReadOnly => false,
        })
        .filter(|f| f.name != "customFields")
        .collect()
}

/// A value as people read it.
pub fn display(kind: &FieldKind, value: &Json) -> String {
    match (kind, value) {
        (_, Json::Null) => String::new(),
        (FieldKind::Bool, Json::Bool(b)) => (if *b { text::YES } else { text::NO }).to_owned(),
        (FieldKind::DateTime, Json::String(s)) => {
            s.get(..16).map_or_else(|| s.clone(), |t| format!("{} UTC", t.replace('T', " ")))
        }
        (FieldKind::Enum(_), Json::String(s)) => humanize_value(s),
        (_, Json::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// A value for a page: the text of [`display`], with instants, dates and numbers marked up
/// (`<time datetime>`, `<data value>`) so `console.js` shows them in the reader's locale and
/// time zone; without script the text stays as `display` writes it (UTC, ISO dates).
pub fn show(kind: &FieldKind, value: &Json) -> Markup {
    let text = display(kind, value);
    match (kind, value) {
        (FieldKind::DateTime, Json::String(at)) => html! { time datetime=(at) data-format="datetime" { (text) } },
        (FieldKind::Date, Json::String(day)) => html! { time datetime=(day) data-format="date" { (text) } },
        (FieldKind::Decimal | FieldKind::Int, Json::String(n)) => {
            html! { data value=(n) data-format="number" { (text) } }
        }
        (FieldKind::Decimal | FieldKind::Int, Json::Number(n)) => {
            html! { data value=(n) data-format="number" { (text) } }
        }
        _ => html! { (text) },
    }
}

/// `CUSTOMER` becomes `Customer`, `IN_PROGRESS` `In progress`.
pub fn humanize_value(value: &str) -> String {
    let lower = value.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// A record to choose in a reference's list: its id and title.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The record's id.
    pub id: String,
    /// Its title.
    pub title: String,
}

/// The value a form field shows for `value` (`datetime-local` wants `YYYY-MM-DDTHH:MM`).
fn form_value(kind: &FieldKind, value: &Json) -> String {
    match (kind, value) {
        (_, Json::Null) => String::new(),
        (FieldKind::DateTime, Json::String(s)) => s.get(..16).unwrap_or(s).to_owned(),
        (FieldKind::Json, v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        (_, Json::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// The labelled control for `field` holding `value`, with `error` under it.
pub fn widget(field: &FieldDef, value: &Json, error: Option<&str>, choices: Option<&[Choice]>) -> Markup {
    let id = format!("f-{}", field.name);
    let shown = form_value(&field.kind, value);
    let required = field.required;
    let described = error.map(|_| format!("{id}-error"));
    html! {
        label for=(id) { (field.label) @if required { " *" } }
        @match &field.kind {
            FieldKind::Bool => {
                input type="hidden" name=(field.name) value="false";
                input #(id) type="checkbox" name=(field.name) value="true" checked[value.as_bool() == Some(true)] aria-describedby=[described.as_deref()];
            }
            FieldKind::Enum(values) => {
                select #(id) name=(field.name) required[required] aria-describedby=[described.as_deref()] {
                    @if !required { option value="" { (text::NONE) } }
                    @for v in values { option value=(v) selected[shown == *v] { (humanize_value(v)) } }
                }
            }
            FieldKind::Ref(_) if choices.is_some() => {
                select #(id) name=(field.name) required[required] aria-describedby=[described.as_deref()] {
                    @if !required { option value="" { (text::NONE) } }
                    @let choices = choices.unwrap_or_default();
                    @if !shown.is_empty() && !choices.iter().any(|c| c.id == shown) {
                        option value=(shown) selected { (shown) }
                    }
                    @for c in choices { option value=(c.id) selected[c.id == shown] { (c.title) } }
                }
            }
            FieldKind::Json => {
                textarea #(id) name=(field.name) rows="4" required[required] aria-describedby=[described.as_deref()] { (shown) }
            }
            kind => {
                input #(id) type=(input_type(kind)) name=(field.name) value=(shown) required[required]
                    step=[matches!(kind, FieldKind::Decimal).then_some("any")] aria-describedby=[described.as_deref()];
            }
        }
        @if let Some(error) = error { div.field-error id=(format!("{id}-error")) { (error) } }
    }
}

fn input_type(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Int | FieldKind::Decimal => "number",
        FieldKind::Date => "date",
        FieldKind::DateTime => "datetime-local",
        FieldKind::Email => "email",
        FieldKind::Url => "url",
        _ => "text",
    }
}

/// The last value submitted for `name` (a checkbox sends its hidden `false`, then `true`).
pub fn submitted<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// The GraphQL input from submitted values for `fields`: blank means null on update and
/// absent on create; each value is read as its field's kind. Refused with a message per field
/// that does not parse.
pub fn input_of(
    fields: &[&FieldDef],
    form: &[(String, String)],
    create: bool,
    taggable: bool,
) -> Result<Map<String, Json>, Vec<(String, String)>> {
    let mut input = Map::new();
    let mut errors = Vec::new();
    for field in fields {
        let Some(raw) = submitted(form, &field.name) else { continue };
        let raw = raw.trim();
        if raw.is_empty() && !matches!(field.kind, FieldKind::Bool) {
            if !create {
                input.insert(field.name.clone(), Json::Null);
            }
            continue;
        }
        let value = match &field.kind {
            FieldKind::Int => match raw.parse::<i64>() {
                Ok(n) => Json::from(n),
                Err(_) => {
                    errors.push((field.name.clone(), text::NOT_A_NUMBER.to_owned()));
                    continue;
                }
            },
            FieldKind::Bool => Json::Bool(raw == "true"),
            FieldKind::DateTime if raw.len() == 16 => Json::String(format!("{raw}:00Z")),
            FieldKind::Json => match serde_json::from_str(raw) {
                Ok(v) => v,
                Err(_) => {
                    errors.push((field.name.clone(), text::NOT_JSON.to_owned()));
                    continue;
                }
            },
            _ => Json::String(raw.to_owned()),
        };
        input.insert(field.name.clone(), value);
    }
    if taggable && let Some(tags) = submitted(form, "tags") {
        let tags: Vec<Json> =
            tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| Json::String(t.to_owned())).collect();
        if !(create && tags.is_empty()) {
            input.insert("tags".into(), Json::Array(tags));
        }
    }
    if errors.is_empty() { Ok(input) } else { Err(errors) }
}

/// The GraphQL selection of `fields` of `def` that `role` may read (the console never asks
/// for the others): each stored field, and for a reference the related record's id and title
/// fields through its forward relation.
pub fn selection(registry: &Registry, def: &ObjectDef, fields: &[String], role: Role) -> String {
    let mut out = String::from("id");
    for name in fields {
        let Some(field) = def.field_def(name).filter(|f| f.readable_by(role)) else { continue };
        if name != "id" {
            out.push(' ');
            out.push_str(name);
        }
        if let (FieldKind::Ref(target), Some(relation)) =
            (&field.kind, crate::domain::naming::forward_relation(registry, def, field))
            && let Some(target) = registry.get(target)
        {
            out.push_str(&format!(" {relation} {{ id {} }}", target.title_fields(role).join(" ")));
        }
    }
    out
}

/// A record's title from its JSON, as `role` may see it.
pub fn title_of(def: &ObjectDef, role: Role, record: &Json) -> String {
    let title = def.title_of(role, |field| match def.field_def(field) {
        Some(f) => display(&f.kind, &record[field]),
        None => String::new(),
    });
    if title.trim().is_empty() { record["id"].as_str().unwrap_or_default().to_owned() } else { title }
}

/// A field's value in a list or record page: a reference as a link to the related record; a
/// field `role` may not read as "restricted".
pub fn cell(registry: &Registry, def: &ObjectDef, field: &FieldDef, record: &Json, role: Role) -> Markup {
    if !field.readable_by(role) {
        return restricted(field);
    }
    match related(registry, def, field, record, role) {
        Some((target, id, title)) => html! { a href=(format!("/o/{}/{id}", target.plural)) { (title) } },
        None => show(&field.kind, &record[&field.name]),
    }
}

/// A field's value as text: a reference as the related record's title (for CSV); blank for a
/// field `role` may not read.
pub fn cell_text(registry: &Registry, def: &ObjectDef, field: &FieldDef, record: &Json, role: Role) -> String {
    if !field.readable_by(role) {
        return String::new();
    }
    match related(registry, def, field, record, role) {
        Some((_, _, title)) => title,
        None => display(&field.kind, &record[&field.name]),
    }
}

/// In place of a value `role` may not read: a note saying so, and which role may.
pub fn restricted(field: &FieldDef) -> Markup {
    html! { span.muted title=(format!("{} {}", text::RESTRICTED_TO, field.read_role)) { (text::RESTRICTED) } }
}

/// For a reference read with its forward relation: the related object, id and title.
fn related(
    registry: &Registry,
    def: &ObjectDef,
    field: &FieldDef,
    record: &Json,
    role: Role,
) -> Option<(std::sync::Arc<ObjectDef>, String, String)> {
    let FieldKind::Ref(target) = &field.kind else { return None };
    let relation = crate::domain::naming::forward_relation(registry, def, field)?;
    let target = registry.get(target)?.clone();
    let related = &record[&relation];
    let id = related["id"].as_str()?.to_owned();
    let title = title_of(&target, role, related);
    Some((target, id, title))
}

/// What a custom field's form name starts with: `customFields.tier`, as the API names the
/// field in its errors.
const CUSTOM: &str = "customFields.";

/// A custom field as a form field named `customFields.<key>`, so it gets the widgets, parsing
/// and error messages of stored fields.
#[derive(Debug, Clone)]
pub struct CustomField {
    /// The field as a form shows it.
    pub field: FieldDef,
    /// Whether it holds several of its options (MULTI_SELECT), entered comma-separated.
    pub multiple: bool,
}

/// The form fields of custom field definitions as `customFields` answers them.
pub fn custom_fields(defs: &[Json]) -> Vec<CustomField> {
    defs.iter()
        .filter_map(|def| {
            let key = def["key"].as_str()?;
            let options: Vec<String> = def["options"]
                .as_array()
                .map(|o| o.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let kind = match def["kind"].as_str()? {
                "NUMBER" | "DECIMAL" => FieldKind::Decimal,
                "DATE" => FieldKind::Date,
                "BOOLEAN" => FieldKind::Bool,
                "SELECT" => FieldKind::Enum(options),
                "URL" => FieldKind::Url,
                "EMAIL" => FieldKind::Email,
                _ => FieldKind::Text,
            };
            let multiple = def["kind"].as_str() == Some("MULTI_SELECT");
            let mut label = def["label"].as_str().unwrap_or(key).to_owned();
            if multiple {
                label = format!("{label} {}", text::COMMA_SEPARATED);
            }
            let mut field = FieldDef::new(&format!("{CUSTOM}{key}"), kind).label(&label);
            field.required = def["required"].as_bool() == Some(true);
            Some(CustomField { field, multiple })
        })
        .collect()
}

/// The `customFields` input from submitted values (`None` when none was submitted), read as
/// [`input_of`] reads stored fields; the API checks each value against its definition.
pub fn custom_input(
    custom: &[CustomField],
    form: &[(String, String)],
    create: bool,
) -> Result<Option<Json>, Vec<(String, String)>> {
    let fields: Vec<&FieldDef> = custom.iter().map(|c| &c.field).collect();
    let mut out = Map::new();
    for (name, value) in input_of(&fields, form, create, false)? {
        let multiple = custom.iter().any(|c| c.field.name == name && c.multiple);
        let value = match value {
            Json::String(list) if multiple => Json::Array(
                list.split(',').map(str::trim).filter(|v| !v.is_empty()).map(|v| Json::String(v.to_owned())).collect(),
            ),
            value => value,
        };
        out.insert(name.strip_prefix(CUSTOM).unwrap_or(&name).to_owned(), value);
    }
    Ok((!out.is_empty()).then_some(Json::Object(out)))
}

/// A record's value of each custom field, as its form field holds it (several options
/// comma-separated).
pub fn custom_values(custom: &[CustomField], record: &Json) -> Vec<(String, Json)> {
    custom
        .iter()
        .map(|c| {
            let key = c.field.name.strip_prefix(CUSTOM).unwrap_or(&c.field.name);
            let value = match &record["customFields"][key] {
                Json::Array(items) => {
                    Json::String(items.iter().map(|i| i.as_str().unwrap_or_default()).collect::<Vec<_>>().join(", "))
                }
                value => value.clone(),
            };
            (c.field.name.clone(), value)
        })
        .collect()
}
