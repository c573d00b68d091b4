//! The command line of `compare`: its flags, its `--help` text, and the parsing of `--peer`.
//!
//! The help's list of scenarios and servers is built from the tables themselves ([`SCENARIOS`],
//! [`LADDER`]), so that it cannot drift from what compare does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ladder::LADDER;
use super::scenario::SCENARIOS;
use crate::request::Target;

/// The options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Servers to measure, by name, number or package (e.g. `01,04-epoll,nginx`); `none` for `--peer`
    /// servers only. Default: every server of the ladder, the references included when available.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// The folder holding the reference peers `hyper-peer` and `may-peer` (as built by the peers'
    /// build.sh, directly or in its target/release).
    #[arg(long, value_name = "DIR")]
    pub peers: Option<PathBuf>,
    /// A server already running to measure too, as a reference, such as `nginx=http://127.0.0.1:18080`.
    #[arg(long = "peer", value_name = "NAME=URL")]
    pub peer_urls: Vec<String>,
    /// Scenarios to run (default all): hello, hello-close, pipelined, slow-mix, cpu, idle-10k, static,
    /// and replog-w1, replog-w3 (the replicated log's preset: `--servers replog --scenarios
    /// replog-w1,replog-w3` measures it alone).
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
    /// `--threads` passed to each Flash server (default: the CPUs it may use).
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

/// The end of `compare --help`: what it does, the scenarios, the servers, the statuses, and
/// Ctrl-C, built from the tables so that the help cannot drift from them.
pub fn help_text() -> String {
    let mut text = String::from(
        "Each server of the ladder is built (release), then for each scenario started afresh on a free port, \
         measured --runs times and stopped with SIGTERM (expect a few minutes for all servers with the defaults). \
         The Markdown table (medians over the runs, the spread of req/s, p50/p99/p99.9, errors, the \
         server's peak RSS, threads and CPU seconds, a status and notes) goes to stdout; results.json and \
         index.html (charts, works offline) go to --out, and their paths are printed last.\n\nScenarios:\n",
    );
    for scenario in &SCENARIOS {
        text.push_str(&format!("  {:<12} {}\n", scenario.name, scenario.about));
    }
    text.push_str("\nServers (--servers), Flash's lessons and then references measured beside them for scale:\n ");
    for rung in LADDER {
        text.push_str(&format!(" {}", rung.name));
    }
    text.push_str(
        "\nA reference that is not available (nginx not on PATH, no --peers DIR) and a server that cannot run \
         on this machine (it exits with a one-line error before it listens) are listed as not measured, with \
         the reason.\n\n\
         Status: ok; errors (failed requests or 4xx/5xx answers; the note counts them); limit (the model \
         turned clients away or could not serve them while 10,000 idle connections were held, as it is built \
         to: a lesson, not a crash; the note says how many it held); failed (the server died, did not start, \
         or answered nothing); skipped (a reference lacks Flash's routes, or Ctrl-C came first).\n\n\
         Ctrl-C (or SIGTERM) stops the current run, stops the server and writes the partial report; the exit \
         code is then 130 (143 for SIGTERM). A second Ctrl-C quits at once.",
    );
    text
}

/// Parses `--peer NAME=URL`.
pub fn parse_peer(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, url) = text.split_once('=').ok_or_else(|| format!("--peer {text:?}: expected NAME=URL"))?;
    let target = Target::parse(url).map_err(|e| format!("--peer {name}: {e}"))?;
    if name.is_empty() {
        return Err(format!("--peer {text:?}: the name is empty"));
    }
    Ok((name.to_string(), target.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_name_equals_url() {
        let (name, addr) = parse_peer("nginx=http://127.0.0.1:18080").unwrap();
        assert_eq!((name.as_str(), addr.port()), ("nginx", 18080));
        assert!(parse_peer("nginx").unwrap_err().contains("NAME=URL"));
        assert!(parse_peer("=http://127.0.0.1:1").unwrap_err().contains("the name is empty"));
    }

    #[test]
    fn the_help_lists_every_scenario_and_server() {
        let help = help_text();
        for name in SCENARIOS.iter().map(|s| s.name).chain(LADDER.iter().map(|r| r.name)) {
            assert!(help.contains(name), "{name} is missing from:\n{help}");
        }
    }
}
