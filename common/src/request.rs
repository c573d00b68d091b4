//! What a handler sees of a request: a borrowed view over the connection's buffer.
//!
//! A [`Request`] copies nothing: its method, target, fields and body are slices of the bytes the
//! server read. That is the fast path every server takes. A server that hands requests to another
//! thread (05) needs them to outlive the buffer, and pays for that with [`Request::to_owned`].

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

    /// The path part of the target (before `?`), still percent-encoded.
    pub fn path(&self) -> &'a str {
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

    /// Copies the request so it can outlive the connection's buffer (one allocation).
    pub fn to_owned(&self) -> OwnedRequest {
        let head_bytes = &self.buf[..self.head.len];
        let mut bytes = Vec::with_capacity(head_bytes.len() + self.body.len());
        bytes.extend_from_slice(head_bytes);
        bytes.extend_from_slice(self.body);
        OwnedRequest { bytes, head: self.head.clone(), peer: self.peer }
    }
}

/// A request that owns its bytes, for handing to another thread.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    /// The head's bytes followed by the decoded body.
    bytes: Vec<u8>,
    /// The parsed head; its spans point into `bytes`.
    head: Head,
    /// The client's address.
    peer: SocketAddr,
}

impl OwnedRequest {
    /// A borrowed view, the same type every handler takes.
    pub fn as_request(&self) -> Request<'_> {
        Request::new(&self.bytes, &self.head, &self.bytes[self.head.len..], self.peer)
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
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}
