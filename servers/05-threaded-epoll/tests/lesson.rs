//! Server 05's character: the loop hands slow work to its pool and keeps serving.

use std::time::Duration;

use flash_conformance::lesson::{cpu_units_for, hellos_during, slowloris_in_process, SLOW_HEADER_TIMEOUT, SLOW_RUN};
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

/// A thousand clients trickling a request head at one byte a second deny nobody: each costs the
/// loop a connection's state and a read a second, and `--header-timeout` cuts them all.
#[test]
fn a_thousand_slow_clients_deny_nobody_and_are_cut_at_the_header_timeout() {
    slowloris_in_process(flash_05_threaded_epoll::serve, |_| {}, SLOW_RUN).assert_not_denied(SLOW_HEADER_TIMEOUT);
}

/// The accept loop is free while requests run, so a shutdown closes the listener at once: a
/// client arriving while an in-flight request finishes is refused, not reset later.
#[test]
fn a_newcomer_during_shutdown_is_refused_at_once() {
    flash_conformance::cases::listener_closes_at_shutdown(flash_05_threaded_epoll::serve);
}
