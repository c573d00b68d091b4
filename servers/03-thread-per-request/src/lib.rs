//! # Server 03: a thread per connection
//!
//! # Model
//! One thread accepts connections and gives each a new thread of its own, which serves it until
//! the client leaves. A slow request now blocks only its own thread; the kernel schedules the
//! rest. The price is a thread (a stack, a kernel task, context switches) per client, idle or not.
//!
//! # Changes from 01
//! `serve_connection` moves into a spawned thread holding a clone of `live`, whose count caps
//! threads at `--max-threads` (past it, a fast 503) and whose channel closes when the last
//! thread leaves: that is how shutdown waits for every in-flight request.
//!
//! # Limits
//! 10,000 idle clients are 10,000 threads and their stacks; see README.md for the arithmetic.

use std::io;
use std::net::TcpListener;
use std::sync::{mpsc, Arc};

use flash_common::blocking::{serve_connection, wait_for_client};
use flash_common::server::{accept_failed, refuse};
use flash_common::{Shutdown, Site};

/// Serves clients until `shutdown` is triggered; in-flight requests are answered first.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    let (live, all_left) = mpsc::channel::<()>();
    let live = Arc::new(live);
    while wait_for_client(&listener, &shutdown)? {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(e)?;
                continue;
            }
        };
        if Arc::strong_count(&live) > site.config().max_threads {
            refuse(stream, "too many connections (--max-threads)");
            continue;
        }
        site.status().accepted(0);
        let (site, shutdown, live) = (site.clone(), shutdown.clone(), live.clone());
        // If the OS refuses a thread, that client's stream is dropped and the server goes on.
        let _ = std::thread::Builder::new().spawn(move || {
            // One client's failure (a reset, a write timeout) ends that client, not the server.
            let _ = serve_connection(stream, &site, &shutdown, |req| site.call(req));
            drop(live);
        });
    }
    // Closed now, not on return: a client arriving while the others finish is refused at once.
    drop((live, listener));
    // Returns (with an error we expect) once every thread has dropped its clone of `live`.
    let _ = all_left.recv();
    Ok(())
}
