//! Signed links (SDK 1.3): URLs to the plugin's own routes (`[[routes]]`, served under
//! `/p/PLUGIN/`) that nobody can forge or guess, such as an unsubscribe link or a tracked click.
//! Kith signs them with a key of the plugin's that the plugin never sees, and checks them.
//!
//! ```
//! use kith_plugin_sdk::{links, testing::TestHost};
//! let host = TestHost::new();
//! let url = host.run(|| links::sign("/unsubscribe", &[("c", "42")], None)).unwrap();
//! let params = host.run(|| links::verify(&url)).unwrap();
//! assert_eq!(params, vec![("c".to_owned(), "42".to_owned())]);
//! assert!(host.run(|| links::verify(&url.replace("c=42", "c=43"))).is_err());
//! ```

use crate::types::Result;

/// An absolute URL to `path` under this plugin's routes with `params` and a signature, valid
/// for `expires_in_seconds` (`None`: for ever).
pub fn sign(path: &str, params: &[(&str, &str)], expires_in_seconds: Option<u32>) -> Result<String> {
    crate::host::sign_url(path, params, expires_in_seconds)
}

/// The params of a URL this plugin signed (absolute, or the path and query a route receives);
/// an [`crate::ErrorCode::InvalidInput`] error when the signature is wrong or the link expired.
pub fn verify(url: &str) -> Result<Vec<(String, String)>> {
    crate::host::verify_url(url)
}
