//! Write Kith plugins in Rust.
//!
//! A plugin is a type that implements [`Plugin`] (every hook has a default body, so implement
//! only what you need) registered with [`register_plugin!`]. Build it for `wasm32-wasip2` and
//! install it with `kith plugin install`. Start from a scaffold: `kith plugin new my-plugin`.
//!
//! ```
//! use kith_plugin_sdk::{Event, Plugin, Result, log, records};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn on_event(&self, event: &Event) -> Result<()> {
//!         if event.kind == "contact.created" {
//!             log::info(&format!("new contact {}", event.record_id.as_deref().unwrap_or("?")));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! kith_plugin_sdk::register_plugin!(Hello);
//! ```
//!
//! # Rules of the sandbox
//! - **Keep no state in memory between calls.** Kith runs a plugin in a small pool of
//!   instances, replaces them at any time (after a fault, after a number of calls, on
//!   upgrade) and may run two at once. A fresh value of your type (`Default`) serves each
//!   call. Keep what must last in the key–value store ([`kv`]).
//! - Every host call is checked against what the admin granted (see `plugin.toml`); a refused
//!   call returns an [`Error`] with [`ErrorCode::Denied`].
//! - Events arrive at least once: make handlers idempotent (the [`Event::id`] is stable).
//! - Each call has a time budget (100 ms for events, 20 ms for `before_write` by default) and
//!   a memory cap (64 MiB); exceeding them aborts the call and counts as a failure.
//!
//! # Testing
//! [`testing::TestHost`] is an in-memory host: unit-test a plugin with `cargo test`, natively,
//! without wasm and without a server.

#![deny(missing_docs)]

extern crate self as kith_plugin_sdk;

mod host;
mod types;

pub mod aggregate;
pub mod date;
pub mod http;
pub mod kv;
pub mod links;
pub mod log;
pub mod mail;
pub mod records;
pub mod routes;
pub mod settings;
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use types::{Call, Change, Error, ErrorCode, Event, Operation, Page, Query, Record, Result, Verdict};

/// The SDK version, also written into every plugin built with it (custom section
/// `kith:sdk-version`: major, minor and patch as big-endian `u16`s).
///
/// ```
/// assert_eq!(kith_plugin_sdk::SDK_VERSION, "1.4.0");
/// ```
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The current time, RFC 3339 UTC with microseconds (`2026-11-22T10:00:00.000000Z`).
///
/// ```
/// let now = kith_plugin_sdk::testing::TestHost::new().run(kith_plugin_sdk::now);
/// assert!(now.ends_with('Z'));
/// ```
pub fn now() -> String {
    host::now()
}

/// A Kith plugin. Every hook has a default that does nothing, so a plugin implements only the
/// hooks it uses. A fresh `Default` value serves each call: keep no state in `self`.
pub trait Plugin: Default {
    /// Handles one event the plugin subscribed to in `plugin.toml` (`events = [...]`).
    ///
    /// Returning an error makes Kith retry the event later (with backoff); after the
    /// configured number of failures it goes to the plugin's dead-letter list. Events are
    /// delivered in order, at least once.
    ///
    /// ```
    /// use kith_plugin_sdk::{Event, Plugin, Result};
    /// #[derive(Default)]
    /// struct Counter;
    /// impl Plugin for Counter {
    ///     fn on_event(&self, event: &Event) -> Result<()> {
    ///         let seen = kith_plugin_sdk::kv::get_json::<u64>("seen")?.unwrap_or(0);
    ///         kith_plugin_sdk::kv::set_json("seen", &(seen + 1))
    ///     }
    /// }
    /// ```
    fn on_event(&self, event: &Event) -> Result<()> {
        let _ = event;
        Ok(())
    }

    /// Handles a batch of events at once (SDK 1.4). A plugin that can do the work of several
    /// events with fewer reads and writes (`records::create_many`, `records::update_many`)
    /// overrides it; the default hands each event to [`Plugin::on_event`], in order.
    ///
    /// An error names the event at fault by its index in `events`: none of the batch's writes
    /// are kept, Kith delivers the events before it again one at a time (a batch of one each),
    /// then retries the failing one with backoff.
    ///
    /// ```
    /// use kith_plugin_sdk::{Error, Event, Plugin, Result};
    /// #[derive(Default)]
    /// struct Tally;
    /// impl Plugin for Tally {
    ///     fn on_events(&self, events: &[Event]) -> std::result::Result<(), (usize, Error)> {
    ///         // One write for the whole batch.
    ///         let seen = kith_plugin_sdk::kv::get_json::<u64>("seen").map_err(|e| (0, e))?.unwrap_or(0);
    ///         kith_plugin_sdk::kv::set_json("seen", &(seen + events.len() as u64)).map_err(|e| (0, e))
    ///     }
    /// }
    /// ```
    fn on_events(&self, events: &[Event]) -> std::result::Result<(), (usize, Error)> {
        for (index, event) in events.iter().enumerate() {
            self.on_event(event).map_err(|err| (index, err))?;
        }
        Ok(())
    }

    /// Allows, refuses or amends a write to an object listed in `plugin.toml`
    /// (`[before_write] objects = [...]`) before it is stored. Host writes and HTTP are
    /// unavailable here; reads work. Kith may ask more than once about the same write (a group
    /// of concurrent writes that is run again after one of them failed), so answer from the
    /// change and what you read, not from how often you were asked.
    ///
    /// ```
    /// use kith_plugin_sdk::{Change, Plugin, Verdict};
    /// #[derive(Default)]
    /// struct NoAnonymous;
    /// impl Plugin for NoAnonymous {
    ///     fn before_write(&self, change: &Change) -> Verdict {
    ///         match change.after_str("lastName") {
    ///             Some(_) => Verdict::Allow,
    ///             None => Verdict::Deny("a contact needs a last name".into()),
    ///         }
    ///     }
    /// }
    /// ```
    fn before_write(&self, change: &Change) -> Verdict {
        let _ = change;
        Verdict::Allow
    }

    /// Computes a field declared in `plugin.toml` (`[[fields]]`) for a page of records at once:
    /// one JSON value per id, in order (`null` for none). Kith checks each value against the
    /// declared type. Reads only (SDK 1.2).
    ///
    /// ```
    /// use kith_plugin_sdk::{Plugin, Result, aggregate::{self, Aggregate}};
    /// #[derive(Default)]
    /// struct Points;
    /// impl Plugin for Points {
    ///     fn compute_field(&self, _object: &str, _field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
    ///         // One query for the whole page: points per contact.
    ///         let filter = serde_json::json!({"contactId": {"in": ids}});
    ///         let rows = aggregate::run("award", &Aggregate::new().filter(filter).group_by("contactId").sum("points"))?;
    ///         Ok(ids.iter().map(|id| {
    ///             let row = rows.iter().find(|r| r.key(0) == Some(id.as_str()));
    ///             serde_json::json!(row.and_then(|r| r.int(0)).unwrap_or(0))
    ///         }).collect())
    ///     }
    /// }
    /// ```
    fn compute_field(&self, object: &str, field: &str, ids: &[String]) -> Result<Vec<serde_json::Value>> {
        let _ = ids;
        Err(Error::msg(format!("this plugin computes no field `{object}.{field}`")))
    }

    /// Answers a query or mutation declared in `plugin.toml` (`[[queries]]`, `[[mutations]]`)
    /// with JSON of the declared result type. Queries read only; mutations may write. Return
    /// [`Error::invalid`] for bad input: the caller sees `BAD_USER_INPUT` naming the field
    /// (SDK 1.2).
    ///
    /// ```
    /// use kith_plugin_sdk::{Call, Error, Plugin, Result};
    /// #[derive(Default)]
    /// struct Calc;
    /// impl Plugin for Calc {
    ///     fn call(&self, call: &Call) -> Result<serde_json::Value> {
    ///         match call.name.as_str() {
    ///             "double" => Ok(serde_json::json!(call.int("n").unwrap_or(0) * 2)),
    ///             other => Err(Error::msg(format!("unknown operation `{other}`"))),
    ///         }
    ///     }
    /// }
    /// ```
    fn call(&self, call: &Call) -> Result<serde_json::Value> {
        Err(Error::msg(format!("this plugin answers no operation `{}`", call.name)))
    }

    /// Runs a job declared in `plugin.toml` (`[[jobs]]`), due at `scheduled_for` (RFC 3339
    /// UTC). Kith runs at most one run of a job at a time across all its processes; make runs
    /// idempotent all the same (SDK 1.2).
    ///
    /// ```
    /// use kith_plugin_sdk::{Plugin, Result};
    /// #[derive(Default)]
    /// struct Nightly;
    /// impl Plugin for Nightly {
    ///     fn run_job(&self, job: &str, scheduled_for: &str) -> Result<()> {
    ///         kith_plugin_sdk::log::info(&format!("{job} due at {scheduled_for}"));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn run_job(&self, job: &str, scheduled_for: &str) -> Result<()> {
        let _ = scheduled_for;
        Err(Error::msg(format!("this plugin has no job `{job}`")))
    }

    /// Answers a request to a route declared in `plugin.toml` (`[[routes]]`, served under
    /// `/p/PLUGIN/`). Reads and writes like an event handler; the writes commit when the status
    /// is below 500 (SDK 1.3). The default answers 404.
    ///
    /// ```
    /// use kith_plugin_sdk::{Plugin, routes::{Request, Response}};
    /// #[derive(Default)]
    /// struct Ping;
    /// impl Plugin for Ping {
    ///     fn handle_request(&self, request: &Request) -> Response {
    ///         match request.route.as_str() {
    ///             "/ping" => Response::text(200, "pong"),
    ///             _ => Response::text(404, "no such page"),
    ///         }
    ///     }
    /// }
    /// ```
    fn handle_request(&self, request: &routes::Request) -> routes::Response {
        let _ = request;
        routes::Response::text(404, "not found")
    }
}

/// Registers `T: Plugin` as the plugin this crate exports and stamps the SDK version into the
/// component. Call it once, at the crate root.
///
/// ```
/// #[derive(Default)]
/// struct Quiet;
/// impl kith_plugin_sdk::Plugin for Quiet {}
/// kith_plugin_sdk::register_plugin!(Quiet);
/// ```
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct KithPluginExport;

            impl $crate::__private::Guest for KithPluginExport {
                fn on_event(
                    events: ::std::vec::Vec<$crate::__private::WitEvent>,
                ) -> ::std::result::Result<(), $crate::__private::WitEventFailure> {
                    $crate::__private::dispatch_events::<$plugin>(events)
                }

                fn before_write(change: $crate::__private::WitChange) -> $crate::__private::WitVerdict {
                    $crate::__private::dispatch_before_write::<$plugin>(change)
                }
            }

            impl $crate::__private::ExtensionGuest for KithPluginExport {
                fn compute_field(
                    object: ::std::string::String,
                    field: ::std::string::String,
                    ids: ::std::vec::Vec<::std::string::String>,
                ) -> ::std::result::Result<::std::vec::Vec<::std::string::String>, ::std::string::String> {
                    $crate::__private::dispatch_compute_field::<$plugin>(object, field, ids)
                }

                fn call_operation(
                    name: ::std::string::String,
                    arguments: ::std::string::String,
                    caller: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, $crate::__private::WitOperationError> {
                    $crate::__private::dispatch_call::<$plugin>(name, arguments, caller)
                }

                fn run_job(
                    job: ::std::string::String,
                    scheduled_for: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::dispatch_job::<$plugin>(job, scheduled_for)
                }
            }

            impl $crate::__private::HttpHandlerGuest for KithPluginExport {
                fn handle(request: $crate::__private::WitRequest) -> $crate::__private::WitResponse {
                    $crate::__private::dispatch_request::<$plugin>(request)
                }
            }

            #[cfg(target_arch = "wasm32")]
    $crate::__private::export!(KithPluginExport with_types_in $crate::__private::bindings);

            #[cfg(target_arch = "wasm32")]
            #[used]
            #[unsafe(link_section = "kith:sdk-version")]
            static KITH_SDK_VERSION: [u8; 6] = $crate::__private::SDK_VERSION_BYTES;
        };
    };
}
