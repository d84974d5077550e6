//! Who may be mailed, the suppression list, queueing a send, and what became of it.

use std::collections::HashSet;

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

/// Queues `template` to `contact`: the send record (its key unique: `CAMPAIGN:CONTACT` or
/// `STEP:ENROLMENT:ROUND`) and the message, in the caller's transaction. The caller checked consent
/// and suppression. `None` when the contact had it already (the key exists).
pub(crate) fn queue(
    sender: &Sender,
    template: &Record,
    contact: &Record,
    origin: Origin<'_>,
) -> Result<Option<Record>> {
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
    let (subject, _, _) = compose::render(template, &context);
    let mut fields = json!({
        "contactId": contact.id,
        "email": email,
        "status": "QUEUED",
        "subject": subject,
    });
    match origin {
        Origin::Campaign(c) => {
            fields["key"] = json!(format!("{}:{}", c.id, contact.id));
            fields["campaignId"] = json!(c.id);
        }
        Origin::Step { sequence, step, enrolment, round } => {
            fields["key"] = json!(format!("{step}:{enrolment}:{round}"));
            fields["sequenceId"] = json!(sequence);
            fields["stepId"] = json!(step);
        }
    }
    let send = match records::create("emailSend", &fields) {
        Ok(send) => send,
        Err(err) if err.code == ErrorCode::Conflict => return Ok(None),
        Err(err) => return Err(err),
    };
    let message =
        compose::message(sender, template, &contact.fields, campaign.as_ref(), Purpose::Send(&send.id), email)?;
    mail::send(&message)?;
    Ok(Some(send))
}

/// `mail.sent` / `mail.failed` for one of its messages: the send's status, an activity on the
/// contact's timeline when sent; a permanent refusal suppresses the address (a hard bounce).
pub(crate) fn on_outcome(event: &Event) -> Result<()> {
    let payload = &event.payload;
    let Some(id) = payload.get("reference").and_then(Json::as_str).and_then(|r| r.strip_prefix("send:")) else {
        return Ok(());
    };
    // Erased with its contact since: nothing to record.
    let Some(send) = records::get("emailSend", id)? else { return Ok(()) };
    let status = send.str("status").unwrap_or_default();
    if status != "QUEUED" {
        return Ok(());
    }
    let at = if event.occurred_at.is_empty() { kith_plugin_sdk::now() } else { event.occurred_at.clone() };
    if event.kind == "mail.sent" {
        let changes = json!({"status": "SENT", "sentAt": at, "messageId": payload.get("messageId")});
        util::update_fresh("emailSend", id, |_| Some(changes.clone()))?;
        records::create(
            "activity",
            &json!({
                "kind": "EMAIL",
                "subject": format!("E-mail sent: {}", send.str("subject").unwrap_or_default()),
                "contactId": send.str("contactId"),
                "occurredAt": at,
            }),
        )?;
        return Ok(());
    }
    let error = payload.get("error").and_then(Json::as_str).unwrap_or("the relay refused it");
    let permanent = payload.get("permanent").and_then(Json::as_bool) == Some(true);
    let status = if permanent { "BOUNCED" } else { "FAILED" };
    let changes = json!({"status": status, "error": error});
    util::update_fresh("emailSend", id, |_| Some(changes.clone()))?;
    if permanent && let Some(email) = send.str("email") {
        suppress(email, "HARD_BOUNCE", send.str("contactId"), Some(error))?;
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
