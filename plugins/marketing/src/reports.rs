//! Reports per campaign and sequence step (counted in the database), the gifts a campaign
//! raised (the donors plugin's received gifts with its code), the engagement score, and the
//! privacy export.

use std::collections::HashMap;

use kith_plugin_sdk::aggregate::{self, Aggregate};
use kith_plugin_sdk::{ErrorCode, Record, Result, records};
use serde_json::{Value as Json, json};

use crate::util;

fn count(filter: Json) -> Result<i64> {
    let rows = aggregate::run("emailSend", &Aggregate::new().filter(filter).count())?;
    Ok(rows.first().and_then(|r| r.int(0)).unwrap_or(0))
}

/// The report of the sends matching `scope` (a campaign's, a step's).
fn sends_report(scope: Json) -> Result<Json> {
    let rows = aggregate::run("emailSend", &Aggregate::new().filter(scope.clone()).group_by("status").count())?;
    let by_status: HashMap<String, i64> =
        rows.iter().map(|r| (r.key(0).unwrap_or_default().to_owned(), r.int(0).unwrap_or(0))).collect();
    let status = |s: &str| by_status.get(s).copied().unwrap_or(0);
    let with = |field: &str| {
        let mut set = serde_json::Map::new();
        set.insert(field.to_owned(), json!({"isNull": false}));
        count(json!({"and": [scope.clone(), Json::Object(set)]}))
    };
    let recipients: i64 = by_status.values().sum();
    let sent = with("sentAt")?;
    let delivered = status("SENT") + status("COMPLAINED");
    let unique_opens = with("openedAt")?;
    let unique_clicks = with("clickedAt")?;
    let rate = |n: i64| if delivered > 0 { Some(n as f64 / delivered as f64) } else { None };
    Ok(json!({
        "recipients": recipients,
        "queued": status("QUEUED"),
        "sent": sent,
        "delivered": delivered,
        "failed": status("FAILED"),
        "bounced": status("BOUNCED"),
        "complained": status("COMPLAINED"),
        "uniqueOpens": unique_opens,
        "uniqueClicks": unique_clicks,
        "unsubscribes": with("unsubscribedAt")?,
        "openRate": rate(unique_opens),
        "clickRate": rate(unique_clicks),
        "gifts": null,
        "giftAmount": null,
        "giftCurrency": null,
    }))
}

/// Received gifts with `code` as their source: (count, amount, currency) in the organisation's
/// currency; `None` while the donors plugin is not enabled.
fn gifts_raised(code: &str) -> Result<Option<(i64, String, Option<String>)>> {
    let query = Aggregate::new()
        .filter(json!({"sourceCode": {"eq": code}, "status": {"eq": "RECEIVED"}}))
        .group_by("baseAmountCurrency")
        .count()
        .sum("baseAmount");
    let rows = match aggregate::run("donation", &query) {
        Ok(rows) => rows,
        Err(err) if matches!(err.code, ErrorCode::InvalidInput | ErrorCode::NotFound | ErrorCode::Denied) => {
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    let gifts = rows.iter().map(|r| r.int(0).unwrap_or(0)).sum();
    // One currency: the organisation's (gifts still without a base amount are counted, not summed).
    let main = rows.iter().filter(|r| r.key(0).is_some()).max_by_key(|r| r.int(0).unwrap_or(0));
    let amount = main.and_then(|r| r.value(1)).unwrap_or("0").to_owned();
    Ok(Some((gifts, amount, main.and_then(|r| r.key(0)).map(str::to_owned))))
}

/// `campaignReport` and `EmailCampaign.report`.
pub(crate) fn campaign_report(id: &str) -> Result<Json> {
    let campaign = util::existing("emailCampaign", id, "id")?;
    let mut report = sends_report(json!({"campaignId": {"eq": campaign.id}}))?;
    if let Some(code) = campaign.str("code").filter(|c| !c.is_empty())
        && let Some((gifts, amount, currency)) = gifts_raised(code)?
    {
        report["gifts"] = json!(gifts);
        report["giftAmount"] = json!(amount);
        report["giftCurrency"] = json!(currency);
    }
    Ok(report)
}

/// `sequenceReport`.
pub(crate) fn sequence_report(id: &str) -> Result<Json> {
    let sequence = util::existing("sequence", id, "id")?;
    let rows = aggregate::run(
        "sequenceEnrolment",
        &Aggregate::new().filter(json!({"sequenceId": {"eq": sequence.id}})).group_by("status").count(),
    )?;
    let status = |s: &str| rows.iter().find(|r| r.key(0) == Some(s)).and_then(|r| r.int(0)).unwrap_or(0);
    let mut steps = util::every("sequenceStep", &json!({"sequenceId": {"eq": sequence.id}}), 500)?;
    steps.sort_by_key(|s| util::int_field(s, "position"));
    let mut out = Vec::new();
    for step in steps.iter().filter(|s| s.str("kind") == Some("SEND")) {
        out.push(json!({
            "stepId": step.id,
            "position": util::int_field(step, "position"),
            "kind": step.str("kind"),
            "report": sends_report(json!({"stepId": {"eq": step.id}}))?,
        }));
    }
    Ok(json!({
        "active": status("ACTIVE"),
        "completed": status("COMPLETED"),
        "exited": status("EXITED"),
        "steps": out,
    }))
}

/// Per contact of `ids`: `count` of `object` rows matching `filter` (grouped by `contactId`).
fn per_contact(object: &str, filter: Json) -> Result<HashMap<String, i64>> {
    let rows = match aggregate::run(object, &Aggregate::new().filter(filter).group_by("contactId").count()) {
        Ok(rows) => rows,
        Err(err)
            if object == "donation"
                && matches!(err.code, ErrorCode::InvalidInput | ErrorCode::NotFound | ErrorCode::Denied) =>
        {
            return Ok(HashMap::new());
        }
        Err(err) => return Err(err),
    };
    Ok(rows.iter().filter_map(|r| Some((r.key(0)?.to_owned(), r.int(0).unwrap_or(0)))).collect())
}

/// The engagement scores of a page of contacts: three aggregates for the page.
pub(crate) fn engagement_scores(ids: &[String]) -> Result<Vec<Json>> {
    let days = util::int_setting("engagement_days", 90, 1, 3650)?;
    let since = util::now() - chrono::Duration::days(days);
    let since_text = util::instant(since);
    let opens = per_contact("emailSend", json!({"contactId": {"in": ids}, "openedAt": {"gte": since_text}}))?;
    let clicks = per_contact("emailSend", json!({"contactId": {"in": ids}, "clickedAt": {"gte": since_text}}))?;
    let gifts = per_contact(
        "donation",
        json!({"contactId": {"in": ids}, "status": {"eq": "RECEIVED"}, "receivedDate": {"gte": since.date_naive().to_string()}}),
    )?;
    Ok(ids
        .iter()
        .map(|id| {
            let get = |m: &HashMap<String, i64>| m.get(id).copied().unwrap_or(0);
            json!(score(get(&opens), get(&clicks), get(&gifts)))
        })
        .collect())
}

/// Contacts a run of the `engagement` job scores beyond those who just engaged.
const SCORE_BATCH: usize = 1_000;
/// Who counts as having just engaged: opened, clicked or gave this long ago at most.
const RECENT_MINUTES: i64 = 15;

/// One run of the `engagement` job: the score of each contact who opened, clicked or gave in the
/// last [`RECENT_MINUTES`] is stored where it changed; then up to [`SCORE_BATCH`] contacts not
/// scored today are scored (the day kept in `engagementScoredOn`). Both are custom fields of the
/// contact (declared in the manifest), so segments can filter on the score. Writes nothing once
/// everyone is scored today and the recent scores are stored: the batches then stop.
pub(crate) fn store_scores() -> Result<()> {
    let now = util::now();
    let today = now.date_naive().to_string();
    let since = util::instant(now - chrono::Duration::minutes(RECENT_MINUTES));
    let mut recent: Vec<String> = Vec::new();
    for (object, filter) in [
        ("emailSend", json!({"or": [{"openedAt": {"gte": since}}, {"clickedAt": {"gte": since}}]})),
        ("donation", json!({"status": {"eq": "RECEIVED"}, "createdAt": {"gte": since}})),
    ] {
        recent.extend(per_contact(object, filter)?.into_keys());
    }
    recent.sort();
    recent.dedup();
    let mut updates = Vec::new();
    for chunk in recent.chunks(200) {
        let contacts = util::page("contact", json!({"id": {"in": chunk}}), 200, None)?.records;
        let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
        for (contact, score) in contacts.iter().zip(engagement_scores(&ids)?) {
            let stored = contact.fields.get("customFields").and_then(|c| c.get("engagementScore"));
            if stored.and_then(Json::as_f64) != score.as_f64() {
                updates.push(score_update(&contact.id, &score, &today));
            }
        }
    }
    let stale = json!({"or": [
        {"customFields": {"engagementScoredOn": {"isNull": true}}},
        {"customFields": {"engagementScoredOn": {"lt": today}}},
    ]});
    let mut scored = 0;
    while scored < SCORE_BATCH {
        // Those scored leave the filter: each page starts at the first still stale.
        let page = util::page("contact", stale.clone(), 200, None)?;
        let contacts: Vec<&Record> =
            page.records.iter().filter(|c| !updates.iter().any(|u: &records::Update| u.id == c.id)).collect();
        if contacts.is_empty() {
            break;
        }
        let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
        for (contact, score) in contacts.iter().zip(engagement_scores(&ids)?) {
            updates.push(score_update(&contact.id, &score, &today));
        }
        scored += contacts.len();
        for result in records::update_many("contact", &std::mem::take(&mut updates))? {
            match result {
                // Erased or changed meanwhile: scored on a later run.
                Err(err) if !matches!(err.code, ErrorCode::Conflict | ErrorCode::NotFound) => return Err(err),
                _ => {}
            }
        }
        if page.next_cursor.is_none() {
            break;
        }
    }
    for result in records::update_many("contact", &updates)? {
        match result {
            Err(err) if !matches!(err.code, ErrorCode::Conflict | ErrorCode::NotFound) => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

fn score_update(contact: &str, score: &Json, today: &str) -> records::Update {
    records::Update::new(contact, json!({"customFields": {"engagementScore": score, "engagementScoredOn": today}}))
}

/// 5 points an open, 15 a click, 30 a gift, at most 100.
pub(crate) fn score(opens: i64, clicks: i64, gifts: i64) -> i64 {
    (opens * 5 + clicks * 15 + gifts * 30).clamp(0, 100)
}

/// `marketingPrivacyExport`: what the plugin holds about a person beyond its records that
/// refer to them: a suppression of their address, and their engagement score.
pub(crate) fn privacy_export(arguments: &Json) -> Result<Json> {
    let id = util::required(arguments, "contactId")?;
    let contact = util::existing("contact", id, "contactId")?;
    let suppression = match contact.str("email") {
        Some(email) => util::first("suppression", json!({"email": {"eq": util::normal_email(email)}}))?
            .map(|s| json!({"email": s.str("email"), "reason": s.str("reason"), "since": s.str("createdAt")})),
        None => None,
    };
    let score = engagement_scores(std::slice::from_ref(&contact.id))?.into_iter().next().unwrap_or(json!(0));
    Ok(json!({"suppression": suppression, "engagementScore": score}))
}
