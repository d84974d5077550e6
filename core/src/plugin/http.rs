//! Outbound HTTP for plugins (`kith:plugin/http@1.1.0`): only to granted origins, checked on
//! every redirect hop and on the resolved address (the host resolves names itself and connects
//! to the address it checked, so DNS rebinding cannot reach a private address), with timeouts,
//! a response size cap, a per-plugin rate limit and secrets injected host-side. The guarded
//! client itself is `service::outbound`, shared with webhooks; this module holds what is the
//! plugin's own: its grants, rate limit, secrets and WIT types.

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

impl HttpPolicy {
    fn inject(&self, value: &str) -> Result<String, HostError> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("{{secret:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 9..];
            let end = after
                .find("}}")
                .ok_or_else(|| error(ErrorCode::InvalidInput, "unterminated `{{secret:` in a header"))?;
            let key = &after[..end];
            let secret = self
                .secrets
                .get(key)
                .ok_or_else(|| error(ErrorCode::InvalidInput, format!("no secret setting `{key}` is set")))?;
            out.push_str(secret);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
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
    for Header { name, value } in &request.headers {
        if matches!(name.to_ascii_lowercase().as_str(), "host" | "content-length" | "transfer-encoding" | "connection")
        {
            return Err(error(ErrorCode::InvalidInput, format!("the header `{name}` is set by Kith")));
        }
        // Credentials: secret-derived values and the headers browsers and curl treat as such.
        let credential = value.contains("{{secret:")
            || matches!(name.to_ascii_lowercase().as_str(), "authorization" | "proxy-authorization" | "cookie");
        headers.push((name.clone(), policy.inject(value)?, credential));
    }
    let timeout =
        request.timeout_ms.map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(u64::from(ms))).min(MAX_TIMEOUT);
    let request = OutboundRequest {
        method,
        url: request.url.clone(),
        headers,
        body: request.body.clone(),
        timeout,
        user_agent: "kith-plugin",
        max_body: MAX_BODY,
        truncate_body: false,
    };
    let response = outbound::send(policy, request, None).await.map_err(host_error)?;
    Ok(Response {
        status: response.status,
        headers: response.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
        body: response.body,
        url: response.url,
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
}
