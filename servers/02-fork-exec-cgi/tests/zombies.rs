//! Every child is reaped: after a burst of requests that end every way a child can end (a clean
//! exit, a failure, a crash, a kill at the timeout), this process has no children left at all,
//! dead or alive. Alone in its test binary, so that no other test's children are counted.

use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::TestServer;

/// This process's children, as (pid, state) from `/proc/*/stat`.
fn children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        // The process may exit between the listing and the read; then it is nobody's child.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // After the name's closing parenthesis: state, then the parent's pid.
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        let mut fields = rest.split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            found.push((pid, state));
        }
    }
    found
}

#[test]
fn no_zombies_after_a_burst_of_200_requests() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [
        ("crash.sh", "#!/bin/sh\nkill -KILL $$\n"),
        ("fail.sh", "#!/bin/sh\nexit 1\n"),
        ("stuck.sh", "#!/bin/sh\nexec sleep 600\n"),
    ] {
        flash_conformance::script::install(&dir.path().join(name), body);
    }
    let status404 = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/cgi-bin/status404.sh")).unwrap();
    flash_conformance::script::install(&dir.path().join("status404.sh"), &status404);
    let cgi_dir = dir.path().to_path_buf();
    let server = TestServer::start_with(flash_02_fork_exec_cgi::serve, move |c| {
        c.cgi_dir = Some(cgi_dir);
        c.cgi_timeout = Duration::from_millis(300);
    });
    let mut client = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    let mut statuses = [0usize; 600];
    for i in 0..200 {
        let target = match i % 20 {
            0 => "/cgi-bin/crash.sh",
            1 => "/cgi-bin/fail.sh",
            2 if i < 60 => "/cgi-bin/stuck.sh",
            3..=9 => "/hello",
            _ => "/cgi-bin/status404.sh",
        };
        let res = client.get(target).unwrap();
        statuses[usize::from(res.status)] += 1;
    }
    // Every way a child ends happened: answers (200, 404), failures (502) and kills (504).
    assert!(
        statuses[200] > 0 && statuses[404] > 0 && statuses[502] == 20 && statuses[504] == 3,
        "{:?}",
        (statuses[200], statuses[404], statuses[502], statuses[504])
    );
    let left = children();
    assert!(left.is_empty(), "children left after 200 requests (pid, state): {left:?}");
    drop(client);
    server.stop();
}
