//! Malformed and oversized requests. Each is refused with its status and a body saying why,
//! the connection is closed (its framing can no longer be trusted), and a fresh client is served
//! afterwards ([`assert_refused`] checks all three).

use std::net::SocketAddr;

use flash_common::server::Serve;

use super::{assert_refusal, assert_refused, assert_serves, with_body};
use crate::server::TestServer;
use crate::wire::Wire;

/// A method nobody defined is 501.
pub fn unknown_method_is_501(addr: SocketAddr) {
    assert_refused(addr, "BREW /hello HTTP/1.1\r\nHost: flash\r\n\r\n", 501);
}

/// A well-formed version other than 1.0 and 1.1 is 505.
pub fn http2_is_505(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/2.0\r\nHost: flash\r\n\r\n", 505);
}

/// HTTP/1.1 without `Host` is 400.
pub fn missing_host_is_400(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/1.1\r\n\r\n", 400);
}

/// Two `Host` fields are 400.
pub fn two_hosts_is_400(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

/// A `Host`, or an absolute-form target's authority, that is not `uri-host [":" port]` is 400 (RFC
/// 9112 §3.2, RFC 3986 §3.2.2); so is user information in the authority (RFC 9110 §4.2.4). The
/// grammar's less common forms are served.
pub fn invalid_host_is_400(addr: SocketAddr) {
    for host in ["fla sh", "user@flash", "flash:http", "flash:80:80", "[::1", "[::1]x", "fl/ash", "fl\u{e9}sh"] {
        assert_refused(addr, format!("GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n"), 400);
    }
    // HTTP/1.0 may leave Host out, but a Host it sends is checked all the same.
    assert_refused(addr, "GET /hello HTTP/1.0\r\nHost: fla sh\r\n\r\n", 400);
    for target in ["http://user@flash/hello", "http://u:p@flash/hello", "http:///hello", "http://fla sh/hello"] {
        assert_refused(addr, format!("GET {target} HTTP/1.1\r\nHost: flash\r\n\r\n"), 400);
    }
    // The authority overrides Host, but Host must still be there (RFC 9112 §3.2) and valid.
    assert_refused(addr, "GET http://flash/hello HTTP/1.1\r\n\r\n", 400);
    assert_refused(addr, "GET http://flash/hello HTTP/1.1\r\nHost: fla sh\r\n\r\n", 400);
    let mut wire = Wire::connect(addr);
    for host in ["flash:8080", "127.0.0.1", "[::1]:80", "[v7.future]", "FLASH.example.", "fl%41sh", ""] {
        let res = wire.roundtrip(format!("GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(res.assert_status(200).text(), "Hello, world!", "Host: {host}");
    }
}

/// Whitespace inside the request target is a malformed request line: 400, not the 505 it got when
/// the tokenizer read what followed the space as the version. Two spaces between the parts are
/// malformed the same way.
pub fn whitespace_in_target_is_400(addr: SocketAddr) {
    for line in ["GET /hel lo HTTP/1.1", "GET /hello HTTP/1.1 HTTP/1.1", "GET /hello  HTTP/1.1", "GET  /hello HTTP/1.1"]
    {
        assert_refused(addr, format!("{line}\r\nHost: flash\r\n\r\n"), 400);
    }
    assert_refused(addr, "GET /hel\tlo HTTP/1.1\r\nHost: flash\r\n\r\n", 400);
}

/// A target that is neither a path nor an http(s) URI, or holds what no target may hold, is 400
/// (RFC 9112 §3.2): a fragment, a byte that is not ASCII, `*` other than for OPTIONS.
pub fn malformed_target_is_400(addr: SocketAddr) {
    for target in
        [&b"/hello#top"[..], b"/h\xc3\xa9llo", b"/h\x80llo", b"*", b"hello", b"ftp://flash/hello", b"http:/hello"]
    {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: flash\r\n\r\n");
        assert_refused(addr, req, 400);
    }
}

/// A bare LF ending a line of the head is 400: RFC 9112 §2.2 lets a server accept it, but a peer
/// in front that does not would see one field where we see two.
pub fn bare_lf_is_400(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/1.1\nHost: flash\r\n\r\n", 400);
    assert_refused(addr, "GET /hello HTTP/1.1\r\nHost: flash\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n", 400);
    assert_refused(addr, "GET /hello HTTP/1.1\r\nHost: flash\n\n", 400);
}

/// `Content-Length` and `Transfer-Encoding` together (how request smuggling starts) are 400.
pub fn content_length_and_chunked_is_400(addr: SocketAddr) {
    let req = "POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
               5\r\nhello\r\n0\r\n\r\n";
    assert_refused(addr, req, 400);
}

/// Two different lengths, as two fields or as a list, are 400.
pub fn conflicting_content_lengths_is_400(addr: SocketAddr) {
    assert_refused(
        addr,
        "POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    );
    assert_refused(addr, "POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
}

/// A length that is not plain digits is 400.
pub fn bad_content_length_is_400(addr: SocketAddr) {
    for value in ["-1", "+5", "5a", "0x5", "1 2", ""] {
        assert_refused(
            addr,
            format!("POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Length: {value}\r\n\r\nhello"),
            400,
        );
    }
}

/// A transfer coding we do not implement, applied before chunked, is 501 (RFC 9112 §6.1); so is
/// the same list given as two fields.
pub fn unsupported_transfer_coding_is_501(addr: SocketAddr) {
    for fields in ["Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"]
    {
        assert_refused(addr, format!("POST /echo HTTP/1.1\r\nHost: flash\r\n{fields}\r\n0\r\n\r\n"), 501);
    }
}

/// When chunked is not the last transfer coding, the body's end cannot be known: 400 and close
/// (RFC 9112 §6.3 rule 4), not 501, whatever the codings are. Chunked twice is the same.
pub fn transfer_coding_not_ending_in_chunked_is_400(addr: SocketAddr) {
    for fields in [
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
    ] {
        assert_refused(addr, format!("POST /echo HTTP/1.1\r\nHost: flash\r\n{fields}\r\n2\r\nhi\r\n0\r\n\r\n"), 400);
    }
}

/// `Transfer-Encoding` in an HTTP/1.0 request means something before us framed the body without
/// knowing chunked: RFC 9112 §6.1 has the framing treated as faulty, so 400.
pub fn http10_transfer_encoding_is_400(addr: SocketAddr) {
    assert_refused(addr, "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 400);
    let both = "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nhi";
    assert_refused(addr, both, 400);
}

/// A chunk size that is not hexadecimal is 400.
pub fn bad_chunk_size_is_400(addr: SocketAddr) {
    assert_refused(
        addr,
        "POST /echo HTTP/1.1\r\nHost: flash\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    );
}

/// The head of a chunked `POST /echo`, for the cases below to append a body to.
const CHUNKED_HEAD: &str = "POST /echo HTTP/1.1\r\nHost: flash\r\nTransfer-Encoding: chunked\r\n\r\n";

/// An empty or blank chunk-size line is 400, not the last chunk (RFC 9112 §7.1: `chunk-size =
/// 1*HEXDIG`). Taken for the last chunk, it ended the body at once and the request written after
/// it was served as a request of its own: smuggled past whatever framed the body correctly. The
/// close after the 400 shows that nothing after the bad line was answered.
pub fn blank_chunk_size_is_400(addr: SocketAddr) {
    for body in ["\r\n\r\n", " \r\n\r\n", "\t\r\n\r\n", ";ext\r\n\r\n"] {
        let smuggled = "GET /hello HTTP/1.1\r\nHost: flash\r\n\r\n";
        assert_refused(addr, format!("{CHUNKED_HEAD}{body}{smuggled}"), 400);
    }
}

/// A control byte in a chunk extension, a bare LF above all, is 400: the size line is
/// `1*HEXDIG`, then only `chunk-ext` (RFC 9112 §7.1.1), then CRLF. A peer that ends the line at
/// the bare LF would read `xx` as the next size line and frame the body differently.
pub fn chunk_extension_control_bytes_is_400(addr: SocketAddr) {
    for body in [
        "2;\nxx\r\nhi\r\n0\r\n\r\n",
        "2;a=\"\x01\"\r\nhi\r\n0\r\n\r\n",
        "2;a\x7f\r\nhi\r\n0\r\n\r\n",
        "2;a=b\rc\r\nhi\r\n0\r\n\r\n",
        "2\nhi\r\n0\r\n\r\n",
    ] {
        assert_refused(addr, format!("{CHUNKED_HEAD}{body}"), 400);
    }
}

/// The rest of the chunked framing, each a way for two parsers to disagree on where the body
/// ends: a size that does not fit in 64 bits, whitespace after the size, chunk data not
/// followed by CRLF, and trailer lines with a control byte or a bare LF. All 400.
pub fn bad_chunked_framing_is_400(addr: SocketAddr) {
    for body in [
        "10000000000000002\r\nhi\r\n0\r\n\r\n",
        "2 \r\nhi\r\n0\r\n\r\n",
        "2\r\nhix\r\n0\r\n\r\n",
        "2\r\nhi\n0\r\n\r\n",
        "2\r\nhi\r\n0\r\nX-T: a\x01b\r\n\r\n",
        "2\r\nhi\r\n0\r\nX-T: a\n\r\n",
        "2\r\nhi\r\n0\r\n\n",
    ] {
        assert_refused(addr, format!("{CHUNKED_HEAD}{body}"), 400);
    }
}

/// A CR not followed by LF, in the request line or in a field, is 400.
pub fn bare_cr_is_400(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/1.1\rHost: flash\r\n\r\n", 400);
    assert_refused(addr, "GET /hello HTTP/1.1\r\nHost: flash\r\nX-A: 1\rX-B: 2\r\n\r\n", 400);
}

/// A field continued on the next line (obs-fold) is 400.
pub fn obs_fold_is_400(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/1.1\r\nHost: flash\r\nX-A: 1\r\n folded\r\n\r\n", 400);
}

/// Whitespace between a field name and its colon is 400 (RFC 9112 §5.1).
pub fn space_before_colon_is_400(addr: SocketAddr) {
    assert_refused(addr, "GET /hello HTTP/1.1\r\nHost : flash\r\n\r\n", 400);
}

/// A request target over 8 KiB is 414.
pub fn long_target_is_414(addr: SocketAddr) {
    assert_refused(addr, format!("GET /{} HTTP/1.1\r\nHost: flash\r\n\r\n", "a".repeat(9 * 1024)), 414);
}

/// A head over 16 KiB is 431.
pub fn large_head_is_431(addr: SocketAddr) {
    assert_refused(
        addr,
        format!("GET /hello HTTP/1.1\r\nHost: flash\r\nX-Big: {}\r\n\r\n", "v".repeat(17 * 1024)),
        431,
    );
}

/// More than 100 header fields is 431.
pub fn too_many_headers_is_431(addr: SocketAddr) {
    let fields: String = (0..101).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    assert_refused(addr, format!("GET /hello HTTP/1.1\r\nHost: flash\r\n{fields}\r\n"), 431);
}

/// A `Content-Length` over the default 8 MiB limit is 413 before any of the body is sent.
pub fn huge_content_length_is_413(addr: SocketAddr) {
    for len in [8 * 1024 * 1024 + 1, 9_999_999_999u64] {
        assert_refused(addr, format!("POST /echo HTTP/1.1\r\nHost: flash\r\nContent-Length: {len}\r\n\r\n"), 413);
    }
}

/// With `--max-body 1KiB`: a body of exactly the limit is served; one byte more, by length or
/// chunked, is 413.
pub fn body_over_small_limit_is_413(serve: Serve) {
    let server = TestServer::start_with(serve, |c| c.max_body = 1024);
    let addr = server.addr();
    let res = Wire::connect(addr).roundtrip(with_body("POST", "/echo", "text/plain", &[b'x'; 1024]));
    res.assert_status(200);
    assert_eq!(res.body.len(), 1024);

    assert_refused(addr, with_body("POST", "/echo", "text/plain", &[b'x'; 1025]), 413);

    // Chunked: the limit applies to the decoded total, whatever the chunk sizes.
    let mut wire = Wire::connect(addr);
    wire.send("POST /echo HTTP/1.1\r\nHost: flash\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = format!("200\r\n{}\r\n", "y".repeat(0x200));
    let res = wire.roundtrip(format!("{chunk}{chunk}{chunk}0\r\n\r\n"));
    assert_refusal(&res, 413);
    wire.expect_closed();
    assert_serves(addr);
    server.stop();
}
