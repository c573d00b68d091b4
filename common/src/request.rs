//! What a handler sees of a request: a borrowed view over the connection's buffer.
//!
//! A [`Request`] copies nothing: its method, target, fields and body are slices of the bytes the
//! server read. That is the fast path every server takes; even 05, whose pool runs the handlers,
//! hands the pool the whole connection (buffer included) rather than copying its requests out.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::parse::{trim, Head};

/// A complete request, borrowed from the buffer it was parsed from.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The request's bytes, starting at its first byte (spans in `head` are relative to this).
    buf: &'a [u8],
    /// The parsed head.
    head: &'a Head,
    /// The decoded body.
    body: &'a [u8],
    /// The client's address, for logs and CGI's `REMOTE_ADDR`.
    peer: SocketAddr,
}

impl<'a> Request<'a> {
    /// Assembles a view; `buf` must start at the request's first byte.
    pub fn new(buf: &'a [u8], head: &'a Head, body: &'a [u8], peer: SocketAddr) -> Self {
        Request { buf, head, body, peer }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        // The tokenizer accepted only token characters, which are ASCII.
        std::str::from_utf8(self.head.method.get(self.buf)).unwrap_or("")
    }

    /// The request target in origin form, path and query, e.g. `/sleep?ms=10`: as sent, or what
    /// follows the authority of an absolute-form target (`http://host/sleep?ms=10`), with the
    /// empty path such a target may have written `/`.
    pub fn target(&self) -> Cow<'a, str> {
        match self.origin() {
            o if o.starts_with('?') => Cow::Owned(format!("/{o}")),
            "" => Cow::Borrowed("/"),
            o => Cow::Borrowed(o),
        }
    }

    /// The path part of the target (before `?`), in the form routes and file names are matched
    /// in: percent-encoded unreserved characters decoded (`/%68%65llo` is `/hello`, RFC 3986
    /// §6.2.2.2), every other escape as sent (`%2F` stays `%2F`, never a segment break).
    pub fn path(&self) -> &'a str {
        if !self.head.path.is_empty() {
            return &self.head.path;
        }
        let o = self.origin();
        match o.split_once('?').map_or(o, |(p, _)| p) {
            "" => "/",
            p => p,
        }
    }

    /// The query part of the target (after `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        self.origin().split_once('?').map(|(_, q)| q)
    }

    /// The path and query as they are in the buffer (the parser checked they are ASCII).
    fn origin(&self) -> &'a str {
        std::str::from_utf8(self.head.origin.get(self.buf)).unwrap_or("")
    }

    /// The authority the request is for, `host` or `host:port`: an absolute-form target's, else
    /// the `Host` field's; empty when the client sent neither (HTTP/1.0).
    pub fn host(&self) -> &'a str {
        // The parser checked it against the grammar of `uri-host [":" port]`, which is ASCII.
        std::str::from_utf8(self.head.host.get(self.buf)).unwrap_or("")
    }

    /// The value of query parameter `name`, if present (not percent-decoded: ours are numbers).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    /// The minor HTTP version: 0 or 1.
    pub fn minor_version(&self) -> u8 {
        self.head.minor
    }

    /// The first value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The first value of header `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header field in order, as (name, trimmed value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let buf = self.buf;
        self.head.headers.iter().map(move |(n, v)| (std::str::from_utf8(n.get(buf)).unwrap_or(""), trim(v.get(buf))))
    }

    /// The decoded body (empty when there is none).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// Decodes `%XX` escapes in a request target; `None` for a malformed escape. The result is
/// bytes, not text: a decoded path may hold anything, NUL included, and the caller decides.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Two hex digits exactly: `from_str_radix` alone would also take `%+1`.
            let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_head, Limits};

    /// (path, target, query, host) of the request in `raw`.
    fn view(raw: &str) -> (String, String, Option<String>, String) {
        let mut head = Head::default();
        parse_head(raw.as_bytes(), &Limits::default(), &mut head).unwrap().unwrap();
        let req = Request::new(raw.as_bytes(), &head, b"", "127.0.0.1:1".parse().unwrap());
        (req.path().into(), req.target().into(), req.query().map(Into::into), req.host().into())
    }

    #[test]
    fn paths_are_normalized_and_targets_kept() {
        let get = |target: &str| view(&format!("GET {target} HTTP/1.1\r\nHost: h:1\r\n\r\n"));
        let strs = |p: &str, t: &str, q: Option<&str>, h: &str| (p.into(), t.into(), q.map(Into::into), h.into());
        assert_eq!(get("/hello?x=1"), strs("/hello", "/hello?x=1", Some("x=1"), "h:1"));
        assert_eq!(get("/%68%65llo?%68"), strs("/hello", "/%68%65llo?%68", Some("%68"), "h:1"));
        assert_eq!(get("/%7E%2d%2E%5f%30%41%7a"), strs("/~-._0Az", "/%7E%2d%2E%5f%30%41%7a", None, "h:1"));
        // Reserved and other escapes stay: %2F is not a segment break, %25 not a new escape.
        assert_eq!(
            get("/a%2Fb%2f%25%2541%20%zz%4"),
            strs("/a%2Fb%2f%25%2541%20%zz%4", "/a%2Fb%2f%25%2541%20%zz%4", None, "h:1")
        );
        assert_eq!(get("/a%2F%62"), strs("/a%2Fb", "/a%2F%62", None, "h:1"));
        assert_eq!(get("http://e.x/a%62?q"), strs("/ab", "/a%62?q", Some("q"), "e.x"));
        assert_eq!(get("http://e.x?q"), strs("/", "/?q", Some("q"), "e.x"));
        assert_eq!(get("http://e.x"), strs("/", "/", None, "e.x"));
        assert_eq!(view("GET / HTTP/1.0\r\n\r\n").3, "");
    }

    /// A connection reuses its `Head`: a path decoded for one request must not leak into the next.
    #[test]
    fn a_decoded_path_does_not_outlive_its_request() {
        let mut head = Head::default();
        for (raw, want) in
            [("GET /%61 HTTP/1.1\r\nHost: h\r\n\r\n", "/a"), ("GET /b HTTP/1.1\r\nHost: h\r\n\r\n", "/b")]
        {
            parse_head(raw.as_bytes(), &Limits::default(), &mut head).unwrap().unwrap();
            let req = Request::new(raw.as_bytes(), &head, b"", "127.0.0.1:1".parse().unwrap());
            assert_eq!(req.path(), want);
        }
    }
}
