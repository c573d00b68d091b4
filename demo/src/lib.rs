//! `flash-demo`: the application every Flash server serves out of the box, and the `main` of
//! every server binary.
//!
//! A server moves bytes; an [`App`] answers requests. [`FlashApp`] is Flash's own: the demo and
//! benchmark routes, the stats job service under `/api/`, the server's counters at
//! `/server-status`, and static files for everything else. It sits above the HTTP layer
//! (`flash-common`), which knows no application, and plugs in through the same entry point as the
//! replicated log and the cluster: [`main`] is `server::main_with` with this app.
//!
//! Two routes exist to expose each model's weak spot: `/sleep` blocks the thread that runs it,
//! standing for a call to a slow database; `/cpu` burns the core that runs it, standing for real
//! computation. Both run on whatever thread the *server* chose to call the app on: that choice
//! is the lesson, so the app deliberately does not hide it behind a thread pool of its own.

mod files;

use std::ffi::OsString;
use std::hash::Hasher;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use flash_common::server::{main_with, Serve, Setup};
use flash_common::{App, Body, Config, Reply, Request, Response, Status};
use serde_json::json;

/// The demo application's own flags, added to every server's command line.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Stats service")]
pub struct DemoFlags {
    /// Stats service: the CSV to load [default: the bundled reconstructed table].
    #[arg(long, env = "FLASH_STATS_CSV")]
    pub stats_csv: Option<PathBuf>,
    /// Stats service: where job results are written.
    #[arg(long, env = "FLASH_RESULTS_DIR", default_value = "results")]
    pub results_dir: PathBuf,
    /// Stats service: job threads [default: the number of cores].
    #[arg(long, env = "TP_NUM_OF_THREADS")]
    pub job_threads: Option<usize>,
    /// Stats service: activity log file (rotated by size).
    #[arg(long)]
    pub log_file: Option<PathBuf>,
}

impl DemoFlags {
    /// The defaults, as if no flag were given and the environment were empty, with results in
    /// `results_dir` (tests pass a temporary folder).
    pub fn for_tests(results_dir: &Path) -> DemoFlags {
        DemoFlags { results_dir: results_dir.to_path_buf(), ..flash_common::config::defaults() }
    }
}

/// Runs a server binary serving the demo application: the whole `main` of servers 01 to 08.
pub fn main(name: &'static str, about: &'static str, serve: Serve) -> ExitCode {
    main_with(name, about, serve, FlashApp::launch)
}

/// The longest `/sleep` allowed, in milliseconds.
const MAX_SLEEP_MS: u64 = 10_000;
/// The most `/cpu` units allowed (about ten seconds of one core).
const MAX_CPU_UNITS: u64 = 100_000_000;

/// Flash's application: demo routes, the stats service, static files.
pub struct FlashApp {
    /// The canonical static-file root; nothing outside it is ever served.
    root: PathBuf,
    /// Counters shown by `/server-status`.
    status: Arc<Status>,
    /// The stats job service, answering `/api/*`.
    stats: flash_stats::Service,
    /// What a copy of this application in a CGI process must be told (see [`App::environment`]).
    environment: Vec<(&'static str, OsString)>,
}

impl FlashApp {
    /// Builds the application for a server that has bound its port.
    pub fn launch(setup: Setup<'_, DemoFlags>) -> io::Result<FlashApp> {
        FlashApp::new(setup.config, &setup.flags, setup.status, false)
    }

    /// Builds the application from the server's configuration and its own flags. `inline_jobs`
    /// runs stats jobs inside the request (for the CGI program, whose process lives for one
    /// request).
    pub fn new(config: &Config, flags: &DemoFlags, status: Arc<Status>, inline_jobs: bool) -> io::Result<FlashApp> {
        let docroot = config.docroot();
        let root = docroot
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("--docroot {}: {e}", docroot.display())))?;
        let job_threads = flags.job_threads.unwrap_or_else(flash_common::config::cores);
        let stats = flash_stats::Service::open(flash_stats::StatsConfig {
            csv: flags.stats_csv.clone(),
            results_dir: flags.results_dir.clone(),
            job_threads,
            log_file: flags.log_file.clone(),
            inline_jobs,
        })?;
        // Absolute, since a CGI program may run in another folder.
        let mut environment = vec![
            ("FLASH_DOCROOT", root.clone().into_os_string()),
            ("FLASH_RESULTS_DIR", std::path::absolute(&flags.results_dir)?.into_os_string()),
        ];
        if let Some(csv) = &flags.stats_csv {
            environment.push(("FLASH_STATS_CSV", std::path::absolute(csv)?.into_os_string()));
        }
        Ok(FlashApp { root, status, stats, environment })
    }
}

impl App for FlashApp {
    fn call(&self, req: &Request<'_>) -> Reply {
        let path = req.path();
        let method = req.method();
        // HEAD is GET without the body, and the connection drops the body; so a route that
        // answers GET answers HEAD too.
        let get = method == "GET" || method == "HEAD";
        let res = match path {
            "/hello" if get => Response::text(200, "Hello, world!"),
            "/echo" if method == "POST" => echo(req),
            "/addone" if method == "POST" => add_one(req.body()),
            "/sleep" if get => sleep(req),
            "/cpu" if get => cpu(req),
            "/server-status" if get => Response::json(200, &self.status.to_json()),
            "/hello" | "/sleep" | "/cpu" | "/server-status" => not_allowed("GET, HEAD"),
            "/echo" | "/addone" => not_allowed("POST"),
            _ if path.starts_with("/api/") => self.api(req),
            _ => files::serve(&self.root, req),
        };
        Reply::Now(res)
    }

    /// Loads the stats table now (about 30 ms) rather than on the first `/api` request.
    fn warm_up(&self) {
        self.stats.warm_up();
    }

    fn shutdown(&self) {
        self.stats.shutdown();
    }

    fn environment(&self) -> Vec<(&'static str, OsString)> {
        self.environment.clone()
    }
}

impl FlashApp {
    /// Passes `/api/*` to the stats service, which speaks JSON but not HTTP.
    fn api(&self, req: &Request<'_>) -> Response {
        match self.stats.handle(req.method(), req.path(), req.body()) {
            Some(api) => {
                let res = Response::new(api.status).with_body("application/json", Body::Bytes(api.body));
                match api.allow {
                    Some(allow) => res.with_header("Allow", allow),
                    None => res,
                }
            }
            None => Response::error(404, "no such API endpoint"),
        }
    }
}

/// 405 with the methods the route does allow.
fn not_allowed(allow: &'static str) -> Response {
    Response::error(405, &format!("this resource allows {allow}")).with_header("Allow", allow)
}

/// `POST /echo`: the body back, with the request's content type.
fn echo(req: &Request<'_>) -> Response {
    let ct = req.header_str("content-type").unwrap_or("application/octet-stream").to_string();
    Response::new(200).with_body(ct, Body::Bytes(req.body().to_vec()))
}

/// `POST /addone` with `{"data": N}`: `{"status": "success", "num": N+1}`.
fn add_one(body: &[u8]) -> Response {
    let bad = |reason: String| Response::json(400, &json!({"status": "error", "reason": reason}));
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad(format!("malformed JSON: {e}")),
    };
    let Some(data) = value.get("data") else {
        return bad("missing field \"data\"".into());
    };
    match data.as_i64().map(|n| n.checked_add(1)) {
        Some(Some(num)) => Response::json(200, &json!({"status": "success", "num": num})),
        Some(None) => bad("\"data\" + 1 overflows a 64-bit integer".into()),
        None => bad(format!("\"data\" must be an integer, not {data}")),
    }
}

/// Reads a numeric query parameter, with a 400 that names it when it is missing or out of range.
fn number_param(req: &Request<'_>, name: &str, max: u64) -> Result<u64, Response> {
    let raw = req.query_param(name).ok_or_else(|| Response::error(400, &format!("missing query parameter {name}")))?;
    match raw.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(Response::error(400, &format!("{name} must be a whole number from 0 to {max}"))),
    }
}

/// `GET /sleep?ms=N`: blocks the calling thread for N ms, as a slow database call would.
fn sleep(req: &Request<'_>) -> Response {
    match number_param(req, "ms", MAX_SLEEP_MS) {
        Ok(ms) => {
            // Deliberately blocking: this route exists to show what a blocked thread costs each
            // server model. A real server would not sleep here.
            std::thread::sleep(Duration::from_millis(ms));
            Response::new(200)
                .with_body("text/plain; charset=utf-8", Body::Bytes(format!("slept {ms} ms\n").into_bytes()))
        }
        Err(res) => res,
    }
}

/// `GET /cpu?n=N`: N rounds of SipHash over a 64-byte block, each round feeding the next so that
/// nothing can be skipped; returns the final digest.
fn cpu(req: &Request<'_>) -> Response {
    match number_param(req, "n", MAX_CPU_UNITS) {
        Ok(n) => {
            let body = format!("{:016x}\n", cpu_work(n));
            Response::new(200).with_body("text/plain; charset=utf-8", Body::Bytes(body.into_bytes()))
        }
        Err(res) => res,
    }
}

/// The work behind `/cpu`, public so that tests can calibrate it.
pub fn cpu_work(units: u64) -> u64 {
    let mut block = [0u8; 64];
    let mut digest = 0u64;
    for round in 0..units {
        let mut h = std::hash::DefaultHasher::new();
        block[..8].copy_from_slice(&digest.to_le_bytes());
        block[8..16].copy_from_slice(&round.to_le_bytes());
        h.write(&block);
        digest = h.finish();
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_one_answers_and_refuses() {
        assert_eq!(add_one(br#"{"data": 41}"#).status, 200);
        assert_eq!(add_one(br#"{"data": "x"}"#).status, 400);
        assert_eq!(add_one(br#"{"data": 9223372036854775807}"#).status, 400);
        assert_eq!(add_one(b"{").status, 400);
        assert_eq!(add_one(b"{}").status, 400);
    }

    #[test]
    fn cpu_work_depends_on_every_round() {
        assert_ne!(cpu_work(10), cpu_work(11));
        assert_eq!(cpu_work(10), cpu_work(10));
    }
}
