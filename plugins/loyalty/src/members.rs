//! Programmes, members and tiers: enrolment (by mutation, by rule, by import), member numbers
//! and referral codes, tier upgrades at once and reviews at the end of the window.

use kith_plugin_sdk::aggregate;
use kith_plugin_sdk::{Error, ErrorCode, Record, Result, records};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use crate::util;

/// An active programme, or an error naming `argument`.
pub(crate) fn active_programme(id: &str, argument: &str) -> Result<Record> {
    let programme = util::existing("loyaltyProgramme", id, argument)?;
    if programme.str("status").unwrap_or("ACTIVE") != "ACTIVE" {
        return Err(Error::invalid(argument, format!("the programme `{}` is closed", name(&programme))));
    }
    Ok(programme)
}

/// The programme `programmeId` names, or the only active one when it is left out.
pub(crate) fn programme_arg(arguments: &Json) -> Result<Record> {
    if let Some(id) = util::optional(arguments, "programmeId") {
        return active_programme(id, "programmeId");
    }
    let page = util::page("loyaltyProgramme", json!({"status": {"neq": "CLOSED"}}), 2, None)?;
    match page.records.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::invalid("programmeId", "there is no active loyalty programme")),
        _ => Err(Error::invalid("programmeId", "there are several programmes: say which one")),
    }
}

/// Every active programme.
pub(crate) fn active_programmes() -> Result<Vec<Record>> {
    util::all("loyaltyProgramme", json!({"status": {"neq": "CLOSED"}}), 1_000)
}

/// A programme's name.
pub(crate) fn name(programme: &Record) -> String {
    programme.str("name").unwrap_or_default().to_owned()
}

/// A programme's tier qualification window, in months.
pub(crate) fn window_months(programme: &Record) -> i64 {
    match util::int(programme, "qualificationMonths") {
        m if m > 0 => m,
        _ => 12,
    }
}

/// A programme's tiers, lowest threshold first.
pub(crate) fn tiers(programme_id: &str) -> Result<Vec<Record>> {
    let mut tiers = util::all("loyaltyTier", json!({"programmeId": programme_id}), 100)?;
    tiers.sort_by_key(|t| util::int(t, "threshold"));
    Ok(tiers)
}

/// The highest tier `points` reach.
pub(crate) fn tier_for(tiers: &[Record], points: i64) -> Option<&Record> {
    tiers.iter().rfind(|t| util::int(t, "threshold") <= points)
}

/// The earning multiplier of a member's tier among `tiers` (1 without one).
pub(crate) fn tier_multiplier(tiers: &[Record], member: &Record) -> Decimal {
    let tier = member.str("tierId").and_then(|id| tiers.iter().find(|t| t.id == id));
    tier.and_then(|t| util::decimal(t.fields.get("multiplier"))).filter(|m| *m > Decimal::ZERO).unwrap_or(Decimal::ONE)
}

/// The earning multiplier of a member's tier (1 without one).
pub(crate) fn multiplier(member: &Record) -> Result<Decimal> {
    let Some(tier) = member.str("tierId") else { return Ok(Decimal::ONE) };
    let tier = records::get("loyaltyTier", tier)?;
    Ok(tier
        .and_then(|t| util::decimal(t.fields.get("multiplier")))
        .filter(|m| *m > Decimal::ZERO)
        .unwrap_or(Decimal::ONE))
}

fn member_key(programme_id: &str, contact_id: &str) -> String {
    format!("{programme_id}:{contact_id}")
}

/// The membership of `contact_id` in `programme_id`, if any.
pub(crate) fn membership(programme_id: &str, contact_id: &str) -> Result<Option<Record>> {
    util::first("loyaltyMember", json!({"memberKey": member_key(programme_id, contact_id)}))
}

/// The contact's membership, enrolling them when the programme enrols on first earn.
pub(crate) fn member_for_earning(programme: &Record, contact_id: &str) -> Result<Option<Record>> {
    if let Some(member) = membership(&programme.id, contact_id)? {
        return Ok(Some(member));
    }
    if !util::flag(programme, "autoEnrol", true) {
        return Ok(None);
    }
    enrol(programme, contact_id, None).map(Some)
}

/// The fields a new member starts with (numbers, codes, counters, the entry tier), for a
/// contact of `programme`; `referred_by`: the referring member's id.
pub(crate) fn new_member_fields(
    programme: &Record,
    contact_id: &str,
    referred_by: Option<&str>,
) -> Result<Map<String, Json>> {
    let now = util::now();
    let code = programme.str("code").unwrap_or("M");
    let tiers = tiers(&programme.id)?;
    let entry_tier = tier_for(&tiers, 0);
    let mut fields = Map::new();
    fields.insert("programmeId".into(), json!(programme.id));
    fields.insert("contactId".into(), json!(contact_id));
    fields.insert("memberKey".into(), json!(member_key(&programme.id, contact_id)));
    fields.insert("number".into(), json!(format!("{code}-{}", util::code(8))));
    fields.insert("referralCode".into(), json!(util::code(8)));
    fields.insert("status".into(), json!("ACTIVE"));
    for counter in ["balance", "lifetimePoints", "redeemedPoints", "expiredPoints"] {
        fields.insert(counter.into(), json!(0));
    }
    fields.insert("referralRewarded".into(), json!(false));
    fields.insert("enrolledAt".into(), json!(util::stamp(now)));
    fields.insert("referredById".into(), json!(referred_by));
    if let Some(tier) = entry_tier {
        fields.insert("tierId".into(), json!(tier.id));
    }
    if !tiers.is_empty() {
        fields.insert("tierSince".into(), json!(util::stamp(now)));
        fields.insert("tierReviewAt".into(), json!(util::stamp(util::add_months(now, window_months(programme)))));
    }
    Ok(fields)
}

/// The member `code` refers to in `programme`, or an error naming `referralCode`.
pub(crate) fn referrer(programme: &Record, code: &str) -> Result<Record> {
    let code = code.trim().to_ascii_uppercase();
    util::first("loyaltyMember", json!({"programmeId": programme.id, "referralCode": code}))?.ok_or_else(|| {
        Error::invalid("referralCode", format!("no member of `{}` has the referral code {code}", name(programme)))
    })
}

/// Enrols `contact_id` in `programme` (the existing membership when there is one).
pub(crate) fn enrol(programme: &Record, contact_id: &str, referral_code: Option<&str>) -> Result<Record> {
    util::existing("contact", contact_id, "contactId")?;
    if let Some(member) = membership(&programme.id, contact_id)? {
        return Ok(member);
    }
    let referred_by = match referral_code {
        Some(code) => {
            let referrer = referrer(programme, code)?;
            if referrer.str("contactId") == Some(contact_id) {
                return Err(Error::invalid("referralCode", "a member cannot refer themselves"));
            }
            Some(referrer.id)
        }
        None => None,
    };
    for _ in 0..3 {
        let fields = new_member_fields(programme, contact_id, referred_by.as_deref())?;
        match records::create("loyaltyMember", &Json::Object(fields)) {
            Ok(member) => return Ok(member),
            // Enrolled meanwhile by another call, or (rarely) a number already taken.
            Err(err) if err.code == ErrorCode::Conflict => {
                if let Some(member) = membership(&programme.id, contact_id)? {
                    return Ok(member);
                }
            }
            Err(err) => return Err(err),
        }
    }
    Err(Error::new(ErrorCode::Conflict, "could not enrol the contact: try again"))
}

/// Points a member earned within the programme's window ending `at` (less their reversals).
pub(crate) fn qualifying_points(member: &Record, programme: &Record, at: chrono::DateTime<chrono::Utc>) -> Result<i64> {
    let from = util::stamp(util::sub_months(at, window_months(programme)));
    let rows = aggregate::run(
        "loyaltyEntry",
        &util::aggregate(json!({"memberId": member.id, "qualifying": true, "createdAt": {"gte": from}})).sum("points"),
    )?;
    Ok(rows.first().map(|row| util::int_text(row.value(0))).unwrap_or_default())
}

/// After points were earned: moves the member up at once if their qualifying points reach a
/// higher tier (a downgrade waits for the end of the window).
pub(crate) fn upgrade_if_due(member: &Record, programme: &Record) -> Result<()> {
    let tiers = tiers(&programme.id)?;
    if tiers.is_empty() {
        return Ok(());
    }
    let qualifying = qualifying_points(member, programme, util::now())?;
    upgrade_to(member, programme, &tiers, qualifying).map(|_| ())
}

/// Moves `member` up to the tier `qualifying` points reach among `tiers`, if that is higher
/// than theirs; the member as it is then.
pub(crate) fn upgrade_to(member: &Record, programme: &Record, tiers: &[Record], qualifying: i64) -> Result<Record> {
    let Some(best) = tier_for(tiers, qualifying) else { return Ok(member.clone()) };
    let current = member.str("tierId").and_then(|id| tiers.iter().find(|t| t.id == id));
    if current.is_some_and(|c| util::int(c, "threshold") >= util::int(best, "threshold")) {
        return Ok(member.clone());
    }
    move_tier(member, programme, current.map(|c| c.id.as_str()), Some(best), qualifying, "UPGRADE", util::now())
}

/// Moves `member` to `to` (recording the change) and starts a new window.
fn move_tier(
    member: &Record,
    programme: &Record,
    from: Option<&str>,
    to: Option<&Record>,
    qualifying: i64,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Record> {
    let review = util::stamp(util::add_months(now, window_months(programme)));
    let mut changes = json!({"tierReviewAt": review});
    if reason != "RENEWED" {
        changes["tierId"] = json!(to.map(|t| t.id.clone()));
        changes["tierSince"] = json!(util::stamp(now));
    }
    let updated = update_member(&member.id, &changes)?;
    if reason != "RENEWED" {
        records::create(
            "loyaltyTierChange",
            &json!({
                "memberId": member.id,
                "fromTierId": from,
                "toTierId": to.map(|t| t.id.clone()),
                "qualifyingPoints": qualifying,
                "reason": reason,
            }),
        )?;
    }
    Ok(updated)
}

/// Writes `changes` to a member, reading it again after a concurrent write.
pub(crate) fn update_member(id: &str, changes: &Json) -> Result<Record> {
    for _ in 0..25 {
        let current = util::existing("loyaltyMember", id, "memberId")?;
        match records::update("loyaltyMember", id, changes, Some(current.version)) {
            Ok(updated) => return Ok(updated),
            Err(err) if err.code == ErrorCode::Conflict => continue,
            Err(err) => return Err(err),
        }
    }
    Err(Error::new(ErrorCode::Conflict, "the member kept changing meanwhile; try again"))
}

/// Reviews up to `batch` members of `programme` whose window ended by `now`: each moves to
/// the tier its qualifying points reach (down, or up) and starts a new window. Returns how
/// many were reviewed and how many moved.
pub(crate) fn review(programme: &Record, now: chrono::DateTime<chrono::Utc>, batch: u32) -> Result<(usize, usize)> {
    let tiers = tiers(&programme.id)?;
    if tiers.is_empty() {
        return Ok((0, 0));
    }
    let due = util::page(
        "loyaltyMember",
        json!({"programmeId": programme.id, "status": "ACTIVE", "tierReviewAt": {"lte": util::stamp(now)}}),
        batch.clamp(1, 200),
        Some(json!([{"field": "tierReviewAt"}, {"field": "id"}])),
    )?;
    let mut moved = 0;
    for member in &due.records {
        let qualifying = qualifying_points(member, programme, now)?;
        let best = tier_for(&tiers, qualifying);
        let current = member.str("tierId");
        let threshold = |id: Option<&str>| {
            id.and_then(|id| tiers.iter().find(|t| t.id == id)).map(|t| util::int(t, "threshold")).unwrap_or(-1)
        };
        let (from, to) = (threshold(current), best.map(|b| util::int(b, "threshold")).unwrap_or(-1));
        let reason = match to.cmp(&from) {
            std::cmp::Ordering::Less => "DOWNGRADE",
            std::cmp::Ordering::Greater => "UPGRADE",
            std::cmp::Ordering::Equal => "RENEWED",
        };
        if reason != "RENEWED" {
            moved += 1;
        }
        move_tier(member, programme, current, best, qualifying, reason, now)?;
    }
    Ok((due.records.len(), moved))
}
