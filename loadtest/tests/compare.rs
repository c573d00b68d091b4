//! `flash-load compare` end to end, as CI runs it: build a real server (01, the simplest, in the
//! `dev` profile so that the check stays quick), start it on port 0, run two short scenarios,
//! stop it with SIGTERM, and write the table, `results.json` and `index.html`; beside it, a
//! reference from `--peers DIR` (a stand-in: a script that runs server 01 on the `$PORT` it is
//! given, so that the test needs no nginx and no peer build), and a reference missing from that
//! folder, reported as not measured with the reason.

use std::path::Path;
use std::process::Command;

use flash_load::compare::server::target_dir;
use flash_load::compare::{CompareReport, Kind, Status};

#[test]
fn compare_builds_runs_and_reports_a_real_server_beside_a_reference() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let out = tempfile::Builder::new().prefix("flash-compare-test-").tempdir().unwrap();
    // The reference stand-in runs the binary compare builds first, so it exists when it starts.
    let peers = tempfile::Builder::new().prefix("flash-compare-peers-").tempdir().unwrap();
    let server_01 = target_dir(&workspace).join("debug").join("flash-01-sequential");
    let fake = peers.path().join("hyper-peer");
    flash_testkit::script::install(
        &fake,
        &format!("#!/bin/sh\nexec {} --port \"$PORT\" --quiet\n", server_01.display()),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_flash-load"))
        .current_dir(&workspace)
        .args(["compare", "--servers", "01,hyper,may_minihttp", "--scenarios", "hello,static", "--runs", "2"])
        .args(["--duration", "200ms", "--warmup", "0s", "--cargo-profile", "dev", "--peers"])
        .arg(peers.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("flash-load runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "compare failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("| scenario | server | req/s |"), "the Markdown table is printed:\n{stdout}");
    assert!(stdout.contains("| hello | 01-sequential |") && stdout.contains("| static | 01-sequential |"), "{stdout}");
    assert!(stdout.contains("| hello | hyper (reference) |"), "the reference is marked in the table:\n{stdout}");
    assert!(stdout.contains("Not measured:\n- may_minihttp (reference): no may-peer in "), "{stdout}");
    assert!(stdout.contains("index.html"), "the report's path is printed");

    let json = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let report: CompareReport = serde_json::from_str(&json).unwrap();
    let names: Vec<(&str, Kind)> = report.servers.iter().map(|s| (s.name.as_str(), s.kind)).collect();
    assert_eq!(names, [("01-sequential", Kind::Flash), ("hyper", Kind::Reference), ("may_minihttp", Kind::Reference)]);
    let (flash, reference, missing) = (&report.servers[0], &report.servers[1], &report.servers[2]);
    assert_eq!(flash.skipped, None);
    for cell in &flash.cells {
        assert_eq!(cell.status, Status::Ok, "{}: {}", cell.scenario, cell.note);
        assert_eq!(cell.runs.len(), 2);
        assert!(cell.median.rps > 0.0 && cell.median.p50_us > 0.0);
        assert!(cell.peak_rss_kib.unwrap_or(0) > 0 && cell.peak_threads.unwrap_or(0) >= 1);
        assert!(!cell.note.contains("SIGTERM"), "the server stops gracefully: {}", cell.note);
    }
    // The reference is started and measured like a server, minus Flash's routes.
    let hello = &reference.cells[0];
    assert_eq!((hello.scenario.as_str(), hello.status), ("hello", Status::Ok), "{}", hello.note);
    assert!(hello.median.rps > 0.0 && hello.peak_rss_kib.unwrap_or(0) > 0, "{hello:?}");
    let static_cell = &reference.cells[1];
    assert_eq!((static_cell.status, static_cell.note.as_str()), (Status::Skipped, "needs Flash's routes"));
    assert!(missing.cells.is_empty());
    assert!(missing.skipped.as_deref().is_some_and(|why| why.starts_with("no may-peer in ")), "{missing:?}");

    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.matches("<svg").count() >= 3, "throughput, latency and memory charts are in the page");
    assert!(html.contains("class=\"series bar reference\" data-server=\"hyper\""), "the reference's bars are marked");
}
