//! An in-memory host for unit tests: run a plugin's hooks natively with `cargo test`, with
//! grants, records, settings and a key–value store you set up, then inspect what it did.
//!
//! It enforces grants like Kith does (an ungranted call fails with
//! [`ErrorCode::Denied`](crate::ErrorCode::Denied)) and refuses writes inside `before_write`.
//! It reads as Kith does (Kith's tests run one table of reads through both and compare): the
//! filter operators `eq`, `neq`, `in`, `notIn`, `lt`, `lte`, `gt`, `gte`, `like`, `ilike`,
//! `startsWith` and `isNull` with `and` / `or` / `not` (a comparison with a missing value is
//! neither true nor false, as in SQL, so `not` does not make it true), sort keys with
//! `direction` and `nulls` (ties in creation order, backwards when the last key descends),
//! pages, and aggregates (one row without group keys even over no records; groups ordered by
//! their keys, missing ones first).
//!
//! It does not know the objects' fields, so it compares values by their form: numbers and texts
//! that are decimal numbers (`"10.50"`) as numbers, RFC 3339 UTC instants as instants, other
//! texts byte by byte. Unlike Kith it does not refuse a field the object lacks (it reads as
//! missing), does not filter `tags` or `customFields`, compares e-mail fields with case, and runs
//! none of Kith's field validation: test those end to end against a real server.
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

mod read;

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
    /// Other plugins' objects: object → the grant that reads them.
    foreign: BTreeMap<String, String>,
    mail: Vec<crate::mail::Message>,
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

    /// Declares another plugin's object (`donation` of `donors`, plural `donations`): readable
    /// with the grant `donors/donations:read`, never writable, as in Kith.
    ///
    /// ```
    /// let host = kith_plugin_sdk::testing::TestHost::new().foreign("donors", "donation", "donations");
    /// assert!(host.run(|| kith_plugin_sdk::records::get("donation", "x")).is_err());
    /// let host = host.grant("donors/donations:read");
    /// assert!(host.run(|| kith_plugin_sdk::records::get("donation", "x")).is_ok());
    /// ```
    pub fn foreign(self, plugin: &str, object: &str, plural: &str) -> TestHost {
        self.state.borrow_mut().foreign.insert(object.to_owned(), format!("{plugin}/{plural}:read"));
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
        self.on_events::<P>(std::slice::from_ref(event)).map_err(|(_, err)| err)
    }

    /// Delivers `events` as one batch to a fresh `P` ([`Plugin::on_events`]), as Kith does
    /// (SDK 1.4). The error names the event at fault by its index.
    ///
    /// ```
    /// use kith_plugin_sdk::{Error, Event, Plugin, Result};
    /// #[derive(Default)]
    /// struct NoTickets;
    /// impl Plugin for NoTickets {
    ///     fn on_event(&self, event: &Event) -> Result<()> {
    ///         if event.object == "ticket" { Err(Error::msg("no tickets")) } else { Ok(()) }
    ///     }
    /// }
    /// let host = kith_plugin_sdk::testing::TestHost::new();
    /// let contact = Event::new("contact.created", "contact", None, serde_json::json!({}));
    /// let ticket = Event::new("ticket.created", "ticket", None, serde_json::json!({}));
    /// let (index, _) = host.on_events::<NoTickets>(&[contact, ticket]).unwrap_err();
    /// assert_eq!(index, 1);
    /// ```
    pub fn on_events<P: Plugin>(&self, events: &[Event]) -> std::result::Result<(), (usize, Error)> {
        self.run(|| P::default().on_events(events))
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
        let foreign = self.state.borrow().foreign.get(object).cloned();
        if let Some(grant) = foreign {
            if access == "write" {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!("`{object}` belongs to another plugin: read only"),
                ));
            }
            return self.check(&grant);
        }
        let plural = match object {
            "contact" => "contacts",
            "company" => "companies",
            "deal" => "deals",
            "ticket" => "tickets",
            "activity" => "activities",
            "consent" => "consents",
            "segment" => "segments",
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
        let filter = read::Filter::parse(query.filter.as_ref())?;
        let order = read::Order::parse(query.order_by.as_ref())?;
        let mut matching = Vec::new();
        for record in self.records(object) {
            if filter.matches(&record.fields)? {
                matching.push(record);
            }
        }
        order.sort(&mut matching);
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
        let given: Map<String, Json> = serde_json::from_str(fields)?;
        let mut fields = Map::new();
        edit_tags(&mut fields, given);
        // Kith stamps a new record's times with the transaction's clock: here, the host's.
        let now = Json::String(self.now());
        fields.entry("createdAt").or_insert_with(|| now.clone());
        fields.entry("updatedAt").or_insert(now);
        let id = self.insert(object, Json::Object(fields));
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
        let mut fields: Map<String, Json> = serde_json::from_str(fields)?;
        fields.insert("updatedAt".into(), Json::String(self.now()));
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
            edit_tags(stored, fields);
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
                // `http:setting:KEY`: the origin of the URL in that setting, as in Kith.
                let rest = match rest.and_then(|r| r.strip_prefix("setting:")) {
                    Some(key) => state.settings.get(key).and_then(Json::as_str),
                    None => rest,
                };
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

    /// Calls `P::handle_request` with `request`, as Kith does for a declared route (SDK 1.3).
    ///
    /// ```
    /// use kith_plugin_sdk::{Plugin, routes::{Request, Response}, testing::TestHost};
    /// #[derive(Default)]
    /// struct Ping;
    /// impl Plugin for Ping {
    ///     fn handle_request(&self, _: &Request) -> Response { Response::text(200, "pong") }
    /// }
    /// let response = TestHost::new().handle_request::<Ping>(&Request::new("GET", "/ping"));
    /// assert_eq!(response.body_text(), "pong");
    /// ```
    pub fn handle_request<P: Plugin>(&self, request: &crate::routes::Request) -> crate::routes::Response {
        self.run(|| P::default().handle_request(request))
    }

    /// The messages the plugin queued, in order (SDK 1.3).
    ///
    /// ```
    /// assert!(kith_plugin_sdk::testing::TestHost::new().sent_mail().is_empty());
    /// ```
    pub fn sent_mail(&self) -> Vec<crate::mail::Message> {
        self.state.borrow().mail.clone()
    }

    pub(crate) fn create_records(&self, object: &str, items: &[String]) -> Result<Vec<Result<Record>>> {
        self.check_object(object, "write")?;
        Ok(items.iter().map(|item| self.create_record(object, item)).collect())
    }

    pub(crate) fn update_records(
        &self,
        object: &str,
        updates: &[crate::records::Update],
    ) -> Result<Vec<Result<Record>>> {
        self.check_object(object, "write")?;
        let mut seen = std::collections::HashSet::new();
        Ok(updates
            .iter()
            .map(|u| {
                if !seen.insert(u.id.clone()) {
                    return Err(Error::new(ErrorCode::InvalidInput, format!("{object} {} is updated twice", u.id)));
                }
                self.update_record(object, &u.id, &u.fields.to_string(), u.expected_version)
            })
            .collect())
    }

    pub(crate) fn send_mails(&self, messages: &[crate::mail::Message]) -> Result<Vec<Result<String>>> {
        self.check("mail:send")?;
        if self.state.borrow().read_only {
            return Err(Error::new(ErrorCode::Unavailable, "e-mail is not available inside before_write"));
        }
        Ok(messages.iter().map(|m| self.mail_send(m)).collect())
    }

    pub(crate) fn mail_send(&self, message: &crate::mail::Message) -> Result<String> {
        self.check("mail:send")?;
        if self.state.borrow().read_only {
            return Err(Error::new(ErrorCode::Unavailable, "e-mail is not available inside before_write"));
        }
        for (what, address) in [("from", &message.from), ("to", &message.to)] {
            if !address.contains('@') || address.contains(['\r', '\n', ',']) {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!("{what}: `{address}` is not one e-mail address"),
                ));
            }
        }
        if message.subject.contains(['\r', '\n']) {
            return Err(Error::new(ErrorCode::InvalidInput, "subject: one line"));
        }
        if message.text.is_none() && message.html.is_none() {
            return Err(Error::new(ErrorCode::InvalidInput, "a message needs a text or an HTML body"));
        }
        let mut state = self.state.borrow_mut();
        state.mail.push(message.clone());
        Ok(format!("test-{}@kith.test", state.mail.len()))
    }

    /// Signs like Kith (the same URL shape) with a test key: `https://kith.test/p/plugin/...`.
    pub(crate) fn sign_url(
        &self,
        path: &str,
        params: &[(&str, &str)],
        expires_in_seconds: Option<u32>,
    ) -> Result<String> {
        if !path.starts_with('/') {
            return Err(Error::new(ErrorCode::InvalidInput, "a link's path starts with `/`"));
        }
        let mut query: Vec<String> = params.iter().map(|(n, v)| format!("{}={}", encode(n), encode(v))).collect();
        if let Some(seconds) = expires_in_seconds {
            query.push(format!("exp={seconds}"));
        }
        let signed = if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) };
        let separator = if query.is_empty() { '?' } else { '&' };
        Ok(format!("https://kith.test/p/plugin{signed}{separator}sig={}", test_mac(&signed)))
    }

    pub(crate) fn verify_url(&self, url: &str) -> Result<Vec<(String, String)>> {
        let invalid =
            || Error::new(ErrorCode::InvalidInput, "the link is not one this plugin signed, or it was changed");
        let local = url.strip_prefix("https://kith.test").unwrap_or(url);
        let local = local.strip_prefix("/p/plugin").unwrap_or(local);
        let (signed, sig) = local.rsplit_once("&sig=").or_else(|| local.rsplit_once("?sig=")).ok_or_else(invalid)?;
        if test_mac(signed) != sig {
            return Err(invalid());
        }
        let query = signed.split_once('?').map_or("", |(_, q)| q);
        Ok(crate::routes::form_pairs(query).into_iter().filter(|(n, _)| n != "exp").collect())
    }

    pub(crate) fn aggregate(
        &self,
        object: &str,
        query: &crate::aggregate::Aggregate,
    ) -> Result<Vec<crate::aggregate::Row>> {
        self.check_object(object, "read")?;
        read::aggregate(&self.records(object), query)
    }
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The test host's stand-in for Kith's HMAC (a test double: not a secret).
fn test_mac(text: &str) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    "kith-test-link-key".hash(&mut hasher);
    text.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Writes `given` onto `stored` as Kith does: `customFields` merge into the stored ones, and
/// `addTags` / `removeTags` (SDK 1.4) edit the stored `tags` list (names compared
/// case-insensitively), keeping the others.
fn edit_tags(stored: &mut Map<String, Json>, mut given: Map<String, Json>) {
    let names = |value: Option<Json>| -> Vec<String> {
        value
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    };
    let (add, remove) = (given.remove("addTags"), given.remove("removeTags"));
    let edit = add.is_some() || remove.is_some();
    // Custom field values merge into the stored ones (`null` removes one), as in Kith.
    if let Some(Json::Object(custom)) = given.remove("customFields") {
        let mut merged = match stored.remove("customFields") {
            Some(Json::Object(existing)) => existing,
            _ => Map::new(),
        };
        for (key, value) in custom {
            if value.is_null() {
                merged.remove(&key);
            } else {
                merged.insert(key, value);
            }
        }
        stored.insert("customFields".into(), Json::Object(merged));
    }
    stored.extend(given);
    if edit {
        let mut tags = names(stored.get("tags").cloned());
        for name in names(add) {
            if !tags.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
                tags.push(name);
            }
        }
        let remove = names(remove);
        tags.retain(|t| !remove.iter().any(|r| r.eq_ignore_ascii_case(t)));
        stored.insert("tags".into(), Json::from(tags));
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
        assert_eq!(crate::__private::SDK_VERSION_BYTES, [0, 1, 0, 4, 0, 0]);
    }
}
