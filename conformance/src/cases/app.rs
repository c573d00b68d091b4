//! The application's routes: `/echo`, `/addone`, `/sleep`, `/cpu`, `/server-status`, 405s, and
//! the docroot's index.

use std::net::SocketAddr;

use serde_json::Value;

use super::{get, with_body};
use crate::wire::{Response, Wire};

/// `POST /echo` returns the body byte for byte (all 256 values) with the request's Content-Type.
pub fn echo_preserves_content_type(addr: SocketAddr) {
    let body: Vec<u8> = (0..=255u8).collect();
    let res = Wire::connect(addr).roundtrip(with_body("POST", "/echo", "application/x-flash-test", &body));
    res.assert_status(200);
    assert_eq!(res.header("content-type"), Some("application/x-flash-test"));
    assert_eq!(res.body, body);
}

/// A 1 MiB body makes the connection's buffers grow, and comes back intact; the connection then
/// serves the next request (a server that gives back what grew must not lose its place).
pub fn echo_large_body(addr: SocketAddr) {
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut wire = Wire::connect(addr);
    let res = wire.roundtrip(with_body("POST", "/echo", "application/octet-stream", &body));
    res.assert_status(200);
    assert!(res.body == body, "echoed {} bytes, not the {} sent (or not the same)", res.body.len(), body.len());
    assert_eq!(wire.roundtrip(get("/hello")).assert_status(200).text(), "Hello, world!");
}

/// Parses a JSON body, with the response in the failure message.
#[track_caller]
fn json(res: &Response) -> Value {
    let ct = res.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "Content-Type {ct:?} in:\n{}", res.head);
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", res.text()))
}

/// `POST /addone` with `{"data": N}` answers N + 1.
pub fn addone_answers(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    for (n, want) in [(41i64, 42i64), (-5, -4), (0, 1)] {
        let body = format!(r#"{{"data": {n}}}"#);
        let res = wire.roundtrip(with_body("POST", "/addone", "application/json", body.as_bytes()));
        res.assert_status(200);
        let v = json(&res);
        assert_eq!(v["status"], "success", "{v}");
        assert_eq!(v["num"], want, "{v}");
    }
}

/// Malformed JSON, a missing field, a non-integer and an overflow are each 400 with a JSON error.
pub fn addone_refuses_bad_input(addr: SocketAddr) {
    for body in ["{", "", r#"{}"#, r#"{"data": "x"}"#, r#"{"data": 1.5}"#, r#"{"data": 9223372036854775807}"#] {
        let res = Wire::connect(addr).roundtrip(with_body("POST", "/addone", "application/json", body.as_bytes()));
        assert_eq!(res.status, 400, "body {body:?} answered:\n{}{}", res.head, res.text());
        let v = json(&res);
        assert_eq!(v["status"], "error", "{v}");
        assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "no reason in {v}");
    }
}

/// Asserts a 400 whose body says what was wrong.
#[track_caller]
fn assert_400(addr: SocketAddr, target: &str) {
    let res = Wire::connect(addr).roundtrip(get(target));
    assert_eq!(res.status, 400, "{target} answered:\n{}{}", res.head, res.text());
    assert!(!res.text().trim().is_empty(), "{target}: the 400 should say why");
}

/// `/sleep?ms=N` answers after N ms; a missing, non-numeric or too large N is 400.
pub fn sleep_answers_and_refuses(addr: SocketAddr) {
    let res = Wire::connect(addr).roundtrip(get("/sleep?ms=20"));
    res.assert_status(200);
    assert!(res.text().contains("20"), "{}", res.text());
    for target in ["/sleep", "/sleep?ms=", "/sleep?ms=abc", "/sleep?ms=-1", "/sleep?ms=10001"] {
        assert_400(addr, target);
    }
}

/// `/cpu?n=N` answers a digest that depends on N and only on N; bad N is 400.
pub fn cpu_answers_and_refuses(addr: SocketAddr) {
    // One connection for the digests, closed before the refusals: a sequential server serves
    // a second connection only once the first is gone.
    let mut wire = Wire::connect(addr);
    let mut digest = |n: u32| {
        let res = wire.roundtrip(get(&format!("/cpu?n={n}")));
        res.assert_status(200);
        let text = res.text();
        let hex = text.trim();
        assert!(hex.len() == 16 && hex.bytes().all(|c| c.is_ascii_hexdigit()), "digest {text:?}");
        text
    };
    let (a, b, c) = (digest(1000), digest(1000), digest(1001));
    assert_eq!(a, b, "the same work must give the same digest");
    assert_ne!(a, c, "more work must give another digest");
    drop(wire);
    for target in ["/cpu", "/cpu?n=x", "/cpu?n=-1", "/cpu?n=100000001"] {
        assert_400(addr, target);
    }
}

/// `/server-status` is JSON with the uptime and the connections counted so far.
pub fn server_status_is_json(addr: SocketAddr) {
    let res = Wire::connect(addr).roundtrip(get("/server-status"));
    res.assert_status(200);
    let v = json(&res);
    assert!(v["uptime_secs"].as_f64().is_some_and(|s| s >= 0.0), "{v}");
    assert!(v["connections"].as_u64().is_some_and(|n| n >= 1), "this very connection counts: {v}");
}

/// A route that exists with another method is 405, with `Allow` naming the right ones.
pub fn wrong_method_is_405_with_allow(addr: SocketAddr) {
    let cases = [
        (with_body("POST", "/hello", "text/plain", b"x"), "GET"),
        (get("/echo").into_bytes(), "POST"),
        (b"DELETE /addone HTTP/1.1\r\nHost: flash\r\n\r\n".to_vec(), "POST"),
        (with_body("PUT", "/index.html", "text/html", b"<p>"), "GET"),
    ];
    for (request, allowed) in cases {
        let res = Wire::connect(addr).roundtrip(request);
        res.assert_status(405);
        let allow = res.header("allow").unwrap_or_else(|| panic!("405 without Allow:\n{}", res.head));
        assert!(allow.split(',').any(|m| m.trim() == allowed), "Allow {allow:?} should include {allowed}");
        assert!(!res.text().trim().is_empty(), "the 405 should say why");
    }
}

/// `/` serves the docroot's index page as HTML.
pub fn root_serves_index(addr: SocketAddr) {
    let res = Wire::connect(addr).roundtrip(get("/"));
    res.assert_status(200);
    let ct = res.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "Content-Type {ct:?}");
    assert!(!res.body.is_empty());
}
