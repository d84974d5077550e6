//! Building a message from the parts a plugin gives: Kith sets the envelope, `From`, `To`,
//! `Date`, `Message-ID` and the MIME structure; the plugin may add only the headers of
//! [`ALLOWED_HEADERS`] (and `X-` headers), so it cannot forge envelope data or smuggle a second
//! recipient in.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use uuid::Uuid;

use super::MailError;

/// Headers a plugin may set (besides any `X-` header), lower-case.
pub const ALLOWED_HEADERS: &[&str] = &[
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "precedence",
    "auto-submitted",
    "in-reply-to",
    "references",
];
/// Longest subject, in bytes.
pub const MAX_SUBJECT: usize = 998;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE: usize = 2_000;
/// Most headers a plugin may add.
pub const MAX_HEADERS: usize = 20;
/// Largest text plus HTML body, in bytes.
pub const MAX_BODY: usize = 1 << 20;
/// Longest reference, in bytes.
pub const MAX_REFERENCE: usize = 200;

/// What a plugin asks to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    /// `addr` or `Name <addr>`: an allowed sender.
    pub from: String,
    /// The one recipient.
    pub to: String,
    /// Where replies go.
    pub reply_to: Option<String>,
    /// One line.
    pub subject: String,
    /// Plain text.
    pub text: Option<String>,
    /// HTML.
    pub html: Option<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The plugin's own reference.
    pub reference: Option<String>,
}

/// A message ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// `Message-ID` without angle brackets.
    pub message_id: String,
    /// Envelope sender address.
    pub sender: String,
    /// Envelope recipient address.
    pub recipient: String,
    /// The subject.
    pub subject: String,
    /// The whole message.
    pub message: String,
}

fn mailbox(what: &str, text: &str) -> Result<Mailbox, MailError> {
    if text.contains(['\r', '\n']) {
        return Err(MailError::Invalid(format!("{what}: one line, no line breaks")));
    }
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::Invalid(format!("{what}: `{text}` is not an e-mail address ({e})")))
}

/// Whether `address` is one of `senders`: an address (`news@example.org`) or a domain
/// (`@example.org`), compared without case.
pub fn sender_allowed(senders: &[String], address: &str) -> bool {
    let address = address.to_ascii_lowercase();
    senders.iter().any(|allowed| {
        let allowed = allowed.trim().to_ascii_lowercase();
        match allowed.strip_prefix('@') {
            Some(domain) => address.rsplit_once('@').is_some_and(|(_, d)| d == domain),
            None => allowed == address,
        }
    })
}

/// Builds the message of `parts`, from an allowed sender, dated `now`.
pub fn build(parts: &Parts, senders: &[String], now: DateTime<Utc>) -> Result<Built, MailError> {
    let from = mailbox("from", &parts.from)?;
    if !sender_allowed(senders, from.email.as_ref()) {
        return Err(MailError::SenderNotAllowed(from.email.to_string()));
    }
    let to = mailbox("to", &parts.to)?;
    if parts.subject.contains(['\r', '\n']) {
        return Err(MailError::Invalid("subject: one line, no line breaks".into()));
    }
    if parts.subject.len() > MAX_SUBJECT {
        return Err(MailError::Invalid(format!("subject: at most {MAX_SUBJECT} bytes")));
    }
    if parts.reference.as_ref().is_some_and(|r| r.len() > MAX_REFERENCE) {
        return Err(MailError::Invalid(format!("reference: at most {MAX_REFERENCE} bytes")));
    }
    let body_size = parts.text.as_ref().map_or(0, String::len) + parts.html.as_ref().map_or(0, String::len);
    if body_size > MAX_BODY {
        return Err(MailError::Invalid(format!("the bodies are {body_size} bytes; at most {MAX_BODY}")));
    }
    if parts.headers.len() > MAX_HEADERS {
        return Err(MailError::Invalid(format!("at most {MAX_HEADERS} headers")));
    }
    let domain = from.email.domain().to_owned();
    let message_id = format!("{}@{domain}", Uuid::now_v7().simple());
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject(parts.subject.clone())
        .date(std::time::SystemTime::from(now))
        .message_id(Some(format!("<{message_id}>")));
    if let Some(reply_to) = &parts.reply_to {
        builder = builder.reply_to(mailbox("reply-to", reply_to)?);
    }
    for (name, value) in &parts.headers {
        let lower = name.to_ascii_lowercase();
        let allowed = ALLOWED_HEADERS.contains(&lower.as_str())
            || (lower.starts_with("x-")
                && lower.len() > 2
                && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !allowed {
            return Err(MailError::Invalid(format!(
                "header `{name}`: Kith sets it, or it is not one a plugin may set (allowed: {}, and X- headers)",
                ALLOWED_HEADERS.join(", ")
            )));
        }
        if value.contains(['\r', '\n']) || value.len() > MAX_HEADER_VALUE {
            return Err(MailError::Invalid(format!("header `{name}`: one line of at most {MAX_HEADER_VALUE} bytes")));
        }
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| MailError::Invalid(format!("header `{name}`: not a header name")))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    let message = match (&parts.text, &parts.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone())),
        (Some(text), None) => {
            builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text.clone()))
        }
        (None, Some(html)) => builder.multipart(MultiPart::alternative_plain_html(html_to_text(html), html.clone())),
        (None, None) => return Err(MailError::Invalid("a message needs a text or an HTML body".into())),
    }
    .map_err(|e| MailError::Invalid(format!("cannot build the message: {e}")))?;
    let message =
        String::from_utf8(message.formatted()).map_err(|_| MailError::Invalid("the message is not UTF-8".into()))?;
    Ok(Built {
        message_id,
        sender: from.email.to_string(),
        recipient: to.email.to_string(),
        subject: parts.subject.clone(),
        message,
    })
}

/// A plain-text rendering of `html`: tags dropped (scripts and styles with their content),
/// paragraphs, line breaks, list items and headings as line breaks, links as `text (url)`, the
/// common entities decoded, runs of blank lines and spaces collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut link: Option<String> = None;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&decode_entities(&rest[open..]));
            rest = "";
            break;
        };
        let tag = after[..close].trim();
        rest = &after[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match name.as_str() {
            "script" | "style" | "head" | "title" if !closing => {
                let end = format!("</{name}");
                match rest.to_ascii_lowercase().find(&end) {
                    Some(at) => {
                        rest = &rest[at..];
                        if let Some(gt) = rest.find('>') {
                            rest = &rest[gt + 1..];
                        }
                    }
                    None => rest = "",
                }
            }
            "br" => out.push('\n'),
            "p" | "div" | "tr" | "table" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "blockquote" => {
                out.push_str("\n\n");
            }
            "li" if !closing => out.push_str("\n- "),
            "td" | "th" if closing => out.push(' '),
            "a" if !closing => link = attribute(tag, "href"),
            "a" => {
                if let Some(href) = link.take()
                    && !href.starts_with('#')
                    && !href.starts_with("mailto:")
                {
                    out.push_str(&format!(" ({href})"));
                }
            }
            _ => {}
        }
    }
    out.push_str(&decode_entities(rest));
    // Collapse spaces within lines and blank lines between them.
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(&line);
    }
    text
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let value = &tag[at..];
    let value = match value.chars().next()? {
        quote @ ('"' | '\'') => value[1..].split(quote).next()?,
        _ => value.split(|c: char| c.is_whitespace() || c == '>').next()?,
    };
    Some(decode_entities(value))
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn senders() -> Vec<String> {
        vec!["appeals@example.org".into(), "@news.example.org".into()]
    }

    fn parts() -> Parts {
        Parts {
            from: "Friends of the Park <appeals@example.org>".into(),
            to: "Ada Lovelace <ada@example.net>".into(),
            subject: "Spring appeal — help us plant 100 trees".into(),
            text: Some("Dear Ada,\nplease give.".into()),
            html: Some("<p>Dear Ada,</p><p>please <a href=\"https://example.org/give\">give</a>.</p>".into()),
            headers: vec![
                ("List-Unsubscribe".into(), "<https://crm.example.org/p/marketing/u?s=abc>".into()),
                ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
            ],
            ..Parts::default()
        }
    }

    #[test]
    fn a_message_has_the_envelope_headers_and_both_bodies() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().with_timezone(&Utc);
        let built = build(&parts(), &senders(), now).unwrap();
        assert_eq!(built.sender, "appeals@example.org");
        assert_eq!(built.recipient, "ada@example.net");
        assert!(built.message_id.ends_with("@example.org"));
        let m = &built.message;
        assert!(m.contains(&format!("Message-ID: <{}>", built.message_id)), "{m}");
        assert!(m.contains("List-Unsubscribe: <https://crm.example.org/p/marketing/u?s=abc>"), "{m}");
        assert!(m.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{m}");
        assert!(m.contains("Date: Sun, 06 Dec 2026 10:00:00"), "{m}");
        assert!(m.contains("multipart/alternative"), "{m}");
        assert!(m.contains("text/html"), "{m}");
    }

    #[test]
    fn senders_are_checked_and_envelope_headers_cannot_be_set() {
        let now = Utc::now();
        let mut p = parts();
        p.from = "someone@elsewhere.org".into();
        assert!(matches!(build(&p, &senders(), now), Err(MailError::SenderNotAllowed(_))));
        p.from = "Any <any@news.example.org>".into();
        assert!(build(&p, &senders(), now).is_ok());
        for name in ["Bcc", "To", "Message-ID", "Content-Type", "Received"] {
            let mut p = parts();
            p.headers.push((name.into(), "x@example.net".into()));
            assert!(matches!(build(&p, &senders(), now), Err(MailError::Invalid(_))), "{name}");
        }
        let mut p = parts();
        p.headers.push(("X-Campaign".into(), "spring\r\nBcc: everyone@example.net".into()));
        assert!(matches!(build(&p, &senders(), now), Err(MailError::Invalid(_))));
        let mut p = parts();
        p.subject = "Hi\r\nBcc: everyone@example.net".into();
        assert!(matches!(build(&p, &senders(), now), Err(MailError::Invalid(_))));
        let mut p = parts();
        p.to = "a@example.net, b@example.net".into();
        assert!(matches!(build(&p, &senders(), now), Err(MailError::Invalid(_))));
        let mut p = parts();
        p.text = None;
        p.html = None;
        assert!(matches!(build(&p, &senders(), now), Err(MailError::Invalid(_))));
    }

    #[test]
    fn html_becomes_readable_text() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <h1>Spring&nbsp;appeal</h1><p>Dear Ada,<br>trees &amp; benches.</p>\
            <ul><li>one</li><li>two</li></ul><p><a href=\"https://example.org/give\">Give now</a></p>\
            <script>alert(1)</script></body></html>";
        assert_eq!(
            html_to_text(html),
            "Spring appeal\n\nDear Ada,\ntrees & benches.\n\n- one\n- two\n\nGive now (https://example.org/give)"
        );
    }
}
