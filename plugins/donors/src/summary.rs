//! Computed fields: `Contact.donorSummary`, `Household.giving`, `Pledge.progress`, each for a
//! whole page with a few aggregates (never a query per record). Giving (hard credit) and soft
//! credits are in the organisation's currency (see `counted`); recognition adds them up.

use std::collections::{BTreeMap, BTreeSet};

use kith_plugin_sdk::aggregate::{self, Aggregate, Bucket};
use kith_plugin_sdk::{Record, Result};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::counted::Counted;
use crate::util::{Date, decimal_text, level_for, money};

/// What a donor gave, per year.
#[derive(Debug, Default, Clone)]
pub(crate) struct Giving {
    /// Year → (gifts, total).
    pub years: BTreeMap<i32, (i64, Decimal)>,
    /// First and last gift dates.
    pub first: Option<String>,
    pub last: Option<String>,
    /// The largest gift.
    pub largest: Option<Decimal>,
}

impl Giving {
    fn lifetime(&self) -> Decimal {
        self.years.values().map(|(_, total)| *total).sum()
    }

    fn count(&self) -> i64 {
        self.years.values().map(|(n, _)| *n).sum()
    }

    fn year(&self, year: i32) -> Decimal {
        self.years.get(&year).map(|(_, total)| *total).unwrap_or_default()
    }

    /// FEEP status in `year`.
    pub(crate) fn status(&self, year: i32) -> Option<&'static str> {
        let this = self.years.contains_key(&year);
        let last = self.years.contains_key(&(year - 1));
        let before = self.years.keys().any(|y| *y < year - 1);
        match (this, last, before) {
            (true, true, _) => Some("RETAINED"),
            (true, false, true) => Some("RECOVERED"),
            (true, false, false) => Some("NEW"),
            (false, true, _) => Some("LAPSED"),
            (false, false, true) => Some("INACTIVE"),
            (false, false, false) => None,
        }
    }
}

/// Received gifts of `donors` (contact ids) in the organisation's currency, per donor, up to
/// the end of `until_year`.
pub(crate) fn giving_of(counted: &Counted, donors: &[String], until_year: i32) -> Result<BTreeMap<String, Giving>> {
    // A filter's `in` takes at most 500 values: ask in chunks.
    let mut out = BTreeMap::new();
    for chunk in donors.chunks(500) {
        out.extend(giving_of_chunk(counted, chunk, until_year)?);
    }
    Ok(out)
}

fn giving_of_chunk(counted: &Counted, donors: &[String], until_year: i32) -> Result<BTreeMap<String, Giving>> {
    let filter = json!({
        "contactId": {"in": donors},
        "receivedDate": {"lt": Date::new_year(until_year + 1).to_string()},
    });
    let rows = counted.aggregate(filter, |amount| {
        Aggregate::new()
            .group_by("contactId")
            .group_by_bucket("receivedDate", Bucket::Year)
            .count()
            .sum(amount)
            .min("receivedDate")
            .max("receivedDate")
            .max(amount)
            .limit(100_000)
    })?;
    let mut out: BTreeMap<String, Giving> = BTreeMap::new();
    for row in rows {
        let (Some(donor), Some(year)) = (row.key(0), row.key(1).and_then(Date::parse)) else { continue };
        let giving = out.entry(donor.to_owned()).or_default();
        giving.years.insert(year.year, (row.int(0).unwrap_or(0), decimal_text(row.value(1))));
        if let Some(first) = row.value(2)
            && giving.first.as_deref().is_none_or(|f| first < f)
        {
            giving.first = Some(first.to_owned());
        }
        if let Some(last) = row.value(3)
            && giving.last.as_deref().is_none_or(|l| last > l)
        {
            giving.last = Some(last.to_owned());
        }
        let largest = decimal_text(row.value(4));
        if giving.largest.is_none_or(|l| largest > l) {
            giving.largest = Some(largest);
        }
    }
    Ok(out)
}

/// Soft credits of `contacts` on counted gifts up to the end of `until_year`, per contact and
/// year, in the organisation's currency. A contact is credited once per gift (the largest of
/// their credits on it), and never on a gift they gave themselves: their giving counts it.
pub(crate) fn soft_credits_of(
    counted: &Counted,
    contacts: &[String],
    until_year: i32,
) -> Result<BTreeMap<String, BTreeMap<i32, Decimal>>> {
    let mut credits = Vec::new();
    for chunk in contacts.chunks(500) {
        credits.extend(crate::util::all("softCredit", json!({"contactId": {"in": chunk}}), 100_000)?);
    }
    let gift_ids: Vec<&str> =
        credits.iter().filter_map(|c| c.str("donationId")).collect::<BTreeSet<_>>().into_iter().collect();
    let until = Date::new_year(until_year + 1).to_string();
    let mut gifts: BTreeMap<String, Record> = BTreeMap::new();
    for chunk in gift_ids.chunks(200) {
        let filter = counted.filter(json!({"id": {"in": chunk}, "receivedDate": {"lt": until}}));
        gifts.extend(crate::util::all("donation", filter, 200)?.into_iter().map(|g| (g.id.clone(), g)));
    }
    let mut best: BTreeMap<(&str, &str), (i32, Decimal)> = BTreeMap::new();
    for credit in &credits {
        let (Some(contact), Some(gift)) =
            (credit.str("contactId"), credit.str("donationId").and_then(|id| gifts.get(id)))
        else {
            continue;
        };
        if gift.str("contactId") == Some(contact) {
            continue;
        }
        let (Some(value), Some(date)) =
            (counted.credit_value(credit, gift), gift.str("receivedDate").and_then(Date::parse))
        else {
            continue;
        };
        let entry = best.entry((contact, gift.id.as_str())).or_insert((date.year, value));
        entry.1 = entry.1.max(value);
    }
    let mut out: BTreeMap<String, BTreeMap<i32, Decimal>> = BTreeMap::new();
    for ((contact, _), (year, value)) in best {
        *out.entry(contact.to_owned()).or_default().entry(year).or_default() += value;
    }
    Ok(out)
}

/// `Contact.donorSummary` for a page of contacts.
pub(crate) fn donor_summaries(ids: &[String]) -> Result<Vec<Json>> {
    let counted = Counted::new()?;
    let year = Date::today().year;
    let giving = giving_of(&counted, ids, year)?;
    let soft = soft_credits_of(&counted, ids, year)?;
    ids.iter()
        .map(|id| {
            let credited = soft.get(id);
            let soft_in = |y: i32| credited.and_then(|years| years.get(&y)).copied().unwrap_or_default();
            let soft_lifetime: Decimal = credited.map(|years| years.values().sum()).unwrap_or_default();
            let empty = Giving::default();
            let g = match giving.get(id) {
                Some(g) => g,
                None if credited.is_some() => &empty,
                None => return Ok(Json::Null),
            };
            let lifetime = g.lifetime();
            Ok(json!({
                "currency": counted.org,
                "lifetimeGiving": money(lifetime),
                "giftCount": g.count(),
                "firstGiftDate": g.first,
                "lastGiftDate": g.last,
                "largestGift": g.largest.map(money),
                "givingThisYear": money(g.year(year)),
                "givingLastYear": money(g.year(year - 1)),
                "softCredits": money(soft_lifetime),
                "recognitionTotal": money(lifetime + soft_lifetime),
                "recognitionThisYear": money(g.year(year) + soft_in(year)),
                "recognitionLastYear": money(g.year(year - 1) + soft_in(year - 1)),
                "level": level_for(lifetime)?,
                "status": g.status(year),
            }))
        })
        .collect()
}

/// `Household.giving` for a page of households.
pub(crate) fn household_giving(ids: &[String]) -> Result<Vec<Json>> {
    let mut members = Vec::new();
    for chunk in ids.chunks(500) {
        members.extend(crate::util::all("householdMember", json!({"householdId": {"in": chunk}}), 100_000)?);
    }
    let mut by_household: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for member in &members {
        if let (Some(household), Some(contact)) = (member.str("householdId"), member.str("contactId")) {
            by_household.entry(household).or_default().push(contact.to_owned());
        }
    }
    let contacts: Vec<String> = by_household.values().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let year = Date::today().year;
    // Hard credit only: members' soft credits on each other's gifts would count a gift twice.
    let giving = if contacts.is_empty() { BTreeMap::new() } else { giving_of(&Counted::new()?, &contacts, year)? };
    Ok(ids
        .iter()
        .map(|id| {
            let people = by_household.get(id.as_str()).cloned().unwrap_or_default();
            let (mut lifetime, mut this, mut last, mut count) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, 0);
            for person in &people {
                if let Some(g) = giving.get(person) {
                    lifetime += g.lifetime();
                    this += g.year(year);
                    last += g.year(year - 1);
                    count += g.count();
                }
            }
            json!({"members": people.len(), "lifetimeGiving": money(lifetime), "givingThisYear": money(this),
                   "givingLastYear": money(last), "giftCount": count})
        })
        .collect())
}

/// `Pledge.progress` for a page of pledges.
pub(crate) fn pledge_progress(ids: &[String]) -> Result<Vec<Json>> {
    let pledges = crate::util::all("pledge", json!({"id": {"in": ids}}), ids.len())?;
    let rows = aggregate::run(
        "donation",
        &Aggregate::new()
            .filter(json!({"pledgeId": {"in": ids}}))
            .group_by("pledgeId")
            .group_by("status")
            .count()
            .sum("amount"),
    )?;
    let today = Date::today().to_string();
    let due = aggregate::run(
        "donation",
        &Aggregate::new()
            .filter(json!({"pledgeId": {"in": ids}, "status": {"eq": "PLEDGED"}, "receivedDate": {"lte": today}}))
            .group_by("pledgeId")
            .count(),
    )?;
    Ok(ids
        .iter()
        .map(|id| {
            let total = pledges
                .iter()
                .find(|p| &p.id == id)
                .and_then(|p| crate::util::decimal(p.fields.get("total")))
                .unwrap_or_default();
            let received = rows.iter().find(|r| r.key(0) == Some(id.as_str()) && r.key(1) == Some("RECEIVED"));
            let paid = received.map(|r| decimal_text(r.value(1))).unwrap_or_default();
            let count = received.and_then(|r| r.int(0)).unwrap_or(0);
            let due_now = due.iter().find(|r| r.key(0) == Some(id.as_str())).and_then(|r| r.int(0)).unwrap_or(0);
            json!({"paid": money(paid), "balance": money((total - paid).max(Decimal::ZERO)), "installmentsPaid": count,
                   "installmentsDue": due_now})
        })
        .collect())
}
