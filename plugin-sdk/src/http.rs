//! Outbound HTTP (SDK 1.1): only to the origins the admin granted (`http:https://host[:port]`
//! in `plugin.toml`'s capabilities; `http-private:` also allows private addresses). Kith
//! resolves names, follows up to 5 redirects (each checked like the first), caps time and
//! response size (1 MiB) and rate-limits requests. Put `{{secret:KEY}}` in a header value to
//! have Kith insert the secret setting KEY: secrets never enter the plugin.
//!
//! ```
//! use kith_plugin_sdk::{http, testing::TestHost};
//! let host = TestHost::new().grant("http:https://erp.example.org");
//! host.http_stub("https://erp.example.org/orders", http::Response::new(200, br#"{"open": 3}"#.to_vec()));
//! let open: serde_json::Value = host.run(|| {
//!     http::send(&http::Request::get("https://erp.example.org/orders").header("Authorization", "Bearer {{secret:token}}"))?.json()
//! }).unwrap();
//! assert_eq!(open["open"], 3);
//! ```

use serde::de::DeserializeOwned;

use crate::types::{Error, ErrorCode, Result};

/// A request, built from [`Request::get`], [`Request::post`] or [`Request::new`] (a minor
/// version may add fields).
///
/// ```
/// let request = kith_plugin_sdk::http::Request::post("https://api.example.org/x", b"{}".to_vec())
///     .header("Content-Type", "application/json")
///     .timeout_ms(2_000);
/// assert_eq!(request.method, "POST");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
    pub method: String,
    /// An absolute http(s) URL.
    pub url: String,
    /// Headers (`{{secret:KEY}}` is replaced by Kith).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<Vec<u8>>,
    /// Milliseconds (default 10,000, at most 30,000).
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request with any method, without a body.
    ///
    /// ```
    /// let r = kith_plugin_sdk::http::Request::new("PUT", "https://a.example/x").body(b"{}".to_vec());
    /// assert_eq!((r.method.as_str(), r.body.as_deref()), ("PUT", Some(&b"{}"[..])));
    /// ```
    pub fn new(method: &str, url: &str) -> Request {
        Request { method: method.into(), url: url.into(), headers: Vec::new(), body: None, timeout_ms: None }
    }

    /// A GET.
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::http::Request::get("https://a.example").method, "GET");
    /// ```
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A POST with a body.
    ///
    /// ```
    /// let r = kith_plugin_sdk::http::Request::post("https://a.example", b"x".to_vec());
    /// assert_eq!(r.body.as_deref(), Some(&b"x"[..]));
    /// ```
    pub fn post(url: &str, body: Vec<u8>) -> Request {
        Request::new("POST", url).body(body)
    }

    /// Sets the body.
    ///
    /// ```
    /// let r = kith_plugin_sdk::http::Request::new("PATCH", "https://a.example").body(b"x".to_vec());
    /// assert_eq!(r.body.as_deref(), Some(&b"x"[..]));
    /// ```
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = Some(body);
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// let r = kith_plugin_sdk::http::Request::get("https://a.example").header("Accept", "application/json");
    /// assert_eq!(r.headers.len(), 1);
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the timeout.
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::http::Request::get("https://a.example").timeout_ms(500).timeout_ms, Some(500));
    /// ```
    pub fn timeout_ms(mut self, ms: u32) -> Request {
        self.timeout_ms = Some(ms);
        self
    }
}

/// A response (after redirects). Kith makes responses; tests make one with [`Response::new`].
///
/// ```
/// let r = kith_plugin_sdk::http::Response::new(404, b"missing".to_vec());
/// assert_eq!((r.status, r.text().as_str()), (404, "missing"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body (at most 1 MiB).
    pub body: Vec<u8>,
    /// The URL that answered.
    pub url: String,
}

impl Response {
    /// A response, for tests.
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::http::Response::new(200, vec![]).status, 200);
    /// ```
    pub fn new(status: u16, body: Vec<u8>) -> Response {
        Response { status, headers: Vec::new(), body, url: String::new() }
    }

    /// The body as text (invalid UTF-8 replaced).
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::http::Response::new(200, b"ok".to_vec()).text(), "ok");
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON.
    ///
    /// ```
    /// let n: u32 = kith_plugin_sdk::http::Response::new(200, b"7".to_vec()).json().unwrap();
    /// assert_eq!(n, 7);
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(ErrorCode::InvalidInput, format!("the response is not the JSON expected: {e}")))
    }

    /// A header's value (case-insensitive name).
    ///
    /// ```
    /// let mut r = kith_plugin_sdk::http::Response::new(200, vec![]);
    /// r.headers.push(("Content-Type".into(), "text/plain".into()));
    /// assert_eq!(r.header("content-type"), Some("text/plain"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends a request.
///
/// ```
/// use kith_plugin_sdk::{http, testing::TestHost, ErrorCode};
/// let err = TestHost::new().run(|| http::send(&http::Request::get("https://evil.example/"))).unwrap_err();
/// assert_eq!(err.code, ErrorCode::Denied);
/// ```
pub fn send(request: &Request) -> Result<Response> {
    crate::host::http_send(request)
}

/// `scheme://host:port` of an absolute http(s) URL (used by the test host to check grants).
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host.to_owned(), port.parse().ok()?)
        }
        _ => (authority.clone(), default),
    };
    Some(format!("{scheme}://{host}:{port}"))
}
