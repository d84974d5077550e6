//! Fundraising reports, computed from database aggregates: donor retention (as the Fundraising
//! Effort Effectiveness Project defines it), LYBUNT and SYBUNT, campaign progress and giving
//! summaries. Every report adds up received gifts in the organisation's currency, those in
//! other currencies at their exchange rate (see `counted`). Retention and the lapsed lists are
//! about contact donors; campaign and giving totals count companies' gifts too.

use std::collections::{BTreeMap, BTreeSet};

use kith_plugin_sdk::aggregate::{self, Aggregate, Bucket, Row};
use kith_plugin_sdk::{Error, ErrorCode, Record, Result, records};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::counted::Counted;
use crate::summary::soft_credits_of;
use crate::util::{Date, decimal_text, money};

/// Gifts whose date is in `[from, to)`.
fn dated(from: Option<Date>, to: Option<Date>) -> Json {
    let mut range = serde_json::Map::new();
    if let Some(from) = from {
        range.insert("gte".into(), json!(from.to_string()));
    }
    if let Some(to) = to {
        range.insert("lt".into(), json!(to.to_string()));
    }
    if range.is_empty() { json!({}) } else { json!({"receivedDate": range}) }
}

/// Gifts of contact donors whose date is in `[from, to)` (retention and the lapsed lists are
/// about people).
fn by_contacts(from: Option<Date>, to: Option<Date>) -> Json {
    let mut filter = dated(from, to);
    filter["contactId"] = json!({"isNull": false});
    filter
}

/// Per donor: (gifts, total, last gift date) over counted gifts that match `extra`.
fn donors(counted: &Counted, extra: Json) -> Result<BTreeMap<String, (i64, Decimal, String)>> {
    let rows = counted.aggregate(extra, |amount| {
        Aggregate::new().group_by("contactId").count().sum(amount).max("receivedDate").limit(100_000)
    })?;
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
fn donor_count(counted: &Counted, from: Option<Date>, to: Option<Date>) -> Result<i64> {
    let rows = aggregate::run(
        "donation",
        &Aggregate::new().filter(counted.filter(by_contacts(from, to))).count_distinct("contactId"),
    )?;
    Ok(rows.first().and_then(|r| r.int(0)).unwrap_or(0))
}

/// `donorRetention(year)`, from five distinct counts (no donor list leaves the database):
/// retained = |Y ∩ Y-1| = |Y| + |Y-1| − |Y ∪ Y-1|; new = |up to Y| − |before Y|;
/// recovered = |Y| − retained − new; lapsed = |Y-1| − retained. Every gift counts, deleted
/// donors' too: the figures are about gifts received, the lists below about people to ask.
pub(crate) fn retention(arguments: &Json) -> Result<Json> {
    let year = year_arg(arguments)?;
    let counted = Counted::new()?;
    let (y, y1, y2) = (Date::new_year(year + 1), Date::new_year(year), Date::new_year(year - 1));
    let this = donor_count(&counted, Some(y1), Some(y))?;
    let last = donor_count(&counted, Some(y2), Some(y1))?;
    let either = donor_count(&counted, Some(y2), Some(y))?;
    let until_this = donor_count(&counted, None, Some(y))?;
    let before_this = donor_count(&counted, None, Some(y1))?;
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

/// A lapsed donor found by [`without_gifts_in`]: their contact and ranked total.
struct Lapsed {
    contact: Record,
    total: Decimal,
}

/// The first `first` donors of `ranked` (aggregate groups by contact, in ranking order, read
/// 500 at a time) who gave nothing in `year` and whose contact is not deleted. A solicitation
/// list leaves deleted contacts out: there is no one to ask (a merged duplicate's gifts
/// belong to the contact it was merged into, an erased person must not be asked again).
fn without_gifts_in(year: i32, first: usize, ranked: impl Fn(u32) -> Result<Vec<Row>>) -> Result<Vec<Lapsed>> {
    let mut out = Vec::new();
    let mut limit = 500;
    loop {
        let rows = ranked(limit)?;
        let candidates: Vec<&str> = rows.iter().filter_map(|r| r.key(0)).collect();
        // A filter's `in` takes at most 500 values: ask in chunks. Any gift received this year
        // counts, whatever its currency: whoever gave must not be asked as if they had not.
        let mut gave: BTreeSet<String> = BTreeSet::new();
        for chunk in candidates.chunks(500) {
            let mut filter = dated(Some(Date::new_year(year)), Some(Date::new_year(year + 1)));
            filter["status"] = json!({"eq": "RECEIVED"});
            filter["contactId"] = json!({"in": chunk});
            let rows = aggregate::run(
                "donation",
                &Aggregate::new().filter(filter).group_by("contactId").count().limit(100_000),
            )?;
            gave.extend(rows.iter().filter_map(|r| r.key(0).map(str::to_owned)));
        }
        let lapsed: Vec<&Row> = rows.iter().filter(|r| r.key(0).is_some_and(|donor| !gave.contains(donor))).collect();
        // Their contacts (deleted ones are not found), 200 at a time, until `first` are found.
        out.clear();
        for chunk in lapsed.chunks(200) {
            let ids: Vec<&str> = chunk.iter().filter_map(|r| r.key(0)).collect();
            let page = records::query(
                "contact",
                &kith_plugin_sdk::Query::new().filter(json!({"id": {"in": ids}})).first(200),
            )?;
            let mut contacts: BTreeMap<String, Record> = page.records.into_iter().map(|c| (c.id.clone(), c)).collect();
            for row in chunk {
                let Some(contact) = row.key(0).and_then(|id| contacts.remove(id)) else { continue };
                out.push(Lapsed { contact, total: decimal_text(row.value(0)) });
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

/// How a contact is called in a list: their name, else their e-mail, else their id; never
/// "(unnamed)" for someone with a name.
pub(crate) fn contact_name(contact: &Record) -> String {
    let part = |field: &str| contact.str(field).unwrap_or("").trim().to_owned();
    let name = format!("{} {}", part("firstName"), part("lastName")).trim().to_owned();
    if !name.is_empty() {
        return name;
    }
    contact.str("email").filter(|e| !e.is_empty()).map_or_else(|| format!("contact {}", contact.id), str::to_owned)
}

/// The lapsed donors (in order) with their last gift, lifetime giving and recognition before
/// `until`.
fn lapsed_rows(counted: &Counted, lapsed: &[Lapsed], until: Date) -> Result<Json> {
    if lapsed.is_empty() {
        return Ok(json!([]));
    }
    let ids: Vec<String> = lapsed.iter().map(|l| l.contact.id.clone()).collect();
    let mut filter = dated(None, Some(until));
    filter["contactId"] = json!({"in": ids});
    // Gifts per donor and day: the last day's total is the last gift.
    let days = counted.aggregate(filter.clone(), |amount| {
        Aggregate::new().group_by("contactId").group_by("receivedDate").sum(amount).limit(100_000)
    })?;
    let mut last: BTreeMap<&str, (&str, Decimal)> = BTreeMap::new();
    for row in &days {
        let (Some(donor), Some(day)) = (row.key(0), row.key(1)) else { continue };
        let amount = decimal_text(row.value(0));
        let entry = last.entry(donor).or_insert((day, amount));
        if day >= entry.0 {
            *entry = (day, amount);
        }
    }
    let lifetime = donors(counted, filter)?;
    let soft = soft_credits_of(counted, &ids, until.year - 1)?;
    Ok(Json::Array(
        lapsed
            .iter()
            .filter_map(|l| {
                let id = l.contact.id.as_str();
                let (day, amount) = last.get(id)?;
                let giving = lifetime.get(id).map(|(_, total, _)| *total).unwrap_or(l.total);
                let credited: Decimal = soft.get(id).map(|years| years.values().sum()).unwrap_or_default();
                Some(json!({
                    "contactId": id, "name": contact_name(&l.contact), "email": l.contact.str("email"),
                    "lastGiftDate": day, "lastGiftAmount": money(*amount), "lifetimeGiving": money(giving),
                    "lifetimeRecognition": money(giving + credited),
                }))
            })
            .collect(),
    ))
}

/// `lybunt(year, first)`: gave last year, not this year; biggest last-year givers first.
pub(crate) fn lybunt(arguments: &Json) -> Result<Json> {
    let year = year_arg(arguments)?;
    let first = first_arg(arguments)?;
    let counted = Counted::new()?;
    let last_year = by_contacts(Some(Date::new_year(year - 1)), Some(Date::new_year(year)));
    let lapsed = without_gifts_in(year, first, |limit| {
        counted.aggregate(last_year.clone(), |amount| {
            Aggregate::new().group_by("contactId").sum(amount).max("receivedDate").order_by_metric(0, true).limit(limit)
        })
    })?;
    lapsed_rows(&counted, &lapsed, Date::new_year(year))
}

/// `sybunt(year, first)`: gave in some year before, not this year; most recent givers first.
pub(crate) fn sybunt(arguments: &Json) -> Result<Json> {
    let year = year_arg(arguments)?;
    let first = first_arg(arguments)?;
    let counted = Counted::new()?;
    let before = by_contacts(None, Some(Date::new_year(year)));
    let lapsed = without_gifts_in(year, first, |limit| {
        counted.aggregate(before.clone(), |amount| {
            Aggregate::new().group_by("contactId").sum(amount).max("receivedDate").order_by_metric(1, true).limit(limit)
        })
    })?;
    lapsed_rows(&counted, &lapsed, Date::new_year(year))
}

/// A gift's donor as reports count them: its contact, or its company when it has no contact.
fn donor_key(contact: Option<&str>, company: Option<&str>) -> Option<String> {
    contact.map(|c| format!("contact:{c}")).or_else(|| company.map(|c| format!("company:{c}")))
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
    // Every gift to the campaign counts, a company's too: hard credit only (a soft credit is
    // another view of a gift already counted).
    let counted = Counted::new()?;
    let rows = counted.aggregate(json!({"campaignId": {"eq": id}}), |amount| {
        Aggregate::new().group_by("contactId").group_by("companyId").count().sum(amount).limit(100_000)
    })?;
    let count: i64 = rows.iter().map(|r| r.int(0).unwrap_or(0)).sum();
    let raised: Decimal = rows.iter().map(|r| decimal_text(r.value(1))).sum();
    let donors: BTreeSet<String> = rows.iter().filter_map(|r| donor_key(r.key(0), r.key(1))).collect();
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
        "donors": donors.len(),
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
    let counted = Counted::new()?;
    let filter = dated(Some(from), Some(to.add_days(1)));
    let key = |query: Aggregate| match group {
        "FUND" => query.group_by("fundId"),
        "CAMPAIGN" => query.group_by("campaignId"),
        _ => query.group_by_bucket("receivedDate", Bucket::Month),
    };
    let totals = counted.aggregate(filter.clone(), |amount| key(Aggregate::new()).count().sum(amount))?;
    let per_donor = aggregate::run(
        "donation",
        &key(Aggregate::new().filter(counted.filter(filter)))
            .group_by("contactId")
            .group_by("companyId")
            .count()
            .limit(100_000),
    )?;
    let mut donors: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for row in &per_donor {
        if let Some(donor) = donor_key(row.key(1), row.key(2)) {
            donors.entry(row.key(0).map(str::to_owned)).or_default().insert(donor);
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
