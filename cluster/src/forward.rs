//! What a proxy changes in the messages it passes on, in both directions (RFC 9110 §7.6).
//!
//! A request arrives parsed (the cluster's `Conn` decoded its framing, answered `100-continue`,
//! and refused anything malformed); [`encode_request`] writes it again for a copy. A copy's
//! response arrives through common's [`ResponseReader`]; [`relay`] turns it into the `Response`
//! the client's `Conn` will frame. Both are pure functions of their input, so the rules are
//! tested here without a socket.
//!
//! The rules, in both directions: the hop-by-hop fields (`Connection` and every field it names,
//! `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`) describe one
//! connection and are dropped; the framing is redone (a chunked request body reaches the copy
//! with a `Content-Length`, and a chunked response reaches the client the same way, because both
//! are buffered whole); `Via` names this hop. Towards the copy, `X-Forwarded-For` and `Forwarded`
//! gain the client's address and `Expect` goes (the cluster already said `100 Continue` and holds
//! the whole body). Towards the client, the copy's `Date` and `Server` give way to the cluster's
//! own, as nginx does by default.

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use flash_common::parse::trim;
use flash_common::response::status_has_body;
use flash_common::response_reader::{ResponseFraming, ResponseHead};
use flash_common::{Body, Request, Response};

/// The name this proxy gives itself in `Via` (RFC 9110 §7.6.3's pseudonym).
const PSEUDONYM: &str = "flash-cluster";

/// Whether a field is hop-by-hop whatever `Connection` says.
fn hop_by_hop(name: &[u8]) -> bool {
    const FIELDS: [&[u8]; 6] = [b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"];
    FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f)) || (name.len() > 6 && name[..6].eq_ignore_ascii_case(b"proxy-"))
}

/// Whether `name` is one of the field names listed in the message's `Connection` fields.
fn named_by_connection<'a>(name: &[u8], mut connection: impl Iterator<Item = &'a [u8]>) -> bool {
    connection.any(|v| v.split(|&c| c == b',').any(|t| trim(t).eq_ignore_ascii_case(name)))
}

/// Writes `req` as the request a copy receives: HTTP/1.1 (the pool keeps connections to copies
/// open), the client's fields less the hop-by-hop ones, `Host` as the client sent it (or the
/// cluster's own address for an HTTP/1.0 client that sent none), `Via`, `X-Forwarded-For` and
/// `Forwarded` extended, and the decoded body with a `Content-Length`.
pub fn encode_request(req: &Request<'_>, cluster: SocketAddr) -> Vec<u8> {
    let body = req.body();
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(req.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // Collected once (no allocation when, as usual, there is none), not searched per field.
    let connection: Vec<&[u8]> =
        req.headers().filter(|(n, _)| n.eq_ignore_ascii_case("connection")).map(|(_, v)| v).collect();
    let (mut host, mut framed) = (false, false);
    // The lists this hop extends; empty (unallocated) unless the client sent them.
    let (mut via, mut xff, mut forwarded) = (Vec::new(), Vec::new(), Vec::new());
    for (name, value) in req.headers() {
        let lower = name.as_bytes();
        if lower.eq_ignore_ascii_case(b"content-length") || lower.eq_ignore_ascii_case(b"transfer-encoding") {
            framed = true;
            continue;
        }
        if hop_by_hop(lower)
            || lower.eq_ignore_ascii_case(b"expect")
            || named_by_connection(lower, connection.iter().copied())
        {
            continue;
        }
        let list = match name {
            n if n.eq_ignore_ascii_case("via") => &mut via,
            n if n.eq_ignore_ascii_case("x-forwarded-for") => &mut xff,
            n if n.eq_ignore_ascii_case("forwarded") => &mut forwarded,
            n => {
                host |= n.eq_ignore_ascii_case("host");
                field(&mut out, name.as_bytes(), value);
                continue;
            }
        };
        append_item(list, value);
    }
    // Writing into a Vec cannot fail, so the results of `write!` below are ignored.
    if !host {
        let _ = write!(out, "Host: {cluster}\r\n");
    }
    extend_list(&mut out, b"Via", &via);
    let _ = write!(out, "1.{} {PSEUDONYM}\r\n", req.minor_version());
    let ip = req.peer().ip();
    extend_list(&mut out, b"X-Forwarded-For", &xff);
    let _ = write!(out, "{ip}\r\n");
    extend_list(&mut out, b"Forwarded", &forwarded);
    let _ = match ip {
        IpAddr::V4(v4) => write!(out, "for={v4};proto=http\r\n"),
        IpAddr::V6(v6) => write!(out, "for=\"[{v6}]\";proto=http\r\n"),
    };
    if framed || !body.is_empty() {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Starts the field `name` with the items the client sent (`existing`), ready for this hop's.
fn extend_list(out: &mut Vec<u8>, name: &[u8], existing: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(existing);
    if !existing.is_empty() {
        out.extend_from_slice(b", ");
    }
}

/// Appends one field line.
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Adds `item` to a comma-separated list (several fields of one name are one list, RFC 9110 §5.3).
fn append_item(list: &mut Vec<u8>, item: &[u8]) {
    if !list.is_empty() {
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(item);
}

/// Turns a copy's complete response into the client's: `head_bytes` is the buffer from the head's
/// first byte, `body` the decoded body, `to_head` whether the request was HEAD.
pub fn relay(head: &ResponseHead, head_bytes: &[u8], body: &[u8], to_head: bool) -> Response {
    let mut res = Response::new(head.status);
    let fields = || head.fields(head_bytes);
    let connection = || fields().filter(|(n, _)| n.eq_ignore_ascii_case(b"connection")).map(|(_, v)| v);
    let mut via = Vec::new();
    for (name, value) in fields() {
        let skip: [&[u8]; 4] = [b"content-length", b"date", b"server", b"content-type"];
        if name.eq_ignore_ascii_case(b"content-type") && res.content_type.is_none() {
            res.content_type = Some(Cow::Owned(lossy(value)));
        } else if name.eq_ignore_ascii_case(b"via") {
            append_item(&mut via, value);
        } else if !(hop_by_hop(name)
            || skip.iter().any(|s| name.eq_ignore_ascii_case(s))
            || named_by_connection(name, connection()))
        {
            res.headers.push((Cow::Owned(lossy(name)), lossy(value)));
        }
    }
    append_item(&mut via, format!("1.{} {PSEUDONYM}", head.minor).as_bytes());
    res.headers.push((Cow::Borrowed("Via"), lossy(&via)));
    res.body = if to_head {
        // The length the copy announced for the GET this HEAD stands for.
        head.content_length.map_or(Body::Empty, Body::HeadOnly)
    } else if !status_has_body(head.status) || matches!(head.framing, ResponseFraming::None) {
        Body::Empty
    } else {
        Body::Bytes(body.to_vec())
    };
    res
}

/// Field bytes as text; a byte that is not UTF-8 (obs-text, allowed but obsolete) becomes U+FFFD.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether a request may be sent again after its copy failed having received some of it:
/// idempotent methods (RFC 9110 §9.2.2) and requests that carry an `Idempotency-Key`.
pub fn replayable(req: &Request<'_>) -> bool {
    matches!(req.method(), "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE")
        || req.header("idempotency-key").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flash_common::parse::{parse_head, Head, Limits};
    use flash_common::response_reader::ResponseReader;

    /// Parses `raw` as the cluster's `Conn` would and encodes it for a copy, from client `peer`.
    fn forward(raw: &[u8], peer: &str) -> String {
        let mut head = Head::default();
        let len = parse_head(raw, &Limits::default(), &mut head).unwrap().unwrap();
        let body = &raw[len..];
        let req = Request::new(raw, &head, body, peer.parse().unwrap());
        String::from_utf8(encode_request(&req, "127.0.0.1:8080".parse().unwrap())).unwrap()
    }

    #[test]
    fn requests_lose_hop_by_hop_fields_and_gain_via_and_forwarded() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: example\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
            Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: p\r\n\
            Via: 1.0 edge\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nX-Kept: k\r\n\
            Content-Length: 5\r\n\r\nhello";
        let out = forward(raw, "192.0.2.9:5000");
        assert_eq!(
            out,
            "POST /x?y=1 HTTP/1.1\r\nHost: example\r\nX-Kept: k\r\nVia: 1.0 edge, 1.1 flash-cluster\r\n\
             X-Forwarded-For: 10.0.0.1, 192.0.2.9\r\nForwarded: for=10.0.0.1, for=192.0.2.9;proto=http\r\n\
             Content-Length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn chunked_and_expect_become_a_length_and_a_host_is_supplied() {
        let raw = b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
        let mut head = Head::default();
        let len = parse_head(raw, &Limits::default(), &mut head).unwrap().unwrap();
        // The decoded body, as the Conn hands it over.
        let req = Request::new(raw, &head, b"hello, world", "[::1]:7".parse().unwrap());
        let out = String::from_utf8(encode_request(&req, "127.0.0.1:8080".parse().unwrap())).unwrap();
        assert!(out.ends_with("Content-Length: 12\r\n\r\nhello, world"), "{out}");
        assert!(!out.contains("chunked") && !out.contains("Expect"), "{out}");
        assert!(out.contains("Forwarded: for=\"[::1]\";proto=http\r\n"), "{out}");
        assert_eq!(len, raw.len());

        let out = forward(b"GET / HTTP/1.0\r\n\r\n", "127.0.0.1:1");
        assert!(out.starts_with("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nVia: 1.0 flash-cluster\r\n"), "{out}");
        assert!(!out.contains("Content-Length"), "no body, no length: {out}");
    }

    /// Reads `raw` as a copy's response and relays it.
    fn relayed(raw: &[u8], to_head: bool) -> Response {
        let mut reader = ResponseReader::new(to_head, 1 << 14, 1 << 20);
        let mut buf = raw.to_vec();
        let done = reader.advance(&mut buf, true).unwrap().unwrap();
        relay(reader.head(), &buf[done.head_start..], &buf[done.body], to_head)
    }

    #[test]
    fn responses_keep_end_to_end_fields_only() {
        let res = relayed(
            b"HTTP/1.1 201 Created\r\nServer: copy\r\nDate: then\r\nContent-Type: text/x\r\nConnection: X-Hop\r\n\
              X-Hop: h\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVia: 1.1 inner\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(res.status, 201);
        assert_eq!(res.content_type.as_deref(), Some("text/x"));
        let names: Vec<(&str, &str)> = res.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
        assert_eq!(names, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Via", "1.1 inner, 1.1 flash-cluster")]);
        assert!(matches!(&res.body, Body::Bytes(b) if b == b"hello"));

        let head = relayed(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", true);
        assert!(matches!(head.body, Body::HeadOnly(13)));
        let not_modified = relayed(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", false);
        assert!(matches!(not_modified.body, Body::Empty));
    }
}
