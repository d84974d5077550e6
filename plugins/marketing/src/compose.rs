//! A message for one send: the template rendered for the contact, every web link through the
//! signed click route, an open pixel, the unsubscribe link (in the body unless the template
//! places it, and as RFC 8058 `List-Unsubscribe` headers), the postal address.

use kith_plugin_sdk::mail::Message;
use kith_plugin_sdk::{Error, Record, Result, links};
use serde_json::Value as Json;

use crate::template::{self, Context};
use crate::util;

/// Who messages come from, from the settings.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub(crate) from: String,
    pub(crate) reply_to: String,
    pub(crate) postal_address: String,
}

impl Sender {
    /// The settings, or why nothing can be sent.
    pub(crate) fn load() -> Result<Sender> {
        let from = util::text_setting("from")?;
        if from.is_empty() {
            return Err(Error::invalid(
                "from",
                "set the marketing plugin's `from` setting (`Name <address>`, an address Kith's [mail] senders allow)",
            ));
        }
        Ok(Sender {
            from,
            reply_to: util::text_setting("reply_to")?,
            postal_address: util::text_setting("postal_address")?,
        })
    }
}

/// What a message is for: a tracked send (its id), or a test (nothing tracked).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose<'a> {
    Send(&'a str),
    Test,
}

/// The unsubscribe link of a send.
pub(crate) fn unsubscribe_url(purpose: Purpose<'_>) -> Result<String> {
    match purpose {
        Purpose::Send(id) => links::sign("/u", &[("s", id)], None),
        Purpose::Test => links::sign("/u", &[("test", "1")], None),
    }
}

/// The rendered subject, HTML and text of `template` for `contact` (no tracking): what
/// `previewEmail` shows.
pub(crate) fn render(template: &Record, context: &Context) -> (String, Option<String>, Option<String>) {
    let field = |name: &str| template.str(name).filter(|t| !t.trim().is_empty());
    let subject = subject(template, context);
    let html = field("html").map(|h| template::render(h, context, true));
    let text = field("text").map(|t| template::render(t, context, false));
    (subject, html, text)
}

/// The rendered subject of `template` for `contact`, on one line.
pub(crate) fn subject(template: &Record, context: &Context) -> String {
    let subject = template::render(template.str("subject").unwrap_or_default(), context, false);
    subject.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The message of `template` to `to` for `contact`.
pub(crate) fn message(
    sender: &Sender,
    template: &Record,
    contact: &Json,
    campaign: Option<&Json>,
    purpose: Purpose<'_>,
    to: &str,
) -> Result<Message> {
    let unsubscribe = unsubscribe_url(purpose)?;
    let context = Context {
        contact: contact.clone(),
        campaign: campaign.cloned(),
        unsubscribe_url: unsubscribe.clone(),
        postal_address: sender.postal_address.clone(),
    };
    let (subject, html, text) = render(template, &context);
    let placed = |body: Option<&str>| body.is_some_and(|b| b.contains("unsubscribeUrl"));
    let mut message = Message::new(&sender.from, to, &subject);
    if let Purpose::Test = purpose {
        message.subject = format!("[TEST] {}", message.subject);
    }
    if let Some(mut html) = html {
        if !placed(template.str("html")) {
            html = with_html_footer(&html, &sender.postal_address, &unsubscribe);
        }
        if let Purpose::Send(id) = purpose {
            html = track_links(&html, id, &unsubscribe)?;
            let pixel = format!(
                "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">",
                template::escape(&links::sign("/o", &[("s", id)], None)?)
            );
            html = insert_before_body_end(&html, &pixel);
        }
        message = message.html(&html);
    }
    if let Some(mut text) = text {
        if !placed(template.str("text")) {
            text = with_text_footer(&text, &sender.postal_address, &unsubscribe);
        }
        message = message.text(&text);
    }
    if message.html.is_none() && message.text.is_none() {
        return Err(Error::invalid("templateId", "the template has neither an HTML nor a text body"));
    }
    if !sender.reply_to.is_empty() {
        message = message.reply_to(&sender.reply_to);
    }
    message = message
        .header("List-Unsubscribe", &format!("<{unsubscribe}>"))
        .header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    if let Purpose::Send(id) = purpose {
        message = message.reference(&format!("send:{id}"));
    }
    Ok(message)
}

fn with_html_footer(html: &str, postal: &str, unsubscribe: &str) -> String {
    let mut footer = String::from("<p style=\"font-size:12px;color:#666666\">");
    if !postal.is_empty() {
        footer.push_str(&template::escape(postal));
        footer.push_str("<br>");
    }
    footer.push_str(&format!(
        "You receive this because you agreed to hear from us. <a href=\"{}\">Unsubscribe</a></p>",
        template::escape(unsubscribe)
    ));
    insert_before_body_end(html, &footer)
}

fn with_text_footer(text: &str, postal: &str, unsubscribe: &str) -> String {
    let mut out = text.trim_end().to_owned();
    out.push_str("\n\n-- \n");
    if !postal.is_empty() {
        out.push_str(postal);
        out.push('\n');
    }
    out.push_str(&format!("Unsubscribe: {unsubscribe}\n"));
    out
}

fn insert_before_body_end(html: &str, piece: &str) -> String {
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{piece}{}", &html[..at], &html[at..]),
        None => format!("{html}{piece}"),
    }
}

/// `html` with the `href` of every `<a>` to an http(s) address (but the unsubscribe link)
/// through the signed click route of send `id`.
pub(crate) fn track_links(html: &str, id: &str, unsubscribe: &str) -> Result<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() + 256);
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("<a") {
        let open = from + found;
        let Some(len) = lower[open..].find('>') else { break };
        let close = open + len;
        from = close;
        // `<a` followed by a space: an anchor, not `<abbr>`.
        if !lower[open + 2..].starts_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let tag = &html[open..close];
        let Some((start, end)) = href_range(tag) else { continue };
        let raw = &tag[start..end];
        let url = raw.replace("&amp;", "&");
        let web = url.starts_with("http://") || url.starts_with("https://");
        if !web || url == unsubscribe {
            continue;
        }
        let tracked = links::sign("/c", &[("s", id), ("u", &url)], None)?;
        out.push_str(&html[done..open + start]);
        out.push_str(&template::escape(&tracked));
        done = open + end;
    }
    out.push_str(&html[done..]);
    Ok(out)
}

/// The byte range of the `href` value in an `<a ...` tag's text (without quotes).
fn href_range(tag: &str) -> Option<(usize, usize)> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("href") {
        let at = from + found;
        from = at + 4;
        if !lower[..at].ends_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let rest = &lower[at + 4..];
        let eq = rest.len() - rest.trim_start().len();
        if !rest[eq..].starts_with('=') {
            continue;
        }
        let value_from = at + 4 + eq + 1;
        let value = &lower[value_from..];
        let skip = value.len() - value.trim_start().len();
        let start = value_from + skip;
        let quote = lower[start..].chars().next()?;
        return if quote == '"' || quote == '\'' {
            let end = start + 1 + lower[start + 1..].find(quote)?;
            Some((start + 1, end))
        } else {
            let end = start + lower[start..].find(|c: char| c.is_ascii_whitespace()).unwrap_or(lower.len() - start);
            Some((start, end))
        };
    }
    None
}
