//! Server 05 hands a whole connection to a pool thread: its pipelined requests run there one after
//! another and are answered in order, other connections are not held up by them, and a deferred
//! answer that comes back while its connection is away on a pool thread is kept for it.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use flash_common::{deferred, App, Body, Reply, Request, Response};
use flash_conformance::{TestServer, Wire};

/// `/block?ms=N` holds its pool thread for N ms; `/later` answers from another thread once the
/// test opens `gate` (a deferred answer, as the replicated log gives); anything else at once.
/// Each handler tells the test it has started through `started`.
struct Waits {
    /// Where each handler says it has started, with its path.
    started: Mutex<mpsc::Sender<String>>,
    /// Opened by the test to let `/later`'s answer go.
    gate: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl App for Waits {
    fn call(&self, req: &Request<'_>) -> Reply {
        let ms: u64 = req.query_param("ms").and_then(|m| m.parse().ok()).unwrap_or(0);
        let body =
            |what: &str| Response::new(200).with_body("text/plain", Body::Bytes(format!("{what} {ms}").into_bytes()));
        let _ = self.started.lock().unwrap().send(req.path().to_string());
        match req.path() {
            "/block" => {
                std::thread::sleep(Duration::from_millis(ms));
                Reply::Now(body("block"))
            }
            "/later" => {
                let (responder, pending) = deferred();
                let (answer, gate) = (body("later"), self.gate.clone());
                std::thread::spawn(move || {
                    let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
                    responder.send(answer);
                });
                Reply::Later(pending)
            }
            _ => Reply::Now(body("now")),
        }
    }
}

/// A server 05 with four pool threads running [`Waits`]; the test's ends of its channels.
fn start() -> (TestServer, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (started, starts) = mpsc::channel();
    let (open, gate) = mpsc::channel();
    let app = Waits { started: Mutex::new(started), gate: Arc::new(Mutex::new(gate)) };
    let server = TestServer::start_app(flash_05_threaded_epoll::serve, |c| c.threads = Some(4), |_| Ok(Arc::new(app)));
    (server, starts, open)
}

/// Waits (with a deadline) until the handler for `path` has started.
fn started(starts: &mpsc::Receiver<String>, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match starts.recv_timeout(left) {
            Ok(p) if p == path => return,
            Ok(_) => {}
            Err(e) => panic!("{path} never started: {e}"),
        }
    }
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n")
}

#[test]
fn a_pipelined_batch_holds_up_its_own_connection_only() {
    let (server, _starts, _open) = start();
    let mut slow = Wire::connect(server.addr());
    slow.send(get("/block?ms=600") + &get("/now"));
    let started = Instant::now();
    let mut other = Wire::connect(server.addr());
    let res = other.roundtrip(get("/now"));
    res.assert_status(200);
    let other_took = started.elapsed();
    for expected in ["block 600", "now 0"] {
        let res = slow.response();
        res.assert_status(200);
        assert_eq!(res.text(), expected, "answers come back in request order");
    }
    let slow_took = started.elapsed();
    // The other connection went to another pool thread; the slow one's second request waited
    // behind its first, on the thread that holds the connection. Bounds leave room for a busy
    // 2-core machine.
    assert!(other_took < Duration::from_millis(400), "another connection waited {other_took:?} for a blocked one");
    assert!(slow_took >= Duration::from_millis(600), "the batch took {slow_took:?}, less than its first request");
    server.stop();
}

#[test]
fn a_deferred_answer_that_arrives_while_its_connection_is_away_is_kept() {
    let (server, starts, open) = start();
    let mut wire = Wire::connect(server.addr());
    // First trip: the pool thread answers `/later` with a deferred answer and brings the
    // connection back; the loop watches for that answer.
    wire.send(get("/later"));
    started(&starts, "/later");
    // Second trip: the connection is away again, held for 800 ms by `/block`. Only a connection
    // the loop has taken back (and so watches the first answer for) can be handed out again.
    wire.send(get("/block?ms=800"));
    started(&starts, "/block");
    // The first answer arrives now, while its connection is away: the loop must keep it until
    // the connection is back, then write both answers in order.
    open.send(()).unwrap();
    for expected in ["later 0", "block 800"] {
        let res = wire.response();
        res.assert_status(200);
        assert_eq!(res.text(), expected, "answers come back in request order");
    }
    server.stop();
}

#[test]
fn a_request_that_arrives_while_its_connection_is_away_is_read() {
    let (server, starts, _open) = start();
    let mut wire = Wire::connect(server.addr());
    wire.send(get("/block?ms=500"));
    started(&starts, "/block");
    // The pool thread read the socket dry before it blocked; epoll reports these bytes once,
    // to the loop, while the connection is away. The loop must remember that and drive it again.
    wire.send(get("/now"));
    for expected in ["block 500", "now 0"] {
        let res = wire.response();
        res.assert_status(200);
        assert_eq!(res.text(), expected, "answers come back in request order");
    }
    server.stop();
}
