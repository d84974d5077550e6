//! Custom field definitions and the validation of their values.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::domain::object::Registry;
use crate::domain::value::{Value, normalize_email};
use crate::domain::{DomainError, Result};

/// Types a custom field can have.
pub const KINDS: &[&str] = &["TEXT", "NUMBER", "DECIMAL", "DATE", "BOOLEAN", "SELECT", "MULTI_SELECT", "URL", "EMAIL"];

/// An admin-defined field on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    /// The object it belongs to (`contact`).
    pub object: String,
    /// Its key in `customFields` (camelCase, e.g. `tier`).
    pub key: String,
    /// Its label for people.
    pub label: String,
    /// One of [`KINDS`].
    pub kind: String,
    /// Whether every record must have a value.
    pub required: bool,
    /// The allowed values of SELECT and MULTI_SELECT fields.
    pub options: Vec<String>,
}

impl CustomFieldDef {
    /// Checks the definition itself against the objects of `registry`.
    pub fn validate(&self, registry: &Registry) -> Result<()> {
        if !registry.get(&self.object).is_some_and(|def| def.custom_fields) {
            let objects: Vec<&str> = registry.objects().filter(|d| d.custom_fields).map(|d| d.name.as_str()).collect();
            return Err(DomainError::invalid(
                "object",
                format!("`{}` has no custom fields (one of {})", self.object, objects.join(", ")),
            ));
        }
        let mut chars = self.key.chars();
        let key_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_alphanumeric())
            && self.key.len() <= 64;
        if !key_ok {
            return Err(DomainError::invalid(
                "key",
                "must be camelCase: a lower-case letter, then letters and digits (at most 64)",
            ));
        }
        if self.label.trim().is_empty() {
            return Err(DomainError::invalid("label", "must not be empty"));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(DomainError::invalid("kind", format!("`{}` is not one of {}", self.kind, KINDS.join(", "))));
        }
        let is_select = matches!(self.kind.as_str(), "SELECT" | "MULTI_SELECT");
        if is_select && self.options.is_empty() {
            return Err(DomainError::invalid("options", "a SELECT field needs at least one option"));
        }
        if !is_select && !self.options.is_empty() {
            return Err(DomainError::invalid("options", "only SELECT and MULTI_SELECT fields have options"));
        }
        Ok(())
    }

    /// Checks one value and returns it in canonical form (decimals as strings, trimmed text).
    pub fn check_value(&self, value: &Json) -> Result<Json> {
        let field = format!("customFields.{}", self.key);
        let bad = |what: &str| DomainError::invalid(&field, format!("expected {what}"));
        if value.is_null() {
            return Ok(Json::Null);
        }
        match self.kind.as_str() {
            "TEXT" => value.as_str().map(|s| Json::String(s.to_owned())).ok_or_else(|| bad("text")),
            "NUMBER" => match value {
                Json::Number(n) if n.is_i64() || n.is_f64() => Ok(value.clone()),
                Json::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Json::from)
                    .ok_or_else(|| bad("a number")),
                _ => Err(bad("a number")),
            },
            "DECIMAL" => {
                let kind = crate::domain::value::FieldKind::Decimal;
                match Value::from_json(&field, &kind, value)? {
                    Value::Decimal(d) => Ok(Json::String(d.normalize().to_string())),
                    _ => Err(bad("a decimal number")),
                }
            }
            "DATE" => {
                let kind = crate::domain::value::FieldKind::Date;
                Value::from_json(&field, &kind, value).map(|v| v.to_json())
            }
            "BOOLEAN" => match value {
                Json::Bool(_) => Ok(value.clone()),
                _ => Err(bad("true or false")),
            },
            "SELECT" => {
                let s = value.as_str().ok_or_else(|| bad("one of the options"))?;
                self.check_option(&field, s)?;
                Ok(Json::String(s.to_owned()))
            }
            "MULTI_SELECT" => {
                let items = value.as_array().ok_or_else(|| bad("a list of options"))?;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let s = item.as_str().ok_or_else(|| bad("a list of options"))?;
                    self.check_option(&field, s)?;
                    if !out.iter().any(|o: &Json| o.as_str() == Some(s)) {
                        out.push(Json::String(s.to_owned()));
                    }
                }
                Ok(Json::Array(out))
            }
            "URL" => {
                let kind = crate::domain::value::FieldKind::Url;
                Value::from_json(&field, &kind, value).map(|v| v.to_json())
            }
            "EMAIL" => {
                let s = value.as_str().ok_or_else(|| bad("an e-mail address"))?;
                normalize_email(&field, s).map(Json::String)
            }
            other => Err(DomainError::invalid(&field, format!("unknown kind {other}"))),
        }
    }

    fn check_option(&self, field: &str, s: &str) -> Result<()> {
        if self.options.iter().any(|o| o == s) {
            Ok(())
        } else {
            Err(DomainError::invalid(field, format!("`{s}` is not one of {}", self.options.join(", "))))
        }
    }
}

/// Validates a record's `customFields` against the definitions of its object. `previous` is the
/// stored map on update: keys not mentioned in `incoming` keep their value, a `null` removes one.
/// Returns the merged, canonical map.
pub fn validate_values(defs: &[CustomFieldDef], previous: Option<&Json>, incoming: Option<&Json>) -> Result<Json> {
    let mut merged: Map<String, Json> = match previous {
        Some(Json::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    if let Some(incoming) = incoming {
        let incoming = match incoming {
            Json::Object(map) => map,
            Json::Null => &Map::new(),
            _ => return Err(DomainError::invalid("customFields", "expected an object of key: value")),
        };
        for (key, value) in incoming {
            let def = defs
                .iter()
                .find(|d| d.key == *key)
                .ok_or_else(|| DomainError::invalid(format!("customFields.{key}"), "no such custom field"))?;
            let value = def.check_value(value)?;
            if value.is_null() {
                merged.remove(key);
            } else {
                merged.insert(key.clone(), value);
            }
        }
    }
    for def in defs.iter().filter(|d| d.required) {
        if !merged.contains_key(&def.key) {
            return Err(DomainError::invalid(format!("customFields.{}", def.key), "is required"));
        }
    }
    Ok(Json::Object(merged))
}
