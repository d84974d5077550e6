//! Tryton's JSON-RPC over the plugin's HTTP grant: the session (logged in with the password
//! Kith injects into the login request, which the plugin never sees), calls with the user's
//! context, and Tryton's encoding of decimals, dates and times.

use std::cell::RefCell;

use kith_plugin_sdk::http;
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::engine::SyncError;

/// One request's time budget: an event waits for its pushes.
const TIMEOUT_MS: u32 = 8000;

/// A logged-in session, kept by the instance between calls (logging in checks a password
/// hash: once per instance, not once per call). Dropped on a 401 or 403, and logged in again.
#[derive(Clone)]
struct Session {
    /// The URL and user it belongs to (a changed setting starts another).
    owner: (String, String),
    header: String,
    context: Json,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// A client of one Tryton database.
pub(crate) struct Client {
    /// `http://host:port/DATABASE/rpc/`.
    endpoint: String,
    user: String,
    session: Option<Session>,
    next_id: u64,
    /// Requests sent (the benchmark and the dry run report it).
    pub(crate) requests: u64,
}

impl Client {
    /// A client of the database at `url` (`http://host:port/DATABASE/`), logging in as `user`.
    pub(crate) fn new(url: &str, user: &str) -> Client {
        let endpoint = format!("{}/rpc/", url.trim_end_matches('/'));
        let owner = (endpoint.clone(), user.to_owned());
        let session = SESSION.with(|s| s.borrow().clone()).filter(|s| s.owner == owner);
        Client { endpoint, user: user.to_owned(), session, next_id: 1, requests: 0 }
    }

    /// The user's context (company, language): passed with every call.
    pub(crate) fn context(&mut self) -> Result<Json, SyncError> {
        Ok(self.session()?.context.clone())
    }

    fn session(&mut self) -> Result<&Session, SyncError> {
        if self.session.is_none() {
            let session = self.login()?;
            SESSION.with(|s| *s.borrow_mut() = Some(session.clone()));
            self.session = Some(session);
        }
        self.session.as_ref().ok_or_else(|| SyncError::retry("no session"))
    }

    fn login(&mut self) -> Result<Session, SyncError> {
        // `{{secret:password}}` is replaced by Kith, JSON-escaped, in the request it sends.
        let body = json!({
            "id": 0,
            "method": "common.db.login",
            "params": [self.user, {"password": "{{secret:password}}"}, "en"],
        });
        let result = self.post(&body, None).map_err(|err| match err.status {
            Some(401 | 403) => SyncError::fatal(format!(
                "Tryton refused the login of `{}`: check the username and password settings",
                self.user
            )),
            _ => err,
        })?;
        let (Some(uid), Some(token)) = (result.get(0).and_then(Json::as_i64), result.get(1).and_then(Json::as_str))
        else {
            return Err(SyncError::fatal(format!("Tryton's login answered {result}")));
        };
        let header = format!("Session {}", base64(format!("{}:{uid}:{token}", self.user).as_bytes()));
        let preferences = self
            .post(&json!({"id": 1, "method": "model.res.user.get_preferences", "params": [true, {}]}), Some(&header))?;
        let mut context = serde_json::Map::new();
        for key in ["company", "companies", "company_filter", "language", "employee", "employees"] {
            if let Some(value) = preferences.get(key) {
                context.insert(key.to_owned(), value.clone());
            }
        }
        Ok(Session { owner: (self.endpoint.clone(), self.user.clone()), header, context: Json::Object(context) })
    }

    /// Calls `method` with `params` (the context is appended), logging in again once if the
    /// session expired.
    pub(crate) fn call(&mut self, method: &str, mut params: Vec<Json>) -> Result<Json, SyncError> {
        let context = self.context()?;
        params.push(context);
        for attempt in 0..2 {
            let header = self.session()?.header.clone();
            self.next_id += 1;
            let body = json!({"id": self.next_id, "method": method, "params": params});
            match self.post(&body, Some(&header)) {
                Err(err) if matches!(err.status, Some(401 | 403)) && attempt == 0 => {
                    self.session = None;
                    SESSION.with(|s| *s.borrow_mut() = None);
                }
                other => return other.map_err(|err| err.context(method)),
            }
        }
        Err(SyncError::retry(format!("{method}: Tryton refused the session twice")))
    }

    fn post(&mut self, body: &Json, session: Option<&str>) -> Result<Json, SyncError> {
        self.requests += 1;
        let mut request = http::Request::post(&self.endpoint, body.to_string().into_bytes())
            .header("Content-Type", "application/json")
            .timeout_ms(TIMEOUT_MS);
        if let Some(header) = session {
            request = request.header("Authorization", header);
        }
        let response = http::send(&request).map_err(|err| match err.code {
            // Not granted, or a malformed URL: nothing a retry changes.
            kith_plugin_sdk::ErrorCode::Denied | kith_plugin_sdk::ErrorCode::InvalidInput => {
                SyncError::fatal(format!("Tryton at {}: {}", self.endpoint, err.message))
            }
            _ => SyncError::retry(format!("Tryton at {}: {}", self.endpoint, err.message)),
        })?;
        match response.status {
            200 => {}
            status @ (401 | 403) => return Err(SyncError::status(status, true, format!("HTTP {status}"))),
            status @ (429 | 500..=599) => {
                return Err(SyncError::status(status, true, format!("Tryton answered HTTP {status}")));
            }
            status => {
                let text: String = response.text().chars().take(300).collect();
                return Err(SyncError::status(status, false, format!("Tryton answered HTTP {status}: {text}")));
            }
        }
        let answer: Json =
            response.json().map_err(|err| SyncError::retry(format!("Tryton's answer is not JSON: {}", err.message)))?;
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            return Err(fault(error));
        }
        Ok(answer.get("result").cloned().unwrap_or(Json::Null))
    }
}

/// A JSON-RPC error: `["UserError", [message, description, ...]]` is the data's fault (not
/// retried); a concurrency or database error is retried; anything else is reported as it is.
fn fault(error: &Json) -> SyncError {
    let kind = error.get(0).and_then(Json::as_str).unwrap_or("error");
    let detail = error.get(1);
    let message = match detail {
        Some(Json::Array(parts)) => {
            parts.iter().filter_map(Json::as_str).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ")
        }
        Some(Json::String(text)) => text.clone(),
        _ => String::new(),
    };
    let text = if message.is_empty() { kind.to_owned() } else { format!("{kind}: {message}") };
    match kind {
        "UserError" | "UserWarning" | "AccessError" => SyncError::fatal(text),
        _ if text.contains("ConcurrencyException") || text.contains("database is locked") => SyncError::retry(text),
        _ => SyncError::fatal(text),
    }
}

/// RFC 4648 base64 (for the session header).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A decimal as Tryton reads it.
pub(crate) fn decimal(value: Decimal) -> Json {
    json!({"__class__": "Decimal", "decimal": value.normalize().to_string()})
}

/// A time (RFC 3339) as Tryton reads it: naive, in UTC.
pub(crate) fn datetime(text: &str) -> Option<Json> {
    let at = chrono::DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&chrono::Utc);
    use chrono::{Datelike as _, Timelike as _};
    Some(json!({
        "__class__": "datetime", "year": at.year(), "month": at.month(), "day": at.day(),
        "hour": at.hour(), "minute": at.minute(), "second": at.second(), "microsecond": at.timestamp_subsec_micros(),
    }))
}

/// A value of Tryton's as text: decimals as written, dates `YYYY-MM-DD`, times RFC 3339 in
/// UTC with microseconds, numbers and strings as they are; `None` for null and false.
pub(crate) fn text(value: &Json) -> Option<String> {
    match value {
        Json::Null | Json::Bool(false) => None,
        Json::Bool(true) => Some("true".into()),
        Json::String(s) => Some(s.clone()).filter(|s| !s.trim().is_empty()),
        Json::Number(n) => Some(n.to_string()),
        Json::Object(map) => {
            let int = |key: &str| map.get(key).and_then(Json::as_i64).unwrap_or_default();
            match map.get("__class__").and_then(Json::as_str) {
                Some("Decimal") => map.get("decimal").and_then(Json::as_str).map(str::to_owned),
                Some("date") => Some(format!("{:04}-{:02}-{:02}", int("year"), int("month"), int("day"))),
                Some("datetime") => Some(format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                    int("year"),
                    int("month"),
                    int("day"),
                    int("hour"),
                    int("minute"),
                    int("second"),
                    int("microsecond")
                )),
                _ => None,
            }
        }
        Json::Array(_) => None,
    }
}

/// A boolean of Tryton's (SQLite answers 0 and 1).
pub(crate) fn flag(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}
