//! Merge fields: `{{contact.firstName}}`, with a fallback `{{contact.firstName|friend}}`,
//! HTML-escaped in HTML bodies (`{{{...}}}` inserts as is); `{{unsubscribeUrl}}`,
//! `{{postalAddress}}`, `{{campaign.name}}`, `{{campaign.code}}`. Unknown names are refused when
//! a template is saved.

use serde_json::Value as Json;

/// What merge fields are filled from.
#[derive(Debug, Default, Clone)]
pub(crate) struct Context {
    /// The contact, as Kith gives records (custom fields under `customFields`).
    pub(crate) contact: Json,
    /// The campaign, when a campaign sends.
    pub(crate) campaign: Option<Json>,
    /// The signed unsubscribe link of this message.
    pub(crate) unsubscribe_url: String,
    /// The organisation's postal address.
    pub(crate) postal_address: String,
}

impl Context {
    fn lookup(&self, path: &str) -> Option<String> {
        let value = match path {
            "unsubscribeUrl" => return Some(self.unsubscribe_url.clone()),
            "postalAddress" => return Some(self.postal_address.clone()),
            _ => {
                let (root, rest) = path.split_once('.')?;
                let mut value = match root {
                    "contact" => &self.contact,
                    "campaign" => self.campaign.as_ref()?,
                    _ => return None,
                };
                for part in rest.split('.') {
                    value = value.get(part)?;
                }
                value
            }
        };
        match value {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
        .filter(|s| !s.trim().is_empty())
    }
}

/// Why a template text cannot be rendered, if it cannot: unclosed or empty merge fields, or
/// names that are not `contact.*`, `campaign.name|code`, `unsubscribeUrl`, `postalAddress`.
pub(crate) fn check(text: &str) -> Result<(), String> {
    for piece in pieces(text) {
        match piece {
            Piece::Text(_) => {}
            Piece::Broken(at) => return Err(format!("a merge field opened at character {at} is not closed with }}}}")),
            Piece::Field { path, .. } => {
                let known = matches!(path, "unsubscribeUrl" | "postalAddress" | "campaign.name" | "campaign.code")
                    || path.strip_prefix("contact.").is_some_and(|f| {
                        !f.is_empty()
                            && f.split('.')
                                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    });
                if !known {
                    return Err(format!(
                        "unknown merge field `{{{{{path}}}}}` (use contact.FIELD, campaign.name, campaign.code, unsubscribeUrl or postalAddress)"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `text` with its merge fields filled; `html` escapes values unless the field is `{{{...}}}`.
pub(crate) fn render(text: &str, context: &Context, html: bool) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Broken(at) => out.push_str(text.get(at..).unwrap_or_default()),
            Piece::Field { path, fallback, raw } => {
                let value = context.lookup(path).unwrap_or_else(|| fallback.unwrap_or_default().to_owned());
                if html && !raw {
                    out.push_str(&escape(&value));
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

enum Piece<'a> {
    Text(&'a str),
    Field {
        path: &'a str,
        fallback: Option<&'a str>,
        raw: bool,
    },
    /// An unclosed `{{` at this byte offset: the rest is text.
    Broken(usize),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(found) = text.get(rest..).and_then(|t| t.find("{{")) {
        let open = rest + found;
        out.push(Piece::Text(&text[rest..open]));
        let raw = text[open..].starts_with("{{{");
        let (start, close) = if raw { (open + 3, "}}}") } else { (open + 2, "}}") };
        let Some(len) = text[start..].find(close) else {
            out.push(Piece::Broken(open));
            return out;
        };
        let inner = text[start..start + len].trim();
        let (path, fallback) = match inner.split_once('|') {
            Some((p, f)) => (p.trim(), Some(f.trim())),
            None => (inner, None),
        };
        out.push(Piece::Field { path, fallback, raw });
        rest = start + len + close.len();
    }
    out.push(Piece::Text(&text[rest..]));
    out
}

/// `text` safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A readable plain-text version of an HTML body: paragraphs and line breaks kept, links as
/// `text (url)`, tags dropped, entities decoded.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut link: Option<String> = None;
    let mut skipping = false;
    while let Some(open) = rest.find('<') {
        if !skipping {
            out.push_str(&unescape(&rest[..open]));
        }
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        let closing = tag.starts_with('/');
        match name.as_str() {
            "style" | "script" | "head" | "title" => skipping = !closing,
            "br" => out.push('\n'),
            "p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "tr" | "table" | "ul" | "ol" if closing => {
                out.push_str("\n\n")
            }
            "li" if !closing => out.push_str("\n- "),
            "a" if !closing => link = attribute(tag, "href").filter(|h| !h.starts_with('#')),
            "a" => {
                if let Some(href) = link.take() {
                    out.push_str(&format!(" ({href})"));
                }
            }
            _ => {}
        }
    }
    if !skipping {
        out.push_str(&unescape(rest));
    }
    // Whitespace as a reader expects it: single spaces, at most one blank line.
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")) {
        if line.is_empty() {
            blank += 1;
            if blank == 1 && !text.is_empty() {
                text.push('\n');
            }
        } else {
            blank = 0;
            text.push_str(&line);
            text.push('\n');
        }
    }
    text.trim().to_owned()
}

/// The value of attribute `name` in the text of a tag (`a href="x"`), entities decoded.
pub(crate) fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower.get(from..)?.find(name) {
        let at = from + found;
        let before_ok = at > 0 && lower.as_bytes().get(at - 1).is_some_and(u8::is_ascii_whitespace);
        let after = tag[at + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            let inner = if quote == '"' || quote == '\'' {
                let body = &value[1..];
                &body[..body.find(quote)?]
            } else {
                value.split(|c: char| c.is_whitespace() || c == '>').next()?
            };
            return Some(unescape(inner));
        }
        from = at + name.len();
    }
    None
}
