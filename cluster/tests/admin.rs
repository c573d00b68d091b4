//! The admin port: `/status`, `POST /size` (fixed and auto), the live page, and the two resizing
//! experiments of the issue: 1 → 5 → 1 under load with no failed request and the drains shown,
//! and auto size growing to its maximum under a burst and back to its minimum when idle, never
//! changing faster than its interval.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{backend_04, Answer, Cluster, Scripted, PATIENCE};
use flash_common::client::Client;
use flash_conformance::wait::until_true;
use flash_load::{LoadSpec, RequestSet, RequestSpec};

#[test]
fn resizing_1_to_5_to_1_under_load_fails_no_request_and_shows_the_drains() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "1"]);
    let mut spec = LoadSpec::get(&format!("http://{}/hello", cluster.addr())).unwrap();
    let mix = [
        RequestSpec { method: "GET".into(), path: "/hello".into(), body: Vec::new(), weight: 4 },
        RequestSpec { method: "GET".into(), path: "/sleep?ms=20".into(), body: Vec::new(), weight: 1 },
    ];
    spec.requests = RequestSet::encode(&spec.target, &mix, &[], false).unwrap();
    (spec.connections, spec.rate, spec.duration) = (16, Some(300.0), Some(PATIENCE * 2));
    spec.timeout = Duration::from_secs(5);
    let stop = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        let load = s.spawn(|| flash_load::run(&spec, &stop));
        let served = || -> Vec<u64> { cluster.copies().iter().filter_map(|c| c["served"].as_u64()).collect() };
        until_true("the load to reach the one copy", PATIENCE, || served().iter().sum::<u64>() >= 100);
        let res = cluster.post_size(r#"{"size": 5}"#);
        assert_eq!(res.status, 200, "{}", res.text());
        assert!(res.text().contains(r#""target":5"#), "{}", res.text());
        cluster.wait_for_size(5);
        until_true("every one of the 5 copies to serve", PATIENCE, || served().iter().all(|&n| n >= 10));
        let res = cluster.post_size(r#"{"size": 1}"#);
        assert_eq!(res.status, 200, "{}", res.text());
        cluster.wait_for_size(1);
        let before = served()[0];
        until_true("the last copy to go on serving", PATIENCE, || served()[0] >= before + 100);
        stop.store(true, Ordering::SeqCst);
        load.join().unwrap().unwrap()
    });
    assert!(result.requests >= 250, "the load ran: {} requests", result.requests);
    assert_eq!(result.errors.total(), 0, "failed requests: {:?}", result.errors);
    assert!(result.status.keys().all(|&s| s == 200), "non-200 answers: {:?}", result.status);
    let status = cluster.status();
    assert_eq!(status["drained"], 4, "{status}");
    let history: Vec<&str> = status["history"].as_array().unwrap().iter().filter_map(|l| l.as_str()).collect();
    assert_eq!(history.iter().filter(|l| l.contains("draining (the cluster shrinks to 1)")).count(), 4, "{history:#?}");
    assert_eq!(history.iter().filter(|l| l.contains(") stopped (exit status 0)")).count(), 4, "{history:#?}");
}

/// The seed's policy, on a short interval: a burst (16 clients on a slow route, each copy taking
/// one request at a time) grows the cluster one copy per interval to --max, and idleness shrinks
/// it back to --min; the size never changes twice within an interval, and never turns back while
/// the burst lasts.
#[test]
fn auto_size_grows_to_max_under_a_burst_and_shrinks_to_min_when_idle() {
    let backend = backend_04();
    let cluster = Cluster::start(&[
        "--backend",
        &backend,
        "--size",
        "auto",
        "--min",
        "1",
        "--max",
        "3",
        "--scale-up-queue",
        "2",
        "--scale-down-idle",
        "2",
        "--interval",
        "400ms",
        "--max-in-flight",
        "1",
    ]);
    cluster.wait_for_size(1);
    let burst = AtomicBool::new(true);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                let mut client = cluster.client();
                while burst.load(Ordering::SeqCst) {
                    assert_eq!(client.get("/sleep?ms=30").unwrap().status, 200);
                }
            });
        }
        until_true("three healthy copies under the burst", PATIENCE, || cluster.count("healthy") == 3);
        burst.store(false, Ordering::SeqCst);
    });
    cluster.wait_for_size(1);
    let status = cluster.status();
    let changes: Vec<(f64, usize, usize)> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| {
            let line = line.as_str()?;
            let (at, rest) = line.split_once("s auto size ")?;
            let (sizes, _) = rest.split_once(':')?;
            let (from, to) = sizes.split_once(" -> ")?;
            Some((at.parse().ok()?, from.parse().ok()?, to.parse().ok()?))
        })
        .collect();
    let sizes: Vec<(usize, usize)> = changes.iter().map(|&(_, from, to)| (from, to)).collect();
    assert_eq!(sizes, [(1, 2), (2, 3), (3, 2), (2, 1)], "{status}");
    for pair in changes.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= 0.4 - 1e-3, "two changes within an interval: {changes:?}");
    }
    let decision = &status["policy"]["last_decision"];
    assert!(decision["why"].as_str().is_some_and(|w| !w.is_empty()), "{status}");
    assert_eq!(status["size"]["mode"], "auto");
}

#[test]
fn the_admin_port_answers_its_routes_and_refuses_bad_input() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "1"]);
    let mut admin = Client::connect(cluster.admin(), PATIENCE).unwrap();
    let page = admin.get("/").unwrap();
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.text().contains("fetch('/status'"), "the page reads /status");
    let status = cluster.status();
    assert_eq!(status["size"], serde_json::json!({"mode": "fixed", "target": 1}));
    assert_eq!(status["queue"]["limit"], 128);
    let copy = &status["copies"][0];
    for field in ["pid", "port", "state", "in_flight", "served", "restarts"] {
        assert!(!copy[field].is_null(), "{field} missing from {copy}");
    }
    for (body, status) in [
        ("{", 400),
        (r#"{"size": 0}"#, 400),
        (r#"{"size": 100000}"#, 400),
        (r#"{"size": "two"}"#, 400),
        (r#"{"auto": {"min": 3, "max": 2}}"#, 400),
        (r#"{"nothing": 1}"#, 400),
    ] {
        let res = cluster.post_size(body);
        assert_eq!(res.status, status, "{body}: {}", res.text());
        assert!(!res.text().trim().is_empty(), "{body}: the refusal says why");
    }
    assert_eq!(admin.get("/size").unwrap().status, 405);
    assert_eq!(admin.get("/nowhere").unwrap().status, 404);
    let res = cluster.post_size(r#"{"auto": {"min": 1, "max": 2, "interval": "1s"}}"#);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(cluster.status()["size"]["auto"]["max"], 2);
}

#[test]
fn without_a_backend_there_is_nothing_to_resize() {
    let elsewhere = Scripted::start(|_, _| Answer::ok("hi"));
    let url = elsewhere.url();
    let cluster = Cluster::start(&["--upstream", &url]);
    let res = cluster.post_size(r#"{"size": 3}"#);
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(cluster.client().get("/").unwrap().text(), "hi");
}

/// The live page in a real browser: its script reads `/status` and fills the table, one row per
/// copy with its state, and the summary with the size.
#[test]
fn the_live_page_shows_every_copy_in_a_browser() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "2"]);
    cluster.wait_for_size(2);
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", cluster.admin());
    let dom = flash_conformance::browser::dump_dom(&url, profile.path(), Duration::from_secs(3));
    assert!(dom.contains("size 2 "), "the summary shows the size: {dom}");
    for copy in ["copy 0", "copy 1"] {
        assert!(dom.contains(&format!("<td>{copy}</td>")), "{copy} has a row: {dom}");
    }
    assert_eq!(dom.matches(">healthy<").count(), 2, "both copies shown healthy: {dom}");
}
