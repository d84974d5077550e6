//! Fundraising reports, computed from database aggregates: donor retention (as the Fundraising
//! Effort Effectiveness Project defines it), LYBUNT and SYBUNT, campaign progress and giving
//! summaries. Every report counts received gifts in the organisation's currency.

use std::collections::{BTreeMap, BTreeSet};

use kith_plugin_sdk::aggregate::{self, Aggregate, Bucket};
use kith_plugin_sdk::{Error, ErrorCode, Result, records};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::util::{Date, base_currency, decimal_text, money};

/// Received gifts in the base currency whose date is in `[from, to)`, with a contact donor.
fn received(from: Option<Date>, to: Option<Date>) -> Result<Json> {
    let mut filter = json!({
        "status": {"eq": "RECEIVED"},
        "amountCurrency": {"eq": base_currency()?},
        "contactId": {"isNull": false},
    });
    let mut range = serde_json::Map::new();
    if let Some(from) = from {
        range.insert("gte".into(), json!(from.to_string()));
    }
    if let Some(to) = to {
        range.insert("lt".into(), json!(to.to_string()));
    }
    if !range.is_empty() {
        filter["receivedDate"] = Json::Object(range);
    }
    Ok(filter)
}

/// Per donor: (gifts, total, last gift date) over `filter`.
fn donors(filter: Json) -> Result<BTreeMap<String, (i64, Decimal, String)>> {
    let rows = aggregate::run(
        "donation",
        &Aggregate::new().filter(filter).group_by("contactId").count().sum("amount").max("receivedDate").limit(100_000),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let donor = row.key(0)?.to_owned();
            Some((donor, (row.int(0).unwrap_or(0), decimal_text(row.value(1)), row.value(2).unwrap_or("").to_owned())))
        })
        .collect())
}

fn year_arg(arguments: &Json) -> Result<i32> {
    match arguments.get("year").and_then(Json::as_i64) {
        Some(year) if (1900..=2999).contains(&year) => Ok(year as i32),
        _ => Err(Error::invalid("year", "a year between 1900 and 2999")),
    }
}

fn first_arg(arguments: &Json) -> Result<usize> {
    match arguments.get("first").and_then(Json::as_i64) {
        None => Ok(100),
        Some(n) if (1..=500).contains(&n) => Ok(n as usize),
        Some(_) => Err(Error::invalid("first", "between 1 and 500")),
    }
}

/// How many different donors gave in `[from, to)`.
fn donor_count(from: Option<Date>, to: Option<Date>) -> Result<i64> {
    let rows = aggregate::run("donation", &Aggregate::new().filter(received(from, to)?).count_distinct("contactId"))?;
    Ok(rows.first().and_then(|r| r.int(0)).unwrap_or(0))
}

/// `donorRetention(year)`, from five distinct counts (no donor list leaves the database):
/// retained = |Y ∩ Y-1| = |Y| + |Y-1| − |Y ∪ Y-1|; new = |up to Y| − |before Y|;
/// recovered = |Y| − retained − new; lapsed = |Y-1| − retained.
pub(crate) fn retention(arguments: &Json) -> Result<Json> {
    let year = year_arg(arguments)?;
    let (y, y1, y2) = (Date::new_year(year + 1), Date::new_year(year), Date::new_year(year - 1));
    let this = donor_count(Some(y1), Some(y))?;
    let last = donor_count(Some(y2), Some(y1))?;
    let either = donor_count(Some(y2), Some(y))?;
    let until_this = donor_count(None, Some(y))?;
    let before_this = donor_count(None, Some(y1))?;
    let retained = this + last - either;
    let new = until_this - before_this;
    let recovered = this - retained - new;
    let lapsed = last - retained;
    let rate = (last > 0).then(|| retained as f64 / last as f64);
    Ok(json!({
        "year": year,
        "donorsLastYear": last,
        "donorsThisYear": this,
        "newDonors": new,
        "retainedDonors": retained,
        "recoveredDonors": recovered,
        "lapsedDonors": lapsed,
        "retentionRate": rate,
    }))
}

/// The first `first` donors of `ranked` (aggregate groups by contact, in ranking order, read
/// 500 at a time) who gave nothing in `year`.
fn without_gifts_in(
    year: i32,
    first: usize,
    ranked: impl Fn(u32) -> Result<Vec<kith_plugin_sdk::aggregate::Row>>,
) -> Result<Vec<(String, Decimal, String)>> {
    let mut out = Vec::new();
    let mut limit = 500;
    loop {
        let rows = ranked(limit)?;
        let candidates: Vec<&str> = rows.iter().filter_map(|r| r.key(0)).collect();
        // A filter's `in` takes at most 500 values: ask in chunks.
        let mut gave: BTreeSet<String> = BTreeSet::new();
        for chunk in candidates.chunks(500) {
            let mut filter = received(Some(Date::new_year(year)), Some(Date::new_year(year + 1)))?;
            filter["contactId"] = json!({"in": chunk});
            let rows = aggregate::run(
                "donation",
                &Aggregate::new().filter(filter).group_by("contactId").count().limit(100_000),
            )?;
            gave.extend(rows.iter().filter_map(|r| r.key(0).map(str::to_owned)));
        }
        out.clear();
        for row in &rows {
            let Some(donor) = row.key(0) else { continue };
            if !gave.contains(donor) {
                out.push((donor.to_owned(), decimal_text(row.value(0)), row.value(1).unwrap_or("").to_owned()));
                if out.len() == first {
                    return Ok(out);
                }
            }
        }
        // Fewer than asked and every ranked donor seen: that is all there are.
        if (rows.len() as u32) < limit || limit >= 100_000 {
            return Ok(out);
        }
        limit = (limit * 4).min(100_000);
    }
}

/// The donors of `page` (contact ids, in order) with their last gift before `until`.
fn lapsed_rows(page: &[(String, Decimal)], until: Date) -> Result<Json> {
    if page.is_empty() {
        return Ok(json!([]));
    }
    let ids: Vec<&str> = page.iter().map(|(id, _)| id.as_str()).collect();
    let mut filter = received(None, Some(until))?;
    filter["contactId"] = json!({"in": ids});
    // Gifts per donor and day: the last day's total is the last gift.
    let days = aggregate::run(
        "donation",
        &Aggregate::new().filter(filter).group_by("contactId").group_by("receivedDate").sum("amount").limit(100_000),
    )?;
    let mut last: BTreeMap<&str, (&str, Decimal)> = BTreeMap::new();
    for row in &days {
        let (Some(donor), Some(day)) = (row.key(0), row.key(1)) else { continue };
        let amount = decimal_text(row.value(0));
        let entry = last.entry(donor).or_insert((day, amount));
        if day >= entry.0 {
            *entry = (day, amount);
        }
    }
    let mut contacts = BTreeMap::new();
    for chunk in ids.chunks(200) {
        let page =
            records::query("contact", &kith_plugin_sdk::Query::new().filter(json!({"id": {"in": chunk}})).first(200))?;
        for contact in page.records {
            contacts.insert(contact.id.clone(), contact);
        }
    }
    Ok(Json::Array(
        page.iter()
            .filter_map(|(id, lifetime)| {
                let (day, amount) = last.get(id.as_str())?;
                let contact = contacts.get(id);
                let name = contact
                    .map(|c| {
                        format!("{} {}", c.str("firstName").unwrap_or(""), c.str("lastName").unwrap_or(""))
                            .trim()
                            .to_owned()
                    })
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "(unnamed)".into());
                Some(json!({
                    "contactId": id, "name": name, "email": contact.and_then(|c| c.str("email")),
                    "lastGiftDate": day, "lastGiftAmount": money(*amount), "lifetimeGiving": money(*lifetime),
                }))
            })
            .collect(),
    ))
}

/// `lybunt(year, first)`: gave last year, not this year; biggest last-year givers first.
pub(crate) fn lybunt(arguments: &Json) -> Result<Json> {
    let year = year_arg(arguments)?;
    let first = first_arg(arguments)?;
    let last_year = received(Some(Date::new_year(year - 1)), Some(Date::new_year(year)))?;
    let lapsed = without_gifts_in(year, first, |limit| {
        aggregate::run(
            "donation",
            &Aggregate::new()
                .filter(last_year.clone())
                .group_by("contactId")
                .sum("amount")
                .max("receivedDate")
                .order_by_metric(0, true)
                .limit(limit),
        )
    })?;
    let ids: Vec<String> = lapsed.iter().map(|(id, _, _)| id.clone()).collect();
    let lifetime = lifetimes(&ids, Date::new_year(year))?;
    let page: Vec<(String, Decimal)> = ids
        .into_iter()
        .map(|id| {
            let total = lifetime.get(&id).copied().unwrap_or_default();
            (id, total)
        })
        .collect();
    lapsed_rows(&page, Date::new_year(year))
}

/// `sybunt(year, first)`: gave in some year before, not this year; most recent givers first.
pub(crate) fn sybunt(arguments: &Json) -> Result<Json> {
    let year = year_arg(arguments)?;
    let first = first_arg(arguments)?;
    let before = received(None, Some(Date::new_year(year)))?;
    let lapsed = without_gifts_in(year, first, |limit| {
        aggregate::run(
            "donation",
            &Aggregate::new()
                .filter(before.clone())
                .group_by("contactId")
                .sum("amount")
                .max("receivedDate")
                .order_by_metric(1, true)
                .limit(limit),
        )
    })?;
    let page: Vec<(String, Decimal)> = lapsed.into_iter().map(|(id, total, _)| (id, total)).collect();
    lapsed_rows(&page, Date::new_year(year))
}

/// Lifetime giving of `ids` before `until`.
fn lifetimes(ids: &[String], until: Date) -> Result<BTreeMap<String, Decimal>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut filter = received(None, Some(until))?;
    filter["contactId"] = json!({"in": ids});
    Ok(donors(filter)?.into_iter().map(|(id, (_, total, _))| (id, total)).collect())
}

/// `campaignProgress(id)`.
pub(crate) fn campaign_progress(arguments: &Json) -> Result<Json> {
    let id = arguments.get("id").and_then(Json::as_str).unwrap_or_default();
    let campaign = match records::get("campaign", id) {
        Ok(Some(campaign)) => campaign,
        Ok(None) => return Err(Error::new(ErrorCode::NotFound, format!("no campaign `{id}`"))),
        Err(err) if err.code == ErrorCode::InvalidInput => return Err(Error::invalid("id", err.message)),
        Err(err) => return Err(err),
    };
    let mut filter = received(None, None)?;
    filter["campaignId"] = json!({"eq": id});
    let gifts = donors(filter)?;
    let count: i64 = gifts.values().map(|(n, _, _)| n).sum();
    let raised: Decimal = gifts.values().map(|(_, total, _)| *total).sum();
    let goal = crate::util::decimal(campaign.fields.get("goal"));
    let percent = goal.filter(|g| *g > Decimal::ZERO).map(|g| {
        let ratio = raised / g * Decimal::from(100);
        ratio.round_dp(2).to_string().parse::<f64>().unwrap_or(0.0)
    });
    Ok(json!({
        "campaignId": id,
        "name": campaign.str("name").unwrap_or(""),
        "goal": goal.map(money),
        "raised": money(raised),
        "percentOfGoal": percent,
        "donors": gifts.len(),
        "gifts": count,
        "averageGift": (count > 0).then(|| money((raised / Decimal::from(count)).round_dp(2))),
    }))
}

/// `givingSummary(from, to, groupBy)`: `to` is inclusive.
pub(crate) fn giving_summary(arguments: &Json) -> Result<Json> {
    let from = crate::util::date_arg(arguments, "from")?.ok_or_else(|| Error::invalid("from", "is required"))?;
    let to = crate::util::date_arg(arguments, "to")?.ok_or_else(|| Error::invalid("to", "is required"))?;
    if to < from {
        return Err(Error::invalid("to", "must not be before `from`"));
    }
    let group = arguments.get("groupBy").and_then(Json::as_str).unwrap_or("MONTH");
    let filter = received(Some(from), Some(to.add_days(1)))?;
    let key = |query: Aggregate| match group {
        "FUND" => query.group_by("fundId"),
        "CAMPAIGN" => query.group_by("campaignId"),
        _ => query.group_by_bucket("receivedDate", Bucket::Month),
    };
    let totals = aggregate::run("donation", &key(Aggregate::new().filter(filter.clone())).count().sum("amount"))?;
    let per_donor =
        aggregate::run("donation", &key(Aggregate::new().filter(filter)).group_by("contactId").count().limit(100_000))?;
    let mut donors: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for row in &per_donor {
        if let Some(donor) = row.key(1) {
            donors.entry(row.key(0).map(str::to_owned)).or_default().insert(donor.to_owned());
        }
    }
    let object = match group {
        "FUND" => Some("fund"),
        "CAMPAIGN" => Some("campaign"),
        _ => None,
    };
    let keys: Vec<&str> = totals.iter().filter_map(|r| r.key(0)).collect();
    let mut names = BTreeMap::new();
    if let Some(object) = object {
        for chunk in keys.chunks(200) {
            let page =
                records::query(object, &kith_plugin_sdk::Query::new().filter(json!({"id": {"in": chunk}})).first(200))?;
            for record in page.records {
                names.insert(record.id.clone(), record.str("name").unwrap_or("").to_owned());
            }
        }
    }
    Ok(Json::Array(
        totals
            .iter()
            .map(|row| {
                let key = row.key(0).map(str::to_owned);
                let label = match (&key, object) {
                    (None, _) => "(none)".to_owned(),
                    (Some(k), Some(_)) => names.get(k).cloned().unwrap_or_else(|| k.clone()),
                    (Some(k), None) => k.get(..7).unwrap_or(k).to_owned(),
                };
                json!({
                    "key": key, "label": label, "total": money(decimal_text(row.value(1))),
                    "gifts": row.int(0).unwrap_or(0), "donors": donors.get(&key).map_or(0, BTreeSet::len),
                })
            })
            .collect(),
    ))
}
