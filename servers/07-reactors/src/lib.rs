//! # Server 07: a reactor per core
//!
//! # Model
//! Server 04's event loop, once per core: each loop has its own thread, its own epoll, and its own
//! listening socket on the same port (`SO_REUSEPORT`), and the kernel spreads new connections
//! over the listeners. The loops share nothing on the request path (no lock, no queue, no
//! shared counter), which is how nginx and actix scale a fast route to every core.
//!
//! # Changes from 04
//! None in the loop: `serve` opens `--threads` listeners on the port (the first is the one it was
//! given) and runs 04's [`run_reactor`] on each from its own thread ([`on_every_core`]), then waits
//! for all of them.
//! Handlers run inline, as in 04: `/sleep` and `/cpu` stall the one reactor that runs them, and
//! only the clients that the kernel assigned to it. README.md measures that choice against 05's
//! pool.
//!
//! # Limits
//! The kernel assigns connections by a hash of their addresses, not by load, so a busy reactor
//! keeps getting its share; and a slow handler still stalls 1/N of the clients.

use std::io;
use std::net::TcpListener;

use flash_04_epoll::run_reactor;
use flash_common::server::bind_sibling;
use flash_common::{Request, Shutdown, Site};

/// Runs one event loop per core (`--threads`) until `shutdown` is triggered.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    on_every_core(listener, &site, &shutdown, |listener, id| {
        run_reactor(listener, &site, &shutdown, id, |req: &Request<'_>| site.call(req))
    })
}

/// Runs `run(listener, id)` on `--threads` threads, each with its own listener on the port (the
/// first is the one given), and waits for all of them. Server 08 runs its io_uring loop this way.
pub fn on_every_core<R>(listener: TcpListener, site: &Site, shutdown: &Shutdown, run: R) -> io::Result<()>
where
    R: Fn(TcpListener, usize) -> io::Result<()> + Sync,
{
    let mut listeners = vec![];
    for _ in 1..site.config().threads() {
        listeners.push(bind_sibling(&listener)?);
    }
    listeners.insert(0, listener);
    std::thread::scope(|scope| {
        let reactors: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(id, listener)| {
                let run = &run;
                std::thread::Builder::new().name(format!("flash-reactor-{id}")).spawn_scoped(scope, move || {
                    let result = run(listener, id);
                    // A reactor that fails takes the others down with it, rather than leaving
                    // the server half-listening.
                    if result.is_err() {
                        shutdown.trigger();
                    }
                    result
                })
            })
            .collect::<io::Result<_>>()?;
        // Every reactor finishes its clients; the first error, if any, is the server's.
        reactors.into_iter().try_for_each(|r| r.join().unwrap_or_else(|_| Err(io::Error::other("a reactor panicked"))))
    })
}
