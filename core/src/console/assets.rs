//! The console's static files, embedded in the binary (no CDN: it works offline): the
//! stylesheet, a few lines of script, and htmx 2.0.11 (vendored from the npm package
//! `htmx.org`, Zero-Clause BSD, `core/assets/htmx-LICENSE.txt`). And the headers every console
//! response carries: a Content-Security-Policy that allows only Kith's own origin.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The policy of every console page: scripts, styles and forms from Kith only; no inline
/// script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The embedded files: name, content type, bytes.
const FILES: &[crate::http::embedded::File] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/console.js")),
    ("board.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/board.js")),
    ("htmx.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/htmx-2.0.11.min.js")),
];

/// The URL of an embedded file, with a digest of the embedded files: a changed file gets a new
/// URL, so browsers may keep each one for good.
pub fn path(name: &str) -> String {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let digest = DIGEST.get_or_init(|| crate::http::embedded::digest(FILES));
    format!("/assets/{name}?v={digest}")
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    crate::http::embedded::serve(FILES, &name)
}

/// Adds the console's security headers to a page: the CSP, no sniffing, no framing, no
/// caching of pages that show records, and no referrer outside Kith.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
