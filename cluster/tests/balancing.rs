//! Balancing, pools, the queue and `--upstream`: least outstanding requests, keep-alive
//! connections to copies, `--max-in-flight` and `--queue` (503 with Retry-After past it), a
//! request that waits too long in the queue (504), and servers run elsewhere mixed with copies.

mod common;

use std::sync::atomic::Ordering;

use common::{backend_04, Answer, Cluster, Gate, Scripted, PATIENCE};
use flash_conformance::wait::until_true;

/// A backend that answers `body` to everything, once the gate it returns is open.
fn held_backend(body: &'static str) -> (Gate, Scripted) {
    let gate = Gate::default();
    let held = gate.clone();
    let backend = Scripted::start(move |_, _| {
        held.pass();
        Answer::ok(body)
    });
    (gate, backend)
}

/// A request held by one copy does not hold up the others: the next requests go to the copy with
/// fewer outstanding.
#[test]
fn requests_go_to_the_copy_with_the_fewest_outstanding() {
    let gate = Gate::default();
    let held = gate.clone();
    let script = move |req: &str, _: usize| {
        if req.starts_with("GET /hold ") {
            held.pass();
        }
        Answer::ok("done")
    };
    let (a, b) = (Scripted::start(script.clone()), Scripted::start(script));
    let (url_a, url_b) = (a.url(), b.url());
    let cluster = Cluster::start(&["--upstream", &url_a, "--upstream", &url_b]);
    std::thread::scope(|s| {
        let hold = s.spawn(|| cluster.client().get("/hold").unwrap().status);
        until_true("the held request to reach a copy", PATIENCE, || {
            a.received("GET /hold ").len() + b.received("GET /hold ").len() == 1
        });
        let mut client = cluster.client();
        for _ in 0..10 {
            assert_eq!(client.get("/quick").unwrap().status, 200);
        }
        let holder = if a.received("GET /hold ").is_empty() { &b } else { &a };
        assert!(holder.received("GET /quick ").is_empty(), "a quick request queued behind the held one");
        gate.open();
        assert_eq!(hold.join().unwrap(), 200);
    });
}

/// Sequential requests reuse one keep-alive connection to the copy.
#[test]
fn connections_to_a_copy_are_kept_alive_and_reused() {
    let backend = Scripted::start(|_, _| Answer::ok("pooled"));
    let url = backend.url();
    let cluster = Cluster::start(&["--upstream", &url]);
    let mut client = cluster.client();
    for _ in 0..50 {
        assert_eq!(client.get("/x").unwrap().text(), "pooled");
    }
    assert_eq!(backend.received("GET /x ").len(), 50);
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1, "one pooled connection carried all 50");
}

/// `--max-in-flight 1 --queue 2`: one request at the copy, two waiting, the rest refused at once
/// with 503 and Retry-After; the waiting ones are served when the copy is free.
#[test]
fn past_max_in_flight_requests_queue_and_past_the_queue_they_get_503() {
    let (gate, backend) = held_backend("served");
    let url = backend.url();
    let cluster = Cluster::start(&["--upstream", &url, "--max-in-flight", "1", "--queue", "2"]);
    let answers = std::thread::scope(|s| {
        let clients: Vec<_> = (0..5)
            .map(|_| {
                s.spawn(|| {
                    let res = cluster.client().get("/wait").unwrap();
                    (res.status, res.header("retry-after").map(str::to_string))
                })
            })
            .collect();
        until_true("one request at the copy and two in the queue", PATIENCE, || {
            backend.received("GET /wait ").len() == 1 && cluster.status()["queue"]["waiting"] == 2
        });
        until_true("the two beyond the queue to be refused", PATIENCE, || {
            clients.iter().filter(|c| c.is_finished()).count() == 2
        });
        gate.open();
        clients.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
    });
    let served = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!((served, refused.len()), (3, 2), "{answers:?}");
    assert!(refused.iter().all(|(_, retry)| retry.as_deref() == Some("1")), "{answers:?}");
    assert_eq!(backend.received("GET /wait ").len(), 3);
}

/// A request that waits in the queue past `--request-timeout` is answered 504 and never sent.
#[test]
fn a_request_that_waits_too_long_in_the_queue_is_504() {
    let (gate, backend) = held_backend("late");
    let url = backend.url();
    let cluster = Cluster::start(&["--upstream", &url, "--max-in-flight", "1", "--request-timeout", "500ms"]);
    std::thread::scope(|s| {
        let first = s.spawn(|| cluster.client().get("/first").unwrap().status);
        until_true("the first request at the copy", PATIENCE, || backend.received("GET /first ").len() == 1);
        let res = cluster.client().get("/second").unwrap();
        assert_eq!(res.status, 504, "{}", res.text());
        assert!(res.text().contains("no copy was free"), "{}", res.text());
        assert_eq!(first.join().unwrap(), 504, "the one at the copy timed out too");
        gate.open();
    });
    assert!(backend.received("GET /second ").is_empty(), "a request that timed out in the queue was sent");
}

/// Copies the cluster runs and a server run elsewhere serve side by side; when the one elsewhere
/// goes down, its health check takes it out and the copies serve everything, with no failures.
#[test]
fn upstreams_and_copies_are_balanced_together_and_a_dead_upstream_is_left_out() {
    let backend = backend_04();
    let elsewhere = Scripted::start(|_, _| Answer::ok("Hello, world!"));
    let url = elsewhere.url();
    let cluster =
        Cluster::start(&["--backend", &backend, "--size", "1", "--upstream", &url, "--health-interval", "100ms"]);
    let copies = cluster.copies();
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.iter().any(|c| c["kind"] == "upstream" && c["url"] == url.as_str() && c["pid"].is_null()));
    std::thread::scope(|s| {
        // Two clients at once, so that both servers have requests outstanding.
        let load = |_| {
            s.spawn(|| {
                let mut client = cluster.client();
                (0..100).all(|_| client.get("/hello").unwrap().text() == "Hello, world!")
            })
        };
        let clients: Vec<_> = (0..2).map(load).collect();
        assert!(clients.into_iter().all(|c| c.join().unwrap()));
    });
    let served = |kind: &str| -> u64 {
        cluster.copies().iter().filter(|c| c["kind"] == kind).map(|c| c["served"].as_u64().unwrap()).sum()
    };
    assert!(served("upstream") > 0 && served("spawned") > 0, "{:?}", cluster.copies());

    drop(elsewhere);
    until_true("the upstream to be marked down", PATIENCE, || {
        cluster.copies().iter().any(|c| c["kind"] == "upstream" && c["state"] == "unhealthy")
    });
    let mut client = cluster.client();
    for _ in 0..20 {
        assert_eq!(client.get("/hello").unwrap().status, 200);
    }
}
