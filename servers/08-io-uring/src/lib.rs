//! # Server 08: an io_uring loop per core
//!
//! # Model
//! One thread per core owns an io_uring and the clients its listener accepts: it tells the kernel
//! once "accept on this socket" and "receive on this one", and from then on the kernel does the
//! reading and hands back completions ("here are 37 bytes for client 12"), not readiness. Each
//! round submits every answer as a send and waits for the next completions in one
//! `io_uring_enter`, so the syscalls per request fall as the load rises. The catch is 04's: while
//! the thread runs one handler, its clients wait, so one `/cpu` or `/sleep` stalls them all.
//!
//! # Changes from 04
//! Readiness becomes completion. The listener gets one multishot accept and each client one
//! multishot receive whose bytes land in a ring of buffers shared by all the loop's clients (see
//! [`ring`]); they are copied into the client's `Conn`. A send holds its bytes until it completes,
//! and the `Conn`'s output may move as soon as it is handed back, so the answers are copied out
//! to the client's own send buffer first (the `Conn`'s buffer contract). Closing a client means
//! cancelling its operations and forgetting it only when the kernel has let go. The shutdown pipe is polled and the wake-up
//! for late answers is an eventfd read, both by the ring. `serve` runs one loop per core, as 07.
//!
//! # Limits
//! Everything a handler does still happens on the loop's thread, as in 04. io_uring may be
//! forbidden (seccomp in containers) or missing (kernels before 6.1): [`available`] says why.

use std::collections::HashMap;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flash_04_epoll::dispatch::{self, Dispatch};
use flash_04_epoll::later::Later;
use flash_07_reactors::on_every_core;
use flash_common::server::accept_failed;
use flash_common::{Conn, Pending, Request, Shutdown, Site};
use io_uring::types::{CancelBuilder, Fd};
use io_uring::{cqueue, opcode};
use nix::libc;
use nix::sys::eventfd::{EfdFlags, EventFd};

mod ring;
use ring::{Ring, BUF_GROUP, CANCEL};

/// The multishot accept's user data.
const ACCEPT: u64 = u64::MAX;
/// The poll on the shutdown pipe.
const SHUTDOWN: u64 = u64::MAX - 1;
/// The read of the eventfd that handlers answering later write.
const WAKE: u64 = u64::MAX - 2;
/// A client's operations carry its token shifted left once, and in the low bit which one it is.
const SEND: u64 = 1;
/// How often deadlines are checked; a timeout fires up to this late.
const SWEEP: Duration = Duration::from_secs(1);

/// Serves with one io_uring loop per core (`--threads`) until `shutdown` is triggered.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    on_every_core(listener, &site, &shutdown, |listener, id| run_ring(listener, &site, &shutdown, id))
}

/// Whether io_uring can serve on this machine, and if not, why, in one line: what the binary
/// prints before it exits, and what the tests print when they skip.
pub fn available() -> io::Result<()> {
    // Tried on a thread of its own, which then exits: closing a ring sends a task-work signal to
    // every thread that used it, which would interrupt (EINTR) the caller's next blocking read.
    let check = std::thread::spawn(|| Ring::new().map(drop));
    check.join().unwrap_or_else(|_| Err(io::Error::other("the io_uring check panicked")))
}

/// One client: its socket, its HTTP state, and which of its operations the kernel holds.
struct Client {
    /// The socket; closed when the client is forgotten, once no operation on it is in flight.
    stream: TcpStream,
    /// The sans-I/O HTTP state.
    conn: Conn,
    /// A multishot receive is armed (its last completion has not come).
    receiving: bool,
    /// A cancellation of the receive is on its way (the `Conn` wants no more bytes for now).
    pausing: bool,
    /// A send of `out[sent..]` is in flight.
    sending: bool,
    /// Answers copied out of the `Conn`, whose output may move once handed back, into a buffer
    /// that stays put while the kernel sends from it: untouched while `sending`.
    out: Vec<u8>,
    /// How much of `out` the kernel has sent; both start over once all of it is.
    sent: usize,
    /// Finished (or broken): cancel what is in flight, then forget the client.
    done: bool,
    /// The cancellation of every operation on the socket has been pushed.
    cancelled: bool,
}

/// Runs one io_uring loop over `listener` until `shutdown`. `worker` names the loop in
/// `/server-status`.
pub fn run_ring(listener: TcpListener, site: &Site, shutdown: &Shutdown, worker: usize) -> io::Result<()> {
    let mut dispatch = |req: &Request<'_>| site.call(req);
    // Declared before the ring, so dropped after it: on any early return the ring first makes
    // the kernel let go of what its operations point at (the clients' output, `wake_buf`).
    // Tokens are never reused, so a completion or a late answer can never reach the wrong client.
    let mut clients: HashMap<u64, Client> = HashMap::new();
    let mut wake_buf = Box::new(0u64);
    let eventfd = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?);
    let later = {
        let eventfd = eventfd.clone();
        Later::with_waker(move || {
            let _ = eventfd.write(1);
        })
    };
    let mut ring = Ring::new()?;
    // Blocking, so that the kernel waits for connections instead of failing with EAGAIN.
    listener.set_nonblocking(false)?;
    let mut listener = Some(listener);
    let mut accepting = false;
    let mut stopping = false;
    let mut waking = true;
    ring.push(opcode::PollAdd::new(Fd(shutdown.fd().as_raw_fd()), libc::POLLIN as u32).build().user_data(SHUTDOWN));
    arm_wake(&mut ring, &eventfd, &mut wake_buf);
    let mut next_token = 0;
    let mut next_sweep = Instant::now() + SWEEP;
    let mut cqes = Vec::new();

    loop {
        if let Some(l) = listener.as_ref().filter(|_| !accepting && !stopping) {
            // One request for every connection to come; it ends only on an error or a cancel.
            ring.push(opcode::AcceptMulti::new(Fd(l.as_raw_fd())).build().user_data(ACCEPT));
            accepting = true;
        }
        site.flush_log(); // This round's access log lines, in one write, before we sleep.
        ring.submit_and_wait(next_sweep.saturating_duration_since(Instant::now()))?;
        ring.completions(&mut cqes);
        for cqe in cqes.drain(..) {
            let (res, flags) = (cqe.result(), cqe.flags());
            match cqe.user_data() {
                ACCEPT => {
                    accepting &= cqueue::more(flags);
                    if stopping {
                        if !accepting {
                            // The kernel has let go of the listener: closing it now refuses newcomers.
                            listener = None;
                        }
                        if res < 0 {
                            continue;
                        }
                    } else if res < 0 {
                        // Out of descriptors, the accept has ended and is asked again next round,
                        // after the clients (only they can free a descriptor) have had their turn.
                        accept_failed(io::Error::from_raw_os_error(-res))?;
                        continue;
                    }
                    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
                    let stream = unsafe { TcpStream::from_raw_fd(res) };
                    let Ok(peer) = stream.peer_addr() else { continue };
                    stream.set_nodelay(true)?;
                    site.status().accepted(worker);
                    let token = next_token;
                    next_token += 1;
                    let mut conn = Conn::new(site, peer);
                    if stopping {
                        conn.shutdown();
                    }
                    clients.insert(token, Client::new(stream, conn));
                    drive(&mut clients, token, &mut ring, &mut dispatch, &later);
                }
                SHUTDOWN => {
                    // Stop accepting (the listener closes once the kernel lets go of it), and tell
                    // every client; idle ones close now, busy ones after their answer.
                    stopping = true;
                    if accepting {
                        ring.push(opcode::AsyncCancel::new(ACCEPT).build().user_data(CANCEL));
                    } else {
                        listener = None;
                    }
                    clients.retain(|&token, c| {
                        c.conn.shutdown();
                        !c.drive(token, &mut ring, &mut dispatch, |p| later.watch(p, token))
                    });
                }
                WAKE => {
                    for (token, answers) in later.take() {
                        if let Some(c) = clients.get_mut(&token) {
                            c.conn.complete_all(answers);
                        }
                        drive(&mut clients, token, &mut ring, &mut dispatch, &later);
                    }
                    waking = res != -libc::ECANCELED;
                    if waking {
                        arm_wake(&mut ring, &eventfd, &mut wake_buf);
                    }
                }
                CANCEL => {}
                op => {
                    let token = op >> 1;
                    match clients.get_mut(&token) {
                        Some(c) if op & SEND == SEND => c.sent(res),
                        Some(c) => c.received(res, flags, &mut ring),
                        None => continue,
                    }
                    drive(&mut clients, token, &mut ring, &mut dispatch, &later);
                }
            }
        }
        let now = Instant::now();
        if now >= next_sweep {
            // One pass a second over all clients, no syscall each: cheap even for 10,000.
            clients.retain(|&token, c| match c.conn.deadline() {
                Some(d) if d <= now && !c.done => {
                    c.conn.timed_out();
                    // A send stuck this long means the client stopped reading: give up on it.
                    c.done = c.sending;
                    !c.drive(token, &mut ring, &mut dispatch, |p| later.watch(p, token))
                }
                _ => true,
            });
            next_sweep = now + SWEEP;
        }
        dispatch.end_of_batch(); // As in 04: a Dispatch that batches (05's) sends its round now.
        if listener.is_none() && clients.is_empty() {
            // Nothing left to serve: stop reading the eventfd, and return once the kernel holds
            // nothing of ours.
            if waking {
                ring.push(opcode::AsyncCancel::new(WAKE).build().user_data(CANCEL));
                waking = false;
            }
            if !ring.busy() {
                return Ok(());
            }
        }
    }
}

/// Asks the ring to read the eventfd that handlers answering later write.
fn arm_wake(ring: &mut Ring, eventfd: &EventFd, buf: &mut Box<u64>) {
    let read = opcode::Read::new(Fd(eventfd.as_raw_fd()), (&mut **buf as *mut u64).cast(), 8);
    // SAFETY: `buf` is boxed, so it does not move, and `run_ring` drops it only after the ring,
    // which waits for (or cancels) every operation before it goes.
    unsafe { ring.push_with_buffer(read.build().user_data(WAKE)) }
}

/// Makes all the progress client `token` allows, and forgets it once it is done and the kernel
/// holds nothing of it (dropping the stream then closes the socket).
fn drive<D>(clients: &mut HashMap<u64, Client>, token: u64, ring: &mut Ring, dispatch: &mut D, later: &Later<u64>)
where
    D: dispatch::Dispatch,
{
    if clients.get_mut(&token).is_some_and(|c| c.drive(token, ring, dispatch, |p| later.watch(p, token))) {
        clients.remove(&token);
    }
}

impl Client {
    fn new(stream: TcpStream, conn: Conn) -> Client {
        Client {
            stream,
            conn,
            receiving: false,
            pausing: false,
            sending: false,
            out: Vec::new(),
            sent: 0,
            done: false,
            cancelled: false,
        }
    }

    /// A completion of the multishot receive: copies the bytes out of the provided buffer into
    /// the `Conn` (the copy the `Conn`'s buffer contract costs), and gives the buffer back.
    fn received(&mut self, res: i32, flags: u32, ring: &mut Ring) {
        self.receiving &= cqueue::more(flags);
        if let Some(bid) = cqueue::buffer_select(flags) {
            let mut data = ring.received(bid, res.max(0) as usize);
            while !data.is_empty() {
                let room = self.conn.read_buf();
                let n = room.len().min(data.len());
                room[..n].copy_from_slice(&data[..n]);
                self.conn.received(n);
                data = &data[n..];
            }
            ring.recycle(bid);
        }
        match -res {
            0 => self.conn.received(0),
            // Out of provided buffers, or paused: `drive` asks again when the `Conn` wants bytes.
            libc::ENOBUFS | libc::ECANCELED => {}
            e if e > 0 => self.done = true,
            _ => {}
        }
    }

    /// A completion of the send of `out[sent..]`: a short send leaves the rest for the next one.
    fn sent(&mut self, res: i32) {
        self.sending = false;
        match usize::try_from(res) {
            Ok(n) => self.sent += n,
            Err(_) => self.done = true,
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
    }

    /// Answers every complete request and sends all the answers in one operation; keeps a receive
    /// armed exactly while the `Conn` wants bytes. Returns true when the client can be forgotten.
    fn drive<D, W>(&mut self, token: u64, ring: &mut Ring, dispatch: &mut D, mut watch: W) -> bool
    where
        D: dispatch::Dispatch,
        W: FnMut((u64, Pending)),
    {
        let fd = Fd(self.stream.as_raw_fd());
        if !self.done {
            self.conn.process(|req| dispatch.call(req));
            while let Some(pending) = self.conn.take_pending() {
                watch(pending);
            }
        }
        if !self.sending && !self.done {
            if self.out.is_empty() && self.conn.wants_write() {
                // All sent: take every answer the `Conn` has, at once (the whole pipelined batch).
                self.out.extend_from_slice(self.conn.output());
                self.conn.wrote(self.out.len());
            }
            if self.sent < self.out.len() {
                let rest = &self.out[self.sent..];
                let send = opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32).flags(libc::MSG_NOSIGNAL);
                // SAFETY: `out` is not touched while `sending`, and the client that owns it is
                // forgotten only after this send's completion has come.
                unsafe { ring.push_with_buffer(send.build().user_data(token << 1 | SEND)) };
                self.sending = true;
            } else if self.conn.is_done() {
                self.done = true;
            } else {
                // Idle: its next bytes land in a provided buffer first, so it needs no buffer of
                // its own until then (nor a large answer's send buffer).
                self.conn.shed();
                if self.out.capacity() > 4096 {
                    self.out = Vec::new();
                }
            }
        }
        let wanted = !self.done && self.conn.wants_read();
        if wanted && !self.receiving {
            ring.push(opcode::RecvMulti::new(fd, BUF_GROUP).build().user_data(token << 1));
            (self.receiving, self.pausing) = (true, false);
        } else if !wanted && self.receiving && !self.pausing && !self.done {
            // Backpressure, as 04's not reading: bytes already on their way still arrive.
            ring.push(opcode::AsyncCancel::new(token << 1).build().user_data(CANCEL));
            self.pausing = true;
        }
        if self.done && (self.receiving || self.sending) && !self.cancelled {
            ring.push(opcode::AsyncCancel2::new(CancelBuilder::fd(fd).all()).build().user_data(CANCEL));
            self.cancelled = true;
        }
        self.done && !self.receiving && !self.sending
    }
}
