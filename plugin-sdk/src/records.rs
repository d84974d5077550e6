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

fn object_text(fields: &Json) -> Result<String> {
    if !fields.is_object() {
        return Err(Error::new(ErrorCode::InvalidInput, "fields must be a JSON object"));
    }
    Ok(fields.to_string())
}
