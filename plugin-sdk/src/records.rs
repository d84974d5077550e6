//! Reading and writing core records (`contact`, `company`, `deal`, `ticket`, `activity`).
//! Reads need `OBJECTS:read` (e.g. `contacts:read`), writes `OBJECTS:write`. Writes go through
//! the same validation, audit log and events as any other write, with the plugin as actor.
//!
//! ```
//! use kith_plugin_sdk::{records, testing::TestHost, Query};
//! let host = TestHost::new().grant("contacts:read").grant("contacts:write");
//! host.run(|| {
//!     let ada = records::create("contact", &serde_json::json!({"firstName": "Ada", "lastName": "Lovelace"}))?;
//!     let page = records::query("contact", &Query::new().filter(serde_json::json!({"lastName": {"eq": "Lovelace"}})))?;
//!     assert_eq!(page.records[0].id, ada.id);
//!     Ok::<_, kith_plugin_sdk::Error>(())
//! }).unwrap();
//! ```

use serde_json::Value as Json;

use crate::types::{Error, ErrorCode, Page, Query, Record, Result};

/// One record by id, or `None`.
///
/// ```
/// use kith_plugin_sdk::testing::TestHost;
/// let host = TestHost::new().grant("deals:read");
/// assert_eq!(host.run(|| kith_plugin_sdk::records::get("deal", "nope")).unwrap(), None);
/// ```
pub fn get(object: &str, id: &str) -> Result<Option<Record>> {
    crate::host::get_record(object, id)
}

/// A page of records matching `query`.
///
/// ```
/// use kith_plugin_sdk::{testing::TestHost, Query};
/// let host = TestHost::new().grant("tickets:read");
/// let page = host.run(|| kith_plugin_sdk::records::query("ticket", &Query::new())).unwrap();
/// assert!(page.records.is_empty());
/// ```
pub fn query(object: &str, query: &Query) -> Result<Page> {
    crate::host::query_records(object, query)
}

/// Creates a record from a JSON object of fields.
///
/// ```
/// use kith_plugin_sdk::testing::TestHost;
/// let host = TestHost::new().grant("companies:write");
/// let acme = host.run(|| kith_plugin_sdk::records::create("company", &serde_json::json!({"name": "Acme"}))).unwrap();
/// assert_eq!(acme.str("name"), Some("Acme"));
/// ```
pub fn create(object: &str, fields: &Json) -> Result<Record> {
    let fields = object_text(fields)?;
    crate::host::create_record(object, &fields)
}

/// Changes the given fields; with `expected_version`, only if the record is still at that
/// version (else [`ErrorCode::Conflict`]).
///
/// ```
/// use kith_plugin_sdk::testing::TestHost;
/// let host = TestHost::new().grant("contacts:write");
/// let id = host.insert("contact", serde_json::json!({"firstName": "Ada"}));
/// let updated = host.run(|| kith_plugin_sdk::records::update("contact", &id, &serde_json::json!({"jobTitle": "Analyst"}), None)).unwrap();
/// assert_eq!(updated.str("jobTitle"), Some("Analyst"));
/// ```
pub fn update(object: &str, id: &str, fields: &Json, expected_version: Option<u64>) -> Result<Record> {
    let fields = object_text(fields)?;
    crate::host::update_record(object, id, &fields, expected_version)
}

/// Most items one bulk host call carries; [`create_many`] and [`update_many`] split longer lists.
pub const BULK_CHUNK: usize = 1_000;

/// Creates one record per JSON object (SDK 1.4): the same checks, audit entries and events as
/// [`create`], in a few host calls instead of one per record. Each item succeeds or fails alone
/// (a failed one writes nothing), in order; the whole call fails only when none could be tried
/// (`denied`, `unavailable`). Longer lists go to Kith in chunks of [`BULK_CHUNK`].
///
/// ```
/// use kith_plugin_sdk::testing::TestHost;
/// let host = TestHost::new().grant("companies:write");
/// let results = host.run(|| {
///     kith_plugin_sdk::records::create_many("company", &[serde_json::json!({"name": "Acme"}), serde_json::json!(3)])
/// }).unwrap();
/// assert_eq!(results[0].as_ref().unwrap().str("name"), Some("Acme"));
/// assert!(results[1].is_err(), "not a JSON object");
/// ```
pub fn create_many(object: &str, items: &[Json]) -> Result<Vec<Result<Record>>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(BULK_CHUNK) {
        // Items that are not objects fail alone, in their places.
        let texts: Vec<Result<String>> = chunk.iter().map(object_text).collect();
        let valid: Vec<String> = texts.iter().filter_map(|t| t.as_ref().ok().cloned()).collect();
        let mut written =
            if valid.is_empty() { Vec::new() } else { crate::host::create_records(object, &valid)? }.into_iter();
        for text in texts {
            out.push(match text {
                Ok(_) => written.next().unwrap_or_else(|| Err(Error::msg("Kith returned fewer results than items"))),
                Err(err) => Err(err),
            });
        }
    }
    Ok(out)
}

/// One change of [`update_many`]: fields of record `id`, optionally only at a version.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Update {
    /// The record's id.
    pub id: String,
    /// The fields to change (a JSON object).
    pub fields: Json,
    /// Only if the record is still at this version.
    pub expected_version: Option<u64>,
}

impl Update {
    /// Changes `fields` of record `id`.
    ///
    /// ```
    /// let u = kith_plugin_sdk::records::Update::new("0193", serde_json::json!({"status": "DONE"})).expected_version(3);
    /// assert_eq!((u.id.as_str(), u.expected_version), ("0193", Some(3)));
    /// ```
    pub fn new(id: &str, fields: Json) -> Update {
        Update { id: id.into(), fields, expected_version: None }
    }

    /// Only if the record is still at `version` (else that item fails with
    /// [`ErrorCode::Conflict`]).
    pub fn expected_version(mut self, version: u64) -> Update {
        self.expected_version = Some(version);
        self
    }
}

/// Applies each update (SDK 1.4), as [`update`] would, in a few host calls; each item succeeds or
/// fails alone, in order. An id may appear once per call.
///
/// ```
/// use kith_plugin_sdk::{records::{self, Update}, testing::TestHost};
/// let host = TestHost::new().grant("contacts:write");
/// let id = host.insert("contact", serde_json::json!({"firstName": "Ada"}));
/// let results = host.run(|| records::update_many("contact", &[
///     Update::new(&id, serde_json::json!({"jobTitle": "Analyst"})),
///     Update::new("nope", serde_json::json!({"jobTitle": "Analyst"})),
/// ])).unwrap();
/// assert_eq!(results[0].as_ref().unwrap().str("jobTitle"), Some("Analyst"));
/// assert_eq!(results[1].as_ref().unwrap_err().code, kith_plugin_sdk::ErrorCode::NotFound);
/// ```
pub fn update_many(object: &str, updates: &[Update]) -> Result<Vec<Result<Record>>> {
    let mut out = Vec::with_capacity(updates.len());
    for chunk in updates.chunks(BULK_CHUNK) {
        let valid: Vec<Update> = chunk.iter().filter(|u| u.fields.is_object()).cloned().collect();
        let mut written =
            if valid.is_empty() { Vec::new() } else { crate::host::update_records(object, &valid)? }.into_iter();
        for update in chunk {
            out.push(if update.fields.is_object() {
                written.next().unwrap_or_else(|| Err(Error::msg("Kith returned fewer results than items")))
            } else {
                Err(Error::new(ErrorCode::InvalidInput, "fields must be a JSON object"))
            });
        }
    }
    Ok(out)
}

fn object_text(fields: &Json) -> Result<String> {
    if !fields.is_object() {
        return Err(Error::new(ErrorCode::InvalidInput, "fields must be a JSON object"));
    }
    Ok(fields.to_string())
}
