//! # Server 05: threaded epoll
//!
//! # Model
//! Server 04's event loop still owns every socket, but no longer runs the application: each
//! complete request is copied and handed to a thread pool, and the answer comes back over a
//! channel that wakes the loop (Apache's event MPM, nginx's thread pools). A slow handler now
//! occupies a pool thread, not the loop, so `/hello` keeps flowing while `/cpu` runs.
//!
//! # Changes from 04
//! None in the loop: this crate calls 04's [`run_reactor`] as it is, with a different `dispatch`.
//! Where 04 answers `site.call(req)` on the loop's thread, 05 copies the request
//! ([`Request::to_owned`]), sends it to the pool, and returns [`Reply::Later`]; the pool thread
//! answers through the [`Responder`](flash_common::Responder), and 04's loop, which already
//! handles answers that come later, takes it from there.
//!
//! # Limits
//! Every request pays for the hand-off: a copy, a queue, a wake-up of the loop, and two context
//! switches; on a fast route that is more than the work itself. See README.md for the numbers.

use std::io;
use std::net::TcpListener;

use flash_04_epoll::run_reactor;
use flash_common::{deferred, Reply, Request, Shutdown, Site};
use threadpool::ThreadPool;

/// Serves every client from one event loop, running requests on `--threads` pool threads, until
/// `shutdown` is triggered; then waits for the pool to finish.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    let pool = ThreadPool::with_name("flash-pool".into(), site.config().threads());
    let app = site.app().clone();
    let dispatch = |req: &Request<'_>| {
        let req = req.to_owned();
        let (responder, pending) = deferred();
        let app = app.clone();
        pool.execute(move || responder.forward(app.call(&req.as_request())));
        Reply::Later(pending)
    };
    let result = run_reactor(listener, &site, &shutdown, 0, dispatch);
    pool.join();
    result
}
