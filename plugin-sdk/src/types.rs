//! The values plugins see, as plain Rust types (the generated bindings stay hidden).

use std::fmt;

use serde_json::{Map, Value as Json};

use crate::__private::bindings::kith::plugin::types as wit;

/// The result of SDK calls and plugin hooks.
///
/// ```
/// fn handler() -> kith_plugin_sdk::Result<u32> { Ok(1) }
/// assert_eq!(handler().unwrap(), 1);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a host call (or a plugin hook) failed. A minor version may add codes: a `match` on it
/// needs a `_` arm.
///
/// ```
/// use kith_plugin_sdk::{ErrorCode, testing::TestHost};
/// let err = TestHost::new().run(|| kith_plugin_sdk::kv::get("k")).unwrap_err();
/// assert_eq!(err.code, ErrorCode::Denied);
/// let retry = match err.code {
///     ErrorCode::Internal | ErrorCode::Unavailable => true,
///     _ => false,
/// };
/// assert!(!retry);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The plugin was not granted the capability the call needs.
    Denied,
    /// An argument was malformed or broke a validation rule.
    InvalidInput,
    /// The record or key does not exist.
    NotFound,
    /// A uniqueness rule or an expected version did not hold.
    Conflict,
    /// A size or rate limit was reached.
    LimitExceeded,
    /// Not allowed here (e.g. a write inside `before_write`).
    Unavailable,
    /// Kith failed; a retry may succeed.
    Internal,
}

/// An error from the host, or one a plugin raises itself with [`Error::msg`], [`Error::new`] or
/// [`Error::invalid`] (it may gain fields in a minor version, so it has no struct literal).
///
/// ```
/// use kith_plugin_sdk::{Error, ErrorCode};
/// let err = Error::msg("no owner to notify");
/// assert_eq!(err.code, ErrorCode::Internal);
/// assert_eq!(err.to_string(), "no owner to notify");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Error {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A readable explanation.
    pub message: String,
    /// The argument or field at fault, shown to GraphQL callers of plugin operations as
    /// `extensions.field` (SDK 1.2).
    pub field: Option<String>,
}

impl Error {
    /// A plugin's own error.
    ///
    /// ```
    /// let err = kith_plugin_sdk::Error::msg("bad payload");
    /// assert_eq!(err.message, "bad payload");
    /// ```
    pub fn msg(message: impl Into<String>) -> Error {
        Error { code: ErrorCode::Internal, message: message.into(), field: None }
    }

    /// An error with a code.
    ///
    /// ```
    /// use kith_plugin_sdk::{Error, ErrorCode};
    /// let err = Error::new(ErrorCode::InvalidInput, "amount must be positive");
    /// assert_eq!(err.code, ErrorCode::InvalidInput);
    /// ```
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), field: None }
    }

    /// Bad input in one argument or field: `BAD_USER_INPUT` naming `field` for GraphQL callers.
    ///
    /// ```
    /// use kith_plugin_sdk::{Error, ErrorCode};
    /// let err = Error::invalid("amount", "must be more than 0");
    /// assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidInput, Some("amount")));
    /// ```
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error { code: ErrorCode::InvalidInput, message: message.into(), field: Some(field.to_owned()) }
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn from_wit(err: wit::HostError) -> Error {
        let code = match err.code {
            wit::ErrorCode::Denied => ErrorCode::Denied,
            wit::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
            wit::ErrorCode::NotFound => ErrorCode::NotFound,
            wit::ErrorCode::Conflict => ErrorCode::Conflict,
            wit::ErrorCode::LimitExceeded => ErrorCode::LimitExceeded,
            wit::ErrorCode::Unavailable => ErrorCode::Unavailable,
            wit::ErrorCode::Internal => ErrorCode::Internal,
        };
        Error { code, message: err.message, field: None }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Error {
        Error::new(ErrorCode::InvalidInput, format!("JSON: {err}"))
    }
}

pub(crate) fn parse_json(text: &str) -> Result<Json> {
    serde_json::from_str(text).map_err(|err| Error::new(ErrorCode::Internal, format!("host sent bad JSON: {err}")))
}

/// A committed change the plugin subscribed to. Its payload holds the record after the change
/// (`payload.record`, in GraphQL field names) plus details of the event (`payload.changes`...).
/// Kith makes events; tests make one with [`Event::new`] and set the fields they need.
///
/// ```
/// use kith_plugin_sdk::Event;
/// let event = Event::new("contact.created", "contact", Some("0192"), serde_json::json!({"firstName": "Ada"}));
/// assert_eq!(event.record_str("firstName"), Some("Ada"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// Unique and stable across redeliveries.
    pub id: String,
    /// Position in Kith's outbox.
    pub seq: i64,
    /// `contact.created`, `deal.updated`, ...
    pub kind: String,
    /// The object kind (`contact`, ...).
    pub object: String,
    /// The record the event is about.
    pub record_id: Option<String>,
    /// When the change happened (RFC 3339 UTC).
    pub occurred_at: String,
    /// Who made the change.
    pub actor: String,
    /// The plugin whose write caused it, if any.
    pub origin_plugin: Option<String>,
    /// How many plugin writes led to this event.
    pub depth: u32,
    /// The record after the change plus details.
    pub payload: Json,
}

impl Event {
    /// An event about `record` (the payload is `{"record": record}`), for tests; id and time
    /// are placeholders.
    ///
    /// ```
    /// let event = kith_plugin_sdk::Event::new("deal.updated", "deal", None, serde_json::json!({"name": "Big"}));
    /// assert_eq!(event.object, "deal");
    /// assert_eq!(event.record_str("name"), Some("Big"));
    /// ```
    pub fn new(kind: &str, object: &str, record_id: Option<&str>, record: Json) -> Event {
        Event {
            id: "00000000-0000-0000-0000-000000000000".into(),
            seq: 0,
            kind: kind.into(),
            object: object.into(),
            record_id: record_id.map(str::to_owned),
            occurred_at: "1970-01-01T00:00:00.000000Z".into(),
            actor: "system:test".into(),
            origin_plugin: None,
            depth: 0,
            payload: serde_json::json!({ "record": record }),
        }
    }

    /// The record after the change (`payload.record`), or `Null`.
    ///
    /// ```
    /// let event = kith_plugin_sdk::Event::new("contact.created", "contact", None, serde_json::json!({"email": "a@b.c"}));
    /// assert_eq!(event.record()["email"], "a@b.c");
    /// ```
    pub fn record(&self) -> &Json {
        self.payload.get("record").unwrap_or(&Json::Null)
    }

    /// A text field of the record after the change.
    ///
    /// ```
    /// let event = kith_plugin_sdk::Event::new("contact.created", "contact", None, serde_json::json!({"email": "a@b.c"}));
    /// assert_eq!(event.record_str("email"), Some("a@b.c"));
    /// ```
    pub fn record_str(&self, field: &str) -> Option<&str> {
        self.record().get(field).and_then(Json::as_str)
    }

    pub(crate) fn from_wit(event: wit::Event) -> Event {
        Event {
            id: event.id,
            seq: event.seq,
            kind: event.kind,
            object: event.object,
            record_id: event.record_id,
            occurred_at: event.occurred_at,
            actor: event.actor,
            origin_plugin: event.origin_plugin,
            depth: event.depth,
            payload: serde_json::from_str(&event.payload).unwrap_or(Json::Null),
        }
    }
}

/// What kind of write a [`Change`] is. A minor version may add kinds: a `match` on it needs a
/// `_` arm.
///
/// ```
/// let change = kith_plugin_sdk::Change::create("deal", serde_json::json!({}));
/// assert_eq!(change.operation, kith_plugin_sdk::Operation::Create);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A new record.
    Create,
    /// Changed fields.
    Update,
    /// A (soft) delete.
    Delete,
}

/// A write about to be stored, shown to `before_write`. Kith makes changes; tests make one with
/// [`Change::create`], [`Change::update`] or [`Change::delete`].
///
/// ```
/// use kith_plugin_sdk::Change;
/// let change = Change::create("contact", serde_json::json!({"email": "x@spam.test"}));
/// assert_eq!(change.after_str("email"), Some("x@spam.test"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Change {
    /// The object kind.
    pub object: String,
    /// Create, update or delete.
    pub operation: Operation,
    /// The record id.
    pub id: String,
    /// The stored record before the change (updates and deletes).
    pub before: Option<Json>,
    /// The record as it would be stored.
    pub after: Json,
    /// Who is writing.
    pub actor: String,
}

impl Change {
    /// A create, for tests.
    ///
    /// ```
    /// let change = kith_plugin_sdk::Change::create("company", serde_json::json!({"name": "Acme"}));
    /// assert_eq!(change.operation, kith_plugin_sdk::Operation::Create);
    /// ```
    pub fn create(object: &str, after: Json) -> Change {
        Change {
            object: object.into(),
            operation: Operation::Create,
            id: "00000000-0000-0000-0000-000000000000".into(),
            before: None,
            after,
            actor: "system:test".into(),
        }
    }

    /// An update of the stored record `before` (its `id` is the change's) to `after`, for tests.
    ///
    /// ```
    /// use kith_plugin_sdk::{Change, Operation};
    /// let before = serde_json::json!({"id": "0192", "stage": "NEW"});
    /// let change = Change::update("deal", before, serde_json::json!({"id": "0192", "stage": "WON"}));
    /// assert_eq!((change.operation, change.id.as_str()), (Operation::Update, "0192"));
    /// assert_eq!(change.after_str("stage"), Some("WON"));
    /// ```
    pub fn update(object: &str, before: Json, after: Json) -> Change {
        let id = before.get("id").and_then(Json::as_str).map(str::to_owned);
        Change {
            operation: Operation::Update,
            id: id.unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
            before: Some(before),
            ..Change::create(object, after)
        }
    }

    /// A (soft) delete of the stored record `before`, for tests: as in Kith, `after` is the
    /// record with `deletedAt` set (here to a placeholder time).
    ///
    /// ```
    /// use kith_plugin_sdk::{Change, Operation};
    /// let change = Change::delete("contact", serde_json::json!({"id": "0192", "firstName": "Ada"}));
    /// assert_eq!(change.operation, Operation::Delete);
    /// assert_eq!(change.after_str("deletedAt"), Some("1970-01-01T00:00:00.000000Z"));
    /// ```
    pub fn delete(object: &str, before: Json) -> Change {
        let mut after = before.clone();
        if let Json::Object(fields) = &mut after {
            fields.insert("deletedAt".into(), Json::String("1970-01-01T00:00:00.000000Z".into()));
        }
        Change { operation: Operation::Delete, ..Change::update(object, before, after) }
    }

    /// A text field of the record as it would be stored.
    ///
    /// ```
    /// let change = kith_plugin_sdk::Change::create("contact", serde_json::json!({"firstName": "Ada"}));
    /// assert_eq!(change.after_str("firstName"), Some("Ada"));
    /// assert_eq!(change.after_str("lastName"), None);
    /// ```
    pub fn after_str(&self, field: &str) -> Option<&str> {
        self.after.get(field).and_then(Json::as_str)
    }

    pub(crate) fn from_wit(change: wit::Change) -> Result<Change> {
        Ok(Change {
            object: change.object,
            operation: match change.operation {
                wit::Operation::Create => Operation::Create,
                wit::Operation::Update => Operation::Update,
                wit::Operation::Delete => Operation::Delete,
            },
            id: change.id,
            before: change.before.as_deref().map(parse_json).transpose()?,
            after: parse_json(&change.after)?,
            actor: change.actor,
        })
    }
}

/// The answer of `before_write`. A minor version may add answers: a `match` on it needs a `_`
/// arm.
///
/// ```
/// use kith_plugin_sdk::Verdict;
/// let mut fields = serde_json::Map::new();
/// fields.insert("source".into(), "web".into());
/// let verdict = Verdict::Modify(fields);
/// assert!(matches!(verdict, Verdict::Modify(_)));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    /// Store the write as it is.
    Allow,
    /// Refuse it; the reason is shown to the writer.
    Deny(String),
    /// Store it with these fields changed.
    Modify(Map<String, Json>),
}

impl Verdict {
    pub(crate) fn into_wit(self) -> wit::Verdict {
        match self {
            Verdict::Allow => wit::Verdict::Allow,
            Verdict::Deny(reason) => wit::Verdict::Deny(reason),
            Verdict::Modify(fields) => wit::Verdict::Modify(Json::Object(fields).to_string()),
        }
    }
}

/// A stored record (core or the plugin's own). Kith makes records; tests make one with
/// [`Record::new`].
///
/// ```
/// use kith_plugin_sdk::testing::TestHost;
/// let host = TestHost::new().grant("contacts:read");
/// let id = host.insert("contact", serde_json::json!({"firstName": "Ada"}));
/// let record = host.run(|| kith_plugin_sdk::records::get("contact", &id)).unwrap().unwrap();
/// assert_eq!(record.str("firstName"), Some("Ada"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The object kind.
    pub object: String,
    /// The record's UUID.
    pub id: String,
    /// Its version (for `records::update`'s expected version).
    pub version: u64,
    /// Every field, in GraphQL field names.
    pub fields: Json,
}

impl Record {
    /// A record of `object` at `version`, for tests.
    ///
    /// ```
    /// let record = kith_plugin_sdk::Record::new("contact", "1", 1, serde_json::json!({"email": "ada@example.org"}));
    /// assert_eq!((record.id.as_str(), record.version), ("1", 1));
    /// ```
    pub fn new(object: &str, id: &str, version: u64, fields: Json) -> Record {
        Record { object: object.to_owned(), id: id.to_owned(), version, fields }
    }

    /// A text field.
    ///
    /// ```
    /// let record = kith_plugin_sdk::Record::new("contact", "1", 1, serde_json::json!({"email": "ada@example.org"}));
    /// assert_eq!(record.str("email"), Some("ada@example.org"));
    /// ```
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Json::as_str)
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn from_wit(record: wit::CrmRecord) -> Result<Record> {
        Ok(Record {
            object: record.object,
            id: record.id,
            version: record.version,
            fields: parse_json(&record.fields)?,
        })
    }
}

/// What to read with [`records::query`](crate::records::query), built with [`Query::new`] and
/// its builder methods (a minor version may add fields).
///
/// ```
/// use kith_plugin_sdk::Query;
/// let query = Query::new().filter(serde_json::json!({"lastName": {"eq": "Lovelace"}})).first(10);
/// assert_eq!(query.first, 10);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Query {
    /// A filter in Kith's JSON filter language.
    pub filter: Option<Json>,
    /// Sort keys: `[{"field": "createdAt", "direction": "DESC"}]`.
    pub order_by: Option<Json>,
    /// Page size (1 to 200).
    pub first: u32,
    /// The cursor of the previous page.
    pub after: Option<String>,
}

impl Default for Query {
    fn default() -> Query {
        Query { filter: None, order_by: None, first: 50, after: None }
    }
}

impl Query {
    /// Every record, 50 per page.
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::Query::new().first, 50);
    /// ```
    pub fn new() -> Query {
        Query::default()
    }

    /// Only records matching `filter`.
    ///
    /// ```
    /// let q = kith_plugin_sdk::Query::new().filter(serde_json::json!({"status": {"eq": "OPEN"}}));
    /// assert!(q.filter.is_some());
    /// ```
    pub fn filter(mut self, filter: Json) -> Query {
        self.filter = Some(filter);
        self
    }

    /// Sorted by these keys.
    ///
    /// ```
    /// let q = kith_plugin_sdk::Query::new().order_by(serde_json::json!([{"field": "createdAt", "direction": "DESC"}]));
    /// assert!(q.order_by.is_some());
    /// ```
    pub fn order_by(mut self, order_by: Json) -> Query {
        self.order_by = Some(order_by);
        self
    }

    /// At most `n` records per page.
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::Query::new().first(5).first, 5);
    /// ```
    pub fn first(mut self, n: u32) -> Query {
        self.first = n;
        self
    }

    /// The page after `cursor`.
    ///
    /// ```
    /// let q = kith_plugin_sdk::Query::new().after("abc");
    /// assert_eq!(q.after.as_deref(), Some("abc"));
    /// ```
    pub fn after(mut self, cursor: &str) -> Query {
        self.after = Some(cursor.to_owned());
        self
    }
}

/// A page of records. Kith makes pages; tests make one with [`Page::new`].
///
/// ```
/// let page = kith_plugin_sdk::Page::new(vec![], None);
/// assert!(page.records.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The records.
    pub records: Vec<Record>,
    /// Pass to [`Query::after`] for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// A call of a query or mutation the plugin declares in `plugin.toml` (`[[queries]]`,
/// `[[mutations]]`, SDK 1.2). Kith checked the arguments against their declared types. Kith
/// makes calls; tests make one with [`Call::new`].
///
/// ```
/// let call = kith_plugin_sdk::Call::new("tierCounts", serde_json::json!({"since": "2026-01-01"}));
/// assert_eq!(call.str("since"), Some("2026-01-01"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Call {
    /// The operation's name.
    pub name: String,
    /// Its arguments, a JSON object (absent optional arguments are `null`).
    pub arguments: Json,
    /// Who calls: `user:ada@example.org`, `token:reports`, ...
    pub caller: String,
}

impl Page {
    /// A page, for tests.
    ///
    /// ```
    /// let record = kith_plugin_sdk::Record::new("deal", "1", 1, serde_json::json!({}));
    /// let page = kith_plugin_sdk::Page::new(vec![record], Some("next".into()));
    /// assert_eq!(page.next_cursor.as_deref(), Some("next"));
    /// ```
    pub fn new(records: Vec<Record>, next_cursor: Option<String>) -> Page {
        Page { records, next_cursor }
    }
}

impl Call {
    /// A call by `test` (for unit tests).
    ///
    /// ```
    /// let call = kith_plugin_sdk::Call::new("ping", serde_json::json!({}));
    /// assert_eq!(call.caller, "test");
    /// ```
    pub fn new(name: &str, arguments: Json) -> Call {
        Call { name: name.to_owned(), arguments, caller: "test".into() }
    }

    /// A text argument.
    ///
    /// ```
    /// let call = kith_plugin_sdk::Call::new("greet", serde_json::json!({"name": "Ada"}));
    /// assert_eq!(call.str("name"), Some("Ada"));
    /// ```
    pub fn str(&self, name: &str) -> Option<&str> {
        self.arguments.get(name)?.as_str()
    }

    /// A whole-number argument.
    ///
    /// ```
    /// let call = kith_plugin_sdk::Call::new("report", serde_json::json!({"year": 2026}));
    /// assert_eq!(call.int("year"), Some(2026));
    /// ```
    pub fn int(&self, name: &str) -> Option<i64> {
        self.arguments.get(name)?.as_i64()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn code_to_wit(code: ErrorCode) -> wit::ErrorCode {
    match code {
        ErrorCode::Denied => wit::ErrorCode::Denied,
        ErrorCode::InvalidInput => wit::ErrorCode::InvalidInput,
        ErrorCode::NotFound => wit::ErrorCode::NotFound,
        ErrorCode::Conflict => wit::ErrorCode::Conflict,
        ErrorCode::LimitExceeded => wit::ErrorCode::LimitExceeded,
        ErrorCode::Unavailable => wit::ErrorCode::Unavailable,
        ErrorCode::Internal => wit::ErrorCode::Internal,
    }
}
