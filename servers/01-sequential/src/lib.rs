//! # Server 01: sequential
//!
//! # Model
//! One thread accepts a connection, serves it until the client leaves, then accepts the next.
//! While it serves one client, every other client waits in the kernel's accept queue, connected
//! but unanswered. It is the simplest correct server, and the baseline every later model is
//! measured against.
//!
//! # Changes from nothing
//! This is the first rung. Everything HTTP (parsing, framing, keep-alive, pipelining, timeouts)
//! is in `flash_common`; what is left here is the one decision that makes a model: which thread
//! serves which client, and when. Here: the only thread, one client at a time.
//!
//! # Limits
//! Throughput is one client's: with keep-alive, a client that keeps its connection open holds
//! the server for as long as it likes, up to the idle timeout (10 s by default) between its
//! requests. One `/sleep?ms=500` makes everyone wait half a second; 100 clients each wanting
//! one 5 ms request wait up to 100 × 5 ms = 0.5 s. The head and idle timeouts are all that stop
//! one silent client from stopping the server.

use std::io;
use std::net::TcpListener;

use flash_common::blocking::{serve_connection, wait_for_client};
use flash_common::server::accept_failed;
use flash_common::{Shutdown, Site};

/// Serves clients one at a time until `shutdown` is triggered; the client being served when it
/// is triggered gets its current request answered first.
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
