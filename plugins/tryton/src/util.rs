//! Small helpers: settings, times, filters and pages of Kith records.

use kith_plugin_sdk::{Query, Record, Result, records, settings};
use serde_json::{Value as Json, json};

/// The plugin's own actor label (events it caused carry it as their origin).
pub(crate) const SELF: &str = "tryton";

/// An integer setting with its default, kept within `min..=max`.
pub(crate) fn int_setting(key: &str, default: i64, min: i64, max: i64) -> Result<i64> {
    Ok(settings::get::<i64>(key)?.unwrap_or(default).clamp(min, max))
}

/// A text setting, trimmed; `None` when empty.
pub(crate) fn text_setting(key: &str) -> Result<Option<String>> {
    Ok(settings::get::<Option<String>>(key)?.flatten().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// A boolean setting.
pub(crate) fn flag_setting(key: &str, default: bool) -> Result<bool> {
    Ok(settings::get::<Option<bool>>(key)?.flatten().unwrap_or(default))
}

/// Now, RFC 3339.
pub(crate) fn now() -> String {
    kith_plugin_sdk::now()
}

/// `now` plus `seconds`, RFC 3339 in UTC with microseconds.
pub(crate) fn later(seconds: i64) -> String {
    let now = chrono::DateTime::parse_from_rfc3339(&now())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    (now + chrono::Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A text field of a record (empty is `None`).
pub(crate) fn text(record: &Record, field: &str) -> Option<String> {
    crate::engine::clean(record.fields.get(field).and_then(Json::as_str))
}

/// A custom field of a record, as text.
pub(crate) fn custom(record: &Record, key: &str) -> Option<String> {
    let value = record.fields.get("customFields")?.get(key)?;
    match value {
        Json::String(s) => crate::engine::clean(Some(s)),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// The records of `object` whose `field` is one of `values` (in pages of 200).
pub(crate) fn by_values(object: &str, field: &str, values: &[String]) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for chunk in values.chunks(200) {
        let mut after: Option<String> = None;
        loop {
            let mut query = Query::new().filter(json!({field: {"in": chunk}})).first(200);
            if let Some(cursor) = &after {
                query = query.after(cursor);
            }
            let page = records::query(object, &query)?;
            out.extend(page.records);
            match page.next_cursor {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The first record of `object` whose `field` equals `value`.
pub(crate) fn find(object: &str, field: &str, value: &str) -> Result<Option<Record>> {
    let page = records::query(object, &Query::new().filter(json!({field: {"eq": value}})).first(1))?;
    Ok(page.records.into_iter().next())
}
