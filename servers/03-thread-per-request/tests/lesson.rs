//! Server 03's character: clients no longer wait for each other, and every client holds a thread.

use std::time::Duration;

use flash_conformance::lesson::{
    all_still_served, hellos_during, hold_idle, proc_status, slowloris, SLOW_CROWD, SLOW_HEADER_TIMEOUT, SLOW_RUN,
};
use flash_conformance::process::ChildServer;
use flash_conformance::wait::{until, until_true};
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

/// A thousand clients trickling a request head at one byte a second deny nobody: each holds a
/// thread of its own until `--header-timeout` cuts it. What that costs is measured on the real
/// binary, from outside: a thread per slow client, and the resident memory they take.
#[test]
fn a_thousand_slow_clients_hold_a_thousand_threads_and_deny_nobody() {
    let scratch = tempfile::tempdir().unwrap();
    let timeout = format!("{}ms", SLOW_HEADER_TIMEOUT.as_millis());
    let binary = env!("CARGO_BIN_EXE_flash-03-thread-per-request").as_ref();
    let mut server =
        ChildServer::start(binary, &scratch.path().join("results"), scratch.path(), &["--header-timeout", &timeout]);
    let pid = server.pid();
    let idle = proc_status(pid);
    let (seen, held) = slowloris(server.addr(), SLOW_CROWD, SLOW_RUN, || {
        until("a thread per slow client", Duration::from_secs(20), || {
            let now = proc_status(pid);
            (now.threads >= idle.threads + SLOW_CROWD).then_some(now)
        })
    });
    let per_client = (held.rss_kib.saturating_sub(idle.rss_kib)) as f64 / SLOW_CROWD as f64;
    eprintln!(
        "03 with {SLOW_CROWD} slow clients: {} threads, {} KiB resident (idle: {} threads, {} KiB), \
         {per_client:.1} KiB per slow client; {}",
        held.threads,
        held.rss_kib,
        idle.threads,
        idle.rss_kib,
        seen.summary()
    );
    seen.assert_not_denied(SLOW_HEADER_TIMEOUT);
    // Cut, each slow client's thread ends: the cost lasts as long as the crowd.
    until_true("the slow clients' threads to end", Duration::from_secs(20), || {
        proc_status(pid).threads < idle.threads + 10
    });
    assert!(server.terminate().success());
}

/// The accept loop is free while requests run, so a shutdown closes the listener at once: a
/// client arriving while an in-flight request finishes is refused, not reset later.
#[test]
fn a_newcomer_during_shutdown_is_refused_at_once() {
    flash_conformance::cases::listener_closes_at_shutdown(flash_03_thread_per_request::serve);
}
