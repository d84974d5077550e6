//! Cron schedules for plugin jobs: five fields (minute, hour, day of month, month, day of
//! week), in UTC, with `*`, `N`, `A-B`, `*/S`, `A-B/S` and comma lists, plus the shorthands
//! `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly`. As in classic cron, when both the
//! day of month and the day of week are restricted, a day matching either runs.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_field(text: &str, min: u32, max: u32, what: &str) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let restricted = text != "*";
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| format!("{what}: `{step}` is not a step"))?;
                if step == 0 || step > max {
                    return Err(format!("{what}: a step must be between 1 and {max}"));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let number = |s: &str| -> Result<u32, String> {
            let n: u32 = s.parse().map_err(|_| format!("{what}: `{s}` is not a number"))?;
            if (min..=max).contains(&n) { Ok(n) } else { Err(format!("{what}: {n} is outside {min}-{max}")) }
        };
        let (from, to) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if step > 1 => (number(range)?, max),
                None => {
                    let n = number(range)?;
                    (n, n)
                }
            },
        };
        if from > to {
            return Err(format!("{what}: the range {from}-{to} is backwards"));
        }
        let mut n = from;
        while n <= to {
            bits |= 1 << n;
            n += step;
        }
    }
    Ok((bits, restricted))
}

impl Schedule {
    /// Parses a schedule.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "`{text}` needs five fields: minute hour day-of-month month day-of-week (or @daily, ...)"
            ));
        }
        let (minutes, _) = parse_field(fields[0], 0, 59, "minute")?;
        let (hours, _) = parse_field(fields[1], 0, 23, "hour")?;
        let (days, days_restricted) = parse_field(fields[2], 1, 31, "day of month")?;
        let (months, _) = parse_field(fields[3], 1, 12, "month")?;
        let (mut weekdays, weekdays_restricted) = parse_field(fields[4], 0, 7, "day of week")?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Schedule {
            text: text.trim().to_owned(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let by_day = self.days & (1 << date.day()) != 0;
        let by_weekday = self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }

    /// The first time strictly after `after` (to the minute) that the schedule fires; `None`
    /// if it never does within eight years (`0 0 31 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut date = start.date_naive();
        let mut first_day = true;
        for _ in 0..(366 * 8) {
            if self.day_matches(date) {
                let (from_hour, from_minute) = if first_day { (start.hour(), start.minute()) } else { (0, 0) };
                for hour in from_hour..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first_minute = if hour == from_hour { from_minute } else { 0 };
                    for minute in first_minute..60 {
                        if self.minutes & (1 << minute) != 0 {
                            let at = date.and_hms_opt(hour, minute, 0)?;
                            return Some(Utc.from_utc_datetime(&at));
                        }
                    }
                }
            }
            date = date.succ_opt()?;
            first_day = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[track_caller]
    fn check(schedule: &str, after: &str, expect: Option<&str>) {
        let next = Schedule::parse(schedule).unwrap().next_after(at(after));
        assert_eq!(next, expect.map(at), "{schedule} after {after}");
    }

    #[test]
    fn next_fire_times() {
        check("* * * * *", "2026-01-01T10:00:30Z", Some("2026-01-01T10:01:00Z"));
        check("0 3 * * *", "2026-01-01T03:00:00Z", Some("2026-01-02T03:00:00Z"));
        check("0 3 * * *", "2026-01-01T02:59:59Z", Some("2026-01-01T03:00:00Z"));
        check("*/15 * * * *", "2026-01-01T10:16:00Z", Some("2026-01-01T10:30:00Z"));
        check("30 9 * * 1-5", "2026-01-02T10:00:00Z", Some("2026-01-05T09:30:00Z")); // Fri → Mon
        check("0 0 1 * *", "2026-01-15T00:00:00Z", Some("2026-02-01T00:00:00Z"));
        check("0 0 29 2 *", "2026-03-01T00:00:00Z", Some("2028-02-29T00:00:00Z"));
        check("0 0 31 2 *", "2026-01-01T00:00:00Z", None);
        check("@daily", "2026-12-31T23:59:00Z", Some("2027-01-01T00:00:00Z"));
        check("0 12 * * 7", "2026-01-01T00:00:00Z", Some("2026-01-04T12:00:00Z")); // 7 = Sunday
        // Day of month or day of week, as in cron: the 13th or any Friday.
        check("0 0 13 * 5", "2026-01-01T00:00:00Z", Some("2026-01-02T00:00:00Z"));
        check("5,10-12 0 * * *", "2026-01-01T00:10:00Z", Some("2026-01-01T00:11:00Z"));
    }

    #[test]
    fn bad_schedules_say_why() {
        for (text, part) in [
            ("* * * *", "five fields"),
            ("60 * * * *", "minute: 60 is outside"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("*/0 * * * *", "step"),
            ("1/4294967295 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
            ("a * * * *", "not a number"),
        ] {
            let err = Schedule::parse(text).unwrap_err();
            assert!(err.contains(part), "`{err}` should contain `{part}`");
        }
    }
}
