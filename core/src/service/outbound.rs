//! Guarded outbound HTTP, shared by plugins (`plugin::http`) and webhooks
//! (`service::webhook_delivery`): every hop of a request (the first and each redirect) is checked
//! by the caller's policy and on the address its name resolves to (Kith resolves names itself
//! and connects to the address it checked, so DNS rebinding cannot reach a private address),
//! with a time cap over the whole exchange and a cap on the response body. A caller that sends
//! many requests to one endpoint may keep its connection open between them ([`Reuse`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Redirects followed, each checked like the first request.
pub const MAX_REDIRECTS: usize = 5;

/// What kind of failure an outbound request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request itself is malformed (a bad URL, method or header).
    Invalid,
    /// The policy refuses the destination (an origin not allowed, a private address).
    Denied,
    /// The destination could not be reached or did not answer in time.
    Unavailable,
    /// A size or count cap was exceeded.
    LimitExceeded,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OutboundError {
    /// The kind of failure.
    pub failure: Failure,
    /// What happened, for the caller's log.
    pub message: String,
}

fn error(failure: Failure, message: impl Into<String>) -> OutboundError {
    OutboundError { failure, message: message.into() }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The method.
    pub method: hyper::Method,
    /// The absolute URL.
    pub url: String,
    /// Headers: name, value, and whether the value is a credential (dropped on a redirect that
    /// leaves the first origin).
    pub headers: Vec<(String, String, bool)>,
    /// The body.
    pub body: Option<Vec<u8>>,
    /// The cap on the whole exchange, redirects included.
    pub timeout: Duration,
    /// The `User-Agent`.
    pub user_agent: &'static str,
    /// The largest response body read.
    pub max_body: usize,
    /// Past `max_body`, keep the first `max_body` bytes (instead of failing).
    pub truncate_body: bool,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body (at most the request's `max_body`).
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

/// Who decides where requests may go.
pub trait Policy: Sync {
    /// Whether `url` may be reached: `Ok(true)` also allows private addresses, `Ok(false)` only
    /// public ones, an error refuses it.
    fn allowed(&self, url: &url::Url) -> Result<bool, OutboundError>;
    /// What the refusal of a private address says the caller can do about it.
    fn private_hint(&self) -> &str;
}

/// An open HTTP/1.1 connection kept between requests to one endpoint.
#[derive(Debug, Default)]
pub struct Reuse {
    open: Option<(SocketAddr, String, hyper::client::conn::http1::SendRequest<Full<Bytes>>)>,
}

/// `scheme://host:port` of a URL, with the default port made explicit.
pub fn origin(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{}:{port}", url.scheme(), host.to_ascii_lowercase()))
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

/// The address to connect to for `url`, refused when any address its name resolves to is
/// private and `private_ok` is false.
pub async fn resolve(url: &url::Url, private_ok: bool, private_hint: &str) -> Result<SocketAddr, OutboundError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| error(Failure::Unavailable, format!("cannot resolve {name}: {e}")))?
            .collect(),
        None => return Err(error(Failure::Invalid, format!("`{url}` has no host"))),
    };
    // Every address the name resolves to must be allowed: no picking a public one to pass the
    // check and a private one to connect.
    if !private_ok && let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
        return Err(error(
            Failure::Denied,
            format!(
                "{} resolves to {}, a private, loopback or link-local address ({private_hint})",
                url.host_str().unwrap_or_default(),
                bad.ip()
            ),
        ));
    }
    addrs.into_iter().next().ok_or_else(|| error(Failure::Unavailable, "the name resolves to no address"))
}

fn tls_config() -> std::sync::Arc<tokio_rustls::rustls::ClientConfig> {
    use std::sync::Arc;
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

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(url: &url::Url, addr: SocketAddr) -> Result<Sender, OutboundError> {
    let io_err = |e: std::io::Error| error(Failure::Unavailable, format!("cannot connect to {addr}: {e}"));
    let send_err = |e: hyper::Error| error(Failure::Unavailable, format!("request failed: {e}"));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(io_err)?;
    let _ = tcp.set_nodelay(true);
    if url.scheme() == "https" {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(url.host_str().unwrap_or_default().to_owned())
            .map_err(|e| error(Failure::Invalid, format!("bad TLS name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| error(Failure::Unavailable, format!("TLS with {addr}: {e}")))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(send_err)?;
        tokio::spawn(conn);
        Ok(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(send_err)?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

async fn one_hop(
    url: &url::Url,
    addr: SocketAddr,
    method: &hyper::Method,
    headers: &[(String, String, bool)],
    body: &Option<Vec<u8>>,
    user_agent: &str,
    reuse: &mut Option<&mut Reuse>,
) -> Result<hyper::Response<hyper::body::Incoming>, OutboundError> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let build = || {
        let mut builder = hyper::Request::builder().method(method.clone()).uri(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        });
        builder = builder.header(hyper::header::HOST, host.as_str()).header(hyper::header::USER_AGENT, user_agent);
        for (name, value, _) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(Bytes::from(body.clone().unwrap_or_default())))
            .map_err(|e| error(Failure::Invalid, format!("bad request: {e}")))
    };
    let request = build()?;
    let send_err = |e: hyper::Error| error(Failure::Unavailable, format!("request failed: {e}"));
    let key = format!("{}://{host}", url.scheme());
    if let Some(reuse) = reuse.as_deref_mut() {
        // A kept connection to the same address and host, if it is still open; a request it
        // fails to carry (the peer closed it meanwhile) goes again on a new one.
        if let Some((open_addr, open_key, mut sender)) = reuse.open.take()
            && open_addr == addr
            && open_key == key
            && sender.ready().await.is_ok()
        {
            match sender.send_request(request).await {
                Ok(response) => {
                    reuse.open = Some((addr, key, sender));
                    return Ok(response);
                }
                Err(err) if !err.is_canceled() && !err.is_closed() => return Err(send_err(err)),
                Err(_) => {}
            }
            let mut sender = connect(url, addr).await?;
            let response = sender.send_request(build()?).await.map_err(send_err)?;
            reuse.open = Some((addr, key, sender));
            return Ok(response);
        }
        let mut sender = connect(url, addr).await?;
        let response = sender.send_request(request).await.map_err(send_err)?;
        reuse.open = Some((addr, key, sender));
        return Ok(response);
    }
    let mut sender = connect(url, addr).await?;
    sender.send_request(request).await.map_err(send_err)
}

/// Sends `request` where `policy` allows it, following redirects (each hop checked again); with
/// `reuse`, over the connection kept from the previous request to the same address when it is
/// still open, and keeping this one open for the next.
pub async fn send(
    policy: &dyn Policy,
    request: OutboundRequest,
    mut reuse: Option<&mut Reuse>,
) -> Result<OutboundResponse, OutboundError> {
    let timeout = request.timeout;
    let work = async {
        let mut url = url::Url::parse(&request.url)
            .map_err(|e| error(Failure::Invalid, format!("`{}` is not a URL: {e}", request.url)))?;
        let mut method = request.method.clone();
        let mut body = request.body.clone();
        let origin = url.origin();
        let mut headers = request.headers.clone();
        for _ in 0..=MAX_REDIRECTS {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(error(Failure::Denied, format!("`{url}`: only http and https are allowed")));
            }
            let private_ok = policy.allowed(&url)?;
            let addr = resolve(&url, private_ok, policy.private_hint()).await?;
            let response = one_hop(&url, addr, &method, &headers, &body, request.user_agent, &mut reuse).await?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(hyper::header::LOCATION).and_then(|l| l.to_str().ok())
            {
                url = url
                    .join(location)
                    .map_err(|e| error(Failure::Invalid, format!("bad redirect `{location}`: {e}")))?;
                // A redirect that leaves the first origin does not carry credentials on, even
                // to another allowed origin, and they stay dropped should it come back.
                if url.origin() != origin {
                    headers.retain(|(_, _, credential)| !credential);
                }
                if status == hyper::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == hyper::Method::POST)
                {
                    method = hyper::Method::GET;
                    body = None;
                }
                // The redirect's own body is not read: its connection is not kept.
                if let Some(reuse) = reuse.as_deref_mut() {
                    reuse.open = None;
                }
                continue;
            }
            let response_headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut collected = Vec::new();
            let mut incoming = response.into_body();
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(|e| error(Failure::Unavailable, format!("reading the response: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    if collected.len() + data.len() > request.max_body {
                        if !request.truncate_body {
                            return Err(error(
                                Failure::LimitExceeded,
                                format!("the response body is larger than {}", size(request.max_body)),
                            ));
                        }
                        let room = request.max_body - collected.len();
                        collected.extend_from_slice(&data[..room]);
                        // The rest is not read: the connection cannot carry another request.
                        if let Some(reuse) = reuse.as_deref_mut() {
                            reuse.open = None;
                        }
                        break;
                    }
                    collected.extend_from_slice(data);
                }
            }
            return Ok(OutboundResponse {
                status: status.as_u16(),
                headers: response_headers,
                body: collected,
                url: url.to_string(),
            });
        }
        Err(error(Failure::LimitExceeded, format!("more than {MAX_REDIRECTS} redirects")))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(error(Failure::Unavailable, format!("timed out after {} ms", timeout.as_millis()))),
    }
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
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
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
    }
}
