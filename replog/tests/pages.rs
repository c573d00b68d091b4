//! `flash-replog demo` and the two pages, end to end: the demo starts a cluster (a primary with
//! two secondaries, or three peers), headless Chromium opens the page a newcomer would open, the
//! page's self-test writes through it and records what it saw, and SIGTERM to the demo stops
//! every node cleanly.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::browser::{chromium, dump_dom};
use flash_conformance::process::ChildServer;
use flash_conformance::wait::until_true;

/// Starts `flash-replog demo <args>` with its logs in `dir`.
fn demo(dir: &Path, args: &[&str]) -> ChildServer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-replog"));
    cmd.arg("demo").args(args).arg("--data-dir").arg(dir.join("data")).current_dir(dir);
    ChildServer::spawn(cmd, dir)
}

/// The `<body ...>` tag of a dumped DOM, where the pages record their self-test.
fn body_tag(dom: &str) -> &str {
    let start = dom.find("<body").expect("a body");
    &dom[start..start + dom[start..].find('>').unwrap()]
}

fn get(addr: std::net::SocketAddr, target: &str) -> serde_json::Value {
    let mut c = Client::connect(addr, Duration::from_secs(30)).unwrap();
    serde_json::from_slice(&c.get(target).unwrap().body).unwrap()
}

#[test]
fn the_cluster_page_writes_with_w3_through_the_demo() {
    assert!(chromium().is_file()); // fail first, and clearly, when the browser is missing
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = demo(tmp.path(), &["--heartbeat-ms", "100"]);
    let addr = cluster.addr();
    until_true("both secondaries healthy", Duration::from_secs(30), || {
        let h = get(addr, "/health");
        h["nodes"].as_array().unwrap().iter().all(|n| n["status"] == "healthy")
    });
    let profile = tempfile::tempdir().unwrap();
    let dom = dump_dom(&format!("http://{addr}/?selftest=3"), profile.path(), Duration::from_secs(20));
    let body = body_tag(&dom);
    assert!(body.contains("data-selftest=\"done\""), "the page ran its self-test: {body}");
    assert!(body.contains("data-selftest-status=\"201\""), "the w=3 write succeeded: {body}");
    assert!(body.contains("data-selftest-to=\"3\""), "registered on all three nodes: {body}");
    assert!(body.contains("data-messages=\"1\""), "and listed: {body}");
    // Rows are counted by their ids (the script holds the row's template too).
    assert_eq!(dom.matches("data-node=\"127.0.0.1:").count(), 3, "a row per node");
    assert!(dom.contains("written by the page"));
    assert!(!dom.contains("src=\"http") && !dom.contains("href=\"http://cdn"), "nothing from the network");
    // The message is on every node (the secondaries' URLs come from the primary's /health).
    for node in get(addr, "/health")["nodes"].as_array().unwrap() {
        let url: std::net::SocketAddr = node["url"].as_str().unwrap().trim_start_matches("http://").parse().unwrap();
        assert_eq!(get(url, "/messages")["data"][0]["message"], "written by the page");
    }
    assert!(cluster.terminate().success(), "the demo stops its nodes and exits 0");
    let log = cluster.stderr_log();
    assert_eq!(log.matches(" stopped").count(), 3, "every node stopped cleanly: {log}");
}

#[test]
fn the_logging_page_adds_and_reads_both_views_through_the_demo() {
    assert!(chromium().is_file());
    let tmp = tempfile::tempdir().unwrap();
    let mut peers = demo(tmp.path(), &["--peers", "3", "--heartbeat-ms", "100", "--sta-ms", "1000"]);
    let addr = peers.addr();
    until_true("every peer healthy", Duration::from_secs(30), || {
        let h = get(addr, "/health");
        h["peers"].as_array().unwrap().iter().all(|p| p["status"] == "healthy")
    });
    let profile = tempfile::tempdir().unwrap();
    let dom = dump_dom(&format!("http://{addr}/?selftest=3"), profile.path(), Duration::from_secs(20));
    let body = body_tag(&dom);
    assert!(body.contains("data-selftest=\"done\""), "{body}");
    assert!(body.contains("data-fast=\"3\"") && body.contains("data-consistent=\"3\""), "{body}");
    assert!(body.contains("data-by=\"watermarks\""), "every peer up: safe before STA: {body}");
    assert_eq!(dom.matches("<option value=\"http://127.0.0.1:").count(), 3, "the peer picker lists the three peers");
    assert!(dom.contains("Log 3 from peer 0"), "logs are numbered as the original numbers them");
    assert!(dom.contains(" ms, safe by watermarks)"), "the latency is shown");
    assert!(peers.terminate().success());
}
