//! The proxy's back end: one thread, one event loop (mio), every connection to every copy.
//!
//! The cluster's front end is server 07: its reactors parse client requests and hand each to
//! [`crate::ClusterApp`], which encodes it for a copy, wraps it in a [`Job`] with the
//! [`Responder`] of a deferred reply, and drops it in this loop's inbox. So a request waiting for a
//! copy costs the reactor nothing: it goes on serving other clients, and the answer comes back
//! through the responder when this loop has it. This loop is the only owner of what it uses
//! (copies, pools, the queue), so none of it is locked; the inbox (a `Mutex<Vec>` and a
//! `mio::Waker`, one wake-up per burst) is the only door in.
//!
//! What it decides, in the order a request meets it:
//!
//! - **Balancing**: the open copy with the fewest requests outstanding (least outstanding
//!   requests, the pull model of one shared queue), never more than `--max-in-flight` each; ties
//!   go round the copies. When every copy is full, requests wait in one FIFO queue of at most
//!   `--queue`; past it, 503 with `Retry-After`.
//! - **Pools**: a request goes out on an idle keep-alive connection to its copy if there is one,
//!   else on a new one; one request at a time per connection (no pipelining to copies, as nginx).
//! - **Failures**: a copy that refuses, resets or closes before the response head arrived failed
//!   the request: the request goes to the front of the queue for another copy if the retry rules
//!   allow ([`Replay`]), else 502. After the head arrived the response is that copy's: if the copy
//!   dies mid-body, the client's connection is closed without an answer ([`Response::aborted`]),
//!   never switched to another copy's response, and nothing is sent twice.
//! - **Time**: a request not answered within `--request-timeout` of its arrival is 504; a
//!   connect not made within `--connect-timeout` is a failure of the copy; an idle pooled
//!   connection is closed after `--keepalive-timeout`. One sweep every [`SWEEP`] checks them all.
//!
//! Responses are buffered whole (up to `--max-body`) before they are relayed: the client's `Conn`
//! takes one `Response`. That is the simplification a streaming proxy would not make; README.md
//! says what it costs.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flash_common::response_reader::{Complete, ResponseReader};
use flash_common::{Responder, Response};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::forward;

/// The waker's token; connections count up from 0.
const WAKER: Token = Token(usize::MAX);
/// How often deadlines are checked: a timeout fires up to this late.
const SWEEP: Duration = Duration::from_millis(25);
/// How much room a read is given at least.
const MIN_READ: usize = 4096;
/// A pooled connection's buffer that grew past this for one large response is given back.
const SHRINK_ABOVE: usize = 64 * 1024;

/// A copy's identity in the proxy: one per process started (a restarted copy is a new one), or
/// per `--upstream`.
pub type CopyId = u64;

/// One copy's counters: written by the proxy loop, read by `/status` and the supervisor.
#[derive(Debug, Default)]
pub struct CopyStats {
    /// Requests sent to the copy and not yet answered.
    pub in_flight: AtomicU64,
    /// Responses relayed from it.
    pub served: AtomicU64,
    /// Requests that failed on it (then retried elsewhere, or answered 502).
    pub failed: AtomicU64,
}

/// Which requests may be sent again after their copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Whatever the copy received of it (idempotent, an Idempotency-Key, or `--retry all`).
    Always,
    /// Only if not one byte of it was written to the copy.
    IfUnsent,
    /// Never (`--retry none`).
    Never,
}

/// A request on its way to a copy.
pub struct Job {
    /// The request as the copy receives it (see [`forward::encode_request`]).
    pub request: Vec<u8>,
    /// The request is HEAD, so its response has no body.
    pub to_head: bool,
    /// Whether it may be sent again.
    pub replay: Replay,
    /// Where the answer goes.
    pub responder: Responder,
    /// When it is answered 504 if nothing else happened.
    pub deadline: Instant,
    /// How many copies it has been sent to so far.
    pub tries: u32,
    /// The copy that failed it last, avoided by the next try if another copy is open.
    pub last: Option<CopyId>,
}

/// What the loop is told through its inbox.
pub enum Msg {
    /// A request to send.
    Request(Job),
    /// A new copy, closed until [`Msg::Up`] (its first passing health check).
    Add {
        /// Its identity.
        id: CopyId,
        /// Where it listens.
        addr: SocketAddr,
        /// Its counters.
        stats: Arc<CopyStats>,
    },
    /// A health check passed: the copy may take requests.
    Up(CopyId),
    /// Health checks failed: no new requests, the ones in flight go on.
    Down(CopyId),
    /// The copy is leaving: no new requests; [`Notice::Drained`] once it has none in flight.
    Drain(CopyId),
    /// The copy is gone (its process exited): forget it, and retry what it had in flight.
    Remove(CopyId),
    /// The cluster is stopping: answer what is queued with 503 and end the loop.
    Stop,
}

/// What the loop tells the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The copy failed `--max-fails` requests in a row and gets no more until a health check passes.
    Failing(CopyId),
    /// The draining copy has no request left in flight and may be stopped.
    Drained(CopyId),
}

/// The proxy's settings, from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The most requests in flight per copy.
    pub max_in_flight: usize,
    /// The most requests waiting for a copy.
    pub queue: usize,
    /// The most copies one request is sent to.
    pub tries: u32,
    /// Failures in a row after which a copy is closed until a health check passes.
    pub max_fails: u32,
    /// How long a connect may take.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub keepalive_timeout: Duration,
    /// The largest response head accepted from a copy.
    pub max_head: usize,
    /// The largest response body accepted from a copy.
    pub max_body: u64,
}

/// The door into the loop, shared by every reactor and the supervisor.
struct Inbox {
    /// Messages not yet taken by the loop.
    msgs: Mutex<Vec<Msg>>,
    /// Wakes the loop's poll.
    waker: Waker,
    /// Set while a wake-up is on its way, so that a burst of messages costs one.
    woken: AtomicBool,
}

/// The handle the rest of the cluster holds.
#[derive(Clone)]
pub struct Proxy {
    /// The loop's inbox.
    inbox: Arc<Inbox>,
    /// Requests waiting in the queue now (written by the loop).
    queued: Arc<AtomicUsize>,
}

impl Proxy {
    /// Starts the loop on its own thread; `notify` is called from it with what the supervisor
    /// must know.
    pub fn start(
        settings: Settings,
        notify: impl Fn(Notice) + Send + 'static,
    ) -> io::Result<(Proxy, std::thread::JoinHandle<()>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let inbox = Arc::new(Inbox { msgs: Mutex::new(Vec::new()), waker, woken: AtomicBool::new(false) });
        let queued = Arc::new(AtomicUsize::new(0));
        let mut event_loop = Loop {
            poll,
            settings,
            inbox: inbox.clone(),
            queued: queued.clone(),
            notify: Box::new(notify),
            copies: Vec::new(),
            conns: HashMap::new(),
            next_token: 0,
            queue: VecDeque::new(),
            turn: 0,
        };
        let thread = std::thread::Builder::new().name("flash-cluster-proxy".into()).spawn(move || event_loop.run())?;
        Ok((Proxy { inbox, queued }, thread))
    }

    /// Hands the loop a message.
    pub fn send(&self, msg: Msg) {
        self.inbox.msgs.lock().unwrap_or_else(PoisonError::into_inner).push(msg);
        if !self.inbox.woken.swap(true, Ordering::AcqRel) {
            // Failing to wake means the loop is gone; the message then goes unanswered, and its
            // responder, dropped with it, answers 500.
            let _ = self.inbox.waker.wake();
        }
    }

    /// How many requests wait for a copy now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// A copy, as the loop sees it.
struct Copy {
    /// Its identity.
    id: CopyId,
    /// Where it listens.
    addr: SocketAddr,
    /// Its shared counters.
    stats: Arc<CopyStats>,
    /// It may take new requests (it passed a health check and has not failed since).
    open: bool,
    /// It is leaving: no new requests.
    draining: bool,
    /// Requests sent and not yet answered.
    in_flight: usize,
    /// Failures in a row.
    fails: u32,
    /// Its idle keep-alive connections, the most recently used last.
    idle: Vec<Token>,
}

/// How a request ended on a connection, when it did not end well.
enum Failure {
    /// The copy refused, reset or closed before the response head: the copy's fault, retryable.
    Copy(&'static str),
    /// The copy answered something that is not HTTP: 502, not retried (nginx's default too).
    Malformed(&'static str),
    /// The copy failed after its response had begun: the client's connection is closed.
    AfterHead,
}

/// What driving a connection came to.
enum Outcome {
    /// Nothing to do until the next event.
    Pending,
    /// The response is complete.
    Done(Complete),
    /// The request failed.
    Failed(Failure),
    /// An idle connection was closed by the copy (or sent bytes nobody asked for).
    Closed,
}

/// One connection to a copy.
struct Upstream {
    /// The non-blocking socket.
    stream: TcpStream,
    /// The copy it leads to.
    copy: CopyId,
    /// The request it carries, if any (none while idle in the pool).
    job: Option<Job>,
    /// How much of the request has been written.
    written: usize,
    /// The response so far; `buf[..filled]` holds received bytes.
    buf: Vec<u8>,
    /// How many bytes of `buf` are received.
    filled: usize,
    /// Reads the response.
    reader: ResponseReader,
    /// The TCP handshake has completed.
    connected: bool,
    /// Epoll said readable and no read has since returned `WouldBlock` (or come back short).
    readable: bool,
    /// Epoll said writable and no write has since returned `WouldBlock`.
    writable: bool,
    /// When the connect began, or when it last became idle.
    since: Instant,
}

/// The loop's state; only its thread touches it.
struct Loop {
    /// The event loop.
    poll: Poll,
    /// The command line's settings.
    settings: Settings,
    /// Where messages arrive.
    inbox: Arc<Inbox>,
    /// Published queue length.
    queued: Arc<AtomicUsize>,
    /// Tells the supervisor.
    notify: Box<dyn Fn(Notice) + Send>,
    /// The copies, in the order they were added.
    copies: Vec<Copy>,
    /// Every connection, keyed by its token (never reused, so a late event cannot reach the
    /// wrong connection).
    conns: HashMap<Token, Upstream>,
    /// The next token to give.
    next_token: usize,
    /// Requests waiting for a copy, oldest first (retries go in front).
    queue: VecDeque<Job>,
    /// Rotates the starting point of the least-outstanding scan, so that ties take turns.
    turn: usize,
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let idle = self.conns.is_empty() && self.queue.is_empty();
            let timeout = (!idle).then(|| next_sweep.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                flash_common::log_line!("flash-cluster: the proxy loop failed: {e}");
                return;
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    if !self.take_inbox() {
                        return;
                    }
                    continue;
                }
                if let Some(c) = self.conns.get_mut(&event.token()) {
                    c.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
                    c.writable |= event.is_writable() || event.is_write_closed() || event.is_error();
                }
                self.drive(event.token());
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP;
            }
        }
    }

    /// Handles every message in the inbox; false once told to stop.
    fn take_inbox(&mut self) -> bool {
        // Cleared before taking, so that a message sent after the take wakes us again.
        self.inbox.woken.store(false, Ordering::Release);
        let msgs = std::mem::take(&mut *self.inbox.msgs.lock().unwrap_or_else(PoisonError::into_inner));
        for msg in msgs {
            match msg {
                Msg::Request(job) => self.arrive(job),
                Msg::Add { id, addr, stats } => self.copies.push(Copy {
                    id,
                    addr,
                    stats,
                    open: false,
                    draining: false,
                    in_flight: 0,
                    fails: 0,
                    idle: Vec::new(),
                }),
                Msg::Up(id) => {
                    if let Some(c) = self.copy_mut(id) {
                        c.open = true;
                        c.fails = 0;
                    }
                }
                Msg::Down(id) => self.close(id),
                Msg::Drain(id) => {
                    if let Some(c) = self.copy_mut(id) {
                        c.draining = true;
                    }
                    self.close(id);
                    self.check_drained(id);
                }
                Msg::Remove(id) => self.remove(id),
                Msg::Stop => {
                    for job in self.queue.drain(..) {
                        job.responder.send(busy("the cluster is stopping"));
                    }
                    return false;
                }
            }
        }
        self.pump();
        true
    }

    /// A new request: queued behind the others, then sent if a copy is free; refused past the
    /// queue's limit.
    fn arrive(&mut self, job: Job) {
        self.queue.push_back(job);
        self.pump();
        if self.queue.len() > self.settings.queue {
            if let Some(job) = self.queue.pop_back() {
                job.responder.send(busy("every copy is busy and the queue is full"));
            }
        }
        self.queued.store(self.queue.len(), Ordering::Relaxed);
    }

    fn copy_mut(&mut self, id: CopyId) -> Option<&mut Copy> {
        self.copies.iter_mut().find(|c| c.id == id)
    }

    /// Sends queued requests to free copies, oldest first, until the queue or the copies run out.
    fn pump(&mut self) {
        while let Some(job) = self.queue.front() {
            let Some(i) = self.pick(job.last) else { break };
            let Some(job) = self.queue.pop_front() else { break };
            self.assign(i, job);
        }
        self.queued.store(self.queue.len(), Ordering::Relaxed);
    }

    /// The open copy with the fewest requests in flight and room for one more, preferring any
    /// other to `avoid` (the copy that just failed this request).
    fn pick(&mut self, avoid: Option<CopyId>) -> Option<usize> {
        let n = self.copies.len();
        self.turn = self.turn.wrapping_add(1);
        let max = self.settings.max_in_flight;
        let mut best: Option<(bool, usize, usize)> = None;
        for k in 0..n {
            let i = (self.turn + k) % n;
            let c = &self.copies[i];
            if !c.open || c.draining || c.in_flight >= max {
                continue;
            }
            let rank = (Some(c.id) == avoid, c.in_flight, i);
            if best.map_or(true, |b| (rank.0, rank.1) < (b.0, b.1)) {
                best = Some(rank);
            }
        }
        best.map(|(_, _, i)| i)
    }

    /// Sends `job` to copy `i`, on a pooled connection if one is idle.
    fn assign(&mut self, i: usize, mut job: Job) {
        job.tries += 1;
        let copy = &mut self.copies[i];
        copy.in_flight += 1;
        copy.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let (id, addr) = (copy.id, copy.addr);
        let token = match copy.idle.pop() {
            Some(token) => token,
            None => match self.connect(id, addr) {
                Ok(token) => token,
                Err(_) => {
                    // Out of descriptors or ports: nothing was sent, so the request may go on.
                    self.failed(id, job, 0, Failure::Copy("cannot open a connection to the copy"));
                    return;
                }
            },
        };
        if let Some(c) = self.conns.get_mut(&token) {
            c.job = Some(job);
            c.written = 0;
            c.reader.reset(c.job.as_ref().is_some_and(|j| j.to_head));
        }
        self.drive(token);
    }

    /// Opens a connection to a copy (non-blocking: the handshake completes later).
    fn connect(&mut self, copy: CopyId, addr: SocketAddr) -> io::Result<Token> {
        let mut stream = TcpStream::connect(addr)?;
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        stream.set_nodelay(true)?;
        let reader = ResponseReader::new(false, self.settings.max_head, self.settings.max_body);
        self.conns.insert(
            token,
            Upstream {
                stream,
                copy,
                job: None,
                written: 0,
                buf: Vec::new(),
                filled: 0,
                reader,
                connected: false,
                readable: false,
                writable: false,
                since: Instant::now(),
            },
        );
        Ok(token)
    }

    /// Makes what progress connection `token` allows, and acts on how it ended.
    fn drive(&mut self, token: Token) {
        let Some(c) = self.conns.get_mut(&token) else { return };
        match c.progress() {
            Outcome::Pending => {}
            Outcome::Done(done) => self.answered(token, done),
            Outcome::Failed(failure) => self.drop_conn(token, failure),
            Outcome::Closed => self.forget(token),
        }
    }

    /// Relays a complete response, and returns the connection to its copy's pool if both sides
    /// allow.
    fn answered(&mut self, token: Token, done: Complete) {
        let Some(c) = self.conns.get_mut(&token) else { return };
        let Some(job) = c.job.take() else { return };
        let head = c.reader.head();
        let res = forward::relay(head, &c.buf[done.head_start..c.filled], &c.buf[done.body.clone()], job.to_head);
        let reusable = head.keep_alive && done.consumed == c.filled && c.written == job.request.len();
        let id = c.copy;
        job.responder.send(res);
        let keep = match self.copies.iter_mut().find(|k| k.id == id) {
            Some(copy) => {
                copy.in_flight -= 1;
                copy.fails = 0;
                copy.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                copy.stats.served.fetch_add(1, Ordering::Relaxed);
                let keep = reusable && copy.open && !copy.draining;
                if keep {
                    copy.idle.push(token);
                }
                keep
            }
            None => false,
        };
        match self.conns.get_mut(&token) {
            Some(c) if keep => {
                c.filled = 0;
                c.since = Instant::now();
                if c.buf.len() > SHRINK_ABOVE {
                    c.buf = Vec::new();
                }
            }
            _ => self.forget(token),
        }
        self.check_drained(id);
        self.pump();
    }

    /// Closes a connection whose request failed, and decides the request's fate.
    fn drop_conn(&mut self, token: Token, failure: Failure) {
        let Some(c) = self.conns.remove(&token) else { return };
        if let Some(copy) = self.copies.iter_mut().find(|k| k.id == c.copy) {
            copy.idle.retain(|&t| t != token);
        }
        if let Some(job) = c.job {
            self.failed(c.copy, job, c.written, failure);
        }
    }

    /// A request failed on copy `id` after `written` bytes of it were sent: retry it, or answer.
    fn failed(&mut self, id: CopyId, mut job: Job, written: usize, failure: Failure) {
        let max_fails = self.settings.max_fails;
        let mut failing = false;
        if let Some(copy) = self.copy_mut(id) {
            copy.in_flight -= 1;
            copy.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            copy.stats.failed.fetch_add(1, Ordering::Relaxed);
            if matches!(failure, Failure::Copy(_)) {
                copy.fails += 1;
                failing = copy.open && copy.fails >= max_fails;
            }
        }
        if failing {
            self.close(id);
            (self.notify)(Notice::Failing(id));
        }
        match failure {
            Failure::AfterHead => job.responder.send(Response::aborted()),
            Failure::Malformed(reason) => job.responder.send(Response::error(502, reason)),
            Failure::Copy(reason) => {
                let may = match job.replay {
                    Replay::Always => true,
                    Replay::IfUnsent => written == 0,
                    Replay::Never => false,
                };
                if may && job.tries < self.settings.tries && Instant::now() < job.deadline {
                    job.last = Some(id);
                    self.queue.push_front(job);
                } else if !may && written > 0 && job.replay == Replay::IfUnsent {
                    let why = "the copy failed after receiving this request, which is not idempotent, so it is not \
                               sent again (send an Idempotency-Key, or see --retry)";
                    job.responder.send(Response::error(502, why));
                } else if !may {
                    job.responder.send(Response::error(502, reason));
                } else {
                    job.responder.send(Response::error(502, "every copy this request was sent to failed (--tries)"));
                }
            }
        }
        self.check_drained(id);
        self.pump();
    }

    /// Closes a copy to new requests and its idle connections (requests in flight go on).
    fn close(&mut self, id: CopyId) {
        let Some(copy) = self.copy_mut(id) else { return };
        copy.open = false;
        let idle = std::mem::take(&mut copy.idle);
        for token in idle {
            self.forget(token);
        }
    }

    /// Forgets a copy whose process is gone; the requests it had are failed (and so retried).
    fn remove(&mut self, id: CopyId) {
        self.close(id);
        let busy: Vec<Token> = self.conns.iter().filter(|(_, c)| c.copy == id).map(|(&t, _)| t).collect();
        for token in busy {
            self.drop_conn(token, Failure::Copy("the copy exited"));
        }
        self.copies.retain(|c| c.id != id);
    }

    /// Tells the supervisor when a draining copy has nothing left in flight.
    fn check_drained(&mut self, id: CopyId) {
        if self.copy_mut(id).is_some_and(|c| c.draining && c.in_flight == 0) {
            (self.notify)(Notice::Drained(id));
        }
    }

    /// Closes a connection that carries no request (dropping the stream closes the socket).
    fn forget(&mut self, token: Token) {
        if let Some(mut c) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            if let Some(copy) = self.copies.iter_mut().find(|k| k.id == c.copy) {
                copy.idle.retain(|&t| t != token);
            }
        }
    }

    /// Fires the deadlines that have passed.
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<usize> = (0..self.queue.len()).filter(|&i| self.queue[i].deadline <= now).collect();
        for i in expired.into_iter().rev() {
            if let Some(job) = self.queue.remove(i) {
                job.responder.send(Response::error(504, "no copy was free within --request-timeout"));
            }
        }
        self.queued.store(self.queue.len(), Ordering::Relaxed);
        let (connect, keepalive) = (self.settings.connect_timeout, self.settings.keepalive_timeout);
        let mut late = Vec::new();
        for (&token, c) in &self.conns {
            match &c.job {
                Some(job) if job.deadline <= now => late.push((token, true)),
                Some(_) if !c.connected && c.since + connect <= now => late.push((token, false)),
                None if c.since + keepalive <= now => late.push((token, false)),
                _ => {}
            }
        }
        for (token, timed_out) in late {
            if timed_out {
                self.timed_out(token);
            } else if self.conns.get(&token).is_some_and(|c| c.job.is_some()) {
                self.drop_conn(
                    token,
                    Failure::Copy("the connection to the copy was not made within --connect-timeout"),
                );
            } else {
                self.forget(token);
            }
        }
    }

    /// A request ran out of time on a copy: 504, and the connection is closed (its answer, if
    /// it ever comes, has nobody to go to). Not retried: the copy may still be working on it.
    fn timed_out(&mut self, token: Token) {
        let Some(mut c) = self.conns.remove(&token) else { return };
        let _ = self.poll.registry().deregister(&mut c.stream);
        let Some(job) = c.job.take() else { return };
        if let Some(copy) = self.copy_mut(c.copy) {
            copy.in_flight -= 1;
            copy.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            copy.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        job.responder.send(Response::error(504, "the copy did not answer within --request-timeout"));
        self.check_drained(c.copy);
        self.pump();
    }
}

/// A 503 that tells the client when to come back.
fn busy(reason: &str) -> Response {
    Response::error(503, reason).with_header("Retry-After", "1")
}

impl Upstream {
    /// Connects, writes, reads and parses as far as the socket allows.
    fn progress(&mut self) -> Outcome {
        if !self.connected {
            if !(self.readable || self.writable) {
                return Outcome::Pending;
            }
            // The handshake's outcome: an error if it failed, a peer address if it worked.
            match (self.stream.take_error(), self.stream.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    self.connected = true;
                    self.since = Instant::now();
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => return Outcome::Pending,
                _ => return self.fail(Failure::Copy("the copy refused the connection")),
            }
        }
        let Some(job) = &self.job else {
            // Idle: the only thing a copy may do is close (or send what nobody asked for).
            return if self.readable && !self.still_open() { Outcome::Closed } else { Outcome::Pending };
        };
        while self.writable && self.written < job.request.len() {
            match self.stream.write(&job.request[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return self.fail(Failure::Copy("the copy closed the connection while receiving the request"))
                }
            }
        }
        let mut eof = false;
        let mut got = false;
        while self.readable {
            if self.buf.len() - self.filled < MIN_READ {
                let want = (self.buf.len() * 2).max(MIN_READ * 2);
                self.buf.resize(want, 0);
            }
            let room = self.buf.len() - self.filled;
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    eof = true;
                    self.readable = false;
                }
                Ok(n) => {
                    self.filled += n;
                    got = true;
                    // A short read emptied the socket; the next bytes bring a new event.
                    self.readable = n == room;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(Failure::Copy("the copy reset the connection")),
            }
        }
        if !got && !eof {
            return Outcome::Pending;
        }
        match self.reader.advance(&mut self.buf[..self.filled], eof) {
            Ok(Some(done)) => Outcome::Done(done),
            Ok(None) => Outcome::Pending,
            Err(_) if eof => self.fail(Failure::Copy("the copy closed the connection before answering")),
            Err(e) => self.fail(Failure::Malformed(e.reason)),
        }
    }

    /// A failure, turned into [`Failure::AfterHead`] once the response's head has arrived.
    fn fail(&self, failure: Failure) -> Outcome {
        if self.reader.has_head() && self.job.is_some() {
            Outcome::Failed(Failure::AfterHead)
        } else {
            Outcome::Failed(failure)
        }
    }

    /// Reads an idle connection: true if it is still open with nothing to say.
    fn still_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            _ => false,
        }
    }
}
