//! Measuring: one server under each scenario, `--runs` times, summarized into cells.
//!
//! A server compare starts is started afresh for every scenario (so that one scenario's leftovers,
//! such as 10,000 idle connections, cannot colour the next, and the kernel's RSS high-water mark
//! belongs to that scenario alone), measured, and stopped with SIGTERM; a `--peer` already running
//! is measured the same way, minus what only a child process can tell. The judgement of each cell
//! (its [`Status`] and note) is made here, from the runs, once: the table and the page only show it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::ladder::REPLOG;
use super::results::{Cell, Kind, RunFigures, ServerReport, Status};
use super::scenario::{open_idle, IdleCensus, Scenario, Settings, IDLE_CONNECTIONS};
use super::server::{self, Launch, StartError};
use crate::report::{group, latency};
use crate::stats::LoadResult;
use crate::{procfs, Interrupt};

/// Measures a server that compare starts (a Flash server or a reference), scenario by scenario.
/// A server that cannot run on this machine (it exits with a one-line error before it listens) is
/// reported as skipped, with that line as the reason, and the comparison goes on.
pub fn started(
    name: &str,
    kind: Kind,
    launch: &Launch,
    scenarios: &[Scenario],
    settings: &Settings,
    interrupt: &Interrupt,
) -> ServerReport {
    let mut cells: Vec<Cell> = Vec::new();
    for scenario in scenarios {
        let cell = if interrupt.requested() {
            not_run(scenario)
        } else if kind == Kind::Reference && scenario.flash_only {
            skipped(scenario, "needs Flash's routes".into())
        } else if scenario.for_replog() != (name == REPLOG) {
            let why =
                if scenario.for_replog() { "not a replicated log" } else { "the replicated log serves its own API" };
            skipped(scenario, why.into())
        } else {
            match measure_started(name, launch, scenario, settings, interrupt) {
                Ok(cell) => cell,
                Err(why) if cells.iter().all(|c| c.runs.is_empty()) => {
                    eprintln!("{name}: skipped: {why}");
                    return ServerReport { name: name.into(), kind, skipped: Some(why), cells: Vec::new() };
                }
                Err(why) => skipped(scenario, why),
            }
        };
        cells.push(cell);
    }
    ServerReport { name: name.into(), kind, skipped: None, cells }
}

/// Measures a server that is already running (`--peer NAME=URL`).
pub fn running(
    name: &str,
    addr: SocketAddr,
    scenarios: &[Scenario],
    settings: &Settings,
    interrupt: &Interrupt,
) -> ServerReport {
    let cells = scenarios
        .iter()
        .map(|scenario| {
            if interrupt.requested() {
                not_run(scenario)
            } else if scenario.flash_only {
                skipped(scenario, "needs Flash's routes".into())
            } else {
                measure(name, addr, None, scenario, settings, interrupt)
            }
        })
        .collect();
    ServerReport { name: name.into(), kind: Kind::Reference, skipped: None, cells }
}

/// Starts the server, measures one scenario, stops it. `Err` carries the reason when the server
/// cannot run here at all; every other failure is a cell with status `failed`.
fn measure_started(
    name: &str,
    launch: &Launch,
    scenario: &Scenario,
    settings: &Settings,
    interrupt: &Interrupt,
) -> Result<Cell, String> {
    let mut running = match server::start(launch, interrupt) {
        Ok(running) => running,
        Err(StartError::Unavailable(why)) => return Err(why),
        Err(StartError::Failed(why)) => {
            eprintln!("{name} {}: {why}", scenario.name);
            return Ok(failed(scenario, why));
        }
    };
    let pid = running.pid();
    eprintln!("{name:>20} {:<12} server pid {pid} at {}", scenario.name, running.addr);
    // The start-up peak (building the site, loading data) is not the scenario's: reset the
    // kernel's high-water mark so that VmHWM measures this scenario alone.
    procfs::reset_peak_rss(pid);
    let sampler = server::Sampler::start(pid);
    let mut cell = measure(name, running.addr, Some(pid), scenario, settings, interrupt);
    cell.peak_threads = Some(sampler.finish());
    cell.peak_rss_kib = procfs::process_status(pid).map(|s| s.peak_rss_kib);
    if let Some(why) = running.exited() {
        cell.status = Status::Failed;
        cell.note = format!("the server {why}; {}", cell.note).trim_end_matches("; ").to_string();
    } else if !running.stop() {
        cell.note = format!("{} did not exit within 5 s of SIGTERM (killed)", cell.note).trim().to_string();
    }
    Ok(cell)
}

/// Runs one scenario `runs` times against `addr` and summarizes.
fn measure(
    name: &str,
    addr: SocketAddr,
    pid: Option<u32>,
    scenario: &Scenario,
    settings: &Settings,
    interrupt: &Interrupt,
) -> Cell {
    let spec = match scenario.spec(addr, settings, pid) {
        Ok(spec) => spec,
        Err(e) => return failed(scenario, e),
    };
    let mut results = Vec::new();
    let mut censuses = Vec::new();
    for run in 0..settings.runs {
        if interrupt.requested() {
            break;
        }
        let idle = scenario.holds_idle_connections().then(|| open_idle(addr, IDLE_CONNECTIONS, interrupt.flag()));
        let result = match crate::run(&spec, interrupt.flag()) {
            Ok(result) => result,
            Err(e) => return failed(scenario, format!("load generator error: {e}")),
        };
        if let Some(idle) = idle {
            censuses.push(IdleCensus::take(&idle));
        }
        eprintln!(
            "{name:>20} {:<12} run {}/{}: {:>10} req/s, p99 {}, {} errors",
            scenario.name,
            run + 1,
            settings.runs,
            group(result.requests_per_sec as u64),
            latency(result.latency.p99_us),
            result.errors.total()
        );
        let dead = pid.is_some_and(|p| procfs::process_status(p).is_none());
        results.push(result);
        if dead {
            break;
        }
    }
    let stopped_at = results.iter().position(|r| r.interrupted);
    if stopped_at.is_some() && results.iter().all(|r| r.requests == 0) {
        return not_run(scenario);
    }
    let mut cell = summarize(scenario, &results);
    let mut extra = Vec::new();
    if let Some(i) = stopped_at {
        extra.push(format!(
            "stopped by a signal during run {} of {} (it covers {:.2} s)",
            i + 1,
            settings.runs,
            results[i].seconds
        ));
    }
    if let Some(census) = censuses.first() {
        let mut text = census.describe();
        if censuses.len() > 1 {
            let held: Vec<String> = censuses.iter().map(|c| group(c.open as u64)).collect();
            text.push_str(&format!(" (still open after each run: {})", held.join(", ")));
        }
        // The model turning clients away (or serving one and queueing the rest) is what this
        // scenario exists to show; only a server that died is a failure.
        let died = pid.is_some_and(|p| procfs::process_status(p).is_none());
        if !died && cell.status != Status::Ok {
            cell.status = Status::Limit;
            text.push_str("; the model's limit, not a crash");
        }
        // First in the note: it is what this scenario is about.
        cell.note = if cell.note.is_empty() { text } else { format!("{text}; {}", cell.note) };
    }
    // When the generator was the bottleneck the cell measures flash-load, and the reader must know.
    if let Some(warning) = results.iter().flat_map(|r| &r.warnings).find(|w| w.contains("saturated")) {
        extra.push(warning.clone());
    }
    for note in extra {
        cell.note = if cell.note.is_empty() { note } else { format!("{}; {note}", cell.note) };
    }
    cell
}

/// Medians, spread and status from the runs.
pub fn summarize(scenario: &Scenario, results: &[LoadResult]) -> Cell {
    let runs: Vec<RunFigures> = results.iter().map(RunFigures::from_result).collect();
    let med = |f: &dyn Fn(&RunFigures) -> f64| median(runs.iter().map(f).collect());
    let median_figures = RunFigures {
        rps: med(&|r| r.rps),
        p50_us: med(&|r| r.p50_us),
        p99_us: med(&|r| r.p99_us),
        p999_us: med(&|r| r.p999_us),
        errors: med(&|r| r.errors as f64) as u64,
        cpu_seconds: runs.iter().all(|r| r.cpu_seconds.is_some()).then(|| med(&|r| r.cpu_seconds.unwrap_or(0.0))),
        generator_busy: med(&|r| r.generator_busy),
        in_flight: med(&|r| r.in_flight as f64) as u64,
        oldest_in_flight_us: med(&|r| r.oldest_in_flight_us),
        kept_up: runs.iter().all(|r| r.kept_up.is_some()).then(|| med(&|r| r.kept_up.unwrap_or(0.0))),
    };
    // The spectrum of the run whose throughput is the median represents the cell.
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| runs[a].rps.total_cmp(&runs[b].rps));
    let spectrum = order.get(order.len() / 2).map(|&i| results[i].spectrum.clone()).unwrap_or_default();
    let total_requests: u64 = results.iter().map(|r| r.requests).sum();
    let total_errors: u64 = runs.iter().map(|r| r.errors).sum();
    // Answers with a 4xx or 5xx status (a 503 from a full server) are counted in req/s like any
    // answer, so the reader must be told what share they were.
    let mut refusals: BTreeMap<u16, u64> = BTreeMap::new();
    for (code, n) in results.iter().flat_map(|r| &r.status).filter(|(code, _)| **code >= 400) {
        *refusals.entry(*code).or_default() += n;
    }
    let refused: u64 = refusals.values().sum();
    let (status, note) = if total_requests == 0 {
        (Status::Failed, "no request was answered".to_string())
    } else if median_figures.rps == 0.0 {
        (Status::Failed, "no request was answered in most runs".to_string())
    } else if total_errors > 0 {
        let e = results.iter().fold(crate::Errors::default(), |mut acc, r| {
            acc.add(&r.errors);
            acc
        });
        (
            Status::Errors,
            format!(
                "errors over all runs: connect {}, reset {}, closed {}, timeout {}, malformed {}",
                e.connect, e.reset, e.closed, e.timeout, e.malformed
            ),
        )
    } else if refused > 0 {
        (Status::Errors, String::new())
    } else {
        (Status::Ok, String::new())
    };
    let mut notes: Vec<String> = if note.is_empty() { Vec::new() } else { vec![note] };
    if refused > 0 {
        let codes: Vec<String> = refusals.iter().map(|(code, n)| format!("{code}: {}", group(*n))).collect();
        notes.push(format!(
            "{:.0}% of the answers were errors ({})",
            refused as f64 / total_requests as f64 * 100.0,
            codes.join(", ")
        ));
    }
    // Closed-loop percentiles only cover answered requests; a server that leaves some connections
    // waiting (a sequential one) looks fast unless the waiting is said.
    let oldest = median_figures.oldest_in_flight_us;
    if oldest > 100_000.0 && oldest > 10.0 * median_figures.p99_us {
        notes.push(format!(
            "{} requests were still unanswered at the deadline, the oldest after {} (not in the percentiles)",
            median_figures.in_flight,
            latency(oldest)
        ));
    }
    if let Some(kept) = median_figures.kept_up.filter(|k| *k < 0.9) {
        notes.push(format!("answered only {:.0}% of the asked rate", kept * 100.0));
    }
    Cell {
        scenario: scenario.name.into(),
        status,
        note: notes.join("; "),
        median: median_figures,
        rps_min: if runs.is_empty() { 0.0 } else { runs.iter().map(|r| r.rps).fold(f64::INFINITY, f64::min) },
        rps_max: runs.iter().map(|r| r.rps).fold(0.0, f64::max),
        runs,
        spectrum,
        ..Cell::default()
    }
}

/// A cell for a scenario that could not run.
fn failed(scenario: &Scenario, why: String) -> Cell {
    Cell { scenario: scenario.name.into(), status: Status::Failed, note: why, ..Cell::default() }
}

/// A cell for a scenario left out, and why.
fn skipped(scenario: &Scenario, why: String) -> Cell {
    Cell { scenario: scenario.name.into(), status: Status::Skipped, note: why, ..Cell::default() }
}

/// A cell for a scenario a signal kept from running.
fn not_run(scenario: &Scenario) -> Cell {
    skipped(scenario, "not run: the comparison was stopped by a signal".into())
}

/// The median (mean of the middle two for an even count); 0 when empty.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::scenario::SCENARIOS;
    use super::super::server::tests::fake;
    use super::super::server::PortRule::Announced;
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn error_answers_are_not_ok() {
        let mut result = crate::stats::merge(Vec::new(), Instant::now(), None).0;
        result.requests = 100;
        result.requests_per_sec = 100.0;
        result.status.insert(200, 10);
        result.status.insert(503, 90);
        let cell = summarize(&SCENARIOS[0], &[result]);
        assert_eq!(cell.status, Status::Errors);
        assert!(cell.note.contains("90% of the answers were errors (503: 90)"), "{}", cell.note);
    }

    #[test]
    fn a_server_that_cannot_run_here_is_skipped_with_its_reason() {
        let launch = fake(
            "echo 'error: io_uring is not available: Operation not permitted (os error 1)' >&2\nexit 1",
            Announced,
        );
        let settings = Settings { duration: Duration::from_millis(100), warmup: Duration::ZERO, runs: 1, threads: 1 };
        let report = started("08-io-uring", Kind::Flash, &launch, &SCENARIOS[..2], &settings, &Interrupt::new());
        assert_eq!(
            report.skipped.as_deref(),
            Some("error: io_uring is not available: Operation not permitted (os error 1)")
        );
        assert!(report.cells.is_empty(), "no scenario is tried after the first start says why: {report:?}");
    }

    #[test]
    fn a_server_that_crashes_at_start_fails_each_scenario() {
        let launch = fake(
            "echo 'thread main panicked at src/main.rs:3' >&2\necho 'note: run with RUST_BACKTRACE=1' >&2\nexit 101",
            Announced,
        );
        let settings = Settings { duration: Duration::from_millis(100), warmup: Duration::ZERO, runs: 1, threads: 1 };
        let report = started("09-broken", Kind::Flash, &launch, &SCENARIOS[..2], &settings, &Interrupt::new());
        assert_eq!(report.skipped, None);
        assert_eq!(report.cells.len(), 2);
        for cell in &report.cells {
            assert_eq!(cell.status, Status::Failed, "{cell:?}");
            assert!(cell.note.contains("101"), "the exit status is told: {}", cell.note);
        }
    }
}
