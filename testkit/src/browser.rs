//! A page in a real browser: headless Chromium loads a URL, runs its scripts, and dumps the DOM,
//! which the test then reads. Pages that test themselves (the replicated log's pages take
//! `?selftest=...`) record what happened in `data-` attributes of `<body>`.
//!
//! Chromium is required (CI installs Debian's `chromium`): without it a test fails and says how
//! to install it, rather than passing without looking.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long Chromium may take, start to dump, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(90);

/// Finds the Chromium binary Debian installs.
pub fn chromium() -> PathBuf {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let path = Path::new(dir).join(candidate);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("this test needs a headless browser: run `apt-get install -y chromium` (CI's .ci/run installs it)");
}

/// Loads `url` in headless Chromium with a fresh profile in `profile` and returns the DOM once
/// the page's scripts have run: `--virtual-time-budget` lets the page's own timers and fetches
/// finish (virtual time stands still while a fetch is pending) before the dump, up to `budget`
/// of page time. Kills Chromium and panics if it takes longer than 90 s of real time.
pub fn dump_dom(url: &str, profile: &Path, budget: Duration) -> String {
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .arg("--dump-dom")
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(output) => String::from_utf8_lossy(&output.expect("chromium ran").stdout).into_owned(),
        Err(_) => {
            // By pid, the one process this function started.
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("chromium did not finish within {DEADLINE:?}");
        }
    }
}
