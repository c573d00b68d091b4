//! One load-generating thread: its own `mio::Poll`, its share of the connections, its own statistics.
//!
//! The loop is the client-side mirror of a fast server's: on a readable connection, read everything
//! available into one reused thread buffer, frame every complete response in place, record each one's
//! latency, then write all the requests the connection may send next with one `write`. Nothing on
//! that path allocates: requests are pre-encoded, the in-flight queue of each connection has its
//! capacity from the start, and the only per-connection buffer that grows is the one that keeps a
//! response head split across two reads (rare, and its capacity is kept).
//!
//! A connection that has read the last answer of its batch writes its next batch at once, inside
//! the handling of that same event. Nothing then passes off the clock between an answer and the
//! next request, so in closed loop the server sees all the concurrency asked for and, without
//! pipelining, the mean latency equals connections / throughput (Little's law), a check anyone can
//! make on the report. A
//! loop that reads every ready socket first and writes afterwards holds each answered connection
//! back by the rest of the read phase: time on no request's clock, which lowers the load the
//! server sees, and its latency with it. Time is read once per read (the completion time of every
//! response in it) and once per write (the send time of the whole batch), so a request's clock runs
//! from its `write` to the `read` that completes it: about 20 ns per clock read, where reading it
//! once per `poll` round would be wrong by the time spent on the other connections of the round,
//! and reading it per response would add nothing.
//!
//! Two load models share the loop. Closed loop (wrk): a connection sends its next batch of
//! `--pipeline` requests as soon as the previous batch is answered. Open loop (wrk2): each connection has a schedule, one request every
//! `connections / rate` seconds, and a request's latency counts from when it *should* have been sent,
//! so a server that stalls for a second is charged for every request that queued behind the stall
//! (coordinated omission corrected) instead of for one slow answer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;

use crate::procfs;
use crate::request::Rng;
use crate::response::{Feed, ResponseReader};
use crate::spec::LoadSpec;
use crate::stats::{ErrorKind, ThreadStats};

/// Size of the thread's shared read buffer: one hello response is ~100 bytes, a 64 KiB static file
/// fits whole, and a kept partial head (at most `MAX_HEAD`) still leaves room for a full read.
const READ_BUFFER: usize = 128 * 1024;

/// The most connects one round of the loop starts before it polls again. A connect is a system
/// call that grows costly with thousands of connections open (about 340 µs each, on average, at
/// `-c 19000` on a 2-vCPU VM), so opening every due connection in one go took 6 s of a `-d 1s`
/// run, with no deadline check and no connection served meanwhile. In rounds, the
/// connections already open are served between batches, and the deadline is checked before
/// every connect.
const CONNECTS_PER_ROUND: usize = 64;

/// How long to wait before reconnecting after a failed connection attempt, so that a server that
/// refuses connections is not hammered in a busy loop.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

/// What a worker is asked to do.
pub(crate) struct Plan<'a> {
    /// The whole run's settings.
    pub spec: &'a LoadSpec,
    /// This worker's number, for seeding.
    pub index: usize,
    /// The global index of this worker's first connection, so that ramp-up and open-loop phases
    /// are spread over all connections of all threads.
    pub first_conn: usize,
    /// How many connections this worker drives.
    pub conns: usize,
    /// With `-n`: how many measured requests this worker may still start.
    pub budget: Option<u64>,
    /// When the run began (warm-up starts here).
    pub start: Instant,
    /// When measuring begins (after warm-up).
    pub measure_start: Instant,
    /// When to stop, if the run is timed.
    pub deadline: Option<Instant>,
    /// Completed measured responses, published now and then for the progress line.
    pub progress: &'a AtomicU64,
    /// Set by the caller to stop early (Ctrl-C, or a failed server).
    pub stop: &'a AtomicBool,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Not connected: waiting for its ramp-up turn or a retry.
    Idle,
    /// A non-blocking connect is in progress.
    Connecting,
    /// Connected and usable.
    Open,
}

/// One request sent and not yet answered.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// When it was sent (closed loop) or should have been sent (open loop).
    sent: Instant,
    /// Whether it was a `HEAD` request.
    head: bool,
    /// Whether it counts (sent after warm-up).
    measured: bool,
}

/// One client connection and its reusable state.
struct Conn {
    /// The socket, while connecting or open.
    stream: Option<TcpStream>,
    /// Where the connection is in its life.
    state: ConnState,
    /// Frames the responses; reset with each new socket.
    reader: ResponseReader,
    /// The unconsumed start of a response head that a read cut in two.
    partial: Vec<u8>,
    /// Requests encoded but not yet accepted by the socket.
    wbuf: Vec<u8>,
    /// How much of `wbuf` was written already.
    wpos: usize,
    /// Requests sent and unanswered, oldest first; capacity = the pipeline depth.
    inflight: VecDeque<InFlight>,
    /// Requests sent on the current socket, for `--requests-per-conn`.
    sent_here: u64,
    /// With `-n`: this connection took one request from the budget when it began to connect, so
    /// that no connection is opened that will have nothing to send.
    reserved: bool,
    /// Open loop: when the next request is due.
    next_due: Instant,
    /// Open loop: whether a send timer for this connection is pending.
    timer_pending: bool,
    /// When the current connect began, for the connect timeout.
    connect_started: Instant,
    /// Picks requests from the mix.
    rng: Rng,
}

/// Something a timer triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// Open a connection (ramp-up or retry).
    Connect,
    /// Open loop: a request is due.
    Send,
}

/// How a batch of bytes left a connection.
enum ReadOutcome {
    /// Keep the connection.
    Keep,
    /// The server asked to close (or the per-connection limit was reached): reconnect quietly.
    Recycle,
    /// A protocol error of this kind.
    Fail(ErrorKind),
}

/// The worker's state.
struct Worker<'a> {
    /// The plan this worker follows.
    plan: Plan<'a>,
    /// This thread's poller.
    poll: Poll,
    /// The connections, indexed by their token.
    conns: Vec<Conn>,
    /// The shared read buffer.
    rbuf: Box<[u8]>,
    /// Pending connects and open-loop sends, soonest first.
    timers: BinaryHeap<Reverse<(Instant, TimerKind, usize)>>,
    /// What has been measured.
    stats: ThreadStats,
    /// Remaining measured requests with `-n`.
    budget: Option<u64>,
    /// Open loop: time between two requests of one connection.
    interval: Option<Duration>,
    /// Requests in flight on all connections, to know when a counted run is done.
    outstanding: usize,
    /// False once the deadline passed or the budget ran out: no more requests start.
    sending: bool,
    /// Connections given up because the process had no file descriptor left for them.
    given_up: usize,
}

/// Runs one worker to completion and returns what it measured.
pub(crate) fn run(plan: Plan<'_>) -> io::Result<ThreadStats> {
    let mut worker = Worker::new(plan)?;
    worker.event_loop()?;
    Ok(worker.stats)
}

impl<'a> Worker<'a> {
    /// A worker with its connections idle and their first connects scheduled.
    fn new(plan: Plan<'a>) -> io::Result<Worker<'a>> {
        let spec = plan.spec;
        let interval = spec.rate.map(|rate| Duration::from_secs_f64(spec.connections as f64 / rate));
        let mut conns = Vec::with_capacity(plan.conns);
        for i in 0..plan.conns {
            let global = plan.first_conn + i;
            // Open-loop phases are staggered evenly so that the connections do not fire in lockstep.
            let phase = interval.map_or(Duration::ZERO, |iv| iv.mul_f64(global as f64 / spec.connections as f64));
            conns.push(Conn {
                stream: None,
                state: ConnState::Idle,
                reader: ResponseReader::new(),
                partial: Vec::new(),
                wbuf: Vec::with_capacity(
                    spec.pipeline * spec.requests.requests.iter().map(|r| r.bytes.len()).max().unwrap_or(0),
                ),
                wpos: 0,
                inflight: VecDeque::with_capacity(spec.pipeline),
                sent_here: 0,
                reserved: false,
                next_due: plan.start + phase,
                timer_pending: false,
                connect_started: plan.start,
                rng: Rng::new(((plan.index as u64) << 32) ^ global as u64 ^ 0x5eed),
            });
        }
        let mut worker = Worker {
            poll: Poll::new()?,
            conns,
            rbuf: vec![0; READ_BUFFER].into_boxed_slice(),
            timers: BinaryHeap::with_capacity(plan.conns * 2 + 1),
            stats: ThreadStats::new(plan.start),
            budget: plan.budget,
            interval,
            outstanding: 0,
            sending: true,
            given_up: 0,
            plan,
        };
        let start = worker.plan.start;
        for i in 0..worker.conns.len() {
            let offset = spec.ramp_up.mul_f64((worker.plan.first_conn + i) as f64 / spec.connections as f64);
            worker.timers.push(Reverse((start + offset, TimerKind::Connect, i)));
        }
        Ok(worker)
    }

    /// Polls until the deadline, the budget is used up, or a stop is requested.
    fn event_loop(&mut self) -> io::Result<()> {
        let spec = self.plan.spec;
        let start = self.plan.start;
        // Timeouts are checked by a periodic scan, fine-grained enough for the timeout asked for.
        let tick = (spec.timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut next_tick = start + tick;
        let mut events = Events::with_capacity(1024);
        let mut cpu_at_start: Option<Duration> = None;
        loop {
            let now = Instant::now();
            if cpu_at_start.is_none() && now >= self.plan.measure_start {
                cpu_at_start = procfs::thread_cpu();
            }
            if self.plan.deadline.is_some_and(|d| now >= d) {
                break;
            }
            if self.plan.stop.load(Ordering::Relaxed) {
                self.stats.interrupted = true;
                break;
            }
            if !self.sending && self.outstanding == 0 {
                break;
            }
            self.fire_timers(now);
            if now >= next_tick {
                self.check_timeouts(now);
                self.plan.progress.store(self.stats.completed, Ordering::Relaxed);
                next_tick = now + tick;
            }
            let mut wake = next_tick;
            if let Some(Reverse((due, _, _))) = self.timers.peek() {
                wake = wake.min(*due);
            }
            if let Some(deadline) = self.plan.deadline {
                wake = wake.min(deadline);
            }
            if cpu_at_start.is_none() {
                wake = wake.min(self.plan.measure_start);
            }
            match self.poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                self.on_event(event.token().0, readable, event.is_read_closed(), event.is_writable());
            }
        }
        // The CPU time is read at the same moment as the end, so that it is divided by the time
        // it was measured over (a worker can stop a little after its deadline).
        let end = Instant::now();
        self.stats.ended = end;
        self.stats.cpu = match (cpu_at_start, procfs::thread_cpu()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let window_end = self.plan.deadline.map_or(end, |d| d.min(end));
        // Requests sent during warm-up count here too: a server that never answered them is
        // exactly what this figure must not hide.
        for request in self.conns.iter().flat_map(|c| c.inflight.iter()) {
            self.stats.in_flight_at_deadline += 1;
            self.stats.oldest_in_flight =
                self.stats.oldest_in_flight.max(window_end.saturating_duration_since(request.sent));
        }
        if let Some(interval) = self.interval.filter(|_| self.plan.deadline.is_some()) {
            // Due before the end of the window, which is the deadline or, when stopped early, now.
            let end = window_end;
            self.stats.unsent_at_deadline = self
                .conns
                .iter()
                .filter(|c| c.next_due < end && self.plan.measure_start < end)
                .map(|c| {
                    let from = c.next_due.max(self.plan.measure_start);
                    1 + (end.saturating_duration_since(from).as_nanos() / interval.as_nanos().max(1)) as u64
                })
                .sum();
        }
        self.plan.progress.store(self.stats.completed, Ordering::Relaxed);
        Ok(())
    }

    /// Runs the timers that are due, up to [`CONNECTS_PER_ROUND`] connects and none once the
    /// deadline has passed (the rest stay due, for the next round).
    fn fire_timers(&mut self, now: Instant) {
        let mut connects = 0;
        while let Some(&Reverse((due, kind, idx))) = self.timers.peek() {
            if due > now || self.plan.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if kind == TimerKind::Connect && self.conns[idx].state == ConnState::Idle {
                if connects == CONNECTS_PER_ROUND {
                    break;
                }
                connects += 1;
            }
            self.timers.pop();
            match kind {
                TimerKind::Connect => {
                    if self.conns[idx].state == ConnState::Idle {
                        self.connect(idx, now);
                    }
                }
                TimerKind::Send => {
                    self.conns[idx].timer_pending = false;
                    self.fill(idx, now);
                }
            }
        }
    }

    /// Starts a non-blocking connect.
    fn connect(&mut self, idx: usize, now: Instant) {
        if !self.sending {
            return;
        }
        let conn = &mut self.conns[idx];
        if now >= self.plan.measure_start {
            if let Some(left) = &mut self.budget {
                if *left == 0 {
                    return;
                }
                *left -= 1;
                self.sending = *left > 0;
                conn.reserved = true;
                self.outstanding += 1;
            }
        }
        match TcpStream::connect(self.plan.spec.target.addr) {
            Ok(mut stream) => {
                if let Err(_e) =
                    self.poll.registry().register(&mut stream, Token(idx), Interest::READABLE | Interest::WRITABLE)
                {
                    self.fail(idx, ErrorKind::Connect, now);
                    return;
                }
                conn.stream = Some(stream);
                conn.state = ConnState::Connecting;
                conn.connect_started = now;
            }
            Err(e) if e.raw_os_error() == Some(Errno::EMFILE as i32) => self.give_up(idx),
            Err(_) => self.fail(idx, ErrorKind::Connect, now),
        }
    }

    /// The process has no file descriptor left for this connection's socket (EMFILE: more
    /// connections than `ulimit -n` allows). Its siblings hold theirs for the whole run, so a
    /// retry would fail the same way: it is given up and counted, for the report to name the
    /// cause, rather than retried every 10 ms as a connect error, which crowded out the
    /// connections that did open: `-c 19000` under `ulimit -n 1024` measured 20,000 req/s
    /// that way, and 207,000 with the missing connections given up.
    fn give_up(&mut self, idx: usize) {
        let conn = &mut self.conns[idx];
        if conn.reserved {
            // With `-n`, nothing was sent: the request it reserved goes back to the budget.
            conn.reserved = false;
            self.outstanding -= 1;
            if let Some(left) = &mut self.budget {
                *left += 1;
                self.sending = true;
            }
        }
        self.stats.fd_limited += 1;
        self.given_up += 1;
        if self.given_up == self.conns.len() {
            // Nothing can ever be sent: end the run instead of waiting for a count it cannot reach.
            self.sending = false;
        }
    }

    /// Handles one readiness event; `closed` says the peer's FIN is already in (or hung up).
    fn on_event(&mut self, idx: usize, readable: bool, closed: bool, writable: bool) {
        match self.conns[idx].state {
            ConnState::Idle => {}
            ConnState::Connecting => {
                let stream = self.conns[idx].stream.as_ref().expect("connecting implies a socket");
                match connected(stream) {
                    Ok(true) => self.opened(idx),
                    Ok(false) => {}
                    Err(_) => self.fail(idx, ErrorKind::Connect, Instant::now()),
                }
            }
            ConnState::Open => {
                if writable && self.conns[idx].wpos < self.conns[idx].wbuf.len() {
                    if let Err(kind) = self.flush(idx) {
                        self.fail(idx, kind, Instant::now());
                        return;
                    }
                }
                if readable {
                    self.read(idx, closed);
                }
            }
        }
    }

    /// A connect completed: start sending.
    fn opened(&mut self, idx: usize) {
        let now = Instant::now();
        let conn = &mut self.conns[idx];
        if let Some(stream) = &conn.stream {
            // Requests are small and latency is the measurement: never let Nagle hold one back.
            let _ = stream.set_nodelay(true);
        }
        conn.state = ConnState::Open;
        conn.sent_here = 0;
        self.stats.connects += 1;
        self.fill(idx, now);
    }

    /// Reads everything available, frames the responses, and sends what the connection may send
    /// next right away. `closed` is the event's read-closed flag: the server's FIN is queued
    /// behind the data, so the socket is read down to its end of stream.
    fn read(&mut self, idx: usize, closed: bool) {
        let mut now = Instant::now();
        loop {
            let Worker { conns, rbuf, stats, plan, outstanding, .. } = self;
            let conn = &mut conns[idx];
            let kept = conn.partial.len();
            if kept > 0 {
                rbuf[..kept].copy_from_slice(&conn.partial);
                conn.partial.clear();
            }
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            let result = stream.read(&mut rbuf[kept..]);
            match result {
                Ok(0) => {
                    conn.partial.extend_from_slice(&rbuf[..kept]);
                    self.on_eof(idx, now);
                    return;
                }
                Ok(n) => {
                    now = Instant::now();
                    if now >= plan.measure_start {
                        stats.bytes += n as u64;
                    }
                    let full = kept + n == rbuf.len();
                    match frame(conn, &rbuf[..kept + n], now, plan, stats, outstanding) {
                        ReadOutcome::Keep => {}
                        ReadOutcome::Recycle => {
                            self.recycle(idx, now);
                            return;
                        }
                        ReadOutcome::Fail(kind) => {
                            self.fail(idx, kind, now);
                            return;
                        }
                    }
                    // A short read drained the socket: with edge-triggered epoll, data (or a FIN)
                    // that arrives later raises a new event, so the extra read that would only say
                    // WouldBlock (a wasted system call per response batch) is skipped. A FIN that
                    // arrived with the data raises no further edge, though, and a body delimited
                    // by the close would then wait for the timeout: when the event already says
                    // the peer closed, the loop goes on to the read that returns 0. That flag
                    // costs the keep-alive case nothing, unlike reading to WouldBlock always, and
                    // is simpler than asking the framing whether the body runs until the close
                    // (which would not cover a close after a Content-Length body either).
                    if !full && !closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.partial.extend_from_slice(&rbuf[..kept]);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    conn.partial.extend_from_slice(&rbuf[..kept]);
                }
                Err(_) => {
                    self.fail(idx, ErrorKind::Reset, now);
                    return;
                }
            }
        }
        let conn = &self.conns[idx];
        let limit_reached = self.plan.spec.per_conn.is_some_and(|limit| conn.sent_here >= limit);
        if limit_reached && conn.inflight.is_empty() {
            self.recycle(idx, now);
        } else {
            // The send time is read again: framing and recording took time that is not the
            // next request's.
            self.fill(idx, Instant::now());
        }
    }

    /// The server closed its side.
    fn on_eof(&mut self, idx: usize, now: Instant) {
        let conn = &mut self.conns[idx];
        if let Some(done) = conn.reader.at_eof() {
            if let Some(request) = conn.inflight.pop_front() {
                self.outstanding -= 1;
                if request.measured {
                    let second = now.saturating_duration_since(self.plan.measure_start).as_secs() as usize;
                    self.stats.record(now.saturating_duration_since(request.sent), second, done.status);
                }
            }
        }
        if self.conns[idx].inflight.is_empty() {
            // Closing an idle keep-alive connection is the server's right, not an error.
            self.recycle(idx, now);
        } else {
            self.fail(idx, ErrorKind::Closed, now);
        }
    }

    /// Fills the pipeline (closed loop) or sends what is due (open loop), in one write.
    fn fill(&mut self, idx: usize, now: Instant) {
        let spec = self.plan.spec;
        let measure_start = self.plan.measure_start;
        let conn = &mut self.conns[idx];
        if conn.state != ConnState::Open || !(self.sending || conn.reserved) {
            return;
        }
        // Closed loop sends a whole pipeline batch once the previous batch is answered (as wrk
        // does) rather than topping up after every partial read: one write of P requests per round
        // trip instead of many small ones, which measured ~30% fewer system calls per request and
        // more throughput against nginx at 16 deep.
        if self.interval.is_none() && !conn.inflight.is_empty() {
            return;
        }
        let mut added = 0;
        while conn.inflight.len() < spec.pipeline {
            if spec.per_conn.is_some_and(|limit| conn.sent_here >= limit) {
                break;
            }
            let sent = match self.interval {
                Some(interval) => {
                    if conn.next_due > now {
                        break;
                    }
                    let due = conn.next_due;
                    conn.next_due += interval;
                    due
                }
                None => now,
            };
            let measured = sent >= measure_start;
            if measured && conn.reserved {
                conn.reserved = false;
                self.outstanding -= 1;
                self.stats.sent += 1;
            } else if measured {
                match &mut self.budget {
                    Some(0) => {
                        self.sending = false;
                        break;
                    }
                    Some(left) => {
                        *left -= 1;
                        // Stop starting anything (new connections included) once the last is sent.
                        self.sending = *left > 0;
                    }
                    None => {}
                }
                self.stats.sent += 1;
            }
            let pick = spec.requests.pick(&mut conn.rng);
            let request = &spec.requests.requests[pick];
            conn.wbuf.extend_from_slice(&request.bytes);
            conn.inflight.push_back(InFlight { sent, head: request.head, measured });
            conn.sent_here += 1;
            added += 1;
        }
        self.outstanding += added;
        if self.interval.is_some() && !conn.timer_pending && conn.inflight.len() < spec.pipeline && self.sending {
            conn.timer_pending = true;
            self.timers.push(Reverse((conn.next_due, TimerKind::Send, idx)));
        }
        if added > 0 {
            if let Err(kind) = self.flush(idx) {
                self.fail(idx, kind, now);
            }
        }
    }

    /// Writes what is pending; a full socket buffer leaves the rest for the next writable event.
    fn flush(&mut self, idx: usize) -> Result<(), ErrorKind> {
        let conn = &mut self.conns[idx];
        let Some(stream) = conn.stream.as_mut() else {
            return Ok(());
        };
        while conn.wpos < conn.wbuf.len() {
            match stream.write(&conn.wbuf[conn.wpos..]) {
                Ok(0) => return Err(ErrorKind::Reset),
                Ok(n) => conn.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(ErrorKind::Reset),
            }
        }
        conn.wbuf.clear();
        conn.wpos = 0;
        Ok(())
    }

    /// Fails every request in flight on a connection with one kind of error, then reconnects.
    fn fail(&mut self, idx: usize, kind: ErrorKind, now: Instant) {
        let measured_now = now >= self.plan.measure_start;
        let conn = &mut self.conns[idx];
        let lost = conn.inflight.iter().filter(|f| f.measured).count() as u64;
        let count = if kind == ErrorKind::Connect { u64::from(measured_now) } else { lost };
        self.stats.error(kind, count);
        if conn.reserved {
            conn.reserved = false;
            self.outstanding -= 1;
            // With `-n`, a failed connect uses up the request it reserved, so that a run against a
            // dead server ends; any other failure before the first write gives it back.
            if kind != ErrorKind::Connect {
                if let Some(left) = &mut self.budget {
                    *left += 1;
                    self.sending = true;
                }
            }
        }
        self.outstanding -= conn.inflight.len();
        conn.inflight.clear();
        self.close(idx);
        if kind == ErrorKind::Connect {
            self.timers.push(Reverse((now + CONNECT_RETRY, TimerKind::Connect, idx)));
        } else {
            self.connect(idx, now);
        }
    }

    /// Closes a connection the server (or the per-connection limit) ended normally and opens a new
    /// one; unanswered pipelined requests go back to the budget to be sent again.
    fn recycle(&mut self, idx: usize, now: Instant) {
        let conn = &mut self.conns[idx];
        let returned = conn.inflight.iter().filter(|f| f.measured).count() as u64;
        self.stats.sent -= returned;
        let reserved = u64::from(conn.reserved);
        if conn.reserved {
            conn.reserved = false;
            self.outstanding -= 1;
        }
        if let Some(left) = &mut self.budget {
            *left += returned + reserved;
            if returned + reserved > 0 {
                self.sending = true;
            }
        }
        self.outstanding -= conn.inflight.len();
        conn.inflight.clear();
        self.close(idx);
        self.connect(idx, now);
    }

    /// Drops the socket and forgets its partial state.
    fn close(&mut self, idx: usize) {
        let conn = &mut self.conns[idx];
        // Dropping the socket closes its only descriptor, and Linux removes a closed descriptor
        // from every epoll set by itself: an explicit deregister would be one more system call per
        // connection, which `--no-keepalive` pays on every request.
        drop(conn.stream.take());
        conn.state = ConnState::Idle;
        conn.reader.reset();
        conn.partial.clear();
        conn.wbuf.clear();
        conn.wpos = 0;
    }

    /// Fails connections whose oldest request (or whose connect) is older than `--timeout`.
    fn check_timeouts(&mut self, now: Instant) {
        let timeout = self.plan.spec.timeout;
        for idx in 0..self.conns.len() {
            let conn = &self.conns[idx];
            let expired = match conn.state {
                ConnState::Connecting => now.saturating_duration_since(conn.connect_started) > timeout,
                ConnState::Open => {
                    conn.inflight.front().is_some_and(|f| now.saturating_duration_since(f.sent) > timeout)
                }
                ConnState::Idle => false,
            };
            if expired {
                let kind = if conn.state == ConnState::Connecting { ErrorKind::Connect } else { ErrorKind::Timeout };
                self.fail(idx, kind, now);
            }
        }
    }
}

/// Frames the responses in `data` and records them.
fn frame(
    conn: &mut Conn,
    data: &[u8],
    now: Instant,
    plan: &Plan<'_>,
    stats: &mut ThreadStats,
    outstanding: &mut usize,
) -> ReadOutcome {
    let second = now.saturating_duration_since(plan.measure_start).as_secs() as usize;
    let mut pos = 0;
    while pos < data.len() {
        let Some(&request) = conn.inflight.front() else {
            // Bytes nobody asked for: the server is confused, and so would every later answer be.
            return ReadOutcome::Fail(ErrorKind::Malformed);
        };
        match conn.reader.feed(&data[pos..], request.head) {
            Ok(Feed::Done(done)) => {
                pos += done.consumed;
                conn.inflight.pop_front();
                *outstanding -= 1;
                // An answer read after the deadline (in the last batch of events) is outside the
                // measured window, like one that never came.
                if request.measured && plan.deadline.map_or(true, |d| now <= d) {
                    stats.record(now.saturating_duration_since(request.sent), second, done.status);
                }
                if done.close {
                    return ReadOutcome::Recycle;
                }
            }
            Ok(Feed::More { consumed }) => {
                pos += consumed;
                if conn.reader.in_head() {
                    conn.partial.extend_from_slice(&data[pos..]);
                }
                break;
            }
            Err(_) => return ReadOutcome::Fail(ErrorKind::Malformed),
        }
    }
    ReadOutcome::Keep
}

/// Whether a non-blocking connect has finished: `Ok(false)` while still in progress.
fn connected(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects due all at once (`-c` large, no ramp-up) start a batch per round of the loop, so
    /// that the connections already open are served and the deadline is checked between
    /// batches, and none starts once the deadline has passed: `-c 19000` once spent 6 s of a
    /// `-d 1s` run opening connections. The listener accepts nothing; its backlog and the
    /// kernel's pending connects hold them.
    #[test]
    fn connects_start_in_bounded_rounds_and_never_after_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut spec = LoadSpec::get(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        spec.connections = 2 * CONNECTS_PER_ROUND;
        let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        let start = Instant::now();
        let plan = |deadline: Instant| Plan {
            spec: &spec,
            index: 0,
            first_conn: 0,
            conns: spec.connections,
            budget: None,
            start,
            measure_start: start,
            deadline: Some(deadline),
            progress: &progress,
            stop: &stop,
        };
        let started = |w: &Worker<'_>| w.conns.iter().filter(|c| c.state != ConnState::Idle).count();

        let mut running = Worker::new(plan(start + Duration::from_secs(60))).unwrap();
        running.fire_timers(Instant::now());
        assert_eq!(started(&running), CONNECTS_PER_ROUND, "one round starts one batch");
        running.fire_timers(Instant::now());
        assert_eq!(started(&running), 2 * CONNECTS_PER_ROUND, "the next round the next batch");

        let mut late = Worker::new(plan(start)).unwrap();
        late.fire_timers(Instant::now());
        assert_eq!(started(&late), 0, "no connect starts after the deadline");
    }
}
