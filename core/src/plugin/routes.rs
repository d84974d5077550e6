//! Inbound HTTP routes of plugins (`[[routes]]`, SDK 1.3): declared in the manifest, served by
//! Kith under `/p/PLUGIN/` (`http::plugin_routes`) and answered by the plugin's `http-handler`
//! export within its time budget, with its grants.

use serde::Deserialize;

use crate::plugin::PluginError;

/// Most routes one plugin declares.
pub const MAX_ROUTES: usize = 20;
/// The largest body a route may accept.
pub const MAX_ROUTE_BODY: usize = 1 << 20;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteAccess {
    /// Anyone (tracking pixels, unsubscribe pages, a provider's webhooks): the plugin checks what
    /// it needs (a signed link, a provider's signature).
    Public,
    /// A bearer token of Kith's (`Authorization: Bearer ...`); the plugin sees who called.
    Token,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE` (`GET` also answers `HEAD`).
    pub method: String,
    /// The path under `/p/PLUGIN`: `/unsubscribe`, or `/t/*` for every path below `/t/`.
    pub path: String,
    /// `public` or `token`.
    pub access: RouteAccess,
    /// The largest body accepted, in bytes (default 64 KiB, at most 1 MiB).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Requests a minute this route answers, per process (default 600, at most 60,000); past
    /// it Kith answers 429 without calling the plugin.
    #[serde(default = "default_rate")]
    pub per_minute: u32,
}

fn default_body() -> usize {
    64 << 10
}

fn default_rate() -> u32 {
    600
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl RouteSpec {
    /// Whether this route answers `method` on `path` (a path under `/p/PLUGIN`).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method == method || (self.method == "GET" && method == "HEAD");
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix) && path.len() > prefix.len(),
            None => self.path == path,
        };
        method_ok && path_ok
    }
}

/// Checks `[[routes]]`.
pub fn validate(routes: &[RouteSpec]) -> Result<(), PluginError> {
    if routes.len() > MAX_ROUTES {
        return Err(PluginError::manifest("routes", format!("at most {MAX_ROUTES} routes")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, route) in routes.iter().enumerate() {
        let key = |field: &str| format!("routes[{i}].{field}");
        if !METHODS.contains(&route.method.as_str()) {
            return Err(PluginError::manifest(&key("method"), format!("must be one of {}", METHODS.join(", "))));
        }
        let body = route.path.strip_suffix("/*").map_or(route.path.as_str(), |p| p);
        let path_ok = route.path.starts_with('/')
            && route.path.len() <= 200
            && !route.path.contains("..")
            && !route.path.contains("//")
            && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
            && (route.path.ends_with("/*") || !route.path.contains('*'));
        if !path_ok {
            return Err(PluginError::manifest(
                &key("path"),
                format!(
                    "`{}` must start with `/` and hold only letters, digits and `-._~/` (a final `/*` matches \
                     every path below)",
                    route.path
                ),
            ));
        }
        if !(1..=MAX_ROUTE_BODY).contains(&route.max_body_bytes) {
            return Err(PluginError::manifest(
                &key("max_body_bytes"),
                format!("must be between 1 and {MAX_ROUTE_BODY}"),
            ));
        }
        if !(1..=60_000).contains(&route.per_minute) {
            return Err(PluginError::manifest(&key("per_minute"), "must be between 1 and 60000"));
        }
        if !seen.insert((route.method.clone(), route.path.clone())) {
            return Err(PluginError::manifest(
                &key("path"),
                format!("{} {} is declared twice", route.method, route.path),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> RouteSpec {
        RouteSpec {
            method: method.into(),
            path: path.into(),
            access: RouteAccess::Public,
            max_body_bytes: default_body(),
            per_minute: default_rate(),
        }
    }

    #[test]
    fn routes_match_their_method_and_path() {
        assert!(route("GET", "/o").matches("GET", "/o"));
        assert!(route("GET", "/o").matches("HEAD", "/o"));
        assert!(!route("GET", "/o").matches("POST", "/o"));
        assert!(!route("GET", "/o").matches("GET", "/o/x"));
        assert!(route("GET", "/t/*").matches("GET", "/t/abc"));
        assert!(!route("GET", "/t/*").matches("GET", "/t/"));
        assert!(!route("GET", "/t/*").matches("GET", "/tx"));
    }

    #[test]
    fn bad_routes_are_refused() {
        assert!(validate(&[route("GET", "/ok"), route("POST", "/ok"), route("GET", "/t/*")]).is_ok());
        for bad in [
            route("TRACE", "/x"),
            route("GET", "x"),
            route("GET", "/a/../b"),
            route("GET", "/a*"),
            route("GET", "/a b"),
        ] {
            assert!(validate(std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
        assert!(validate(&[route("GET", "/x"), route("GET", "/x")]).is_err());
        assert!(validate(&[RouteSpec { max_body_bytes: MAX_ROUTE_BODY + 1, ..route("POST", "/x") }]).is_err());
    }
}
