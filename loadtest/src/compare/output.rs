//! The comparison as text: the Markdown table printed on stdout and the verdicts on differences.
//!
//! A difference between two servers means something only when it is larger than the run-to-run
//! spread, so each scenario's servers are ranked by median throughput and each neighbouring pair is
//! judged: "beyond the spread" when the slower server's best run is below the faster one's worst.

use std::fmt::Write;

use super::results::{Cell, CompareReport, Kind, Status};
use crate::report::{group, latency};

/// The Markdown report: machine, one table row per server and scenario, and the verdicts.
pub fn markdown(report: &CompareReport) -> String {
    let mut s = String::new();
    let m = &report.machine;
    let _ = writeln!(
        s,
        "## Flash comparison\n\n{} x {} CPUs, {} GiB, Linux {}; {} run(s) of {:.1} s per cell{}, medians shown.\n",
        m.cpu,
        m.cores,
        m.memory_gib,
        m.kernel,
        report.runs,
        report.duration_s,
        if report.pinned { ", servers and load generator pinned to separate CPUs" } else { "" }
    );
    if report.interrupted {
        let _ = writeln!(s, "Stopped early by a signal: partial figures; the cells not reached are marked skipped.\n");
    }
    let _ = writeln!(
        s,
        "| scenario | server | req/s | spread | p50 | p99 | p99.9 | errors | peak RSS | threads | CPU s | status |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (scenario, _) in &report.scenarios {
        for server in &report.servers {
            let Some(cell) = server.cells.iter().find(|c| &c.scenario == scenario) else { continue };
            let _ = writeln!(s, "{}", row(scenario, &server.label(), cell));
        }
    }
    if report.servers.iter().any(|s| s.kind == Kind::Reference && s.skipped.is_none()) {
        let _ = writeln!(
            s,
            "\nA reference is a server outside Flash, measured in the same run for scale: the ceiling, not a lesson."
        );
    }
    let skipped: Vec<String> = report
        .servers
        .iter()
        .filter_map(|server| server.skipped.as_ref().map(|why| format!("- {}: {why}", server.label())))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(s, "\nNot measured:\n{}", skipped.join("\n"));
    }
    let notes: Vec<String> = report
        .servers
        .iter()
        .flat_map(|server| {
            server
                .cells
                .iter()
                .filter(|c| !c.note.is_empty())
                .map(move |c| format!("- {} / {}: {}", server.label(), c.scenario, c.note))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\nNotes:\n{}", notes.join("\n"));
    }
    let lines = verdicts(report);
    if !lines.is_empty() {
        let _ = writeln!(s, "\nDifferences (neighbours by median req/s):\n{}", lines.join("\n"));
    }
    s
}

/// One table row.
fn row(scenario: &str, server: &str, c: &Cell) -> String {
    if matches!(c.status, Status::Failed | Status::Skipped) || !c.measured() {
        return format!(
            "| {scenario} | {server} | - | - | - | - | - | - | {} | {} | - | {} |",
            rss(c),
            threads(c),
            c.status
        );
    }
    let spread = if c.median.rps > 0.0 { (c.rps_max - c.rps_min) / c.median.rps * 100.0 } else { 0.0 };
    format!(
        "| {scenario} | {server} | {} | ±{:.0}% | {} | {} | {} | {} | {} | {} | {} | {} |",
        group(c.median.rps.round() as u64),
        spread / 2.0,
        latency(c.median.p50_us),
        latency(c.median.p99_us),
        latency(c.median.p999_us),
        group(c.median.errors),
        rss(c),
        threads(c),
        c.median.cpu_seconds.map_or("-".into(), |s| format!("{s:.2}")),
        c.status
    )
}

/// Peak RSS in MiB, or a dash.
fn rss(c: &Cell) -> String {
    c.peak_rss_kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Peak threads, or a dash.
fn threads(c: &Cell) -> String {
    c.peak_threads.map_or("-".into(), |t| t.to_string())
}

/// For each scenario, the servers by median throughput and whether each gap exceeds the spread.
pub fn verdicts(report: &CompareReport) -> Vec<String> {
    let mut lines = Vec::new();
    for (scenario, _) in &report.scenarios {
        let mut ranked: Vec<(String, &Cell)> = report
            .servers
            .iter()
            .filter_map(|s| {
                s.cells
                    .iter()
                    .find(|c| {
                        // A model past its limit answers 503s quickly: that speed is no rank.
                        &c.scenario == scenario && c.measured() && !matches!(c.status, Status::Failed | Status::Limit)
                    })
                    .map(|c| (s.label(), c))
            })
            .collect();
        if ranked.len() < 2 {
            continue;
        }
        ranked.sort_by(|a, b| b.1.median.rps.total_cmp(&a.1.median.rps));
        let parts: Vec<String> = ranked
            .windows(2)
            .map(|pair| {
                let ((fast, f), (slow, s)) = (&pair[0], &pair[1]);
                let ratio = if s.median.rps > 0.0 { f.median.rps / s.median.rps } else { f64::INFINITY };
                if f.runs.len() < 2 || s.runs.len() < 2 {
                    format!("{fast} > {slow} ({ratio:.2}x; one run, so the spread is unknown)")
                } else if s.rps_max < f.rps_min {
                    format!("{fast} > {slow} ({ratio:.2}x, beyond the spread)")
                } else {
                    format!("{fast} ~ {slow} ({ratio:.2}x, within the spread)")
                }
            })
            .collect();
        lines.push(format!("- {scenario}: {}", parts.join("; ")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{RunFigures, ServerReport};

    fn server(name: &str, rps: &[f64]) -> ServerReport {
        let runs: Vec<RunFigures> = rps.iter().map(|&rps| RunFigures { rps, ..RunFigures::default() }).collect();
        let mut sorted = rps.to_vec();
        sorted.sort_by(f64::total_cmp);
        let cell = Cell {
            scenario: "hello".into(),
            status: Status::Ok,
            median: RunFigures { rps: sorted[sorted.len() / 2], ..RunFigures::default() },
            rps_min: sorted[0],
            rps_max: sorted[sorted.len() - 1],
            runs,
            ..Cell::default()
        };
        ServerReport { name: name.into(), kind: Kind::Flash, skipped: None, cells: vec![cell] }
    }

    #[test]
    fn differences_are_judged_against_the_spread() {
        let report = CompareReport {
            scenarios: vec![("hello".into(), String::new())],
            servers: vec![
                server("b", &[90.0, 92.0, 95.0]),
                server("a", &[100.0, 105.0, 110.0]),
                server("c", &[88.0, 91.0, 93.0]),
            ],
            ..CompareReport::default()
        };
        let lines = verdicts(&report);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("a > b (1.14x, beyond the spread)"), "{}", lines[0]);
        assert!(lines[0].contains("b ~ c (1.01x, within the spread)"), "{}", lines[0]);
        let table = markdown(&report);
        assert!(table.contains("| hello | a | 105 |"), "{table}");
        assert!(!table.contains("reference") && !table.contains("Not measured"), "{table}");
        let single = CompareReport { servers: vec![server("x", &[10.0]), server("y", &[5.0])], ..report };
        assert!(verdicts(&single)[0].contains("spread is unknown"));
    }

    #[test]
    fn references_are_marked_and_skipped_servers_say_why() {
        let reference = ServerReport { kind: Kind::Reference, ..server("nginx", &[200.0, 210.0, 220.0]) };
        let absent = ServerReport {
            name: "hyper".into(),
            kind: Kind::Reference,
            skipped: Some("no --peers DIR given".into()),
            cells: Vec::new(),
        };
        let report = CompareReport {
            scenarios: vec![("hello".into(), String::new())],
            servers: vec![server("04-epoll", &[100.0, 105.0, 110.0]), reference, absent],
            ..CompareReport::default()
        };
        let table = markdown(&report);
        assert!(table.contains("| hello | nginx (reference) | 210 |"), "{table}");
        assert!(table.contains("A reference is a server outside Flash"), "{table}");
        assert!(table.contains("Not measured:\n- hyper (reference): no --peers DIR given"), "{table}");
        assert!(!table.contains("| hello | hyper"), "a server not measured has no row: {table}");
        assert!(verdicts(&report)[0].contains("nginx (reference) > 04-epoll (2.00x, beyond the spread)"));
    }
}
