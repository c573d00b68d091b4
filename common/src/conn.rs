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
//!       while let Some((id, p)) = conn.take_pending() { ... wait for p, then conn.complete(id, response) }
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
//! wake-up sends a whole batch in one syscall. Responses go out strictly in request order, as
//! HTTP/1.1 requires, but requests need not wait for each other: a handler that defers
//! ([`Reply::Later`]) does not stop `process` from handing the requests behind it to the
//! application, up to [`MAX_OWED`] at a time, so a server with a thread pool (05) runs a whole
//! pipelined batch at once. Each answer that is not yet writable (deferred, or ready but behind
//! a deferred one) waits in a queue with what its encoding and log line need from its request,
//! and is written as soon as everything before it is. The one exception to running ahead: a
//! request that expects `100 Continue` waits until the answers before it are written, since the
//! interim response must come after them too.
//!
//! A response that closes the connection (an nph CGI script's) discards the answers queued
//! behind it; their handlers have run. Clients that pipeline only idempotent requests, as RFC
//! 9112 §9.3.2 asks, lose nothing by that.

use std::collections::VecDeque;
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
/// The most answers a connection may owe at once (deferred, or ready behind a deferred one):
/// enough for a client pipelining 16 or 32 requests, few enough that one client cannot make
/// the application run without bound.
pub const MAX_OWED: usize = 32;

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

/// An answer the connection owes but cannot write yet, because it has not arrived or an earlier
/// one has not.
struct Owed {
    /// Matches the id [`Conn::take_pending`] handed out with the deferred answer.
    id: u64,
    /// The response, once the handler has given it.
    response: Option<Response>,
    /// The client allows the connection to stay open after it.
    keep_alive: bool,
    /// The request's minor HTTP version, for the status line.
    minor: u8,
    /// The request was a HEAD: no body is written.
    is_head: bool,
    /// `METHOD target HTTP/1.x` for the access log, saved because the request's bytes are gone;
    /// `None` when nothing is logged, or for a request the parser refused.
    logged: Option<Vec<u8>>,
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
    /// Deferred responses the server has not yet taken to wait on, with their ids.
    pending: VecDeque<(u64, Pending)>,
    /// Answers owed, in request order: written from the front as they become ready.
    owed: VecDeque<Owed>,
    /// The id the next deferred answer gets.
    next_id: u64,
    /// A request after which the connection closes has been handed to the application: read
    /// and dispatch nothing more.
    last: bool,
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
    /// Scratch space for a log line's request part, reused.
    log_request: Vec<u8>,
    /// The `Date` value for the responses encoded by this call of `process` (or `complete_all`,
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
            pending: VecDeque::new(),
            owed: VecDeque::new(),
            next_id: 0,
            last: false,
            closing: false,
            eof: false,
            stopping: false,
            request_started: now,
            last_active: now,
            log_line: Vec::new(),
            log_request: Vec::new(),
            date: None,
        }
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Room to read into. Call [`Conn::received`] with how many bytes were put there.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end {
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
    /// output (or owing them, behind a deferred one). Stops early at a closing response, a file
    /// body, too much unread output, or too many answers owed.
    pub fn process<F: FnMut(&Request<'_>) -> Reply>(&mut self, mut handler: F) {
        self.date = None;
        self.write_owed();
        loop {
            if self.closing
                || self.last
                || self.owed.len() >= MAX_OWED
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
        // request never will be. (With answers still owed, the server calls `process` again once
        // they arrive, and the connection closes then.)
        if self.eof && self.owed.is_empty() {
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
                if self.head.expect_continue && !self.owed.is_empty() {
                    // `100 Continue` must follow the answers before it: wait until they are
                    // written, then parse this head again.
                    return false;
                }
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
            // The fast path: nothing owed before it, so it is written at once, straight from the
            // request's bytes, with nothing saved.
            Reply::Now(res) if self.owed.is_empty() => self.finish(res, consumed),
            Reply::Now(res) => self.owe(Some(res), consumed),
            Reply::Later(p) => {
                self.pending.push_back((self.next_id, p));
                self.owe(None, consumed);
            }
        }
    }

    /// Queues the answer to the current request (`None` until it arrives) behind those owed
    /// before it, saving what writing it needs, and consumes the request's bytes.
    fn owe(&mut self, response: Option<Response>, consumed: usize) {
        let logged = self.site.logging().then(|| {
            let mut line = Vec::new();
            self.push_request(&mut line);
            line
        });
        let req = &self.buf[self.start..self.end];
        self.owed.push_back(Owed {
            id: self.next_id,
            response,
            keep_alive: self.head.keep_alive,
            minor: self.head.minor,
            is_head: self.head.method.get(req) == b"HEAD",
            logged,
        });
        self.next_id += 1;
        self.last |= !self.head.keep_alive;
        self.consume(consumed);
    }

    /// The deferred responses a handler promised, one at a time, each with the id to complete it
    /// by: the server must wait for each (blocking, or by callback) and then call
    /// [`Conn::complete`] with its id.
    pub fn take_pending(&mut self) -> Option<(u64, Pending)> {
        self.pending.pop_front()
    }

    /// Delivers the deferred response `id` stood for, and writes every answer that is now next.
    /// An id the connection no longer owes (it closed) is ignored.
    pub fn complete(&mut self, id: u64, res: Response) {
        self.complete_all([(id, res)]);
    }

    /// [`complete`](Conn::complete) for several answers that came back together (a burst of
    /// deferred answers): the same, but the clock is read once for their `Date`, not once each.
    pub fn complete_all(&mut self, answers: impl IntoIterator<Item = (u64, Response)>) {
        let mut any = false;
        for (id, res) in answers {
            if let Some(owed) = self.owed.iter_mut().find(|o| o.id == id) {
                owed.response = Some(res);
                any = true;
            }
        }
        if any {
            self.date = None;
            self.write_owed();
        }
    }

    /// Writes the owed answers that are ready, from the front, until one that is not (or a file
    /// body, which must be streamed before anything after it).
    fn write_owed(&mut self) {
        while self.file.is_none() && self.owed.front().is_some_and(|o| o.response.is_some()) {
            let Some(Owed { response: Some(res), keep_alive, minor, is_head, logged, .. }) = self.owed.pop_front()
            else {
                unreachable!("the front was checked to be ready");
            };
            let nothing_after = self.owed.is_empty() && self.start == self.end;
            let keep_alive = keep_alive && !res.close && !(self.stopping && nothing_after);
            if let Some(request) = logged {
                self.log(Some(&request), res.status, res.body.len());
            }
            self.emit(res, keep_alive, minor, is_head);
            if self.closing {
                // Nothing after a closing response reaches the client.
                self.owed.clear();
                self.pending.clear();
            }
        }
        if self.owed.is_empty() && self.last {
            self.closing = true;
        }
    }

    /// Encodes the response to the current request, which nothing is owed before, and consumes
    /// the request's bytes.
    fn finish(&mut self, res: Response, consumed: usize) {
        let is_last_buffered = self.start + consumed == self.end;
        let keep_alive = self.head.keep_alive && !res.close && !(self.stopping && is_last_buffered);
        let is_head = self.head.method.get(&self.buf[self.start..self.end]) == b"HEAD";
        if self.site.logging() {
            let mut request = std::mem::take(&mut self.log_request);
            request.clear();
            self.push_request(&mut request);
            self.log(Some(&request), res.status, res.body.len());
            self.log_request = request;
        }
        self.emit(res, keep_alive, self.head.minor, is_head);
        self.consume(consumed);
    }

    /// Encodes one response into the output (a file body is streamed from there on).
    fn emit(&mut self, res: Response, keep_alive: bool, minor: u8, is_head: bool) {
        if res.abort {
            // Not a byte of this answer, and nothing after it: the connection ends once the
            // answers before it are written.
            self.closing = true;
            return;
        }
        let date = self.date();
        encode_head(&mut self.out, &res, &date, minor, keep_alive);
        if !is_head && status_has_body(res.status) {
            match res.body {
                Body::Empty => {}
                Body::Static(b) => self.out.extend_from_slice(b),
                Body::Bytes(b) => self.out.extend_from_slice(&b),
                Body::File { file, len } => self.file = Some((file, len)),
                // Not a HEAD: the announced bytes cannot follow, so end the message by closing.
                Body::HeadOnly(_) => self.closing = true,
            }
        }
        self.closing |= !keep_alive;
    }

    /// Consumes the current request's bytes, giving back a buffer one large request grew.
    fn consume(&mut self, consumed: usize) {
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
        self.last = true;
        if !self.owed.is_empty() {
            // Behind answers still owed: it goes out after them, in order.
            let logged = (self.site.logging() && head_parsed).then(|| {
                let mut line = Vec::new();
                self.push_request(&mut line);
                line
            });
            let id = self.next_id;
            self.next_id += 1;
            let owed = Owed { id, response: Some(res), keep_alive: false, minor: 1, is_head: false, logged };
            self.owed.push_back(owed);
            return;
        }
        if self.site.logging() {
            let mut request = std::mem::take(&mut self.log_request);
            request.clear();
            if head_parsed {
                self.push_request(&mut request);
            }
            self.log(head_parsed.then_some(&request[..]), res.status, res.body.len());
            self.log_request = request;
        }
        self.emit(res, false, 1, false);
    }

    /// Appends the current request's `METHOD target HTTP/1.x`, as the access log shows it.
    fn push_request(&self, out: &mut Vec<u8>) {
        let req = &self.buf[self.start..self.end];
        out.extend_from_slice(self.head.method.get(req));
        out.push(b' ');
        out.extend(self.head.target.get(req).iter().map(|&c| if c == b'"' { b'\'' } else { c }));
        out.extend_from_slice(if self.head.minor == 0 { b" HTTP/1.0" } else { b" HTTP/1.1" });
    }

    /// Writes one Common Log Format line: `host ident user [date] "request" status bytes`.
    /// `request` is `METHOD target HTTP/1.x`, or `None` for a request the parser refused (logged
    /// as `"-"`).
    fn log(&mut self, request: Option<&[u8]>, status: u16, bytes: u64) {
        let line = &mut self.log_line;
        line.clear();
        line.extend_from_slice(self.peer.ip().to_string().as_bytes());
        line.extend_from_slice(b" - - [");
        line.extend_from_slice(crate::date::clf_date(crate::date::unix_now()).as_bytes());
        line.extend_from_slice(b"] \"");
        match request {
            Some(request) => line.extend_from_slice(request),
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
            if self.file.is_none() && self.out.is_empty() {
                // A file body just ended: the answers owed behind it may go now.
                self.date = None;
                self.write_owed();
            }
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

    /// The capacities of the input and output buffers: the memory this connection holds for
    /// bytes, which the fuzz target and the tests hold to a bound however the input arrives.
    pub fn buffer_capacity(&self) -> (usize, usize) {
        (self.buf.capacity(), self.out.capacity())
    }

    /// True when there is output waiting to be written.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len() || self.file.is_some() || self.owed.front().is_some_and(|o| o.response.is_some())
    }

    /// True when the connection can use more input now.
    pub fn wants_read(&self) -> bool {
        !self.eof
            && !self.closing
            && !self.last
            && self.owed.len() < MAX_OWED
            && self.file.is_none()
            && self.out.len() - self.out_pos < OUT_HIGH_WATER
    }

    /// True when nothing is left to do: close the socket.
    pub fn is_done(&self) -> bool {
        self.closing && !self.wants_write() && self.owed.is_empty()
    }

    /// True between requests: nothing received of the next one, nothing owed to the client.
    pub fn is_idle(&self) -> bool {
        self.start == self.end && matches!(self.phase, Phase::Head) && self.owed.is_empty() && !self.wants_write()
    }

    /// Gives back the input buffer of an idle connection (nothing received of a next request,
    /// nothing owed); the next bytes allocate a fresh one. For a server whose bytes land in
    /// buffers of its own first (08's provided buffers), so that an idle client holds none, as
    /// nginx frees a keep-alive connection's buffer. A busy connection keeps its buffer.
    pub fn shed(&mut self) {
        if self.is_idle() {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// When the connection must be given up on, if nothing happens first.
    ///
    /// Between requests it is the idle timeout; while a head is arriving, the head timeout
    /// counted from its first byte (so a client trickling a byte at a time cannot hold the
    /// connection forever); while a body arrives or output waits, the idle timeout since the
    /// last progress. A handler that answers later sets no deadline: it owns the time.
    pub fn deadline(&self) -> Option<Instant> {
        let cfg = self.site.config();
        if !self.owed.is_empty() {
            None
        } else if self.start != self.end && matches!(self.phase, Phase::Head) && !self.wants_write() {
            Some(self.request_started + cfg.header_timeout)
        } else {
            Some(self.last_active + cfg.idle_timeout)
        }
    }

    /// The deadline passed: answer 408 to a half-received request, else just close.
    pub fn timed_out(&mut self) {
        if !self.owed.is_empty() {
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

    /// An idle connection sheds its input buffer and still answers the next request; a
    /// connection in the middle of a request keeps its bytes.
    #[test]
    fn shed_gives_back_an_idle_buffer_only() {
        let site = Site::new(Config::for_tests(), Arc::new(Hello)).unwrap();
        let mut conn = Conn::new(&site, "127.0.0.1:40000".parse().unwrap());
        for (request, answers) in
            [(&b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"[..], 1), (b"GET /hello HTTP/1.1\r\nHo", 0)]
        {
            let room = conn.read_buf();
            room[..request.len()].copy_from_slice(request);
            conn.received(request.len());
            conn.process(|req| site.call(req));
            let mut written = Vec::new();
            while conn.wants_write() {
                let n = conn.output().len();
                written.extend_from_slice(conn.output());
                conn.wrote(n);
            }
            assert_eq!(written.windows(13).filter(|w| w == b"Hello, world!").count(), answers);
            conn.shed();
            let kept = conn.buf.capacity();
            assert_eq!(kept == 0, answers == 1, "idle: shed; half a request: kept ({kept} bytes)");
        }
        let rest = b"st: x\r\n\r\n";
        conn.read_buf()[..rest.len()].copy_from_slice(rest);
        conn.received(rest.len());
        conn.process(|req| site.call(req));
        assert!(conn.output().ends_with(b"Hello, world!"), "the request split around a shed is answered");
    }

    /// Feeds `input` in one read, answers with `handler`, and returns everything written and
    /// whether the connection is then done.
    fn exchange(input: &[u8], handler: impl FnMut(&Request<'_>) -> Reply) -> (String, bool) {
        let site = Site::new(Config::for_tests(), Arc::new(Hello)).unwrap();
        let mut conn = Conn::new(&site, "127.0.0.1:40000".parse().unwrap());
        conn.read_buf()[..input.len()].copy_from_slice(input);
        conn.received(input.len());
        conn.process(handler);
        let mut written = Vec::new();
        while conn.wants_write() {
            let n = conn.output().len();
            written.extend_from_slice(conn.output());
            conn.wrote(n);
        }
        (String::from_utf8_lossy(&written).into_owned(), conn.is_done())
    }

    /// An aborted response writes nothing of its own and ends the connection, after the answers
    /// already given to the requests before it (a proxy's origin died mid-body).
    #[test]
    fn an_aborted_response_closes_without_a_word() {
        let two = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\n\r\n";
        let (written, done) = exchange(two, |req| {
            Reply::Now(if req.path() == "/first" { Response::text(200, "first") } else { Response::aborted() })
        });
        assert!(written.starts_with("HTTP/1.1 200 OK\r\n") && written.ends_with("\r\n\r\nfirst"), "{written}");
        assert_eq!(written.matches("HTTP/1.1").count(), 1, "nothing after the abort: {written}");
        assert!(done, "the connection closes");

        // The same through a deferred answer, as the cluster sends it.
        let site = Site::new(Config::for_tests(), Arc::new(Hello)).unwrap();
        let mut conn = Conn::new(&site, "127.0.0.1:40000".parse().unwrap());
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        conn.read_buf()[..req.len()].copy_from_slice(req);
        conn.received(req.len());
        let (_responder, pending) = crate::reply::deferred();
        let mut pending = Some(pending);
        conn.process(|_| Reply::Later(pending.take().expect("one request")));
        let (id, _pending) = conn.take_pending().expect("the deferred answer");
        assert!(!conn.is_done());
        conn.complete(id, Response::aborted());
        assert!(!conn.wants_write() && conn.is_done());
    }

    /// A relayed HEAD answer announces its origin's length with no body; on any other request the
    /// same body cannot be honoured, and the connection closes after the head.
    #[test]
    fn a_head_only_body_announces_its_length() {
        let head_only = |_: &Request<'_>| Reply::Now(Response::new(200).with_body("text/plain", Body::HeadOnly(13)));
        let (written, done) = exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", head_only);
        assert!(written.contains("\r\nContent-Length: 13\r\n") && written.ends_with("\r\n\r\n"), "{written}");
        assert!(!done, "kept alive");
        let (written, done) = exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", head_only);
        assert!(written.contains("\r\nContent-Length: 13\r\n") && written.ends_with("\r\n\r\n"), "{written}");
        assert!(done, "closed: the 13 bytes cannot follow");
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

/// Pipelined requests whose answers come later, and out of order: the queue of owed answers.
#[cfg(test)]
mod owed_tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::Hello;
    use crate::config::Config;
    use crate::reply::deferred;
    use crate::Responder;

    /// A connection, and a handler that defers `/later/N` (keeping its responder) and answers
    /// anything else at once with the path as the body.
    struct Harness {
        /// The connection under test.
        conn: Conn,
        /// The site (an app is needed to build one; the handler below is what answers).
        _site: Site,
        /// Deferred answers not yet sent, by the request's path, in the order they were made.
        responders: Vec<(String, Responder)>,
        /// The path of every deferred request so far, in the order the handler saw them.
        deferred: Vec<String>,
        /// The ids of the deferred answers taken so far, by the request's path.
        ids: Vec<(String, u64)>,
        /// How many requests the handler has been called with.
        calls: usize,
    }

    impl Harness {
        fn new() -> Harness {
            let site = Site::new(Config::for_tests(), Arc::new(Hello)).unwrap();
            let conn = Conn::new(&site, "127.0.0.1:40000".parse().unwrap());
            Harness { conn, _site: site, responders: Vec::new(), deferred: Vec::new(), ids: Vec::new(), calls: 0 }
        }

        /// Feeds `bytes`, processes, takes every pending answer, and returns what was written.
        fn feed(&mut self, bytes: &[u8]) -> String {
            let room = self.conn.read_buf();
            room[..bytes.len()].copy_from_slice(bytes);
            self.conn.received(bytes.len());
            self.step()
        }

        /// Processes, takes every pending answer, and returns what was written.
        fn step(&mut self) -> String {
            let (responders, deferred_paths, calls) = (&mut self.responders, &mut self.deferred, &mut self.calls);
            self.conn.process(|req| {
                *calls += 1;
                let path = req.path().to_string();
                if path.starts_with("/later/") {
                    let (responder, pending) = deferred();
                    deferred_paths.push(path.clone());
                    responders.push((path, responder));
                    Reply::Later(pending)
                } else {
                    Reply::Now(Response::new(200).with_body("text/plain", Body::Bytes(path.into_bytes())))
                }
            });
            while let Some((id, _pending)) = self.conn.take_pending() {
                // The handler ran in request order, so the ids come in the same order.
                self.ids.push((self.deferred[self.ids.len()].clone(), id));
            }
            self.drain()
        }

        /// Sends the answer to `/later/N` and returns what was written.
        fn answer(&mut self, path: &str) -> String {
            let at = self.responders.iter().position(|(p, _)| p == path).unwrap();
            let (_, responder) = self.responders.remove(at);
            drop(responder);
            let id = self.ids.iter().find(|(p, _)| p == path).unwrap().1;
            self.conn.complete(id, Response::new(200).with_body("text/plain", Body::Bytes(path.as_bytes().to_vec())));
            self.step()
        }

        /// Writes all the output there is.
        fn drain(&mut self) -> String {
            let mut written = Vec::new();
            while self.conn.wants_write() {
                let out = self.conn.output();
                written.extend_from_slice(out);
                let n = out.len();
                self.conn.wrote(n);
            }
            String::from_utf8_lossy(&written).into_owned()
        }
    }

    /// The bodies in `written`, in the order they were written.
    fn bodies(written: &str) -> Vec<&str> {
        written.split("HTTP/1.1 ").filter(|r| !r.is_empty()).map(|r| r.split("\r\n\r\n").nth(1).unwrap_or("")).collect()
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    #[test]
    fn deferred_answers_run_together_and_are_written_in_request_order() {
        let mut h = Harness::new();
        let batch: String = ["/later/0", "/now/1", "/later/2", "/later/3", "/now/4"].map(get).concat();
        assert_eq!(h.feed(batch.as_bytes()), "", "nothing may pass the first, deferred answer");
        assert_eq!(h.calls, 5, "every pipelined request reached the application at once");
        assert_eq!(h.answer("/later/3"), "");
        assert_eq!(bodies(&h.answer("/later/0")), ["/later/0", "/now/1"]);
        assert_eq!(bodies(&h.answer("/later/2")), ["/later/2", "/later/3", "/now/4"]);
        assert!(h.conn.is_idle());
        assert_eq!(bodies(&h.feed(get("/now/5").as_bytes())), ["/now/5"], "and the connection goes on");
    }

    #[test]
    fn at_most_max_owed_answers_are_owed_at_once() {
        let mut h = Harness::new();
        let batch: String = (0..MAX_OWED + 8).map(|i| get(&format!("/later/{i}"))).collect();
        h.feed(batch.as_bytes());
        assert_eq!(h.calls, MAX_OWED);
        assert!(!h.conn.wants_read(), "no more reading while the queue is full");
        let written = h.answer("/later/0");
        assert_eq!(bodies(&written), ["/later/0"]);
        assert_eq!(h.calls, MAX_OWED + 1, "one answer written, one more request taken");
    }

    #[test]
    fn continue_waits_for_the_answers_before_it() {
        let mut h = Harness::new();
        let post = "POST /now/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(h.feed([get("/later/0").as_str(), post].concat().as_bytes()), "");
        let written = h.answer("/later/0");
        let at_continue = written.find("100 Continue").expect("100 Continue once the first answer is out");
        assert!(written.find("/later/0").unwrap() < at_continue, "{written}");
        assert_eq!(bodies(&h.feed(b"hi")).last(), Some(&"/now/echo"));
    }

    #[test]
    fn a_refused_request_is_answered_after_those_before_it_then_closes() {
        let mut h = Harness::new();
        let bad = "GET /now/x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n";
        assert_eq!(h.feed([get("/later/0").as_str(), bad].concat().as_bytes()), "");
        let written = h.answer("/later/0");
        assert!(written.starts_with("HTTP/1.1 200"), "{written}");
        assert!(written.contains("HTTP/1.1 400"), "{written}");
        assert!(h.conn.is_done());
    }

    #[test]
    fn nothing_after_connection_close_is_dispatched() {
        let mut h = Harness::new();
        let close = "GET /later/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        h.feed([get("/later/0").as_str(), close, get("/now/2").as_str()].concat().as_bytes());
        assert_eq!(h.calls, 2, "the request after `Connection: close` is not handed over");
        h.answer("/later/1");
        assert_eq!(bodies(&h.answer("/later/0")), ["/later/0", "/later/1"]);
        assert!(h.conn.is_done());
    }

    #[test]
    fn end_of_file_still_gets_every_answer_owed() {
        let mut h = Harness::new();
        h.feed([get("/later/0"), get("/now/1")].concat().as_bytes());
        h.conn.received(0);
        h.step();
        assert!(!h.conn.is_done(), "answers are still owed");
        assert_eq!(bodies(&h.answer("/later/0")), ["/later/0", "/now/1"]);
        assert!(h.conn.is_done());
    }
}
