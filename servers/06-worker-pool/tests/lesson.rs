//! Server 06's character: resources are bounded, and past them clients are told so at once.

use std::io::Read;
use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::lesson::{hold_idle, slowloris_in_process, SLOW_HEADER_TIMEOUT};
use flash_conformance::TestServer;

#[test]
fn with_one_worker_and_a_queue_of_one_the_third_client_gets_503() {
    let server = TestServer::start_with(flash_06_worker_pool::serve, |c| {
        c.threads = Some(1);
        c.queue = 1;
    });
    // The first client holds the one worker (keep-alive); the second waits in the queue.
    let first = hold_idle(server.addr(), 1);
    let mut second = std::net::TcpStream::connect(server.addr()).unwrap();
    // Connections are accepted in the order their handshakes completed, so the second is in the
    // queue before the third arrives: the third finds it full and must be refused at once.
    let mut third = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    let res = third.get("/hello").unwrap();
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.header("retry-after"), Some("1"));
    assert!(res.text().contains("queue"), "{}", res.text());
    // Freeing the worker lets the queued client through.
    drop(first);
    std::io::Write::write_all(&mut second, b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    second.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    second.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop();
}

/// A thousand clients trickling a request head at one byte a second deny service: two of them
/// hold the two workers until `--header-timeout` cuts them, the next 128 fill the queue, and
/// everyone else, the fresh client included, is refused with 503 at once. A cut worker only
/// takes the next slow client from the queue (128 / 2 × 2 s here before a fresh one's turn).
#[test]
fn a_thousand_slow_clients_deny_service_past_the_header_timeout() {
    let two_workers = |c: &mut flash_common::Config| c.threads = Some(2);
    slowloris_in_process(flash_06_worker_pool::serve, two_workers, SLOW_HEADER_TIMEOUT * 2)
        .assert_denied(SLOW_HEADER_TIMEOUT);
}

/// The accept loop is free while requests run, so a shutdown closes the listener at once: a
/// client arriving while an in-flight request finishes is refused, not reset later.
#[test]
fn a_newcomer_during_shutdown_is_refused_at_once() {
    flash_conformance::cases::listener_closes_at_shutdown(flash_06_worker_pool::serve);
}
