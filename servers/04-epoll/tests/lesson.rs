//! Server 04's character: one thread holds thousands of clients, and one slow handler stalls
//! them all.

use flash_conformance::lesson::{
    cpu_request_stalls_hello, idle_clients_cost_nothing, slowloris_in_process, SLOW_HEADER_TIMEOUT, SLOW_RUN,
};
use flash_conformance::TestServer;

#[test]
fn a_cpu_request_delays_hello() {
    let server = TestServer::start(flash_04_epoll::serve);
    // The loop's one thread is busy hashing: a /hello sent meanwhile waits for most of it.
    cpu_request_stalls_hello(server.addr());
    server.stop();
}

#[test]
fn two_thousand_idle_connections_are_held_while_hello_answers() {
    let server = TestServer::start(flash_04_epoll::serve);
    // A newcomer is served at once: 2,000 idle clients cost the loop nothing while they are idle.
    idle_clients_cost_nothing(server.addr(), 2000);
    server.stop();
}

/// A thousand clients trickling a request head at one byte a second deny nobody: each costs the
/// loop a connection's state and a read a second, and `--header-timeout` cuts them all.
#[test]
fn a_thousand_slow_clients_deny_nobody_and_are_cut_at_the_header_timeout() {
    slowloris_in_process(flash_04_epoll::serve, |_| {}, SLOW_RUN).assert_not_denied(SLOW_HEADER_TIMEOUT);
}
