//! Field values and their kinds: the typed vocabulary shared by core and plugin objects.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::{DomainError, Result};

/// The type of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// A record id (UUIDv7).
    Id,
    /// Free text.
    Text,
    /// An e-mail address.
    Email,
    /// An absolute http(s) URL.
    Url,
    /// A 64-bit integer.
    Int,
    /// An exact decimal number (money amounts).
    Decimal,
    /// An ISO 4217 currency code.
    Currency,
    /// true or false.
    Bool,
    /// A calendar date.
    Date,
    /// An instant, in UTC.
    DateTime,
    /// One of a fixed list of upper-case values.
    Enum(Vec<String>),
    /// Arbitrary JSON (custom field values).
    Json,
    /// A reference to a record of the named object.
    Ref(String),
}

impl FieldKind {
    /// An enum kind from a list of names.
    pub fn enumeration(values: &[&str]) -> FieldKind {
        FieldKind::Enum(values.iter().map(|v| (*v).to_owned()).collect())
    }
}

/// One field value. `Null` is an explicit absence.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// An exact decimal.
    Decimal(Decimal),
    /// Text, including e-mails, URLs, currency codes and enum names.
    Text(String),
    /// A date.
    Date(NaiveDate),
    /// An instant.
    DateTime(DateTime<Utc>),
    /// A record id.
    Uuid(Uuid),
    /// JSON.
    Json(Json),
}

/// A record's fields by API name (`firstName`, `customFields`, ...).
pub type Fields = BTreeMap<String, Value>;

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text inside, if any.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The id inside, if any.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Value::Uuid(id) => Some(*id),
            _ => None,
        }
    }

    /// The integer inside, if any.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The decimal inside, if any.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Decimal(d) => Some(*d),
            _ => None,
        }
    }

    /// The instant inside, if any.
    pub fn as_datetime(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::DateTime(t) => Some(*t),
            _ => None,
        }
    }

    /// The boolean inside, if any.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The JSON form used in API payloads, events and the audit log: decimals as strings (to
    /// stay exact), instants as RFC 3339, dates as `YYYY-MM-DD`.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(n) => Json::from(*n),
            Value::Decimal(d) => Json::String(d.normalize().to_string()),
            Value::Text(s) => Json::String(s.clone()),
            Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(t) => Json::String(format_datetime(*t)),
            Value::Uuid(id) => Json::String(id.to_string()),
            Value::Json(j) => j.clone(),
        }
    }

    /// Reads a value of `kind` from JSON, as it arrives from GraphQL, CSV or a plugin. `field`
    /// names the field in the error.
    pub fn from_json(field: &str, kind: &FieldKind, json: &Json) -> Result<Value> {
        if json.is_null() {
            return Ok(Value::Null);
        }
        match kind {
            FieldKind::Json => Ok(Value::Json(json.clone())),
            FieldKind::Bool => json.as_bool().map(Value::Bool).ok_or_else(|| expected(field, "a boolean")),
            FieldKind::Int => match json {
                Json::Number(n) => n.as_i64().map(Value::Int).ok_or_else(|| expected(field, "an integer")),
                Json::String(s) => Value::parse(field, kind, s),
                _ => Err(expected(field, "an integer")),
            },
            FieldKind::Decimal => match json {
                // Numbers are taken through their decimal text, never through f64.
                Json::Number(n) => Value::parse(field, kind, &n.to_string()),
                Json::String(s) => Value::parse(field, kind, s),
                _ => Err(expected(field, "a decimal number")),
            },
            _ => match json {
                Json::String(s) => Value::parse(field, kind, s),
                _ => Err(expected(field, "a string")),
            },
        }
    }

    /// Parses text (a CSV cell, a GraphQL string) as a value of `kind`. Empty text is `Null`.
    pub fn parse(field: &str, kind: &FieldKind, text: &str) -> Result<Value> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Value::Null);
        }
        match kind {
            FieldKind::Id | FieldKind::Ref(_) => {
                Uuid::parse_str(text).map(Value::Uuid).map_err(|_| expected(field, "an id (UUID)"))
            }
            FieldKind::Text => Ok(Value::Text(text.to_owned())),
            FieldKind::Email => normalize_email(field, text).map(Value::Text),
            FieldKind::Url => validate_url(field, text).map(|()| Value::Text(text.to_owned())),
            FieldKind::Int => text.parse::<i64>().map(Value::Int).map_err(|_| expected(field, "an integer")),
            FieldKind::Decimal => {
                parse_decimal(text).map(Value::Decimal).ok_or_else(|| expected(field, "a decimal number"))
            }
            FieldKind::Currency => {
                let code = text.to_ascii_uppercase();
                crate::domain::currency::validate_code(field, &code)?;
                Ok(Value::Text(code))
            }
            FieldKind::Bool => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "y" => Ok(Value::Bool(true)),
                "false" | "no" | "0" | "n" => Ok(Value::Bool(false)),
                _ => Err(expected(field, "true or false")),
            },
            FieldKind::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Value::Date)
                .map_err(|_| expected(field, "a date (YYYY-MM-DD)")),
            FieldKind::DateTime => {
                parse_datetime(text).map(Value::DateTime).ok_or_else(|| expected(field, "an RFC 3339 date-time"))
            }
            FieldKind::Enum(values) => {
                let upper = text.to_ascii_uppercase();
                if values.contains(&upper) {
                    Ok(Value::Text(upper))
                } else {
                    Err(DomainError::invalid(field, format!("`{text}` is not one of {}", values.join(", "))))
                }
            }
            FieldKind::Json => serde_json::from_str(text).map(Value::Json).map_err(|_| expected(field, "JSON")),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            Json::String(s) => f.write_str(&s),
            Json::Null => Ok(()),
            other => write!(f, "{other}"),
        }
    }
}

fn expected(field: &str, what: &str) -> DomainError {
    DomainError::invalid(field, format!("expected {what}"))
}

/// Formats an instant the way Kith stores and prints it: UTC, microseconds, `Z`.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Truncates an instant to what storage keeps (microseconds), so what is written is what is read.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// Parses an RFC 3339 instant (any offset) into UTC, truncated to microseconds.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| truncate_micros(t.with_timezone(&Utc)))
}

fn parse_decimal(text: &str) -> Option<Decimal> {
    // Reject exponents and anything beyond plain decimal notation.
    if !text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+') {
        return None;
    }
    text.parse::<Decimal>().ok()
}

/// Validates an e-mail address and returns it trimmed. The local part keeps its case (some
/// servers care); uniqueness checks compare lower-cased addresses.
pub fn normalize_email(field: &str, text: &str) -> Result<String> {
    let text = text.trim();
    let valid = text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && match text.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !local.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
                    && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-')
            }
            None => false,
        };
    if valid {
        Ok(text.to_owned())
    } else {
        Err(DomainError::invalid(field, format!("`{text}` is not a valid e-mail address")))
    }
}

/// Normalises a web domain (`https://www.Example.org/` becomes `example.org`).
pub fn normalize_domain(field: &str, text: &str) -> Result<String> {
    let mut domain = text.trim().to_ascii_lowercase();
    for prefix in ["https://", "http://"] {
        if let Some(rest) = domain.strip_prefix(prefix) {
            domain = rest.to_owned();
        }
    }
    if let Some(rest) = domain.strip_prefix("www.") {
        domain = rest.to_owned();
    }
    let domain = domain.trim_end_matches('/').to_owned();
    let valid = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.len() <= 253
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(domain)
    } else {
        Err(DomainError::invalid(field, format!("`{}` is not a valid domain", text.trim())))
    }
}

fn validate_url(field: &str, text: &str) -> Result<()> {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !text.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(DomainError::invalid(field, format!("`{text}` is not an http(s) URL"))),
    }
}
