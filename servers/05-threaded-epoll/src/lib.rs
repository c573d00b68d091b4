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
//! ([`Request::to_owned`]), adds it to this round's queue, and returns [`Reply::Later`]; when the
//! loop says the round of events is over, one job per pool thread (fewer for a short queue)
//! takes requests from that queue until it is empty, answering each through its
//! [`Responder`](flash_common::Responder), and 04's loop, which already handles answers that come
//! later, takes it from there. A job per thread, not per request, is what lets a busy loop pay
//! less per request: a round of 64 clients' pipelined requests costs a few wake-ups of the pool,
//! not a thousand; and a slow request still holds up only the thread that runs it.
//!
//! # Limits
//! Every request still pays for the hand-off: a copy, a shared answer slot, a boxed callback, a
//! channel send back to the loop; on a fast route that is more than the work itself (on one
//! core, 05 answers pipelined `/hello`s at about half 04's rate). See README.md for the numbers.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};

use flash_04_epoll::dispatch::Dispatch;
use flash_04_epoll::run_reactor;
use flash_common::{deferred, App, OwnedRequest, Reply, Request, Responder, Shutdown, Site};
use threadpool::ThreadPool;

/// Serves every client from one event loop, running requests on `--threads` pool threads, until
/// `shutdown` is triggered; then waits for the pool to finish.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    let pool = ThreadPool::with_name("flash-pool".into(), site.config().threads());
    let to_pool = ToPool { pool: pool.clone(), app: site.app().clone(), round: Vec::new() };
    let result = run_reactor(listener, &site, &shutdown, 0, to_pool);
    pool.join();
    result
}

/// The loop's [`Dispatch`]: a round's requests collect in a queue the pool's jobs empty.
struct ToPool {
    /// The threads that run the application.
    pool: ThreadPool,
    /// The application, shared with every pool thread.
    app: Arc<dyn App>,
    /// This round's requests so far, each with the responder its answer goes back through.
    round: Vec<(OwnedRequest, Responder)>,
}

impl Dispatch for ToPool {
    fn call(&mut self, req: &Request<'_>) -> Reply {
        let (responder, pending) = deferred();
        self.round.push((req.to_owned(), responder));
        Reply::Later(pending)
    }

    fn end_of_batch(&mut self) {
        if self.round.is_empty() {
            return;
        }
        // One job per pool thread (or per request, if fewer), all taking requests from the one
        // queue of this round: a slow request holds up its own thread only, as when each
        // request was a job, while a round of fast ones costs a few wake-ups, not one each.
        let jobs = self.round.len().min(self.pool.max_count());
        let queue = Arc::new(Mutex::new(std::mem::take(&mut self.round).into_iter()));
        for _ in 0..jobs {
            let (queue, app) = (queue.clone(), self.app.clone());
            self.pool.execute(move || {
                while let Some((req, responder)) = next(&queue) {
                    responder.forward(app.call(&req.as_request()));
                }
            });
        }
    }
}

/// The next request of a round, if any is left.
fn next<T>(queue: &Mutex<std::vec::IntoIter<T>>) -> Option<T> {
    queue.lock().unwrap_or_else(PoisonError::into_inner).next()
}
