//! Signed links to a plugin's routes (`kith:plugin/links`, SDK 1.3).
//!
//! `BASE/p/PLUGIN/PATH?PARAMS[&exp=UNIX]&sig=MAC`: `MAC` is the HMAC-SHA-256, under the plugin's
//! link key (`store::plugins::link_key`, which the plugin never sees), of
//! `PLUGIN\nPATH?PARAMS[&exp=UNIX]`, in unpadded base64url. The signature is the last
//! parameter; what comes before it is checked byte for byte, so no parameter can be added,
//! dropped, reordered or changed, and no link of one plugin passes for another's.

use base64::Engine as _;

use crate::service::webhooks::hmac_sha256;

/// Longest path or query a link may have, in bytes.
pub const MAX_LINK: usize = 4_096;

fn mac(key: &[u8; 32], plugin: &str, path_and_query: &str) -> String {
    let mac = hmac_sha256(key, format!("{plugin}\n{path_and_query}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

fn check_path(path: &str) -> Result<(), String> {
    let ok = path.starts_with('/')
        && path.len() <= 512
        && !path.contains("..")
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("`{path}`: a link's path starts with `/` and has only letters, digits and `-._~/`"))
    }
}

/// The signed URL of `path` (under `/p/PLUGIN`) with `params`, on `base` (Kith's public URL),
/// valid until `expires` (Unix seconds) if given.
pub fn sign(
    key: &[u8; 32],
    base: &str,
    plugin: &str,
    path: &str,
    params: &[(String, String)],
    expires: Option<i64>,
) -> Result<String, String> {
    check_path(path)?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if name == "sig" || name == "exp" {
            return Err(format!("`{name}` is a parameter Kith sets"));
        }
        query.append_pair(name, value);
    }
    if let Some(expires) = expires {
        query.append_pair("exp", &expires.to_string());
    }
    let query = query.finish();
    let signed = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
    if signed.len() > MAX_LINK {
        return Err(format!("a link is at most {MAX_LINK} bytes"));
    }
    let sig = mac(key, plugin, &signed);
    let separator = if query.is_empty() { '?' } else { '&' };
    Ok(format!("{}/p/{plugin}{signed}{separator}sig={sig}", base.trim_end_matches('/')))
}

/// The params of a link `plugin` signed: `url` absolute, or the path (with or without
/// `/p/PLUGIN`) and query a route receives. `now` in Unix seconds.
pub fn verify(key: &[u8; 32], plugin: &str, url: &str, now: i64) -> Result<Vec<(String, String)>, String> {
    let invalid = || "the link is not one this plugin signed, or it was changed".to_owned();
    if url.len() > MAX_LINK + 600 {
        return Err(invalid());
    }
    let path_and_query = match url.find("://") {
        Some(at) => {
            let rest = &url[at + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => url,
    };
    let path_and_query = path_and_query.split('#').next().unwrap_or_default();
    let prefix = format!("/p/{plugin}");
    let local = match path_and_query.strip_prefix(&prefix) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path_and_query,
    };
    let (signed, sig) = match local.rsplit_once("&sig=") {
        Some(parts) => parts,
        None => local.rsplit_once("?sig=").ok_or_else(invalid)?,
    };
    let expected = mac(key, plugin, signed);
    let same =
        expected.len() == sig.len() && expected.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(invalid());
    }
    let query = signed.split_once('?').map_or("", |(_, q)| q);
    let mut params = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name == "exp" {
            let expires: i64 = value.parse().map_err(|_| invalid())?;
            if expires < now {
                return Err("the link has expired".to_owned());
            }
            continue;
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn a_signed_link_verifies_absolute_or_as_a_route_receives_it() {
        let p = params(&[("c", "0193a0c2-1b2c-7000-8000-000000000001"), ("m", "a b&c")]);
        let url = sign(&KEY, "https://crm.example.org/", "marketing", "/u", &p, Some(2_000)).unwrap();
        assert!(url.starts_with("https://crm.example.org/p/marketing/u?c=0193a0c2"), "{url}");
        assert_eq!(verify(&KEY, "marketing", &url, 1_000).unwrap(), p);
        let local = url.trim_start_matches("https://crm.example.org");
        assert_eq!(verify(&KEY, "marketing", local, 1_000).unwrap(), p);
        let route = local.trim_start_matches("/p/marketing");
        assert_eq!(verify(&KEY, "marketing", route, 1_000).unwrap(), p);
        let bare = sign(&KEY, "http://127.0.0.1:8080", "marketing", "/o", &[], None).unwrap();
        assert!(bare.contains("/p/marketing/o?sig="), "{bare}");
        assert_eq!(verify(&KEY, "marketing", &bare, i64::MAX).unwrap(), vec![]);
    }

    #[test]
    fn changed_expired_foreign_and_unsigned_links_are_refused() {
        let p = params(&[("c", "1")]);
        let url = sign(&KEY, "https://crm.example.org", "marketing", "/u", &p, Some(2_000)).unwrap();
        assert!(verify(&KEY, "marketing", &url.replace("c=1", "c=2"), 1_000).is_err());
        assert!(verify(&KEY, "marketing", &url.replace("/u?", "/x?"), 1_000).is_err());
        assert!(verify(&KEY, "marketing", &url.replace("exp=2000", "exp=9999"), 1_000).is_err());
        assert!(verify(&KEY, "marketing", &format!("{url}&c=2"), 1_000).is_err());
        assert_eq!(verify(&KEY, "marketing", &url, 3_000).unwrap_err(), "the link has expired");
        assert!(verify(&KEY, "donors", &url, 1_000).is_err());
        assert!(verify(&[8; 32], "marketing", &url, 1_000).is_err());
        assert!(verify(&KEY, "marketing", "/u?c=1", 1_000).is_err());
        assert!(sign(&KEY, "https://x", "m", "/u", &params(&[("sig", "x")]), None).is_err());
        assert!(sign(&KEY, "https://x", "m", "u", &[], None).is_err());
        assert!(sign(&KEY, "https://x", "m", "/../admin", &[], None).is_err());
    }
}
