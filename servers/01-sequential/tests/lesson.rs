//! The lesson of server 01, asserted as behaviour: one slow request makes every other client
//! wait, because the only thread is busy with it.
//!
//! Client A asks for `/sleep?ms=500`; client B, connected after A, asks for `/hello`, which
//! costs microseconds. On a server with any concurrency B is answered at once; on 01 it is
//! answered only when A's request is done. The bound is generous (B waits at least 350 of the
//! 500 ms) so that a slow machine cannot make the test flaky, only a concurrent server can.

use std::time::{Duration, Instant};

use flash_conformance::lesson::{slowloris_in_process, SLOW_HEADER_TIMEOUT};
use flash_conformance::{TestServer, Wire};

#[test]
fn a_slow_request_delays_every_other_client() {
    let server = TestServer::start(flash_01_sequential::serve);
    let mut slow = Wire::connect(server.addr());
    // `close`, so that once its answer is sent, A does not go on holding the only thread.
    slow.send("GET /sleep?ms=500 HTTP/1.1\r\nHost: flash\r\nConnection: close\r\n\r\n");

    // B connects after A, so it waits behind A in the accept queue.
    let mut quick = Wire::connect(server.addr());
    let asked = Instant::now();
    let hello = quick.roundtrip("GET /hello HTTP/1.1\r\nHost: flash\r\n\r\n");
    let waited = asked.elapsed();
    hello.assert_status(200);
    assert!(
        waited >= Duration::from_millis(350),
        "/hello took {waited:?}: it should have waited for the /sleep ahead of it"
    );

    let res = slow.response();
    res.assert_status(200);
    assert_eq!(res.text(), "slept 500 ms\n");
    server.stop();
}

/// A thousand clients trickling a request head at one byte a second shut everyone else out:
/// the one thread waits on the first until `--header-timeout` cuts it, then takes the next slow
/// one from the accept queue, and the fresh client queues behind all of them (1,000 × 2 s here).
#[test]
fn a_thousand_slow_clients_deny_service_past_the_header_timeout() {
    let seen = slowloris_in_process(flash_01_sequential::serve, |_| {}, SLOW_HEADER_TIMEOUT * 2);
    seen.assert_denied(SLOW_HEADER_TIMEOUT);
    assert!(seen.cut() <= 3, "{}", seen.summary());
}
