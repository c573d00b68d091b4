//! Server 03's character: clients no longer wait for each other, and every client holds a thread.

use std::time::Duration;

use flash_conformance::lesson::{all_still_served, hellos_during, hold_idle};
use flash_conformance::TestServer;

#[test]
fn a_sleep_in_flight_does_not_delay_hello() {
    let server = TestServer::start(flash_03_thread_per_request::serve);
    let seen = hellos_during(server.addr(), "/sleep?ms=500");
    assert!(seen.slow >= Duration::from_millis(500), "{seen:?}");
    // On its own thread, /hello does not wait for the sleeping one (generous for a loaded box).
    assert!(seen.worst_hello() < Duration::from_millis(250), "a /hello waited {:?}", seen.worst_hello());
    server.stop();
}

#[test]
fn five_hundred_idle_connections_are_held() {
    let server = TestServer::start(flash_03_thread_per_request::serve);
    let held = hold_idle(server.addr(), 500);
    all_still_served(held);
    server.stop();
}

#[test]
fn past_max_threads_new_clients_get_503() {
    let server = TestServer::start_with(flash_03_thread_per_request::serve, |c| c.max_threads = 2);
    let held = hold_idle(server.addr(), 2);
    let mut third = flash_common::client::Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    let res = third.get("/hello").unwrap();
    assert_eq!(res.status, 503);
    assert_eq!(res.header("retry-after"), Some("1"));
    all_still_served(held);
    server.stop();
}
