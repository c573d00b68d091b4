//! # Server 05: threaded epoll
//!
//! # Model
//! Server 04's event loop still owns every socket, but no longer runs the application: each
//! complete request is copied and handed to a thread pool, and the answer comes back over a
//! channel that wakes the loop (Apache's event MPM, nginx's thread pools). A slow handler now
//! occupies a pool thread, not the loop, so `/hello` keeps flowing while `/cpu` runs.
//!
//! # Changes from 04
//! None in the loop: this crate calls 04's [`run_reactor`] as it is, with a different
//! [`Dispatch`]. Where 04 answers `site.call(req)` on the loop's thread, 05 copies the request
//! ([`Request::to_owned`]), keeps it in a batch, and returns [`Reply::Later`]; when the loop says
//! it has dispatched all that one client's read brought in, the batch goes to the pool, split
//! into at most one job per pool thread. A pool thread answers each request in turn through its
//! [`Responder`](flash_common::Responder), and 04's loop, which already handles answers that
//! come later, takes it from there. Jobs per batch, not per request, is what makes pipelining
//! pay: sixteen pipelined requests cost at most one wake-up per pool thread, not sixteen.
//!
//! # Limits
//! Every batch pays for the hand-off: a copy, a queue, a wake-up of the loop, and two context
//! switches; on a fast route that is more than the work itself. See README.md for the numbers.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use flash_04_epoll::dispatch::Dispatch;
use flash_04_epoll::run_reactor;
use flash_common::{deferred, App, OwnedRequest, Reply, Request, Responder, Shutdown, Site};
use threadpool::ThreadPool;

/// Serves every client from one event loop, running requests on `--threads` pool threads, until
/// `shutdown` is triggered; then waits for the pool to finish.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    let pool = ThreadPool::with_name("flash-pool".into(), site.config().threads());
    let batches = ToPool { pool: pool.clone(), app: site.app().clone(), batch: Vec::new() };
    let result = run_reactor(listener, &site, &shutdown, 0, batches);
    pool.join();
    result
}

/// The loop's [`Dispatch`]: requests collect in a batch that goes to the pool in a few jobs.
struct ToPool {
    /// The threads that run the application.
    pool: ThreadPool,
    /// The application, shared with every pool thread.
    app: Arc<dyn App>,
    /// This client's requests so far, each with the responder its answer goes back through.
    batch: Vec<(OwnedRequest, Responder)>,
}

impl Dispatch for ToPool {
    fn call(&mut self, req: &Request<'_>) -> Reply {
        let (responder, pending) = deferred();
        self.batch.push((req.to_owned(), responder));
        Reply::Later(pending)
    }

    fn end_of_batch(&mut self) {
        // At most one job per pool thread: a burst of slow requests still runs side by side,
        // and a burst of fast ones costs a few wake-ups, not one per request.
        let per_job = self.batch.len().div_ceil(self.pool.max_count()).max(1);
        let mut requests = std::mem::take(&mut self.batch).into_iter();
        loop {
            let job: Vec<_> = requests.by_ref().take(per_job).collect();
            if job.is_empty() {
                return;
            }
            let app = self.app.clone();
            self.pool.execute(move || {
                let answers: Vec<_> = job.into_iter().map(|(req, r)| (app.call(&req.as_request()), r)).collect();
                answers.into_iter().for_each(|(reply, r)| r.forward(reply));
            });
        }
    }
}
