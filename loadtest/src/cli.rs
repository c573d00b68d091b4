//! The command line: `flash-load URL [options]` runs a load, `flash-load compare` compares servers.
//!
//! Flags follow wrk where wrk has them (`-c`, `-t`, `-d`, `-H`), so that readers can repeat a wrk
//! command with ours; everything else is spelled out. Parsing turns flags into a [`LoadSpec`] and
//! every bad value becomes a message naming its flag, never a panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;

use crate::findmax::{self, Slo};
use crate::request::{parse_mix, RequestSet, RequestSpec, Target};
use crate::spec::LoadSpec;
use crate::stats::LoadResult;
use crate::{compare, parse_duration, report, InputError, Interrupt};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "flash-load",
    version,
    about = "An HTTP/1.1 load tester on mio: closed loop like wrk, open loop like wrk2, and `compare` for the Flash servers.",
    after_help = "Ctrl-C (or SIGTERM) stops sending and prints the report of what was measured, with the \
                  requests then in flight, and writes --json; the exit code is then 130 (143 for SIGTERM). \
                  A second Ctrl-C quits at once.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// `compare`, or nothing to load one URL.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The options of a single load run.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, start and measure every Flash server (and peers) under the same scenarios.
    Compare(compare::CompareArgs),
}

/// The options of one load run.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The URL to load, such as http://127.0.0.1:8080/hello (http only).
    #[arg(required = true)]
    pub url: Option<String>,
    /// Concurrent connections.
    #[arg(short = 'c', long = "connections", default_value_t = 10)]
    pub connections: usize,
    /// Worker threads, each with its own event loop.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// How long to measure, such as 10s or 500ms (default 10s unless -n is given).
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Send exactly this many measured requests (with -d, whichever ends first).
    #[arg(short = 'n', long = "requests")]
    pub requests: Option<u64>,
    /// Load applied before measuring starts.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// The request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// The request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the request body from this file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// A mix file: one request per line, `METHOD PATH WEIGHT [BODY]`; replaces -m, the URL's path and the body.
    #[arg(long)]
    pub mix: Option<PathBuf>,
    /// A request (or connect) unanswered for this long counts as a timeout.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub timeout: Duration,
    /// A new connection for every request (same as --requests-per-conn 1).
    #[arg(long)]
    pub no_keepalive: bool,
    /// Reconnect after this many requests on a connection.
    #[arg(long, conflicts_with = "no_keepalive")]
    pub requests_per_conn: Option<u64>,
    /// Requests in flight per connection (HTTP/1.1 pipelining).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Open loop: this many requests per second over all connections, latency counted from each
    /// request's intended send time (corrects coordinated omission, like wrk2).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open the connections evenly over this span instead of all at once.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub ramp_up: Duration,
    /// Write the full result (command, version, spectrum, time series) to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The server's process id, to report its CPU use and tell who the bottleneck is.
    #[arg(long, env = "FLASH_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Search for the highest open-loop rate that meets --slo.
    #[arg(long, requires = "slo")]
    pub find_max_rate: bool,
    /// The latency objective for --find-max-rate, such as p99=10ms (alone it would be ignored,
    /// so it is refused).
    #[arg(long, requires = "find_max_rate")]
    pub slo: Option<String>,
}

impl LoadArgs {
    /// Turns the flags into a validated spec.
    pub fn to_spec(&self) -> Result<LoadSpec, InputError> {
        let url =
            self.url.as_deref().ok_or_else(|| InputError("give a URL, such as http://127.0.0.1:8080/hello".into()))?;
        let target = Target::parse(url)?;
        let specs = match &self.mix {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| InputError(format!("--mix {}: {e}", path.display())))?;
                parse_mix(&text, path)?
            }
            None => {
                let body = match (&self.body, &self.body_file) {
                    (Some(body), _) => body.clone().into_bytes(),
                    (None, Some(path)) => {
                        std::fs::read(path).map_err(|e| InputError(format!("--body-file {}: {e}", path.display())))?
                    }
                    (None, None) => Vec::new(),
                };
                vec![RequestSpec { method: self.method.clone(), path: target.path.clone(), body, weight: 1 }]
            }
        };
        let per_conn = if self.no_keepalive { Some(1) } else { self.requests_per_conn };
        let requests = RequestSet::encode(&target, &specs, &self.headers, per_conn == Some(1))?;
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        let spec = LoadSpec {
            target,
            requests,
            connections: self.connections,
            threads: self.threads,
            duration,
            count: self.requests,
            warmup: self.warmup,
            timeout: self.timeout,
            per_conn,
            pipeline: self.pipeline,
            rate: self.rate,
            ramp_up: self.ramp_up,
            server_pid: self.server_pid,
            progress: true,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// What `--json` writes.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    /// The command line, word by word.
    command: Vec<String>,
    /// This tool's version.
    version: &'static str,
    /// The target URL.
    url: &'a str,
    /// The load applied, in words.
    load: String,
    /// The measurement.
    result: &'a LoadResult,
    /// With --find-max-rate: the rate found and each probe.
    find_max_rate: Option<FindMaxJson>,
}

/// The search's outcome in `--json`.
#[derive(Debug, Serialize)]
struct FindMaxJson {
    /// The objective, as given.
    slo: String,
    /// The highest passing rate, if any passed.
    max_rate: Option<f64>,
    /// Each probe: its rate (none for the closed-loop probe), whether it passed, req/s and p99.
    steps: Vec<(Option<f64>, bool, f64, f64)>,
}

/// Runs the program; returns the process exit code: 0, 1 on an error, or 128 + the signal's number
/// when SIGINT or SIGTERM stopped it early (after the partial report was printed and written).
pub fn main() -> ExitCode {
    let command = Cli::command().mut_subcommand("compare", |c| c.after_help(compare::help_text()));
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            eprintln!("flash-load: cannot catch SIGINT/SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Some(Command::Compare(args)) => compare::main(&args, &interrupt),
        None => load_main(&cli.load, &interrupt),
    };
    match outcome {
        Ok(()) => interrupt.exit_code().map_or(ExitCode::SUCCESS, ExitCode::from),
        Err(message) => {
            eprintln!("flash-load: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Fails unless `path` can be written, so that a run whose results would be lost at the end (a
/// missing folder, a directory, no permission) is not started. The check opens the file as the
/// final write will: an existing file is opened without truncating it, so the previous results
/// stay until there are new ones, and a new one is created and removed again, so that a run that
/// then fails or is killed leaves no empty file behind.
fn check_writable(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

/// `flash-load URL ...`.
fn load_main(args: &LoadArgs, interrupt: &Interrupt) -> Result<(), String> {
    let spec = args.to_spec().map_err(|e| e.to_string())?;
    if let Some(path) = &args.json {
        check_writable(path).map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    let stop = interrupt.flag();
    let mut shown = spec.clone();
    let (result, find_max) = if args.find_max_rate {
        let slo_text = args.slo.clone().unwrap_or_default();
        let slo = Slo::parse(&slo_text)?;
        let (best, steps) = findmax::find_max_rate(&spec, slo, stop, |step| {
            let label =
                step.rate.map_or("closed-loop peak".to_string(), |r| format!("rate {}", report::group(r as u64)));
            eprintln!(
                "  {label:>22}: {} req/s, p{} {} {}",
                report::group(step.result.requests_per_sec as u64),
                slo.percentile,
                report::latency(slo.measured_us(&step.result)),
                if step.rate.is_none() {
                    ""
                } else if step.passed {
                    "pass"
                } else {
                    "fail"
                }
            );
        })
        .map_err(|e| e.to_string())?;
        match best {
            Some(rate) => println!("highest rate meeting {slo_text}: {} req/s", report::group(rate as u64)),
            None => println!("no rate met {slo_text}"),
        }
        let chosen = steps.iter().rev().find(|s| s.passed).or(steps.last()).ok_or("the search ran no probe")?;
        shown.rate = chosen.rate;
        let result = chosen.result.clone();
        let json = FindMaxJson {
            slo: slo_text,
            max_rate: best,
            steps: steps
                .iter()
                .map(|s| (s.rate, s.passed, s.result.requests_per_sec, s.result.latency.p99_us))
                .collect(),
        };
        (result, Some(json))
    } else {
        (crate::run(&spec, stop).map_err(|e| e.to_string())?, None)
    };
    print!("{}", report::summary(&shown, &result));
    if let Some(path) = &args.json {
        let report = JsonReport {
            command: std::env::args().collect(),
            version: env!("CARGO_PKG_VERSION"),
            url: args.url.as_deref().unwrap_or_default(),
            load: report::describe(&shown),
            result: &result,
            find_max_rate: find_max,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    // The report above says what went wrong (connect errors, timeouts); the exit code tells a
    // script that nothing was measured, as curl's does when it cannot connect, or that the load
    // measured is not the one asked for. A run stopped by Ctrl-C keeps its own code (130).
    if let Some(message) = crate::fd_limit_message(&result).filter(|_| interrupt.exit_code().is_none()) {
        return Err(message);
    }
    if result.requests == 0 && interrupt.exit_code().is_none() {
        return Err("no response was completed, so nothing was measured".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_path_is_checked_without_leaving_a_trace() {
        let dir = tempfile::Builder::new().prefix("flash-load-json-check-").tempdir().unwrap();
        let new = dir.path().join("out.json");
        check_writable(&new).unwrap();
        assert!(!new.exists(), "the check leaves no empty file");
        std::fs::write(&new, "previous").unwrap();
        check_writable(&new).unwrap();
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "previous", "nor truncates an old one");
        assert!(check_writable(dir.path()).is_err(), "a directory");
        assert!(check_writable(&dir.path().join("missing").join("out.json")).is_err(), "a missing folder");
    }

    #[test]
    fn an_slo_without_the_search_is_refused() {
        let err = Cli::try_parse_from(["flash-load", "http://127.0.0.1:9/", "--slo", "p99=10ms"]).unwrap_err();
        assert!(err.to_string().contains("--find-max-rate"), "{err}");
        assert!(
            Cli::try_parse_from(["flash-load", "http://127.0.0.1:9/", "--slo", "p99=10ms", "--find-max-rate"]).is_ok()
        );
    }

    #[test]
    fn the_command_line_refuses_a_framing_header() {
        let args = Cli::try_parse_from(["flash-load", "http://127.0.0.1:9/", "-H", "transfer-encoding: chunked"])
            .unwrap()
            .load;
        let err = args.to_spec().unwrap_err().0;
        assert!(err.starts_with("-H \"transfer-encoding: chunked\""), "{err}");
    }
}
