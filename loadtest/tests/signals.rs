//! Ctrl-C on the `flash-load` binary: a long run stopped by SIGINT still prints its report and
//! writes its JSON, and `compare` stopped mid-scenario stops the server it started and writes the
//! partial report. Both runs are asked for 60 s and are stopped as soon as load is seen arriving
//! (requests counted by the test server; the load's connections to the real one), so each test takes a
//! moment, and a binary that ignored the signal would fail on the exit deadline, not hang.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Behaviour, TestServer};
use flash_load::compare::CompareReport;
use flash_testkit::child::Reaper;
use flash_testkit::wait::until_true;

/// The exit code after SIGINT: 128 + 2, as for any program stopped by Ctrl-C.
const INTERRUPTED: i32 = 130;

/// Sends SIGINT to `pid`, as Ctrl-C at a terminal would.
fn interrupt(pid: u32) {
    let status = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -INT {pid}");
}

/// Waits (bounded) for the child to exit and returns its status and stdout.
fn finish(child: &mut Reaper, limit: Duration) -> (ExitStatus, String) {
    let mut status = None;
    until_true("flash-load to exit after SIGINT", limit, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    let mut stdout = String::new();
    child.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    (status.unwrap(), stdout)
}

#[test]
fn sigint_stops_a_run_with_a_report_and_its_json() {
    let server = TestServer::start(Behaviour::Answer);
    let dir = tempfile::Builder::new().prefix("flash-load-sigint-").tempdir().unwrap();
    let json = dir.path().join("out.json");
    let child = Command::new(env!("CARGO_BIN_EXE_flash-load"))
        .arg(server.url())
        .args(["-c", "4", "-d", "60s", "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    // Measuring starts at once (no warm-up): requests arriving at the server mean it is under way.
    until_true("requests at the test server", Duration::from_secs(30), || {
        server.requests.load(Ordering::SeqCst) >= 100
    });
    interrupt(child.0.id());
    let (status, stdout) = finish(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(INTERRUPTED), "{stdout}");
    assert!(stdout.contains("stopped    early, by a signal"), "the report says it was stopped:\n{stdout}");
    assert!(stdout.contains("in flight when stopped"), "the in-flight count is reported:\n{stdout}");

    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let result = &written["result"];
    assert_eq!(result["interrupted"], true);
    let answered = result["requests"].as_u64().unwrap();
    assert!(answered > 0, "what was measured before the signal is kept: {result}");
    assert!(result["seconds"].as_f64().unwrap() < 50.0, "the window ends at the signal, not at 60 s");
    // Every answered request reached the server, and nothing is sent after the process ended.
    assert!(answered <= server.requests.load(Ordering::SeqCst));
}

/// Established TCP connections from this machine to `port` (client ends, from /proc/net/tcp).
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[2].ends_with(&remote) && fields[3] == "01"
        })
        .count()
}

#[test]
fn sigint_stops_compare_and_its_server_and_writes_the_partial_report() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let out = tempfile::Builder::new().prefix("flash-load-compare-sigint-").tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_flash-load"))
        .current_dir(&workspace)
        .args(["compare", "--servers", "01", "--scenarios", "hello,static", "--runs", "2"])
        .args(["--duration", "60s", "--warmup", "0s", "--cargo-profile", "dev", "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    // compare names each server it starts on stderr: "... server pid N at ADDR".
    let (tx, rx) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // The first start may include building server 01 in the dev profile.
    let deadline = Instant::now() + Duration::from_secs(300);
    let (pid, port): (u32, u16) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no server was started:\n{}", seen.join("\n")));
        if let Some(rest) = line.split(" server pid ").nth(1) {
            let (pid, addr) = rest.split_once(" at ").unwrap();
            break (pid.parse().unwrap(), addr.trim().rsplit(':').next().unwrap().parse().unwrap());
        }
        seen.push(line);
    };
    // The hello scenario's 64 connections open as its measured run begins (no warm-up).
    until_true("the load's connections to the server", Duration::from_secs(30), || connections_to(port) >= 64);
    interrupt(child.0.id());
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(INTERRUPTED), "{stdout}");
    // compare reaps its server: the pid is gone (or, at worst, reused by something else).
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(!comm.contains("flash-01"), "server {pid} outlived compare");
    assert!(stdout.contains("Stopped early by a signal"), "{stdout}");
    assert!(stdout.contains("| hello | 01-sequential |"), "the partial table is printed:\n{stdout}");
    assert!(stdout.contains("index.html"), "the report's path is printed:\n{stdout}");

    let report: CompareReport =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap()).unwrap();
    assert!(report.interrupted);
    let cells = &report.servers[0].cells;
    assert_eq!(cells[0].scenario, "hello");
    assert_eq!(cells[0].runs.len(), 1, "the second run never started: {:?}", cells[0]);
    assert!(cells[0].median.rps > 0.0, "the part measured is kept");
    assert!(cells[0].note.contains("stopped by a signal during run 1 of 2"), "{}", cells[0].note);
    assert!(!cells[0].note.contains("SIGTERM"), "the server was stopped gracefully: {}", cells[0].note);
    assert_eq!((cells[1].scenario.as_str(), cells[1].status.as_str()), ("static", "skipped"));
}
