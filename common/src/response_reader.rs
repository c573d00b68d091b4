//! The response side of [`crate::parse`]: reading an HTTP/1.1 response off the wire, sans-I/O.
//!
//! A server only ever parses requests; a client (tests, node-to-node calls) and a proxy (the
//! cluster, which talks to its copies) parse responses. Both go through this one reader, so that
//! there is one copy of RFC 9112 §6.3's rules for where a response body ends: no body for a
//! response to HEAD, for 1xx, 204 and 304; chunked when `Transfer-Encoding` ends in `chunked`;
//! otherwise `Content-Length`; otherwise the body runs until the server closes.
//!
//! Like the request parser it does no I/O and keeps no bytes: the caller owns the buffer, appends
//! what it reads, and calls [`ResponseReader::advance`] again; the reader keeps only offsets into
//! it. A chunked body is decoded in place with the request side's [`ChunkedDecoder`], so a
//! complete response is the head followed by its decoded body in one slice of the caller's
//! buffer. Interim responses (`100 Continue`, `103 Early Hints`) are stepped over.

use std::ops::Range;

use crate::chunked::ChunkedDecoder;
use crate::parse::{digits, trim, HttpError, Span};
use crate::response::status_has_body;

/// How many header fields a response may carry.
const MAX_FIELDS: usize = 128;

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: a response to HEAD, or a status that never has one.
    #[default]
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head, as spans into the buffer it came from (relative to its first byte).
#[derive(Clone, Debug, Default)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Every header field as (name, value) spans, in order.
    pub headers: Vec<(Span, Span)>,
    /// How the body is delimited.
    pub framing: ResponseFraming,
    /// The `Content-Length` announced, if any (for a response to HEAD, the length of the body a
    /// GET would have had).
    pub content_length: Option<u64>,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    /// Length of the head in bytes, including the blank line that ends it.
    pub len: usize,
}

impl ResponseHead {
    /// Every header field in order, as (name, trimmed value), read from `head_bytes` (the buffer
    /// from the head's first byte).
    pub fn fields<'a>(&'a self, head_bytes: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.headers.iter().map(move |(n, v)| (n.get(head_bytes), trim(v.get(head_bytes))))
    }
}

/// Parses the response head at the start of `buf`, for a request whose method was HEAD or not.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some(n))` that the head is complete and `n` bytes
/// long. Errors carry status 502, the answer a proxy owes its client for a malformed response.
pub fn parse_response_head(
    buf: &[u8],
    max_head: usize,
    to_head: bool,
    head: &mut ResponseHead,
) -> Result<Option<usize>, HttpError> {
    let window = &buf[..buf.len().min(max_head.saturating_add(1))];
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut res = httparse::Response::new(&mut fields);
    let len = match res.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() > max_head => return Err(bad("response head too large")),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(bad("too many header fields in the response")),
        Err(_) => return Err(bad("malformed response head")),
    };
    head.status = res.code.unwrap_or(0);
    head.minor = res.version.unwrap_or(1);
    head.len = len;
    head.headers.clear();
    head.headers.extend(res.headers.iter().map(|h| (Span::of(window, h.name.as_bytes()), Span::of(window, h.value))));

    let (mut length, mut chunked, mut coded, mut close, mut keep_alive) = (None, false, false, false, false);
    for h in res.headers.iter() {
        let value = trim(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            for item in value.split(|&c| c == b',').map(trim) {
                let n = digits(item).ok_or_else(|| bad("invalid Content-Length in the response"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad("conflicting Content-Length values in the response"));
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(|&c| c == b',').map(trim).filter(|c| !c.is_empty()) {
                coded = true;
                chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&c| c == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    head.content_length = length;
    head.keep_alive = if head.minor == 1 { !close } else { keep_alive && !close };
    head.framing = if to_head || !status_has_body(head.status) {
        ResponseFraming::None
    } else if coded {
        // A body whose last coding is not chunked can only end at the close; and with both
        // fields, Transfer-Encoding wins but the connection cannot be trusted afterwards (§6.3).
        head.keep_alive &= chunked && length.is_none();
        if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        }
    } else if let Some(n) = length {
        ResponseFraming::Length(n)
    } else {
        head.keep_alive = false;
        ResponseFraming::UntilClose
    };
    Ok(Some(len))
}

/// A 502 for what the response got wrong.
fn bad(reason: &'static str) -> HttpError {
    HttpError::new(502, reason)
}

/// Where the reader is in the current response.
#[derive(Clone, Debug)]
enum State {
    /// Waiting for (the rest of) a head; interim responses before it end at this offset.
    Head,
    /// The head is parsed; the body is being received.
    Body,
    /// The whole response is here.
    Done,
}

/// A complete response, located in the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complete {
    /// Where the final (non-interim) head starts; the head's spans are relative to it.
    pub head_start: usize,
    /// The decoded body.
    pub body: Range<usize>,
    /// How many bytes of the buffer the response took, interim responses included; bytes past it
    /// were sent after the response.
    pub consumed: usize,
}

/// Reads one response, incrementally, over a buffer the caller owns and appends to.
#[derive(Clone, Debug)]
pub struct ResponseReader {
    /// Progress through the response.
    state: State,
    /// The final response's head, once parsed.
    head: ResponseHead,
    /// Where the final head starts (after any interim responses).
    head_start: usize,
    /// The request was HEAD, so the response has no body whatever it announces.
    to_head: bool,
    /// The largest head accepted.
    max_head: usize,
    /// The largest body accepted.
    max_body: u64,
    /// Chunked decoding state, and its read and write positions in the buffer.
    chunked: (ChunkedDecoder, usize, usize),
}

impl ResponseReader {
    /// A reader for the response to a request (`to_head`: the request was HEAD), refusing heads
    /// over `max_head` bytes and bodies over `max_body`.
    pub fn new(to_head: bool, max_head: usize, max_body: u64) -> ResponseReader {
        ResponseReader {
            state: State::Head,
            head: ResponseHead::default(),
            head_start: 0,
            to_head,
            max_head,
            max_body,
            chunked: (ChunkedDecoder::default(), 0, 0),
        }
    }

    /// Starts over for the next response on the same connection (its header list is reused).
    pub fn reset(&mut self, to_head: bool) {
        self.state = State::Head;
        self.head_start = 0;
        self.to_head = to_head;
        self.chunked = (ChunkedDecoder::default(), 0, 0);
    }

    /// True once the final response's status line and fields have arrived: from then on the
    /// response is this one, whatever happens to its body.
    pub fn has_head(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    /// The final response's head (meaningful once [`ResponseReader::has_head`]).
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// Makes what progress `buf` allows. `buf` holds every byte received since the response
    /// began (earlier calls' bytes unchanged, except that a chunked body is decoded in place);
    /// `eof` says the server has closed, which completes a body that runs until the close and is
    /// an error anywhere else.
    pub fn advance(&mut self, buf: &mut [u8], eof: bool) -> Result<Option<Complete>, HttpError> {
        loop {
            match self.state {
                State::Done => return Ok(Some(self.complete(buf.len()))),
                State::Head => {
                    let Some(len) =
                        parse_response_head(&buf[self.head_start..], self.max_head, self.to_head, &mut self.head)?
                    else {
                        return if eof {
                            Err(bad("the connection closed before a complete response head"))
                        } else {
                            Ok(None)
                        };
                    };
                    if (100..200).contains(&self.head.status) {
                        if self.head.status == 101 {
                            return Err(bad("the response switched protocols, which is not relayed"));
                        }
                        self.head_start += len;
                        continue;
                    }
                    let body_start = self.head_start + len;
                    self.chunked = (ChunkedDecoder::default(), body_start, body_start);
                    if let ResponseFraming::Length(n) = self.head.framing {
                        if n > self.max_body {
                            return Err(bad("response body larger than the limit"));
                        }
                    }
                    self.state = State::Body;
                }
                State::Body => {
                    let body_start = self.head_start + self.head.len;
                    let have = buf.len() - body_start;
                    let done = match self.head.framing {
                        ResponseFraming::None => true,
                        ResponseFraming::Length(n) => have as u64 >= n,
                        ResponseFraming::UntilClose if have as u64 > self.max_body => {
                            return Err(bad("response body larger than the limit"));
                        }
                        ResponseFraming::UntilClose => eof,
                        ResponseFraming::Chunked => {
                            let (decoder, read, write) = &mut self.chunked;
                            decoder.decode(buf, read, write, self.max_body).map_err(|e| {
                                HttpError::new(
                                    502,
                                    if e.status == 413 { "response body larger than the limit" } else { e.reason },
                                )
                            })?
                        }
                    };
                    if !done {
                        return if eof {
                            Err(bad("the connection closed in the middle of the response body"))
                        } else {
                            Ok(None)
                        };
                    }
                    self.state = State::Done;
                    return Ok(Some(self.complete(buf.len())));
                }
            }
        }
    }

    /// Where the complete response lies in a buffer of `len` bytes.
    fn complete(&self, len: usize) -> Complete {
        let body_start = self.head_start + self.head.len;
        let (body, consumed) = match self.head.framing {
            ResponseFraming::None => (body_start..body_start, body_start),
            ResponseFraming::Length(n) => (body_start..body_start + n as usize, body_start + n as usize),
            ResponseFraming::UntilClose => (body_start..len, len),
            ResponseFraming::Chunked => (body_start..self.chunked.2, self.chunked.1),
        };
        Complete { head_start: self.head_start, body, consumed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `raw` to a reader split at `split`, as two reads; returns the body and what was consumed.
    fn read_split(raw: &[u8], split: usize, to_head: bool) -> Result<(u16, Vec<u8>, usize, bool), HttpError> {
        let mut reader = ResponseReader::new(to_head, 16 * 1024, 1 << 20);
        let mut buf = raw[..split].to_vec();
        let done = match reader.advance(&mut buf, false)? {
            Some(done) => done,
            None => {
                buf.extend_from_slice(&raw[split..]);
                match reader.advance(&mut buf, false)? {
                    Some(done) => done,
                    None => reader.advance(&mut buf, true)?.expect("complete at the close"),
                }
            }
        };
        Ok((reader.head().status, buf[done.body.clone()].to_vec(), done.consumed, reader.head().keep_alive))
    }

    #[test]
    fn every_framing_at_every_split() {
        let cases: [(&[u8], bool, &[u8], bool); 6] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", false, b"hello", true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\nNEXT",
                false,
                b"hello",
                true,
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\nNEXT",
                false,
                b"",
                true,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nNEXT", true, b"", true),
            (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nokNEXT", false, b"ok", true),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nokNEXT", false, b"ok", false),
        ];
        for (raw, to_head, body, keep_alive) in cases {
            for split in 0..raw.len() {
                let (_, got, consumed, alive) = read_split(raw, split, to_head).unwrap();
                assert_eq!(got, body, "split {split} of {:?}", String::from_utf8_lossy(raw));
                assert_eq!(&raw[consumed..], b"NEXT", "split {split}");
                assert_eq!(alive, keep_alive);
            }
        }
    }

    #[test]
    fn until_close_ends_at_the_close_and_is_not_kept() {
        let raw = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        let (status, body, consumed, keep_alive) = read_split(raw, 10, false).unwrap();
        assert_eq!((status, &body[..], consumed, keep_alive), (200, &b"all of it"[..], raw.len(), false));
        // Transfer-Encoding wins over Content-Length, and the connection is not reused.
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        let (_, body, _, keep_alive) = read_split(raw, raw.len(), false).unwrap();
        assert_eq!((&body[..], keep_alive), (&b"ok"[..], false));
    }

    #[test]
    fn errors_are_502_with_a_reason() {
        let truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        let mut reader = ResponseReader::new(false, 1024, 1024);
        let mut buf = truncated.to_vec();
        assert_eq!(reader.advance(&mut buf, false), Ok(None));
        assert!(reader.has_head(), "the status line arrived");
        assert_eq!(reader.advance(&mut buf, true).unwrap_err().status, 502);
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let mut reader = ResponseReader::new(false, 1024, 1024);
            let err = reader.advance(&mut raw.to_vec(), false).unwrap_err();
            assert_eq!(err.status, 502, "{:?}", String::from_utf8_lossy(raw));
            assert!(!err.reason.is_empty());
        }
        let mut reader = ResponseReader::new(false, 1024, 1024);
        assert_eq!(reader.advance(&mut b"HTTP/1.1 2".to_vec(), true).unwrap_err().status, 502);
    }
}
