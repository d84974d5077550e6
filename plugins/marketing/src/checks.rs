//! The before-write checks: templates render, campaigns move only through their mutations,
//! sequences and steps say all they need, suppressed addresses are kept normalised. The
//! plugin's own writes pass.

use kith_plugin_sdk::{Change, Operation, Verdict};
use serde_json::{Map, Value as Json, json};

use crate::template;
use crate::util;

const SELF: &str = "plugin:marketing";

/// Campaign fields only the plugin writes.
const CAMPAIGN_INTERNAL: &[&str] =
    &["status", "cursor", "recipients", "skipped", "startedAt", "finishedAt", "scheduledAt"];

pub(crate) fn check(change: &Change) -> Verdict {
    if change.actor == SELF || change.operation == Operation::Delete && change.object != "emailCampaign" {
        return Verdict::Allow;
    }
    let result = match change.object.as_str() {
        "emailTemplate" => check_template(change),
        "emailCampaign" => check_campaign(change),
        "sequence" => check_sequence(change),
        "sequenceStep" => check_step(change),
        "suppression" => check_suppression(change),
        _ => Ok(None),
    };
    match result {
        Ok(None) => Verdict::Allow,
        Ok(Some(patch)) => Verdict::Modify(patch),
        Err(reason) => Verdict::Deny(reason),
    }
}

type Checked = Result<Option<Map<String, Json>>, String>;

fn text<'a>(change: &'a Change, field: &str) -> Option<&'a str> {
    change.after.get(field).and_then(Json::as_str).filter(|t| !t.trim().is_empty())
}

fn changed(change: &Change, field: &str) -> bool {
    let before = change.before.as_ref().and_then(|b| b.get(field)).unwrap_or(&Json::Null);
    change.after.get(field).unwrap_or(&Json::Null) != before
}

fn check_template(change: &Change) -> Checked {
    for field in ["subject", "html", "text"] {
        if let Some(body) = text(change, field) {
            template::check(body).map_err(|e| format!("{field}: {e}"))?;
        }
    }
    if text(change, "html").is_none() && text(change, "text").is_none() {
        return Err("a template needs an HTML or a text body".into());
    }
    Ok(None)
}

/// `Spring appeal 2026` → `SPRING-APPEAL-2026`.
pub(crate) fn code_from(name: &str) -> String {
    let mut code = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            code.push(c.to_ascii_uppercase());
        } else if !code.is_empty() && !code.ends_with('-') {
            code.push('-');
        }
    }
    code.trim_end_matches('-').chars().take(40).collect()
}

fn check_campaign(change: &Change) -> Checked {
    let status = change.before.as_ref().and_then(|b| b.get("status")).and_then(Json::as_str).unwrap_or("DRAFT");
    match change.operation {
        Operation::Delete if status == "SENDING" => {
            return Err("the campaign is going out: cancel it first (`cancelCampaign`)".into());
        }
        Operation::Delete => return Ok(None),
        Operation::Create if text(change, "status").is_some_and(|s| s != "DRAFT") => {
            return Err("a campaign starts as a DRAFT: schedule it with `scheduleCampaign`".into());
        }
        Operation::Update => {
            if let Some(field) = CAMPAIGN_INTERNAL.iter().find(|f| changed(change, f)) {
                return Err(format!("`{field}` moves with `scheduleCampaign` and `cancelCampaign`, not by hand"));
            }
            if status != "DRAFT"
                && let Some(field) = ["templateId", "segmentId", "code"].iter().find(|f| changed(change, f))
            {
                return Err(format!("the campaign is {status}: its `{field}` can no longer change"));
            }
        }
        _ => {}
    }
    if let Some(segment) = text(change, "segmentId") {
        crate::campaigns::segment_filter(segment).map_err(|e| e.message)?;
    }
    let mut patch = Map::new();
    if change.operation == Operation::Create {
        patch.insert("status".into(), json!("DRAFT"));
        patch.insert("recipients".into(), json!(0));
        patch.insert("skipped".into(), json!(0));
    }
    match text(change, "code") {
        Some(code) if code != code_from(code) => {
            patch.insert("code".into(), json!(code_from(code)));
        }
        None if change.operation == Operation::Create => {
            patch.insert("code".into(), json!(code_from(text(change, "name").unwrap_or("campaign"))));
        }
        _ => {}
    }
    Ok((!patch.is_empty()).then_some(patch))
}

fn check_sequence(change: &Change) -> Checked {
    let trigger = text(change, "trigger").unwrap_or("MANUAL");
    if trigger == "SEGMENT" {
        let segment = text(change, "segmentId").ok_or("a SEGMENT sequence needs its `segmentId`")?;
        crate::campaigns::segment_filter(segment).map_err(|e| e.message)?;
    }
    if changed(change, "cursor") || changed(change, "scannedAt") {
        return Err("`cursor` and `scannedAt` are the plugin's own".into());
    }
    if change.operation == Operation::Create && text(change, "status").is_none() {
        let mut patch = Map::new();
        patch.insert("status".into(), json!("ACTIVE"));
        return Ok(Some(patch));
    }
    Ok(None)
}

/// Whether Kith takes `filter` over contacts (it answers a query with it).
fn check_condition(condition: Option<&Json>) -> Result<(), String> {
    let condition = condition.filter(|c| !c.is_null()).ok_or("needs its `condition` (a filter on the contact)")?;
    util::page("contact", condition.clone(), 1, None).map(|_| ()).map_err(|e| format!("condition: {}", e.message))
}

fn check_step(change: &Change) -> Checked {
    let kind = text(change, "kind").unwrap_or_default();
    let number = |field: &str| change.after.get(field).and_then(Json::as_i64);
    match kind {
        "WAIT" => {
            let (days, hours) = (number("waitDays").unwrap_or(0), number("waitHours").unwrap_or(0));
            if days < 0 || hours < 0 || days + hours == 0 {
                return Err("a WAIT step waits `waitDays` and/or `waitHours` (more than 0 in all)".into());
            }
        }
        "WAIT_UNTIL" => {
            let time = text(change, "timeOfDay").ok_or("a WAIT_UNTIL step needs `timeOfDay` (HH:MM)")?;
            chrono::NaiveTime::parse_from_str(time.trim(), "%H:%M")
                .map_err(|_| format!("`{time}` is not a time of day (HH:MM, 24-hour)"))?;
        }
        "SEND" => {
            text(change, "templateId").ok_or("a SEND step needs its `templateId`")?;
        }
        "BRANCH" if text(change, "branchOn").unwrap_or("CONDITION") == "CONDITION" => {
            check_condition(change.after.get("condition")).map_err(|e| format!("a BRANCH step {e}"))?;
        }
        "EXIT_IF" => check_condition(change.after.get("condition")).map_err(|e| format!("an EXIT_IF step {e}"))?,
        "SET_FIELD" => {
            let field = text(change, "field").ok_or("a SET_FIELD step needs the contact's `field`")?;
            if ["id", "email", "createdAt", "updatedAt", "deletedAt", "version"].contains(&field) {
                return Err(format!("a sequence may not set the contact's `{field}`"));
            }
            let mut probe = Map::new();
            probe.insert(field.to_owned(), json!({"isNull": true}));
            util::page("contact", Json::Object(probe), 1, None)
                .map_err(|_| format!("contacts have no field `{field}`"))?;
        }
        "TASK" => {
            text(change, "taskSubject").ok_or("a TASK step needs its `taskSubject`")?;
        }
        "ADD_TAG" | "REMOVE_TAG" => {
            let tag = text(change, "value").ok_or(format!("an {kind} step needs the tag's name in `value`"))?;
            if tag.trim().is_empty() || tag.chars().count() > 64 {
                return Err(format!("`{tag}` is not a tag name (1 to 64 characters)"));
            }
        }
        _ => {}
    }
    Ok(None)
}

fn check_suppression(change: &Change) -> Checked {
    let mut patch = Map::new();
    if let Some(email) = text(change, "email")
        && email != util::normal_email(email)
    {
        patch.insert("email".into(), json!(util::normal_email(email)));
    }
    Ok((!patch.is_empty()).then_some(patch))
}
