//! Who may be mailed, the suppression list, queueing a send, and what became of it.

use std::collections::{HashMap, HashSet};

use kith_plugin_sdk::{Error, ErrorCode, Event, Record, Result, mail, records};
use serde_json::{Value as Json, json};

use crate::compose::{self, Purpose, Sender};
use crate::template::Context;
use crate::util;

/// Contacts marketing may reach: e-mail opt-in, not do-not-contact, with an address.
pub(crate) fn consent_filter() -> Json {
    json!({"and": [
        {"emailOptIn": {"eq": true}},
        {"or": [{"doNotContact": {"isNull": true}}, {"doNotContact": {"eq": false}}]},
        {"email": {"isNull": false}},
    ]})
}

/// Whether a contact (as a record's fields) may receive marketing now.
pub(crate) fn may_mail(contact: &Json) -> bool {
    contact.get("emailOptIn").and_then(Json::as_bool) == Some(true)
        && contact.get("doNotContact").and_then(Json::as_bool) != Some(true)
        && contact.get("email").and_then(Json::as_str).is_some_and(|e| !e.trim().is_empty())
        && contact.get("deletedAt").is_none_or(Json::is_null)
}

/// The addresses of `emails` on the suppression list (normalised).
pub(crate) fn suppressed(emails: &[String]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let normal: Vec<String> = emails.iter().map(|e| util::normal_email(e)).collect();
    for chunk in normal.chunks(200) {
        let page = util::page("suppression", json!({"email": {"in": chunk}}), 200, None)?;
        out.extend(page.records.iter().filter_map(|r| r.str("email")).map(util::normal_email));
    }
    Ok(out)
}

/// Whether one address is suppressed.
pub(crate) fn is_suppressed(email: &str) -> Result<bool> {
    Ok(!suppressed(&[email.to_owned()])?.is_empty())
}

/// Where a send comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    Campaign(&'a Record),
    Step { sequence: &'a str, step: &'a str, enrolment: &'a str, round: i64 },
}

/// Queues `template` to `contact` ([`queue_many`] of one).
pub(crate) fn queue(
    sender: &Sender,
    template: &Record,
    contact: &Record,
    origin: Origin<'_>,
) -> Result<Option<Record>> {
    Ok(queue_many(sender, template, &[(contact, origin)])?.pop().flatten())
}

/// Queues `template` to each contact: the send records (each key unique: `CAMPAIGN:CONTACT` or
/// `STEP:ENROLMENT:ROUND`) and the messages, in the caller's transaction, with a few bulk calls
/// for all of them. The caller checked consent and suppression. Per contact, in order: the send,
/// or `None` when the contact had it already (the key exists). A message Kith refuses (an
/// address it cannot use) leaves its send FAILED with the reason instead of holding up the rest.
pub(crate) fn queue_many(
    sender: &Sender,
    template: &Record,
    items: &[(&Record, Origin<'_>)],
) -> Result<Vec<Option<Record>>> {
    let mut fields = Vec::with_capacity(items.len());
    let mut campaigns = Vec::with_capacity(items.len());
    for (contact, origin) in items {
        let email = contact.str("email").ok_or_else(|| Error::invalid("email", "the contact has no e-mail address"))?;
        let campaign = match origin {
            Origin::Campaign(c) => Some(json!({"name": c.str("name"), "code": c.str("code")})),
            Origin::Step { .. } => None,
        };
        let context = Context {
            contact: contact.fields.clone(),
            campaign: campaign.clone(),
            unsubscribe_url: String::new(),
            postal_address: sender.postal_address.clone(),
        };
        let subject = compose::subject(template, &context);
        let mut send = json!({
            "contactId": contact.id,
            "email": email,
            "status": "QUEUED",
            "subject": subject,
        });
        match origin {
            Origin::Campaign(c) => {
                send["key"] = json!(format!("{}:{}", c.id, contact.id));
                send["campaignId"] = json!(c.id);
            }
            Origin::Step { sequence, step, enrolment, round } => {
                send["key"] = json!(format!("{step}:{enrolment}:{round}"));
                send["sequenceId"] = json!(sequence);
                send["stepId"] = json!(step);
            }
        }
        fields.push(send);
        campaigns.push(campaign);
    }
    let mut sends = Vec::with_capacity(items.len());
    let mut messages = Vec::new();
    for ((result, (contact, _)), campaign) in
        records::create_many("emailSend", &fields)?.into_iter().zip(items).zip(&campaigns)
    {
        match result {
            Ok(send) => {
                let email = send.str("email").unwrap_or_default().to_owned();
                let purpose = Purpose::Send(&send.id);
                messages.push(compose::message(sender, template, &contact.fields, campaign.as_ref(), purpose, &email)?);
                sends.push(Some(send));
            }
            Err(err) if err.code == ErrorCode::Conflict => sends.push(None),
            Err(err) => return Err(err),
        }
    }
    let mut refused = Vec::new();
    for (result, send) in mail::send_many(&messages)?.into_iter().zip(sends.iter().flatten()) {
        match result {
            Ok(_) => {}
            Err(err) if matches!(err.code, ErrorCode::InvalidInput | ErrorCode::Denied) => refused.push(
                records::Update::new(&send.id, json!({"status": "FAILED", "error": util::clip(&err.message, 500)}))
                    .expected_version(send.version),
            ),
            Err(err) => return Err(err),
        }
    }
    for result in records::update_many("emailSend", &refused)? {
        result?;
    }
    Ok(sends)
}

/// `mail.sent` / `mail.failed` for messages of sends: each send's status (read together,
/// written with one bulk update), an activity on the contact's timeline for each sent (one bulk
/// create); a permanent refusal suppresses the address (a hard bounce). A send whose version
/// moved meanwhile (a click on it, say) is read again and updated alone.
pub(crate) fn on_outcomes(events: &[&Event]) -> Result<()> {
    let reference = |e: &Event| {
        e.payload.get("reference").and_then(Json::as_str).and_then(|r| r.strip_prefix("send:")).map(str::to_owned)
    };
    let ids: Vec<String> = events.iter().filter_map(|e| reference(e)).collect();
    let mut stored: HashMap<String, Record> = HashMap::new();
    for chunk in ids.chunks(200) {
        // Erased with their contacts since: nothing to record.
        for send in util::page("emailSend", json!({"id": {"in": chunk}}), 200, None)?.records {
            stored.insert(send.id.clone(), send);
        }
    }
    let mut updates = Vec::new();
    let mut activities = Vec::new();
    let mut bounced = Vec::new();
    for event in events {
        let Some(send) = reference(event).and_then(|id| stored.remove(&id)) else { continue };
        if send.str("status") != Some("QUEUED") {
            continue;
        }
        let payload = &event.payload;
        let at = if event.occurred_at.is_empty() { kith_plugin_sdk::now() } else { event.occurred_at.clone() };
        let changes = if event.kind == "mail.sent" {
            activities.push(json!({
                "kind": "EMAIL",
                "subject": format!("E-mail sent: {}", send.str("subject").unwrap_or_default()),
                "contactId": send.str("contactId"),
                "occurredAt": at,
            }));
            json!({"status": "SENT", "sentAt": at, "messageId": payload.get("messageId")})
        } else {
            let error = payload.get("error").and_then(Json::as_str).unwrap_or("the relay refused it");
            let permanent = payload.get("permanent").and_then(Json::as_bool) == Some(true);
            if permanent {
                bounced.push((send.clone(), error.to_owned()));
            }
            json!({"status": if permanent { "BOUNCED" } else { "FAILED" }, "error": error})
        };
        updates.push((send, changes));
    }
    let bulk: Vec<records::Update> = updates
        .iter()
        .map(|(send, changes)| records::Update::new(&send.id, changes.clone()).expected_version(send.version))
        .collect();
    for (result, (send, changes)) in records::update_many("emailSend", &bulk)?.into_iter().zip(&updates) {
        match result {
            Ok(_) => {}
            Err(err) if err.code == ErrorCode::Conflict => {
                util::update_fresh("emailSend", &send.id, |_| Some(changes.clone()))?;
            }
            Err(err) if err.code == ErrorCode::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    for result in records::create_many("activity", &activities)? {
        result?;
    }
    for (send, error) in bounced {
        if let Some(email) = send.str("email") {
            suppress(email, "HARD_BOUNCE", send.str("contactId"), Some(&error))?;
        }
    }
    Ok(())
}

/// Puts `email` on the suppression list (kept as it is when there already).
pub(crate) fn suppress(email: &str, reason: &str, contact: Option<&str>, detail: Option<&str>) -> Result<Record> {
    let email = util::normal_email(email);
    if let Some(existing) = util::first("suppression", json!({"email": {"eq": email}}))? {
        return Ok(existing);
    }
    let contact = match contact {
        Some(id) => Some(id.to_owned()),
        None => util::first("contact", json!({"email": {"eq": email}}))?.map(|c| c.id),
    };
    let detail: Option<String> = detail.map(|d| d.chars().take(500).collect());
    records::create("suppression", &json!({"email": email, "reason": reason, "contactId": contact, "detail": detail}))
}

/// `suppressEmail`.
pub(crate) fn suppress_call(arguments: &Json) -> Result<Json> {
    let email = util::required(arguments, "email")?;
    if !email.contains('@') {
        return Err(Error::invalid("email", format!("`{email}` is not an e-mail address")));
    }
    let detail = arguments.get("detail").and_then(Json::as_str);
    Ok(json!(suppress(email, "MANUAL", None, detail)?.id))
}

/// The send a signed link names (`s`), if it still exists.
pub(crate) fn send_of(params: &[(String, String)]) -> Result<Option<Record>> {
    match params.iter().find(|(k, _)| k == "s") {
        Some((_, id)) => match records::get("emailSend", id) {
            Ok(found) => Ok(found),
            Err(err) if err.code == ErrorCode::InvalidInput => Ok(None),
            Err(err) => Err(err),
        },
        None => Ok(None),
    }
}
