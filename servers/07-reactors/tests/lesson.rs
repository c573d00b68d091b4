//! Server 07's character: one loop per core, and the kernel spreads connections over them.

use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::lesson::{hold_idle, slowloris_in_process, SLOW_HEADER_TIMEOUT, SLOW_RUN};
use flash_conformance::TestServer;

#[test]
fn connections_are_spread_over_both_reactors() {
    let server = TestServer::start_with(flash_07_reactors::serve, |c| c.threads = Some(2));
    // SO_REUSEPORT hashes each connection's addresses; 64 connections land on both listeners
    // with overwhelming probability (all on one: 2 × 2^-64).
    let held = hold_idle(server.addr(), 64);
    let mut c = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    let status: serde_json::Value = serde_json::from_slice(&c.get("/server-status").unwrap().body).unwrap();
    let workers = status["workers"].as_array().expect("workers in /server-status");
    assert_eq!(workers.len(), 2, "{status}");
    let total: u64 = workers.iter().map(|w| w["connections"].as_u64().unwrap()).sum();
    assert_eq!(total, 65, "{status}");
    drop(held);
    server.stop();
}

/// A thousand clients trickling a request head at one byte a second deny nobody: each costs the
/// loop a connection's state and a read a second, and `--header-timeout` cuts them all.
#[test]
fn a_thousand_slow_clients_deny_nobody_and_are_cut_at_the_header_timeout() {
    slowloris_in_process(flash_07_reactors::serve, |_| {}, SLOW_RUN).assert_not_denied(SLOW_HEADER_TIMEOUT);
}
