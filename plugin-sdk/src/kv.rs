//! The plugin's own key–value store, kept by Kith in its database (needs the `kv` grant).
//! Keys are up to 256 bytes, values up to 64 KiB.
//!
//! ```
//! use kith_plugin_sdk::{kv, testing::TestHost};
//! let host = TestHost::new().grant("kv");
//! host.run(|| {
//!     kv::set_json("greeted:ada", &true)?;
//!     assert_eq!(kv::get_json::<bool>("greeted:ada")?, Some(true));
//!     Ok::<_, kith_plugin_sdk::Error>(())
//! }).unwrap();
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{Error, ErrorCode, Result};

/// The bytes stored under `key`.
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// assert_eq!(host.run(|| kith_plugin_sdk::kv::get("missing")).unwrap(), None);
/// ```
pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
    crate::host::kv_get(key)
}

/// Stores `value` under `key`.
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// host.run(|| kith_plugin_sdk::kv::set("k", b"v")).unwrap();
/// ```
pub fn set(key: &str, value: &[u8]) -> Result<()> {
    crate::host::kv_set(key, value)
}

/// Deletes `key`; returns whether it existed.
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// assert!(!host.run(|| kith_plugin_sdk::kv::delete("k")).unwrap());
/// ```
pub fn delete(key: &str) -> Result<bool> {
    crate::host::kv_delete(key)
}

/// Keys starting with `prefix`, sorted (at most 1000).
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// host.run(|| { kith_plugin_sdk::kv::set("a:1", b"")?; kith_plugin_sdk::kv::keys("a:") }).unwrap();
/// ```
pub fn keys(prefix: &str) -> Result<Vec<String>> {
    crate::host::kv_keys(prefix)
}

/// The JSON value stored under `key`, decoded.
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// assert_eq!(host.run(|| kith_plugin_sdk::kv::get_json::<u32>("n")).unwrap(), None);
/// ```
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match get(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::new(ErrorCode::InvalidInput, format!("kv `{key}`: {err}"))),
        None => Ok(None),
    }
}

/// Stores `value` as JSON under `key`.
///
/// ```
/// let host = kith_plugin_sdk::testing::TestHost::new().grant("kv");
/// host.run(|| kith_plugin_sdk::kv::set_json("n", &3u32)).unwrap();
/// ```
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<()> {
    set(key, &serde_json::to_vec(value)?)
}
