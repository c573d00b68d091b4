//! What a server is handed besides its listener: the application, the configuration, the access
//! log and the counters, bundled as one cheap-to-clone [`Site`].

use std::io;
use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::app::App;
use crate::config::Config;
use crate::parse::Limits;
use crate::reply::Reply;
use crate::request::Request;
use crate::status::Status;

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
    log: Option<Arc<AccessLog>>,
    /// The server's counters (the application may show them).
    status: Arc<Status>,
}

impl Site {
    /// A site serving `app` with this configuration, with fresh counters.
    pub fn new(config: Config, app: Arc<dyn App>) -> io::Result<Site> {
        Site::with_status(config, app, Arc::new(Status::new()))
    }

    /// A site whose counters are `status`, which the application was given when it was built.
    pub fn with_status(config: Config, app: Arc<dyn App>, status: Arc<Status>) -> io::Result<Site> {
        let log = match (&config.access_log, config.quiet) {
            (_, true) => None,
            (Some(path), false) => Some(
                AccessLog::file(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("--access-log {}: {e}", path.display())))?,
            ),
            (None, false) => Some(AccessLog::stderr()?),
        };
        let limits = config.limits();
        Ok(Site { inner: Arc::new(Inner { config, limits, app, log, status }) })
    }

    /// Hands a request to the application.
    pub fn call(&self, req: &Request<'_>) -> Reply {
        self.inner.app.call(req)
    }

    /// The application itself (to warm it up, or to pass its environment to a CGI program).
    pub fn app(&self) -> &Arc<dyn App> {
        &self.inner.app
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

    /// Queues one access log line in this thread's buffer (see [`crate::access_log`]).
    pub fn write_log(&self, line: &[u8]) {
        if let Some(log) = &self.inner.log {
            log.line(line);
        }
    }

    /// Writes out the access log lines this thread has queued. Every loop calls this before it
    /// waits, so that a line is never held back longer than one round.
    pub fn flush_log(&self) {
        if self.inner.log.is_some() {
            AccessLog::flush_thread();
        }
    }

    /// The server is stopping: let the application finish its background work.
    pub fn shutdown_app(&self) {
        self.flush_log();
        self.inner.app.shutdown();
    }
}
