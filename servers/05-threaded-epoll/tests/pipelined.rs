//! Server 05 hands a whole pipelined batch to its pool at once: the requests behind a deferred
//! answer are not held up by it, yet the answers still come back in request order.

use std::time::{Duration, Instant};

use flash_conformance::{TestServer, Wire};

#[test]
fn pipelined_sleeps_run_side_by_side_and_answer_in_order() {
    const SLEEPS: [u64; 4] = [400, 100, 300, 200];
    let server = TestServer::start_with(flash_05_threaded_epoll::serve, |c| c.threads = Some(4));
    let mut wire = Wire::connect(server.addr());
    let batch: String = SLEEPS.iter().map(|ms| format!("GET /sleep?ms={ms} HTTP/1.1\r\nHost: x\r\n\r\n")).collect();
    let started = Instant::now();
    wire.send(batch);
    for ms in SLEEPS {
        let res = wire.response();
        res.assert_status(200);
        assert_eq!(res.text(), format!("slept {ms} ms\n"), "answers come back in request order");
    }
    let took = started.elapsed();
    // One at a time they take 1,000 ms; side by side on four pool threads, the longest (400 ms).
    // The bound sits between the two with room for a busy 2-core machine.
    assert!(took < Duration::from_millis(850), "the batch took {took:?}: the sleeps ran one after another");
    server.stop();
}
