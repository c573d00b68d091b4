//! Messages and connections: the exact `/hello` response, persistence in HTTP/1.0 and 1.1,
//! pipelining, requests split at every byte, chunked bodies, `Expect: 100-continue`, HEAD.

use std::net::SocketAddr;

use flash_common::date::{parse_http_date, unix_now};

use super::{assert_refused, get, with_body};
use crate::wire::Wire;

/// A chunked body with a chunk extension and a trailer field: decodes to `hello, world`.
const CHUNKED_ECHO: &str = "POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Type: text/plain\r\n\
    Transfer-Encoding: chunked\r\n\r\n\
    5;name=value\r\nhello\r\n7;flag\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n";

/// `GET /hello`: status line, body and the framing fields every response carries.
pub fn hello_exact_response(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    for _ in 0..2 {
        let res = wire.roundtrip(get("/hello"));
        assert!(res.head.starts_with("HTTP/1.1 200 OK\r\n"), "status line of:\n{}", res.head);
        assert_eq!(res.body, b"Hello, world!");
        assert_eq!(res.header("content-length"), Some("13"));
        let content_type = res.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/plain"), "Content-Type {content_type:?}");
        assert!(res.header("server").is_some_and(|s| !s.is_empty()), "no Server in:\n{}", res.head);
        let date = res.header("date").unwrap_or_else(|| panic!("no Date in:\n{}", res.head));
        let when = parse_http_date(date).unwrap_or_else(|| panic!("Date {date:?} is not an IMF-fixdate"));
        assert!(when.abs_diff(unix_now()) <= 60, "Date {date:?} is not now");
        assert!(res.header("transfer-encoding").is_none());
        assert!(!res.says_close(), "HTTP/1.1 /hello should keep the connection:\n{}", res.head);
    }
}

/// HTTP/1.1 keeps the connection open unless told otherwise: three requests, one connection.
pub fn http11_keeps_alive_by_default(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    for i in 0..3 {
        let res = wire.roundtrip(get("/hello"));
        res.assert_status(200);
        assert!(!res.says_close(), "request {i} closed the connection:\n{}", res.head);
    }
}

/// HTTP/1.1 with `Connection: close`: answered, announced, and closed by the server.
pub fn http11_connection_close_closes(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    let res = wire.roundtrip("GET /hello HTTP/1.1\r\nHost: flash\r\nConnection: close\r\n\r\n");
    res.assert_status(200);
    assert_eq!(res.body, b"Hello, world!");
    assert!(res.says_close(), "expected Connection: close in:\n{}", res.head);
    wire.expect_closed();
}

/// HTTP/1.0 closes after the response by default.
pub fn http10_closes_by_default(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    let res = wire.roundtrip("GET /hello HTTP/1.0\r\n\r\n");
    res.assert_status(200);
    assert_eq!(res.body, b"Hello, world!");
    wire.expect_closed();
}

/// HTTP/1.0 with `Connection: keep-alive` stays open, and is told so explicitly.
pub fn http10_keep_alive_stays_open(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    for _ in 0..2 {
        let res = wire.roundtrip("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        res.assert_status(200);
        let connection = res.header("connection").unwrap_or_default();
        assert!(connection.eq_ignore_ascii_case("keep-alive"), "a 1.0 client must be told keep-alive:\n{}", res.head);
    }
    let res = wire.roundtrip("GET /hello HTTP/1.0\r\n\r\n");
    res.assert_status(200);
    wire.expect_closed();
}

/// Ten requests in one write are answered in order, each with its own body.
pub fn pipelining_ten_in_one_write(addr: SocketAddr) {
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        if i % 3 == 0 {
            batch.extend_from_slice(get("/hello").as_bytes());
            expected.push("Hello, world!".to_string());
        } else {
            let body = format!("request number {i}");
            batch.extend_from_slice(&with_body("POST", "/echo", "text/plain", body.as_bytes()));
            expected.push(body);
        }
    }
    let mut wire = Wire::connect(addr);
    wire.send(&batch);
    for (i, want) in expected.iter().enumerate() {
        let res = wire.response();
        res.assert_status(200);
        assert_eq!(&res.text(), want, "response {i} out of order");
    }
    // And the connection is still good for more.
    assert_eq!(wire.roundtrip(get("/hello")).text(), "Hello, world!");
}

/// A request answered with a file, then another in the same write: the second is answered too,
/// though the server had paused behind the file body while it was already buffered.
pub fn pipelining_behind_a_file(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    wire.send(format!("{}{}", get("/"), get("/hello")));
    let page = wire.response();
    page.assert_status(200);
    assert!(!page.body.is_empty(), "GET / has an empty body");
    assert_eq!(wire.response().assert_status(200).text(), "Hello, world!");
}

/// A request with a body, then another, sent one byte per write.
pub fn request_split_byte_by_byte(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    let mut bytes = with_body("POST", "/echo", "text/plain", b"arrived in pieces");
    bytes.extend_from_slice(get("/hello").as_bytes());
    wire.send_bytewise(&bytes);
    let res = wire.response();
    res.assert_status(200);
    assert_eq!(res.text(), "arrived in pieces");
    assert_eq!(wire.response().text(), "Hello, world!");
}

/// A chunked body with extensions and trailers is decoded, and the request after it (in the
/// same write) is found where the trailers end.
pub fn chunked_body_with_extensions_and_trailers(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    wire.send(format!("{CHUNKED_ECHO}{}", get("/hello")));
    let res = wire.response();
    res.assert_status(200);
    assert_eq!(res.text(), "hello, world");
    assert_eq!(res.header("content-type"), Some("text/plain"));
    assert_eq!(wire.response().text(), "Hello, world!");
}

/// The same chunked request, one byte per write.
pub fn chunked_body_split_byte_by_byte(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    wire.send_bytewise(format!("{CHUNKED_ECHO}{}", get("/hello")));
    assert_eq!(wire.response().assert_status(200).text(), "hello, world");
    assert_eq!(wire.response().text(), "Hello, world!");
}

/// `Expect: 100-continue`: the server says `100 Continue` before the body is sent, then answers.
pub fn expect_100_continue(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    wire.send(
        "POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
         Expect: 100-continue\r\n\r\n",
    );
    let interim = wire.response();
    interim.assert_status(100);
    assert!(interim.head.starts_with("HTTP/1.1 100 Continue\r\n"), "interim response:\n{}", interim.head);
    let res = wire.roundtrip("hello");
    res.assert_status(200);
    assert_eq!(res.text(), "hello");
}

/// RFC 9110 §10.1.1: an HTTP/1.0 client's `100-continue` is ignored, since it may take a 1xx for the
/// final answer. It sends the body unasked; the first thing it reads must be the real response.
pub fn http10_expect_100_continue_is_ignored(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    wire.send("POST /echo HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let res = wire.roundtrip("hello");
    res.assert_status(200);
    assert_eq!(res.text(), "hello");
    wire.expect_closed();
}

/// RFC 9112 §3.2.2: a server must accept an absolute-form target. It is served by its path (an
/// empty one is `/`), and its authority takes the place of `Host`.
pub fn absolute_form_target_is_served(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    for (target, host) in [
        ("http://flash/hello", "flash"),
        ("HTTP://flash:8080/hello?x=1", "flash"),
        ("http://flash/hello", "elsewhere.example"),
        ("https://127.0.0.1/hello", "flash"),
        ("http://[::1]/hello", "flash"),
    ] {
        let res = wire.roundtrip(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(res.assert_status(200).text(), "Hello, world!", "GET {target} with Host {host}");
    }
    let echo = wire.roundtrip(b"POST http://flash/echo HTTP/1.1\r\nHost: flash\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(echo.assert_status(200).text(), "hi");
    let root = wire.roundtrip(get("/"));
    for target in ["http://flash", "http://flash?x=1"] {
        let res = wire.roundtrip(format!("GET {target} HTTP/1.1\r\nHost: flash\r\n\r\n"));
        res.assert_status(200);
        assert_eq!(res.body, root.body, "GET {target} serves the same as GET /");
    }
}

/// RFC 3986 §6.2.2.2: a percent-encoded unreserved character is the character itself, so
/// `/%68%65llo` routes as `/hello` (either case of hex digit). An encoded `/` is no segment break:
/// `/%2Fhello` is not `/hello`.
pub fn percent_encoded_unreserved_path_is_decoded(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    for target in ["/%68%65llo", "/%68%65%6C%6c%6F", "/hell%6f?x=%31"] {
        assert_eq!(wire.roundtrip(get(target)).assert_status(200).text(), "Hello, world!", "GET {target}");
    }
    let echo = wire.roundtrip(with_body("POST", "/%65cho", "text/plain", b"hi"));
    assert_eq!(echo.assert_status(200).text(), "hi");
    let res = wire.roundtrip(get("/%2Fhello"));
    assert_ne!(res.status, 200, "an encoded / read as a segment break:\n{}{}", res.head, res.text());
}

/// Any expectation other than 100-continue is 417.
pub fn expect_other_is_417(addr: SocketAddr) {
    assert_refused(addr, "POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Length: 5\r\nExpect: tea\r\n\r\nhello", 417);
}

/// HEAD: the same fields as GET, the same Content-Length, and not one byte of body (the GET
/// that follows on the connection would not parse if there were).
pub fn head_has_no_body(addr: SocketAddr) {
    let mut wire = Wire::connect(addr);
    wire.send(format!("HEAD /hello HTTP/1.1\r\nHost: flash\r\n\r\n{}", get("/hello")));
    let head = wire.head_response();
    head.assert_status(200);
    assert_eq!(head.header("content-length"), Some("13"));
    let res = wire.response();
    res.assert_status(200);
    assert_eq!(res.text(), "Hello, world!");
    assert_eq!(head.header("content-length"), res.header("content-length"), "HEAD and GET lengths differ");
}
