//! Small helpers: arguments, exact amounts, times, settings, reading pages.

use std::str::FromStr;

use chrono::{DateTime, Months, Utc};
use kith_plugin_sdk::{Error, ErrorCode, Query, Record, Result, records, settings};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

/// The plugin's own actor label: its writes pass its before-write checks.
pub(crate) const SELF: &str = "plugin:loyalty";

/// A required text argument.
pub(crate) fn required<'a>(arguments: &'a Json, name: &str) -> Result<&'a str> {
    arguments
        .get(name)
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid(name, format!("`{name}` is required")))
}

/// An optional text argument (empty is absent).
pub(crate) fn optional<'a>(arguments: &'a Json, name: &str) -> Option<&'a str> {
    arguments.get(name).and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// An exact amount from JSON text or number.
pub(crate) fn decimal(value: Option<&Json>) -> Option<Decimal> {
    match value? {
        Json::String(s) => Decimal::from_str(s.trim()).ok(),
        Json::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

/// An integer from aggregate text (0 when empty).
pub(crate) fn int_text(text: Option<&str>) -> i64 {
    text.and_then(|t| {
        t.parse::<i64>().ok().or_else(|| Decimal::from_str(t).ok().and_then(|d| d.trunc().to_string().parse().ok()))
    })
    .unwrap_or_default()
}

/// The whole part of `value` (rounded down), saturated to `i64`.
pub(crate) fn whole(value: Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    value.floor().to_i64().unwrap_or(if value.is_sign_negative() { i64::MIN } else { i64::MAX })
}

/// An amount as Kith's GraphQL writes it.
pub(crate) fn money(amount: Decimal) -> Json {
    json!(amount.normalize().to_string())
}

/// An integer field of a record (0 when empty).
pub(crate) fn int(record: &Record, field: &str) -> i64 {
    record.fields.get(field).and_then(Json::as_i64).unwrap_or_default()
}

/// A boolean field of a record, `default` when empty.
pub(crate) fn flag(record: &Record, field: &str, default: bool) -> bool {
    record.fields.get(field).and_then(Json::as_bool).unwrap_or(default)
}

/// The current time.
pub(crate) fn now() -> DateTime<Utc> {
    parse_time(&kith_plugin_sdk::now()).unwrap_or_else(Utc::now)
}

/// An RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// A time as Kith writes it.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `at` plus `months` calendar months (clamped to the month's last day).
pub(crate) fn add_months(at: DateTime<Utc>, months: i64) -> DateTime<Utc> {
    let months = u32::try_from(months.clamp(0, 1200)).unwrap_or(0);
    at.checked_add_months(Months::new(months)).unwrap_or(at)
}

/// `at` less `months` calendar months.
pub(crate) fn sub_months(at: DateTime<Utc>, months: i64) -> DateTime<Utc> {
    let months = u32::try_from(months.clamp(0, 1200)).unwrap_or(0);
    at.checked_sub_months(Months::new(months)).unwrap_or(at)
}

/// An integer setting with its default, kept within `min..=max`.
pub(crate) fn int_setting(key: &str, default: i64, min: i64, max: i64) -> Result<i64> {
    Ok(settings::get::<i64>(key)?.unwrap_or(default).clamp(min, max))
}

/// A filter as Kith reads it: a field's plain value is `{"eq": value}` (within `and`, `or`
/// and `not` too).
pub(crate) fn filter(filter: Json) -> Json {
    match filter {
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("and" | "or", Json::Array(items)) => {
                            Json::Array(items.into_iter().map(self::filter).collect())
                        }
                        ("not", inner) => self::filter(inner),
                        (_, value @ Json::Object(_)) => value,
                        (_, value) => json!({"eq": value}),
                    };
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

/// An aggregate over the records matching `filter` (see [`filter`]).
pub(crate) fn aggregate(filter: Json) -> kith_plugin_sdk::aggregate::Aggregate {
    kith_plugin_sdk::aggregate::Aggregate::new().filter(self::filter(filter))
}

/// One page of `object` matching `filter`.
pub(crate) fn page(object: &str, filter: Json, first: u32, order: Option<Json>) -> Result<kith_plugin_sdk::Page> {
    let mut query = Query::new().filter(self::filter(filter)).first(first);
    if let Some(order) = order {
        query = query.order_by(order);
    }
    records::query(object, &query)
}

/// The first record of `object` matching `filter`.
pub(crate) fn first(object: &str, filter: Json) -> Result<Option<Record>> {
    Ok(page(object, filter, 1, None)?.records.into_iter().next())
}

/// Every record of `object` matching `filter`, at most `cap` (pages of 200).
pub(crate) fn all(object: &str, filter: Json, cap: usize) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = Query::new().filter(self::filter(filter.clone())).first(200);
        if let Some(cursor) = &after {
            query = query.after(cursor);
        }
        let page = records::query(object, &query)?;
        out.extend(page.records);
        match page.next_cursor {
            Some(cursor) if out.len() < cap => after = Some(cursor),
            _ => break,
        }
    }
    out.truncate(cap);
    Ok(out)
}

/// A record that must exist, or `NotFound` naming the argument.
pub(crate) fn existing(object: &str, id: &str, argument: &str) -> Result<Record> {
    let found = records::get(object, id).map_err(|mut err| {
        if err.code == ErrorCode::InvalidInput {
            err.field = Some(argument.to_owned());
        }
        err
    })?;
    found.ok_or_else(|| {
        let mut err = Error::new(ErrorCode::NotFound, format!("no {object} with id {id}"));
        err.field = Some(argument.to_owned());
        err
    })
}

/// A random code of `len` characters from an alphabet without look-alikes (`0`/`O`,
/// `1`/`I`). The randomness is the sandbox's (`wasi:random`, through the standard library's
/// hash keys); the unique fields that keep codes catch the rare repeat, and callers retry.
pub(crate) fn code(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(len);
    let mut word = 0u64;
    for i in 0..len {
        if i % 12 == 0 {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(i);
            word = hasher.finish();
        }
        out.push(char::from(ALPHABET[(word % 32) as usize]));
        word >>= 5;
    }
    out
}
