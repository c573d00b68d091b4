//! Time and lifecycle: a head that never finishes, a keep-alive client that never speaks again,
//! and a shutdown with a request in flight. Timeouts are shortened to a second so the cases are
//! quick, and checked with generous bounds: the lower bound proves a timer fired rather than an
//! instant refusal, the upper one is the read deadline.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use flash_common::server::Serve;
use flash_common::{App, Reply, Request};
use flash_demo::FlashApp;

use super::{assert_refusal, assert_serves, get};
use crate::server::TestServer;
use crate::wire::{Wire, DEADLINE};

/// The shortened timeout these cases configure.
const SHORT: Duration = Duration::from_secs(1);
/// How much of [`SHORT`] must have passed before the server acts: a timer, not a refusal.
const AT_LEAST: Duration = Duration::from_millis(500);

/// Half a request head, then silence: after `--header-timeout 1s` the server answers 408 and
/// closes, and goes on serving others.
pub fn slow_head_is_408(serve: Serve) {
    let server = TestServer::start_with(serve, |c| c.header_timeout = SHORT);
    let mut wire = Wire::connect(server.addr());
    let sent = Instant::now();
    wire.send("GET /hello HTTP/1.1\r\nHo");
    let res = wire.response();
    assert_refusal(&res, 408);
    assert!(sent.elapsed() >= AT_LEAST, "408 after {:?}, before the timeout could fire", sent.elapsed());
    wire.expect_closed();
    assert_serves(server.addr());
    server.stop();
}

/// A keep-alive client that goes quiet is closed after `--idle-timeout 1s`, without a response.
pub fn idle_keep_alive_is_closed(serve: Serve) {
    let server = TestServer::start_with(serve, |c| c.idle_timeout = SHORT);
    let mut wire = Wire::connect(server.addr());
    let res = wire.roundtrip(get("/hello"));
    res.assert_status(200);
    assert!(!res.says_close());
    let idle = Instant::now();
    wire.expect_closed();
    assert!(idle.elapsed() >= AT_LEAST, "closed after {:?} idle, before the timeout could fire", idle.elapsed());
    assert_serves(server.addr());
    server.stop();
}

/// A client that sends its request and closes its side at once (`printf ... | nc -N`) gets the
/// answer and a close right away, not after the idle timeout (10 s, twice [`DEADLINE`]). Its end
/// of stream often arrives with the request, in the same epoll event; an edge-triggered loop
/// that takes a short read for "nothing more to read" never reads the 0 that says so. Tried a few
/// times, since which way the bytes arrive is the network's choice.
pub fn half_close_is_answered_then_closed(addr: std::net::SocketAddr) {
    for _ in 0..5 {
        let mut wire = Wire::connect(addr);
        wire.send(get("/hello")).finish_sending();
        wire.response().assert_status(200);
        wire.expect_closed();
    }
}

/// The application, with a signal when a `/sleep` request reaches it: the one way to know from
/// outside that a request is in flight, without sleeping and hoping.
struct Announce {
    /// The real application.
    inner: FlashApp,
    /// Told the moment a `/sleep` request starts.
    started: mpsc::Sender<()>,
}

impl App for Announce {
    fn call(&self, req: &Request<'_>) -> Reply {
        if req.path() == "/sleep" {
            let _ = self.started.send(());
        }
        self.inner.call(req)
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// A server running `serve`, and a client whose `/sleep?ms=MS` has reached the application.
#[track_caller]
fn sleep_in_flight(serve: Serve, ms: u64) -> (TestServer, Wire) {
    let (started, in_flight) = mpsc::channel();
    let server = TestServer::start_app(
        serve,
        |_| {},
        move |setup| Ok(Arc::new(Announce { inner: FlashApp::launch(setup)?, started })),
    );
    let mut wire = Wire::connect(server.addr());
    wire.send(get(&format!("/sleep?ms={ms}")));
    if in_flight.recv_timeout(DEADLINE).is_err() {
        // Tell a server that answers the request elsewhere (02's CGI child: the case cannot see
        // it in flight) from one that never answers (a crash, a hang).
        let res = wire.response();
        panic!("the /sleep request was answered ({}) without reaching the application's call", res.status);
    }
    (server, wire)
}

/// Shutdown with `/sleep?ms=300` in flight: the response still arrives whole, the connection is
/// then closed, and `serve` returns `Ok`.
pub fn graceful_shutdown_finishes_in_flight(serve: Serve) {
    let (server, mut wire) = sleep_in_flight(serve, 300);
    server.trigger_shutdown();
    let res = wire.response();
    res.assert_status(200);
    assert_eq!(res.text(), "slept 300 ms\n");
    wire.expect_closed();
    server.stop();
}

/// Shutdown with `/sleep?ms=3000` in flight: the listener closes at once, so a client arriving
/// while the request finishes is refused ("connection refused", as nginx does), not accepted by
/// the kernel and reset when the process exits. Not in the suite: a server whose one thread is
/// running the handler (01, 02, 04, 07, 08) notices the shutdown only when it returns; the lesson
/// tests of the servers whose accept loop stays free (03, 05, 06) call it.
pub fn listener_closes_at_shutdown(serve: Serve) {
    let (server, mut wire) = sleep_in_flight(serve, 3000);
    let addr = server.addr();
    server.trigger_shutdown();
    // Well inside the 3 s the request still has to run.
    crate::wait::until("a newcomer to be refused", Duration::from_millis(2500), || match std::net::TcpStream::connect(
        addr,
    ) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(()),
        _ => None,
    });
    wire.response().assert_status(200);
    server.stop();
}
