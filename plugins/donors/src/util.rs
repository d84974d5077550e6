//! Small helpers: exact amounts, reading every record of a filter, settings.

use std::str::FromStr;

use kith_plugin_sdk::{Error, Query, Record, Result, records, settings};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

pub(crate) use kith_plugin_sdk::date::Date;

/// Months between payments of a frequency (`MONTHLY`, `QUARTERLY`, `YEARLY`).
pub(crate) fn frequency_months(frequency: &str) -> Option<u32> {
    match frequency {
        "MONTHLY" => Some(1),
        "QUARTERLY" => Some(3),
        "YEARLY" => Some(12),
        _ => None,
    }
}

/// An exact amount from JSON text or number.
pub(crate) fn decimal(value: Option<&Json>) -> Option<Decimal> {
    match value? {
        Json::String(s) => Decimal::from_str(s).ok(),
        Json::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

/// An exact amount from aggregate text.
pub(crate) fn decimal_text(text: Option<&str>) -> Decimal {
    text.and_then(|t| Decimal::from_str(t).ok()).unwrap_or_default()
}

/// An amount as Kith's GraphQL writes it.
pub(crate) fn money(amount: Decimal) -> Json {
    json!(amount.normalize().to_string())
}

/// Every record of `object` matching `filter`, at most `cap` (pages of 200).
pub(crate) fn all(object: &str, filter: Json, cap: usize) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = Query::new().filter(filter.clone()).first(200);
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

/// The first record of `object` matching `filter`.
pub(crate) fn first(object: &str, filter: Json) -> Result<Option<Record>> {
    Ok(records::query(object, &Query::new().filter(filter).first(1))?.records.into_iter().next())
}

/// The organisation's currency setting.
pub(crate) fn base_currency() -> Result<String> {
    Ok(settings::get::<String>("currency")?.unwrap_or_else(|| "USD".into()).to_ascii_uppercase())
}

/// An integer setting with its default.
pub(crate) fn int_setting(key: &str, default: i64) -> Result<i64> {
    Ok(settings::get::<i64>(key)?.unwrap_or(default))
}

/// The donor level for a lifetime total, from the `levels` setting (`Name:minimum`).
pub(crate) fn level_for(lifetime: Decimal) -> Result<Option<String>> {
    let levels: Vec<String> = settings::get("levels")?.unwrap_or_else(|| {
        ["Friend:0", "Supporter:250", "Patron:1000", "Major donor:10000"].map(String::from).to_vec()
    });
    let mut best: Option<(Decimal, String)> = None;
    for level in &levels {
        let Some((name, minimum)) = level.rsplit_once(':') else {
            return Err(Error::msg(format!("the levels setting has `{level}`; write `Name:minimum`")));
        };
        let minimum = Decimal::from_str(minimum.trim())
            .map_err(|_| Error::msg(format!("the levels setting has `{level}`: `{minimum}` is not an amount")))?;
        if lifetime >= minimum && best.as_ref().is_none_or(|(m, _)| minimum >= *m) {
            best = Some((minimum, name.trim().to_owned()));
        }
    }
    Ok(best.map(|(_, name)| name))
}

/// A required, parseable date argument.
pub(crate) fn date_arg(arguments: &Json, name: &str) -> Result<Option<Date>> {
    match arguments.get(name).and_then(Json::as_str) {
        None => Ok(None),
        Some(text) => {
            Date::parse(text).map(Some).ok_or_else(|| Error::invalid(name, format!("`{text}` is not a date")))
        }
    }
}

/// A positive exact amount argument.
pub(crate) fn amount_arg(arguments: &Json, name: &str) -> Result<Decimal> {
    let amount =
        decimal(arguments.get(name)).ok_or_else(|| Error::invalid(name, "an amount such as \"25.00\" is required"))?;
    if amount <= Decimal::ZERO {
        return Err(Error::invalid(name, "must be more than 0"));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_move_by_months_and_days() {
        let d = |s: &str| Date::parse(s).unwrap();
        assert_eq!(d("2026-01-31").add_months(1).to_string(), "2026-02-28");
        assert_eq!(d("2024-01-31").add_months(1).to_string(), "2024-02-29");
        assert_eq!(d("2026-11-15").add_months(3).to_string(), "2027-02-15");
        assert_eq!(d("2026-12-31").add_days(1).to_string(), "2027-01-01");
        assert_eq!(d("2026-03-01").add_days(-1).to_string(), "2026-02-28");
        assert!(Date::parse("2026-02-30").is_none());
        assert!(Date::parse("26-1-1").is_none());
        assert!(d("2025-12-31") < d("2026-01-01"));
    }
}
