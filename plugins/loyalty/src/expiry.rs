//! Expiry and its notices, by the daily `expiry` job (or `expirePoints` at once).
//!
//! A sweep fixes its instant (`through`) and walks the members with lots that expired since
//! the last sweep (`expiredThrough`), a batch per transaction, in member order; its place is
//! the programme's `expiryCursor` (`THROUGH|MEMBER`), so a crash resumes it. A member loses
//! what their balance holds beyond their lots still valid at `through` (see `ledger`), once
//! per sweep (the entry's key names both). Then the notices: members whose points would
//! expire within `expiring_days` get a `loyaltyNotice` (once per member and first expiry day)
//! and the contact's custom field `loyaltyPointsExpiring`.

use kith_plugin_sdk::aggregate;
use kith_plugin_sdk::{ErrorCode, Record, Result, records};
use serde_json::{Value as Json, json};

use crate::ledger::{self, Debit, Draft};
use crate::members;
use crate::util;

const BEGINNING: &str = "1970-01-01T00:00:00.000000Z";

/// What one step of a sweep did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) expired: i64,
    pub(crate) wrote: bool,
}

/// One run of the `expiry` job: a step of each programme's sweep. Whether it wrote.
pub(crate) fn run_job() -> Result<bool> {
    let batch = util::int_setting("batch_size", 500, 50, 2000)? as u32;
    let mut wrote = false;
    for programme in members::active_programmes()? {
        wrote |= step(&programme, batch)?.wrote;
    }
    Ok(wrote)
}

/// `expirePoints`: the programme's sweep to its end, now. The points expired.
pub(crate) fn expire_now(programme_id: &str) -> Result<i64> {
    let mut total = 0;
    for _ in 0..10_000 {
        let programme = members::active_programme(programme_id, "programmeId")?;
        let step = step(&programme, 500)?;
        total += step.expired;
        if !step.wrote {
            break;
        }
    }
    Ok(total)
}

fn parse_cursor(programme: &Record) -> Option<(String, String)> {
    let cursor = programme.str("expiryCursor")?;
    let (through, after) = cursor.split_once('|')?;
    Some((through.to_owned(), after.to_owned()))
}

/// One batch of the programme's sweep (expiries, then notices).
pub(crate) fn step(programme: &Record, batch: u32) -> Result<Step> {
    let now = util::now();
    let cursor = parse_cursor(programme);
    let (through, after) = match &cursor {
        Some((through, after)) => (through.clone(), Some(after.clone())),
        None => (util::stamp(now), None),
    };
    let from = programme.str("expiredThrough").unwrap_or(BEGINNING).to_owned();
    let mut filter = json!({"programmeId": programme.id, "lot": true, "expiresAt": {"gt": from, "lte": through}});
    if let Some(after) = &after {
        filter["memberId"] = json!({"gt": after});
    }
    let rows = aggregate::run(
        "loyaltyEntry",
        &util::aggregate(filter).group_by("memberId").count().limit(batch.clamp(1, 2000)),
    )?;
    let ids: Vec<String> = rows.iter().filter_map(|r| r.key(0).map(str::to_owned)).collect();
    if ids.is_empty() {
        // The sweep is over: mark it, and send the notices.
        let mut step = Step::default();
        let stale = util::parse_time(&from).is_none_or(|f| now - f > chrono::Duration::hours(20));
        if cursor.is_some() || stale {
            update_programme(&programme.id, &json!({"expiredThrough": through, "expiryCursor": null}))?;
            step.wrote = true;
        }
        step.wrote |= notices(programme, batch)?;
        return Ok(step);
    }
    let mut expired = 0;
    let valid = ledger::valid_lots(&ids, &through)?;
    for chunk in ids.chunks(200) {
        let page = util::page("loyaltyMember", json!({"id": {"in": chunk}}), 200, None)?;
        let mut contacts = Vec::new();
        for member in &page.records {
            let expiring = ledger::expiring_by(member, valid.get(&member.id).copied().unwrap_or_default());
            if expiring <= 0 {
                continue;
            }
            let draft = Draft::new(
                "EXPIRE",
                -expiring,
                format!("expire:{}:{through}", member.id),
                format!("expired by {}", &through[..through.len().min(10)]),
                "job:expiry",
            );
            let posted = ledger::post_as(member, &draft, Debit::UpToBalance)?;
            expired -= posted.points;
            if let Some(contact) = member.str("contactId") {
                contacts.push(records::Update::new(contact, json!({"customFields": {"loyaltyPointsExpiring": 0}})));
            }
        }
        // What a notice said would expire has: the contacts' field back to 0, in one call (a
        // contact deleted meanwhile is skipped).
        for outcome in records::update_many("contact", &contacts)? {
            match outcome {
                Err(err) if err.code != ErrorCode::NotFound => return Err(err),
                _ => {}
            }
        }
    }
    let last = ids.last().cloned().unwrap_or_default();
    update_programme(&programme.id, &json!({"expiryCursor": format!("{through}|{last}")}))?;
    Ok(Step { expired, wrote: true })
}

/// Writes `changes` to a programme, reading it again after a concurrent write.
fn update_programme(id: &str, changes: &Json) -> Result<()> {
    for _ in 0..10 {
        let current = util::existing("loyaltyProgramme", id, "programmeId")?;
        match records::update("loyaltyProgramme", id, changes, Some(current.version)) {
            Ok(_) => return Ok(()),
            Err(err) if err.code == ErrorCode::Conflict => continue,
            Err(err) => return Err(err),
        }
    }
    Err(kith_plugin_sdk::Error::new(ErrorCode::Conflict, "the programme kept changing meanwhile"))
}

/// Sets a contact's `loyaltyPointsExpiring` (a contact gone meanwhile is skipped).
fn set_expiring(contact: &str, points: i64) -> Result<()> {
    match records::update("contact", contact, &json!({"customFields": {"loyaltyPointsExpiring": points}}), None) {
        Ok(_) => Ok(()),
        Err(err) if err.code == ErrorCode::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Notices for up to `batch` members whose points would expire within `expiring_days` and who
/// were not told of that expiry day yet. Whether it wrote.
fn notices(programme: &Record, batch: u32) -> Result<bool> {
    let days = util::int_setting("expiring_days", 30, 0, 365)?;
    if days == 0 {
        return Ok(false);
    }
    let now = util::now();
    let horizon = util::stamp(now + chrono::Duration::days(days));
    // Members with lots expiring in the horizon, with their first such expiry.
    let rows = aggregate::run(
        "loyaltyEntry",
        &util::aggregate(json!({
            "programmeId": programme.id,
            "lot": true,
            "points": {"gt": 0},
            "expiresAt": {"gt": util::stamp(now), "lte": horizon},
        }))
        .group_by("memberId")
        .min("expiresAt")
        .limit(100_000),
    )?;
    let mut due: Vec<(String, String)> =
        rows.iter().filter_map(|r| Some((r.key(0)?.to_owned(), r.value(0)?.to_owned()))).collect();
    if due.is_empty() {
        return Ok(false);
    }
    // Those already told about that day.
    let keys: Vec<String> = due.iter().map(|(m, at)| notice_key(m, at)).collect();
    let mut told = std::collections::HashSet::new();
    for chunk in keys.chunks(200) {
        for notice in util::all("loyaltyNotice", json!({"key": {"in": chunk}}), 200)? {
            told.insert(notice.str("key").unwrap_or_default().to_owned());
        }
    }
    due.retain(|(m, at)| !told.contains(&notice_key(m, at)));
    due.truncate(batch as usize);
    if due.is_empty() {
        return Ok(false);
    }
    let ids: Vec<String> = due.iter().map(|(m, _)| m.clone()).collect();
    let valid = ledger::valid_lots(&ids, &horizon)?;
    let mut wrote = false;
    for chunk in due.chunks(200) {
        let ids: Vec<&str> = chunk.iter().map(|(m, _)| m.as_str()).collect();
        let members = util::page("loyaltyMember", json!({"id": {"in": ids}}), 200, None)?.records;
        for (member_id, first) in chunk {
            let Some(member) = members.iter().find(|m| &m.id == member_id) else { continue };
            let points = ledger::expiring_by(member, valid.get(member_id).copied().unwrap_or_default());
            // Nothing would expire (spent already): still noted, so it is not looked at again.
            let notice = json!({
                "key": notice_key(member_id, first),
                "memberId": member_id,
                "contactId": member.str("contactId"),
                "points": points,
                "expiresAt": first,
            });
            match records::create("loyaltyNotice", &notice) {
                Ok(_) => wrote = true,
                Err(err) if err.code == ErrorCode::Conflict => continue,
                Err(err) => return Err(err),
            }
            if points > 0
                && let Some(contact) = member.str("contactId")
            {
                set_expiring(contact, points)?;
            }
        }
    }
    Ok(wrote)
}

fn notice_key(member: &str, first_expiry: &str) -> String {
    format!("{member}:{}", &first_expiry[..first_expiry.len().min(10)])
}
