//! Server 02's character: every request is a new process. (Its other character, a client
//! waiting behind another, is 01's, and 01's lesson tests show it.)

use std::collections::HashSet;
use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::TestServer;

#[test]
fn each_request_is_served_by_a_new_process() {
    let server = TestServer::start(flash_02_fork_exec_cgi::serve);
    // One keep-alive connection: the connection is the same, the process never is.
    let mut client = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    let mut pids = HashSet::new();
    for _ in 0..20 {
        let res = client.get("/cgi-bin/env.sh").unwrap();
        assert_eq!(res.status, 200);
        let text = res.text();
        let pid: u32 = text
            .lines()
            .find_map(|l| l.strip_prefix("pid="))
            .and_then(|p| p.parse().ok())
            .expect("env.sh prints its pid");
        assert_ne!(pid, std::process::id(), "a request was answered inside the server's process");
        assert!(pids.insert(pid), "process {pid} answered two requests");
    }
    drop(client);
    server.stop();
}
