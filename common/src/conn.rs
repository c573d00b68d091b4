//! The sans-I/O connection: bytes in, responses and "what I want next" out.
//!
//! Every Flash server drives a [`Conn`] per client and none of them parses or formats HTTP. The
//! server's only jobs are moving bytes between the socket and the `Conn` and deciding who runs
//! what, when; that is the lesson each server teaches, and this file is what they all share. The
//! contract, whatever the I/O model:
//!
//! ```text
//!   loop {
//!       conn.process(handler);           // answer every complete request buffered so far
//!       if let Some(p) = conn.take_pending() { ... wait for p, then conn.complete(response) }
//!       write conn.output(), then conn.wrote(n)
//!       if conn.is_done() { close }
//!       if conn.wants_read() { read into conn.read_buf(), then conn.received(n) }  // 0 = EOF
//!       at conn.deadline(): conn.timed_out();  on server shutdown: conn.shutdown()
//!   }
//! ```
//!
//! The buffer contract, which a completion-based server (io_uring, where the kernel holds a buffer
//! while an operation is in flight) depends on:
//!
//! - The slice [`Conn::read_buf`] returns stays valid, and is not read by the `Conn`, until the
//!   matching [`Conn::received`]; no other call may come between them. Its length is the most
//!   that may be read; it is never empty.
//! - The slice [`Conn::output`] returns stays valid and unchanged until the matching
//!   [`Conn::wrote`], which may report any prefix of it (a short write). No other call may come
//!   between them either: `process`, `complete`, `timed_out` and `shutdown` may append to the
//!   output, and appending may move it.
//! - A server that needs to keep bytes across those calls (a send still in flight while the
//!   next request is processed) copies them first.
//!
//! Pipelining falls out of the shape: `process` answers *all* complete requests in the buffer and
//! appends their responses to one output buffer, so a server that writes `output()` once per
//! wake-up sends a whole batch in one syscall. Requests are answered strictly in order, one at a
//! time; a handler that defers ([`Reply::Later`]) holds up the requests behind it, as HTTP/1.1
//! requires (responses must come back in request order).

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::chunked::ChunkedDecoder;
use crate::parse::{parse_head, Framing, Head, HttpError};
use crate::reply::{Pending, Reply};
use crate::request::Request;
use crate::response::{encode_head, status_has_body, Body, Response};
use crate::site::Site;

/// The buffer size a connection starts with, on its first read (not before: an idle connection
/// that never sent anything costs no buffer at all).
const INITIAL_BUF: usize = 4096;
/// Read only when at least this much room is free; otherwise compact or grow first.
const MIN_READ: usize = 1024;
/// Stop answering pipelined requests once this much output waits for the client to read it, so
/// that a client that sends without reading cannot make us buffer without end.
const OUT_HIGH_WATER: usize = 64 * 1024;
/// Buffers that grew past this for one large request are given back once the connection is idle.
const SHRINK_ABOVE: usize = 64 * 1024;
/// How much of a file body is read per refill of the output buffer.
const FILE_CHUNK: usize = 64 * 1024;

/// Where the connection is in receiving the current request.
#[derive(Debug)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// The head is parsed; `len` body bytes follow it.
    Body {
        /// The body's length from `Content-Length`.
        len: u64,
    },
    /// The head is parsed; a chunked body is being decoded in place.
    Chunked {
        /// Next encoded byte to decode, relative to the request's start.
        read: usize,
        /// Where the next decoded byte goes, relative to the request's start.
        write: usize,
        /// The decoder's state between reads.
        decoder: ChunkedDecoder,
    },
}

/// One client connection's HTTP state. See the module documentation for how to drive it.
pub struct Conn {
    /// Limits, timeouts and the access log.
    site: Site,
    /// The client's address.
    peer: SocketAddr,
    /// Received bytes; `buf[start..end]` is not yet consumed, `buf[end..]` is room for reads.
    buf: Vec<u8>,
    /// First byte of the current request.
    start: usize,
    /// One past the last received byte.
    end: usize,
    /// Progress through the current request.
    phase: Phase,
    /// The current request's parsed head (its header list is reused between requests).
    head: Head,
    /// Encoded responses waiting to be written; `out[out_pos..]` is still unwritten.
    out: Vec<u8>,
    /// How much of `out` has been written.
    out_pos: usize,
    /// A file body still being streamed, and how many bytes of it remain.
    file: Option<(File, u64)>,
    /// A deferred response the server has not yet taken to wait on.
    pending: Option<Pending>,
    /// While a deferred response is outstanding: how many bytes the request occupies, so it can
    /// be consumed (and logged) when the response arrives.
    waiting: Option<usize>,
    /// Close once the output is flushed; no more requests are read.
    closing: bool,
    /// The client closed its sending side; answer what is complete, then close.
    eof: bool,
    /// The server is shutting down: finish what has started, then close.
    stopping: bool,
    /// When the first byte of the current request arrived (for the head timeout).
    request_started: Instant,
    /// When bytes last moved in either direction (for the idle and stall timeouts).
    last_active: Instant,
    /// Scratch space for the access log line, reused.
    log_line: Vec<u8>,
    /// The `Date` value for the responses encoded by this call of `process` (or `complete`,
    /// `timed_out`): looked up once per batch, not once per response, since each lookup reads the
    /// clock and 16 pipelined responses need only one.
    date: Option<[u8; 29]>,
}

impl Conn {
    /// A new connection from `peer`, served under `site`'s limits and log.
    pub fn new(site: &Site, peer: SocketAddr) -> Conn {
        let now = Instant::now();
        Conn {
            site: site.clone(),
            peer,
            buf: Vec::new(),
            start: 0,
            end: 0,
            phase: Phase::Head,
            head: Head::default(),
            out: Vec::new(),
            out_pos: 0,
            file: None,
            pending: None,
            waiting: None,
            closing: false,
            eof: false,
            stopping: false,
            request_started: now,
            last_active: now,
            log_line: Vec::new(),
            date: None,
        }
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Room to read into. Call [`Conn::received`] with how many bytes were put there.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end && self.waiting.is_none() {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < MIN_READ {
            self.reclaim();
        }
        &mut self.buf[self.end..]
    }

    /// Makes at least [`MIN_READ`] bytes of room: first by moving the unconsumed bytes to the
    /// front (and closing the gap a chunked body leaves), then by growing up to the largest
    /// request the limits allow.
    fn reclaim(&mut self) {
        if let Phase::Chunked { read, write, .. } = &mut self.phase {
            if *read > *write {
                self.buf.copy_within(self.start + *read..self.end, self.start + *write);
                self.end -= *read - *write;
                *read = *write;
            }
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < MIN_READ {
            let limits = self.site.limits();
            let cap = limits.max_head + limits.max_body as usize + 2 * MIN_READ;
            let want = (self.buf.len() * 2).max(INITIAL_BUF).min(cap.max(self.end + MIN_READ));
            self.buf.resize(want, 0);
        }
    }

    /// Records that `n` bytes were read into [`Conn::read_buf`]; `n == 0` means the client closed.
    pub fn received(&mut self, n: usize) {
        let now = Instant::now();
        if n == 0 {
            self.eof = true;
            return;
        }
        if self.start == self.end && matches!(self.phase, Phase::Head) {
            self.request_started = now;
        }
        self.end += n;
        self.last_active = now;
    }

    /// Answers every complete request in the buffer, in order, appending the responses to the
    /// output. Stops early at a deferred response, a closing response, or too much unread output.
    pub fn process<F: FnMut(&Request<'_>) -> Reply>(&mut self, mut handler: F) {
        self.date = None;
        loop {
            if self.closing
                || self.waiting.is_some()
                || self.file.is_some()
                || self.out.len() - self.out_pos >= OUT_HIGH_WATER
            {
                return;
            }
            if !self.step(&mut handler) {
                break;
            }
        }
        // Nothing more can be completed; if the client has stopped sending, what is left of a
        // request never will be.
        if self.eof {
            self.closing = true;
        }
    }

    /// Makes one step of progress on the current request; false when more bytes are needed.
    fn step<F: FnMut(&Request<'_>) -> Reply>(&mut self, handler: &mut F) -> bool {
        let data = &self.buf[self.start..self.end];
        match &mut self.phase {
            Phase::Head => {
                if data.is_empty() {
                    return false;
                }
                let len = match parse_head(data, self.site.limits(), &mut self.head) {
                    Ok(Some(len)) => len,
                    Ok(None) => return false,
                    Err(e) => {
                        self.fail(e, false);
                        return false;
                    }
                };
                match self.head.framing {
                    Framing::None => {
                        self.dispatch(len, len, len, handler);
                        return true;
                    }
                    Framing::Length(n) => self.phase = Phase::Body { len: n },
                    Framing::Chunked => {
                        self.phase = Phase::Chunked { read: len, write: len, decoder: ChunkedDecoder::default() }
                    }
                }
                // The client waits for our go-ahead before sending the body. It is sent even if
                // body bytes arrived with the head (RFC 9110 §10.1.1 allows either), so that what
                // we answer never depends on how the network split the request.
                if self.head.expect_continue {
                    self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                true
            }
            Phase::Body { len } => {
                let need = self.head.len + *len as usize;
                if data.len() < need {
                    return false;
                }
                self.dispatch(self.head.len, need, need, handler);
                true
            }
            Phase::Chunked { read, write, decoder } => {
                let max_body = self.site.limits().max_body;
                match decoder.decode(&mut self.buf[self.start..self.end], read, write, max_body) {
                    Ok(true) => {
                        let (body_end, consumed) = (*write, *read);
                        self.dispatch(self.head.len, body_end, consumed, handler);
                        true
                    }
                    Ok(false) => false,
                    Err(e) => {
                        self.fail(e, true);
                        false
                    }
                }
            }
        }
    }

    /// Calls the handler on the complete request `buf[start..start + consumed]`, whose body is
    /// `body_start..body_end` (relative), and answers or starts waiting.
    fn dispatch<F: FnMut(&Request<'_>) -> Reply>(
        &mut self,
        body_start: usize,
        body_end: usize,
        consumed: usize,
        handler: &mut F,
    ) {
        self.phase = Phase::Head;
        let req_bytes = &self.buf[self.start..self.end];
        let req = Request::new(req_bytes, &self.head, &req_bytes[body_start..body_end], self.peer);
        // A bug in one handler must cost one 500, not the server (or, for a blocking server, the
        // thread that would go on serving this client).
        let reply = catch_unwind(AssertUnwindSafe(|| handler(&req)))
            .unwrap_or_else(|_| Reply::Now(Response::error(500, "the handler panicked")));
        match reply {
            Reply::Now(res) => self.finish(res, consumed),
            Reply::Later(p) => {
                self.pending = Some(p);
                self.waiting = Some(consumed);
            }
        }
    }

    /// The deferred response a handler promised; the server must wait for it (blocking, or by
    /// callback) and then call [`Conn::complete`].
    pub fn take_pending(&mut self) -> Option<Pending> {
        self.pending.take()
    }

    /// Delivers the deferred response for the request being waited on.
    pub fn complete(&mut self, res: Response) {
        if let Some(consumed) = self.waiting.take() {
            self.date = None;
            self.finish(res, consumed);
        }
    }

    /// Encodes the response to the current request and consumes the request's bytes.
    fn finish(&mut self, res: Response, consumed: usize) {
        let is_last_buffered = self.start + consumed == self.end;
        let keep_alive = self.head.keep_alive && !res.close && !(self.stopping && is_last_buffered);
        let req = &self.buf[self.start..self.end];
        let is_head = self.head.method.get(req) == b"HEAD";
        let date = self.date();
        encode_head(&mut self.out, &res, &date, self.head.minor, keep_alive);
        if self.site.logging() {
            self.log(true, res.status, res.body.len());
        }
        if !is_head && status_has_body(res.status) {
            match res.body {
                Body::Empty => {}
                Body::Static(b) => self.out.extend_from_slice(b),
                Body::Bytes(b) => self.out.extend_from_slice(&b),
                Body::File { file, len } => self.file = Some((file, len)),
            }
        }
        self.closing |= !keep_alive;
        self.start += consumed;
        if self.start == self.end && self.buf.len() > SHRINK_ABOVE {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// The `Date` value for this batch of responses.
    fn date(&mut self) -> [u8; 29] {
        *self.date.get_or_insert_with(crate::date::http_date_now)
    }

    /// Answers a request the parser refused, then closes: after a framing error the next byte
    /// cannot be trusted to start a request.
    fn fail(&mut self, e: HttpError, head_parsed: bool) {
        let res = Response::error(e.status, e.reason);
        let date = self.date();
        encode_head(&mut self.out, &res, &date, 1, false);
        if self.site.logging() {
            self.log(head_parsed, res.status, res.body.len());
        }
        if let Body::Bytes(b) = &res.body {
            self.out.extend_from_slice(b);
        }
        self.closing = true;
    }

    /// Writes one Common Log Format line: `host ident user [date] "request" status bytes`.
    /// `head_parsed` says whether the current head is known (a request refused by the parser
    /// is logged as `"-"`).
    fn log(&mut self, head_parsed: bool, status: u16, bytes: u64) {
        let req = &self.buf[self.start..self.end];
        let request = head_parsed.then(|| (self.head.method.get(req), self.head.target.get(req), self.head.minor));
        let line = &mut self.log_line;
        line.clear();
        line.extend_from_slice(self.peer.ip().to_string().as_bytes());
        line.extend_from_slice(b" - - [");
        line.extend_from_slice(crate::date::clf_date(crate::date::unix_now()).as_bytes());
        line.extend_from_slice(b"] \"");
        match request {
            Some((method, target, minor)) => {
                line.extend_from_slice(method);
                line.push(b' ');
                line.extend(target.iter().map(|&c| if c == b'"' { b'\'' } else { c }));
                line.extend_from_slice(if minor == 0 { b" HTTP/1.0" } else { b" HTTP/1.1" });
            }
            None => line.push(b'-'),
        }
        line.extend_from_slice(b"\" ");
        crate::response::push_u64(line, u64::from(status));
        line.push(b' ');
        if bytes == 0 {
            line.push(b'-');
        } else {
            crate::response::push_u64(line, bytes);
        }
        line.push(b'\n');
        self.site.write_log(line);
    }

    /// The bytes to write now. Empty when there is nothing to write; a file body is read in
    /// chunks as the previous chunk is written.
    pub fn output(&mut self) -> &[u8] {
        if self.out_pos == self.out.len() {
            self.reset_output();
            self.refill_from_file();
        }
        &self.out[self.out_pos..]
    }

    /// Starts the (fully written) output buffer over, giving back what one large response grew.
    fn reset_output(&mut self) {
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > SHRINK_ABOVE {
            self.out = Vec::new();
        }
    }

    /// Reads the next chunk of a file body into the (empty) output buffer.
    fn refill_from_file(&mut self) {
        let Some((file, left)) = &mut self.file else { return };
        let n = (*left).min(FILE_CHUNK as u64) as usize;
        self.out.resize(n, 0);
        match file.read(&mut self.out[..n]) {
            Ok(got) if got > 0 => {
                self.out.truncate(got);
                *left -= got as u64;
                if *left == 0 {
                    self.file = None;
                }
            }
            // The file shrank or failed under us: the promised Content-Length can no longer be
            // met, so the only honest thing left is to close.
            _ => {
                self.out.clear();
                self.file = None;
                self.closing = true;
            }
        }
    }

    /// Records that `n` bytes of [`Conn::output`] were written.
    pub fn wrote(&mut self, n: usize) {
        self.out_pos += n;
        if n > 0 {
            self.last_active = Instant::now();
        }
        // Start over as soon as everything is written, not on the next `output()`: a server that
        // stops asking once `wants_write()` is false (04) would otherwise append every response
        // of a keep-alive connection to the same buffer, which then grows without end.
        if self.out_pos == self.out.len() {
            self.reset_output();
        }
    }

    /// True when there is output waiting to be written.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len() || self.file.is_some()
    }

    /// True when the connection can use more input now.
    pub fn wants_read(&self) -> bool {
        !self.eof
            && !self.closing
            && self.waiting.is_none()
            && self.file.is_none()
            && self.out.len() - self.out_pos < OUT_HIGH_WATER
    }

    /// True when nothing is left to do: close the socket.
    pub fn is_done(&self) -> bool {
        self.closing && !self.wants_write() && self.waiting.is_none()
    }

    /// True between requests: nothing received of the next one, nothing owed to the client.
    pub fn is_idle(&self) -> bool {
        self.start == self.end && matches!(self.phase, Phase::Head) && self.waiting.is_none() && !self.wants_write()
    }

    /// When the connection must be given up on, if nothing happens first.
    ///
    /// Between requests it is the idle timeout; while a head is arriving, the head timeout
    /// counted from its first byte (so a client trickling a byte at a time cannot hold the
    /// connection forever); while a body arrives or output waits, the idle timeout since the
    /// last progress. A handler that answers later sets no deadline: it owns the time.
    pub fn deadline(&self) -> Option<Instant> {
        let cfg = self.site.config();
        if self.waiting.is_some() {
            None
        } else if self.start != self.end && matches!(self.phase, Phase::Head) && !self.wants_write() {
            Some(self.request_started + cfg.header_timeout)
        } else {
            Some(self.last_active + cfg.idle_timeout)
        }
    }

    /// The deadline passed: answer 408 to a half-received request, else just close.
    pub fn timed_out(&mut self) {
        if self.waiting.is_some() {
            return;
        }
        if !self.wants_write() && !self.closing && (self.start != self.end || !matches!(self.phase, Phase::Head)) {
            self.date = None;
            self.fail(HttpError::new(408, "the request was not received in time"), false);
        } else {
            // Idle, or the client stopped reading: there is nobody to answer.
            self.out.clear();
            self.out_pos = 0;
            self.file = None;
            self.closing = true;
        }
    }

    /// The server is stopping: an idle connection closes now, a busy one after its response.
    pub fn shutdown(&mut self) {
        self.stopping = true;
        if self.is_idle() {
            self.closing = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::Hello;
    use crate::config::Config;

    /// Feeds `batches` batches of 16 pipelined requests, each in one read, and after each batch
    /// writes the output the way 04 does: only while `wants_write()`, at most `write_max` bytes per
    /// write. Returns the largest capacities the input and output buffers reached.
    fn pipelined_batches(batches: usize, write_max: usize) -> (usize, usize) {
        let site = Site::new(Config::for_tests(), Arc::new(Hello)).unwrap();
        let mut conn = Conn::new(&site, "127.0.0.1:40000".parse().unwrap());
        let batch = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".repeat(16);
        let (mut max_buf, mut max_out) = (0, 0);
        for _ in 0..batches {
            let room = conn.read_buf();
            room[..batch.len()].copy_from_slice(&batch);
            conn.received(batch.len());
            conn.process(|req| site.call(req));
            let mut written = Vec::new();
            while conn.wants_write() {
                let out = conn.output();
                let n = out.len().min(write_max);
                written.extend_from_slice(&out[..n]);
                conn.wrote(n);
            }
            let answered = written.windows(13).filter(|w| w == b"Hello, world!").count();
            assert_eq!(answered, 16, "every pipelined request is answered in its batch");
            max_buf = max_buf.max(conn.buf.capacity());
            max_out = max_out.max(conn.out.capacity());
        }
        (max_buf, max_out)
    }

    /// Memory per connection must not depend on how many requests it has served: the output
    /// buffer once grew by every response written through it (about 250 MiB for 64 pipelining
    /// connections in a few seconds), because it only started over on a call 04 never made.
    #[test]
    fn pipelined_batches_keep_buffers_bounded() {
        for write_max in [usize::MAX, 1000] {
            let (buf, out) = pipelined_batches(2000, write_max);
            assert!(buf <= INITIAL_BUF, "input buffer grew to {buf} bytes (write_max {write_max})");
            assert!(out <= 8 * 1024, "output buffer grew to {out} bytes (write_max {write_max})");
        }
    }
}
