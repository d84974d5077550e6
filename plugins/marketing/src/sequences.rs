//! Sequences: enrolment (by hand, by event, by entering a segment, by a received gift of the
//! donors plugin) and the `sequences` job, which runs the due steps of enrolments a batch per
//! transaction.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use kith_plugin_sdk::{Error, ErrorCode, Event, Query, Record, Result, records};
use serde_json::{Value as Json, json};

use crate::compose::Sender;
use crate::sends::{self, Origin};
use crate::util;

/// Steps one enrolment may run in one go (a branch cannot loop for ever).
const MAX_STEPS_AT_ONCE: usize = 25;
/// Segment members looked at per run for each sequence triggered by a segment.
const SCAN_PER_RUN: u32 = 1_000;
/// A segment scanned in full is scanned again after this long.
const RESCAN_AFTER_SECONDS: i64 = 60;

fn enrolment_key(sequence: &str, contact: &str) -> String {
    format!("{sequence}:{contact}")
}

/// The steps of a sequence, by position.
fn steps(sequence: &str) -> Result<Vec<Record>> {
    let mut steps = util::every("sequenceStep", &json!({"sequenceId": {"eq": sequence}}), 500)?;
    steps.sort_by_key(|s| util::int_field(s, "position"));
    Ok(steps)
}

/// Enrols `contact` in `sequence` (ACTIVE) at its first step, now. `None` when they are in it,
/// or finished it and it does not re-enrol.
pub(crate) fn enrol(sequence: &Record, contact: &str, steps: &[Record]) -> Result<Option<Record>> {
    let key = enrolment_key(&sequence.id, contact);
    let first = steps.first().map_or(0, |s| util::int_field(s, "position"));
    let now = kith_plugin_sdk::now();
    if let Some(existing) = util::first("sequenceEnrolment", json!({"key": {"eq": key}}))? {
        let again = existing.str("status") != Some("ACTIVE")
            && sequence.fields.get("reenrol").and_then(Json::as_bool) == Some(true);
        if !again {
            return Ok(None);
        }
        let round = util::int_field(&existing, "round").max(1) + 1;
        let fields = json!({"status": "ACTIVE", "position": first, "nextAt": now, "lastSendId": null, "exitReason": null, "round": round});
        return records::update("sequenceEnrolment", &existing.id, &fields, Some(existing.version)).map(Some);
    }
    let fields = json!({
        "key": key, "sequenceId": sequence.id, "contactId": contact, "status": "ACTIVE", "position": first, "nextAt": now,
        "round": 1,
    });
    match records::create("sequenceEnrolment", &fields) {
        Ok(record) => Ok(Some(record)),
        Err(err) if err.code == ErrorCode::Conflict => Ok(None),
        Err(err) => Err(err),
    }
}

/// `enrolInSequence`.
pub(crate) fn enrol_call(arguments: &Json) -> Result<Json> {
    let sequence = util::existing("sequence", util::required(arguments, "sequenceId")?, "sequenceId")?;
    let contact = util::existing("contact", util::required(arguments, "contactId")?, "contactId")?;
    if sequence.str("status") != Some("ACTIVE") {
        return Err(Error::invalid("sequenceId", "the sequence is paused"));
    }
    match enrol(&sequence, &contact.id, &steps(&sequence.id)?)? {
        Some(enrolment) => Ok(json!(enrolment.id)),
        None => Err(Error::new(
            ErrorCode::Conflict,
            "the contact is in the sequence, or went through it and it does not re-enrol",
        )),
    }
}

/// `exitSequence`.
pub(crate) fn exit_call(arguments: &Json) -> Result<Json> {
    let sequence = util::required(arguments, "sequenceId")?;
    let contact = util::required(arguments, "contactId")?;
    let key = enrolment_key(sequence, contact);
    let Some(enrolment) = util::first("sequenceEnrolment", json!({"key": {"eq": key}, "status": {"eq": "ACTIVE"}}))?
    else {
        return Err(Error::new(ErrorCode::NotFound, "the contact is not in the sequence"));
    };
    let fields = json!({"status": "EXITED", "exitReason": "taken out by hand", "nextAt": null});
    records::update("sequenceEnrolment", &enrolment.id, &fields, Some(enrolment.version))?;
    Ok(json!(enrolment.id))
}

fn active_with_trigger(trigger: &str) -> Result<Vec<Record>> {
    util::every("sequence", &json!({"trigger": {"eq": trigger}, "status": {"eq": "ACTIVE"}}), 200)
}

/// A new contact enters the CONTACT_CREATED sequences.
pub(crate) fn on_contact_created(event: &Event) -> Result<()> {
    let Some(contact) = event.record_id.as_deref() else { return Ok(()) };
    for sequence in active_with_trigger("CONTACT_CREATED")? {
        enrol(&sequence, contact, &steps(&sequence.id)?)?;
    }
    Ok(())
}

/// A deal's contact enters the DEAL_STAGE_CHANGED sequences of the stage it entered.
pub(crate) fn on_stage_changed(event: &Event) -> Result<()> {
    let Some(contact) = event.record_str("contactId") else { return Ok(()) };
    let stage = event.payload.get("toStageId").and_then(Json::as_str).or_else(|| event.record_str("stageId"));
    for sequence in active_with_trigger("DEAL_STAGE_CHANGED")? {
        let wanted = sequence.str("stageId");
        if wanted.is_none() || wanted == stage {
            enrol(&sequence, contact, &steps(&sequence.id)?)?;
        }
    }
    Ok(())
}

/// One run of the `sequences` job: new members of trigger segments and new received gifts
/// enrolled, then up to `batch_size` due enrolments moved on. Writes nothing when there is
/// nothing to do.
pub(crate) fn run_batch() -> Result<()> {
    let now = util::now();
    for sequence in active_with_trigger("SEGMENT")? {
        scan_segment(&sequence, now)?;
    }
    for sequence in active_with_trigger("GIFT_RECEIVED")? {
        scan_gifts(&sequence)?;
    }
    let batch = util::int_setting("batch_size", 500, 50, 2000)? as usize;
    run_due(now, batch)
}

/// Looks at the next members of the sequence's segment and enrols those not enrolled yet; a
/// full pass ends with the cursor cleared and `scannedAt` set, and the next starts a minute on.
fn scan_segment(sequence: &Record, now: DateTime<Utc>) -> Result<()> {
    let cursor = sequence.str("cursor").filter(|c| !c.is_empty());
    let scanned = sequence.str("scannedAt").and_then(util::parse_instant);
    if cursor.is_none() && scanned.is_some_and(|at| now - at < Duration::seconds(RESCAN_AFTER_SECONDS)) {
        return Ok(());
    }
    let Some(segment) = sequence.str("segmentId") else { return Ok(()) };
    let filter = crate::campaigns::segment_filter(segment)?;
    let filter = match cursor {
        Some(last) => json!({"and": [filter, {"id": {"gt": last}}]}),
        None => filter,
    };
    let steps = steps(&sequence.id)?;
    let mut seen = 0;
    let mut last: Option<String> = None;
    let mut after: Option<String> = None;
    while seen < SCAN_PER_RUN {
        let page = util::page("contact", filter.clone(), 200, after.as_deref())?;
        seen += page.records.len() as u32;
        let keys: Vec<String> = page.records.iter().map(|c| enrolment_key(&sequence.id, &c.id)).collect();
        let enrolled: std::collections::HashSet<String> =
            util::every("sequenceEnrolment", &json!({"key": {"in": keys}}), 200)?
                .iter()
                .filter_map(|e| e.str("key").map(str::to_owned))
                .collect();
        for contact in &page.records {
            if !enrolled.contains(&enrolment_key(&sequence.id, &contact.id)) {
                enrol(sequence, &contact.id, &steps)?;
            }
            last = Some(contact.id.clone());
        }
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => {
                // A full pass: start again from the first member a minute on.
                last = None;
                break;
            }
        }
    }
    let fields = match &last {
        Some(id) => json!({"cursor": id}),
        None => json!({"cursor": null, "scannedAt": util::instant(now)}),
    };
    records::update("sequence", &sequence.id, &fields, None)?;
    Ok(())
}

/// Enrols the donors of received gifts made since the sequence last looked (the donors plugin's
/// `donation` records; nothing while that plugin is not enabled).
fn scan_gifts(sequence: &Record) -> Result<()> {
    let mut filter = json!({"status": {"eq": "RECEIVED"}, "contactId": {"isNull": false}});
    match sequence.str("cursor").filter(|c| !c.is_empty()) {
        Some(last) => filter["id"] = json!({"gt": last}),
        // A new sequence starts with the gifts from its creation on.
        None => {
            filter["createdAt"] = json!({"gte": sequence.str("createdAt")});
        }
    }
    let page = match util::page("donation", filter, 200, None) {
        Ok(page) => page,
        Err(err) if matches!(err.code, ErrorCode::InvalidInput | ErrorCode::NotFound | ErrorCode::Denied) => {
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    let Some(last) = page.records.last().map(|g| g.id.clone()) else { return Ok(()) };
    let steps = steps(&sequence.id)?;
    for gift in &page.records {
        if let Some(contact) = gift.str("contactId") {
            enrol(sequence, contact, &steps)?;
        }
    }
    records::update("sequence", &sequence.id, &json!({"cursor": last}), None)?;
    Ok(())
}

/// Moves due enrolments on, up to `batch`: a page at a time, their contacts read together and
/// where each now stands written with one bulk update. An enrolment changed meanwhile (taken out
/// by hand, say) keeps that change: its update is refused for its version, and it is left alone.
fn run_due(now: DateTime<Utc>, batch: usize) -> Result<()> {
    let due = json!({"status": {"eq": "ACTIVE"}, "nextAt": {"lte": util::instant(now)}});
    let mut sequences: HashMap<String, Option<(Record, Vec<Record>)>> = HashMap::new();
    let mut sender: Option<Sender> = None;
    let mut done = 0;
    while done < batch {
        // The soonest due first, through the index on `(status, nextAt)`: those moved on are
        // past `now` and out of the range, so each page starts where the last one ended.
        let query = Query::new()
            .filter(due.clone())
            .order_by(json!([{"field": "nextAt"}, {"field": "id"}]))
            .first((batch - done).clamp(1, 200) as u32);
        let page = records::query("sequenceEnrolment", &query)?;
        done += page.records.len();
        for enrolment in &page.records {
            let sequence_id = enrolment.str("sequenceId").unwrap_or_default().to_owned();
            if let std::collections::hash_map::Entry::Vacant(slot) = sequences.entry(sequence_id) {
                let loaded = match records::get("sequence", slot.key())? {
                    Some(sequence) => {
                        let steps = steps(&sequence.id)?;
                        Some((sequence, steps))
                    }
                    None => None,
                };
                slot.insert(loaded);
            }
        }
        // The contacts the due steps need, in one query: none for an enrolment at a WAIT.
        let contact_ids: Vec<&str> = page
            .records
            .iter()
            .filter(|e| match sequences.get(e.str("sequenceId").unwrap_or_default()) {
                Some(Some((_, steps))) => current_step(e, steps).is_some_and(|s| s.str("kind") != Some("WAIT")),
                _ => false,
            })
            .filter_map(|e| e.str("contactId"))
            .collect();
        let contacts: HashMap<String, Record> = if contact_ids.is_empty() {
            HashMap::new()
        } else {
            util::page("contact", json!({"id": {"in": contact_ids}}), 200, None)?
                .records
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect()
        };
        let mut saves = Vec::with_capacity(page.records.len());
        for enrolment in &page.records {
            let sequence_id = enrolment.str("sequenceId").unwrap_or_default();
            let save = match sequences.get(sequence_id) {
                Some(Some((sequence, steps))) if sequence.str("status") == Some("ACTIVE") => {
                    let contact = enrolment.str("contactId").and_then(|id| contacts.get(id));
                    advance(enrolment, contact, sequence, steps, now, &mut sender)?
                }
                // A paused sequence moves nobody on: look again in an hour.
                Some(Some(_)) => json!({"nextAt": util::instant(now + Duration::hours(1))}),
                _ => json!({"status": "EXITED", "exitReason": "the sequence is gone", "nextAt": null}),
            };
            saves.push(records::Update::new(&enrolment.id, save).expected_version(enrolment.version));
        }
        for result in records::update_many("sequenceEnrolment", &saves)? {
            match result {
                Ok(_) => {}
                Err(err) if matches!(err.code, ErrorCode::Conflict | ErrorCode::NotFound) => {}
                Err(err) => return Err(err),
            }
        }
        if page.next_cursor.is_none() || page.records.is_empty() {
            break;
        }
        // The enrolments moved on no longer match: the next page starts at the first again.
    }
    Ok(())
}

/// The step an enrolment is at: the one at its position, or the first after it (when that one
/// was deleted); `None` past the last.
fn current_step<'a>(enrolment: &Record, steps: &'a [Record]) -> Option<&'a Record> {
    let position = util::int_field(enrolment, "position");
    steps.iter().find(|s| util::int_field(s, "position") >= position)
}

/// Where an enrolment stands after running its due steps.
struct Progress {
    position: i64,
    next_at: Option<DateTime<Utc>>,
    status: &'static str,
    exit_reason: Option<String>,
    last_send: Option<String>,
}

/// Runs the due steps of one enrolment, up to the next wait or the end; returns where it now
/// stands, for the caller to save.
fn advance(
    enrolment: &Record,
    contact: Option<&Record>,
    sequence: &Record,
    steps: &[Record],
    now: DateTime<Utc>,
    sender: &mut Option<Sender>,
) -> Result<Json> {
    let mut progress = Progress {
        position: util::int_field(enrolment, "position"),
        next_at: None,
        status: "ACTIVE",
        exit_reason: None,
        last_send: enrolment.str("lastSendId").map(str::to_owned),
    };
    // A WAIT (or the end) needs no contact: the caller reads none for it.
    let unread;
    let contact = match contact {
        Some(contact) => contact,
        None if current_step(enrolment, steps).is_none_or(|s| s.str("kind") == Some("WAIT")) => {
            unread = Record::new("contact", "", 0, json!({}));
            &unread
        }
        None => {
            progress.status = "EXITED";
            progress.exit_reason = Some("the contact is gone".into());
            return Ok(saved(enrolment, &progress));
        }
    };
    // The step at `position` (or the first after it, when it was deleted).
    let step_at = |position: i64| steps.iter().find(|s| util::int_field(s, "position") >= position);
    let next_after = |position: i64| {
        steps.iter().map(|s| util::int_field(s, "position")).find(|p| *p > position).unwrap_or(i64::MAX)
    };
    for _ in 0..MAX_STEPS_AT_ONCE {
        let Some(step) = step_at(progress.position) else {
            progress.status = "COMPLETED";
            break;
        };
        let position = util::int_field(step, "position");
        let next = next_after(position);
        match step.str("kind").unwrap_or_default() {
            "WAIT" => {
                let wait = Duration::days(util::int_field(step, "waitDays"))
                    + Duration::hours(util::int_field(step, "waitHours"));
                progress.position = next;
                progress.next_at = Some(now + wait.max(Duration::zero()));
                break;
            }
            "WAIT_UNTIL" => {
                progress.position = next;
                progress.next_at = Some(next_local_time(now, step, contact)?);
                break;
            }
            "SEND" => {
                if let Some(template) =
                    step.str("templateId").map(|id| util::existing("emailTemplate", id, "templateId")).transpose()?
                {
                    let reachable = sends::may_mail(&contact.fields)
                        && !sends::is_suppressed(contact.str("email").unwrap_or_default())?;
                    if reachable {
                        if sender.is_none() {
                            *sender = Some(Sender::load()?);
                        }
                        if let Some(sender) = sender.as_ref() {
                            let origin = Origin::Step {
                                sequence: &sequence.id,
                                step: &step.id,
                                enrolment: &enrolment.id,
                                round: util::int_field(enrolment, "round").max(1),
                            };
                            if let Some(send) = sends::queue(sender, &template, contact, origin)? {
                                progress.last_send = Some(send.id);
                            }
                        }
                    }
                }
                progress.position = next;
            }
            "BRANCH" => {
                let holds = match step.str("branchOn").unwrap_or("CONDITION") {
                    "OPENED" => last_send_has(progress.last_send.as_deref(), "openedAt")?,
                    "CLICKED" => last_send_has(progress.last_send.as_deref(), "clickedAt")?,
                    _ => contact_matches(&contact.id, step.fields.get("condition"))?,
                };
                progress.position = if holds {
                    next
                } else {
                    step.fields.get("elsePosition").and_then(Json::as_i64).unwrap_or(i64::MAX)
                };
            }
            "SET_FIELD" => {
                if let Some(field) = step.str("field").filter(|f| !f.is_empty()) {
                    let value = typed_value(step.str("value"));
                    let mut changes = serde_json::Map::new();
                    changes.insert(field.to_owned(), value);
                    records::update("contact", &contact.id, &Json::Object(changes), None)?;
                }
                progress.position = next;
            }
            "ADD_TAG" | "REMOVE_TAG" => {
                if let Some(tag) = step.str("value").map(str::trim).filter(|t| !t.is_empty()) {
                    let edit = if step.str("kind") == Some("ADD_TAG") { "addTags" } else { "removeTags" };
                    let mut changes = serde_json::Map::new();
                    changes.insert(edit.to_owned(), json!([tag]));
                    records::update("contact", &contact.id, &Json::Object(changes), None)?;
                }
                progress.position = next;
            }
            "TASK" => {
                let due = now + Duration::days(util::int_field(step, "waitDays"));
                records::create(
                    "activity",
                    &json!({
                        "kind": "TASK",
                        "subject": step.str("taskSubject").filter(|s| !s.is_empty()).unwrap_or("Follow up"),
                        "contactId": contact.id,
                        "ownerId": contact.str("ownerId"),
                        "dueAt": util::instant(due),
                    }),
                )?;
                progress.position = next;
            }
            "EXIT_IF" => {
                if contact_matches(&contact.id, step.fields.get("condition"))? {
                    progress.status = "EXITED";
                    progress.exit_reason = Some(format!("goal reached (step {position})"));
                    break;
                }
                progress.position = next;
            }
            other => {
                progress.status = "EXITED";
                progress.exit_reason = Some(format!("unknown step kind `{other}`"));
                break;
            }
        }
    }
    if progress.status == "ACTIVE" && progress.next_at.is_none() {
        // Stopped by the step cap: the rest on the next run.
        progress.next_at = Some(now);
    }
    Ok(saved(enrolment, &progress))
}

/// The fields that record where an enrolment stands.
fn saved(enrolment: &Record, progress: &Progress) -> Json {
    let position =
        if progress.position == i64::MAX { util::int_field(enrolment, "position") } else { progress.position };
    json!({
        "status": progress.status,
        "position": position,
        "nextAt": if progress.status == "ACTIVE" { progress.next_at.map(util::instant) } else { None },
        "exitReason": progress.exit_reason,
        "lastSendId": progress.last_send,
    })
}

fn last_send_has(send: Option<&str>, field: &str) -> Result<bool> {
    let Some(id) = send else { return Ok(false) };
    Ok(records::get("emailSend", id)?.is_some_and(|s| s.fields.get(field).is_some_and(|v| !v.is_null())))
}

/// Whether the contact matches a filter (Kith evaluates it, as for a segment).
fn contact_matches(contact: &str, condition: Option<&Json>) -> Result<bool> {
    let condition = condition.cloned().unwrap_or(Json::Null);
    let filter = json!({"and": [{"id": {"eq": contact}}, condition]});
    Ok(util::first("contact", filter)?.is_some())
}

/// A step's value as the contact's field takes it: `true`, `false`, numbers and JSON as such,
/// empty as null, anything else as text.
fn typed_value(value: Option<&str>) -> Json {
    match value.map(str::trim) {
        None | Some("") => Json::Null,
        Some(text) => match serde_json::from_str::<Json>(text) {
            Ok(v @ (Json::Bool(_) | Json::Number(_))) => v,
            _ => json!(text),
        },
    }
}

/// The first moment after `now` on the step's weekday (any day when empty) at its time of day
/// in the contact's time zone (`timeZone` on the contact, else the `time_zone` setting).
fn next_local_time(now: DateTime<Utc>, step: &Record, contact: &Record) -> Result<DateTime<Utc>> {
    let zone_name = contact
        .str("timeZone")
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .map_or_else(|| util::text_setting("time_zone"), Ok)?;
    let zone: chrono_tz::Tz = zone_name.parse().unwrap_or(chrono_tz::UTC);
    let time =
        step.str("timeOfDay").and_then(|t| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok()).unwrap_or(NaiveTime::MIN);
    let weekday = step.str("weekday").and_then(|w| w.parse::<chrono::Weekday>().ok());
    let today = now.with_timezone(&zone).date_naive();
    for offset in 0..8 {
        let day = today + Duration::days(offset);
        if weekday.is_some_and(|w| day.weekday() != w) {
            continue;
        }
        // A time skipped by a clock change: the first valid moment after it.
        let local = zone
            .from_local_datetime(&day.and_time(time))
            .earliest()
            .or_else(|| zone.from_local_datetime(&(day.and_time(time) + Duration::hours(1))).earliest());
        if let Some(at) = local.map(|t| t.with_timezone(&Utc)).filter(|at| *at > now) {
            return Ok(at);
        }
    }
    Ok(now + Duration::days(1))
}
