//! # Server 04: an epoll event loop
//!
//! # Model
//! One thread owns every socket, all non-blocking, and sleeps in `epoll_wait` (through `mio`)
//! until some of them are ready; then it reads what arrived, answers every complete request, and
//! writes all the answers at once. A connection costs a few KiB of state, not a thread,
//! so thousands of clients fit on one core. The catch: while the thread runs one handler, nobody
//! else is served, so one `/cpu` or `/sleep` stalls every client.
//!
//! # Changes from 03
//! Blocking calls on a thread per client become one loop over readiness events: accept until
//! `WouldBlock`, then per client "read once, answer all, write once, until no progress". State
//! that a thread kept on its stack now lives in a [`Client`] in a map keyed by `mio::Token`.
//! Deadlines are checked by one sweep a second over all clients, with no syscall per client, and
//! shutdown is one more event source. Handlers that answer later wake the loop through a
//! `mio::Waker`. Server 05 runs this same loop with a thread pool; 07 runs it once per core.
//!
//! # Limits
//! Everything a handler does happens on the loop's thread: a 300 ms `/cpu` is a 300 ms pause for
//! all 10,000 clients. Throughput is one core's; see README.md for the arithmetic.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use flash_common::server::accept_failed;
use flash_common::{Conn, Pending, Request, Shutdown, Site};
use mio::event::Event;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

pub mod away;
pub mod dispatch;
pub mod later;
use away::Away;
use later::Later;

/// The listening socket's token.
const LISTENER: Token = Token(usize::MAX);
/// The shutdown pipe's token.
const SHUTDOWN: Token = Token(usize::MAX - 1);
/// The token of the waker that handlers answering later use (see [`later`]).
const WAKER: Token = later::WAKER;
/// How often deadlines are checked; a timeout fires up to this late.
const SWEEP: Duration = Duration::from_secs(1);

/// Serves every client from this one thread until `shutdown` is triggered.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    run_reactor(listener, &site, &shutdown, 0, |req: &Request<'_>| site.call(req))
}

/// One client: its socket, its HTTP state, and what epoll last told us about it.
pub struct Client {
    /// The non-blocking socket.
    stream: TcpStream,
    /// The sans-I/O HTTP state.
    conn: Conn,
    /// Epoll said readable and no read has since returned `WouldBlock` (or come back short).
    readable: bool,
    /// Epoll said the client closed its side: its end brings no event of its own, so keep reading.
    closed: bool,
    /// Epoll said writable and no write has since returned `WouldBlock`.
    writable: bool,
}

/// Runs one event loop over `listener` until `shutdown`, handing each request to `dispatch` (see
/// [`dispatch`]) on this thread. `worker` names the loop in `/server-status`; 05 and 07 call this.
pub fn run_reactor<D>(
    listener: TcpListener,
    site: &Site,
    shutdown: &Shutdown,
    worker: usize,
    mut dispatch: D,
) -> io::Result<()>
where
    D: dispatch::Dispatch,
{
    listener.set_nonblocking(true)?;
    let mut listener = Some(mio::net::TcpListener::from_std(listener));
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    if let Some(l) = listener.as_mut() {
        poll.registry().register(l, LISTENER, Interest::READABLE)?;
    }
    poll.registry().register(&mut SourceFd(&shutdown.fd().as_raw_fd()), SHUTDOWN, Interest::READABLE)?;
    let later = Later::new(&poll)?;
    let mut away = Away::new(&later); // Clients 05's pool is driving; always empty for 04 and 07.
                                      // Tokens are never reused, so an answer that comes later can never reach the wrong client.
    let mut clients: HashMap<Token, Client> = HashMap::new();
    let mut next_token = 0;
    let mut next_sweep = Instant::now() + SWEEP;

    loop {
        let timeout = next_sweep.saturating_duration_since(Instant::now());
        site.flush_log(); // This round's access log lines, in one write, before we sleep.
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if interrupted(&e) {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => {
                    // Edge-triggered: one event may stand for many connections, so accept
                    // until the kernel says there are no more.
                    while let Some(l) = listener.as_ref() {
                        let (mut stream, peer) = match l.accept() {
                            Ok(pair) => pair,
                            Err(e) if would_block(&e) => break,
                            Err(e) => {
                                if !accept_failed(e)? {
                                    // Out of descriptors: the waiting clients get no new edge, so
                                    // re-arm; epoll reports the listener again on the next round.
                                    poll.registry().reregister(
                                        &mut SourceFd(&l.as_raw_fd()),
                                        LISTENER,
                                        Interest::READABLE,
                                    )?;
                                    break;
                                }
                                continue;
                            }
                        };
                        let token = Token(next_token);
                        next_token += 1;
                        // Registered for both directions once, so epoll never needs changing.
                        poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                        stream.set_nodelay(true)?;
                        site.status().accepted(worker);
                        let conn = Conn::new(site, peer);
                        clients.insert(token, Client { stream, conn, readable: false, closed: false, writable: true });
                    }
                }
                SHUTDOWN => {
                    // Stop accepting (closing the listener refuses newcomers at once), and tell
                    // every client; idle ones close now, busy ones after their answer.
                    if let Some(mut l) = listener.take() {
                        poll.registry().deregister(&mut l)?;
                    }
                    away.stop();
                    let all: Vec<Token> = clients.keys().copied().collect();
                    for token in all {
                        drive(&mut clients, &mut away, token, &mut dispatch, &later, |c| c.conn.shutdown());
                    }
                }
                WAKER => {
                    let answers = later.take(); // First: it re-arms the wake-up for what follows.
                    for (token, c, news) in away.back(&later) {
                        clients.insert(token, c);
                        if news {
                            drive(&mut clients, &mut away, token, &mut dispatch, &later, |_| {});
                        }
                    }
                    for (token, answers) in answers {
                        if let Some(answers) = away.missed_answers(token, answers) {
                            drive(&mut clients, &mut away, token, &mut dispatch, &later, |c| {
                                c.conn.complete_all(answers)
                            });
                        }
                    }
                }
                token => {
                    if !away.missed_event(token, event) {
                        drive(&mut clients, &mut away, token, &mut dispatch, &later, |c| c.note(event));
                    }
                }
            }
        }
        let now = Instant::now();
        if now >= next_sweep {
            // One pass a second over all clients, no syscall each: cheap even for 10,000.
            let late: Vec<Token> =
                clients.iter().filter(|(_, c)| c.conn.deadline().is_some_and(|d| d <= now)).map(|(&t, _)| t).collect();
            for token in late {
                drive(&mut clients, &mut away, token, &mut dispatch, &later, |c| c.conn.timed_out());
            }
            next_sweep = now + SWEEP;
        }
        dispatch.end_of_batch(); // This round's ready clients go to 05's pool now.
        if listener.is_none() && clients.is_empty() && away.is_empty() {
            return Ok(());
        }
    }
}

/// Tells client `token` what happened (`news`), then makes all the progress it allows and
/// forgets it once it is done (dropping the stream closes the socket, which also takes it out of
/// epoll). A dispatch that drives clients elsewhere (05's) takes it away instead; it comes back
/// through `away`.
fn drive<D, N>(
    clients: &mut HashMap<Token, Client>,
    away: &mut Away,
    token: Token,
    dispatch: &mut D,
    later: &Later,
    news: N,
) where
    D: dispatch::Dispatch,
    N: FnOnce(&mut Client),
{
    let Some(c) = clients.get_mut(&token) else { return };
    news(c);
    if dispatch.takes_clients() {
        if let Some(c) = clients.remove(&token) {
            dispatch.take(token, c, away.leave(token));
        }
    } else if c.drive(dispatch, |p| later.watch(p, token)) {
        clients.remove(&token);
    }
}

impl Client {
    /// Records what epoll reported about this client.
    fn note(&mut self, event: &Event) {
        self.closed |= event.is_read_closed();
        self.readable |= event.is_readable() || self.closed || event.is_error();
        self.writable |= event.is_writable() || event.is_write_closed() || event.is_error();
    }

    /// Reads once, answers every complete request, writes all the answers at once; repeats until
    /// nothing moves. Returns true when the connection is finished.
    pub fn drive<D, W>(&mut self, dispatch: &mut D, mut watch: W) -> bool
    where
        D: dispatch::Dispatch,
        W: FnMut((u64, Pending)),
    {
        loop {
            let mut progress = false;
            if self.readable && self.conn.wants_read() {
                let buf = self.conn.read_buf();
                let room = buf.len();
                match self.stream.read(buf) {
                    Ok(n) => {
                        self.conn.received(n);
                        progress = true;
                        // A short read emptied the socket: under edge triggering the next byte
                        // brings a new event. A client's close brings none, so then read on to 0.
                        self.readable = n == room || (self.closed && n > 0);
                    }
                    Err(e) if would_block(&e) => self.readable = false,
                    Err(e) if interrupted(&e) => {}
                    Err(_) => return true,
                }
            }
            self.conn.process(|req| dispatch.call(req));
            while let Some(pending) = self.conn.take_pending() {
                watch(pending);
            }
            while self.writable && self.conn.wants_write() {
                match self.stream.write(self.conn.output()) {
                    Ok(n) => {
                        self.conn.wrote(n);
                        progress = true;
                    }
                    Err(e) if would_block(&e) => self.writable = false,
                    Err(e) if interrupted(&e) => {}
                    Err(_) => return true,
                }
            }
            if self.conn.is_done() {
                return true;
            }
            if !progress {
                return false;
            }
        }
    }
}

fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}
