//! The filter language shared by GraphQL list queries, segments, exports and plugins.
//!
//! In JSON a filter is an object whose keys are field names (each with an object of operators),
//! `customFields` (an object of custom keys, each with operators), `tags`, or the combinators
//! `and` / `or` (lists of filters) and `not` (a filter). Keys of one object are and-ed:
//!
//! ```json
//! {"lastName": {"startsWith": "Lov"}, "or": [{"addressCity": {"eq": "London"}},
//!  {"customFields": {"tier": {"in": ["gold", "silver"]}}}], "not": {"tags": {"eq": "vip"}}}
//! ```

use serde_json::{Map, Value as Json};

use crate::domain::actor::Role;
use crate::domain::custom_field::CustomFieldDef;
use crate::domain::object::ObjectDef;
use crate::domain::value::{FieldKind, Value};
use crate::domain::{DomainError, Result};

/// Deepest nesting of `and` / `or` / `not` a filter may have.
pub const MAX_DEPTH: usize = 8;
/// Most conditions one filter may hold.
pub const MAX_CONDITIONS: usize = 100;
/// Most values one `in` / `notIn` list may hold.
pub const MAX_IN_VALUES: usize = 500;

/// A parsed, type-checked filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must hold (an empty list holds).
    And(Vec<Filter>),
    /// At least one must hold (an empty list does not).
    Or(Vec<Filter>),
    /// Must not hold.
    Not(Box<Filter>),
    /// One comparison.
    Cond(Condition),
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A field of the object, by API name.
    Field(String),
    /// A custom field, by key, with its custom-field kind (`NUMBER`, ...).
    Custom {
        /// The key in `customFields`.
        key: String,
        /// The custom field's kind.
        kind: String,
    },
    /// The record's tags (by name, case-insensitive).
    Tag,
}

/// A comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal.
    Eq(Value),
    /// Not equal (null never matches).
    Neq(Value),
    /// One of.
    In(Vec<Value>),
    /// None of.
    NotIn(Vec<Value>),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// Greater than.
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// SQL LIKE pattern (`%`, `_`), case-sensitive.
    Like(String),
    /// SQL LIKE pattern, case-insensitive.
    Ilike(String),
    /// Text starts with, case-insensitive.
    StartsWith(String),
    /// Is null (true) or is not null (false).
    IsNull(bool),
}

/// One condition: a target and a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What is compared.
    pub target: Target,
    /// The kind the comparison values have.
    pub kind: FieldKind,
    /// The comparison.
    pub op: Op,
}

impl Filter {
    /// A filter that matches everything.
    pub fn all() -> Filter {
        Filter::And(Vec::new())
    }

    /// Parses and type-checks a JSON filter over `object`.
    pub fn from_json(object: &ObjectDef, custom: &[CustomFieldDef], json: &Json) -> Result<Filter> {
        let mut budget = MAX_CONDITIONS;
        parse(object, custom, json, 0, "filter", &mut budget)
    }

    /// The fields the filter compares, by API name, in order (with repeats).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(filter) = stack.pop() {
            match filter {
                Filter::And(items) | Filter::Or(items) => stack.extend(items.iter().rev()),
                Filter::Not(inner) => stack.push(inner),
                Filter::Cond(Condition { target: Target::Field(name), .. }) => out.push(name.as_str()),
                Filter::Cond(_) => {}
            }
        }
        out
    }

    /// FORBIDDEN, naming the field and the role it needs, when the filter compares a field of
    /// `object` that `role` may not read (a filter would tell what it holds).
    pub fn check_readable(&self, object: &ObjectDef, role: Role) -> Result<()> {
        self.fields().into_iter().try_for_each(|name| object.check_readable(name, role, "filtering on"))
    }
}

impl Filter {
    /// Whether `record` (a record as JSON, by API name, as events carry it: custom fields under
    /// `customFields`, tags, when present, under `tags`) satisfies the filter: the same answer
    /// the database gives for the stored record (webhooks filter events with it).
    pub fn matches(&self, record: &Map<String, Json>) -> bool {
        match self {
            Filter::And(items) => items.iter().all(|f| f.matches(record)),
            Filter::Or(items) => items.iter().any(|f| f.matches(record)),
            Filter::Not(inner) => !inner.matches(record),
            Filter::Cond(cond) => cond.matches(record),
        }
    }
}

impl Condition {
    fn matches(&self, record: &Map<String, Json>) -> bool {
        let kind = match &self.kind {
            FieldKind::Email => FieldKind::Text,
            other => other.clone(),
        };
        let json = match &self.target {
            Target::Field(name) => record.get(name),
            Target::Custom { key, .. } => record.get("customFields").and_then(|c| c.get(key)),
            Target::Tag => {
                let tags: Vec<String> = record
                    .get("tags")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().or_else(|| t.get("name").and_then(Json::as_str)))
                    .map(str::to_lowercase)
                    .collect();
                // A tag condition holds when one of the record's tags satisfies it.
                let one = |tag: &String| {
                    let value = Value::Text(tag.clone());
                    compare_op(&self.op, &value, true)
                };
                return match &self.op {
                    Op::IsNull(null) => tags.is_empty() == *null,
                    Op::Neq(_) | Op::NotIn(_) => tags.iter().all(one),
                    _ => tags.iter().any(one),
                };
            }
        };
        let value = match json {
            None | Some(Json::Null) => Value::Null,
            Some(json) => match Value::from_json("filter", &kind, json) {
                Ok(value) => value,
                Err(_) => return false,
            },
        };
        compare_op(&self.op, &value, false)
    }
}

/// Whether `value` satisfies `op` (`fold`: compare text case-insensitively, as tags are).
fn compare_op(op: &Op, value: &Value, fold: bool) -> bool {
    use std::cmp::Ordering;
    let cmp = |other: &Value| compare(value, other, fold);
    match op {
        Op::IsNull(null) => value.is_null() == *null,
        _ if value.is_null() => false,
        Op::Eq(v) => cmp(v) == Some(Ordering::Equal),
        Op::Neq(v) => cmp(v) != Some(Ordering::Equal),
        Op::In(vs) => vs.iter().any(|v| cmp(v) == Some(Ordering::Equal)),
        Op::NotIn(vs) => vs.iter().all(|v| cmp(v) != Some(Ordering::Equal)),
        Op::Lt(v) => cmp(v) == Some(Ordering::Less),
        Op::Lte(v) => matches!(cmp(v), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt(v) => cmp(v) == Some(Ordering::Greater),
        Op::Gte(v) => matches!(cmp(v), Some(Ordering::Greater | Ordering::Equal)),
        Op::Like(pattern) => value.as_text().is_some_and(|t| like(t, pattern)),
        Op::Ilike(pattern) => value.as_text().is_some_and(|t| like(&t.to_lowercase(), &pattern.to_lowercase())),
        Op::StartsWith(prefix) => value.as_text().is_some_and(|t| t.to_lowercase().starts_with(&prefix.to_lowercase())),
    }
}

fn compare(a: &Value, b: &Value, fold: bool) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Decimal(x), Value::Decimal(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Decimal(y)) => Some(rust_decimal::Decimal::from(*x).cmp(y)),
        (Value::Decimal(x), Value::Int(y)) => Some(x.cmp(&rust_decimal::Decimal::from(*y))),
        (Value::Text(x), Value::Text(y)) if fold => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Uuid(x), Value::Uuid(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` one character.
fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut t, mut p, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

fn parse(
    object: &ObjectDef,
    custom: &[CustomFieldDef],
    json: &Json,
    depth: usize,
    path: &str,
    budget: &mut usize,
) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(DomainError::invalid(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let map = match json {
        Json::Object(map) => map,
        Json::Null => return Ok(Filter::all()),
        _ => return Err(DomainError::invalid(path, "expected an object")),
    };
    let mut parts = Vec::with_capacity(map.len());
    for (key, value) in map {
        let here = format!("{path}.{key}");
        match key.as_str() {
            "and" | "or" => {
                let items =
                    value.as_array().ok_or_else(|| DomainError::invalid(&here, "expected a list of filters"))?;
                let mut subs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    subs.push(parse(object, custom, item, depth + 1, &format!("{here}[{i}]"), budget)?);
                }
                parts.push(if key == "and" { Filter::And(subs) } else { Filter::Or(subs) });
            }
            "not" => parts.push(Filter::Not(Box::new(parse(object, custom, value, depth + 1, &here, budget)?))),
            "customFields" => {
                let fields = value
                    .as_object()
                    .ok_or_else(|| DomainError::invalid(&here, "expected an object of custom keys"))?;
                for (custom_key, ops) in fields {
                    let def = custom
                        .iter()
                        .find(|d| d.key == *custom_key)
                        .ok_or_else(|| DomainError::invalid(format!("{here}.{custom_key}"), "no such custom field"))?;
                    let target = Target::Custom { key: def.key.clone(), kind: def.kind.clone() };
                    let kind = custom_value_kind(&def.kind);
                    parse_ops(&target, &kind, ops, &format!("{here}.{custom_key}"), &mut parts, budget)?;
                }
            }
            "tags" if object.taggable => parse_ops(&Target::Tag, &FieldKind::Text, value, &here, &mut parts, budget)?,
            field => {
                let def = object.field_def(field).ok_or_else(|| {
                    DomainError::invalid(&here, format!("{} has no field `{field}`", object.type_name))
                })?;
                if def.kind == FieldKind::Json {
                    return Err(DomainError::invalid(&here, "JSON fields cannot be filtered on"));
                }
                parse_ops(&Target::Field(def.name.clone()), &def.kind, value, &here, &mut parts, budget)?;
            }
        }
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::And(parts) })
}

/// The value kind used to compare a custom field of `kind`.
pub fn custom_value_kind(kind: &str) -> FieldKind {
    match kind {
        "NUMBER" | "DECIMAL" => FieldKind::Decimal,
        "DATE" => FieldKind::Date,
        "BOOLEAN" => FieldKind::Bool,
        _ => FieldKind::Text,
    }
}

fn parse_ops(
    target: &Target,
    kind: &FieldKind,
    ops: &Json,
    path: &str,
    out: &mut Vec<Filter>,
    budget: &mut usize,
) -> Result<()> {
    let ops: &Map<String, Json> =
        ops.as_object().ok_or_else(|| DomainError::invalid(path, "expected an object of operators (eq, in, ...)"))?;
    if ops.is_empty() {
        return Err(DomainError::invalid(path, "needs at least one operator"));
    }
    // Comparison values of enum fields may be given in any case; ids as strings.
    let value_kind = match kind {
        FieldKind::Email => FieldKind::Text,
        other => other.clone(),
    };
    for (name, arg) in ops {
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| DomainError::invalid(path, format!("more than {MAX_CONDITIONS} conditions")))?;
        let here = format!("{path}.{name}");
        let one = |arg: &Json| -> Result<Value> {
            match Value::from_json(&here, &value_kind, arg)? {
                Value::Null => Err(DomainError::invalid(&here, "must not be null (use isNull)")),
                v => Ok(v),
            }
        };
        let text = |arg: &Json| -> Result<String> {
            arg.as_str().map(str::to_owned).ok_or_else(|| DomainError::invalid(&here, "expected a string pattern"))
        };
        let list = |arg: &Json| -> Result<Vec<Value>> {
            let items = arg.as_array().ok_or_else(|| DomainError::invalid(&here, "expected a list"))?;
            if items.len() > MAX_IN_VALUES {
                return Err(DomainError::invalid(&here, format!("more than {MAX_IN_VALUES} values")));
            }
            items.iter().map(one).collect()
        };
        let is_text = matches!(value_kind, FieldKind::Text | FieldKind::Url | FieldKind::Enum(_) | FieldKind::Currency);
        let op = match name.as_str() {
            "eq" => Op::Eq(one(arg)?),
            "neq" => Op::Neq(one(arg)?),
            "in" => Op::In(list(arg)?),
            "notIn" => Op::NotIn(list(arg)?),
            "lt" => Op::Lt(one(arg)?),
            "lte" => Op::Lte(one(arg)?),
            "gt" => Op::Gt(one(arg)?),
            "gte" => Op::Gte(one(arg)?),
            "like" | "ilike" | "startsWith" if !is_text => {
                return Err(DomainError::invalid(&here, "only text fields support pattern operators"));
            }
            "like" => Op::Like(text(arg)?),
            "ilike" => Op::Ilike(text(arg)?),
            "startsWith" => Op::StartsWith(text(arg)?),
            "isNull" => Op::IsNull(arg.as_bool().ok_or_else(|| DomainError::invalid(&here, "expected true or false"))?),
            other => {
                return Err(DomainError::invalid(
                    &here,
                    format!(
                        "unknown operator `{other}` (eq, neq, in, notIn, lt, lte, gt, gte, like, ilike, startsWith, isNull)"
                    ),
                ));
            }
        };
        out.push(Filter::Cond(Condition { target: target.clone(), kind: kind.clone(), op }));
    }
    Ok(())
}

/// Sort direction and null placement for one key of `orderBy`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The field (API name) or custom field.
    pub target: Target,
    /// Descending when true.
    pub desc: bool,
    /// Nulls first when true, last when false. Default: nulls last ascending, first descending
    /// (PostgreSQL's default, applied on SQLite too).
    pub nulls_first: bool,
}

impl OrderBy {
    /// Sorting by `field` ascending.
    pub fn asc(field: &str) -> OrderBy {
        OrderBy { target: Target::Field(field.to_owned()), desc: false, nulls_first: false }
    }

    /// Parses `{"field": "lastName", "direction": "DESC", "nulls": "FIRST"}`.
    pub fn from_json(object: &ObjectDef, custom: &[CustomFieldDef], json: &Json) -> Result<OrderBy> {
        let map =
            json.as_object().ok_or_else(|| DomainError::invalid("orderBy", "expected {field, direction, nulls}"))?;
        for key in map.keys() {
            if !matches!(key.as_str(), "field" | "direction" | "nulls" | "customField") {
                return Err(DomainError::invalid(format!("orderBy.{key}"), "unknown key"));
            }
        }
        let desc = match map.get("direction").and_then(Json::as_str).unwrap_or("ASC") {
            "ASC" | "asc" => false,
            "DESC" | "desc" => true,
            other => return Err(DomainError::invalid("orderBy.direction", format!("`{other}` is not ASC or DESC"))),
        };
        let nulls_first = match map.get("nulls").and_then(Json::as_str) {
            None => desc,
            Some("FIRST" | "first") => true,
            Some("LAST" | "last") => false,
            Some(other) => {
                return Err(DomainError::invalid("orderBy.nulls", format!("`{other}` is not FIRST or LAST")));
            }
        };
        let target = if let Some(key) = map.get("customField").and_then(Json::as_str) {
            let def = custom
                .iter()
                .find(|d| d.key == key)
                .ok_or_else(|| DomainError::invalid("orderBy.customField", format!("no custom field `{key}`")))?;
            Target::Custom { key: def.key.clone(), kind: def.kind.clone() }
        } else {
            let field = map
                .get("field")
                .and_then(Json::as_str)
                .ok_or_else(|| DomainError::invalid("orderBy.field", "is required"))?;
            let def = object.field_def(field).ok_or_else(|| {
                DomainError::invalid("orderBy.field", format!("{} has no field `{field}`", object.type_name))
            })?;
            if def.kind == FieldKind::Json {
                return Err(DomainError::invalid("orderBy.field", "JSON fields cannot be sorted on"));
            }
            Target::Field(def.name.clone())
        };
        Ok(OrderBy { target, desc, nulls_first })
    }
}
