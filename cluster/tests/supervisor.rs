//! The supervisor with real processes and real kills: no request lost while copies are killed
//! with SIGKILL under load, restart policies, a command that cannot start, process groups,
//! PDEATHSIG, and a graceful stop that lets requests in flight finish.

mod common;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{alive, backend_04, pids, server_04, Cluster, PATIENCE};
use flash_conformance::wait::{until, until_true};
use flash_load::{LoadSpec, RequestSet, RequestSpec};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill -9 a copy");
}

/// The issue's fault test: copies killed with SIGKILL every 2 s while an open-loop load of GETs
/// and POSTs (with an Idempotency-Key) runs at a fixed rate; not one request may fail. 9 s here
/// (`FLASH_KILL_SECS` sets it; the 30 s run is recorded in benchmarks/results), the p99 printed.
#[test]
fn copies_killed_every_2s_under_load_lose_no_request() {
    let secs: u64 = std::env::var("FLASH_KILL_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    let rate: f64 = std::env::var("FLASH_KILL_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(400.0);
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "3", "--restart-delay", "50ms"]);
    let mut spec = LoadSpec::get(&format!("http://{}/hello", cluster.addr())).unwrap();
    let mix = [
        RequestSpec { method: "GET".into(), path: "/hello".into(), body: Vec::new(), weight: 1 },
        RequestSpec { method: "POST".into(), path: "/echo".into(), body: b"{\"data\": 1}".to_vec(), weight: 1 },
    ];
    spec.requests = RequestSet::encode(&spec.target, &mix, &["Idempotency-Key: kill-test".into()], false).unwrap();
    (spec.connections, spec.rate, spec.duration) = (16, Some(rate), Some(Duration::from_secs(secs)));
    spec.timeout = Duration::from_secs(5);

    let stop = AtomicBool::new(false);
    let (result, kills) = std::thread::scope(|s| {
        let load = s.spawn(|| flash_load::run(&spec, &stop));
        let started = Instant::now();
        let mut kills = 0;
        for n in 1.. {
            // The schedule of the experiment (a kill every 2 s), not a wait for anything.
            let next = Duration::from_secs(2 * n);
            if next + Duration::from_secs(1) > Duration::from_secs(secs) {
                break;
            }
            std::thread::sleep(next.saturating_sub(started.elapsed()));
            let victims = pids(&cluster.status());
            if let Some(&pid) = victims.get(kills % victims.len().max(1)) {
                sigkill(pid);
                kills += 1;
            }
        }
        (load.join().expect("the load thread").expect("the load ran"), kills)
    });
    eprintln!(
        "{kills} kills in {secs} s at {rate} req/s: {} answered, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, statuses {:?}",
        result.requests, result.latency.p50_us, result.latency.p99_us, result.latency.max_us, result.status
    );
    assert!(kills >= 3, "only {kills} kills");
    assert_eq!(result.errors.total(), 0, "failed requests: {:?}", result.errors);
    assert!(result.status.keys().all(|&s| s == 200), "non-200 answers: {:?}", result.status);
    assert!(result.requests as f64 >= rate * secs as f64 * 0.8, "too few answered: {}", result.requests);
    let status = cluster.status();
    let restarts: u64 = status["copies"].as_array().unwrap().iter().map(|c| c["restarts"].as_u64().unwrap()).sum();
    assert!(restarts >= kills as u64 - 1, "every killed copy is restarted: {status}");
    cluster.wait_for_size(3);
}

#[test]
fn with_restart_never_a_dead_copy_stays_dead_and_the_rest_serve() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "2", "--restart", "never"]);
    let victim = pids(&cluster.status())[0];
    sigkill(victim);
    until_true("the log to say the copy is not restarted", PATIENCE, || {
        cluster.log().contains("not restarted (--restart never)")
    });
    let mut client = cluster.client();
    for _ in 0..20 {
        assert_eq!(client.get("/hello").unwrap().status, 200);
    }
    let copies = cluster.copies();
    assert_eq!(copies.iter().filter(|c| c["state"] == "dead").count(), 1, "{copies:?}");
    assert_eq!(copies.iter().filter(|c| c["state"] == "healthy").count(), 1, "{copies:?}");
    assert!(copies.iter().all(|c| c["restarts"] == 0), "{copies:?}");
    assert!(!alive(victim));
}

/// A copy whose command exits at once is started `--start-tries` times, reported, and left down;
/// the cluster serves on the copies that work. (Copy 0's command exits 3; copy 1 runs 04.)
#[test]
fn a_command_that_exits_at_once_is_given_up_after_its_tries() {
    let script = format!(
        r#"sh -c 'if [ "$1" = 0 ]; then exit 3; fi; exec "$2" --port "$0" --quiet' {{port}} {{index}} {}"#,
        server_04().display()
    );
    let cluster =
        Cluster::start(&["--backend", &script, "--size", "2", "--start-tries", "3", "--restart-delay", "10ms"]);
    let copies = until("copy 0 to be given up on", PATIENCE, || {
        let copies = cluster.copies();
        copies.iter().any(|c| c["index"] == 0 && c["gave_up"] == true).then_some(copies)
    });
    let zero = copies.iter().find(|c| c["index"] == 0).unwrap();
    assert_eq!((zero["state"].as_str(), zero["last_exit"].as_str()), (Some("dead"), Some("exit status 3")), "{zero}");
    assert_eq!(zero["restarts"], 2, "started 3 times: the first and 2 restarts: {zero}");
    assert!(cluster.log().contains("failed to start 3 times in a row (exit status 3); left down"), "{}", cluster.log());
    assert_eq!(cluster.client().get("/hello").unwrap().status, 200);
    // Not restarted again: the count stays where it is.
    let starts = cluster.log().matches("copy 0 (pid").count();
    assert_eq!(cluster.copies().iter().find(|c| c["index"] == 0).unwrap()["restarts"], 2);
    assert_eq!(cluster.log().matches("copy 0 (pid").count(), starts);
}

#[test]
fn when_no_copy_can_start_the_cluster_says_why_and_exits() {
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flash-cluster"));
    cmd.args(["--port", "0", "--quiet", "--backend", "sh -c 'exit 7' {port}", "--size", "2", "--start-tries", "2"])
        .args(["--restart-delay", "10ms"])
        .current_dir(scratch.path());
    let (status, stdout, stderr) = flash_conformance::child::run_to_exit(&mut cmd, PATIENCE);
    assert!(!status.success());
    assert!(stdout.is_empty(), "it never said it was listening");
    assert!(stderr.contains("error: no copy became healthy") && stderr.contains("exit status 7"), "{stderr}");
}

#[test]
fn bad_flags_are_refused_naming_them() {
    for (args, says) in [
        (&["--size", "2"][..], "--backend"),
        (&["--backend", "server --port 8080"], "{port}"),
        (&["--backend", "x {port}", "--size", "auto", "--min", "3", "--max", "2"], "--min"),
        (&["--upstream", "https://example.org"], "http://"),
        (&["--backend", "x {port}", "--retry", "sometimes"], "--retry"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_flash-cluster"))
            .args(["--port", "0", "--quiet"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// kill -9 of the cluster itself: no stop step runs, and the kernel's PDEATHSIG takes the copies.
#[test]
fn copies_die_with_the_cluster_even_under_kill_9() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "2"]);
    let copies = pids(&cluster.status());
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|&p| alive(p)));
    cluster.server.kill_9();
    until_true("the copies to die with the cluster", PATIENCE, || copies.iter().all(|&p| !alive(p)));
}

/// SIGTERM: a request in flight is answered, then every copy's whole process group is stopped
/// (a copy's own child included), and the cluster exits 0.
#[test]
fn a_graceful_stop_finishes_requests_in_flight_and_stops_each_copys_group() {
    let backend = format!(
        r#"sh -c 'sleep 600 & echo $! > child-$1.pid; exec "$2" --port "$0" --quiet' {{port}} {{index}} {}"#,
        server_04().display()
    );
    let mut cluster = Cluster::start(&["--backend", &backend, "--size", "2"]);
    let copies = pids(&cluster.status());
    let scratch = cluster.scratch.path().to_path_buf();
    let grandchildren: Vec<u32> = (0..2)
        .map(|i| {
            let file = scratch.join(format!("child-{i}.pid"));
            until("a copy's child pid", PATIENCE, || std::fs::read_to_string(&file).ok()?.trim().parse().ok())
        })
        .collect();
    assert!(grandchildren.iter().all(|&p| alive(p)));

    let mut client = cluster.client();
    let answered = std::thread::scope(|s| {
        let slow = s.spawn(move || client.get("/sleep?ms=700"));
        until_true("the slow request to reach a copy", PATIENCE, || {
            cluster.copies().iter().any(|c| c["in_flight"].as_u64() == Some(1))
        });
        let status = cluster.server.terminate();
        assert!(status.success(), "the cluster's exit: {status}");
        slow.join().unwrap()
    });
    let res = answered.expect("the request in flight at SIGTERM is answered");
    assert_eq!((res.status, res.text().as_str()), (200, "slept 700 ms\n"));
    for pid in copies.iter().chain(&grandchildren) {
        assert!(!alive(*pid), "process {pid} outlived the cluster");
    }
}

/// A killed copy comes back on a new process (and a new port), and the restart is counted.
#[test]
fn a_killed_copy_is_restarted() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "1", "--restart-delay", "10ms"]);
    let before = cluster.copies()[0].clone();
    sigkill(before["pid"].as_u64().unwrap() as u32);
    let after = until("the copy to be back", PATIENCE, || {
        let copy = cluster.copies().into_iter().next()?;
        (copy["state"] == "healthy" && copy["pid"] != before["pid"]).then_some(copy)
    });
    assert_eq!(after["restarts"], 1, "{after}");
    assert_eq!(after["last_exit"], "killed by SIGKILL", "{after}");
    assert_eq!(cluster.client().get("/hello").unwrap().status, 200);
}

/// A stderr nobody reads any more (`flash-cluster ... 2>&1 | head`, once `head` has exited)
/// costs the log, not the cluster. Every copy event is logged; `eprintln!` panicked on the
/// closed pipe and took the supervisor with it, which then never told the proxy loop to stop:
/// the cluster hung at start, its copies unreaped.
#[test]
fn a_closed_stderr_costs_the_log_not_the_cluster() {
    let backend = backend_04();
    let mut cluster =
        Cluster::start_with_stderr_closed(&["--backend", &backend, "--size", "2", "--restart-delay", "10ms"]);
    let res = cluster.client().get("/hello").unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let before = until("two copies", PATIENCE, || Some(cluster.children()).filter(|c| c.len() == 2));
    sigkill(before[0]);
    let after = until("the killed copy to be replaced", PATIENCE, || {
        Some(cluster.children()).filter(|c| c.len() == 2 && !c.contains(&before[0]))
    });
    until_true("the new copy to answer through the cluster", PATIENCE, || {
        (0..4).all(|_| cluster.client().get("/hello").is_ok_and(|r| r.status == 200))
    });
    assert!(cluster.server.terminate().success());
    assert!(after.iter().all(|&pid| !alive(pid)), "copies left behind: {after:?}");
}

/// A server that reads its port from `$PORT` (as many do) finds its copy's port there, not
/// whatever the cluster's own environment held.
#[test]
fn a_copy_finds_its_port_in_the_environment_too() {
    let backend = format!(r#"sh -c 'exec "$1" --port "$PORT" --quiet' {{port}} {}"#, server_04().display());
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flash-cluster"));
    cmd.args(["--quiet", "--admin-port", "0", "--backend", &backend, "--size", "1"])
        .env("PORT", "0")
        .current_dir(scratch.path());
    let server = flash_conformance::process::ChildServer::spawn(cmd, scratch.path());
    let mut client = flash_common::client::Client::connect(server.addr(), PATIENCE).unwrap();
    assert_eq!(client.get("/hello").unwrap().status, 200);
}
