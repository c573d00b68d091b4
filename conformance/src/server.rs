//! A server under test, running in-process on its own thread: started on `127.0.0.1:0` with
//! test defaults, serving the demo application (`flash-demo`, whose routes and files the corpus
//! checks), and stopped through the same [`Shutdown`] SIGTERM triggers.
//!
//! In-process rather than as a child process so that a case can shape the [`Config`] directly
//! and see `serve`'s own `io::Result`, and so that no stray process can outlive a failed test.
//! Stopping is bounded: a server that does not return within [`STOP_DEADLINE`] of shutdown
//! fails the test loudly instead of hanging the suite.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::Duration;

use std::sync::Arc;

use flash_common::server::{bind, raise_fd_limit, Serve, Setup};
use flash_common::{App, Config, Shutdown, Site, Status};
use flash_demo::{DemoFlags, FlashApp};
use tempfile::TempDir;

/// How long a server may take to return from `serve` once shutdown is triggered: half the
/// default idle timeout, so that a server which forgets to tell an idle keep-alive connection
/// about the shutdown fails here rather than stopping when the timeout happens to fire.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// A running server; dropping it stops it.
pub struct TestServer {
    /// Where it listens.
    addr: SocketAddr,
    /// Triggers its graceful shutdown.
    shutdown: Shutdown,
    /// The thread running `serve`; `None` once joined.
    thread: Option<JoinHandle<std::io::Result<()>>>,
    /// Receives one message when `serve` has returned (or panicked), so that joining can have a
    /// deadline, which `JoinHandle::join` lacks.
    finished: mpsc::Receiver<()>,
    /// The stats service's results folder, removed when the server is.
    _results: TempDir,
}

impl TestServer {
    /// Starts `serve` with the test defaults ([`Config::for_tests`]).
    #[track_caller]
    pub fn start(serve: Serve) -> TestServer {
        TestServer::start_with(serve, |_| {})
    }

    /// Starts `serve` with the test defaults changed by `configure` (a short timeout, a small
    /// body limit, another docroot).
    #[track_caller]
    pub fn start_with(serve: Serve, configure: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_app(serve, configure, |setup| Ok(Arc::new(FlashApp::launch(setup)?)))
    }

    /// Starts `serve` with the application `build` makes, as a server binary would build it
    /// (see [`Setup`]), from the demo application's test flags (stats results in a fresh
    /// temporary folder): for the cases that change those flags or wrap the application to watch
    /// it (see `graceful_shutdown_finishes_in_flight`).
    #[track_caller]
    pub fn start_app(
        serve: Serve,
        configure: impl FnOnce(&mut Config),
        build: impl FnOnce(Setup<'_, DemoFlags>) -> std::io::Result<Arc<dyn App>>,
    ) -> TestServer {
        static FD_LIMIT: Once = Once::new();
        FD_LIMIT.call_once(raise_fd_limit);

        let results = tempfile::tempdir().expect("cannot create a temporary results folder");
        let mut config = Config::for_tests();
        configure(&mut config);
        let listener = bind("127.0.0.1:0".parse().expect("a literal address")).expect("cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let status = Arc::new(Status::new());
        let flags = DemoFlags::for_tests(results.path());
        let app = build(Setup { config: &config, flags, addr, status: status.clone() })
            .expect("cannot build the application");
        let site = Site::with_status(config, app, status).expect("cannot build the site");
        let shutdown = Shutdown::new().expect("cannot create the shutdown pipe");
        let (done, finished) = mpsc::channel();
        let thread = {
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name(format!("server-{}", addr.port()))
                .spawn(move || {
                    // Dropped on return and on panic alike, so the waiter always hears.
                    let _signal = Signal(done);
                    let result = serve(listener, site.clone(), shutdown);
                    site.shutdown_app();
                    result
                })
                .expect("cannot spawn the server thread")
        };
        TestServer { addr, shutdown, thread: Some(thread), finished, _results: results }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Begins graceful shutdown without waiting for it.
    pub fn trigger_shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Shuts the server down and asserts that `serve` returned `Ok` in time.
    #[track_caller]
    pub fn stop(mut self) {
        if let Err(e) = self.join() {
            panic!("serve returned an error: {e}");
        }
    }

    /// Triggers shutdown and waits (bounded) for `serve` to return; panics if it does not, or
    /// if it panicked.
    #[track_caller]
    fn join(&mut self) -> std::io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.shutdown.trigger();
        if self.finished.recv_timeout(STOP_DEADLINE).is_err() {
            // The thread is left behind: there is no safe way to kill it, and the test fails.
            panic!("the server on {} did not stop within {STOP_DEADLINE:?} of shutdown", self.addr);
        }
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test already failed; stop the server if it stops, but never panic twice.
            if let Some(thread) = self.thread.take() {
                self.shutdown.trigger();
                if self.finished.recv_timeout(STOP_DEADLINE).is_ok() {
                    let _ = thread.join();
                }
            }
        } else if let Err(e) = self.join() {
            panic!("serve returned an error: {e}");
        }
    }
}

/// Sends one message when dropped.
struct Signal(
    /// Where the message goes.
    mpsc::Sender<()>,
);

impl Drop for Signal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}
