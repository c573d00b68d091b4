//! The cases, one public function each, grouped as a reader meets them: messages and
//! connections, the application, malformed requests, static files, time and lifecycle.
//!
//! A case that takes a `SocketAddr` needs nothing but a server speaking Flash's routes, so it can
//! also run against a server already running (`FLASH_TARGET`). A case that takes the `serve`
//! function starts a server configured for it. The list that turns them into tests is
//! `__for_each_case!` in `lib.rs`; a case missing there is a case no server runs.

mod app;
mod errors;
mod files;
mod lifecycle;
mod messages;

use std::net::SocketAddr;

use crate::wire::{Response, Wire};

pub use app::*;
pub use errors::*;
pub use files::*;
pub use lifecycle::*;
pub use messages::*;

/// `GET target` over HTTP/1.1, as the bytes to send.
pub fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: flash\r\n\r\n")
}

/// A request with a body framed by `Content-Length`, as the bytes to send.
pub fn with_body(method: &str, target: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: flash\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Asserts that a fresh client is served: the server survived whatever came before.
#[track_caller]
pub fn assert_serves(addr: SocketAddr) {
    let res = Wire::connect(addr).roundtrip(get("/hello"));
    res.assert_status(200);
    assert_eq!(res.text(), "Hello, world!", "a fresh client after the previous request");
}

/// Sends `request` on a fresh connection and asserts the server refuses it as a protocol error
/// should be refused: with `status`, a body saying what was wrong, and a closed connection; then
/// that the server still serves a fresh client.
#[track_caller]
pub fn assert_refused(addr: SocketAddr, request: impl AsRef<[u8]>, status: u16) -> Response {
    let mut wire = Wire::connect(addr);
    let res = wire.roundtrip(request);
    assert_refusal(&res, status);
    wire.expect_closed();
    assert_serves(addr);
    res
}

/// Asserts a refusal's status, its explanation, and that it announces the close.
#[track_caller]
pub fn assert_refusal(res: &Response, status: u16) {
    res.assert_status(status);
    assert!(!res.text().trim().is_empty(), "the {status} response should say what was wrong:\n{}", res.head);
    assert!(res.says_close(), "a refused request should close the connection:\n{}", res.head);
}
