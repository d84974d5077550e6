//! Inbound HTTP (SDK 1.3): Kith serves the routes a plugin declares in `plugin.toml`
//! (`[[routes]]`, under `/p/PLUGIN/`) by calling [`crate::Plugin::handle_request`]. A handler
//! reads and writes like an event handler (the same grants); its writes commit when it answers
//! with a status below 500. Use [`crate::links`] for links that must not be forged.
//!
//! ```
//! use kith_plugin_sdk::routes::{Request, Response};
//! let request = Request::new("GET", "/ping").query("x=1");
//! assert_eq!(request.param("x").as_deref(), Some("1"));
//! let response = Response::text(200, "pong");
//! assert_eq!((response.status, response.body.as_slice()), (200, &b"pong"[..]));
//! ```

/// A request to one of the plugin's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The declared route's path (`/unsubscribe`), as in `plugin.toml`.
    pub route: String,
    /// The request's path under `/p/PLUGIN` (`/unsubscribe`).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (at most the route's cap).
    pub body: Vec<u8>,
    /// Who called (`user:...`, `token:...`) on `token` routes; `None` on public routes.
    pub caller: Option<String>,
}

impl Request {
    /// A request to `path` (also its route), for tests.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            route: path.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            caller: None,
        }
    }

    /// Sets the query string.
    pub fn query(mut self, query: &str) -> Request {
        self.query = query.into();
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &[u8]) -> Request {
        self.body = body.to_vec();
        self
    }

    /// The first value of query parameter `name`, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        form_pairs(&self.query).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first value of form field `name` of an `application/x-www-form-urlencoded` body.
    pub fn form(&self, name: &str) -> Option<String> {
        form_pairs(&String::from_utf8_lossy(&self.body)).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value of header `name` (any case).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The path and query, as [`crate::links::verify`] takes them.
    pub fn url(&self) -> String {
        if self.query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.query) }
    }
}

/// `name=value&...` decoded (`+` as space, `%XX` escapes).
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status` and no body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Plain text.
    pub fn text(status: u16, text: &str) -> Response {
        Response::new(status).header("content-type", "text/plain; charset=utf-8").with_body(text.as_bytes())
    }

    /// An HTML page.
    pub fn html(status: u16, html: &str) -> Response {
        Response::new(status).header("content-type", "text/html; charset=utf-8").with_body(html.as_bytes())
    }

    /// JSON.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status).header("content-type", "application/json").with_body(value.to_string().as_bytes())
    }

    /// A redirect (302) to `location`.
    pub fn redirect(location: &str) -> Response {
        Response::new(302).header("location", location)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: &[u8]) -> Response {
        self.body = body.to_vec();
        self
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
