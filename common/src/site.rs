//! What a server is handed besides its listener: the application, the configuration, the access
//! log and the counters, bundled as one cheap-to-clone [`Site`].

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::app::{App, FlashApp};
use crate::config::Config;
use crate::conn::Conn;
use crate::parse::Limits;
use crate::reply::Reply;
use crate::request::Request;

/// The application and everything a server needs to serve it. Clones share one site.
#[derive(Clone)]
pub struct Site {
    /// Shared by every clone (one per thread or connection).
    inner: Arc<Inner>,
}

/// What the clones share.
struct Inner {
    /// The parsed command line.
    config: Config,
    /// The parser's limits, derived from `config` once.
    limits: Limits,
    /// The application requests are handed to.
    app: Arc<dyn App>,
    /// The access log; `None` with `--quiet`.
    log: Option<Mutex<Box<dyn Write + Send>>>,
    /// Counters for `/server-status`.
    status: Arc<Status>,
}

impl Site {
    /// The site serving [`FlashApp`] with this configuration.
    pub fn new(config: Config) -> io::Result<Site> {
        let status = Arc::new(Status::new());
        let app = FlashApp::new(&config, status.clone(), false)?;
        Site::build(config, Arc::new(app), status)
    }

    /// A site serving another application (tests, and the applications built on Flash).
    pub fn with_app(config: Config, app: Arc<dyn App>) -> io::Result<Site> {
        Site::build(config, app, Arc::new(Status::new()))
    }

    fn build(config: Config, app: Arc<dyn App>, status: Arc<Status>) -> io::Result<Site> {
        let log: Option<Box<dyn Write + Send>> = match (&config.access_log, config.quiet) {
            (_, true) => None,
            (Some(path), false) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("--access-log {}: {e}", path.display())))?;
                Some(Box::new(file))
            }
            (None, false) => Some(Box::new(io::stderr())),
        };
        let limits = config.limits();
        Ok(Site { inner: Arc::new(Inner { config, limits, app, log: log.map(Mutex::new), status }) })
    }

    /// Hands a request to the application.
    pub fn call(&self, req: &Request<'_>) -> Reply {
        self.inner.app.call(req)
    }

    /// The application itself (a server that runs it elsewhere, such as 05's pool, clones it).
    pub fn app(&self) -> &Arc<dyn App> {
        &self.inner.app
    }

    /// A fresh connection state machine for a client at `peer`.
    pub fn connection(&self, peer: SocketAddr) -> Conn {
        Conn::new(self, peer)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The parser's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The counters.
    pub fn status(&self) -> &Status {
        &self.inner.status
    }

    /// Whether access log lines are wanted (so that nobody formats one for nothing).
    pub fn logging(&self) -> bool {
        self.inner.log.is_some()
    }

    /// Writes one access log line (a single `write`, so lines from threads do not interleave).
    pub fn write_log(&self, line: &[u8]) {
        if let Some(log) = &self.inner.log {
            let mut w = log.lock().unwrap_or_else(PoisonError::into_inner);
            // A full disk must not take the server down with it; the line is lost, not the request.
            let _ = w.write_all(line);
        }
    }

    /// The server is stopping: let the application finish its background work.
    pub fn shutdown_app(&self) {
        self.inner.app.shutdown();
    }
}

/// How many worker slots `/server-status` reports at most.
const MAX_WORKERS: usize = 64;

/// A counter alone on its cache line, so that two cores counting do not slow each other down.
#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

/// Counters a server keeps for `/server-status`: when it started and how many connections each
/// worker (thread, reactor) accepted. Kept per worker, not per request, so counting is free.
pub struct Status {
    /// When the site was built.
    started: Instant,
    /// Connections accepted by each worker.
    workers: [Padded; MAX_WORKERS],
}

impl Default for Status {
    fn default() -> Self {
        Status::new()
    }
}

impl Status {
    /// Fresh counters, started now (the CGI program `flash-cgi` builds its `FlashApp` with one).
    pub fn new() -> Status {
        Status { started: Instant::now(), workers: std::array::from_fn(|_| Padded::default()) }
    }

    /// Counts a connection accepted by `worker` (ids past the last slot share it).
    pub fn accepted(&self, worker: usize) {
        self.workers[worker.min(MAX_WORKERS - 1)].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as JSON: uptime, and connections per worker that accepted any.
    pub fn to_json(&self) -> serde_json::Value {
        let workers: Vec<_> = self
            .workers
            .iter()
            .enumerate()
            .map(|(id, c)| (id, c.0.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .map(|(id, n)| serde_json::json!({"worker": id, "connections": n}))
            .collect();
        let total: u64 = self.workers.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
        serde_json::json!({
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "connections": total,
            "workers": workers,
        })
    }
}
