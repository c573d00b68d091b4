//! Server 02's character: every request is a new process. (Its other character, a client
//! waiting behind another, is 01's, and 01's lesson tests show it.)
//!
//! Seen both ways a request can go: a built-in route answered by `flash-cgi`, which names its
//! process in a `Flash-CGI-PID` field, and a script, `env.sh`, which prints its pid.

use std::collections::HashSet;
use std::time::Duration;

use flash_common::client::{Client, ClientResponse};
use flash_conformance::lesson::{slowloris_in_process, SLOW_HEADER_TIMEOUT};
use flash_conformance::TestServer;

/// Sends `target` 20 times on one keep-alive connection (the connection is the same, the
/// process never is) and asserts that 20 different processes answered, none of them the
/// server's own (which, in-process, is this test's).
fn twenty_processes(server: &TestServer, target: &str, pid: fn(&ClientResponse) -> Option<u32>) {
    let mut client = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    let mut pids = HashSet::new();
    for _ in 0..20 {
        let res = client.get(target).unwrap();
        assert_eq!(res.status, 200, "{target}: {}", res.text());
        let pid = pid(&res).unwrap_or_else(|| panic!("{target}: no pid in the answer"));
        assert_ne!(pid, std::process::id(), "{target} was answered inside the server's process");
        assert!(pids.insert(pid), "process {pid} answered {target} twice");
    }
}

#[test]
fn each_request_is_served_by_a_new_process() {
    let server = TestServer::start(flash_02_fork_exec_cgi::serve);
    twenty_processes(&server, "/hello", |res| res.header("flash-cgi-pid")?.parse().ok());
    twenty_processes(&server, "/cgi-bin/env.sh", |res| {
        res.text().lines().find_map(|l| l.strip_prefix("pid="))?.parse().ok()
    });
    server.stop();
}

/// A thousand clients trickling a request head at one byte a second shut everyone else out, as
/// on 01: the one thread waits on the first until `--header-timeout` cuts it, then takes the
/// next slow one, and the fresh client queues behind all of them. No process is even forked:
/// the server is still reading a head.
#[test]
fn a_thousand_slow_clients_deny_service_past_the_header_timeout() {
    let seen = slowloris_in_process(flash_02_fork_exec_cgi::serve, |_| {}, SLOW_HEADER_TIMEOUT * 2);
    seen.assert_denied(SLOW_HEADER_TIMEOUT);
    assert!(seen.cut() <= 3, "cut one at a time: {}", seen.summary());
}
