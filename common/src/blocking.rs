//! Driving a [`Conn`] over a blocking socket: the connection loop of servers 01, 02, 03 and 06.
//!
//! Those servers differ only in *which thread* runs this loop for a client (the one thread, a
//! thread per client, a pool), so the loop itself lives here, once. It waits with `poll(2)` on
//! two descriptors, the socket and the shutdown pipe, which is what lets a thread blocked on an
//! idle keep-alive client notice that the server is stopping, and lets the connection's deadline
//! be the poll timeout: no timer threads, no signals.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::conn::Conn;
use crate::reply::Reply;
use crate::request::Request;
use crate::shutdown::Shutdown;
use crate::site::Site;

/// Serves one client until it leaves, times out, or the server stops, answering each request
/// with `handler` (usually `|req| site.call(req)`; the CGI server passes its own).
pub fn serve_connection<F>(stream: TcpStream, site: &Site, shutdown: &Shutdown, handler: F) -> io::Result<()>
where
    F: FnMut(&Request<'_>) -> Reply,
{
    let result = drive(stream, site, shutdown, handler);
    // This thread may now wait for its next client for a long time: its log lines go out first.
    site.flush_log();
    result
}

/// The connection loop itself; see [`serve_connection`].
fn drive<F>(mut stream: TcpStream, site: &Site, shutdown: &Shutdown, mut handler: F) -> io::Result<()>
where
    F: FnMut(&Request<'_>) -> Reply,
{
    let peer = stream.peer_addr()?;
    // Responses are written whole; Nagle would only hold back the last segment of each.
    stream.set_nodelay(true)?;
    // A client that stops reading must not hold this thread forever in `write`.
    stream.set_write_timeout(Some(site.config().idle_timeout))?;
    let mut conn = Conn::new(site, peer);
    // Whether this connection has been told that the server is stopping. The shared flag cannot
    // say so: shutdown may begin while this thread is busy, with nobody polling the pipe.
    let mut told_to_stop = false;
    loop {
        // Answer and write until nothing more comes out. `process` pauses behind a file body (or
        // a full output buffer) with pipelined requests still buffered; no read will bring them
        // again, so waiting for the socket here would leave them unanswered until the timeout.
        loop {
            conn.process(&mut handler);
            if !conn.wants_write() {
                break;
            }
            flush(&mut stream, &mut conn)?;
        }
        if let Some((id, pending)) = conn.take_pending() {
            conn.complete(id, pending.wait());
            continue;
        }
        // After a flush, a connection that will not read is one that has finished.
        if conn.is_done() || !conn.wants_read() {
            return Ok(());
        }
        // The access log lines of what was just answered go out before the thread sleeps.
        site.flush_log();
        match wait(&stream, conn.deadline(), shutdown, !told_to_stop)? {
            Event::Readable => match stream.read(conn.read_buf()) {
                Ok(n) => conn.received(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset is how many clients say goodbye; it is not the server's error.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(e),
            },
            Event::TimedOut => conn.timed_out(),
            Event::Shutdown => {
                told_to_stop = true;
                conn.shutdown();
            }
        }
    }
}

/// Writes everything the connection has to say, file bodies included.
fn flush(stream: &mut TcpStream, conn: &mut Conn) -> io::Result<()> {
    loop {
        let out = conn.output();
        if out.is_empty() {
            return Ok(());
        }
        match stream.write(out) {
            Ok(n) => conn.wrote(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What woke a blocking connection up.
enum Event {
    /// The client sent something (or closed).
    Readable,
    /// The connection's deadline passed.
    TimedOut,
    /// The server is stopping.
    Shutdown,
}

/// Waits for the socket to be readable, the deadline, or (if `watch_shutdown`) shutdown,
/// whichever comes first.
fn wait(stream: &TcpStream, deadline: Option<Instant>, shutdown: &Shutdown, watch_shutdown: bool) -> io::Result<Event> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Event::TimedOut);
                }
                // Round up, so we never wake a millisecond early and spin.
                PollTimeout::try_from(left.as_millis() as u64 + 1).unwrap_or(PollTimeout::MAX)
            }
        };
        // Once this connection has seen shutdown, the pipe stays readable; polling it again would
        // spin, so the caller stops asking.
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN), PollFd::new(shutdown.fd(), PollFlags::POLLIN)];
        let n = if watch_shutdown { &mut fds[..] } else { &mut fds[..1] };
        match poll(n, timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if fds[0].any().unwrap_or(false) {
            return Ok(Event::Readable);
        }
        if watch_shutdown && fds[1].any().unwrap_or(false) {
            return Ok(Event::Shutdown);
        }
    }
}

/// Waits until `listener` has a connection to accept (true) or shutdown begins (false).
pub fn wait_for_client(listener: &impl AsFd, shutdown: &Shutdown) -> io::Result<bool> {
    loop {
        if shutdown.is_triggered() {
            return Ok(false);
        }
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN), PollFd::new(shutdown.fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if fds[0].any().unwrap_or(false) => return Ok(true),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
