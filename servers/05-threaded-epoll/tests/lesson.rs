//! Server 05's character: the loop hands slow work to its pool and keeps serving.

use std::time::Duration;

use flash_conformance::lesson::{cpu_units_for, hellos_during};
use flash_conformance::TestServer;

#[test]
fn a_cpu_request_does_not_delay_hello() {
    let server = TestServer::start_with(flash_05_threaded_epoll::serve, |c| c.threads = Some(2));
    let n = cpu_units_for(Duration::from_millis(600));
    let seen = hellos_during(server.addr(), &format!("/cpu?n={n}"));
    // /cpu burns a pool thread; the loop and the other pool thread keep answering /hello. The
    // bound leaves room for a 2-core machine running other tests at once.
    assert!(
        seen.worst_hello() < seen.slow / 3,
        "a /hello waited for /cpu: {:?} of {:?}",
        seen.worst_hello(),
        seen.slow
    );
    server.stop();
}
