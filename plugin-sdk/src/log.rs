//! Logging to Kith's log, tagged with the plugin id. Lines beyond the per-call limit are
//! dropped (and counted) by the host.
//!
//! ```
//! use kith_plugin_sdk::testing::TestHost;
//! let host = TestHost::new();
//! host.run(|| kith_plugin_sdk::log::info("hello"));
//! assert_eq!(host.logs(), vec!["INFO hello".to_string()]);
//! ```

pub use crate::host::Level;

/// Logs at `level`.
///
/// ```
/// kith_plugin_sdk::testing::TestHost::new().run(|| kith_plugin_sdk::log::log(kith_plugin_sdk::log::Level::Debug, "x"));
/// ```
pub fn log(level: Level, message: &str) {
    crate::host::log(level, message)
}

/// Logs at debug level.
///
/// ```
/// kith_plugin_sdk::testing::TestHost::new().run(|| kith_plugin_sdk::log::debug("details"));
/// ```
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Logs at info level.
///
/// ```
/// kith_plugin_sdk::testing::TestHost::new().run(|| kith_plugin_sdk::log::info("started"));
/// ```
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at warn level.
///
/// ```
/// kith_plugin_sdk::testing::TestHost::new().run(|| kith_plugin_sdk::log::warn("odd input"));
/// ```
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Logs at error level.
///
/// ```
/// kith_plugin_sdk::testing::TestHost::new().run(|| kith_plugin_sdk::log::error("failed"));
/// ```
pub fn error(message: &str) {
    log(Level::Error, message)
}
