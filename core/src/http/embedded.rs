//! Files embedded in the binary and served under URLs that carry a digest of their set (the
//! console's assets, GraphiQL's): a changed file gets a new URL, so browsers keep each one for
//! good.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An embedded file: name, content type, bytes.
pub type File = (&'static str, &'static str, &'static [u8]);

/// A short digest of `files`, for their URLs.
pub fn digest(files: &[File]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for (_, _, bytes) in files {
        hasher.update(bytes);
    }
    hex::encode(&hasher.finalize()[..6])
}

/// The file of `files` called `name`, cached for good (its URL changes with it), or 404.
pub fn serve(files: &[File], name: &str) -> Response {
    match files.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            (headers, *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
