//! Analytics over the pipeline: counts and amounts per stage, forecast, win rate, time to close.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::filter::{Condition, Filter, Op, OrderBy, Target};
use crate::domain::value::{FieldKind, Value};
use crate::error::Result;
use crate::service::Kith;
use crate::store::records::{ListQuery, PageRequest, get_live, list};
use crate::store::reports as totals;

/// One stage's line of a pipeline report.
#[derive(Debug, Clone, PartialEq)]
pub struct StageLine {
    /// The stage.
    pub stage_id: Uuid,
    /// Its name.
    pub name: String,
    /// OPEN, WON or LOST.
    pub kind: String,
    /// Its probability, 0 to 100.
    pub probability: i64,
    /// Live deals in it.
    pub count: i64,
    /// Their amounts, per currency.
    pub amounts: BTreeMap<String, Decimal>,
}

/// A pipeline report.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineReport {
    /// Stages in order.
    pub stages: Vec<StageLine>,
    /// Σ amount × probability over open stages, per currency.
    pub forecast: BTreeMap<String, Decimal>,
    /// Won ÷ (won + lost); `None` before any deal closed.
    pub win_rate: Option<f64>,
    /// Mean days from creation to a WON stage; `None` before any deal was won.
    pub average_days_to_close: Option<f64>,
}

/// Reports on the live deals of a pipeline, aggregated in the database.
pub async fn pipeline_report(kith: &Kith, pipeline_id: Uuid) -> Result<PipelineReport> {
    let db = kith.store.conn();
    let pipeline_def = kith.object("pipeline")?;
    get_live(db, &pipeline_def, pipeline_id).await?;
    let stage_def = kith.object("stage")?;
    let filter = Filter::Cond(Condition {
        target: Target::Field("pipelineId".into()),
        kind: FieldKind::Ref("pipeline".into()),
        op: Op::Eq(Value::Uuid(pipeline_id)),
    });
    let query = ListQuery {
        filter,
        order: vec![OrderBy::asc("position")],
        page: PageRequest::Forward { first: 500, after: None },
        include_deleted: false,
    };
    let mut stages: Vec<StageLine> = list(db, &stage_def, &query)
        .await?
        .records
        .into_iter()
        .map(|(_, s)| StageLine {
            stage_id: s.id(),
            name: s.get("name").to_string(),
            kind: s.get("kind").to_string(),
            probability: s.get("probability").as_int().unwrap_or(0),
            count: 0,
            amounts: BTreeMap::new(),
        })
        .collect();
    for total in totals::deal_totals(db, pipeline_id).await? {
        if let Some(line) = stages.iter_mut().find(|l| Some(l.stage_id) == total.stage_id) {
            line.count += total.count;
            *line.amounts.entry(total.currency).or_default() += total.amount;
        }
    }
    let mut forecast: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in stages.iter().filter(|l| l.kind == "OPEN") {
        for (currency, amount) in &line.amounts {
            *forecast.entry(currency.clone()).or_default() +=
                amount * Decimal::from(line.probability) / Decimal::from(100);
        }
    }
    let won: i64 = stages.iter().filter(|l| l.kind == "WON").map(|l| l.count).sum();
    let lost: i64 = stages.iter().filter(|l| l.kind == "LOST").map(|l| l.count).sum();
    let win_rate = (won + lost > 0).then(|| won as f64 / (won + lost) as f64);
    let average_days_to_close = totals::average_days_to_close(db, pipeline_id).await?;
    for amounts in stages.iter_mut().map(|l| &mut l.amounts).chain(std::iter::once(&mut forecast)) {
        for amount in amounts.values_mut() {
            *amount = amount.normalize();
        }
    }
    Ok(PipelineReport { stages, forecast, win_rate, average_days_to_close })
}

/// A ticket report over tickets created in a period.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketReport {
    /// Tickets created in the period.
    pub volume: i64,
    /// Minutes to first public response: median and 90th percentile (of responded tickets).
    pub first_response_minutes: (Option<f64>, Option<f64>),
    /// Minutes to solution: median and 90th percentile (of solved tickets).
    pub resolution_minutes: (Option<f64>, Option<f64>),
    /// Share of tickets that missed a due time (responded or solved late, or still open past it).
    pub sla_breach_rate: Option<f64>,
    /// Mean satisfaction rating of rated tickets.
    pub csat_average: Option<f64>,
    /// Rated tickets.
    pub rated: i64,
}

/// The value at quantile `q` (0..=1) of sorted `values`, by nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Reports on tickets created in `[from, to)`.
pub async fn ticket_report(
    kith: &Kith,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<TicketReport> {
    use chrono::{DateTime, Utc};
    if from >= to {
        return Err(crate::domain::DomainError::invalid("to", "must be after `from`").into());
    }
    let now = Utc::now();
    let minutes = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_seconds() as f64 / 60.0;
    let (mut first, mut resolution, mut ratings) = (Vec::new(), Vec::new(), Vec::new());
    let (mut volume, mut breached) = (0i64, 0i64);
    for ticket in totals::ticket_times(kith.store.conn(), from, to).await? {
        let totals::TicketTimes { created, responded, solved, first_due, solve_due, rating } = ticket;
        let Some(created) = created else { continue };
        volume += 1;
        if let Some(r) = responded {
            first.push(minutes(created, r));
        }
        if let Some(s) = solved {
            resolution.push(minutes(created, s));
        }
        let late = |done: Option<DateTime<Utc>>, due: Option<DateTime<Utc>>| match due {
            Some(due) => done.unwrap_or(now) > due,
            None => false,
        };
        if late(responded, first_due) || late(solved, solve_due) {
            breached += 1;
        }
        if let Some(rating) = rating {
            ratings.push(rating as f64);
        }
    }
    first.sort_by(f64::total_cmp);
    resolution.sort_by(f64::total_cmp);
    Ok(TicketReport {
        volume,
        first_response_minutes: (percentile(&first, 0.5), percentile(&first, 0.9)),
        resolution_minutes: (percentile(&resolution, 0.5), percentile(&resolution, 0.9)),
        sla_breach_rate: (volume > 0).then(|| breached as f64 / volume as f64),
        csat_average: (!ratings.is_empty()).then(|| ratings.iter().sum::<f64>() / ratings.len() as f64),
        rated: ratings.len() as i64,
    })
}

/// Most points (buckets) one growth report may have: 2 years and 9 months of days, 19 years of
/// weeks, 83 years of months. The API's cost of a growth field grows with its points too
/// (`api::cost`), so several long reports in one request are refused before they run.
pub const MAX_BUCKETS: i64 = 1_000;

/// The start of the bucket holding `date` (weeks start on Monday).
pub fn bucket_start(date: chrono::NaiveDate, interval: &str) -> chrono::NaiveDate {
    use chrono::Datelike;
    match interval {
        "WEEK" => date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday())),
        "MONTH" => date.with_day(1).unwrap_or(date),
        _ => date,
    }
}

fn next_bucket(date: chrono::NaiveDate, interval: &str) -> chrono::NaiveDate {
    match interval {
        "WEEK" => date + chrono::Duration::days(7),
        "MONTH" => date.checked_add_months(chrono::Months::new(1)).unwrap_or(date),
        _ => date + chrono::Duration::days(1),
    }
}

/// How many points a growth report over `[from, to)` by `interval` has, counted without
/// building them: the API costs a request with it before running anything, and
/// `contact_growth` refuses a range of more than [`MAX_BUCKETS`] before allocating one.
pub fn growth_points(from: chrono::NaiveDate, to: chrono::NaiveDate, interval: &str) -> Result<i64> {
    use chrono::Datelike;

    use crate::domain::DomainError;
    if !matches!(interval, "DAY" | "WEEK" | "MONTH") {
        return Err(DomainError::invalid("interval", "DAY, WEEK or MONTH").into());
    }
    if from >= to {
        return Err(DomainError::invalid("to", "must be after `from`").into());
    }
    let start = bucket_start(from, interval);
    let days = (to - start).num_days();
    Ok(match interval {
        "DAY" => days,
        "WEEK" => (days + 6) / 7,
        _ => {
            let month = |d: chrono::NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
            // Every month from `start`'s up to `to`'s, and `to`'s own only when it is under way.
            month(to) - month(start) + i64::from(to.day() > 1)
        }
    })
}

/// New contacts per day, week or month in `[from, to)` (UTC dates), with running totals of the
/// contacts that existed before each bucket ended. Empty buckets are included.
pub async fn contact_growth(
    kith: &Kith,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    interval: &str,
) -> Result<Vec<(chrono::NaiveDate, i64, i64)>> {
    use crate::domain::DomainError;
    let points = growth_points(from, to, interval)?;
    if points > MAX_BUCKETS {
        return Err(DomainError::invalid(
            "to",
            format!(
                "at most {MAX_BUCKETS} points per report, and this range has {points} of a {}: \
                 shorten it or choose a longer interval",
                interval.to_ascii_lowercase()
            ),
        )
        .into());
    }
    let mut buckets = Vec::with_capacity(usize::try_from(points).unwrap_or(0));
    let mut start = bucket_start(from, interval);
    while start < to {
        buckets.push((start, 0i64, 0i64));
        start = next_bucket(start, interval);
    }
    let db = kith.store.conn();
    let first = buckets.first().map(|b| b.0).unwrap_or(from);
    let start_ts = first.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default();
    let end_ts = to.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default();
    let mut running = totals::contacts_before(db, start_ts).await?;
    for at in totals::contact_creation_times(db, start_ts, end_ts).await? {
        let key = bucket_start(at.date_naive(), interval);
        if let Ok(i) = buckets.binary_search_by_key(&key, |b| b.0) {
            buckets[i].1 += 1;
        }
    }
    for bucket in &mut buckets {
        running += bucket.1;
        bucket.2 = running;
    }
    Ok(buckets)
}
