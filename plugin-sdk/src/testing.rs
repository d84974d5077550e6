//! An in-memory host for unit tests: run a plugin's hooks natively with `cargo test`, with
//! grants, records, settings and a key–value store you set up, then inspect what it did.
//!
//! It enforces grants like Kith does (an ungranted call fails with
//! [`ErrorCode::Denied`](crate::ErrorCode::Denied)), refuses writes inside `before_write`, and
//! evaluates the filter operators `eq`, `neq`, `in`, `notIn`, `lt`, `lte`, `gt`, `gte`,
//! `startsWith`, `contains` and `isNull` with `and` / `or` / `not`. It does not run Kith's field
//! validation: test that end to end against a real server.
//!
//! ```
//! use kith_plugin_sdk::{Event, Plugin, Result, records, testing::TestHost};
//!
//! #[derive(Default)]
//! struct Tagger;
//! impl Plugin for Tagger {
//!     fn on_event(&self, event: &Event) -> Result<()> {
//!         let id = event.record_id.as_deref().unwrap_or_default();
//!         records::update("contact", id, &serde_json::json!({"source": "tagged"}), None)?;
//!         Ok(())
//!     }
//! }
//!
//! let host = TestHost::new().grant("contacts:write");
//! let id = host.insert("contact", serde_json::json!({"firstName": "Ada"}));
//! host.on_event::<Tagger>(&Event::new("contact.created", "contact", Some(&id), serde_json::json!({}))).unwrap();
//! assert_eq!(host.record("contact", &id).unwrap().str("source"), Some("tagged"));
//! ```

#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde_json::{Map, Value as Json};

use crate::Plugin;
use crate::host::Level;
use crate::types::{Change, Error, ErrorCode, Event, Page, Query, Record, Result, Verdict};

#[derive(Debug, Default)]
struct State {
    grants: BTreeSet<String>,
    settings: BTreeMap<String, Json>,
    records: BTreeMap<String, Vec<Record>>,
    kv: BTreeMap<String, Vec<u8>>,
    logs: Vec<String>,
    denied: Vec<String>,
    now: String,
    read_only: bool,
    next_id: u64,
    http_stubs: BTreeMap<String, crate::http::Response>,
    http_requests: Vec<crate::http::Request>,
    own: BTreeSet<String>,
}

/// The in-memory host. Cheap to clone (clones share state).
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// host.run(|| kith_plugin_sdk::kv::set("k", b"v")).unwrap();
/// assert_eq!(host.kv("k"), Some(b"v".to_vec()));
/// ```
#[derive(Debug, Clone)]
pub struct TestHost {
    state: Rc<RefCell<State>>,
}

thread_local! {
    static CURRENT: RefCell<Option<TestHost>> = const { RefCell::new(None) };
}

pub(crate) fn with_current<R>(f: impl FnOnce(&TestHost) -> R) -> R {
    let host = CURRENT.with(|current| current.borrow().clone());
    match host {
        Some(host) => f(&host),
        None => panic!("kith_plugin_sdk: host calls outside wasm need a TestHost: wrap the call in `TestHost::run`"),
    }
}

impl Default for TestHost {
    fn default() -> TestHost {
        TestHost::new()
    }
}

impl TestHost {
    /// A host with no grants, no records and the clock at `2026-01-01T00:00:00.000000Z`.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// assert!(host.logs().is_empty());
    /// ```
    pub fn new() -> TestHost {
        let state = State { now: "2026-01-01T00:00:00.000000Z".into(), ..State::default() };
        TestHost { state: Rc::new(RefCell::new(state)) }
    }

    /// Grants a capability (`contacts:read`, `activities:write`, `kv`, ...).
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new().grant("contacts:read");
    /// assert!(host.run(|| kith_plugin_sdk::records::get("contact", "x")).is_ok());
    /// ```
    pub fn grant(self, capability: &str) -> TestHost {
        self.state.borrow_mut().grants.insert(capability.to_owned());
        self
    }

    /// Declares one of the plugin's own objects (`[[objects]]` in plugin.toml): the plugin
    /// reads and writes it without capabilities, as in Kith.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new().own("gift");
    /// let gift = host.run(|| kith_plugin_sdk::records::create("gift", &serde_json::json!({"amount": "5"}))).unwrap();
    /// assert_eq!(host.records("gift")[0].id, gift.id);
    /// ```
    pub fn own(self, object: &str) -> TestHost {
        self.state.borrow_mut().own.insert(object.to_owned());
        self
    }

    /// Sets a setting's value.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new().setting("limit", serde_json::json!(3));
    /// assert_eq!(host.run(|| kith_plugin_sdk::settings::get::<u32>("limit")).unwrap(), Some(3));
    /// ```
    pub fn setting(self, key: &str, value: Json) -> TestHost {
        self.state.borrow_mut().settings.insert(key.to_owned(), value);
        self
    }

    /// Sets the clock.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new().at("2030-05-01T00:00:00.000000Z");
    /// assert_eq!(host.run(kith_plugin_sdk::now), "2030-05-01T00:00:00.000000Z");
    /// ```
    pub fn at(self, now: &str) -> TestHost {
        self.state.borrow_mut().now = now.to_owned();
        self
    }

    /// Stores a record (no grant needed: this is test setup) and returns its id.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// let id = host.insert("deal", serde_json::json!({"name": "Big one"}));
    /// assert_eq!(host.record("deal", &id).unwrap().str("name"), Some("Big one"));
    /// ```
    pub fn insert(&self, object: &str, fields: Json) -> String {
        let mut state = self.state.borrow_mut();
        state.next_id += 1;
        let id = format!("00000000-0000-7000-8000-{:012x}", state.next_id);
        let mut fields = match fields {
            Json::Object(map) => map,
            _ => Map::new(),
        };
        fields.insert("id".into(), Json::String(id.clone()));
        let record = Record { object: object.to_owned(), id: id.clone(), version: 1, fields: Json::Object(fields) };
        state.records.entry(object.to_owned()).or_default().push(record);
        id
    }

    /// Every stored record of `object`, in insertion order.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// host.insert("activity", serde_json::json!({"type": "TASK"}));
    /// assert_eq!(host.records("activity").len(), 1);
    /// ```
    pub fn records(&self, object: &str) -> Vec<Record> {
        self.state.borrow().records.get(object).cloned().unwrap_or_default()
    }

    /// One stored record.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// assert!(host.record("contact", "nope").is_none());
    /// ```
    pub fn record(&self, object: &str, id: &str) -> Option<Record> {
        self.state.borrow().records.get(object)?.iter().find(|r| r.id == id).cloned()
    }

    /// The log lines written so far, as `LEVEL message`.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// host.run(|| kith_plugin_sdk::log::warn("careful"));
    /// assert_eq!(host.logs(), vec!["WARN careful".to_string()]);
    /// ```
    pub fn logs(&self) -> Vec<String> {
        self.state.borrow().logs.clone()
    }

    /// The host calls refused so far, as `capability` names.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// let _ = host.run(|| kith_plugin_sdk::kv::get("k"));
    /// assert_eq!(host.denied(), vec!["kv".to_string()]);
    /// ```
    pub fn denied(&self) -> Vec<String> {
        self.state.borrow().denied.clone()
    }

    /// A value of the key–value store.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// assert_eq!(host.kv("k"), None);
    /// ```
    pub fn kv(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().kv.get(key).cloned()
    }

    /// Runs `f` with this host serving its host calls.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// assert_eq!(host.run(|| 1 + 1), 2);
    /// ```
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|current| current.replace(Some(self.clone())));
        let result = f();
        CURRENT.with(|current| *current.borrow_mut() = previous);
        result
    }

    /// Delivers `event` to a fresh `P`, as Kith does.
    ///
    /// ```
    /// #[derive(Default)]
    /// struct Nop;
    /// impl kith_plugin_sdk::Plugin for Nop {}
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// let event = kith_plugin_sdk::Event::new("contact.created", "contact", None, serde_json::json!({}));
    /// assert!(host.on_event::<Nop>(&event).is_ok());
    /// ```
    pub fn on_event<P: Plugin>(&self, event: &Event) -> Result<()> {
        self.run(|| P::default().on_event(event))
    }

    /// Asks a fresh `P` about `change`, with host writes unavailable, as in Kith.
    ///
    /// ```
    /// #[derive(Default)]
    /// struct Nop;
    /// impl kith_plugin_sdk::Plugin for Nop {}
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// let change = kith_plugin_sdk::Change::create("contact", serde_json::json!({}));
    /// assert_eq!(host.before_write::<Nop>(&change), kith_plugin_sdk::Verdict::Allow);
    /// ```
    pub fn before_write<P: Plugin>(&self, change: &Change) -> Verdict {
        self.state.borrow_mut().read_only = true;
        let verdict = self.run(|| P::default().before_write(change));
        self.state.borrow_mut().read_only = false;
        verdict
    }

    fn check(&self, capability: &str) -> Result<()> {
        let mut state = self.state.borrow_mut();
        if state.grants.contains(capability) {
            Ok(())
        } else {
            state.denied.push(capability.to_owned());
            Err(Error::new(ErrorCode::Denied, format!("the plugin was not granted `{capability}`")))
        }
    }

    fn check_object(&self, object: &str, access: &str) -> Result<()> {
        if access == "write" && self.state.borrow().read_only {
            return Err(Error::new(
                ErrorCode::Unavailable,
                "writes are not available in before_write, computed fields and queries",
            ));
        }
        if self.state.borrow().own.contains(object) {
            return Ok(());
        }
        let plural = match object {
            "contact" => "contacts",
            "company" => "companies",
            "deal" => "deals",
            "ticket" => "tickets",
            "activity" => "activities",
            _ => return Err(Error::new(ErrorCode::InvalidInput, format!("unknown object `{object}`"))),
        };
        self.check(&format!("{plural}:{access}"))
    }

    pub(crate) fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        };
        self.state.borrow_mut().logs.push(format!("{level} {message}"));
    }

    pub(crate) fn now(&self) -> String {
        self.state.borrow().now.clone()
    }

    pub(crate) fn get_record(&self, object: &str, id: &str) -> Result<Option<Record>> {
        self.check_object(object, "read")?;
        Ok(self.record(object, id))
    }

    pub(crate) fn query_records(&self, object: &str, query: &Query) -> Result<Page> {
        self.check_object(object, "read")?;
        if query.first == 0 || query.first > 200 {
            return Err(Error::new(ErrorCode::InvalidInput, "first must be between 1 and 200"));
        }
        let mut matching = Vec::new();
        for record in self.records(object) {
            if let Some(filter) = &query.filter
                && !matches(filter, &record.fields)?
            {
                continue;
            }
            matching.push(record);
        }
        if let Some(Json::Array(keys)) = &query.order_by {
            for key in keys.iter().rev() {
                let field = key.get("field").and_then(Json::as_str).unwrap_or("id").to_owned();
                let desc = key.get("direction").and_then(Json::as_str) == Some("DESC");
                matching.sort_by(|a, b| {
                    let ord = compare(a.fields.get(&field), b.fields.get(&field));
                    if desc { ord.reverse() } else { ord }
                });
            }
        }
        let start: usize = match &query.after {
            Some(cursor) => {
                cursor.parse().map_err(|_| Error::new(ErrorCode::InvalidInput, format!("bad cursor `{cursor}`")))?
            }
            None => 0,
        };
        let end = (start + query.first as usize).min(matching.len());
        let records = matching.get(start..end).map(<[Record]>::to_vec).unwrap_or_default();
        let next_cursor = (end < matching.len()).then(|| end.to_string());
        Ok(Page { records, next_cursor })
    }

    pub(crate) fn create_record(&self, object: &str, fields: &str) -> Result<Record> {
        self.check_object(object, "write")?;
        let fields: Json = serde_json::from_str(fields)?;
        let id = self.insert(object, fields);
        self.record(object, &id).ok_or_else(|| Error::msg("record vanished"))
    }

    pub(crate) fn update_record(
        &self,
        object: &str,
        id: &str,
        fields: &str,
        expected_version: Option<u64>,
    ) -> Result<Record> {
        self.check_object(object, "write")?;
        let fields: Map<String, Json> = serde_json::from_str(fields)?;
        let mut state = self.state.borrow_mut();
        let record = state
            .records
            .get_mut(object)
            .and_then(|records| records.iter_mut().find(|r| r.id == id))
            .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("no {object} {id}")))?;
        if let Some(expected) = expected_version
            && expected != record.version
        {
            return Err(Error::new(ErrorCode::Conflict, format!("{object} {id} is at version {}", record.version)));
        }
        if let Json::Object(stored) = &mut record.fields {
            stored.extend(fields);
        }
        record.version += 1;
        Ok(record.clone())
    }

    pub(crate) fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.check("kv")?;
        Ok(self.kv(key))
    }

    pub(crate) fn kv_set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.check("kv")?;
        if self.state.borrow().read_only {
            return Err(Error::new(
                ErrorCode::Unavailable,
                "writes are not available in before_write, computed fields and queries",
            ));
        }
        if key.is_empty() || key.len() > 256 {
            return Err(Error::new(ErrorCode::InvalidInput, "keys are 1 to 256 bytes"));
        }
        if value.len() > 64 * 1024 {
            return Err(Error::new(ErrorCode::LimitExceeded, "values are at most 64 KiB"));
        }
        self.state.borrow_mut().kv.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    pub(crate) fn kv_delete(&self, key: &str) -> Result<bool> {
        self.check("kv")?;
        Ok(self.state.borrow_mut().kv.remove(key).is_some())
    }

    pub(crate) fn kv_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.check("kv")?;
        Ok(self.state.borrow().kv.keys().filter(|k| k.starts_with(prefix)).take(1000).cloned().collect())
    }

    /// Answers requests to `url` with `response` (requests to other URLs fail with
    /// [`ErrorCode::Unavailable`]).
    ///
    /// ```
    /// use kith_plugin_sdk::{http, testing::TestHost};
    /// let host = TestHost::new().grant("http:https://api.example.org");
    /// host.http_stub("https://api.example.org/ping", http::Response::new(200, b"pong".to_vec()));
    /// let response = host.run(|| http::send(&http::Request::get("https://api.example.org/ping"))).unwrap();
    /// assert_eq!(response.text(), "pong");
    /// ```
    pub fn http_stub(&self, url: &str, response: crate::http::Response) {
        self.state.borrow_mut().http_stubs.insert(url.to_owned(), response);
    }

    /// The HTTP requests the plugin sent, in order.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// assert!(host.http_requests().is_empty());
    /// ```
    pub fn http_requests(&self) -> Vec<crate::http::Request> {
        self.state.borrow().http_requests.clone()
    }

    pub(crate) fn http_send(&self, request: &crate::http::Request) -> Result<crate::http::Response> {
        if self.state.borrow().read_only {
            return Err(Error::new(ErrorCode::Unavailable, "HTTP is not available inside before_write"));
        }
        let origin = crate::http::origin_of(&request.url)
            .ok_or_else(|| Error::new(ErrorCode::InvalidInput, format!("`{}` is not an absolute URL", request.url)))?;
        let granted = {
            let state = self.state.borrow();
            state.grants.iter().any(|g| {
                let rest = g.strip_prefix("http-private:").or_else(|| g.strip_prefix("http:"));
                rest.and_then(crate::http::origin_of).is_some_and(|o| o == origin)
            })
        };
        if !granted {
            self.state.borrow_mut().denied.push(format!("http:{origin}"));
            return Err(Error::new(ErrorCode::Denied, format!("the plugin was not granted `http:{origin}`")));
        }
        let mut state = self.state.borrow_mut();
        state.http_requests.push(request.clone());
        state
            .http_stubs
            .get(&request.url)
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::Unavailable, format!("no stub for {}", request.url)))
    }

    pub(crate) fn setting_value(&self, key: &str) -> Option<String> {
        self.state.borrow().settings.get(key).map(Json::to_string)
    }

    /// Asks a fresh `P` for a computed field of `ids`, with writes unavailable, as in Kith.
    ///
    /// ```
    /// use kith_plugin_sdk::{Plugin, Result};
    /// #[derive(Default)]
    /// struct Len;
    /// impl Plugin for Len {
    ///     fn compute_field(&self, _object: &str, _field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
    ///         Ok(ids.iter().map(|id| serde_json::json!(id.len())).collect())
    ///     }
    /// }
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// assert_eq!(host.compute_field::<Len>("contact", "idLength", &["abc".into()]).unwrap(), vec![serde_json::json!(3)]);
    /// ```
    pub fn compute_field<P: Plugin>(&self, object: &str, field: &str, ids: &[String]) -> Result<Vec<Json>> {
        self.state.borrow_mut().read_only = true;
        let values = self.run(|| P::default().compute_field(object, field, ids));
        self.state.borrow_mut().read_only = false;
        values
    }

    /// Calls a query (`write = false`, writes unavailable) or mutation of a fresh `P`.
    ///
    /// ```
    /// use kith_plugin_sdk::{Call, Plugin, Result};
    /// #[derive(Default)]
    /// struct Echo;
    /// impl Plugin for Echo {
    ///     fn call(&self, call: &Call) -> Result<serde_json::Value> {
    ///         Ok(call.arguments["text"].clone())
    ///     }
    /// }
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// let call = Call::new("echo", serde_json::json!({"text": "hi"}));
    /// assert_eq!(host.call::<Echo>(&call, false).unwrap(), serde_json::json!("hi"));
    /// ```
    pub fn call<P: Plugin>(&self, call: &crate::Call, write: bool) -> Result<Json> {
        self.state.borrow_mut().read_only = !write;
        let result = self.run(|| P::default().call(call));
        self.state.borrow_mut().read_only = false;
        result
    }

    /// Runs job `job` of a fresh `P`, due at the host's clock.
    ///
    /// ```
    /// use kith_plugin_sdk::{Plugin, Result};
    /// #[derive(Default)]
    /// struct Tick;
    /// impl Plugin for Tick {
    ///     fn run_job(&self, _job: &str, _scheduled_for: &str) -> Result<()> {
    ///         kith_plugin_sdk::kv::set("ticked", b"1")
    ///     }
    /// }
    /// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
    /// host.run_job::<Tick>("tick").unwrap();
    /// assert_eq!(host.kv("ticked"), Some(b"1".to_vec()));
    /// ```
    pub fn run_job<P: Plugin>(&self, job: &str) -> Result<()> {
        let now = self.now();
        self.run(|| P::default().run_job(job, &now))
    }

    pub(crate) fn aggregate(
        &self,
        object: &str,
        query: &crate::aggregate::Aggregate,
    ) -> Result<Vec<crate::aggregate::Row>> {
        use crate::aggregate::Metric;
        self.check_object(object, "read")?;
        if query.metrics.is_empty() || query.metrics.len() > 10 || query.group_by.len() > 3 {
            return Err(Error::new(ErrorCode::InvalidInput, "ask for 1 to 10 metrics and at most 3 group keys"));
        }
        let mut groups: BTreeMap<Vec<Option<String>>, Vec<Record>> = BTreeMap::new();
        for record in self.records(object) {
            if let Some(filter) = &query.filter
                && !matches(filter, &record.fields)?
            {
                continue;
            }
            let keys = query
                .group_by
                .iter()
                .map(|(field, bucket)| {
                    let text = record.fields.get(field).and_then(json_text);
                    match bucket {
                        Some(bucket) => text.map(|t| bucket_start(&t, *bucket)).transpose(),
                        None => Ok(text),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            groups.entry(keys).or_default().push(record);
        }
        let mut rows = Vec::new();
        for (keys, records) in groups {
            let mut values = Vec::new();
            for (metric, field) in &query.metrics {
                let field_values: Vec<String> = match field {
                    Some(field) => records.iter().filter_map(|r| r.fields.get(field).and_then(json_text)).collect(),
                    None => Vec::new(),
                };
                values.push(match metric {
                    Metric::Count if field.is_none() => Some(records.len().to_string()),
                    Metric::Count => Some(field_values.len().to_string()),
                    Metric::CountDistinct => Some(field_values.iter().collect::<BTreeSet<_>>().len().to_string()),
                    Metric::Sum => sum_exact(&field_values)?,
                    Metric::Min => field_values.iter().min_by(|a, b| compare_text(a, b)).cloned(),
                    Metric::Max => field_values.iter().max_by(|a, b| compare_text(a, b)).cloned(),
                });
            }
            rows.push(crate::aggregate::Row { keys, values });
        }
        if let Some((metric, descending)) = query.order {
            let at = metric as usize;
            if at >= query.metrics.len() {
                return Err(Error::new(ErrorCode::InvalidInput, format!("there is no metric {metric}")));
            }
            // Stable: ties keep their key order. Missing values last.
            rows.sort_by(|a, b| {
                let (x, y) = (a.values[at].as_deref(), b.values[at].as_deref());
                match (x, y) {
                    (Some(x), Some(y)) if descending => compare_text(y, x),
                    (Some(x), Some(y)) => compare_text(x, y),
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, _) => std::cmp::Ordering::Greater,
                    (_, None) => std::cmp::Ordering::Less,
                }
            });
        }
        rows.truncate(query.limit as usize);
        Ok(rows)
    }
}

fn json_text(value: &Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn compare_text(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// The first day of the bucket holding the date (or RFC 3339 instant) `text`.
fn bucket_start(text: &str, bucket: crate::aggregate::Bucket) -> Result<String> {
    use crate::aggregate::Bucket;
    let date = crate::date::Date::parse(text)
        .ok_or_else(|| Error::new(ErrorCode::InvalidInput, format!("`{text}` is not a date")))?;
    Ok(match bucket {
        Bucket::Day => date,
        Bucket::Week => date.monday(),
        Bucket::Month => date.first_of_month(),
        Bucket::Year => crate::date::Date::new_year(date.year),
    }
    .to_string())
}

/// Sums decimal texts exactly (up to 9 decimal places).
fn sum_exact(values: &[String]) -> Result<Option<String>> {
    const SCALE: u32 = 9;
    if values.is_empty() {
        return Ok(None);
    }
    let mut total: i128 = 0;
    for value in values {
        let bad = || Error::new(ErrorCode::InvalidInput, format!("`{value}` is not a number to sum"));
        let (negative, digits) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value.as_str()),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if fraction.len() > SCALE as usize || whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let fraction_value: i128 = if fraction.is_empty() { 0 } else { fraction.parse::<i128>().map_err(|_| bad())? };
        let scaled = whole * 10i128.pow(SCALE) + fraction_value * 10i128.pow(SCALE - fraction.len() as u32);
        total += if negative { -scaled } else { scaled };
    }
    let sign = if total < 0 { "-" } else { "" };
    let abs = total.unsigned_abs();
    let unit = 10u128.pow(SCALE);
    let fraction = format!("{:09}", abs % unit);
    let fraction = fraction.trim_end_matches('0');
    Ok(Some(if fraction.is_empty() {
        format!("{sign}{}", abs / unit)
    } else {
        format!("{sign}{}.{fraction}", abs / unit)
    }))
}

fn compare(a: Option<&Json>, b: Option<&Json>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Json::Number(x)), Some(Json::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Json::String(x)), Some(Json::String(y))) => x.cmp(y),
        (None | Some(Json::Null), None | Some(Json::Null)) => Ordering::Equal,
        (None | Some(Json::Null), _) => Ordering::Greater,
        (_, None | Some(Json::Null)) => Ordering::Less,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

fn matches(filter: &Json, fields: &Json) -> Result<bool> {
    let Json::Object(filter) = filter else {
        return Err(Error::new(ErrorCode::InvalidInput, "a filter is a JSON object"));
    };
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "and" => as_list(cond)?.iter().map(|f| matches(f, fields)).collect::<Result<Vec<_>>>()?.iter().all(|b| *b),
            "or" => as_list(cond)?.iter().map(|f| matches(f, fields)).collect::<Result<Vec<_>>>()?.iter().any(|b| *b),
            "not" => !matches(cond, fields)?,
            field => field_matches(fields.get(field), cond, field)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn as_list(value: &Json) -> Result<&Vec<Json>> {
    value.as_array().ok_or_else(|| Error::new(ErrorCode::InvalidInput, "`and` / `or` take a list of filters"))
}

fn field_matches(value: Option<&Json>, ops: &Json, field: &str) -> Result<bool> {
    use std::cmp::Ordering;
    let Json::Object(ops) = ops else {
        return Err(Error::new(ErrorCode::InvalidInput, format!("`{field}` needs an object of operators")));
    };
    let value = value.filter(|v| !v.is_null());
    for (op, arg) in ops {
        let ok = match op.as_str() {
            "eq" => value == Some(arg),
            "neq" => value.is_some() && value != Some(arg),
            "in" => value.is_some_and(|v| as_list(arg).is_ok_and(|list| list.contains(v))),
            "notIn" => value.is_some_and(|v| as_list(arg).is_ok_and(|list| !list.contains(v))),
            "lt" => value.is_some() && compare(value, Some(arg)) == Ordering::Less,
            "lte" => value.is_some() && compare(value, Some(arg)) != Ordering::Greater,
            "gt" => value.is_some() && compare(value, Some(arg)) == Ordering::Greater,
            "gte" => value.is_some() && compare(value, Some(arg)) != Ordering::Less,
            "startsWith" => text_op(value, arg, |v, a| v.to_lowercase().starts_with(&a.to_lowercase())),
            "contains" => text_op(value, arg, |v, a| v.to_lowercase().contains(&a.to_lowercase())),
            "isNull" => arg.as_bool() == Some(value.is_none()),
            other => {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!("the test host does not support the operator `{other}`"),
                ));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn text_op(value: Option<&Json>, arg: &Json, f: impl Fn(&str, &str) -> bool) -> bool {
    match (value.and_then(Json::as_str), arg.as_str()) {
        (Some(v), Some(a)) => f(v, a),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records;

    #[test]
    fn filters_order_and_pages_like_kith() {
        let host = TestHost::new().grant("contacts:read");
        for (first, last, score) in [("Ada", "Lovelace", 3), ("Grace", "Hopper", 5), ("Alan", "Turing", 4)] {
            host.insert("contact", serde_json::json!({"firstName": first, "lastName": last, "score": score}));
        }
        let page = host
            .run(|| {
                records::query(
                    "contact",
                    &Query::new()
                        .filter(serde_json::json!({"or": [{"firstName": {"startsWith": "a"}}, {"score": {"gte": 5}}]}))
                        .order_by(serde_json::json!([{"field": "score", "direction": "DESC"}]))
                        .first(2),
                )
            })
            .unwrap();
        let names: Vec<_> = page.records.iter().map(|r| r.str("firstName").unwrap().to_owned()).collect();
        assert_eq!(names, ["Grace", "Alan"]);
        let query = Query::new()
            .filter(serde_json::json!({"or": [{"firstName": {"startsWith": "a"}}, {"score": {"gte": 5}}]}))
            .order_by(serde_json::json!([{"field": "score", "direction": "DESC"}]))
            .first(2)
            .after(page.next_cursor.as_deref().unwrap());
        let rest = host.run(|| records::query("contact", &query)).unwrap();
        assert_eq!(rest.records.len(), 1);
        assert_eq!(rest.records[0].str("lastName"), Some("Lovelace"));
        let not_hopper = host
            .run(|| {
                records::query(
                    "contact",
                    &Query::new().filter(serde_json::json!({"not": {"lastName": {"eq": "Hopper"}}})),
                )
            })
            .unwrap();
        assert_eq!(not_hopper.records.len(), 2);
        assert_eq!(rest.next_cursor, None);
    }

    #[test]
    fn refuses_ungranted_calls_and_writes_in_before_write() {
        #[derive(Default)]
        struct Writer;
        impl Plugin for Writer {
            fn before_write(&self, change: &Change) -> Verdict {
                match records::create("activity", &serde_json::json!({"subject": "x"})) {
                    Ok(_) => Verdict::Allow,
                    Err(err) => Verdict::Deny(format!("{:?}: {}", err.code, change.object)),
                }
            }
        }
        let host = TestHost::new().grant("activities:write");
        let verdict = host.before_write::<Writer>(&Change::create("contact", serde_json::json!({})));
        assert_eq!(verdict, Verdict::Deny("Unavailable: contact".into()));
        let err = TestHost::new().run(|| records::get("deal", "x")).unwrap_err();
        assert_eq!(err.code, ErrorCode::Denied);
        let err = TestHost::new().run(|| records::get("spaceship", "x")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn version_bytes_match_the_crate_version() {
        assert_eq!(crate::__private::SDK_VERSION_BYTES, [0, 1, 0, 2, 0, 0]);
    }
}
