//! Where members stand, and the programme reports: liability, earn and burn per month, tier
//! distribution, top members, the expiry forecast; the privacy export.

use std::collections::HashMap;

use chrono::{Datelike, TimeZone, Utc};
use kith_plugin_sdk::aggregate::{self, Bucket};
use kith_plugin_sdk::{Error, Record, Result, records};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::ledger;
use crate::members;
use crate::util;

/// Where `member` stands (`LoyaltyStanding`).
pub(crate) fn standing(member: &Record) -> Result<Json> {
    let programme_id = member.str("programmeId").unwrap_or_default();
    let programme = records::get("loyaltyProgramme", programme_id)?
        .ok_or_else(|| Error::msg(format!("the member's programme {programme_id} is gone")))?;
    let now = util::now();
    let days = util::int_setting("expiring_days", 30, 0, 365)?;
    let by = util::stamp(now + chrono::Duration::days(days));
    let valid = ledger::valid_lots(std::slice::from_ref(&member.id), &by)?;
    let expiring = ledger::expiring_by(member, valid.get(&member.id).copied().unwrap_or_default());
    let tiers = members::tiers(&programme.id)?;
    let qualifying = if tiers.is_empty() { 0 } else { members::qualifying_points(member, &programme, now)? };
    let current = member.str("tierId").and_then(|id| tiers.iter().find(|t| t.id == id));
    let floor = current.map(|t| util::int(t, "threshold")).unwrap_or(-1);
    let next = tiers.iter().find(|t| util::int(t, "threshold") > floor);
    Ok(json!({
        "memberId": member.id,
        "number": member.str("number").unwrap_or_default(),
        "programme": members::name(&programme),
        "pointName": programme.str("pointName").unwrap_or("points"),
        "balance": util::int(member, "balance"),
        "lifetimePoints": util::int(member, "lifetimePoints"),
        "expiringSoon": expiring,
        "expiringBy": by,
        "tier": current.and_then(|t| t.str("name")),
        "nextTier": next.and_then(|t| t.str("name")),
        "pointsToNextTier": next.map(|t| (util::int(t, "threshold") - qualifying).max(0)),
        "qualifyingPoints": qualifying,
    }))
}

/// `loyaltyStanding`.
pub(crate) fn standing_of(arguments: &Json) -> Result<Json> {
    let id = util::required(arguments, "memberId")?;
    standing(&util::existing("loyaltyMember", id, "memberId")?)
}

/// `Contact.loyaltyPoints` for a page of contacts: one aggregate.
pub(crate) fn contact_points(ids: &[String]) -> Result<Vec<Json>> {
    let rows = aggregate::run(
        "loyaltyMember",
        &util::aggregate(json!({"contactId": {"in": ids}, "status": "ACTIVE"}))
            .group_by("contactId")
            .sum("balance")
            .limit(100_000),
    )?;
    let sums: HashMap<&str, i64> = rows.iter().filter_map(|r| Some((r.key(0)?, util::int_text(r.value(0))))).collect();
    Ok(ids.iter().map(|id| json!(sums.get(id.as_str()).copied().unwrap_or_default())).collect())
}

/// `Contact.loyaltyStandings` for a page of contacts.
pub(crate) fn contact_standings(ids: &[String]) -> Result<Vec<Json>> {
    let memberships = util::all("loyaltyMember", json!({"contactId": {"in": ids}}), 10_000)?;
    ids.iter()
        .map(|id| {
            let standings: Result<Vec<Json>> =
                memberships.iter().filter(|m| m.str("contactId") == Some(id.as_str())).map(standing).collect();
            standings.map(Json::Array)
        })
        .collect()
}

/// `loyaltyLiability`.
pub(crate) fn liability(arguments: &Json) -> Result<Json> {
    let programmes = match util::optional(arguments, "programmeId") {
        Some(id) => vec![util::existing("loyaltyProgramme", id, "programmeId")?],
        None => util::all("loyaltyProgramme", json!({}), 1_000)?,
    };
    let mut out = Vec::new();
    for programme in programmes {
        let rows = aggregate::run(
            "loyaltyMember",
            &util::aggregate(json!({"programmeId": programme.id})).count().sum("balance"),
        )?;
        let (members, points) =
            rows.first().map(|r| (util::int_text(r.value(0)), util::int_text(r.value(1)))).unwrap_or_default();
        let value = util::decimal(programme.fields.get("pointValue")).unwrap_or_default();
        out.push(json!({
            "programmeId": programme.id,
            "programme": members::name(&programme),
            "members": members,
            "outstandingPoints": points,
            "pointValue": util::money(value),
            "currency": programme.str("pointValueCurrency").unwrap_or_default(),
            "liability": util::money(value * Decimal::from(points)),
        }));
    }
    Ok(Json::Array(out))
}

/// The first day of the month `offset` months from `at`'s.
fn month_start(at: chrono::DateTime<Utc>, offset: i64) -> chrono::DateTime<Utc> {
    let months = i64::from(at.year()) * 12 + i64::from(at.month0()) + offset;
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    Utc.with_ymd_and_hms(i32::try_from(year).unwrap_or(1970), u32::try_from(month0).unwrap_or(0) + 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}

fn months_arg(arguments: &Json, default: i64) -> Result<i64> {
    match arguments.get("months").and_then(Json::as_i64) {
        None => Ok(default),
        Some(m) if (1..=60).contains(&m) => Ok(m),
        Some(_) => Err(Error::invalid("months", "from 1 to 60")),
    }
}

/// `loyaltyEarnAndBurn`: the last `months` months, this one included.
pub(crate) fn earn_and_burn(arguments: &Json) -> Result<Json> {
    let programme = util::existing("loyaltyProgramme", util::required(arguments, "programmeId")?, "programmeId")?;
    let months = months_arg(arguments, 12)?;
    let now = util::now();
    let start = month_start(now, 1 - months);
    let rows = aggregate::run(
        "loyaltyEntry",
        &util::aggregate(json!({"programmeId": programme.id, "createdAt": {"gte": util::stamp(start)}}))
            .group_by_bucket("createdAt", Bucket::Month)
            .group_by("kind")
            .sum("points")
            .limit(1_000),
    )?;
    let mut out = Vec::new();
    for i in 0..months {
        let month = month_start(now, 1 - months + i).format("%Y-%m-%d").to_string();
        let sum = |kind: &str| {
            rows.iter()
                .filter(|r| r.key(0).is_some_and(|k| k.starts_with(&month)) && r.key(1) == Some(kind))
                .map(|r| util::int_text(r.value(0)))
                .sum::<i64>()
        };
        out.push(json!({
            "month": month,
            "earned": sum("EARN"),
            "redeemed": -sum("REDEEM"),
            "expired": -sum("EXPIRE"),
            "adjusted": sum("ADJUST"),
            "reversed": -sum("REVERSE"),
        }));
    }
    Ok(Json::Array(out))
}

/// `loyaltyTierDistribution`.
pub(crate) fn tier_distribution(arguments: &Json) -> Result<Json> {
    let programme = util::existing("loyaltyProgramme", util::required(arguments, "programmeId")?, "programmeId")?;
    let tiers = members::tiers(&programme.id)?;
    let rows = aggregate::run(
        "loyaltyMember",
        &util::aggregate(json!({"programmeId": programme.id, "status": "ACTIVE"})).group_by("tierId").count(),
    )?;
    let count =
        |id: Option<&str>| rows.iter().find(|r| r.key(0) == id).map(|r| util::int_text(r.value(0))).unwrap_or(0);
    let mut out: Vec<Json> =
        tiers.iter().map(|t| json!({"tierId": t.id, "tier": t.str("name"), "members": count(Some(&t.id))})).collect();
    let without = count(None);
    if without > 0 {
        out.insert(0, json!({"tierId": null, "tier": null, "members": without}));
    }
    Ok(Json::Array(out))
}

/// `loyaltyTopMembers`.
pub(crate) fn top_members(arguments: &Json) -> Result<Json> {
    let programme = util::existing("loyaltyProgramme", util::required(arguments, "programmeId")?, "programmeId")?;
    let first = match arguments.get("first").and_then(Json::as_i64) {
        None => 10,
        Some(n) if (1..=100).contains(&n) => n as u32,
        Some(_) => return Err(Error::invalid("first", "from 1 to 100")),
    };
    let page = util::page(
        "loyaltyMember",
        json!({"programmeId": programme.id, "status": "ACTIVE"}),
        first,
        Some(json!([{"field": "balance", "direction": "DESC"}, {"field": "id"}])),
    )?;
    page.records.iter().map(standing).collect::<Result<Vec<_>>>().map(Json::Array)
}

/// `loyaltyExpiryForecast`: for the end of this month and each of the next `months − 1`, the
/// points that will have expired by then unless spent first (the balance beyond the lots
/// still valid then, per member).
pub(crate) fn expiry_forecast(arguments: &Json) -> Result<Json> {
    let programme = util::existing("loyaltyProgramme", util::required(arguments, "programmeId")?, "programmeId")?;
    let months = months_arg(arguments, 6)?;
    let now = util::now();
    let end = month_start(now, months);
    let rows = aggregate::run(
        "loyaltyEntry",
        &util::aggregate(json!({
            "programmeId": programme.id,
            "lot": true,
            "expiresAt": {"gt": util::stamp(now), "lte": util::stamp(end)},
        }))
        .group_by("memberId")
        .group_by_bucket("expiresAt", Bucket::Month)
        .sum("points")
        .limit(100_000),
    )?;
    let mut by_member: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for row in &rows {
        if let (Some(member), Some(month)) = (row.key(0), row.key(1)) {
            by_member
                .entry(member.to_owned())
                .or_default()
                .push((month[..month.len().min(10)].to_owned(), util::int_text(row.value(0))));
        }
    }
    let ids: Vec<String> = by_member.keys().cloned().collect();
    let valid_now = ledger::valid_lots(&ids, &util::stamp(now))?;
    let mut balances: HashMap<String, i64> = HashMap::new();
    for chunk in ids.chunks(200) {
        for member in util::page("loyaltyMember", json!({"id": {"in": chunk}}), 200, None)?.records {
            balances.insert(member.id.clone(), util::int(&member, "balance"));
        }
    }
    let mut out = Vec::new();
    for i in 0..months {
        let month = month_start(now, i).format("%Y-%m-%d").to_string();
        let (mut points, mut members) = (0i64, 0i64);
        for (member, lots) in &by_member {
            let lapsing: i64 = lots.iter().filter(|(m, _)| m.as_str() <= month.as_str()).map(|(_, p)| p).sum();
            let valid = valid_now.get(member).copied().unwrap_or_default() - lapsing;
            let expiring = (balances.get(member).copied().unwrap_or_default() - valid).max(0);
            if expiring > 0 {
                points += expiring;
                members += 1;
            }
        }
        out.push(json!({"month": month, "points": points, "members": members}));
    }
    Ok(Json::Array(out))
}

/// `loyaltyPrivacyExport`: what the plugin holds about a contact.
pub(crate) fn privacy_export(arguments: &Json) -> Result<Json> {
    let contact = util::required(arguments, "contactId")?;
    let memberships = util::all("loyaltyMember", json!({"contactId": contact}), 1_000)?;
    let of = |object: &str| -> Result<Vec<Json>> {
        Ok(util::all(object, json!({"contactId": contact}), 100_000)?
            .into_iter()
            .map(|r| {
                let mut fields = r.fields;
                fields["id"] = json!(r.id);
                fields
            })
            .collect())
    };
    let standings: Result<Vec<Json>> = memberships.iter().map(standing).collect();
    Ok(json!({
        "memberships": standings?,
        "ledger": of("loyaltyEntry")?,
        "redemptions": of("loyaltyRedemption")?,
        "purchases": of("loyaltyPurchase")?,
        "notices": of("loyaltyNotice")?,
    }))
}
