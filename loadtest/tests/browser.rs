//! The comparison report in a real browser: real measurements (short runs against a test server)
//! go through the same summary and rendering as `compare`, and headless Chromium loads the page.
//! The page's own script writes, for each chart, the servers whose data marks (the elements of
//! class `series`, not the background or the axes) were laid out with a non-zero size; the test
//! reads those lists from the DOM Chromium dumps and wants every measured server in every chart.
//! Chromium is required (CI installs Debian's `chromium`): without it the test fails and says how
//! to install it, rather than passing without looking.

mod common;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{Behaviour, TestServer};
use flash_load::compare::{self, CompareReport, Kind, ServerReport, SCENARIOS};
use flash_load::{run, LoadSpec};
use flash_testkit::browser::{chromium, dump_dom};

/// A cell made from two real short runs against the test server.
fn measured_cell(url: &str, scenario: &compare::Scenario, connections: usize) -> compare::Cell {
    let mut spec = LoadSpec::get(url).unwrap();
    spec.connections = connections;
    spec.duration = Some(Duration::from_secs(10));
    spec.count = Some(400);
    let results: Vec<_> = (0..2).map(|_| run(&spec, &AtomicBool::new(false)).unwrap()).collect();
    let mut cell = compare::summarize(scenario, &results);
    cell.peak_rss_kib = Some(1024 * connections as u64);
    cell.peak_threads = Some(connections as u64);
    cell
}

#[test]
fn the_report_renders_its_charts_in_chromium() {
    let browser = chromium(); // fail first, and clearly, when the browser is missing
    assert!(browser.is_file());
    let server = TestServer::start(Behaviour::Answer);
    let scenarios = &SCENARIOS[..2];
    let mut servers: Vec<ServerReport> = [("fast", Kind::Flash), ("slow", Kind::Flash), ("ref", Kind::Reference)]
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| ServerReport {
            name: name.to_string(),
            kind: *kind,
            skipped: None,
            cells: scenarios.iter().map(|s| measured_cell(&server.url(), s, 2 + 2 * i)).collect(),
        })
        .collect();
    // A reference already running (`--peer`) has no process figures, so no bar in the memory chart.
    for cell in &mut servers[2].cells {
        cell.peak_rss_kib = None;
    }
    servers.push(ServerReport {
        name: "absent".into(),
        kind: Kind::Reference,
        skipped: Some("nginx is not on PATH (apt-get install -y nginx)".into()),
        cells: Vec::new(),
    });
    let report = CompareReport {
        command: vec!["flash-load".into(), "compare".into()],
        version: "test".into(),
        runs: 2,
        duration_s: 1.0,
        scenarios: scenarios.iter().map(|s| (s.name.to_string(), s.about.to_string())).collect(),
        servers,
        ..CompareReport::default()
    };
    let out = tempfile::Builder::new().prefix("flash-load-report-").tempdir().unwrap();
    let (json, page) = compare::write_report(&report, out.path()).unwrap();
    let back: CompareReport = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    // serde_json's float parsing may differ in the last bit, so figures are compared closely.
    assert_eq!(back.servers.len(), report.servers.len(), "results.json holds every server");
    for (a, b) in back.servers.iter().zip(&report.servers) {
        assert_eq!((&a.name, a.cells.len()), (&b.name, b.cells.len()));
        for (x, y) in a.cells.iter().zip(&b.cells) {
            assert!((x.median.rps - y.median.rps).abs() <= 1e-6 * y.median.rps.max(1.0));
            assert_eq!(x.spectrum.len(), y.spectrum.len());
        }
    }

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page loads nothing from the network");
    let profile = tempfile::Builder::new().prefix("flash-load-chromium-profile-").tempdir().unwrap();
    let dom = dump_dom(&format!("file://{}", page.display()), profile.path(), Duration::from_secs(5));
    // One throughput chart, one latency chart per scenario, one memory chart.
    let mut expected: Vec<(String, Vec<&str>)> = vec![("throughput".into(), vec!["fast", "ref", "slow"])];
    for scenario in scenarios {
        expected.push((format!("latency-{}", scenario.name), vec!["fast", "ref", "slow"]));
    }
    expected.push(("rss".into(), vec!["fast", "slow"]));
    assert!(
        dom.contains(&format!("data-charts-rendered=\"{}\"", expected.len())),
        "chromium should lay out {} charts; the page says: {:?}",
        expected.len(),
        dom.split("data-charts-rendered=").nth(1).map(|s| &s[..s.len().min(8)])
    );
    for (id, servers) in &expected {
        assert_eq!(drawn(&dom, id), *servers, "chart {id}: the servers whose series have a size");
    }
    assert!(dom.contains("class=\"series bar reference\" data-server=\"ref\""), "the reference's bars are marked");
    assert!(dom.contains("class=\"series curve reference\" data-server=\"ref\""), "and its curves");
    assert!(dom.contains("absent (reference): nginx is not on PATH"), "a server not measured says why");
    assert!(!dom.contains("data-server=\"absent\""), "and has no series");
}

/// The servers the page's script found drawn, with a size, in the chart `id` (its figure's
/// `data-drawn`, a JSON list).
fn drawn(dom: &str, id: &str) -> Vec<String> {
    let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no chart {id} in the page"));
    let tag = &dom[start..start + dom[start..].find('>').unwrap()];
    let value = tag
        .split("data-drawn=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the script did not look at chart {id}: {tag}"));
    serde_json::from_str(&value.replace("&quot;", "\"")).unwrap()
}
