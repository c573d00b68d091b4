//! The multi-writer log with three real peer processes: writers on each, consistent reads that
//! are identical on all three for several T and answer well before STA when every peer is up
//! (and at STA when one is stopped), late entries reported rather than reordered, the original's
//! single-path API, and a peer restarted with kill -9 that keeps every entry.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{json, post, request, reserve_port, Node};
use flash_conformance::wait::until_true;
use nix::sys::signal::Signal;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);
/// STA for this test: short, so that the test is too.
const STA_MS: u64 = 1500;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn start_peers(tmp: &std::path::Path) -> Vec<Node> {
    let ports: Vec<u16> = (0..3).map(|_| reserve_port()).collect();
    let mut args: Vec<String> = ["--role", "peer", "--heartbeat-ms", "100", "--sta-ms", &STA_MS.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for p in &ports {
        args.extend(["--peer".into(), format!("http://127.0.0.1:{p}")]);
    }
    ports.iter().enumerate().map(|(i, p)| Node::start(&tmp.join(format!("p{i}")), *p, &args)).collect()
}

fn consistent(addr: SocketAddr, at: u64) -> (Value, Duration) {
    let t0 = Instant::now();
    let r = request(addr, "GET", &format!("/getlogs_consistent?at={at}"), &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    (json(&r), t0.elapsed())
}

fn logs(v: &Value) -> Vec<String> {
    v["logs"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

fn all_healthy(peers: &[Node]) {
    for p in peers {
        until_true("every peer sees every other healthy", LIMIT, || {
            let h = json(&request(p.addr(), "GET", "/health", &[], ""));
            h["peers"].as_array().unwrap().iter().all(|x| x["status"] == "healthy")
        });
    }
}

#[test]
fn consistent_reads_agree_on_every_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let peers = start_peers(tmp.path());
    all_healthy(&peers);

    // Writers on each peer, at once; T marks taken while they write.
    let mut marks = Vec::new();
    let writers: Vec<_> = peers
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let addr = p.addr();
            (0..2).map(move |k| {
                std::thread::spawn(move || {
                    (0..25)
                        .map(|n| {
                            let text = format!("p{i}-w{k}-{n}");
                            let r = post(addr, "/log", &serde_json::json!({ "log": text }).to_string());
                            assert_eq!(r.status, 200, "{}", r.text());
                            assert_eq!(json(&r)["status"], "success");
                            text
                        })
                        .collect::<Vec<_>>()
                })
            })
        })
        .collect();
    for _ in 0..3 {
        marks.push(now_ms());
        until_true("a few ms pass", LIMIT, || now_ms() >= marks.last().unwrap() + 15);
    }
    let written: HashSet<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert_eq!(written.len(), 150);
    marks.push(now_ms());

    for at in &marks {
        let answers: Vec<(Value, Duration)> = {
            let handles: Vec<_> = peers
                .iter()
                .map(|p| {
                    let (addr, at) = (p.addr(), *at);
                    std::thread::spawn(move || consistent(addr, at))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        };
        let first = logs(&answers[0].0);
        for (v, took) in &answers {
            assert_eq!(logs(v), first, "at={at}: every peer lists the same entries in the same order");
            assert_eq!(v["late"].as_array().unwrap().len(), 0);
            assert_eq!(v["by"], "watermarks", "every peer up: answered on the peers' clocks, not STA");
            assert!(*took < Duration::from_millis(STA_MS), "answered in {took:?}, before STA");
        }
    }
    let last = logs(&consistent(peers[0].addr(), *marks.last().unwrap()).0);
    assert_eq!(last.iter().cloned().collect::<HashSet<_>>(), written, "the final read holds every write once");
    assert_eq!(last.len(), 150);

    // A read at "now" (the default) with every peer up waits about a heartbeat, not STA.
    let t0 = Instant::now();
    let r = request(peers[1].addr(), "GET", "/getlogs_consistent", &[], "");
    let took = t0.elapsed();
    assert_eq!(json(&r)["by"], "watermarks");
    assert!(took < Duration::from_millis(STA_MS / 2), "{took:?}");
    eprintln!("consistent read at now, all peers up: {took:?} (STA {STA_MS} ms, heartbeat 100 ms)");

    // The fast views hold the same entries, in whatever order they arrived.
    for p in &peers {
        until_true("every fast view holds every entry", LIMIT, || {
            let v = json(&request(p.addr(), "POST", "/getlogs", &[], ""));
            logs(&v).into_iter().collect::<HashSet<_>>() == written
        });
    }
}

#[test]
fn a_stopped_peer_delays_reads_to_sta_and_its_late_entries_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut peers = start_peers(tmp.path());
    all_healthy(&peers);
    // The original's single path, and its error for a missing log.
    let r = post(peers[0].addr(), "/", r#"{"operation": "newlog", "log": "first"}"#);
    assert_eq!((r.status, json(&r)["status"].as_str()), (200, Some("success")), "{}", r.text());
    let r = post(peers[0].addr(), "/", r#"{"operation": "newlog"}"#);
    assert_eq!(r.status, 400, "a missing log is an error, not 200: {}", r.text());
    let r = post(peers[0].addr(), "/log", r#"{"log": 7}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(peers[0].addr(), "/", r#"{"operation": "shout"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(peers[0].addr(), "/", r#"{"operation": "getlog"}"#);
    assert_eq!(logs(&json(&r)), ["first"]);

    // P2 stopped: P0 cannot know P2 has passed T, so the read waits STA.
    peers[2].server.signal(Signal::SIGSTOP);
    let at = now_ms();
    let (v, took) = consistent(peers[0].addr(), at);
    assert_eq!(v["by"], "sta", "{v}");
    assert!(took >= Duration::from_millis(STA_MS - 300), "answered at STA, not before: {took:?}");
    assert!(took < Duration::from_millis(STA_MS + 5000), "{took:?}");
    assert_eq!(logs(&v), ["first"]);

    // P0 writes while P2 is stopped for longer than STA: on P2 that entry arrives late.
    let r = post(peers[0].addr(), "/log", r#"{"log": "while P2 slept"}"#);
    assert_eq!(r.status, 200);
    let stamp_after = now_ms();
    until_true("STA passes", LIMIT, || now_ms() > stamp_after + STA_MS + 100);
    peers[2].server.signal(Signal::SIGCONT);
    until_true("P2 receives it", LIMIT, || {
        logs(&json(&request(peers[2].addr(), "GET", "/getlogs", &[], ""))).contains(&"while P2 slept".to_string())
    });
    let at = now_ms();
    let (on_p2, _) = consistent(peers[2].addr(), at);
    assert!(!logs(&on_p2).contains(&"while P2 slept".to_string()), "not reordered into the past: {on_p2}");
    assert_eq!(on_p2["late"][0]["log"], "while P2 slept", "reported as late: {on_p2}");
    let (on_p1, _) = consistent(peers[1].addr(), at);
    assert_eq!(logs(&on_p1), ["first", "while P2 slept"], "in time on P1");

    // kill -9 and restart: every entry comes back from disk, late flag included.
    let p2 = peers.pop().unwrap().kill_and_restart();
    let v = json(&request(p2.addr(), "GET", "/getlogs", &[], ""));
    assert_eq!(logs(&v), ["first", "while P2 slept"]);
    let (v, _) = consistent(p2.addr(), at);
    assert_eq!(v["late"].as_array().unwrap().len(), 1, "{v}");
    // New writes still reach it, and consistent reads agree again.
    let r = post(peers[1].addr(), "/log", r#"{"log": "after restart"}"#);
    assert_eq!(r.status, 200);
    let at = now_ms();
    until_true("P2 has the new entry", LIMIT, || {
        logs(&json(&request(p2.addr(), "GET", "/getlogs", &[], ""))).contains(&"after restart".to_string())
    });
    let (a, _) = consistent(peers[1].addr(), at);
    let (b, _) = consistent(p2.addr(), at);
    assert_eq!(logs(&a).last().map(String::as_str), Some("after restart"));
    assert_eq!(logs(&a)[2..], logs(&b)[1..], "the entries after the late one agree");
}
