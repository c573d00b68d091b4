//! # Server 06: a worker pool
//!
//! # Model
//! One thread accepts connections into a bounded queue; a fixed pool of workers takes them and
//! serves each until its client leaves. A full queue means a fast 503 with `Retry-After`, not a
//! wait unseen. Threads, queue and so memory are bounded up front, whatever the load.
//!
//! # Changes from 03
//! The thread per connection becomes `--threads` workers started once, and `live` a `--queue`
//! place `sync_channel`: hand-off and backpressure; at shutdown it closes, and workers drain it.
//!
//! # Limits
//! Each idle keep-alive client holds a worker; see README.md for the arithmetic.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use flash_common::blocking::{serve_connection, wait_for_client};
use flash_common::server::{accept_failed, refuse};
use flash_common::{Shutdown, Site};

/// Serves clients until `shutdown` is triggered; in-flight requests are answered first.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    let (queue, waiting) = mpsc::sync_channel::<TcpStream>(site.config().queue);
    let waiting = Arc::new(Mutex::new(waiting));
    let workers: Vec<_> = (0..site.config().threads())
        .map(|id| {
            let (site, shutdown, waiting) = (site.clone(), shutdown.clone(), waiting.clone());
            std::thread::Builder::new().spawn(move || work(id, &waiting, &site, &shutdown))
        })
        .collect::<io::Result<_>>()?;
    while wait_for_client(&listener, &shutdown)? {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(e)?;
                continue;
            }
        };
        if let Err(mpsc::TrySendError::Full(stream)) = queue.try_send(stream) {
            refuse(stream, "all workers are busy and the queue is full (--queue)");
        }
    }
    drop((queue, listener)); // Closed now: a client arriving while the workers finish is refused.
                             // Returns once every worker has drained the queue (one that panicked lost only its client).
    workers.into_iter().for_each(|w| drop(w.join()));
    Ok(())
}

/// One worker: serves queued connections one after another until the queue is closed and empty.
fn work(id: usize, waiting: &Mutex<mpsc::Receiver<TcpStream>>, site: &Site, shutdown: &Shutdown) {
    // Locked while waiting for a connection, never while serving one.
    let next = || waiting.lock().unwrap_or_else(PoisonError::into_inner).recv();
    while let Ok(stream) = next() {
        site.status().accepted(id);
        // One client's failure (a reset, a write timeout) ends that client, not the worker.
        let _ = serve_connection(stream, site, shutdown, |req| site.call(req));
    }
}
