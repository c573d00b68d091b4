//! `flash-load compare`: every server, the same scenarios, the same instrument, one report.
//!
//! For each server folder it builds the release binary, and for each scenario it starts the server
//! afresh (so that one scenario's leftovers, such as 10,000 idle connections, cannot colour the
//! next, and the kernel's RSS high-water mark belongs to that scenario alone), waits until it
//! answers, runs the load `--runs` times, reads the server's CPU, peak RSS and threads, and stops it
//! with SIGTERM. Peers (`--peer NAME=URL`, such as nginx) are already running and are measured the
//! same way, minus what only a child process can tell.
//!
//! One run is never the whole story: each figure is the median of the runs, the spread (min to max)
//! is kept, and the report says which differences are larger than the spread and which are noise.
//! A server that falls over is reported as such and the comparison goes on; a model that turns
//! clients away by design (a bounded pool answering 503 to the 10,000 idle connections, a
//! sequential server held by the first of them) is reported as reaching its limit, which is a
//! lesson, not a crash. Ctrl-C stops the current run, stops the server, and writes the report of
//! what was measured, the rest marked as not run.

mod html;
mod output;
pub mod server;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::report::group;
use crate::request::{RequestSet, RequestSpec, Target};
use crate::stats::{LoadResult, Quantile};
use crate::{procfs, report, Interrupt, LoadSpec};

pub use html::render as render_html;
pub use output::{markdown, verdicts};

/// The options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Servers to measure, by number or folder name (e.g. `01,04-epoll`); `none` for peers only.
    /// Default: every folder in servers/.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// A server already running to measure too, such as `nginx=http://127.0.0.1:18080`.
    #[arg(long = "peer", value_name = "NAME=URL")]
    pub peers: Vec<String>,
    /// Scenarios to run (default all): hello, hello-close, pipelined, slow-mix, cpu, idle-10k, static.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Measured time per run, such as 1s or 500ms.
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Warm-up before each run.
    #[arg(long, default_value = "200ms", value_parser = crate::parse_duration)]
    pub warmup: Duration,
    /// Runs per server and scenario; figures are medians, and the spread says which differences count.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Put the servers and the load generator on separate CPUs (taskset).
    #[arg(long)]
    pub pin: bool,
    /// `--threads` passed to each server (default: the CPUs it may use).
    #[arg(long)]
    pub server_threads: Option<usize>,
    /// Load generator threads.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Where to write results.json and index.html (default: target/flash-report in the workspace).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The workspace root (default: found from the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Use the binaries as they are instead of running cargo build first.
    #[arg(long)]
    pub no_build: bool,
    /// The cargo profile to build and run the servers with (`dev` makes a quick check, not a
    /// measurement).
    #[arg(long, default_value = "release")]
    pub cargo_profile: String,
    /// Measure nothing: re-render the table and index.html from a results.json written earlier.
    #[arg(long, value_name = "RESULTS_JSON")]
    pub from_json: Option<PathBuf>,
}

/// The scenarios, in report order.
pub const SCENARIOS: [Scenario; 7] = [
    Scenario { name: "hello", about: "GET /hello, 64 keep-alive connections", flash_only: false },
    Scenario {
        name: "hello-close",
        about: "GET /hello, a new connection per request (16 at a time)",
        flash_only: false,
    },
    Scenario { name: "pipelined", about: "GET /hello, 64 connections, 16 pipelined requests each", flash_only: false },
    Scenario { name: "slow-mix", about: "2% GET /sleep?ms=200 among GET /hello, 64 connections", flash_only: true },
    Scenario {
        name: "cpu",
        about: "GET /cpu?n=50000 (about 1 ms of CPU each) open loop at 1,500 req/s, 16 connections: more work than one core can do",
        flash_only: true,
    },
    Scenario {
        name: "idle-10k",
        about: "hello on 64 connections while 10,000 idle ones are held open",
        flash_only: false,
    },
    Scenario { name: "static", about: "GET of a 64 KiB file, 64 keep-alive connections", flash_only: true },
];

/// The end of `compare --help`: what it does, the scenarios, the statuses, and Ctrl-C, built from
/// the scenario table so that the help cannot drift from it.
pub fn help_text() -> String {
    let mut text = String::from(
        "Each server in servers/ is built (release), then for each scenario started afresh on a free port, \
         measured --runs times and stopped with SIGTERM (expect a few minutes for all servers with the defaults). \
         The Markdown table (medians over the runs, the spread of req/s, p50/p99/p99.9, errors, the \
         server's peak RSS, threads and CPU seconds, a status and notes) goes to stdout; results.json and \
         index.html (charts, works offline) go to --out, and their paths are printed last.\n\nScenarios:\n",
    );
    for scenario in &SCENARIOS {
        text.push_str(&format!("  {:<12} {}\n", scenario.name, scenario.about));
    }
    text.push_str(
        "\nStatus: ok; errors (failed requests or 4xx/5xx answers; the note counts them); limit (the model \
         turned clients away or could not serve them while 10,000 idle connections were held, as it is built \
         to: a lesson, not a crash; the note says how many it held); failed (the server died, did not start, \
         or answered nothing); skipped (a peer lacks Flash's routes, or Ctrl-C came first).\n\n\
         Ctrl-C (or SIGTERM) stops the current run, stops the server and writes the partial report; the exit \
         code is then 130 (143 for SIGTERM). A second Ctrl-C quits at once.",
    );
    text
}

/// Idle connections held open in `idle-10k`.
const IDLE_CONNECTIONS: usize = 10_000;

/// The static file served in `static`.
const STATIC_FILE: &str = "static-64k.bin";

/// One workload of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its short name.
    pub name: &'static str,
    /// What it does, for the report.
    pub about: &'static str,
    /// Whether it needs Flash's routes (`/sleep`, `/cpu`, a docroot), so peers skip it.
    pub flash_only: bool,
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
    fn from_result(r: &LoadResult) -> RunFigures {
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
    /// `ok`, `errors`, `failed`, or `skipped`.
    pub status: String,
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

/// All scenarios of one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// The server's name (folder or peer name).
    pub name: String,
    /// `flash` (built and started here) or `peer` (already running).
    pub kind: String,
    /// One cell per scenario.
    pub cells: Vec<Cell>,
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
    /// The servers measured.
    pub servers: Vec<ServerReport>,
    /// Whether a signal stopped the comparison early (the cells not reached say so).
    #[serde(default)]
    pub interrupted: bool,
}

/// Runs the comparison from the command line; `interrupt` (Ctrl-C) ends it early with a partial
/// report.
pub fn main(args: &CompareArgs, interrupt: &Interrupt) -> Result<(), String> {
    if let Some(path) = &args.from_json {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--from-json {}: {e}", path.display()))?;
        let report: CompareReport = serde_json::from_str(&text)
            .map_err(|e| format!("--from-json {}: not a results.json: {e}", path.display()))?;
        let out = args.out.clone().unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).to_path_buf());
        let (_, page) = write_report(&report, &out)?;
        println!("{}\nreport:  {}", markdown(&report), page.display());
        return Ok(());
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let scenarios = pick_scenarios(&args.scenarios)?;
    let peers = args.peers.iter().map(|p| parse_peer(p)).collect::<Result<Vec<_>, _>>()?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let workspace = match &args.workspace {
        Some(dir) => Some(dir.clone()),
        None => server::find_workspace(&cwd),
    };
    let only_peers = args.servers.iter().all(|s| s == "none") && !args.servers.is_empty();
    let servers = match (&workspace, only_peers) {
        (_, true) => Vec::new(),
        (Some(ws), false) => {
            let all = server::discover(ws).map_err(|e| format!("cannot list {}/servers: {e}", ws.display()))?;
            server::select(all, &args.servers)?
        }
        (None, false) => return Err("run compare inside the Flash workspace, or give --workspace DIR".into()),
    };
    if servers.is_empty() && peers.is_empty() {
        return Err("nothing to compare: no server folders selected and no --peer".into());
    }
    let cpus = procfs::available_cpus();
    // Described before pinning, which would make this process see a single CPU.
    let machine = machine();
    let (server_cpus, generator_cpus) = if args.pin {
        if cpus < 2 {
            return Err("--pin needs at least 2 CPUs".into());
        }
        (Some(if cpus == 2 { "0".to_string() } else { format!("0-{}", cpus - 2) }), Some((cpus - 1).to_string()))
    } else {
        (None, None)
    };
    if let Some(gen) = &generator_cpus {
        server::pin_self(gen)?;
    }
    if let (Some(ws), false) = (&workspace, args.no_build || servers.is_empty()) {
        let packages: Vec<&str> = servers.iter().map(|s| s.package.as_str()).collect();
        eprintln!("building {} (profile {})", packages.join(", "), args.cargo_profile);
        server::build(ws, &packages, &args.cargo_profile).map_err(|e| {
            if interrupt.requested() {
                "stopped by a signal during the build; nothing was measured".to_string()
            } else {
                e
            }
        })?;
    }
    let server_threads = args.server_threads.unwrap_or(if args.pin { (cpus - 1).max(1) } else { cpus });
    let docroot = Docroot::create()?;
    let mut report = CompareReport {
        command: std::env::args().collect(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        machine,
        duration_s: args.duration.as_secs_f64(),
        runs: args.runs,
        pinned: args.pin,
        scenarios: scenarios.iter().map(|s| (s.name.to_string(), s.about.to_string())).collect(),
        servers: Vec::new(),
        interrupted: false,
    };
    let settings = Settings { duration: args.duration, warmup: args.warmup, runs: args.runs, threads: args.threads };
    for dir in &servers {
        // Cargo puts the `dev` profile's binaries in `debug/` and every other profile's in a folder
        // of its own name.
        let folder = if args.cargo_profile == "dev" { "debug" } else { args.cargo_profile.as_str() };
        let binary = server::target_dir(workspace.as_deref().unwrap_or(Path::new("."))).join(folder).join(&dir.package);
        let launch = server::Launch {
            binary,
            args: vec![
                "--threads".into(),
                server_threads.to_string(),
                "--docroot".into(),
                docroot.path.display().to_string(),
            ],
            cpus: server_cpus.clone(),
        };
        let cells = if launch.binary.is_file() {
            scenarios
                .iter()
                .map(|scenario| match interrupt.requested() {
                    true => not_run(scenario),
                    false => measure_started(&dir.name, &launch, scenario, &settings, interrupt),
                })
                .collect()
        } else {
            let why = format!("no binary at {} (build it, or drop --no-build)", launch.binary.display());
            eprintln!("{}: {why}", dir.name);
            scenarios.iter().map(|scenario| failed(scenario, why.clone())).collect()
        };
        report.servers.push(ServerReport { name: dir.name.clone(), kind: "flash".into(), cells });
    }
    for (name, addr) in &peers {
        let cells = scenarios
            .iter()
            .map(|scenario| match interrupt.requested() {
                true => not_run(scenario),
                false => measure_peer(name, *addr, scenario, &settings, interrupt),
            })
            .collect();
        report.servers.push(ServerReport { name: name.clone(), kind: "peer".into(), cells });
    }
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => server::target_dir(workspace.as_deref().unwrap_or(&cwd)).join("flash-report"),
    };
    report.interrupted = interrupt.requested();
    let (json, page) = write_report(&report, &out)?;
    println!("{}", markdown(&report));
    println!("results: {}\nreport:  {}", json.display(), page.display());
    Ok(())
}

/// Writes `results.json` and `index.html` into `out`; returns their paths.
pub fn write_report(report: &CompareReport, out: &Path) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json = out.join("results.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| format!("cannot write {}: {e}", json.display()))?;
    let page = out.join("index.html");
    std::fs::write(&page, render_html(report)).map_err(|e| format!("cannot write {}: {e}", page.display()))?;
    Ok((json, page))
}

/// How each cell is measured.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Measured time per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Runs per cell.
    pub runs: usize,
    /// Load generator threads.
    pub threads: usize,
}

/// Resolves `--scenarios`.
fn pick_scenarios(wanted: &[String]) -> Result<Vec<Scenario>, String> {
    if wanted.is_empty() {
        return Ok(SCENARIOS.to_vec());
    }
    wanted
        .iter()
        .map(|w| {
            SCENARIOS.iter().find(|s| s.name == w.trim()).copied().ok_or_else(|| {
                let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                format!("--scenarios: unknown scenario {w:?} (known: {})", names.join(", "))
            })
        })
        .collect()
}

/// Parses `NAME=URL`.
fn parse_peer(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, url) = text.split_once('=').ok_or_else(|| format!("--peer {text:?}: expected NAME=URL"))?;
    let target = Target::parse(url).map_err(|e| format!("--peer {name}: {e}"))?;
    if name.is_empty() {
        return Err(format!("--peer {text:?}: the name is empty"));
    }
    Ok((name.to_string(), target.addr))
}

/// Starts the server, measures one scenario, stops it.
fn measure_started(
    name: &str,
    launch: &server::Launch,
    scenario: &Scenario,
    settings: &Settings,
    interrupt: &Interrupt,
) -> Cell {
    let mut running = match server::start(launch, interrupt) {
        Ok(running) => running,
        Err(why) => {
            eprintln!("{name} {}: {why}", scenario.name);
            return failed(scenario, why);
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
        cell.status = "failed".into();
        cell.note = format!("the server {why}; {}", cell.note).trim_end_matches("; ").to_string();
    } else if !running.stop() {
        cell.note = format!("{} did not exit within 5 s of SIGTERM (killed)", cell.note).trim().to_string();
    }
    cell
}

/// Measures a running peer (no process figures).
fn measure_peer(name: &str, addr: SocketAddr, scenario: &Scenario, settings: &Settings, interrupt: &Interrupt) -> Cell {
    if scenario.flash_only {
        return Cell {
            scenario: scenario.name.into(),
            status: "skipped".into(),
            note: "needs Flash's routes".into(),
            ..Cell::default()
        };
    }
    measure(name, addr, None, scenario, settings, interrupt)
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
    let spec = match scenario_spec(scenario, addr, settings, pid) {
        Ok(spec) => spec,
        Err(e) => return failed(scenario, e),
    };
    let mut results = Vec::new();
    let mut censuses = Vec::new();
    for run in 0..settings.runs {
        if interrupt.requested() {
            break;
        }
        let idle =
            if scenario.name == "idle-10k" { Some(open_idle(addr, IDLE_CONNECTIONS, interrupt.flag())) } else { None };
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
            report::group(result.requests_per_sec as u64),
            report::latency(result.latency.p99_us),
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
        if !died && cell.status != "ok" {
            cell.status = "limit".into();
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
    let mut refusals: std::collections::BTreeMap<u16, u64> = std::collections::BTreeMap::new();
    for (code, n) in results.iter().flat_map(|r| &r.status).filter(|(code, _)| **code >= 400) {
        *refusals.entry(*code).or_default() += n;
    }
    let refused: u64 = refusals.values().sum();
    let (status, note) = if total_requests == 0 {
        ("failed", "no request was answered".to_string())
    } else if median_figures.rps == 0.0 {
        ("failed", "no request was answered in most runs".to_string())
    } else if total_errors > 0 {
        let e = results.iter().fold(crate::Errors::default(), |mut acc, r| {
            acc.add(&r.errors);
            acc
        });
        (
            "errors",
            format!(
                "errors over all runs: connect {}, reset {}, closed {}, timeout {}, malformed {}",
                e.connect, e.reset, e.closed, e.timeout, e.malformed
            ),
        )
    } else if refused > 0 {
        ("errors", String::new())
    } else {
        ("ok", String::new())
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
            crate::report::latency(oldest)
        ));
    }
    if let Some(kept) = median_figures.kept_up.filter(|k| *k < 0.9) {
        notes.push(format!("answered only {:.0}% of the asked rate", kept * 100.0));
    }
    let note = notes.join("; ");
    Cell {
        scenario: scenario.name.into(),
        status: status.into(),
        note,
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
    Cell { scenario: scenario.name.into(), status: "failed".into(), note: why, ..Cell::default() }
}

/// A cell for a scenario a signal kept from running.
fn not_run(scenario: &Scenario) -> Cell {
    Cell {
        scenario: scenario.name.into(),
        status: "skipped".into(),
        note: "not run: the comparison was stopped by a signal".into(),
        ..Cell::default()
    }
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

/// The load of a scenario against `addr`.
pub fn scenario_spec(
    scenario: &Scenario,
    addr: SocketAddr,
    settings: &Settings,
    pid: Option<u32>,
) -> Result<LoadSpec, String> {
    let get =
        |path: &str, weight: u32| RequestSpec { method: "GET".into(), path: path.into(), body: Vec::new(), weight };
    let (connections, specs, pipeline, per_conn, rate) = match scenario.name {
        "hello" | "idle-10k" => (64, vec![get("/hello", 1)], 1, None, None),
        "hello-close" => (16, vec![get("/hello", 1)], 1, Some(1), None),
        "pipelined" => (64, vec![get("/hello", 1)], 16, None, None),
        "slow-mix" => (64, vec![get("/hello", 98), get("/sleep?ms=200", 2)], 1, None, None),
        "cpu" => (16, vec![get("/cpu?n=50000", 1)], 1, None, Some(1500.0)),
        "static" => (64, vec![get(&format!("/{STATIC_FILE}"), 1)], 1, None, None),
        other => return Err(format!("unknown scenario {other}")),
    };
    let target = Target { addr, host: addr.to_string(), path: specs[0].path.clone() };
    let requests = RequestSet::encode(&target, &specs, &[], per_conn == Some(1)).map_err(|e| e.to_string())?;
    let spec = LoadSpec {
        target,
        requests,
        connections,
        threads: settings.threads.min(connections),
        duration: Some(settings.duration),
        count: None,
        warmup: settings.warmup,
        timeout: Duration::from_secs(2),
        per_conn,
        pipeline,
        rate,
        ramp_up: Duration::ZERO,
        server_pid: pid,
        progress: false,
    };
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// Opens up to `n` idle connections; stops early when the server stops accepting (three connects
/// in a row time out), since a full accept queue makes every further attempt wait, or when `stop`
/// is set.
fn open_idle(addr: SocketAddr, n: usize, stop: &AtomicBool) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    let mut failures_in_a_row = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while streams.len() < n && failures_in_a_row < 3 && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => {
                failures_in_a_row = 0;
                streams.push(stream);
            }
            Err(_) => failures_in_a_row += 1,
        }
    }
    streams
}

/// What became of the idle connections of `idle-10k` by the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleCensus {
    /// Connected and neither closed nor answered: held by the server (or waiting in its accept
    /// queue, which the client cannot tell apart).
    pub open: usize,
    /// Answered `503` (a bounded server turning the client away).
    pub refused: usize,
    /// Closed or reset by the server without a 503.
    pub closed: usize,
    /// Never connected: the server's accept queue was full.
    pub unconnected: usize,
}

impl IdleCensus {
    /// Looks at each idle connection without blocking.
    fn take(streams: &[TcpStream]) -> IdleCensus {
        let mut census =
            IdleCensus { unconnected: IDLE_CONNECTIONS.saturating_sub(streams.len()), ..IdleCensus::default() };
        for stream in streams {
            let mut head = [0u8; 12];
            let seen = stream.set_nonblocking(true).and_then(|()| stream.peek(&mut head));
            match seen {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => census.open += 1,
                Ok(n) if n > 0 && head[..n].starts_with(b"HTTP/1.1 503") => census.refused += 1,
                _ => census.closed += 1,
            }
        }
        census
    }

    /// One line for the report, such as "idle connections: 130 of 10,000 still open, 9,870
    /// refused with 503".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} of {} still open", group(self.open as u64), group(IDLE_CONNECTIONS as u64))];
        if self.refused > 0 {
            parts.push(format!("{} refused with 503", group(self.refused as u64)));
        }
        if self.closed > 0 {
            parts.push(format!("{} closed by the server", group(self.closed as u64)));
        }
        if self.unconnected > 0 {
            parts.push(format!("{} never connected (accept queue full)", group(self.unconnected as u64)));
        }
        format!("idle connections: {}", parts.join(", "))
    }
}

/// A temporary docroot with the 64 KiB file of the `static` scenario; removed when dropped.
struct Docroot {
    /// Its path.
    path: PathBuf,
}

impl Docroot {
    fn create() -> Result<Docroot, String> {
        let path = std::env::temp_dir().join(format!("flash-compare-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        // Bytes that do not compress, so that no layer can cheat on them.
        let mut rng = crate::request::Rng::new(64);
        let data: Vec<u8> = (0..64 * 1024).map(|_| rng.next_u64() as u8).collect();
        std::fs::write(path.join(STATIC_FILE), data).map_err(|e| format!("cannot write the static file: {e}"))?;
        std::fs::write(path.join("index.html"), "<!doctype html><title>Flash</title>\n").map_err(|e| e.to_string())?;
        Ok(Docroot { path })
    }
}

impl Drop for Docroot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Describes this machine from /proc.
fn machine() -> Machine {
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
        cores: procfs::available_cpus(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_peers() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
        let (name, addr) = parse_peer("nginx=http://127.0.0.1:18080").unwrap();
        assert_eq!((name.as_str(), addr.port()), ("nginx", 18080));
        assert!(parse_peer("nginx").is_err());
        assert!(pick_scenarios(&["nope".into()]).unwrap_err().contains("hello-close"));
    }

    #[test]
    fn idle_connections_are_told_apart() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut accepted: Vec<TcpStream> = (0..3).map(|_| listener.accept().unwrap().0).collect();
        accepted[0].write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").unwrap();
        accepted[1].shutdown(std::net::Shutdown::Both).unwrap();
        // What the server sent must have arrived before the census: poll for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let census = loop {
            let census = IdleCensus::take(&clients);
            if census.refused + census.closed == 2 || Instant::now() > deadline {
                break census;
            }
            // A pause between checks of a bounded poll (the deadline above), not a guess.
            std::thread::sleep(Duration::from_millis(5));
        };
        let expected = IdleCensus { open: 1, refused: 1, closed: 1, unconnected: IDLE_CONNECTIONS - 3 };
        assert_eq!(census, expected);
        assert_eq!(
            census.describe(),
            "idle connections: 1 of 10,000 still open, 1 refused with 503, 1 closed by the server, \
             9,997 never connected (accept queue full)"
        );
    }

    #[test]
    fn error_answers_are_not_ok() {
        let mut result = crate::stats::merge(Vec::new(), Instant::now(), None).0;
        result.requests = 100;
        result.requests_per_sec = 100.0;
        result.status.insert(200, 10);
        result.status.insert(503, 90);
        let cell = summarize(&SCENARIOS[0], &[result]);
        assert_eq!(cell.status, "errors");
        assert!(cell.note.contains("90% of the answers were errors (503: 90)"), "{}", cell.note);
    }

    #[test]
    fn every_scenario_has_a_valid_load() {
        let settings = Settings { duration: Duration::from_secs(1), warmup: Duration::ZERO, runs: 1, threads: 1 };
        for scenario in &SCENARIOS {
            scenario_spec(scenario, "127.0.0.1:1".parse().unwrap(), &settings, None).unwrap();
        }
    }
}
