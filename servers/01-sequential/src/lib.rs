//! # Server 01: sequential
//!
//! # Model
//! One thread accepts a connection, serves it until the client leaves, then accepts the next.
//! Every other client waits meanwhile in the kernel's accept queue, connected but unanswered.
//! It is the simplest correct server, and the baseline for every later model.
//!
//! # Changes from nothing
//! The first rung: all of HTTP is in `flash_common`, so what is left is the one decision that
//! makes a model: which thread serves which client, when. Here, the only thread, one at a time.
//!
//! # Limits
//! One `/sleep?ms=500` makes every other client wait half a second, and one idle keep-alive
//! client holds the server for up to the idle timeout (10 s); see README.md for the arithmetic.

use std::io;
use std::net::TcpListener;

use flash_common::blocking::{serve_connection, wait_for_client};
use flash_common::server::accept_failed;
use flash_common::{Shutdown, Site};

/// Serves clients until `shutdown` is triggered; in-flight requests are answered first.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    while wait_for_client(&listener, &shutdown)? {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(e)?;
                continue;
            }
        };
        site.status().accepted(0);
        // One client's failure (a reset, a write timeout) ends that client, not the server.
        let _ = serve_connection(stream, &site, &shutdown, |req| site.call(req));
    }
    Ok(())
}
