//! Responses, and how one is written onto the wire.
//!
//! A [`Response`] is what a handler returns: a status, a content type, a few extra fields and a
//! body. The connection state machine, not the handler, adds the framing fields (`Date`,
//! `Server`, `Content-Length`, `Connection`), so no handler can get framing wrong. Encoding
//! appends to a buffer the connection reuses, so a keep-alive request on the `/hello` path
//! allocates nothing: the body is a `&'static` slice and the fields are written in place.

use std::borrow::Cow;
use std::fs::File;

/// A response body.
#[derive(Debug, Default)]
pub enum Body {
    /// No body (and `Content-Length: 0` where a length is due).
    #[default]
    Empty,
    /// A body that lives for the whole program, such as `Hello, world!`.
    Static(&'static [u8]),
    /// A body computed for this request.
    Bytes(Vec<u8>),
    /// `len` bytes of an open file from its current position, streamed as the socket takes them
    /// so that a large file never sits in memory whole.
    File {
        /// The open file, positioned at the first byte to send.
        file: File,
        /// How many bytes to send.
        len: u64,
    },
    /// The length a response to HEAD announces, with no bytes behind it: a proxy relaying the
    /// answer to a HEAD knows the length its origin announced, not the body. Only for HEAD: on any
    /// other request the promised bytes cannot follow, so the connection closes after the head.
    HeadOnly(u64),
}

impl Body {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } | Body::HeadOnly(len) => *len,
        }
    }

    /// True when the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response, as a handler builds it.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if the response has a body worth typing.
    pub content_type: Option<Cow<'static, str>>,
    /// Fields beyond those the connection writes itself. Names are usually `&'static`; a CGI
    /// script's own field names are owned.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The body.
    pub body: Body,
    /// Whether the connection must close after this response, whatever the client asked.
    pub close: bool,
    /// Send nothing at all and close the connection: the answer of a proxy whose origin failed
    /// after the response had begun, when a client must not mistake a truncated body for a whole one.
    pub abort: bool,
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Response { status, content_type: None, headers: Vec::new(), body: Body::Empty, close: false, abort: false }
    }

    /// No response: the connection is closed without one (see [`Response::abort`]). Logged as 502.
    pub fn aborted() -> Self {
        Response { abort: true, close: true, ..Response::new(502) }
    }

    /// A `text/plain` response with a static body: the allocation-free fast path.
    pub fn text(status: u16, body: &'static str) -> Self {
        Response::new(status).with_body("text/plain; charset=utf-8", Body::Static(body.as_bytes()))
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(status).with_body("application/json", Body::Bytes(body))
    }

    /// An error response whose body says what was wrong, in plain text.
    pub fn error(status: u16, reason: &str) -> Self {
        let body = format!("{status} {}: {reason}\n", reason_phrase(status));
        Response::new(status).with_body("text/plain; charset=utf-8", Body::Bytes(body.into_bytes()))
    }

    /// Sets the content type and body.
    pub fn with_body(mut self, content_type: impl Into<Cow<'static, str>>, body: Body) -> Self {
        self.content_type = Some(content_type.into());
        self.body = body;
        self
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Marks the response as the last on its connection.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

/// The reason phrase for a status code (RFC 9110 §15).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Whether a response with this status may carry a body (RFC 9110 §6.4.1).
pub fn status_has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// Appends the head of `res` to `out`: the status line and every field, ending in the blank line.
///
/// `date` is the `Date` value ([`crate::date::http_date_now`], which the caller may reuse for a
/// batch of responses); `keep_alive` decides the `Connection` field; `minor` is the request's HTTP
/// version, because a 1.0 client that asked to stay open must be told `keep-alive` explicitly.
pub fn encode_head(out: &mut Vec<u8>, res: &Response, date: &[u8; 29], minor: u8, keep_alive: bool) {
    // A status code has three digits (RFC 9110 §15), so they are written as one fixed-size copy
    // rather than through `push_u64`; a code outside that range (no valid response has one) is
    // clamped so that the status line stays well-formed.
    let status = res.status.clamp(100, 999);
    let digit = |place: u16| b'0' + (status / place % 10) as u8;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[digit(100), digit(10), digit(1), b' ']);
    out.extend_from_slice(reason_phrase(res.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: flash\r\nDate: ");
    out.extend_from_slice(date);
    if let Some(ct) = &res.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(ct.as_bytes());
    }
    if status_has_body(res.status) {
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_u64(out, res.body.len());
    }
    if !keep_alive {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if minor == 0 {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    for (name, value) in &res.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Appends the decimal digits of `n` without going through `fmt` (which is slow on a hot path).
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
