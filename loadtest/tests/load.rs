//! The load generator against small servers (tests/common) built to show one behaviour each: one
//! that counts what it receives, one that resets, one that answers garbage, one that never
//! answers, one that stalls. Every run is bounded by `-n` or a short `-d`; everything listens on
//! 127.0.0.1 port 0 and is stopped when its test ends.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Behaviour, TestServer};
use flash_load::{run, LoadSpec};

fn spec(url: &str, connections: usize) -> LoadSpec {
    let mut spec = LoadSpec::get(url).unwrap();
    spec.connections = connections;
    spec
}

#[test]
fn count_mode_sends_exactly_that_many_requests() {
    let server = TestServer::start(Behaviour::Answer);
    let mut spec = spec(&server.url(), 8);
    spec.duration = Some(Duration::from_secs(20)); // a bound; -n ends the run long before
    spec.count = Some(1000);
    let result = run(&spec, &AtomicBool::new(false)).unwrap();
    assert_eq!(result.requests, 1000, "{result:?}");
    assert_eq!(result.sent, 1000);
    assert_eq!(result.errors.total(), 0);
    assert_eq!(result.status.get(&200), Some(&1000));
    assert_eq!(result.in_flight_at_deadline, 0);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1000, "the server counts every request");
}

#[test]
fn pipelined_count_is_exact_and_latency_is_per_response() {
    let server = TestServer::start(Behaviour::Answer);
    let mut spec = spec(&server.url(), 4);
    spec.duration = Some(Duration::from_secs(20));
    spec.count = Some(1001);
    spec.pipeline = 16;
    let result = run(&spec, &AtomicBool::new(false)).unwrap();
    assert_eq!(result.requests, 1001, "{result:?}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1001);
    assert!(result.latency.min_us > 0.0 && result.latency.min_us <= result.latency.p50_us);
}

#[test]
fn no_keepalive_opens_one_connection_per_request() {
    let server = TestServer::start(Behaviour::Answer);
    let mut spec = spec(&server.url(), 4);
    spec.duration = Some(Duration::from_secs(20));
    spec.count = Some(200);
    spec.per_conn = Some(1);
    spec.requests = flash_load::RequestSet::encode(
        &spec.target,
        &[flash_load::RequestSpec { method: "GET".into(), path: "/hello".into(), body: vec![], weight: 1 }],
        &[],
        true,
    )
    .unwrap();
    let result = run(&spec, &AtomicBool::new(false)).unwrap();
    assert_eq!(result.requests, 200, "{:?}", result.errors);
    assert_eq!(result.connections_opened, 200);
    assert_eq!(server.requests.load(Ordering::SeqCst), 200);
    // The acceptor counts a connection before its thread reads; all 200 were answered, so all
    // were accepted by now.
    assert_eq!(server.connections.load(Ordering::SeqCst), 200);
}

#[test]
fn requests_per_conn_reconnects_after_n() {
    let server = TestServer::start(Behaviour::Answer);
    let mut spec = spec(&server.url(), 2);
    spec.duration = Some(Duration::from_secs(20));
    spec.count = Some(100);
    spec.per_conn = Some(10);
    let result = run(&spec, &AtomicBool::new(false)).unwrap();
    assert_eq!(result.requests, 100, "{:?}", result.errors);
    assert_eq!(result.errors.total(), 0);
    assert!(result.connections_opened >= 10, "{} connections for 100 requests at 10 each", result.connections_opened);
}

#[test]
fn a_body_delimited_by_the_close_ends_at_the_close() {
    // The server's FIN comes with the body's last bytes; reading only until a short read would
    // leave each response in flight until the timeout, and the run would end with timeouts.
    let server = TestServer::start(Behaviour::CloseDelimited);
    let mut spec = spec(&server.url(), 2);
    spec.duration = Some(Duration::from_secs(10)); // a bound; -n ends the run long before
    spec.count = Some(40);
    spec.timeout = Duration::from_secs(1);
    let result = run(&spec, &AtomicBool::new(false)).unwrap();
    assert_eq!(result.errors.total(), 0, "{:?}", result.errors);
    assert_eq!(result.requests, 40, "{result:?}");
    assert_eq!(result.status.get(&200), Some(&40));
    assert_eq!(result.in_flight_at_deadline, 0);
}

#[test]
fn errors_are_counted_by_kind() {
    let short = |url: &str, timeout_ms: u64| {
        let mut spec = spec(url, 2);
        spec.duration = Some(Duration::from_millis(300));
        spec.timeout = Duration::from_millis(timeout_ms);
        run(&spec, &AtomicBool::new(false)).unwrap()
    };

    let resetting = TestServer::start(Behaviour::Reset);
    let r = short(&resetting.url(), 2000);
    assert!(r.errors.reset + r.errors.closed > 0, "{:?}", r.errors);
    assert!(r.errors.reset > 0, "a close with unread data is a reset: {:?}", r.errors);
    assert_eq!((r.errors.malformed, r.errors.timeout, r.requests), (0, 0, 0));
    drop(resetting);

    let garbage = TestServer::start(Behaviour::Garbage);
    let r = short(&garbage.url(), 2000);
    assert!(r.errors.malformed > 0, "{:?}", r.errors);
    assert_eq!((r.errors.timeout, r.errors.connect, r.requests), (0, 0, 0));
    drop(garbage);

    let silent = TestServer::start(Behaviour::Silent);
    let r = short(&silent.url(), 50);
    assert!(r.errors.timeout > 0, "{:?}", r.errors);
    assert_eq!((r.errors.malformed, r.errors.connect, r.requests), (0, 0, 0));
    drop(silent);

    // A port that was just free has no listener: every connect is refused.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let r = short(&format!("http://{free}/"), 2000);
    assert!(r.errors.connect > 0, "{:?}", r.errors);
    assert_eq!((r.errors.reset, r.errors.malformed, r.requests), (0, 0, 0));
}

#[test]
fn open_loop_latency_shows_a_server_stall() {
    // The server freezes for 300 ms every second, starting 200 ms after the first request; a 1 s
    // open-loop run at 400 req/s intends ~120 requests during the stall, and each must be charged
    // the wait. The stall is timed from the first request, so however late the run starts it
    // meets one whole stall (timed from the server's start, a late run could straddle two halves).
    let server = TestServer::start(Behaviour::Stall { period_ms: 1000, stall_ms: 300, offset_ms: 200 });
    let mut spec = spec(&server.url(), 4);
    spec.duration = Some(Duration::from_millis(1000));
    spec.rate = Some(400.0);
    spec.timeout = Duration::from_secs(5);
    let open = run(&spec, &AtomicBool::new(false)).unwrap();
    assert_eq!(open.model, "open");
    assert!(open.latency.p99_us >= 150_000.0, "open-loop p99 {} µs should show the 300 ms stall", open.latency.p99_us);
    let slow = open.spectrum.iter().filter(|q| q.latency_us >= 50_000.0).map(|q| q.percentile).fold(100.0, f64::min);
    assert!(slow <= 95.0, "more than 5% of requests should be slow, but only from p{slow}");
}

#[test]
fn find_max_rate_bisects_below_the_closed_loop_peak() {
    let server = TestServer::start(Behaviour::Answer);
    let mut spec = spec(&server.url(), 4);
    spec.duration = Some(Duration::from_millis(150));
    let slo = flash_load::findmax::Slo::parse("p99=50ms").unwrap();
    let mut seen = 0;
    let (best, steps) = flash_load::findmax::find_max_rate(&spec, slo, &AtomicBool::new(false), |_| seen += 1).unwrap();
    assert_eq!(seen, steps.len(), "every probe is reported as it finishes");
    assert!(steps.len() >= 2 && steps[0].rate.is_none(), "a closed-loop probe, then open-loop ones");
    let peak = steps[0].result.requests_per_sec;
    for step in &steps[1..] {
        let rate = step.rate.unwrap();
        assert!(rate <= peak * 1.05 && step.result.model == "open");
        if step.passed {
            assert!(step.result.errors.total() == 0 && slo.measured_us(&step.result) <= 50_000.0);
        }
    }
    let best_passed = steps
        .iter()
        .filter(|s| s.passed)
        .filter_map(|s| s.rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    assert_eq!(best, best_passed, "the answer is the highest rate that passed");
}
