//! The plugin's settings, declared with types and defaults in `plugin.toml` and set by an
//! admin. Secret settings are never readable by the plugin.
//!
//! ```
//! use kith_plugin_sdk::testing::TestHost;
//! let host = TestHost::new().setting("blocked_domains", serde_json::json!(["spam.test"]));
//! let blocked: Vec<String> = host.run(|| kith_plugin_sdk::settings::get("blocked_domains")).unwrap().unwrap();
//! assert_eq!(blocked, vec!["spam.test"]);
//! ```

use serde::de::DeserializeOwned;

use crate::types::{Error, ErrorCode, Result};

/// The setting `key` decoded as `T`; `None` if the manifest declares no such setting.
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new();
/// assert_eq!(host.run(|| kith_plugin_sdk::settings::get::<String>("missing")).unwrap(), None);
/// ```
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match crate::host::setting(key) {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| Error::new(ErrorCode::InvalidInput, format!("setting `{key}`: {err}"))),
        None => Ok(None),
    }
}
