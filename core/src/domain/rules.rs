//! Validation and defaults applied to every write, generic first, then per object.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::currency;
use crate::domain::object::{Access, ObjectDef};
use crate::domain::value::{FieldKind, Fields, Value, normalize_domain};
use crate::domain::{DomainError, Result};

/// Longest text a field may hold, in characters.
pub const MAX_TEXT_CHARS: usize = 65_536;

/// Whether a write creates or updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new record.
    Create,
    /// A change to an existing record.
    Update,
}

/// Checks the shape of caller input: known fields, writable in this mode, values of the right
/// kind. `customFields` is checked separately against the custom field definitions.
pub fn check_input(object: &ObjectDef, input: &Fields, mode: Mode) -> Result<()> {
    for (name, value) in input {
        let def = object
            .field_def(name)
            .ok_or_else(|| DomainError::invalid(name, format!("{} has no field `{name}`", object.type_name)))?;
        match (def.access, mode) {
            (Access::ReadOnly, _) => return Err(DomainError::invalid(name, "is maintained by Kith and cannot be set")),
            (Access::CreateOnly, Mode::Update) => {
                return Err(DomainError::invalid(name, "cannot be changed after creation"));
            }
            _ => {}
        }
        if !kind_matches(&def.kind, value) {
            return Err(DomainError::invalid(name, "has the wrong type"));
        }
        if let Value::Text(text) = value
            && text.chars().count() > MAX_TEXT_CHARS
        {
            return Err(DomainError::invalid(name, format!("is longer than {MAX_TEXT_CHARS} characters")));
        }
    }
    Ok(())
}

fn kind_matches(kind: &FieldKind, value: &Value) -> bool {
    matches!(
        (kind, value),
        (_, Value::Null)
            | (FieldKind::Id | FieldKind::Ref(_), Value::Uuid(_))
            | (
                FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Currency | FieldKind::Enum(_),
                Value::Text(_)
            )
            | (FieldKind::Int, Value::Int(_))
            | (FieldKind::Decimal, Value::Decimal(_))
            | (FieldKind::Bool, Value::Bool(_))
            | (FieldKind::Date, Value::Date(_))
            | (FieldKind::DateTime, Value::DateTime(_))
            | (FieldKind::Json, Value::Json(_))
    )
}

/// Applies defaults and per-object rules to the state a write would leave (`after`), given the
/// state before it (`None` on create). Then checks required fields.
pub fn prepare(object: &ObjectDef, before: Option<&Fields>, after: &mut Fields, now: DateTime<Utc>) -> Result<()> {
    // Blank text is no text.
    for value in after.values_mut() {
        if let Value::Text(text) = value {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                *value = Value::Null;
            } else if trimmed.len() != text.len() {
                *value = Value::Text(trimmed.to_owned());
            }
        }
    }
    let creating = before.is_none();
    match object.name.as_str() {
        "contact" => contact(after, before, creating, now)?,
        "company" => company(after)?,
        "stage" => stage(after)?,
        "deal" => deal(after)?,
        "ticket" => {
            default(after, "priority", Value::Text("NORMAL".into()));
            default(after, "channel", Value::Text("OTHER".into()));
        }
        "ticketComment" => default(after, "public", Value::Bool(true)),
        "activity" => default(after, "occurredAt", Value::DateTime(now)),
        "user" => default(after, "active", Value::Bool(true)),
        _ => {}
    }
    for def in object.fields.iter().filter(|f| f.required && f.access != Access::ReadOnly) {
        if after.get(&def.name).is_none_or(Value::is_null) {
            return Err(DomainError::invalid(&def.name, "is required"));
        }
    }
    Ok(())
}

fn default(fields: &mut Fields, name: &str, value: Value) {
    let slot = fields.entry(name.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value;
    }
}

fn get<'a>(fields: &'a Fields, name: &str) -> &'a Value {
    fields.get(name).unwrap_or(&Value::Null)
}

fn contact(after: &mut Fields, before: Option<&Fields>, creating: bool, now: DateTime<Utc>) -> Result<()> {
    default(after, "lifecycleStage", Value::Text("LEAD".into()));
    default(after, "emailOptIn", Value::Bool(false));
    default(after, "doNotContact", Value::Bool(false));
    default(after, "legalHold", Value::Bool(false));
    if ["firstName", "lastName", "email"].iter().all(|f| get(after, f).is_null()) {
        return Err(DomainError::invalid("firstName", "a contact needs a first name, a last name or an e-mail"));
    }
    if let Value::Date(birthday) = get(after, "birthday")
        && *birthday > now.date_naive()
    {
        return Err(DomainError::invalid("birthday", "is in the future"));
    }
    // Consent: opting in stamps the time (unless given); opting out clears it.
    let opted_in = get(after, "emailOptIn").as_bool() == Some(true);
    let was_opted_in = before.is_some_and(|b| get(b, "emailOptIn").as_bool() == Some(true));
    if opted_in && (creating || !was_opted_in) && get(after, "emailOptInAt").is_null() {
        after.insert("emailOptInAt".into(), Value::DateTime(now));
    }
    if !opted_in {
        after.insert("emailOptInAt".into(), Value::Null);
    }
    Ok(())
}

fn company(after: &mut Fields) -> Result<()> {
    if let Value::Text(domain) = get(after, "domain").clone() {
        after.insert("domain".into(), Value::Text(normalize_domain("domain", &domain)?));
    }
    non_negative_int(after, "employees")?;
    if let Some(revenue) = get(after, "annualRevenue").as_decimal() {
        if revenue < Decimal::ZERO {
            return Err(DomainError::invalid("annualRevenue", "must not be negative"));
        }
        if revenue.normalize().scale() > 4 || revenue >= Decimal::from(currency::MAX_AMOUNT) {
            return Err(DomainError::invalid("annualRevenue", "must have at most 4 decimals and be below 10^14"));
        }
    }
    Ok(())
}

fn stage(after: &mut Fields) -> Result<()> {
    let probability = get(after, "probability").as_int();
    if let Some(p) = probability
        && !(0..=100).contains(&p)
    {
        return Err(DomainError::invalid("probability", format!("must be between 0 and 100, got {p}")));
    }
    match (get(after, "kind").as_text(), probability) {
        (Some("WON"), Some(p)) if p != 100 => {
            Err(DomainError::invalid("probability", "a WON stage has probability 100"))
        }
        (Some("LOST"), Some(p)) if p != 0 => Err(DomainError::invalid("probability", "a LOST stage has probability 0")),
        _ => non_negative_int(after, "position"),
    }
}

fn deal(after: &mut Fields) -> Result<()> {
    if let (Some(amount), Some(code)) = (get(after, "amount").as_decimal(), get(after, "currency").as_text()) {
        currency::validate_amount("amount", amount, code)?;
    }
    if get(after, "amount").as_decimal().is_some() && get(after, "currency").is_null() {
        return Err(DomainError::invalid("currency", "is required with an amount"));
    }
    Ok(())
}

fn non_negative_int(fields: &Fields, name: &str) -> Result<()> {
    match get(fields, name).as_int() {
        Some(n) if n < 0 => Err(DomainError::invalid(name, "must not be negative")),
        _ => Ok(()),
    }
}

/// The fields whose value differs between `before` and `after`, with both values.
pub fn diff(before: &Fields, after: &Fields) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    for (name, new) in after {
        let old = before.get(name).unwrap_or(&Value::Null);
        if old != new {
            out.push((name.clone(), old.clone(), new.clone()));
        }
    }
    out
}
