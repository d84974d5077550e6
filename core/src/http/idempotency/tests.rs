//! Unit tests of the `Idempotency-Key` header rules and body fingerprints.

use axum::http::{HeaderMap, HeaderValue};

use crate::http::idempotency::{HEADER, fingerprint, key};

#[track_caller]
fn check(values: &[&[u8]], expect: Result<Option<&str>, &str>) {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(HEADER, HeaderValue::from_bytes(value).expect("a header value"));
    }
    match (key(&headers), expect) {
        (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want),
        (Err(message), Err(words)) => assert!(message.contains(words), "`{message}` should say `{words}`"),
        (got, want) => panic!("{values:?}: got {got:?}, expected {want:?}"),
    }
}

#[test]
fn keys_are_one_to_255_printable_ascii_characters_sent_once() {
    check(&[], Ok(None));
    check(&[b"order-1"], Ok(Some("order-1")));
    check(&[b"0190c6c4-8a3e-7c1e-9f1b-2b7d2c1e4a55"], Ok(Some("0190c6c4-8a3e-7c1e-9f1b-2b7d2c1e4a55")));
    check(&[b"with inner space"], Ok(Some("with inner space")));
    check(&["k".repeat(255).as_bytes()], Ok(Some(&"k".repeat(255))));
    check(&["k".repeat(256).as_bytes()], Err("1 to 255"));
    check(&[b""], Err("1 to 255"));
    check(&[b"caf\xc3\xa9"], Err("printable ASCII"));
    check(&[b"tab\there"], Err("printable ASCII"));
    check(&[b"a", b"b"], Err("not several"));
}

#[test]
fn a_fingerprint_ignores_whitespace_and_key_order_only() {
    let body = br#"{"query":"mutation { a }","variables":{"x":1,"y":[1,2]}}"#;
    let same = br#"{ "variables": { "y": [1, 2], "x": 1 },
        "query": "mutation { a }" }"#;
    assert_eq!(fingerprint(body), fingerprint(same));
    for other in [
        &br#"{"query":"mutation { a }","variables":{"x":2,"y":[1,2]}}"#[..],
        br#"{"query":"mutation { a }","variables":{"x":1,"y":[2,1]}}"#,
        br#"{"query":"mutation {  a }","variables":{"x":1,"y":[1,2]}}"#,
        br#"[{"query":"mutation { a }","variables":{"x":1,"y":[1,2]}}]"#,
    ] {
        assert_ne!(fingerprint(body), fingerprint(other), "{}", String::from_utf8_lossy(other));
    }
}
