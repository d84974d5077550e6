//! Outbound HTTP for plugins (`kith:plugin/http@1.1.0`): only to granted origins, checked on
//! every redirect hop and on the resolved address (the host resolves names itself and connects
//! to the address it checked, so DNS rebinding cannot reach a private address), with timeouts,
//! a response size cap, a per-plugin rate limit and secrets injected host-side. The guarded
//! client itself is `service::outbound`, shared with webhooks; this module holds what is the
//! plugin's own: its grants, rate limit, secrets and WIT types.
//!
//! An origin is granted by name (`http:https://api.example.org`) or as whatever an admin puts
//! in one of the plugin's settings (`http:setting:url`, for a connector to a server each
//! organisation has its own of). Secrets (`{{secret:KEY}}`) are injected into header values
//! and request bodies (JSON-escaped in a JSON body, percent-encoded in a form), and taken out
//! again wherever the answer echoes them, so the plugin never holds one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::service::outbound::{self, Failure, OutboundError, OutboundRequest};
pub use crate::service::outbound::{is_private, origin};

use crate::plugin::host::v1::kith::plugin::http::{Header, Request, Response};
use crate::plugin::host::v1::kith::plugin::types::{ErrorCode, HostError};

/// Largest response body a plugin receives.
pub const MAX_BODY: usize = 1 << 20;
/// Redirects followed, each checked like the first request.
pub const MAX_REDIRECTS: usize = outbound::MAX_REDIRECTS;
/// Default and longest request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body.
const MAX_REQUEST_BODY: usize = 1 << 20;
/// The shortest secret taken out of answers.
const MIN_REDACTED: usize = 4;

fn error(code: ErrorCode, message: impl Into<String>) -> HostError {
    HostError { code, message: message.into() }
}

/// The origin of an `http:` / `http-private:` capability, normalised; `None` if malformed.
pub fn capability_origin(capability: &str) -> Option<(String, bool)> {
    let (rest, private) = match capability.strip_prefix("http-private:") {
        Some(rest) => (rest, true),
        None => (capability.strip_prefix("http:")?, false),
    };
    let url = url::Url::parse(rest).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.query().is_some() {
        return None;
    }
    Some((origin(&url)?, private))
}

/// The setting an `http:setting:KEY` (`http-private:setting:KEY`) capability names, with
/// whether private addresses are allowed; `None` for any other capability.
pub fn capability_setting(capability: &str) -> Option<(&str, bool)> {
    let (rest, private) = match capability.strip_prefix("http-private:") {
        Some(rest) => (rest, true),
        None => (capability.strip_prefix("http:")?, false),
    };
    rest.strip_prefix("setting:").filter(|key| !key.is_empty()).map(|key| (key, private))
}

/// The origin of a URL an admin set: an absolute `http` or `https` URL with a host.
pub fn url_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    origin(&url)
}

/// The origins a plugin's grants let it reach, those named by a setting read from `settings`
/// (a setting left empty grants nothing).
pub fn granted_origins<'a>(
    grants: impl IntoIterator<Item = &'a String>,
    settings: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Vec<(String, bool)> {
    grants
        .into_iter()
        .filter_map(|grant| {
            capability_origin(grant).or_else(|| {
                let (key, private) = capability_setting(grant)?;
                Some((url_origin(settings.get(key)?.as_str()?)?, private))
            })
        })
        .collect()
}

/// A per-plugin budget of requests a minute.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// `per_minute` requests a minute, in bursts of up to that many.
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit { per_minute, state: Mutex::new((f64::from(per_minute), Instant::now())) }
    }

    pub(crate) fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * f64::from(self.per_minute) / 60.0;
        state.0 = (state.0 + refill).min(f64::from(self.per_minute));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a plugin may reach.
#[derive(Debug)]
pub struct HttpPolicy {
    /// Granted origins, with whether private addresses are allowed for each.
    pub origins: Vec<(String, bool)>,
    /// Secret settings, by key, for `{{secret:KEY}}` in header values.
    pub secrets: std::collections::BTreeMap<String, String>,
    /// The rate limit.
    pub rate: Arc<RateLimit>,
}

/// How a secret is written where it is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// As it is (header values, other bodies).
    Raw,
    /// Inside a JSON string: escaped as JSON escapes it, without the quotes.
    Json,
    /// In an `application/x-www-form-urlencoded` body: percent-encoded.
    Form,
}

impl Encoding {
    fn of_content_type(content_type: Option<&str>) -> Encoding {
        let media = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media == "application/json" || media.ends_with("+json") {
            Encoding::Json
        } else if media == "application/x-www-form-urlencoded" {
            Encoding::Form
        } else {
            Encoding::Raw
        }
    }

    fn encode(self, secret: &str) -> String {
        match self {
            Encoding::Raw => secret.to_owned(),
            Encoding::Json => {
                let quoted = serde_json::Value::String(secret.to_owned()).to_string();
                quoted[1..quoted.len() - 1].to_owned()
            }
            Encoding::Form => url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        }
    }
}

impl HttpPolicy {
    /// `value` with its `{{secret:KEY}}` placeholders replaced, written as `encoding` says;
    /// the keys injected are added to `injected`.
    fn inject_as(
        &self,
        value: &str,
        encoding: Encoding,
        where_: &str,
        injected: &mut Vec<String>,
    ) -> Result<String, HostError> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("{{secret:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 9..];
            let end = after
                .find("}}")
                .ok_or_else(|| error(ErrorCode::InvalidInput, format!("unterminated `{{{{secret:` in {where_}")))?;
            let key = &after[..end];
            let secret = self
                .secrets
                .get(key)
                .ok_or_else(|| error(ErrorCode::InvalidInput, format!("no secret setting `{key}` is set")))?;
            out.push_str(&encoding.encode(secret));
            if !injected.iter().any(|k| k == key) {
                injected.push(key.to_owned());
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    #[cfg(test)]
    fn inject(&self, value: &str) -> Result<String, HostError> {
        self.inject_as(value, Encoding::Raw, "a header", &mut Vec::new())
    }

    /// `bytes` with every form an injected secret may be echoed in (as it is, JSON-escaped,
    /// percent-encoded) replaced by its placeholder: the plugin never reads a secret back.
    fn redact(&self, bytes: Vec<u8>, injected: &[String]) -> Vec<u8> {
        let mut out = bytes;
        for key in injected {
            // Shorter secrets are not looked for: replacing every "abc" would garble the answer.
            let Some(secret) = self.secrets.get(key).filter(|s| s.len() >= MIN_REDACTED) else { continue };
            let placeholder = format!("{{{{secret:{key}}}}}");
            for form in [Encoding::Raw, Encoding::Json, Encoding::Form] {
                out = replace_all(&out, form.encode(secret).as_bytes(), placeholder.as_bytes());
            }
        }
        out
    }
}

/// `haystack` with every `needle` replaced by `with`.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

impl outbound::Policy for HttpPolicy {
    fn allowed(&self, url: &url::Url) -> Result<bool, OutboundError> {
        let origin = origin(url)
            .ok_or_else(|| OutboundError { failure: Failure::Invalid, message: format!("`{url}` has no host") })?;
        match self.origins.iter().find(|(o, _)| *o == origin) {
            Some((_, private)) => Ok(*private),
            None => Err(OutboundError {
                failure: Failure::Denied,
                message: format!("the plugin was not granted `http:{origin}`"),
            }),
        }
    }

    fn private_hint(&self) -> &str {
        "grant `http-private:` to allow it"
    }
}

fn host_error(err: OutboundError) -> HostError {
    let code = match err.failure {
        Failure::Invalid => ErrorCode::InvalidInput,
        Failure::Denied => ErrorCode::Denied,
        Failure::Unavailable => ErrorCode::Unavailable,
        Failure::LimitExceeded => ErrorCode::LimitExceeded,
    };
    error(code, err.message)
}

/// Sends `request` for a plugin under `policy`.
pub async fn send(policy: &HttpPolicy, request: Request) -> Result<Response, HostError> {
    if !policy.rate.take() {
        return Err(error(ErrorCode::LimitExceeded, "too many HTTP requests: the plugin's rate limit is spent"));
    }
    let method = match request.method.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") => {
            hyper::Method::from_bytes(m.as_bytes()).unwrap_or(hyper::Method::GET)
        }
        other => return Err(error(ErrorCode::InvalidInput, format!("unsupported method `{other}`"))),
    };
    if request.body.as_ref().is_some_and(|b| b.len() > MAX_REQUEST_BODY) {
        return Err(error(ErrorCode::LimitExceeded, "request bodies are at most 1 MiB"));
    }
    let mut headers = Vec::with_capacity(request.headers.len());
    let mut injected = Vec::new();
    for Header { name, value } in &request.headers {
        if matches!(name.to_ascii_lowercase().as_str(), "host" | "content-length" | "transfer-encoding" | "connection")
        {
            return Err(error(ErrorCode::InvalidInput, format!("the header `{name}` is set by Kith")));
        }
        // Credentials: secret-derived values and the headers browsers and curl treat as such.
        let credential = value.contains("{{secret:")
            || matches!(name.to_ascii_lowercase().as_str(), "authorization" | "proxy-authorization" | "cookie");
        headers.push((name.clone(), policy.inject_as(value, Encoding::Raw, "a header", &mut injected)?, credential));
    }
    let body = match &request.body {
        Some(body) if body.windows(9).any(|w| w == b"{{secret:") => {
            let text = std::str::from_utf8(body)
                .map_err(|_| error(ErrorCode::InvalidInput, "a body with `{{secret:` placeholders must be UTF-8"))?;
            let content_type =
                request.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-type")).map(|h| h.value.as_str());
            let encoding = Encoding::of_content_type(content_type);
            Some(policy.inject_as(text, encoding, "the body", &mut injected)?.into_bytes())
        }
        other => other.clone(),
    };
    let timeout =
        request.timeout_ms.map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(u64::from(ms))).min(MAX_TIMEOUT);
    let request = OutboundRequest {
        method,
        url: request.url.clone(),
        headers,
        body,
        timeout,
        user_agent: "kith-plugin",
        max_body: MAX_BODY,
        truncate_body: false,
    };
    let response = outbound::send(policy, request, None).await.map_err(host_error)?;
    if injected.is_empty() {
        return Ok(Response {
            status: response.status,
            headers: response.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
            body: response.body,
            url: response.url,
        });
    }
    let redact_text = |text: String| String::from_utf8_lossy(&policy.redact(text.into_bytes(), &injected)).into_owned();
    Ok(Response {
        status: response.status,
        headers: response.headers.into_iter().map(|(name, value)| Header { name, value: redact_text(value) }).collect(),
        body: policy.redact(response.body, &injected),
        url: redact_text(response.url),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_private_addresses() {
        assert_eq!(
            capability_origin("http:https://API.example.org"),
            Some(("https://api.example.org:443".into(), false))
        );
        assert_eq!(capability_origin("http-private:http://10.0.0.5:8080"), Some(("http://10.0.0.5:8080".into(), true)));
        assert_eq!(capability_origin("http:ftp://example.org"), None);
        assert_eq!(capability_origin("http:https://example.org/path"), None);
        // Which addresses are private is `service::outbound`'s, tested there.
    }

    #[test]
    fn secrets_are_injected_host_side() {
        let policy = HttpPolicy {
            origins: vec![],
            secrets: [("token".to_owned(), "s3cr3t".to_owned())].into(),
            rate: Arc::new(RateLimit::new(2)),
        };
        assert_eq!(policy.inject("Bearer {{secret:token}}").unwrap(), "Bearer s3cr3t");
        assert!(policy.inject("{{secret:nope}}").is_err());
        assert!(policy.rate.take() && policy.rate.take() && !policy.rate.take());
    }

    #[test]
    fn secrets_in_bodies_are_written_for_their_content_type_and_never_read_back() {
        let policy = HttpPolicy {
            origins: vec![],
            secrets: [("password".to_owned(), "p\"a&ss w".to_owned())].into(),
            rate: Arc::new(RateLimit::new(2)),
        };
        let mut injected = Vec::new();
        let json = r#"{"params": ["admin", {"password": "{{secret:password}}"}]}"#;
        let body = policy
            .inject_as(
                json,
                Encoding::of_content_type(Some("application/json; charset=utf-8")),
                "the body",
                &mut injected,
            )
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["params"][1]["password"], "p\"a&ss w", "JSON-escaped: the body stays JSON");
        assert_eq!(injected, vec!["password".to_owned()]);
        let form = policy
            .inject_as(
                "user=a&pass={{secret:password}}",
                Encoding::of_content_type(Some("application/x-www-form-urlencoded")),
                "the body",
                &mut Vec::new(),
            )
            .unwrap();
        assert_eq!(form, "user=a&pass=p%22a%26ss+w");
        // An answer echoing it, in any of those forms, reaches the plugin without it.
        let echoed = format!("bad password {} / {} / {}", "p\"a&ss w", r#"p\"a&ss w"#, "p%22a%26ss+w");
        let redacted = String::from_utf8(policy.redact(echoed.into_bytes(), &injected)).unwrap();
        assert!(!redacted.contains("a&ss") && !redacted.contains("a%26ss"), "{redacted}");
        assert_eq!(redacted.matches("{{secret:password}}").count(), 3, "{redacted}");
        // Nothing injected, nothing touched; a secret of a few characters is not looked for.
        assert_eq!(policy.redact(b"p\"a&ss w".to_vec(), &[]), b"p\"a&ss w".to_vec());
        let short = HttpPolicy { secrets: [("pin".to_owned(), "ab".to_owned())].into(), ..policy };
        assert_eq!(short.redact(b"abcab".to_vec(), &["pin".to_owned()]), b"abcab".to_vec());
    }

    #[test]
    fn an_origin_can_be_granted_as_a_setting() {
        assert_eq!(capability_setting("http-private:setting:url"), Some(("url", true)));
        assert_eq!(capability_setting("http:setting:url"), Some(("url", false)));
        assert_eq!(capability_setting("http:https://example.org"), None);
        assert_eq!(capability_setting("http:setting:"), None);
        let settings = [("url".to_owned(), serde_json::json!("http://10.0.0.5:8000/acme/"))].into();
        let grants =
            vec!["http-private:setting:url".to_owned(), "http:https://api.example.org".to_owned(), "kv".to_owned()];
        assert_eq!(
            granted_origins(&grants, &settings),
            vec![("http://10.0.0.5:8000".to_owned(), true), ("https://api.example.org:443".to_owned(), false)]
        );
        let unset = [("url".to_owned(), serde_json::Value::Null)].into();
        assert_eq!(granted_origins(&grants, &unset).len(), 1, "an empty setting grants nothing");
        assert_eq!(url_origin("ftp://example.org/"), None);
    }
}
