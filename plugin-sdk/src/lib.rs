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

pub mod http;
pub mod kv;
pub mod log;
pub mod records;
pub mod settings;
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use types::{Change, Error, ErrorCode, Event, Operation, Page, Query, Record, Result, Verdict};

/// The SDK version, also written into every plugin built with it (custom section
/// `kith:sdk-version`: major, minor and patch as big-endian `u16`s).
///
/// ```
/// assert_eq!(kith_plugin_sdk::SDK_VERSION, "1.1.0");
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

    /// Allows, refuses or amends a write to an object listed in `plugin.toml`
    /// (`[before_write] objects = [...]`) before it is stored. Host writes are unavailable
    /// here; reads work.
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

            #[cfg(target_arch = "wasm32")]
    $crate::__private::export!(KithPluginExport with_types_in $crate::__private::bindings);

            #[cfg(target_arch = "wasm32")]
            #[used]
            #[unsafe(link_section = "kith:sdk-version")]
            static KITH_SDK_VERSION: [u8; 6] = $crate::__private::SDK_VERSION_BYTES;
        };
    };
}
