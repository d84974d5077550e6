//! What plugins add to the API besides objects: computed fields on objects, queries and
//! mutations with typed arguments and results, and the output types and enums those use.
//! Plain data: the API layer turns it into GraphQL, the plugin runtime answers the calls.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use crate::domain::actor::Role;

/// Scalars a plugin may use in argument, field and result types.
pub const SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID", "Decimal", "Date", "DateTime", "JSON"];

/// A GraphQL type written as in SDL: `Int`, `String!`, `[Decimal!]!`, `DonorSummary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    /// The named type.
    pub name: String,
    /// `[...]`: a list, with whether its items are non-null.
    pub list: Option<bool>,
    /// `!` on the outside.
    pub non_null: bool,
}

impl TypeExpr {
    /// Parses SDL type syntax. Nested lists are refused.
    pub fn parse(text: &str) -> Result<TypeExpr, String> {
        let text = text.trim();
        let (inner, non_null) = match text.strip_suffix('!') {
            Some(inner) => (inner.trim(), true),
            None => (text, false),
        };
        let (name, list) = match inner.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            Some(item) => {
                let item = item.trim();
                match item.strip_suffix('!') {
                    Some(name) => (name.trim(), Some(true)),
                    None => (item, Some(false)),
                }
            }
            None => (inner, None),
        };
        let name_ok = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.len() <= 60
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err(format!("`{text}` is not a type such as `Int`, `String!`, `[Decimal!]!` or `MyType`"));
        }
        Ok(TypeExpr { name: name.to_owned(), list, non_null })
    }

    /// Whether the named type is a built-in scalar.
    pub fn is_scalar(&self) -> bool {
        SCALARS.contains(&self.name.as_str())
    }
}

impl fmt::Display for TypeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.list {
            Some(item_non_null) => write!(f, "[{}{}]", self.name, if item_non_null { "!" } else { "" })?,
            None => f.write_str(&self.name)?,
        }
        if self.non_null { f.write_str("!") } else { Ok(()) }
    }
}

/// An output type a plugin declares (`type DonorSummary { ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// Its GraphQL name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Its fields and their types, by name.
    pub fields: BTreeMap<String, TypeExpr>,
}

/// An enum a plugin declares, for arguments and results.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumDef {
    /// Its GraphQL name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Its values, UPPER_CASE.
    pub values: Vec<String>,
}

/// A field computed by a plugin on an object (`Contact.loyaltyTier`), resolved for a whole page
/// in one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedField {
    /// The object it is on (`contact`).
    pub object: String,
    /// The field name.
    pub name: String,
    /// Its type.
    pub ty: TypeExpr,
    /// What it means.
    pub description: String,
}

/// Query or mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Reads only.
    Query,
    /// May write.
    Mutation,
}

/// A query or mutation a plugin answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Query or mutation.
    pub kind: OperationKind,
    /// The field name on `Query` or `Mutation`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its arguments and their types, by name.
    pub arguments: BTreeMap<String, TypeExpr>,
    /// Its result type.
    pub returns: TypeExpr,
    /// The least role allowed to call it.
    pub role: Role,
}

/// Everything one plugin adds to the API besides its objects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extension {
    /// The plugin.
    pub plugin: String,
    /// Output types.
    pub types: Vec<TypeDef>,
    /// Enums.
    pub enums: Vec<EnumDef>,
    /// The enums of the plugin's own objects' enum fields (`DonationStatus`), registered with
    /// the objects; usable in argument and result types.
    pub object_enums: Vec<EnumDef>,
    /// Computed fields.
    pub fields: Vec<ComputedField>,
    /// Queries and mutations.
    pub operations: Vec<Operation>,
}

impl Extension {
    /// Whether `name` is a type or enum of this extension.
    pub fn declares_type(&self, name: &str) -> bool {
        self.types.iter().any(|t| t.name == name) || self.enums.iter().any(|e| e.name == name)
    }

    /// The enum called `name`: one of its own or one of its objects'.
    pub fn enum_def(&self, name: &str) -> Option<&EnumDef> {
        self.enums.iter().chain(&self.object_enums).find(|e| e.name == name)
    }
}

/// Checks `value` (JSON from a plugin or a caller) against `ty`, resolving names through
/// `extension`; `at` names the place for the message. Scalars are checked for their form:
/// `Decimal` an exact decimal string, `Date` `YYYY-MM-DD`, `DateTime` RFC 3339.
pub fn check_value(extension: &Extension, ty: &TypeExpr, value: &Json, at: &str) -> Result<(), String> {
    if value.is_null() {
        return if ty.non_null { Err(format!("{at}: must not be null ({ty})")) } else { Ok(()) };
    }
    match ty.list {
        Some(item_non_null) => {
            let items = value.as_array().ok_or_else(|| format!("{at}: expected a list ({ty})"))?;
            let item_ty = TypeExpr { name: ty.name.clone(), list: None, non_null: item_non_null };
            for (i, item) in items.iter().enumerate() {
                check_value(extension, &item_ty, item, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        None => check_named(extension, &ty.name, value, at),
    }
}

fn check_named(extension: &Extension, name: &str, value: &Json, at: &str) -> Result<(), String> {
    let bad = |expected: &str| Err(format!("{at}: expected {expected}, got {value}"));
    match name {
        "String" | "ID" if value.is_string() => Ok(()),
        "String" => bad("a string"),
        "ID" => bad("an id"),
        "Int" if value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()) => Ok(()),
        "Int" => bad("a 32-bit integer"),
        "Float" if value.is_number() => Ok(()),
        "Float" => bad("a number"),
        "Boolean" if value.is_boolean() => Ok(()),
        "Boolean" => bad("true or false"),
        "JSON" => Ok(()),
        "Decimal" => match value {
            Json::String(s) if s.parse::<rust_decimal::Decimal>().is_ok() => Ok(()),
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
            _ => bad("an exact decimal such as \"12.50\""),
        },
        "Date" => match value.as_str().map(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")) {
            Some(Ok(_)) => Ok(()),
            _ => bad("a date YYYY-MM-DD"),
        },
        "DateTime" => match value.as_str().map(chrono::DateTime::parse_from_rfc3339) {
            Some(Ok(_)) => Ok(()),
            _ => bad("an RFC 3339 timestamp"),
        },
        _ => {
            if let Some(def) = extension.enum_def(name) {
                return match value.as_str() {
                    Some(s) if def.values.iter().any(|v| v == s) => Ok(()),
                    _ => bad(&format!("one of {}", def.values.join(", "))),
                };
            }
            let Some(def) = extension.types.iter().find(|t| t.name == name) else {
                return Err(format!("{at}: unknown type `{name}`"));
            };
            let object = value.as_object().ok_or_else(|| format!("{at}: expected an object ({name}), got {value}"))?;
            if let Some(extra) = object.keys().find(|k| !def.fields.contains_key(*k)) {
                return Err(format!("{at}: `{name}` has no field `{extra}`"));
            }
            for (field, field_ty) in &def.fields {
                check_value(extension, field_ty, object.get(field).unwrap_or(&Json::Null), &format!("{at}.{field}"))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check_parse(text: &str, expect: Result<&str, ()>) {
        let parsed = TypeExpr::parse(text).map(|t| t.to_string()).map_err(|_| ());
        assert_eq!(parsed.as_deref().map_err(|_| ()), expect, "{text}");
    }

    #[test]
    fn type_expressions_round_trip() {
        check_parse("Int", Ok("Int"));
        check_parse("String!", Ok("String!"));
        check_parse("[Decimal!]!", Ok("[Decimal!]!"));
        check_parse(" [ DonorSummary ] ", Ok("[DonorSummary]"));
        check_parse("[[Int]]", Err(()));
        check_parse("int", Err(()));
        check_parse("", Err(()));
        check_parse("Drop Table", Err(()));
    }

    fn extension() -> Extension {
        Extension {
            plugin: "p".into(),
            types: vec![TypeDef {
                name: "Summary".into(),
                description: String::new(),
                fields: [
                    ("total".to_owned(), TypeExpr::parse("Decimal!").unwrap()),
                    ("count".to_owned(), TypeExpr::parse("Int!").unwrap()),
                    ("level".to_owned(), TypeExpr::parse("Level").unwrap()),
                    ("days".to_owned(), TypeExpr::parse("[Date!]").unwrap()),
                ]
                .into(),
            }],
            enums: vec![EnumDef { name: "Level".into(), description: String::new(), values: vec!["GOLD".into()] }],
            ..Extension::default()
        }
    }

    #[track_caller]
    fn check(ty: &str, value: Json, expect: Result<(), &str>) {
        let ty = TypeExpr::parse(ty).unwrap();
        match (check_value(&extension(), &ty, &value, "result"), expect) {
            (Ok(()), Ok(())) => {}
            (Err(err), Err(part)) => assert!(err.contains(part), "`{err}` should contain `{part}`"),
            (got, want) => panic!("{ty} {value}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn values_are_checked_against_types() {
        check("Int", json!(3), Ok(()));
        check("Int", json!(null), Ok(()));
        check("Int!", json!(null), Err("must not be null"));
        check("Int", json!(3_000_000_000i64), Err("32-bit"));
        check("Int", json!("3"), Err("expected a 32-bit integer"));
        check("Decimal", json!("12.50"), Ok(()));
        check("Decimal", json!(12.5), Err("exact decimal"));
        check("Date", json!("2026-02-30"), Err("date"));
        check("DateTime", json!("2026-02-03T10:00:00Z"), Ok(()));
        check("[Int!]!", json!([1, 2]), Ok(()));
        check("[Int!]!", json!([1, null]), Err("result[1]"));
        check("Summary!", json!({"total": "1", "count": 2, "level": "GOLD", "days": ["2026-01-01"]}), Ok(()));
        check("Summary", json!({"total": "1", "count": 2, "level": "TIN"}), Err("result.level"));
        check("Summary", json!({"total": "1"}), Err("result.count: must not be null"));
        check("Summary", json!({"total": "1", "count": 1, "extra": 1}), Err("no field `extra`"));
        check("Unknown", json!({}), Err("unknown type"));
    }
}
