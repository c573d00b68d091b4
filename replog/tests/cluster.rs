//! The primary/secondary log end to end, with real processes: the UCU task's self-check (write
//! concern, a secondary that starts late), the quorum that makes a primary read-only, catch-up
//! after a restart, and shutdown (with every secondary unreachable too).

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{get_json, json, message, messages, post, reserve_port, status_of, Node};
use flash_conformance::wait::until_true;
use nix::sys::signal::Signal;

/// Long enough for a loaded 2-core machine; a passing run takes a fraction of it.
const LIMIT: Duration = Duration::from_secs(30);

fn secondary(dir: &std::path::Path, port: u16, extra: &[&str]) -> Node {
    let mut args: Vec<String> = vec!["--role".into(), "secondary".into(), "--heartbeat-ms".into(), "100".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Node::start(dir, port, &args)
}

fn primary(dir: &std::path::Path, secondaries: &[String], extra: &[&str]) -> Node {
    let mut args: Vec<String> = vec!["--role".into(), "primary".into(), "--heartbeat-ms".into(), "100".into()];
    for s in secondaries {
        args.extend(["--secondary".into(), s.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Node::start(dir, 0, &args)
}

fn wait_healthy(primary: &Node, node: &Node) {
    let url = node.url();
    until_true(&format!("{url} healthy at the primary"), LIMIT, || status_of(primary.addr(), &url) == "healthy");
}

/// UCU's self-check: M with S1, M knows S2 which is not started; Msg1 w=1 ok; Msg2 w=2 ok;
/// Msg3 w=3 waits; Msg4 w=1 ok while Msg3 waits; start S2; Msg3 returns; S2 shows all four.
#[test]
fn ucu_self_check() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = secondary(&tmp.path().join("s1"), 0, &[]);
    let s2_port = reserve_port();
    let s2_url = format!("http://127.0.0.1:{s2_port}");
    let m = primary(&tmp.path().join("m"), &[s1.url(), s2_url.clone()], &[]);
    wait_healthy(&m, &s1);

    let r = post(m.addr(), "/messages?w=1", &message("Msg1"));
    assert_eq!(r.status, 201, "{}", r.text());
    let meta = &json(&r)["meta"];
    assert_eq!(meta["message_id"], 1);
    let r = post(m.addr(), "/messages?w=2", &message("Msg2"));
    assert_eq!(r.status, 201, "{}", r.text());
    let to = json(&r)["meta"]["registered_to"].as_array().unwrap().len();
    assert!(to >= 2, "w=2 is answered once two nodes hold it: {}", r.text());

    let (tx, rx) = mpsc::channel();
    let addr = m.addr();
    let msg3 = std::thread::spawn(move || {
        let r = post(addr, "/messages?w=3", &message("Msg3"));
        tx.send((r.status, r.text())).unwrap();
    });
    // Msg3 is accepted (and numbered 3) before Msg4 is sent: the primary's log shows it.
    until_true("Msg3 stored on the primary", LIMIT, || get_json(m.addr(), "/health")["last_id"] == 3);
    let r = post(m.addr(), "/messages?w=1", &message("Msg4"));
    assert_eq!(r.status, 201, "a w=1 write is not held up by a waiting w=3 write: {}", r.text());
    assert_eq!(json(&r)["meta"]["message_id"], 4);
    assert!(rx.try_recv().is_err(), "Msg3 must still be waiting for S2");

    let s2 = secondary(&tmp.path().join("s2"), s2_port, &["--primary", &m.url()]);
    let (status, body) = rx.recv_timeout(LIMIT).expect("Msg3 answers once S2 is up");
    assert_eq!(status, 201, "{body}");
    msg3.join().unwrap();
    let want: Vec<(u64, String)> = (1..=4).map(|i| (i, format!("Msg{i}"))).collect();
    until_true("S2 holds all four", LIMIT, || messages(s2.addr()) == want);
    assert_eq!(messages(s1.addr()), want);
    assert_eq!(messages(m.addr()), want);
}

/// A secondary whose stderr nobody reads any more (`... 2>&1 | head`, once `head` has exited)
/// starts, registers (a line it logs), replicates and acknowledges as any other. Its log lines
/// are lost, not the threads that write them: the cluster's supervisor once died of its first
/// `eprintln!` on a closed pipe (`flash-cluster`'s test of the same name).
#[test]
fn a_closed_stderr_costs_the_log_not_the_replication() {
    let tmp = tempfile::tempdir().unwrap();
    let s1_port = reserve_port();
    let s1_url = format!("http://127.0.0.1:{s1_port}");
    let m = primary(&tmp.path().join("m"), &[s1_url], &[]);
    let args: Vec<String> =
        ["--role", "secondary", "--heartbeat-ms", "100", "--primary", &m.url()].map(String::from).to_vec();
    let s1 = Node::start_with_stderr_closed(&tmp.path().join("s1"), s1_port, &args);
    wait_healthy(&m, &s1);
    for i in 1..=3 {
        let r = post(m.addr(), "/messages?w=2", &message(&format!("Msg{i}")));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let want: Vec<(u64, String)> = (1..=3).map(|i| (i, format!("Msg{i}"))).collect();
    assert_eq!(messages(s1.addr()), want);
}

/// A second node started on a data folder a running node holds (a restart while the old process
/// still lives) refuses to start, naming the folder and the holder, instead of numbering messages
/// the first one numbers too; once the first is gone (even by `kill -9`) the folder is free.
#[test]
fn a_data_folder_serves_one_node_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let first = primary(&tmp.path().join("m"), &[], &[]);
    assert_eq!(post(first.addr(), "/messages", &message("one")).status, 201);
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_flash-replog"));
    second.args(["--port", "0", "--quiet", "--role", "primary", "--data-dir"]).arg(tmp.path().join("m").join("data"));
    let (status, stdout, stderr) = flash_conformance::child::run_to_exit(&mut second, LIMIT);
    assert!(!status.success() && stdout.is_empty(), "it must not listen: {stderr}");
    let holder = first.server.pid().to_string();
    assert!(stderr.contains("in use by another process") && stderr.contains(&holder), "{stderr}");
    assert_eq!(post(first.addr(), "/messages", &message("two")).status, 201);
    let restarted = first.kill_and_restart();
    assert_eq!(messages(restarted.addr()), vec![(1, "one".to_string()), (2, "two".to_string())]);
}

/// A secondary that comes up behind by more than one delivery can carry (here 100 messages of
/// 2 KB, against `--max-body 64KiB` on every node) catches up in several deliveries, each under
/// the limit, instead of being sent one it must refuse, again and again.
#[test]
fn a_backlog_larger_than_a_delivery_is_caught_up() {
    let tmp = tempfile::tempdir().unwrap();
    let limit = ["--max-body", "64KiB"];
    let s1 = secondary(&tmp.path().join("s1"), 0, &limit);
    let s2_port = reserve_port();
    let m = primary(&tmp.path().join("m"), &[s1.url(), format!("http://127.0.0.1:{s2_port}")], &limit);
    wait_healthy(&m, &s1);
    let text = |i: u64| format!("{i:04}{}", "y".repeat(2000));
    for i in 1..=100 {
        let r = post(m.addr(), "/messages?w=2", &message(&text(i)));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let s2 = secondary(&tmp.path().join("s2"), s2_port, &limit);
    until_true("S2 to hold all 100", LIMIT, || get_json(s2.addr(), "/health")["last_id"] == 100);
    let held = messages(s2.addr());
    assert_eq!(held.first(), Some(&(1, text(1))));
    assert_eq!(held.last().map(|(id, t)| (*id, t.len())), Some((100, 2004)));
}

/// With 3 nodes and both secondaries down, writes get 503 and reads work; one back, writes work.
#[test]
fn quorum_makes_the_primary_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = secondary(&tmp.path().join("s1"), 0, &[]);
    let s2 = secondary(&tmp.path().join("s2"), 0, &[]);
    let m = primary(&tmp.path().join("m"), &[s1.url(), s2.url()], &[]);
    wait_healthy(&m, &s1);
    wait_healthy(&m, &s2);
    assert_eq!(post(m.addr(), "/messages?w=3", &message("before")).status, 201);

    let s1_dir = s1.dir.clone();
    let s1_port = s1.addr().port();
    s1.server.kill_9();
    s2.server.kill_9();
    until_true("the primary turns read-only", LIMIT, || get_json(m.addr(), "/health")["read_only"] == true);
    let r = post(m.addr(), "/messages?w=1", &message("refused"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let body = json(&r);
    assert_eq!((body["healthy"].as_u64(), body["needed"].as_u64()), (Some(1), Some(2)), "{body}");
    assert_eq!(messages(m.addr()), vec![(1, "before".to_string())], "reads still work");

    let s1 = secondary(&s1_dir, s1_port, &[]);
    wait_healthy(&m, &s1);
    let r = post(m.addr(), "/messages?w=2", &message("after"));
    assert_eq!(r.status, 201, "one secondary back makes a majority: {}", r.text());
    assert_eq!(json(&r)["meta"]["message_id"], 2, "the refused write was not stored");
    assert_eq!(messages(s1.addr()), vec![(1, "before".to_string()), (2, "after".to_string())]);
}

/// A write that cannot get its acknowledgements in `timeout_ms` gets 504 with what it has, and
/// the message stays and keeps replicating; w past the cluster's size is a 400 naming the range.
#[test]
fn timeouts_and_the_range_of_w() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = secondary(&tmp.path().join("s1"), 0, &[]);
    let s2_port = reserve_port();
    let m = primary(&tmp.path().join("m"), &[s1.url(), format!("http://127.0.0.1:{s2_port}")], &[]);
    wait_healthy(&m, &s1);
    let r = post(m.addr(), "/messages?w=3&timeout_ms=200", &message("late"));
    assert_eq!(r.status, 504, "{}", r.text());
    let body = json(&r);
    assert_eq!((body["acks"].as_u64(), body["w"].as_u64(), body["message_id"].as_u64()), (Some(2), Some(3), Some(1)));
    for (target, w) in [("/messages?w=0", "0"), ("/messages?w=4", "4"), ("/messages/4", "4")] {
        let r = post(m.addr(), target, &message("x"));
        assert_eq!(r.status, 400, "w={w}: {}", r.text());
        assert!(r.text().contains("from 1 to 3"), "names the range: {}", r.text());
    }
    // The original's forms: PUT ?wc=K and POST /messages/K.
    let r = common::request(m.addr(), "PUT", "/messages?wc=1", &[], &message("put"));
    assert_eq!((r.status, json(&r)["meta"]["message_id"].as_u64()), (201, Some(2)), "{}", r.text());
    let r = post(m.addr(), "/messages/2", &message("path"));
    assert_eq!((r.status, json(&r)["meta"]["message_id"].as_u64()), (201, Some(3)), "{}", r.text());
    let s2 = secondary(&tmp.path().join("s2"), s2_port, &[]);
    let want: Vec<(u64, String)> = vec![(1, "late".into()), (2, "put".into()), (3, "path".into())];
    until_true("the timed-out message reaches S2 all the same", LIMIT, || messages(s2.addr()) == want);
}

/// A primary restarted on its data folder keeps every acknowledged message and resumes ids;
/// the secondaries need no restart. A secondary restarted recovers from its own disk and
/// fetches only what it missed. SIGTERM exits 0.
#[test]
fn restarts_lose_nothing_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = secondary(&tmp.path().join("s1"), 0, &[]);
    let m = primary(&tmp.path().join("m"), &[s1.url()], &[]);
    wait_healthy(&m, &s1);
    for i in 1..=20 {
        assert_eq!(post(m.addr(), "/messages?w=2", &message(&format!("m{i}"))).status, 201);
    }
    let m = m.kill_and_restart();
    assert_eq!(messages(m.addr()).len(), 20, "every acknowledged message survives kill -9");
    wait_healthy(&m, &s1);
    let r = post(m.addr(), "/messages?w=2", &message("m21"));
    assert_eq!((r.status, json(&r)["meta"]["message_id"].as_u64()), (201, Some(21)), "ids resume: {}", r.text());

    let s1 = s1.kill_and_restart();
    assert_eq!(messages(s1.addr()).len(), 21, "a secondary recovers from its own disk");
    wait_healthy(&m, &s1);
    for i in 22..=25 {
        assert_eq!(post(m.addr(), "/messages?w=2", &message(&format!("m{i}"))).status, 201);
    }
    let want: Vec<(u64, String)> = (1..=25).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(messages(s1.addr()), want);

    // A secondary down while writes go on is caught up when it returns, without re-registering.
    let (s1_dir, s1_port) = (s1.dir.clone(), s1.addr().port());
    s1.server.kill_9();
    for i in 26..=30 {
        assert_eq!(post(m.addr(), "/messages?w=1", &message(&format!("m{i}"))).status, 201);
    }
    let s1 = secondary(&s1_dir, s1_port, &[]);
    let want: Vec<(u64, String)> = (1..=30).map(|i| (i, format!("m{i}"))).collect();
    until_true("S1 caught up after coming back", LIMIT, || messages(s1.addr()) == want);
    // Paging through the log, on the primary and on a secondary alike.
    for node in [m.addr(), s1.addr()] {
        let page = get_json(node, "/messages?after=10&limit=5");
        let ids: Vec<u64> =
            page["data"].as_array().unwrap().iter().map(|m| m["meta"]["message_id"].as_u64().unwrap()).collect();
        assert_eq!((ids, page["next_after"].as_u64()), ((11..=15).collect(), Some(15)), "{page}");
        let last = get_json(node, "/messages?after=25&limit=100");
        assert_eq!((last["data"].as_array().unwrap().len(), last.get("next_after")), (5, None), "{last}");
    }

    let mut m = m;
    assert!(m.server.terminate().success(), "SIGTERM exits 0");
    let mut s1 = s1;
    assert!(s1.server.terminate().success());
}

/// SIGTERM while both secondaries are unreachable (SIGSTOP: their kernels take connections and
/// requests, nobody answers) and a w=3 write waits for them: the write is answered with an error
/// that says it is stored, and the primary exits well within one `--node-timeout`, instead of
/// waiting out each delivery call in flight (twice, when the call was retried on a new
/// connection). Nothing acknowledged is lost: a restart on the same folder shows both messages.
#[test]
fn sigterm_with_unreachable_secondaries_exits_within_a_node_timeout() {
    const NODE_TIMEOUT: Duration = Duration::from_secs(5);
    let tmp = tempfile::tempdir().unwrap();
    let s1 = secondary(&tmp.path().join("s1"), 0, &[]);
    let s2 = secondary(&tmp.path().join("s2"), 0, &[]);
    // A heartbeat of 500 ms keeps the stopped secondaries healthy for a second, long enough for
    // the w=3 write to be accepted rather than refused as read-only.
    let args: Vec<String> =
        ["--role", "primary", "--heartbeat-ms", "500", "--node-timeout", "5s", "--secondary", &s1.url(), "--secondary"]
            .map(String::from)
            .into_iter()
            .chain([s2.url()])
            .collect();
    let mut m = Node::start(&tmp.path().join("m"), 0, &args);
    wait_healthy(&m, &s1);
    wait_healthy(&m, &s2);
    let r = post(m.addr(), "/messages?w=3", &message("acknowledged"));
    assert_eq!(r.status, 201, "{}", r.text());

    s1.server.signal(Signal::SIGSTOP);
    s2.server.signal(Signal::SIGSTOP);
    let (tx, rx) = mpsc::channel();
    let addr = m.addr();
    let writer = std::thread::spawn(move || {
        let r = post(addr, "/messages?w=3", &message("in flight"));
        tx.send((r.status, r.text())).unwrap();
    });
    until_true("the w=3 write waits on the primary", LIMIT, || get_json(m.addr(), "/health")["waiting_writes"] == 1);

    let asked = Instant::now();
    let status = m.server.terminate();
    let took = asked.elapsed();
    assert!(status.success(), "SIGTERM exits 0: {status}");
    assert!(took < NODE_TIMEOUT, "the primary took {took:?} to stop, --node-timeout is {NODE_TIMEOUT:?}");
    let (code, body) = rx.recv_timeout(LIMIT).expect("the waiting write is answered");
    writer.join().unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("stored") && body.contains("\"message_id\":2"), "{body}");

    let m = m.kill_and_restart();
    assert_eq!(messages(m.addr()), vec![(1, "acknowledged".to_string()), (2, "in flight".to_string())]);
}
