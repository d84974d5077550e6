//! Outbound HTTP for plugins (`kith:plugin/http@1.1.0`): only to granted origins, checked on
//! every redirect hop and on the resolved address (the host resolves names itself and connects
//! to the address it checked, so DNS rebinding cannot reach a private address), with timeouts,
//! a response size cap, a per-plugin rate limit and secrets injected host-side.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::plugin::host::v1::kith::plugin::http::{Header, Request, Response};
use crate::plugin::host::v1::kith::plugin::types::{ErrorCode, HostError};

/// Largest response body a plugin receives.
pub const MAX_BODY: usize = 1 << 20;
/// Redirects followed, each checked like the first request.
pub const MAX_REDIRECTS: usize = 5;
/// Default and longest request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body.
const MAX_REQUEST_BODY: usize = 1 << 20;

fn error(code: ErrorCode, message: impl Into<String>) -> HostError {
    HostError { code, message: message.into() }
}

/// `scheme://host:port` of a URL, with the default port made explicit.
pub fn origin(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{}:{port}", url.scheme(), host.to_ascii_lowercase()))
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

/// Whether `ip` is anything but a public unicast address.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space (CGNAT)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64
        }
    }
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

    fn take(&self) -> bool {
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
    fn allowed(&self, url: &url::Url) -> Result<bool, HostError> {
        let origin = origin(url).ok_or_else(|| error(ErrorCode::InvalidInput, format!("`{url}` has no host")))?;
        match self.origins.iter().find(|(o, _)| *o == origin) {
            Some((_, private)) => Ok(*private),
            None => Err(error(ErrorCode::Denied, format!("the plugin was not granted `http:{origin}`"))),
        }
    }

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

async fn resolve(url: &url::Url, private_ok: bool) -> Result<SocketAddr, HostError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| error(ErrorCode::Unavailable, format!("cannot resolve {name}: {e}")))?
            .collect(),
        None => return Err(error(ErrorCode::InvalidInput, format!("`{url}` has no host"))),
    };
    // Every address the name resolves to must be allowed: no picking a public one to pass the
    // check and a private one to connect.
    if !private_ok && let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
        return Err(error(
            ErrorCode::Denied,
            format!(
                "{} resolves to {}, a private, loopback or link-local address (grant `http-private:` to allow it)",
                url.host_str().unwrap_or_default(),
                bad.ip()
            ),
        ));
    }
    addrs.into_iter().next().ok_or_else(|| error(ErrorCode::Unavailable, "the name resolves to no address"))
}

fn tls_config() -> Arc<tokio_rustls::rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<tokio_rustls::rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = tokio_rustls::rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    tokio_rustls::rustls::ClientConfig::builder()
                        .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            Arc::new(config)
        })
        .clone()
}

async fn one_hop(
    url: &url::Url,
    addr: SocketAddr,
    method: &hyper::Method,
    headers: &[(String, String, bool)],
    body: &Option<Vec<u8>>,
) -> Result<hyper::Response<hyper::body::Incoming>, HostError> {
    let io_err = |e: std::io::Error| error(ErrorCode::Unavailable, format!("cannot connect to {addr}: {e}"));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(io_err)?;
    let mut builder = hyper::Request::builder().method(method.clone()).uri(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    });
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    builder = builder.header(hyper::header::HOST, host).header(hyper::header::USER_AGENT, "kith-plugin");
    for (name, value, _) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(body.clone().unwrap_or_default())))
        .map_err(|e| error(ErrorCode::InvalidInput, format!("bad request: {e}")))?;
    let send_err = |e: hyper::Error| error(ErrorCode::Unavailable, format!("request failed: {e}"));
    if url.scheme() == "https" {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(url.host_str().unwrap_or_default().to_owned())
            .map_err(|e| error(ErrorCode::InvalidInput, format!("bad TLS name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| error(ErrorCode::Unavailable, format!("TLS with {addr}: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(send_err)?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(send_err)
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(send_err)?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(send_err)
    }
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
    let work = async {
        let mut url = url::Url::parse(&request.url)
            .map_err(|e| error(ErrorCode::InvalidInput, format!("`{}` is not a URL: {e}", request.url)))?;
        let mut method = method;
        let mut body = request.body.clone();
        let origin = url.origin();
        let mut headers = headers;
        for _ in 0..=MAX_REDIRECTS {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(error(ErrorCode::Denied, format!("`{url}`: only http and https are allowed")));
            }
            let private_ok = policy.allowed(&url)?;
            let addr = resolve(&url, private_ok).await?;
            let response = one_hop(&url, addr, &method, &headers, &body).await?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(hyper::header::LOCATION).and_then(|l| l.to_str().ok())
            {
                url = url
                    .join(location)
                    .map_err(|e| error(ErrorCode::InvalidInput, format!("bad redirect `{location}`: {e}")))?;
                // A redirect that leaves the first origin does not carry credentials on, even
                // to another granted origin, and they stay dropped should it come back.
                if url.origin() != origin {
                    headers.retain(|(_, _, credential)| !credential);
                }
                if status == hyper::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == hyper::Method::POST)
                {
                    method = hyper::Method::GET;
                    body = None;
                }
                continue;
            }
            let response_headers = response
                .headers()
                .iter()
                .map(|(n, v)| Header {
                    name: n.as_str().to_owned(),
                    value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
                })
                .collect();
            let mut collected = Vec::new();
            let mut incoming = response.into_body();
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(|e| error(ErrorCode::Unavailable, format!("reading the response: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    if collected.len() + data.len() > MAX_BODY {
                        return Err(error(ErrorCode::LimitExceeded, "the response body is larger than 1 MiB"));
                    }
                    collected.extend_from_slice(data);
                }
            }
            return Ok(Response {
                status: status.as_u16(),
                headers: response_headers,
                body: collected,
                url: url.to_string(),
            });
        }
        Err(error(ErrorCode::LimitExceeded, format!("more than {MAX_REDIRECTS} redirects")))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(error(ErrorCode::Unavailable, format!("timed out after {} ms", timeout.as_millis()))),
    }
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
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
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
