//! The plugin's routes under `/p/marketing/`: the open pixel (`/o`), click redirects (`/c`),
//! the unsubscribe page and RFC 8058 one-click unsubscribe (`/u`), and the e-mail provider's
//! bounce and complaint webhooks (`/webhooks/bounces`). Links are signed by Kith for this
//! plugin, so none can be forged or enumerated; a GET never unsubscribes (mail scanners
//! follow links), a POST does.

use kith_plugin_sdk::routes::{Request, Response};
use kith_plugin_sdk::{Record, Result, links, records};
use serde_json::{Value as Json, json};

use crate::sends;
use crate::template::escape;
use crate::util;

/// A 1×1 transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Answers a request to one of the declared routes.
pub(crate) fn handle(request: &Request) -> Response {
    let result = match (request.method.as_str(), request.route.as_str()) {
        ("GET", "/o") => Ok(open(request)),
        ("GET", "/c") => click(request),
        ("GET", "/u") => unsubscribe_page(request),
        ("POST", "/u") => unsubscribe(request),
        ("POST", "/webhooks/bounces") => webhook(request),
        _ => Ok(Response::text(404, "not found")),
    };
    result.unwrap_or_else(|err| {
        kith_plugin_sdk::log::warn(&format!("{} {}: {err}", request.method, request.path));
        page(500, "Something went wrong", "Please try again in a few minutes.")
    })
}

fn page(status: u16, title: &str, body: &str) -> Response {
    Response::html(
        status,
        &format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width\"><title>{t}</title></head><body style=\"font-family:sans-serif;\
             max-width:32rem;margin:3rem auto;padding:0 1rem\"><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        ),
    )
    .header("Cache-Control", "no-store")
}

/// The send a request's signed link names; `None` for a bad or foreign link.
fn signed_send(request: &Request) -> Result<Option<Record>> {
    match links::verify(&request.url()) {
        Ok(params) => sends::send_of(&params),
        Err(_) => Ok(None),
    }
}

/// Records an open (the first sets `openedAt`), then the pixel whatever happened.
fn open(request: &Request) -> Response {
    if let Ok(Some(send)) = signed_send(request) {
        let now = kith_plugin_sdk::now();
        let recorded = util::update_fresh("emailSend", &send.id, |send| {
            let mut changes = json!({"opens": util::int_field(send, "opens") + 1});
            if send.fields.get("openedAt").is_none_or(Json::is_null) {
                changes["openedAt"] = json!(now);
            }
            Some(changes)
        });
        if let Err(err) = recorded {
            kith_plugin_sdk::log::warn(&format!("recording an open: {err}"));
        }
    }
    Response::new(200)
        .header("Content-Type", "image/gif")
        .header("Cache-Control", "no-store, max-age=0")
        .with_body(PIXEL)
}

/// Records a click (and an open, which it implies) and redirects to the signed address.
fn click(request: &Request) -> Result<Response> {
    let Ok(params) = links::verify(&request.url()) else {
        return Ok(page(400, "This link is not valid", "<p>It may have been changed or cut short.</p>"));
    };
    let Some(target) = params.iter().find(|(k, _)| k == "u").map(|(_, v)| v.clone()) else {
        return Ok(page(400, "This link is not valid", "<p>It has no address.</p>"));
    };
    if let Some(send) = sends::send_of(&params)? {
        let now = kith_plugin_sdk::now();
        util::update_fresh("emailSend", &send.id, |send| {
            let mut changes = json!({"clicks": util::int_field(send, "clicks") + 1});
            if send.fields.get("clickedAt").is_none_or(Json::is_null) {
                changes["clickedAt"] = json!(now);
            }
            if send.fields.get("openedAt").is_none_or(Json::is_null) {
                changes["openedAt"] = json!(now);
                changes["opens"] = json!(util::int_field(send, "opens") + 1);
            }
            Some(changes)
        })?;
    }
    Ok(Response::redirect(&target).header("Cache-Control", "no-store"))
}

fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The send an unsubscribe link names, or the page to answer instead: a bad link, a test
/// message's, a send no longer kept.
fn unsubscribe_target(request: &Request) -> Result<std::result::Result<Record, Response>> {
    let Ok(params) = links::verify(&request.url()) else {
        return Ok(Err(page(400, "This link is not valid", "<p>It may have been changed or cut short.</p>")));
    };
    if params.iter().any(|(k, _)| k == "test") {
        return Ok(Err(page(
            200,
            "A test message",
            "<p>This link came in a test message: nobody is unsubscribed.</p>",
        )));
    }
    Ok(sends::send_of(&params)?
        .ok_or_else(|| page(404, "Nothing to unsubscribe", "<p>We no longer keep this address.</p>")))
}

/// The page an unsubscribe link opens: a button that POSTs (one click more, so that link
/// scanners unsubscribe nobody).
fn unsubscribe_page(request: &Request) -> Result<Response> {
    let send = match unsubscribe_target(request)? {
        Ok(send) => send,
        Err(answer) => return Ok(answer),
    };
    let email = send.str("email").unwrap_or_default();
    // No `action`: the form posts to this page's own address, signature and all.
    Ok(page(
        200,
        "Unsubscribe",
        &format!(
            "<p>Stop e-mails from us to <strong>{}</strong>?</p><form method=\"post\">\
             <button type=\"submit\" name=\"confirm\" value=\"1\">Unsubscribe</button></form>",
            escape(&mask(email))
        ),
    ))
}

/// RFC 8058 one-click (`List-Unsubscribe=One-Click` in the body) or the page's button: the
/// contact's e-mail consent is withdrawn, with its history, and the send marked.
fn unsubscribe(request: &Request) -> Result<Response> {
    let send = match unsubscribe_target(request)? {
        Ok(send) => send,
        Err(answer) => return Ok(answer),
    };
    let how = if request.form("List-Unsubscribe").as_deref() == Some("One-Click") {
        "one-click unsubscribe (RFC 8058)"
    } else {
        "unsubscribe link"
    };
    withdraw(&send, how)?;
    Ok(page(200, "You are unsubscribed", "<p>You will not receive these e-mails any more.</p>"))
}

/// Withdraws the e-mail consent of the send's contact (when they still had it) and marks the
/// send.
fn withdraw(send: &Record, how: &str) -> Result<()> {
    let Some(contact_id) = send.str("contactId") else { return Ok(()) };
    if let Some(contact) = records::get("contact", contact_id)?
        && contact.fields.get("emailOptIn").and_then(Json::as_bool) == Some(true)
    {
        let statement = match send.str("campaignId") {
            Some(campaign) => records::get("emailCampaign", campaign)?
                .and_then(|c| c.str("name").map(|n| format!("campaign: {n}")))
                .unwrap_or_default(),
            None => "a sequence's message".to_owned(),
        };
        records::create(
            "consent",
            &json!({
                "contactId": contact_id,
                "channel": "EMAIL",
                "status": "WITHDRAWN",
                "source": how,
                "statement": statement,
            }),
        )?;
    }
    let now = kith_plugin_sdk::now();
    util::update_fresh("emailSend", &send.id, |send| {
        send.fields.get("unsubscribedAt").is_none_or(Json::is_null).then(|| json!({"unsubscribedAt": now}))
    })?;
    Ok(())
}

/// One bounce or complaint a provider reported.
#[derive(Debug, PartialEq)]
pub(crate) struct Report {
    pub(crate) email: String,
    /// `HARD_BOUNCE` or `COMPLAINT` (soft bounces are ignored: the next message may arrive).
    pub(crate) reason: Option<&'static str>,
    pub(crate) detail: String,
}

/// The reports in a webhook body: Kith's own form (`{"type": "bounce"|"complaint", "email",
/// "hard": true, "detail"}`, one or a list), Postmark (`RecordType`), SendGrid (a list of
/// `event`s) and Mailgun (`event-data`).
pub(crate) fn reports(body: &Json) -> Vec<Report> {
    let items: Vec<&Json> = match body {
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for item in items {
        let report = if let Some(data) = item.get("event-data") {
            // Mailgun.
            let reason = match text(data, "event").as_str() {
                "failed" if text(data, "severity") == "permanent" => Some("HARD_BOUNCE"),
                "complained" => Some("COMPLAINT"),
                _ => None,
            };
            let detail = data.pointer("/delivery-status/description").and_then(Json::as_str).unwrap_or_default();
            Report { email: text(data, "recipient"), reason, detail: detail.to_owned() }
        } else if let Some(kind) = item.get("RecordType").and_then(Json::as_str) {
            // Postmark.
            let reason = match (kind, text(item, "Type").as_str()) {
                ("Bounce", "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated") => Some("HARD_BOUNCE"),
                ("SpamComplaint", _) => Some("COMPLAINT"),
                _ => None,
            };
            Report { email: text(item, "Email"), reason, detail: text(item, "Description") }
        } else if let Some(event) = item.get("event").and_then(Json::as_str) {
            // SendGrid.
            let reason = match event {
                "bounce" if text(item, "type") != "blocked" => Some("HARD_BOUNCE"),
                "spamreport" => Some("COMPLAINT"),
                _ => None,
            };
            Report { email: text(item, "email"), reason, detail: text(item, "reason") }
        } else {
            let reason = match text(item, "type").as_str() {
                "bounce" if item.get("hard").and_then(Json::as_bool) != Some(false) => Some("HARD_BOUNCE"),
                "complaint" => Some("COMPLAINT"),
                _ => None,
            };
            Report { email: text(item, "email"), reason, detail: text(item, "detail") }
        };
        out.push(report);
    }
    out
}

fn webhook(request: &Request) -> Result<Response> {
    let secret = util::text_setting("webhook_secret")?;
    let given = request.param("token").or_else(|| request.header_value("X-Webhook-Token").map(str::to_owned));
    if secret.is_empty() || given.as_deref() != Some(secret.as_str()) {
        return Ok(Response::json(401, &json!({"error": "a valid token is required (the plugin's webhook_secret)"})));
    }
    let Ok(body) = serde_json::from_slice::<Json>(&request.body) else {
        return Ok(Response::json(400, &json!({"error": "the body must be JSON"})));
    };
    let (mut suppressed, mut ignored) = (0, 0);
    for report in reports(&body) {
        let Some(reason) = report.reason.filter(|_| report.email.contains('@')) else {
            ignored += 1;
            continue;
        };
        let contact = util::first("contact", json!({"email": {"eq": util::normal_email(&report.email)}}))?;
        sends::suppress(&report.email, reason, contact.as_ref().map(|c| c.id.as_str()), Some(&report.detail))?;
        // The latest message to the address is the one bounced or complained about.
        let sent = json!({"email": {"eq": util::normal_email(&report.email)}, "status": {"in": ["SENT", "QUEUED"]}});
        let newest = kith_plugin_sdk::Query::new()
            .filter(sent)
            .order_by(json!([{"field": "createdAt", "direction": "DESC"}]))
            .first(1);
        if let Some(send) = records::query("emailSend", &newest)?.records.into_iter().next() {
            let status = if reason == "COMPLAINT" { "COMPLAINED" } else { "BOUNCED" };
            let changes = json!({"status": status, "error": report.detail});
            util::update_fresh("emailSend", &send.id, |_| Some(changes.clone()))?;
            if reason == "COMPLAINT" {
                withdraw(&send, "spam complaint")?;
            }
        }
        suppressed += 1;
    }
    Ok(Response::json(200, &json!({"suppressed": suppressed, "ignored": ignored})))
}
