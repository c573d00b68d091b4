//! The stats job service: the "Le Stats Sportif" API, its job pool and its results on disk.
//!
//! The original is a university assignment (UPB, ASC 2024): a Flask server over a CDC table of
//! nutrition and physical-activity statistics, where each data request becomes a job in a
//! thread pool, the answer is a job id, results are written to disk, and clients poll for
//! them. This crate serves the same API, byte-compatible with the original checker, and makes
//! it robust: bad input is refused with a 400 before any job exists, results are written
//! atomically and survive a restart, and shutdown drains the queue.
//!
//! It knows nothing of HTTP. A server hands [`Service::handle`] a method, a path and a body and
//! gets back a status and a JSON body, so every Flash server, whatever its connection model,
//! serves the same application. That separation is the lesson: the job pool belongs to the
//! application, not to the connection handling. Even the CGI server 02, whose process lives
//! for one request, serves it, by running each job before answering (`inline_jobs`) and
//! keeping all job state on disk.
//!
//! The parts, in the order a request meets them:
//! - [`table`]: the CSV, loaded once (lazily) and pre-grouped, and the nine statistics;
//! - [`store`]: job ids and the result files;
//! - [`pool`]: the fixed set of job threads;
//! - [`log`]: the activity log.

pub mod checker;
mod csv;
pub mod log;
pub mod pool;
pub mod store;
pub mod table;

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use serde_json::json;

use crate::log::ActivityLog;
use crate::pool::Pool;
use crate::store::Store;
pub use crate::table::{Endpoint, Query, Request, Table, QUESTIONS};

/// The table bundled with the crate: SYNTHETIC data rebuilt from the 114 expected outputs (see
/// `data/README.md`), not the CDC file.
pub const BUNDLED_CSV: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/data/nutrition_activity_obesity_usa_subset.reconstructed.csv");

/// The file in the results directory that tells CGI processes that a graceful shutdown was
/// asked for; a process-per-request server has no memory in which to keep the flag.
const SHUTDOWN_MARKER: &str = ".shutting-down";

/// How the service is set up.
#[derive(Clone, Debug)]
pub struct StatsConfig {
    /// CSV path; None = the bundled reconstructed table ([`BUNDLED_CSV`]).
    pub csv: Option<PathBuf>,
    /// Directory of the `job_id_N.json` result files; created if missing.
    pub results_dir: PathBuf,
    /// Job threads: callers pass flag, else env TP_NUM_OF_THREADS, else cores; clamped here
    /// to [1, cores].
    pub job_threads: usize,
    /// Activity log file (rotating by size), None = no activity log.
    pub log_file: Option<PathBuf>,
    /// true = run each job synchronously inside handle() before answering (used by the CGI
    /// server 02, where a process lives for one request and all job state lives on disk).
    /// Such processes share the results directory; a long-lived server (inline or not) should
    /// open one service with `inline_jobs: false` at its start, which clears a previous run's
    /// shutdown flag and marks its unfinished jobs as interrupted.
    pub inline_jobs: bool,
}

/// One answer of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// The body, always JSON.
    pub body: Vec<u8>,
    /// The methods the path accepts, set on 405 for the `Allow` header.
    pub allow: Option<&'static str>,
}

impl ApiResponse {
    fn json(status: u16, body: Vec<u8>) -> ApiResponse {
        ApiResponse { status, body, allow: None }
    }

    fn value(status: u16, value: serde_json::Value) -> ApiResponse {
        ApiResponse::json(status, serde_json::to_vec(&value).unwrap_or_default())
    }

    fn error(status: u16, reason: &str) -> ApiResponse {
        ApiResponse::json(status, store::error_body(reason))
    }

    fn method_not_allowed(allow: &'static str) -> ApiResponse {
        ApiResponse { allow: Some(allow), ..ApiResponse::error(405, &format!("method not allowed; use {allow}")) }
    }
}

/// The stats service of one server process. `Send + Sync`: every connection thread may call
/// [`Service::handle`] at once.
pub struct Service {
    /// What the jobs need: the table, the store, the log. Shared with the pool's threads.
    shared: Arc<Shared>,
    /// The pool, started by the first job, and whether new jobs are refused. One lock, so that
    /// a job is either queued before a shutdown or refused, never lost in between.
    pool: Mutex<PoolSlot>,
}

/// The state the job threads share with the request handlers.
struct Shared {
    /// The configuration, with `job_threads` already clamped.
    config: StatsConfig,
    /// The table, loaded by the first request that needs it; a load error is kept too, so
    /// that every request reports it instead of retrying a bad file.
    table: OnceLock<Result<Table, String>>,
    /// Job ids, states and result files.
    store: Store,
    /// The activity log.
    log: ActivityLog,
}

/// The pool and the refusal flag, behind the service's lock.
struct PoolSlot {
    /// Set by `graceful_shutdown` or `shutdown`: new jobs are refused from then on.
    refusing: bool,
    /// The job threads, `None` until the first job (or in inline mode, or after shutdown).
    pool: Option<Pool>,
}

impl Service {
    /// Opens the service: creates the results directory and the log. The CSV is not read yet.
    pub fn open(config: StatsConfig) -> io::Result<Service> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = StatsConfig { job_threads: config.job_threads.clamp(1, cores), ..config };
        let owner = !config.inline_jobs;
        let store = Store::open(&config.results_dir, owner)?;
        if owner {
            match std::fs::remove_file(config.results_dir.join(SHUTDOWN_MARKER)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let log = ActivityLog::open(config.log_file.as_deref(), log::MAX_BYTES)?;
        Ok(Service {
            shared: Arc::new(Shared { config, table: OnceLock::new(), store, log }),
            pool: Mutex::new(PoolSlot { refusing: false, pool: None }),
        })
    }

    /// The configuration in use, with the thread count as clamped.
    pub fn config(&self) -> &StatsConfig {
        &self.shared.config
    }

    /// Loads the CSV now rather than on the first request; servers call it at start so that
    /// the first client does not pay for it. A load error is printed, and every job request
    /// will answer it with a 500.
    pub fn warm_up(&self) {
        if let Err(e) = self.table() {
            let _ = writeln!(io::stderr().lock(), "flash-stats: {e}"); // Not `eprintln!`: see log.rs.
        }
    }

    /// The table, loading it on first use.
    pub fn table(&self) -> Result<&Table, &str> {
        self.shared
            .table
            .get_or_init(|| {
                let path = self.shared.csv_path();
                let started = Instant::now();
                let table = Table::load(path);
                match &table {
                    Ok(t) => self.shared.log.write(
                        "INFO",
                        &format!(
                            "loaded {} ({} rows) in {:.1} ms",
                            path.display(),
                            t.rows(),
                            started.elapsed().as_secs_f64() * 1e3
                        ),
                    ),
                    Err(e) => self.shared.log.write("ERROR", e),
                }
                table
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Answers one request of the API; None when `path` is not under /api/.
    pub fn handle(&self, method: &str, path: &str, body: &[u8]) -> Option<ApiResponse> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let route = path.strip_prefix("/api/")?;
        let get = method == "GET" || method == "HEAD";
        let response = match route {
            "jobs" if get => self.jobs(),
            "num_jobs" if get => self.num_jobs(),
            "graceful_shutdown" if get => self.graceful_shutdown(),
            "jobs" | "num_jobs" | "graceful_shutdown" => ApiResponse::method_not_allowed("GET, HEAD"),
            _ => match route.strip_prefix("get_results/") {
                Some(id) if get => self.get_results(id),
                Some(_) => ApiResponse::method_not_allowed("GET, HEAD"),
                None => match Endpoint::from_name(route) {
                    Some(endpoint) if method == "POST" => self.submit(endpoint, body),
                    Some(_) => ApiResponse::method_not_allowed("POST"),
                    None => ApiResponse::error(404, &format!("no such API endpoint: {path}")),
                },
            },
        };
        if !self.shared.log.enabled() {
            return Some(response);
        }
        if response.status >= 400 {
            let reason = String::from_utf8_lossy(&response.body);
            let message = format!("{method} {path} -> {}: {reason}", response.status);
            self.shared.log.write("ERROR", &message);
        } else if Endpoint::from_name(route).is_none() {
            // An accepted job was logged by `submit`, with its parameters and id.
            let message = format!("{method} {path} -> {}", response.status);
            self.shared.log.write("INFO", &message);
        }
        Some(response)
    }

    /// Server shutdown: refuse new jobs, finish the queued ones, return when all are on disk.
    pub fn shutdown(&self) {
        let pool = {
            let mut slot = self.lock_pool();
            slot.refusing = true;
            slot.pool.take()
        };
        if let Some(pool) = pool {
            pool.join();
            self.shared.log.write("INFO", "shutdown: every queued job finished");
        }
    }

    fn lock_pool(&self) -> MutexGuard<'_, PoolSlot> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refusing(&self, slot: &PoolSlot) -> bool {
        slot.refusing
            || (self.shared.config.inline_jobs && self.shared.config.results_dir.join(SHUTDOWN_MARKER).exists())
    }

    /// A job request: check it completely, then queue it (or run it, inline) and answer its id.
    fn submit(&self, endpoint: Endpoint, body: &[u8]) -> ApiResponse {
        if self.refusing(&self.lock_pool()) {
            return ApiResponse::error(503, "shutting down");
        }
        let request = match Request::parse(endpoint, body) {
            Ok(request) => request,
            Err(reason) => return ApiResponse::error(400, &reason),
        };
        let table = match self.table() {
            Ok(table) => table,
            Err(e) => return ApiResponse::error(500, &format!("the stats data is unavailable: {e}")),
        };
        let query = match table.resolve(&request) {
            Ok(query) => query,
            Err(reason) => return ApiResponse::error(400, &reason),
        };
        let mut slot = self.lock_pool();
        // Checked again under the lock that `shutdown` takes, so no job slips past it.
        if self.refusing(&slot) {
            return ApiResponse::error(503, "shutting down");
        }
        if !self.shared.config.inline_jobs && slot.pool.is_none() {
            match Pool::new(self.shared.config.job_threads) {
                Ok(pool) => slot.pool = Some(pool),
                Err(e) => return ApiResponse::error(500, &format!("cannot start job threads: {e}")),
            }
        }
        let id = match self.shared.store.reserve() {
            Ok(id) => id,
            Err(e) => return ApiResponse::error(500, &format!("cannot create the job: {e}")),
        };
        if self.shared.log.enabled() {
            self.shared.log.write("INFO", &describe(id, &request));
        }
        match &slot.pool {
            Some(pool) => {
                let shared = Arc::clone(&self.shared);
                pool.execute(Box::new(move || shared.run(id, &query)));
            }
            None => {
                drop(slot);
                self.shared.run(id, &query);
            }
        }
        ApiResponse::value(200, json!({ "job_id": format!("job_id_{id}") }))
    }

    fn get_results(&self, id: &str) -> ApiResponse {
        // The original checker expects HTTP 200 for every poll, errors included.
        let Some(id) = store::parse_job_id(id) else {
            return ApiResponse::error(200, "Invalid job_id");
        };
        match self.shared.store.result(id) {
            Ok(Some(body)) => ApiResponse::json(200, body),
            Ok(None) => ApiResponse::error(200, "Invalid job_id"),
            Err(e) => ApiResponse::error(500, &format!("cannot read the result: {e}")),
        }
    }

    fn jobs(&self) -> ApiResponse {
        match self.shared.store.list() {
            Ok(jobs) => {
                let data: Vec<_> = jobs.into_iter().map(|(id, word)| json!({ format!("job_id_{id}"): word })).collect();
                ApiResponse::value(200, json!({ "status": "done", "data": data }))
            }
            Err(e) => ApiResponse::error(500, &format!("cannot list the jobs: {e}")),
        }
    }

    fn num_jobs(&self) -> ApiResponse {
        let pending = self.shared.store.pending();
        ApiResponse::value(200, json!({ "status": "done", "num_jobs": pending }))
    }

    fn graceful_shutdown(&self) -> ApiResponse {
        self.lock_pool().refusing = true;
        if self.shared.config.inline_jobs {
            let marker = self.shared.config.results_dir.join(SHUTDOWN_MARKER);
            if let Err(e) = std::fs::write(marker, b"") {
                return ApiResponse::error(500, &format!("cannot record the shutdown: {e}"));
            }
        }
        let pending = self.shared.store.pending();
        let status = if pending == 0 { "done" } else { "shutting down" };
        ApiResponse::value(200, json!({ "status": status, "num_jobs": pending }))
    }
}

impl Drop for Service {
    /// Dropping the service drains its queue, so that no job thread outlives it.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn csv_path(&self) -> &Path {
        self.config.csv.as_deref().unwrap_or_else(|| Path::new(BUNDLED_CSV))
    }

    /// Runs one job and stores its result. The table is loaded: `submit` resolved the query.
    fn run(&self, id: u64, query: &Query) {
        let started = Instant::now();
        let outcome = match self.table.get() {
            Some(Ok(table)) => {
                // A bug in a statistic must fail its job, not leave it "running" forever.
                panic::catch_unwind(AssertUnwindSafe(|| table.answer(query)))
                    .map_err(|_| "internal error while computing the statistic")
            }
            _ => Err("the stats data is unavailable"),
        };
        let stored = self.store.finish(id, outcome.as_deref().map_err(|e| *e));
        if !self.log.enabled() {
            return;
        }
        match (outcome, stored) {
            (Ok(_), Ok(())) => self.log.write(
                "INFO",
                &format!("job_id_{id} done ({}) in {} us", query.endpoint.name(), started.elapsed().as_micros()),
            ),
            (Err(reason), _) => self.log.write("ERROR", &format!("job_id_{id} failed: {reason}")),
            (_, Err(e)) => self.log.write("ERROR", &format!("job_id_{id}: cannot store the result: {e}")),
        }
    }
}

/// The activity-log line of an accepted job: endpoint, parameters and id.
fn describe(id: u64, request: &Request) -> String {
    let question = QUESTIONS[request.question].0;
    let mut line = format!("POST /api/{} question={question:?}", request.endpoint.name());
    if let Some(state) = &request.state {
        line.push_str(&format!(" state={state:?}"));
    }
    line.push_str(&format!(" -> job_id_{id}"));
    line
}
