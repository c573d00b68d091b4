//! Server 08's character: 04's, on io_uring. One ring holds thousands of idle clients with no
//! buffer of the kernel's each, one slow handler stalls its ring's clients, and an answer that
//! comes later from another thread reaches its client through the eventfd the ring reads,
//! without the ring ever blocking. Each test skips, saying why, where io_uring is forbidden.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use flash_08_io_uring::{available, serve};
use flash_common::client::Client;
use flash_common::{deferred, App, Reply, Request, Responder, Response};
use flash_conformance::lesson::{
    cpu_request_stalls_hello, idle_clients_cost_nothing, slowloris_in_process, SLOW_HEADER_TIMEOUT, SLOW_RUN,
};
use flash_conformance::{runnable, TestServer, Wire};

#[test]
fn a_cpu_request_delays_hello_on_its_ring() {
    if !runnable(&[available]) {
        return;
    }
    let server = TestServer::start_with(serve, |c| c.threads = Some(1));
    // The ring's one thread is busy hashing: a /hello sent meanwhile waits for most of it.
    cpu_request_stalls_hello(server.addr());
    server.stop();
}

#[test]
fn two_thousand_idle_connections_are_held_while_hello_answers() {
    if !runnable(&[available]) {
        return;
    }
    let server = TestServer::start_with(serve, |c| c.threads = Some(1));
    // A newcomer is served at once: 2,000 idle clients, each with a receive armed, cost the ring
    // nothing while they are idle.
    idle_clients_cost_nothing(server.addr(), 2000);
    server.stop();
}

/// A thousand clients trickling a request head at one byte a second deny nobody: each costs the
/// ring a connection's state and a receive completion a second (no buffer of its own: the bytes
/// land in the shared provided buffers), and `--header-timeout` cuts them all.
#[test]
fn a_thousand_slow_clients_deny_nobody_and_are_cut_at_the_header_timeout() {
    if !runnable(&[available]) {
        return;
    }
    slowloris_in_process(serve, |c| c.threads = Some(1), SLOW_RUN).assert_not_denied(SLOW_HEADER_TIMEOUT);
}

/// `/late` answers later, through a responder the test holds; everything else is `/hello`'s.
struct LateApp {
    /// Where `/late` leaves its responder for the test to answer with.
    responders: mpsc::Sender<Responder>,
}

impl App for LateApp {
    fn call(&self, req: &Request<'_>) -> Reply {
        if req.path() != "/late" {
            return Reply::Now(Response::text(200, "Hello, world!"));
        }
        let (responder, pending) = deferred();
        self.responders.send(responder).expect("the test is waiting for the responder");
        Reply::Later(pending)
    }
}

#[test]
fn a_late_answer_comes_through_the_eventfd_while_the_ring_serves_others() {
    if !runnable(&[available]) {
        return;
    }
    let (tx, responders) = mpsc::channel();
    let app = Arc::new(LateApp { responders: tx });
    let server = TestServer::start_app(serve, |c| c.threads = Some(1), move |_| Ok(app));
    // A pipelined /hello behind /late must wait for it: answers go back in request order.
    let mut waiting = Wire::connect(server.addr());
    waiting.send("GET /late HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let responder = responders.recv_timeout(Duration::from_secs(10)).expect("/late reached the handler");

    // The ring is not blocked meanwhile: another client is served.
    let mut other = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    assert_eq!(other.get("/hello").unwrap().text(), "Hello, world!");

    // Answered from this thread, which is not the ring's: the eventfd wakes the ring.
    let answering = std::thread::spawn(move || responder.send(Response::text(200, "late")));
    assert_eq!(waiting.response().assert_status(200).text(), "late");
    assert_eq!(waiting.response().assert_status(200).text(), "Hello, world!");
    answering.join().unwrap();
    server.stop();
}
