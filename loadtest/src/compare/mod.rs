//! `flash-load compare`: every server, the same scenarios, the same instrument, one report.
//!
//! It builds the Flash servers of the ladder, then measures each server under each scenario
//! (started afresh every time, `--runs` runs, stopped with SIGTERM), the references beside them
//! when they are available, and writes the table, `results.json` and `index.html`.
//!
//! One run is never the whole story: each figure is the median of the runs, the spread (min to max)
//! is kept, and the report says which differences are larger than the spread and which are noise.
//! A server that falls over is reported as such and the comparison goes on; a model that turns
//! clients away by design (a bounded pool answering 503 to the 10,000 idle connections, a
//! sequential server held by the first of them) is reported as reaching its limit, which is a
//! lesson, not a crash. Ctrl-C stops the current run, stops the server, and writes the report of
//! what was measured, the rest marked as not run.
//!
//! The parts, in the order a comparison uses them:
//! - `cli`: the flags and `--help`;
//! - [`ladder`]: the table of servers, how each is built and started, or why it cannot be;
//! - [`scenario`]: the workloads and their fixtures (idle connections, a static file);
//! - [`server`]: starting, watching and stopping a server process;
//! - `measure`: running a scenario `--runs` times and judging the cell;
//! - [`results`]: what `results.json` holds;
//! - `output` and `html`: the Markdown table and the web page.

mod cli;
mod html;
pub mod ladder;
mod measure;
mod output;
pub mod results;
pub mod scenario;
pub mod server;

use std::path::{Path, PathBuf};

pub use cli::{help_text, CompareArgs};
pub use html::render as render_html;
pub use measure::summarize;
pub use output::{markdown, verdicts};
pub use results::{Cell, CompareReport, Kind, Machine, RunFigures, ServerReport, Status};
pub use scenario::{Scenario, Settings, SCENARIOS};

use crate::{procfs, Interrupt};

/// Runs the comparison from the command line; `interrupt` (Ctrl-C) ends it early with a partial
/// report.
pub fn main(args: &CompareArgs, interrupt: &Interrupt) -> Result<(), String> {
    if let Some(path) = &args.from_json {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--from-json {}: {e}", path.display()))?;
        let report: CompareReport = serde_json::from_str(&text)
            .map_err(|e| format!("--from-json {}: not a results.json: {e}", path.display()))?;
        let out = args.out.clone().unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).to_path_buf());
        println!("{}", markdown(&report));
        let (_, page) = write_report(&report, &out)?;
        println!("report:  {}", page.display());
        return Ok(());
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let scenarios = Scenario::pick(&args.scenarios)?;
    let peer_urls = args.peer_urls.iter().map(|p| cli::parse_peer(p)).collect::<Result<Vec<_>, _>>()?;
    if let Some(dir) = args.peers.as_deref().filter(|d| !d.is_dir()) {
        return Err(format!("--peers {}: no such folder", dir.display()));
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let workspace = match &args.workspace {
        Some(dir) => Some(dir.clone()),
        None => server::find_workspace(&cwd),
    };
    let rungs = ladder::select(&args.servers)?;
    if workspace.is_none() && rungs.iter().any(|r| r.kind() == Kind::Flash) {
        return Err("run compare inside the Flash workspace, or give --workspace DIR".into());
    }
    if rungs.is_empty() && peer_urls.is_empty() {
        return Err("nothing to compare: no server selected and no --peer".into());
    }
    let cpus = procfs::available_cpus();
    // Described before pinning, which would make this process see a single CPU.
    let machine = Machine::here();
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
    if let (Some(ws), false) = (&workspace, args.no_build) {
        eprintln!("building the Flash servers (profile {})", args.cargo_profile);
        ladder::build(ws, &rungs, &args.cargo_profile).map_err(|e| {
            if interrupt.requested() {
                "stopped by a signal during the build; nothing was measured".to_string()
            } else {
                e
            }
        })?;
    }
    let server_threads = args.server_threads.unwrap_or(if args.pin { (cpus - 1).max(1) } else { cpus });
    let docroot = scenario::Docroot::create()?;
    let ctx = ladder::Context {
        workspace: workspace.as_deref(),
        profile: &args.cargo_profile,
        flash_args: vec![
            "--threads".into(),
            server_threads.to_string(),
            "--docroot".into(),
            docroot.path().display().to_string(),
        ],
        peers: args.peers.clone(),
        cpus: server_cpus,
        path: std::env::var_os("PATH"),
    };
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
    for rung in &rungs {
        let server = match rung.launch(&ctx) {
            Ok(launch) => measure::started(rung.name, rung.kind(), &launch, &scenarios, &settings, interrupt),
            Err(why) => {
                eprintln!("{}: not measured: {why}", rung.name);
                ServerReport { name: rung.name.into(), kind: rung.kind(), skipped: Some(why), cells: Vec::new() }
            }
        };
        report.servers.push(server);
    }
    for (name, addr) in &peer_urls {
        report.servers.push(measure::running(name, *addr, &scenarios, &settings, interrupt));
    }
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => server::target_dir(workspace.as_deref().unwrap_or(&cwd)).join("flash-report"),
    };
    report.interrupted = interrupt.requested();
    // The table first: whatever happens to the files, what was measured is on the screen.
    println!("{}", markdown(&report));
    let (json, page) = write_report(&report, &out)?;
    println!("results: {}\nreport:  {}", json.display(), page.display());
    Ok(())
}

/// Writes `results.json` and `index.html` into `out`; returns their paths. The figures are written
/// first, so that a chart that cannot be drawn loses no measurement (`--from-json` re-renders).
pub fn write_report(report: &CompareReport, out: &Path) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json = out.join("results.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| format!("cannot write {}: {e}", json.display()))?;
    let page = out.join("index.html");
    let html = render_html(report)
        .map_err(|e| format!("index.html not written: {e} (the figures are in {})", json.display()))?;
    std::fs::write(&page, html).map_err(|e| format!("cannot write {}: {e}", page.display()))?;
    Ok((json, page))
}
