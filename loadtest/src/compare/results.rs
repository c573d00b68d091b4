//! What a comparison found, as `results.json` holds it: the schema, and nothing that measures.
//!
//! The Markdown table, the web page and `--from-json` all read these types, so they are plain data
//! with serde derives; every judgement (is a difference real, which status a cell gets) is made
//! once, elsewhere, and stored here as its outcome. Fields only grow, with `#[serde(default)]`, so
//! that a `results.json` written by an older flash-load still re-renders.

use serde::{Deserialize, Serialize};

use crate::stats::{LoadResult, Quantile};

/// What became of one server under one scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every request answered, none with an error status.
    Ok,
    /// Some requests failed or were answered 4xx/5xx; the note counts them.
    Errors,
    /// The model turned clients away, or could not serve them, while 10,000 idle connections
    /// were held, as it is built to: a lesson, not a crash.
    Limit,
    /// The server died, did not start, or answered nothing.
    Failed,
    /// Not run: a reference lacks Flash's routes, or a signal came first. The default, so that
    /// a cell nobody judged never reads as a success.
    #[default]
    Skipped,
}

impl Status {
    /// The word the table and `results.json` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Errors => "errors",
            Status::Limit => "limit",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a server is one of Flash's lessons or a reference measured beside them for scale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A Flash server, built from this workspace.
    #[default]
    Flash,
    /// A server outside Flash (nginx, hyper, may_minihttp, or any `--peer`): the ceiling a reader
    /// compares the lessons with. Older reports called it `peer`.
    #[serde(alias = "peer")]
    Reference,
}

/// The figures of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Errors of every kind.
    pub errors: u64,
    /// The server's CPU seconds during the measured window, when known.
    pub cpu_seconds: Option<f64>,
    /// The busiest load-generator thread's share of a core.
    pub generator_busy: f64,
    /// Requests unanswered at the deadline.
    pub in_flight: u64,
    /// How long the oldest of them had waited, µs.
    pub oldest_in_flight_us: f64,
    /// Open loop: the share of the asked rate that was answered (1.0 = kept up).
    pub kept_up: Option<f64>,
}

impl RunFigures {
    /// The figures the report keeps of one load run.
    pub fn from_result(r: &LoadResult) -> RunFigures {
        RunFigures {
            rps: r.requests_per_sec,
            p50_us: r.latency.p50_us,
            p99_us: r.latency.p99_us,
            p999_us: r.latency.p999_us,
            errors: r.errors.total(),
            cpu_seconds: r.cpu.server_cpu_seconds,
            generator_busy: r.cpu.generator_threads.iter().copied().fold(0.0, f64::max),
            in_flight: r.in_flight_at_deadline,
            oldest_in_flight_us: r.oldest_in_flight_us,
            kept_up: r.rate.map(|rate| r.requests_per_sec / rate),
        }
    }
}

/// One server under one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The scenario's name.
    pub scenario: String,
    /// What became of it.
    pub status: Status,
    /// What went wrong, or what else the reader should know.
    pub note: String,
    /// Each run's figures.
    pub runs: Vec<RunFigures>,
    /// Medians over the runs.
    pub median: RunFigures,
    /// The lowest requests/s of the runs.
    pub rps_min: f64,
    /// The highest requests/s of the runs.
    pub rps_max: f64,
    /// The server's peak resident memory in KiB (started servers only).
    pub peak_rss_kib: Option<u64>,
    /// The server's peak thread count (started servers only).
    pub peak_threads: Option<u64>,
    /// The percentile spectrum of the median run.
    pub spectrum: Vec<Quantile>,
}

impl Cell {
    /// Whether the cell has figures to show (some run answered something).
    pub fn measured(&self) -> bool {
        !self.runs.is_empty() && self.median.rps > 0.0
    }
}

/// All scenarios of one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// The server's name (a Flash folder, a reference's name, or a `--peer` name).
    pub name: String,
    /// A Flash lesson or a reference.
    pub kind: Kind,
    /// Why the server was not measured at all (not in this checkout, not installed, cannot run on
    /// this machine); its cells are then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// One cell per scenario.
    pub cells: Vec<Cell>,
}

impl ServerReport {
    /// The name as the table and the charts show it: a reference says that it is one.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Flash => self.name.clone(),
            Kind::Reference => format!("{} (reference)", self.name),
        }
    }
}

/// The machine the comparison ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// CPUs available.
    pub cores: usize,
    /// The kernel release.
    pub kernel: String,
    /// Memory in GiB.
    pub memory_gib: f64,
}

impl Machine {
    /// Describes this machine from /proc.
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".to_string(), |(_, v)| v.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores: crate::procfs::available_cpus(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        }
    }
}

/// The whole comparison: what `results.json` holds and what the HTML shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// The command line.
    pub command: Vec<String>,
    /// flash-load's version.
    pub version: String,
    /// Seconds since the Unix epoch when the comparison started.
    pub started_unix: u64,
    /// Where it ran.
    pub machine: Machine,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Runs per cell.
    pub runs: usize,
    /// Whether servers and generator were pinned to separate CPUs.
    pub pinned: bool,
    /// The scenarios run: name and description.
    pub scenarios: Vec<(String, String)>,
    /// The servers, measured or skipped, in ladder order (Flash first, then references).
    pub servers: Vec<ServerReport>,
    /// Whether a signal stopped the comparison early (the cells not reached say so).
    #[serde(default)]
    pub interrupted: bool,
}

impl CompareReport {
    /// The servers that have figures for some scenario, with their position in `servers` (which
    /// fixes their colour in every chart).
    pub fn measured(&self) -> Vec<(usize, &ServerReport)> {
        self.servers.iter().enumerate().filter(|(_, s)| s.cells.iter().any(Cell::measured)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_kinds_read_as_older_reports_wrote_them() {
        let old = r#"{"name": "nginx", "kind": "peer", "cells": [{"scenario": "hello", "status": "limit",
            "note": "", "runs": [], "median": {"rps": 0, "p50_us": 0, "p99_us": 0, "p999_us": 0, "errors": 0,
            "cpu_seconds": null, "generator_busy": 0, "in_flight": 0, "oldest_in_flight_us": 0, "kept_up": null},
            "rps_min": 0, "rps_max": 0, "peak_rss_kib": null, "peak_threads": null, "spectrum": []}]}"#;
        let server: ServerReport = serde_json::from_str(old).unwrap();
        assert_eq!((server.kind, server.cells[0].status, &server.skipped), (Kind::Reference, Status::Limit, &None));
        assert_eq!(server.label(), "nginx (reference)");
        let json = serde_json::to_string(&server).unwrap();
        assert!(json.contains(r#""kind":"reference""#) && json.contains(r#""status":"limit""#), "{json}");
        assert!(!json.contains("skipped"), "a measured server has no skip reason: {json}");
        assert!(serde_json::from_str::<Status>(r#""fine""#).is_err(), "an unknown status is refused");
        assert_eq!(Cell::default().status, Status::Skipped);
    }
}
