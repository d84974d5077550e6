//! Campaigns: previews and test sends, scheduling, cancelling, and the `send` job that queues a
//! due campaign's recipients a batch per transaction.

use kith_plugin_sdk::{Error, Record, Result, mail, records};
use serde_json::{Value as Json, json};

use crate::compose::{self, Purpose, Sender};
use crate::sends::{self, Origin};
use crate::template::{self, Context};
use crate::util;

/// `previewEmail`: the template rendered for a contact, links not tracked.
pub(crate) fn preview(arguments: &Json) -> Result<Json> {
    let template = util::existing("emailTemplate", util::required(arguments, "templateId")?, "templateId")?;
    let contact = util::existing("contact", util::required(arguments, "contactId")?, "contactId")?;
    let context = Context {
        contact: contact.fields.clone(),
        campaign: None,
        unsubscribe_url: compose::unsubscribe_url(Purpose::Test)?,
        postal_address: util::text_setting("postal_address")?,
    };
    let (subject, html, text) = compose::render(&template, &context);
    let text = text.or_else(|| html.as_deref().map(template::html_to_text)).unwrap_or_default();
    Ok(json!({"subject": subject, "html": html, "text": text}))
}

/// `sendTestEmail`: the template for a contact, to any address, marked [TEST], not tracked.
pub(crate) fn send_test(arguments: &Json) -> Result<Json> {
    let template = util::existing("emailTemplate", util::required(arguments, "templateId")?, "templateId")?;
    let contact = util::existing("contact", util::required(arguments, "contactId")?, "contactId")?;
    let to = util::required(arguments, "to")?;
    if !to.contains('@') || to.contains(char::is_whitespace) {
        return Err(Error::invalid("to", format!("`{to}` is not an e-mail address")));
    }
    let sender = Sender::load()?;
    let message = compose::message(&sender, &template, &contact.fields, None, Purpose::Test, to)?;
    Ok(json!(mail::send(&message)?))
}

/// `scheduleCampaign`: a draft (or scheduled) campaign goes out at `at`, now by default.
pub(crate) fn schedule(arguments: &Json) -> Result<Json> {
    let id = util::required(arguments, "id")?;
    let campaign = util::existing("emailCampaign", id, "id")?;
    let status = campaign.str("status").unwrap_or("DRAFT");
    if !matches!(status, "DRAFT" | "SCHEDULED") {
        return Err(Error::invalid(
            "id",
            format!("the campaign is {status}: only a draft or scheduled one can be scheduled"),
        ));
    }
    // What would stop it going out, now rather than at its time.
    Sender::load()?;
    let template = util::existing("emailTemplate", campaign.str("templateId").unwrap_or_default(), "templateId")?;
    if template.str("html").is_none_or(str::is_empty) && template.str("text").is_none_or(str::is_empty) {
        return Err(Error::invalid("templateId", "the template has neither an HTML nor a text body"));
    }
    segment_filter(campaign.str("segmentId").unwrap_or_default())?;
    let at = match arguments.get("at").and_then(Json::as_str) {
        Some(text) => {
            util::parse_instant(text).ok_or_else(|| Error::invalid("at", format!("`{text}` is not a date-time")))?
        }
        None => util::now(),
    };
    records::update(
        "emailCampaign",
        id,
        &json!({"status": "SCHEDULED", "scheduledAt": util::instant(at)}),
        Some(campaign.version),
    )?;
    Ok(json!(id))
}

/// `cancelCampaign`.
pub(crate) fn cancel(arguments: &Json) -> Result<Json> {
    let id = util::required(arguments, "id")?;
    let campaign = util::existing("emailCampaign", id, "id")?;
    let status = campaign.str("status").unwrap_or("DRAFT");
    if !matches!(status, "SCHEDULED" | "SENDING") {
        return Err(Error::invalid(
            "id",
            format!("the campaign is {status}: only a scheduled or sending one can be cancelled"),
        ));
    }
    records::update(
        "emailCampaign",
        id,
        &json!({"status": "CANCELLED", "finishedAt": kith_plugin_sdk::now()}),
        Some(campaign.version),
    )?;
    Ok(json!(id))
}

/// The filter of segment `id`, which must select contacts.
pub(crate) fn segment_filter(id: &str) -> Result<Json> {
    let segment = util::existing("segment", id, "segmentId")?;
    if segment.str("object") != Some("CONTACT") {
        return Err(Error::invalid("segmentId", "the segment must select contacts"));
    }
    Ok(segment.fields.get("filter").cloned().unwrap_or(Json::Null))
}

/// One batch of the oldest due campaign: up to `batch_size` recipients queued and the
/// campaign's cursor moved, in this run's transaction. Writes nothing when no campaign is due
/// (the job then stops until its next minute).
pub(crate) fn run_batch() -> Result<()> {
    let now = util::instant(util::now());
    let due = json!({"or": [
        {"status": {"eq": "SENDING"}},
        {"and": [{"status": {"eq": "SCHEDULED"}}, {"scheduledAt": {"lte": now}}]},
    ]});
    let Some(campaign) = util::first("emailCampaign", due)? else { return Ok(()) };
    send_batch(&campaign, util::int_setting("batch_size", 500, 50, 2000)? as usize)
}

fn send_batch(campaign: &Record, batch: usize) -> Result<()> {
    let sender = Sender::load()?;
    let template = util::existing("emailTemplate", campaign.str("templateId").unwrap_or_default(), "templateId")?;
    let filter =
        json!({"and": [segment_filter(campaign.str("segmentId").unwrap_or_default())?, sends::consent_filter()]});
    let mut cursor = campaign.str("cursor").map(str::to_owned);
    let (mut queued, mut skipped, mut seen) = (0i64, 0i64, 0usize);
    let mut finished = false;
    while seen < batch {
        let page = util::page("contact", filter.clone(), (batch - seen).min(200) as u32, cursor.as_deref())?;
        seen += page.records.len();
        let emails: Vec<String> = page.records.iter().filter_map(|c| c.str("email")).map(str::to_owned).collect();
        let suppressed = sends::suppressed(&emails)?;
        let mut recipients = Vec::with_capacity(page.records.len());
        for contact in &page.records {
            let email = util::normal_email(contact.str("email").unwrap_or_default());
            if suppressed.contains(&email) {
                skipped += 1;
            } else {
                recipients.push((contact, Origin::Campaign(campaign)));
            }
        }
        let sent = sends::queue_many(&sender, &template, &recipients)?;
        queued += sent.iter().flatten().count() as i64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                finished = true;
                break;
            }
        }
    }
    let now = kith_plugin_sdk::now();
    let mut changes = json!({
        "status": if finished { "SENT" } else { "SENDING" },
        "cursor": cursor,
        "recipients": util::int_field(campaign, "recipients") + queued,
        "skipped": util::int_field(campaign, "skipped") + skipped,
    });
    if campaign.fields.get("startedAt").is_none_or(Json::is_null) {
        changes["startedAt"] = json!(now);
    }
    if finished {
        changes["finishedAt"] = json!(now);
    }
    // Its version: a cancel in between wins (this batch is then rolled back, nothing sent).
    records::update("emailCampaign", &campaign.id, &changes, Some(campaign.version))?;
    Ok(())
}
