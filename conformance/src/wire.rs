//! A raw HTTP/1.1 connection for the corpus: bytes out exactly as written, responses in exactly
//! as received.
//!
//! Why not `flash_common::client::Client`? A client is built to hide what the corpus must see:
//! the interim `100 Continue`, the raw head, bytes that arrive after a response, and the moment
//! the server closes. So this is a thin reader over a `TcpStream` that keeps every byte, with a
//! deadline on every wait (a missing response fails the case with what did arrive; it never
//! hangs) and `#[track_caller]` everywhere so a failure points at the line of the case.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use flash_common::chunked::ChunkedDecoder;

/// How long any single expectation (a response, a close) may take. Generous, since the suite
/// runs in parallel on two cores, yet half the default 10 s timeouts: a case that waits behind
/// a connection the server should have closed fails instead of passing just in time.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// One client connection.
pub struct Wire {
    /// The socket, with `TCP_NODELAY` so that each write leaves at once.
    stream: TcpStream,
    /// Bytes received and not yet returned as part of a response.
    buf: Vec<u8>,
}

/// A response as received.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head as received, status line and fields, up to and including the blank line.
    pub head: String,
    /// Every field in order, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (decoded if it was chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The value of field `name` (case-insensitive); panics if it appears more than once.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "field {name} sent more than once in:\n{}", self.head);
        first
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True when the response announces that the connection closes after it.
    pub fn says_close(&self) -> bool {
        self.header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// Asserts the status, showing the whole response if it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; the response was:\n{}{}", self.head, self.text());
        self
    }
}

impl Wire {
    /// Connects to `addr`.
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Wire {
        let stream =
            TcpStream::connect_timeout(&addr, DEADLINE).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        stream.set_write_timeout(Some(DEADLINE)).expect("set a write timeout");
        Wire { stream, buf: Vec::new() }
    }

    /// Sends `bytes` in one write.
    #[track_caller]
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        self.stream.write_all(bytes.as_ref()).unwrap_or_else(|e| panic!("cannot send: {e}"));
        self
    }

    /// Sends `bytes` one byte per write, so that the server receives them in as many pieces as
    /// the network allows (with `TCP_NODELAY`, one segment per byte on loopback).
    #[track_caller]
    pub fn send_bytewise(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        for b in bytes.as_ref() {
            self.send([*b]);
        }
        self
    }

    /// Sends a request and reads its response.
    #[track_caller]
    pub fn roundtrip(&mut self, request: impl AsRef<[u8]>) -> Response {
        self.send(request);
        self.response()
    }

    /// Reads the next response to a request that is not HEAD (1xx responses included, as is).
    #[track_caller]
    pub fn response(&mut self) -> Response {
        self.read_response(false)
    }

    /// Reads the next response to a HEAD request: a head, and no body whatever it announces.
    #[track_caller]
    pub fn head_response(&mut self) -> Response {
        self.read_response(true)
    }

    #[track_caller]
    fn read_response(&mut self, to_head: bool) -> Response {
        let deadline = Instant::now() + DEADLINE;
        let (status, headers, head_len) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut fields);
            match res.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let headers = res
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
                        .collect::<Vec<_>>();
                    break (res.code.unwrap_or(0), headers, n);
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill(deadline) == 0 {
                        panic!("connection closed before a complete response; received:\n{}", self.received());
                    }
                }
                Err(e) => panic!("malformed response ({e}); received:\n{}", self.received()),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]).into_owned();
        self.buf.drain(..head_len);
        let mut res = Response { status, head, headers, body: Vec::new() };
        if to_head || status < 200 || status == 204 || status == 304 {
            return res;
        }
        let chunked = res.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            res.body = self.read_chunked(deadline);
        } else if let Some(len) = res.header("content-length") {
            let len: usize = len.parse().unwrap_or_else(|_| panic!("bad Content-Length in:\n{}", res.head));
            while self.buf.len() < len {
                if self.fill(deadline) == 0 {
                    panic!("connection closed after {} of {len} body bytes; head:\n{}", self.buf.len(), res.head);
                }
            }
            res.body = self.buf.drain(..len).collect();
        } else {
            while self.fill(deadline) > 0 {}
            res.body = std::mem::take(&mut self.buf);
        }
        res
    }

    #[track_caller]
    fn read_chunked(&mut self, deadline: Instant) -> Vec<u8> {
        let mut decoder = ChunkedDecoder::default();
        let (mut read, mut write) = (0, 0);
        loop {
            match decoder.decode(&mut self.buf, &mut read, &mut write, u64::MAX) {
                Ok(true) => {
                    let body = self.buf[..write].to_vec();
                    self.buf.drain(..read);
                    return body;
                }
                Ok(false) => {
                    if self.fill(deadline) == 0 {
                        panic!("connection closed inside a chunked body");
                    }
                }
                Err(e) => panic!("malformed chunked body: {}", e.reason),
            }
        }
    }

    /// Closes our sending side (a half-close: `shutdown(SHUT_WR)`), as `nc -N` does after its
    /// input: the server sees the end of the stream and may still answer.
    pub fn finish_sending(&mut self) -> &mut Self {
        self.stream.shutdown(std::net::Shutdown::Write).expect("shutdown(SHUT_WR)");
        self
    }

    /// Asserts that the server closes the connection without sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        while self.fill(deadline) > 0 {}
        assert!(self.buf.is_empty(), "bytes after the last response, where a close was expected:\n{}", self.received());
    }

    /// Reads more bytes before `deadline`; 0 means the server closed (a reset counts as a close:
    /// it is how a server that closes with unread input ends the connection).
    #[track_caller]
    fn fill(&mut self, deadline: Instant) -> usize {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("nothing from the server within {DEADLINE:?}; received so far:\n{}", self.received());
            }
            self.stream.set_read_timeout(Some(left)).expect("set a read timeout");
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => return 0,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read failed: {e}; received so far:\n{}", self.received()),
            }
        }
    }

    /// What is buffered, for failure messages.
    fn received(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}
