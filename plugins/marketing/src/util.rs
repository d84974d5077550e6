//! Arguments, settings, instants and pages of records.

use chrono::{DateTime, Utc};
use kith_plugin_sdk::{Error, ErrorCode, Query, Record, Result, records, settings};
use serde_json::Value as Json;

/// A required text argument.
pub(crate) fn required<'a>(arguments: &'a Json, name: &str) -> Result<&'a str> {
    arguments
        .get(name)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid(name, "is required"))
}

/// A record that must exist, or NOT_FOUND naming the argument.
pub(crate) fn existing(object: &str, id: &str, argument: &str) -> Result<Record> {
    records::get(object, id)?.ok_or_else(|| {
        let mut err = Error::new(ErrorCode::NotFound, format!("no {object} {id}"));
        err.field = Some(argument.to_owned());
        err
    })
}

/// A text setting, empty when unset.
pub(crate) fn text_setting(key: &str) -> Result<String> {
    Ok(settings::get::<String>(key)?.unwrap_or_default().trim().to_owned())
}

/// An integer setting with its default, kept within `min..=max`.
pub(crate) fn int_setting(key: &str, default: i64, min: i64, max: i64) -> Result<i64> {
    Ok(settings::get::<i64>(key)?.unwrap_or(default).clamp(min, max))
}

/// The host's clock.
pub(crate) fn now() -> DateTime<Utc> {
    parse_instant(&kith_plugin_sdk::now()).unwrap_or_default()
}

/// An RFC 3339 instant.
pub(crate) fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// An instant as Kith writes them.
pub(crate) fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An integer field of a record (0 when empty).
pub(crate) fn int_field(record: &Record, field: &str) -> i64 {
    record.fields.get(field).and_then(Json::as_i64).unwrap_or(0)
}

/// One page of `object` matching `filter` after `cursor`, `first` at most 200.
pub(crate) fn page(object: &str, filter: Json, first: u32, cursor: Option<&str>) -> Result<kith_plugin_sdk::Page> {
    let mut query = Query::new().filter(filter).first(first.clamp(1, 200));
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        query = query.after(cursor);
    }
    records::query(object, &query)
}

/// Every record of `object` matching `filter`, at most `cap`.
pub(crate) fn every(object: &str, filter: &Json, cap: usize) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    while out.len() < cap {
        let page = page(object, filter.clone(), 200, cursor.as_deref())?;
        out.extend(page.records);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.truncate(cap);
    Ok(out)
}

/// The first record of `object` matching `filter`.
pub(crate) fn first(object: &str, filter: Json) -> Result<Option<Record>> {
    Ok(page(object, filter, 1, None)?.records.into_iter().next())
}

/// An address as compared and kept on the suppression list.
pub(crate) fn normal_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Updates record `id` of `object` with what `changes` makes of its current state (`None`:
/// nothing to change), reading it again after a conflicting write (a delivery outcome and a
/// click on the same send, say), at most three times. `None` when the record is gone.
pub(crate) fn update_fresh(
    object: &str,
    id: &str,
    changes: impl Fn(&Record) -> Option<Json>,
) -> Result<Option<Record>> {
    let mut attempt = 0;
    loop {
        let Some(current) = records::get(object, id)? else { return Ok(None) };
        let Some(fields) = changes(&current) else { return Ok(Some(current)) };
        match records::update(object, id, &fields, Some(current.version)) {
            Ok(updated) => return Ok(Some(updated)),
            Err(err) if err.code == ErrorCode::Conflict && attempt < 2 => attempt += 1,
            Err(err) => return Err(err),
        }
    }
}

/// At most `max` characters of `text`.
pub(crate) fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
