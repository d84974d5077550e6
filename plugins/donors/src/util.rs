//! Small helpers: dates, exact amounts, reading every record of a filter, settings.

use std::str::FromStr;

use kith_plugin_sdk::{Error, Query, Record, Result, records, settings};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

/// A calendar date as (year, month, day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD` (or the date part of an RFC 3339 instant).
    pub(crate) fn parse(text: &str) -> Option<Date> {
        let text = text.get(..10)?;
        let mut parts = text.split('-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        let date = Date { year, month, day };
        (parts.next().is_none() && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then_some(date)
    }

    /// Today, from the host's clock (UTC).
    pub(crate) fn today() -> Date {
        Date::parse(&kith_plugin_sdk::now()).unwrap_or(Date { year: 1970, month: 1, day: 1 })
    }

    /// January 1st of `year`.
    pub(crate) fn new_year(year: i32) -> Date {
        Date { year, month: 1, day: 1 }
    }

    /// The same day `months` months later, clamped to the month's last day (Jan 31 + 1 month
    /// = Feb 28/29).
    pub(crate) fn add_months(self, months: u32) -> Date {
        let index = self.year * 12 + (self.month as i32 - 1) + months as i32;
        let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
        Date { year, month, day: self.day.min(days_in_month(year, month)) }
    }

    /// `days` days later (or earlier, when negative).
    pub(crate) fn add_days(self, days: i64) -> Date {
        from_days(to_days(self) + days)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
fn to_days(date: Date) -> i64 {
    let (y, m, d) = (i64::from(date.year), i64::from(date.month), i64::from(date.day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Date { year: y as i32, month: m as u32, day: d as u32 }
}

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
