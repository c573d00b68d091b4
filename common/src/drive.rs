//! A [`Conn`] driven in memory the way a server drives it, for the checks that feed one the same
//! bytes in different pieces and compare what it said.
//!
//! Two checks need this loop: the split-anywhere property test (`demo/tests/split.rs`) and the
//! `conn` fuzz target (`fuzz/fuzz_targets/conn.rs`). Both feed bytes through
//! [`Conn::read_buf`] and [`Conn::received`] in the pieces they choose, answer and write the way
//! 04's event loop does, and compare [`Outcome`]s, so the loop lives here once; a copy in each
//! would drift, and then the two would no longer check the same thing.
//!
//! Deferred answers go through the real [`crate::reply`] machinery: the driver asks each
//! [`Pending`](crate::Pending) to call back into a queue, as an event loop does, and completes
//! the connection from that queue. When the responders are sent is the caller's choice (the
//! `release` hook), which is how the fuzz target completes them in a scrambled order.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::conn::Conn;
use crate::response::Response;
use crate::site::Site;

/// What a connection said and how it ended up: everything that must not depend on how its
/// input was split.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Everything written before the client's end of file, `Date` masked.
    pub out: Vec<u8>,
    /// `is_done()` once every byte was offered (before end of file).
    pub done: bool,
    /// `wants_read()` at the same point.
    pub wants_read: bool,
    /// `is_idle()` at the same point, if the connection still reads (once it stops reading, how
    /// much of the next request it had received before depends on the split, and is ignored).
    pub idle: bool,
    /// Everything written after the client's end of file, `Date` masked.
    pub out_after_eof: Vec<u8>,
    /// `is_done()` at the very end.
    pub done_after_eof: bool,
}

impl std::fmt::Display for Outcome {
    /// A readable summary for a failure message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "done={} wants_read={} idle={} done_after_eof={}\n  out: {}\n  after eof: {}",
            self.done,
            self.wants_read,
            self.idle,
            self.done_after_eof,
            show(&self.out),
            show(&self.out_after_eof)
        )
    }
}

/// One drive: the outcome, and the most memory the connection held on the way (which depends on
/// the split, so it is not part of the outcome).
#[derive(Debug)]
pub struct Run {
    /// What the connection said.
    pub outcome: Outcome,
    /// The largest capacity its input buffer reached.
    pub peak_input: usize,
    /// The largest capacity its output buffer reached.
    pub peak_output: usize,
}

/// Deferred answers that have arrived, by id, waiting to be completed on the connection.
type Arrived = Arc<Mutex<Vec<(u64, Response)>>>;

/// The connection and what the loop keeps beside it.
struct Driver<'a> {
    /// The connection under test.
    conn: Conn,
    /// Its site, whose application answers.
    site: &'a Site,
    /// The most bytes one write takes (a client reading slowly).
    write_max: usize,
    /// Deferred answers whose responders have sent, filled by `on_ready` callbacks.
    arrived: Arrived,
    /// Sends some deferred answers: called with `true` when nothing else can move, and must then
    /// send at least one if it holds any; returns whether it sent any.
    release: &'a mut dyn FnMut(bool) -> bool,
    /// See [`Run`].
    peak_input: usize,
    /// See [`Run`].
    peak_output: usize,
}

/// Feeds `pieces` to a fresh connection, each piece through as many reads as its buffer needs,
/// and stops offering bytes once the connection no longer wants any (as a server stops reading);
/// then ends the client's side if the connection still reads.
///
/// `release` decides when the application's deferred answers are sent (it holds their
/// responders): the driver calls it after every round, with `true` when nothing else can move.
/// An application that answers everything at once passes `&mut |_| false`.
pub fn drive<'p>(
    site: &Site,
    pieces: impl IntoIterator<Item = &'p [u8]>,
    write_max: usize,
    release: &mut dyn FnMut(bool) -> bool,
) -> Run {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("a valid address");
    let mut d = Driver {
        conn: Conn::new(site, peer),
        site,
        write_max,
        arrived: Arrived::default(),
        release,
        peak_input: 0,
        peak_output: 0,
    };
    let mut out = Vec::new();
    'feed: for mut piece in pieces {
        while !piece.is_empty() {
            if !d.conn.wants_read() {
                break 'feed;
            }
            let room = d.conn.read_buf();
            let n = room.len().min(piece.len());
            assert!(n > 0, "read_buf must offer room to a connection that wants to read");
            room[..n].copy_from_slice(&piece[..n]);
            d.conn.received(n);
            piece = &piece[n..];
            d.pump(&mut out);
        }
    }
    let (done, wants_read) = (d.conn.is_done(), d.conn.wants_read());
    let idle = wants_read && d.conn.is_idle();
    let mut out_after_eof = Vec::new();
    if wants_read {
        d.conn.received(0);
        d.pump(&mut out_after_eof);
    }
    let outcome = Outcome {
        out: mask_dates(out),
        done,
        wants_read,
        idle,
        out_after_eof: mask_dates(out_after_eof),
        done_after_eof: d.conn.is_done(),
    };
    Run { outcome, peak_input: d.peak_input, peak_output: d.peak_output }
}

impl Driver<'_> {
    /// Answers every complete request, completes the deferred answers that arrived, and writes
    /// everything, at most `write_max` bytes per write, until nothing moves and `release` has
    /// nothing left to send: the loop of an event-driven server (04).
    fn pump(&mut self, out: &mut Vec<u8>) {
        loop {
            let site = self.site;
            self.conn.process(|req| site.call(req));
            self.measure();
            while let Some((id, pending)) = self.conn.take_pending() {
                let arrived = Arc::clone(&self.arrived);
                pending.on_ready(move |res| arrived.lock().unwrap_or_else(PoisonError::into_inner).push((id, res)));
            }
            let mut moved = false;
            let arrived = std::mem::take(&mut *self.arrived.lock().unwrap_or_else(PoisonError::into_inner));
            for (id, res) in arrived {
                self.conn.complete(id, res);
                moved = true;
            }
            self.measure();
            loop {
                let chunk = self.conn.output();
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len().min(self.write_max);
                out.extend_from_slice(&chunk[..n]);
                self.conn.wrote(n);
                moved = true;
            }
            let released = (self.release)(!moved);
            if !moved && !released {
                return;
            }
        }
    }

    /// Records the buffers' sizes.
    fn measure(&mut self) {
        let (input, output) = self.conn.buffer_capacity();
        self.peak_input = self.peak_input.max(input);
        self.peak_output = self.peak_output.max(output);
    }
}

/// Replaces every `Date` value (always 29 bytes) by a fixed string, since the second may tick
/// between two runs that are compared.
pub fn mask_dates(mut out: Vec<u8>) -> Vec<u8> {
    const FIELD: &[u8] = b"\r\nDate: ";
    let mut i = 0;
    while let Some(at) = out[i..].windows(FIELD.len()).position(|w| w == FIELD) {
        let value = i + at + FIELD.len();
        let end = (value + 29).min(out.len());
        out[value..end].fill(b'#');
        i = end;
    }
    out
}

/// Bytes as an escaped string, with long runs of one byte written `{byte x count}`, so that a
/// failing input or output of many kilobytes still reads in a failure message.
pub fn show(bytes: &[u8]) -> String {
    let mut s = String::from("b\"");
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|&&b| b == bytes[i]).count();
        if run > 16 {
            s += &format!("{{{} x {run}}}", [bytes[i]].escape_ascii());
        } else {
            s += &bytes[i..i + run].escape_ascii().to_string();
        }
        i += run;
    }
    s + "\""
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{App, Hello};
    use crate::config::Config;
    use crate::reply::{deferred, Reply, Responder};
    use crate::request::Request;

    /// Defers every request and keeps the responders for the test to send.
    struct Later(Arc<Mutex<Vec<Responder>>>);

    impl App for Later {
        fn call(&self, _req: &Request<'_>) -> Reply {
            let (responder, pending) = deferred();
            self.0.lock().unwrap().push(responder);
            Reply::Later(pending)
        }
    }

    #[test]
    fn deferred_answers_are_completed_when_released() {
        let held = Arc::new(Mutex::new(Vec::new()));
        let site = Site::new(Config::for_tests(), Arc::new(Later(Arc::clone(&held)))).unwrap();
        let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        // Sent last first: the connection must still write them in request order.
        let mut release = |_stuck: bool| match held.lock().unwrap().pop() {
            Some(responder) => {
                responder.send(Response::text(200, "late"));
                true
            }
            None => false,
        };
        let run = drive(&site, [&input[..]], usize::MAX, &mut release);
        let out = String::from_utf8(run.outcome.out).unwrap();
        assert_eq!(out.matches("late").count(), 2, "{out}");
        assert!(run.outcome.wants_read && run.outcome.idle, "both answered, waiting for more");
    }

    #[test]
    fn split_and_whole_runs_agree_and_dates_are_masked() {
        let site = Site::new(Config::for_tests(), Arc::new(Hello)).unwrap();
        let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n";
        let whole = drive(&site, [&input[..]], usize::MAX, &mut |_| false);
        let split = drive(&site, input.chunks(3), 5, &mut |_| false);
        assert_eq!(whole.outcome, split.outcome, "\nwhole: {}\nsplit: {}", whole.outcome, split.outcome);
        assert!(whole.outcome.done && !whole.outcome.wants_read, "HTTP/1.0 without keep-alive closes");
        assert!(String::from_utf8_lossy(&whole.outcome.out).contains("Date: #############################\r\n"));
        assert!(whole.peak_input > 0 && whole.peak_output > 0);
    }

    #[test]
    fn show_shortens_runs() {
        assert_eq!(show(b"a\r\n"), "b\"a\\r\\n\"");
        assert_eq!(show(&[b'x'; 20]), "b\"{x x 20}\"");
    }
}
