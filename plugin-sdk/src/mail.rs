//! E-mail (SDK 1.3): messages go into Kith's mail queue with the work of the handler, job or
//! mutation that sends them (a call that fails sends nothing) and Kith delivers them through the
//! SMTP relay the admin configured. Needs the `mail:send` capability; the sender must be an
//! address the admin allows (`[mail] senders`). Kith sets `From`, `To`, `Date`, `Message-ID`
//! and the MIME structure itself; a plugin adds only list and `X-` headers.
//!
//! Outcomes arrive as events to the sending plugin alone, when it subscribes to them
//! (`events = ["mail.sent", "mail.failed"]`): object `mail`, the payload
//! `{"messageId", "to", "reference", "attempts", "error", "permanent"}` (`permanent`: the relay
//! refused the message for good, a 5xx such as an unknown mailbox; otherwise the retries ran
//! out).
//!
//! ```
//! use kith_plugin_sdk::{mail, testing::TestHost};
//! let host = TestHost::new().grant("mail:send");
//! let id = host.run(|| {
//!     mail::send(
//!         &mail::Message::new("Park Friends <appeals@example.org>", "ada@example.net", "Spring appeal")
//!             .text("Dear Ada, ...")
//!             .header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
//!             .reference("campaign:spring"),
//!     )
//! }).unwrap();
//! let sent = host.sent_mail();
//! assert_eq!((sent.len(), sent[0].to.as_str(), id.is_empty()), (1, "ada@example.net", false));
//! ```

use crate::types::Result;

/// A message to one recipient, built from [`Message::new`] (a minor version may add fields).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// `addr` or `Name <addr>`: an allowed sender.
    pub from: String,
    /// The one recipient.
    pub to: String,
    /// Where replies go.
    pub reply_to: Option<String>,
    /// One line.
    pub subject: String,
    /// The plain-text body (derived from `html` by Kith when missing).
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// List and `X-` headers.
    pub headers: Vec<(String, String)>,
    /// The plugin's own reference, given back in the outcome events (at most 200 bytes).
    pub reference: Option<String>,
}

impl Message {
    /// A message without a body yet.
    ///
    /// ```
    /// let m = kith_plugin_sdk::mail::Message::new("a@example.org", "b@example.net", "Hi").html("<p>Hi</p>");
    /// assert_eq!((m.text, m.html.as_deref()), (None, Some("<p>Hi</p>")));
    /// ```
    pub fn new(from: &str, to: &str, subject: &str) -> Message {
        Message {
            from: from.into(),
            to: to.into(),
            reply_to: None,
            subject: subject.into(),
            text: None,
            html: None,
            headers: Vec::new(),
            reference: None,
        }
    }

    /// Sets the plain-text body.
    pub fn text(mut self, text: &str) -> Message {
        self.text = Some(text.into());
        self
    }

    /// Sets the HTML body.
    pub fn html(mut self, html: &str) -> Message {
        self.html = Some(html.into());
        self
    }

    /// Sets where replies go.
    pub fn reply_to(mut self, address: &str) -> Message {
        self.reply_to = Some(address.into());
        self
    }

    /// Adds a header (`List-Unsubscribe`, `List-Unsubscribe-Post`, `List-Id`, `Precedence`,
    /// `Auto-Submitted`, `In-Reply-To`, `References` or an `X-` header).
    pub fn header(mut self, name: &str, value: &str) -> Message {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the plugin's reference.
    pub fn reference(mut self, reference: &str) -> Message {
        self.reference = Some(reference.into());
        self
    }
}

/// Queues `message`; returns its `Message-ID` (without angle brackets).
pub fn send(message: &Message) -> Result<String> {
    crate::host::mail_send(message)
}

/// Queues each message (SDK 1.4), as [`send`] does, in a few host calls; each succeeds or fails
/// alone (an address Kith refuses, the plugin's mail rate), in order. Longer lists than
/// [`crate::records::BULK_CHUNK`] go to Kith in chunks.
///
/// ```
/// use kith_plugin_sdk::{mail::{self, Message}, testing::TestHost};
/// let host = TestHost::new().grant("mail:send");
/// let ids = host.run(|| mail::send_many(&[
///     Message::new("news@example.org", "ada@example.net", "Hi").text("Hello"),
///     Message::new("news@example.org", "not an address", "Hi").text("Hello"),
/// ])).unwrap();
/// assert!(ids[0].is_ok() && ids[1].is_err());
/// assert_eq!(host.sent_mail().len(), 1);
/// ```
pub fn send_many(messages: &[Message]) -> Result<Vec<Result<String>>> {
    let mut out = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(crate::records::BULK_CHUNK) {
        out.extend(crate::host::send_mails(chunk)?);
    }
    Ok(out)
}
