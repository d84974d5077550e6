//! Calendar dates (proleptic Gregorian, UTC), for plugins that schedule, bucket or report by
//! day: parse `YYYY-MM-DD` (or the date of an RFC 3339 instant), move by days or months, find
//! the week's Monday. Kith's dates and instants are texts; this is the arithmetic on them.
//!
//! ```no_run
//! use kith_plugin_sdk::date::Date;
//!
//! let due = Date::today().add_days(3);
//! let renewal = Date::parse("2026-01-31").map(|d| d.add_months(1)); // 2026-02-28
//! let week = Date::parse("2026-12-05T10:00:00Z").map(Date::monday); // 2026-11-30
//! # let _ = (due, renewal, week);
//! ```

use std::fmt;

/// A calendar date: year, month (1–12), day (1–31, valid for its month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// The year.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, from 1.
    pub day: u32,
}

impl Date {
    /// The date, if it exists (`Date::new(2026, 2, 29)` does not).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)).then_some(Date {
            year,
            month,
            day,
        })
    }

    /// Parses `YYYY-MM-DD`, or the date part of an RFC 3339 instant (`2026-12-05T10:00:00Z`).
    pub fn parse(text: &str) -> Option<Date> {
        let text = text.get(..10)?;
        let mut parts = text.split('-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Date::new(year, month, day)
    }

    /// Today in UTC, from the host's clock (1970-01-01 if it cannot be read).
    pub fn today() -> Date {
        Date::parse(&crate::now()).unwrap_or(Date { year: 1970, month: 1, day: 1 })
    }

    /// January 1st of `year`.
    pub fn new_year(year: i32) -> Date {
        Date { year, month: 1, day: 1 }
    }

    /// The first day of this date's month.
    pub fn first_of_month(self) -> Date {
        Date { day: 1, ..self }
    }

    /// The Monday of this date's week (weeks start on Monday, as Kith's buckets do).
    pub fn monday(self) -> Date {
        let days = self.days_since_epoch();
        // 1970-01-01 was a Thursday.
        Date::from_days_since_epoch(days - (days + 3).rem_euclid(7))
    }

    /// `days` days later (earlier when negative).
    pub fn add_days(self, days: i64) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() + days)
    }

    /// The same day `months` months later, clamped to the month's last day (January 31 plus one
    /// month is February 28 or 29).
    pub fn add_months(self, months: u32) -> Date {
        let index = i64::from(self.year) * 12 + i64::from(self.month) - 1 + i64::from(months);
        let (year, month) = (index.div_euclid(12) as i32, index.rem_euclid(12) as u32 + 1);
        Date { year, month, day: self.day.min(days_in_month(year, month)) }
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days-from-civil.
        let (y, m, d) = (i64::from(self.year), i64::from(self.month), i64::from(self.day));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Date {
        // Howard Hinnant's civil-from-days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        Date { year: (yoe + era * 400 + i64::from(m <= 2)) as i32, month: m as u32, day: d as u32 }
    }
}

impl fmt::Display for Date {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` of `year` (0 for a month that does not exist).
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expect: Option<&str>) {
        assert_eq!(Date::parse(text).map(|d| d.to_string()).as_deref(), expect, "{text}");
    }

    #[test]
    fn dates_parse_only_when_they_exist() {
        check("2026-12-05", Some("2026-12-05"));
        check("2026-12-05T10:00:00.000000Z", Some("2026-12-05"));
        check("2024-02-29", Some("2024-02-29"));
        check("2026-02-29", None);
        check("2026-13-01", None);
        check("2026-1-1", None);
        check("yesterday", None);
    }

    #[test]
    fn days_months_and_weeks_move_across_years_and_leap_days() {
        let d = |t: &str| Date::parse(t).unwrap_or_else(|| panic!("{t}"));
        assert_eq!(d("2026-12-31").add_days(1), d("2027-01-01"));
        assert_eq!(d("2024-03-01").add_days(-1), d("2024-02-29"));
        assert_eq!(d("2026-01-31").add_months(1), d("2026-02-28"));
        assert_eq!(d("2024-01-31").add_months(1), d("2024-02-29"));
        assert_eq!(d("2026-11-15").add_months(14), d("2028-01-15"));
        assert_eq!(d("2026-12-05").monday(), d("2026-11-30"));
        assert_eq!(d("2026-11-30").monday(), d("2026-11-30"));
        assert_eq!(d("1970-01-01").days_since_epoch(), 0);
        assert_eq!(Date::from_days_since_epoch(-1), d("1969-12-31"));
        for days in [-800_000, -1, 0, 59, 20_000, 1_000_000] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
    }
}
