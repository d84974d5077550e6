//! How the test host reads, as Kith does: the filter language (with SQL's three-valued logic
//! on null), sort orders (Kith's null placement and its `id` tie-break) and aggregates, over
//! records held as JSON. Kith's end-to-end conformance table (`tests/it/conformance.rs`) runs
//! the same reads through this and through Kith, and fails where they differ.
//!
//! The test host does not know the objects' field kinds, so it compares by the values' forms:
//! numbers, and texts that are decimal numbers (`"10.50"`), as numbers; RFC 3339 UTC instants
//! (`…T09:00:00Z`) as instants; booleans `false` before `true`; other texts in byte order.

use std::cmp::Ordering;

use serde_json::Value as Json;

use crate::aggregate::{Aggregate, Bucket, Metric, Row};
use crate::types::{Error, ErrorCode, Record, Result};

/// Deepest nesting of `and` / `or` / `not` (Kith's `filter::MAX_DEPTH`).
const MAX_DEPTH: usize = 8;
/// Most conditions in one filter.
const MAX_CONDITIONS: usize = 100;
/// Most values in one `in` / `notIn` list.
const MAX_IN_VALUES: usize = 500;
/// Most sort keys.
const MAX_SORT_KEYS: usize = 5;
/// Most groups an aggregate returns.
const MAX_GROUPS: u32 = 100_000;

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidInput, message)
}

/// A filter, checked as Kith checks one before reading anything. `None` (or JSON `null`)
/// matches every record.
pub(crate) struct Filter<'a>(Option<&'a Json>);

impl<'a> Filter<'a> {
    pub(crate) fn parse(filter: Option<&'a Json>) -> Result<Filter<'a>> {
        let filter = filter.filter(|f| !f.is_null());
        if let Some(filter) = filter {
            // Every field null: every argument is checked, no branch is skipped.
            let mut budget = MAX_CONDITIONS;
            eval(filter, &Json::Null, 0, &mut budget)?;
        }
        Ok(Filter(filter))
    }

    /// Whether the filter holds (is true, not false or unknown) for `fields`.
    pub(crate) fn matches(&self, fields: &Json) -> Result<bool> {
        match self.0 {
            Some(filter) => {
                let mut budget = MAX_CONDITIONS;
                Ok(eval(filter, fields, 0, &mut budget)? == Some(true))
            }
            None => Ok(true),
        }
    }
}

/// Three-valued logic: `None` is SQL's unknown (a comparison with null).
type Truth = Option<bool>;

fn and(values: impl IntoIterator<Item = Truth>) -> Truth {
    let mut out = Some(true);
    for value in values {
        match value {
            Some(false) => return Some(false),
            None => out = None,
            Some(true) => {}
        }
    }
    out
}

fn or(values: impl IntoIterator<Item = Truth>) -> Truth {
    let mut out = Some(false);
    for value in values {
        match value {
            Some(true) => return Some(true),
            None => out = None,
            Some(false) => {}
        }
    }
    out
}

/// Evaluates every part (no short cut, so every part is checked).
fn eval(filter: &Json, fields: &Json, depth: usize, budget: &mut usize) -> Result<Truth> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("a filter is nested deeper than {MAX_DEPTH} levels")));
    }
    let map = match filter {
        Json::Object(map) => map,
        Json::Null => return Ok(Some(true)),
        _ => return Err(invalid("a filter is a JSON object")),
    };
    let mut parts = Vec::with_capacity(map.len());
    for (key, value) in map {
        let part = match key.as_str() {
            "and" | "or" => {
                let items = value.as_array().ok_or_else(|| invalid(format!("`{key}` takes a list of filters")))?;
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(eval(item, fields, depth + 1, budget)?);
                }
                if key == "and" { and(values) } else { or(values) }
            }
            "not" => eval(value, fields, depth + 1, budget)?.map(|b| !b),
            // Custom fields, as Kith filters them: `{"customFields": {"tier": {"eq": "Gold"}}}`.
            "customFields" => {
                let keys = value.as_object().ok_or_else(|| invalid("`customFields` takes an object of custom keys"))?;
                let stored = fields.get("customFields");
                let mut values = Vec::with_capacity(keys.len());
                for (custom, ops) in keys {
                    let here = format!("customFields.{custom}");
                    values.push(conditions(stored.and_then(|c| c.get(custom)), ops, &here, budget)?);
                }
                and(values)
            }
            field => conditions(fields.get(field), value, field, budget)?,
        };
        parts.push(part);
    }
    Ok(and(parts))
}

fn conditions(value: Option<&Json>, ops: &Json, field: &str, budget: &mut usize) -> Result<Truth> {
    let ops = ops.as_object().ok_or_else(|| invalid(format!("`{field}` needs an object of operators")))?;
    if ops.is_empty() {
        return Err(invalid(format!("`{field}` needs at least one operator")));
    }
    let value = value.filter(|v| !v.is_null());
    let mut parts = Vec::with_capacity(ops.len());
    for (op, arg) in ops {
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| invalid(format!("a filter has more than {MAX_CONDITIONS} conditions")))?;
        parts.push(condition(value, op, arg, field)?);
    }
    Ok(and(parts))
}

/// One comparison. Its argument is checked first, whatever the value.
fn condition(value: Option<&Json>, op: &str, arg: &Json, field: &str) -> Result<Truth> {
    let scalar = |arg: &Json| -> Result<()> {
        match arg {
            Json::Null => Err(invalid(format!("`{field}.{op}` must not be null (use isNull)"))),
            Json::Array(_) | Json::Object(_) => Err(invalid(format!("`{field}.{op}` takes a value"))),
            _ => Ok(()),
        }
    };
    let pattern = |arg: &Json| -> Result<String> {
        let text = arg.as_str().ok_or_else(|| invalid(format!("`{field}.{op}` takes a string pattern")))?;
        if value.is_some_and(|v| !v.is_string()) {
            return Err(invalid(format!("`{field}`: only text fields support pattern operators")));
        }
        Ok(text.to_owned())
    };
    Ok(match op {
        "eq" | "neq" | "lt" | "lte" | "gt" | "gte" => {
            scalar(arg)?;
            value.map(|value| match op {
                "eq" => equal(value, arg),
                "neq" => !equal(value, arg),
                "lt" => compare(value, arg) == Some(Ordering::Less),
                "lte" => matches!(compare(value, arg), Some(Ordering::Less | Ordering::Equal)),
                "gt" => compare(value, arg) == Some(Ordering::Greater),
                _ => matches!(compare(value, arg), Some(Ordering::Greater | Ordering::Equal)),
            })
        }
        "in" | "notIn" => {
            let list = arg.as_array().ok_or_else(|| invalid(format!("`{field}.{op}` takes a list")))?;
            if list.len() > MAX_IN_VALUES {
                return Err(invalid(format!("`{field}.{op}` has more than {MAX_IN_VALUES} values")));
            }
            for item in list {
                scalar(item)?;
            }
            let found = |value: &Json| list.iter().any(|item| equal(value, item));
            match (op, value) {
                // `1 = 0` and `IS NOT NULL` in Kith's SQL: never unknown.
                (_, None) if list.is_empty() => Some(false),
                (_, None) => None,
                ("in", Some(value)) => Some(found(value)),
                (_, Some(value)) => Some(!found(value)),
            }
        }
        "startsWith" => {
            let prefix = pattern(arg)?.to_lowercase();
            value.map(|value| text(value).to_lowercase().starts_with(&prefix))
        }
        "like" => {
            let pattern = pattern(arg)?;
            value.map(|value| like(&text(value), &pattern))
        }
        "ilike" => {
            let pattern = pattern(arg)?.to_lowercase();
            value.map(|value| like(&text(value).to_lowercase(), &pattern))
        }
        "isNull" => {
            let wanted = arg.as_bool().ok_or_else(|| invalid(format!("`{field}.isNull` takes true or false")))?;
            Some(wanted == value.is_none())
        }
        other => {
            return Err(invalid(format!(
                "unknown operator `{other}` (eq, neq, in, notIn, lt, lte, gt, gte, like, ilike, startsWith, isNull)"
            )));
        }
    })
}

fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One piece of a `LIKE` pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Like {
    /// `%`: any run of characters.
    Any,
    /// `_`: one character.
    One,
    /// A character (`\x` is `x`).
    Char(char),
}

/// SQL `LIKE` with `ESCAPE '\'`: `%` any run of characters, `_` one, `\` makes the next one
/// literal.
fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Like::Any,
            '_' => Like::One,
            '\\' => Like::Char(chars.next().unwrap_or('\\')),
            other => Like::Char(other),
        });
    }
    // Positions of the pattern reachable after each character of the text.
    let mut at = vec![false; tokens.len() + 1];
    at[0] = true;
    let close = |at: &mut Vec<bool>| {
        for i in 0..tokens.len() {
            if at[i] && tokens[i] == Like::Any {
                at[i + 1] = true;
            }
        }
    };
    close(&mut at);
    for c in text {
        let mut next = vec![false; tokens.len() + 1];
        for (i, token) in tokens.iter().enumerate() {
            if !at[i] {
                continue;
            }
            match token {
                Like::Any => next[i] = true,
                Like::One => next[i + 1] = true,
                Like::Char(p) if *p == c => next[i + 1] = true,
                Like::Char(_) => {}
            }
        }
        close(&mut next);
        at = next;
    }
    at[tokens.len()]
}

/// A decimal number's text, made comparable: sign, whole digits without leading zeros and
/// fraction digits without trailing zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    whole: String,
    fraction: String,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || digits.ends_with('.') {
            return None;
        }
        let whole = whole.trim_start_matches('0').to_owned();
        let fraction = fraction.trim_end_matches('0').to_owned();
        let zero = whole.is_empty() && fraction.is_empty();
        Some(Decimal { negative: negative && !zero, whole, fraction })
    }

    fn of(value: &Json) -> Option<Decimal> {
        match value {
            Json::Number(n) => Decimal::parse(&n.to_string()),
            Json::String(s) => Decimal::parse(s),
            _ => None,
        }
    }

    fn magnitude(&self, other: &Decimal) -> Ordering {
        self.whole
            .len()
            .cmp(&other.whole.len())
            .then_with(|| self.whole.cmp(&other.whole))
            .then_with(|| self.fraction.cmp(&other.fraction))
    }

    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.negative, other.negative) {
            (false, false) => self.magnitude(other),
            (true, true) => other.magnitude(self),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }

    /// The shortest text (Kith's normalized decimal): `10.50` → `10.5`, `-0` → `0`.
    fn text(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let whole = if self.whole.is_empty() { "0" } else { &self.whole };
        if self.fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{}", self.fraction) }
    }
}

/// An RFC 3339 UTC instant (`2026-01-05T09:00:00Z`, any fraction) as Kith writes it, with
/// microseconds: `2026-01-05T09:00:00.000000Z`.
fn instant(text: &str) -> Option<String> {
    let body = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00"))?;
    let (seconds, fraction) = body.split_once('.').unwrap_or((body, ""));
    let bytes = seconds.as_bytes();
    let shape = bytes.len() == 19
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape || !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let micros: String = fraction.chars().chain(std::iter::repeat('0')).take(6).collect();
    Some(format!("{seconds}.{micros}Z"))
}

/// How two non-null values compare; `None` when they cannot be (a text and a boolean).
pub(crate) fn compare(a: &Json, b: &Json) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (Decimal::of(a), Decimal::of(b)) {
        return Some(x.cmp(&y));
    }
    match (a, b) {
        (Json::String(x), Json::String(y)) => match (instant(x), instant(y)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some(x.cmp(y)),
        },
        (Json::Bool(x), Json::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn equal(a: &Json, b: &Json) -> bool {
    match compare(a, b) {
        Some(ordering) => ordering == Ordering::Equal,
        None => a == b,
    }
}

/// A value as one text (for group keys, distinct counts and aggregate answers): decimals and
/// instants as Kith writes them, `None` for null.
pub(crate) fn canonical(value: &Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(match (Decimal::parse(s), instant(s)) {
            (Some(d), _) => d.text(),
            (_, Some(i)) => i,
            _ => s.clone(),
        }),
        Json::Number(n) => Some(Decimal::parse(&n.to_string()).map(|d| d.text()).unwrap_or_else(|| n.to_string())),
        other => Some(other.to_string()),
    }
}

/// Texts as [`compare`] orders the values they stand for.
fn compare_text(a: &str, b: &str) -> Ordering {
    compare(&Json::String(a.to_owned()), &Json::String(b.to_owned())).unwrap_or_else(|| a.cmp(b))
}

/// One sort key of `orderBy`.
struct SortKey {
    field: String,
    descending: bool,
    nulls_first: bool,
}

/// A sort order, checked as Kith checks one: a list of at most 5 `{field, direction, nulls}`.
pub(crate) struct Order(Vec<SortKey>);

impl Order {
    pub(crate) fn parse(order_by: Option<&Json>) -> Result<Order> {
        let items = match order_by {
            None | Some(Json::Null) => return Ok(Order(Vec::new())),
            Some(Json::Array(items)) if items.len() <= MAX_SORT_KEYS => items,
            Some(_) => return Err(invalid(format!("orderBy is a list of at most {MAX_SORT_KEYS} sort keys"))),
        };
        let mut keys = Vec::with_capacity(items.len());
        for item in items {
            let map = item.as_object().ok_or_else(|| invalid("a sort key is {field, direction, nulls}"))?;
            if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "field" | "direction" | "nulls")) {
                return Err(invalid(match key.as_str() {
                    "customField" => "the test host does not sort by custom fields".to_owned(),
                    other => format!("orderBy.{other}: unknown key"),
                }));
            }
            let descending = match map.get("direction").and_then(Json::as_str).unwrap_or("ASC") {
                "ASC" | "asc" => false,
                "DESC" | "desc" => true,
                other => return Err(invalid(format!("orderBy.direction: `{other}` is not ASC or DESC"))),
            };
            let nulls_first = match map.get("nulls").and_then(Json::as_str) {
                None => descending,
                Some("FIRST" | "first") => true,
                Some("LAST" | "last") => false,
                Some(other) => return Err(invalid(format!("orderBy.nulls: `{other}` is not FIRST or LAST"))),
            };
            let field = map.get("field").and_then(Json::as_str).ok_or_else(|| invalid("orderBy.field is required"))?;
            keys.push(SortKey { field: field.to_owned(), descending, nulls_first });
        }
        Ok(Order(keys))
    }

    /// Sorts as Kith does: each key with its null placement (by default nulls last ascending,
    /// first descending), then the id in the last key's direction (records made earlier have
    /// smaller ids in both hosts), so the order is total.
    pub(crate) fn sort(&self, records: &mut [Record]) {
        let id_descending = self.0.last().is_some_and(|key| key.descending);
        records.sort_by(|a, b| {
            for key in &self.0 {
                let x = a.fields.get(&key.field).filter(|v| !v.is_null());
                let y = b.fields.get(&key.field).filter(|v| !v.is_null());
                let ordering = match (x, y) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) if key.nulls_first => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) if key.nulls_first => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(x), Some(y)) => {
                        let ordering = compare(x, y).unwrap_or_else(|| x.to_string().cmp(&y.to_string()));
                        if key.descending { ordering.reverse() } else { ordering }
                    }
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            let ordering = a.id.cmp(&b.id);
            if id_descending { ordering.reverse() } else { ordering }
        });
    }
}

/// Computes `query` over `records` as Kith's database does.
pub(crate) fn aggregate(records: &[Record], query: &Aggregate) -> Result<Vec<Row>> {
    if query.metrics.is_empty() || query.metrics.len() > 10 {
        return Err(invalid("ask for 1 to 10 metrics"));
    }
    if query.group_by.len() > 3 {
        return Err(invalid("at most 3 group keys"));
    }
    if !(1..=MAX_GROUPS).contains(&query.limit) {
        return Err(invalid(format!("limit must be between 1 and {MAX_GROUPS}")));
    }
    if let Some((metric, _)) = query.order
        && metric as usize >= query.metrics.len()
    {
        return Err(invalid(format!("there is no metric {metric}")));
    }
    if let Some((metric, _)) = query.metrics.iter().find(|(metric, field)| *metric != Metric::Count && field.is_none())
    {
        return Err(invalid(format!("{metric:?} names a field")));
    }
    let filter = Filter::parse(query.filter.as_ref())?;
    let mut groups: Vec<(Vec<Option<String>>, Vec<&Record>)> = Vec::new();
    for record in records {
        if !filter.matches(&record.fields)? {
            continue;
        }
        let mut keys = Vec::with_capacity(query.group_by.len());
        for (field, bucket) in &query.group_by {
            let value = record.fields.get(field).unwrap_or(&Json::Null);
            keys.push(match (bucket, canonical(value)) {
                (Some(bucket), Some(text)) => Some(bucket_start(&text, *bucket)?),
                (_, text) => text,
            });
        }
        match groups.iter_mut().find(|(k, _)| *k == keys) {
            Some((_, members)) => members.push(record),
            None => groups.push((keys, vec![record])),
        }
    }
    // Without group keys the database answers one row, even over no records.
    if query.group_by.is_empty() && groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }
    // By the keys, missing keys first.
    groups.sort_by(|(a, _), (b, _)| {
        for (x, y) in a.iter().zip(b) {
            let ordering = match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => compare_text(x, y),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    let mut rows = Vec::with_capacity(groups.len());
    for (keys, members) in groups {
        let mut values = Vec::with_capacity(query.metrics.len());
        for (metric, field) in &query.metrics {
            let field_values: Vec<&Json> = match field {
                Some(field) => members.iter().filter_map(|r| r.fields.get(field)).filter(|v| !v.is_null()).collect(),
                None => Vec::new(),
            };
            if matches!(metric, Metric::Min | Metric::Max) && field_values.iter().any(|v| v.is_boolean()) {
                return Err(invalid(format!("`{}` has no order", field.as_deref().unwrap_or_default())));
            }
            let texts: Vec<String> = field_values.iter().filter_map(|v| canonical(v)).collect();
            values.push(match metric {
                Metric::Count if field.is_none() => Some(members.len().to_string()),
                Metric::CountDistinct => {
                    let mut distinct = texts.clone();
                    distinct.sort();
                    distinct.dedup();
                    Some(distinct.len().to_string())
                }
                Metric::Sum => sum_exact(&texts)?,
                Metric::Min => texts.iter().min_by(|a, b| compare_text(a, b)).cloned(),
                Metric::Max => texts.iter().max_by(|a, b| compare_text(a, b)).cloned(),
                Metric::Count => Some(texts.len().to_string()),
            });
        }
        rows.push(Row { keys, values });
    }
    if let Some((metric, descending)) = query.order {
        let at = metric as usize;
        // Stable: ties keep their key order. Missing values last, either way.
        rows.sort_by(|a, b| match (a.values[at].as_deref(), b.values[at].as_deref()) {
            (Some(x), Some(y)) if descending => compare_text(y, x),
            (Some(x), Some(y)) => compare_text(x, y),
            (None, None) => Ordering::Equal,
            (None, _) => Ordering::Greater,
            (_, None) => Ordering::Less,
        });
    }
    rows.truncate(query.limit as usize);
    Ok(rows)
}

/// The first day of the bucket holding the date (or RFC 3339 instant) `text`.
fn bucket_start(text: &str, bucket: Bucket) -> Result<String> {
    let date = crate::date::Date::parse(text).ok_or_else(|| invalid(format!("`{text}` is not a date to bucket")))?;
    Ok(match bucket {
        Bucket::Day => date,
        Bucket::Week => date.monday(),
        Bucket::Month => date.first_of_month(),
        Bucket::Year => crate::date::Date::new_year(date.year),
    }
    .to_string())
}

/// Sums decimal texts exactly (up to 9 decimal places), as Kith's normalized decimal.
fn sum_exact(values: &[String]) -> Result<Option<String>> {
    const SCALE: u32 = 9;
    if values.is_empty() {
        return Ok(None);
    }
    let mut total: i128 = 0;
    for value in values {
        let bad = || invalid(format!("`{value}` is not a number to sum"));
        let decimal = Decimal::parse(value).ok_or_else(bad)?;
        if decimal.fraction.len() > SCALE as usize {
            return Err(bad());
        }
        let whole: i128 = if decimal.whole.is_empty() { 0 } else { decimal.whole.parse().map_err(|_| bad())? };
        let fraction: i128 =
            if decimal.fraction.is_empty() { 0 } else { decimal.fraction.parse().map_err(|_| bad())? };
        let scaled = whole * 10i128.pow(SCALE) + fraction * 10i128.pow(SCALE - decimal.fraction.len() as u32);
        total += if decimal.negative { -scaled } else { scaled };
    }
    let unit = 10u128.pow(SCALE);
    let abs = total.unsigned_abs();
    let text = format!("{}{}.{:09}", if total < 0 { "-" } else { "" }, abs / unit, abs % unit);
    Ok(Decimal::parse(&text).map(|d| d.text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_as_sql_does() {
        for (text, pattern, expected) in [
            ("likes_prolog", "likes\\_%", true),
            ("likesXprolog", "likes\\_%", false),
            ("likesXprolog", "likes_%", true),
            ("Likes Lisp", "%Lisp", true),
            ("Likes Lisp", "%lisp", false),
            ("100% cat", "100\\%%", true),
            ("", "%", true),
            ("a", "_", true),
            ("ab", "_", false),
            ("abc", "a%c", true),
            ("abc", "a%b", false),
        ] {
            assert_eq!(like(text, pattern), expected, "{text:?} LIKE {pattern:?}");
        }
    }

    #[test]
    fn values_compare_by_their_form() {
        let cmp = |a: Json, b: Json| compare(&a, &b);
        assert_eq!(cmp("10.5".into(), "9".into()), Some(Ordering::Greater));
        assert_eq!(cmp("10.50".into(), "10.5".into()), Some(Ordering::Equal));
        assert_eq!(cmp("-2.25".into(), "0.001".into()), Some(Ordering::Less));
        assert_eq!(cmp("-3".into(), "-2.25".into()), Some(Ordering::Less));
        assert_eq!(cmp(12.into(), "9".into()), Some(Ordering::Greater));
        assert_eq!(cmp("-0".into(), "0.0".into()), Some(Ordering::Equal));
        assert_eq!(cmp("2026-01-05T09:00:00Z".into(), "2026-01-05T09:00:00.000000Z".into()), Some(Ordering::Equal));
        assert_eq!(cmp("2026-01-05T09:00:00.5Z".into(), "2026-01-05T09:00:00.499999Z".into()), Some(Ordering::Greater));
        assert_eq!(cmp("Bea".into(), "Ada".into()), Some(Ordering::Greater));
        assert_eq!(cmp("2026-01-05".into(), "2025-12-29".into()), Some(Ordering::Greater));
        assert_eq!(cmp(false.into(), true.into()), Some(Ordering::Less));
        assert_eq!(cmp("x".into(), true.into()), None);
        assert_eq!(canonical(&"10.50".into()).as_deref(), Some("10.5"));
        assert_eq!(canonical(&"2026-01-05T09:00:00Z".into()).as_deref(), Some("2026-01-05T09:00:00.000000Z"));
        assert_eq!(sum_exact(&["10.5".into(), "-0.5".into(), "0.001".into()]).unwrap().as_deref(), Some("10.001"));
        assert_eq!(sum_exact(&["2.25".into(), "-2.25".into()]).unwrap().as_deref(), Some("0"));
    }
}
