//! `flash-load compare` end to end, as CI runs it: build a real server (01, the simplest, in the
//! `dev` profile so that the check stays quick), start it on port 0, run two short scenarios,
//! stop it with SIGTERM, and write the table, `results.json` and `index.html`.

use std::path::{Path, PathBuf};
use std::process::Command;

use flash_load::compare::CompareReport;

/// A private temporary folder, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn compare_builds_runs_and_reports_a_real_server() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let out = TempDir(std::env::temp_dir().join(format!("flash-compare-test-{}", std::process::id())));
    let output = Command::new(env!("CARGO_BIN_EXE_flash-load"))
        .current_dir(&workspace)
        .args(["compare", "--servers", "01", "--scenarios", "hello,static", "--runs", "2"])
        .args(["--duration", "200ms", "--warmup", "0s", "--cargo-profile", "dev", "--out"])
        .arg(&out.0)
        .output()
        .expect("flash-load runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "compare failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("| scenario | server | req/s |"), "the Markdown table is printed:\n{stdout}");
    assert!(stdout.contains("| hello | 01-sequential |") && stdout.contains("| static | 01-sequential |"), "{stdout}");
    assert!(stdout.contains("index.html"), "the report's path is printed");

    let json = std::fs::read_to_string(out.0.join("results.json")).unwrap();
    let report: CompareReport = serde_json::from_str(&json).unwrap();
    assert_eq!(report.servers.len(), 1);
    let server = &report.servers[0];
    assert_eq!(server.name, "01-sequential");
    for cell in &server.cells {
        assert_eq!(cell.status, "ok", "{}: {}", cell.scenario, cell.note);
        assert_eq!(cell.runs.len(), 2);
        assert!(cell.median.rps > 0.0 && cell.median.p50_us > 0.0);
        assert!(cell.peak_rss_kib.unwrap_or(0) > 0 && cell.peak_threads.unwrap_or(0) >= 1);
        assert!(!cell.note.contains("SIGTERM"), "the server stops gracefully: {}", cell.note);
    }
    let html = std::fs::read_to_string(out.0.join("index.html")).unwrap();
    assert!(html.matches("<svg").count() >= 3, "throughput, latency and memory charts are in the page");
}
