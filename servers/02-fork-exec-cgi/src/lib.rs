//! # Server 02: fork and exec, CGI
//!
//! # Model
//! One thread serves one connection at a time, as in 01, but no request is answered inside the
//! server: for each one it forks, and the child execs a program (a script from `--cgi-dir` under
//! `/cgi-bin/`, else `flash-cgi`, the shared application) that reads the request from its
//! environment and stdin and writes the response on stdout, as CGI/1.1 (RFC 3875) says.
//! A handler that crashes or leaks cannot hurt the server; every request pays for a process.
//!
//! # Changes from 01
//! Only the handler: `site.call(req)` becomes `cgi.answer(req)`. [`cgi`] turns a request into
//! meta-variables and the child's output back into a response; `spawn` forks, execs, enforces
//! `--cgi-timeout` and reaps. `Cgi::new` finds the scripts and `flash-cgi` once, before clients.
//!
//! # Limits
//! 01's, plus a process per request: about 1.4 ms of fork, exec and start-up for `flash-cgi`,
//! so at most some 700 `/hello`s a second on one core, 1/27 of 01's; see README.md.

pub mod cgi;
mod spawn;

use std::io;
use std::net::TcpListener;

use flash_common::blocking::{serve_connection, wait_for_client};
use flash_common::server::accept_failed;
use flash_common::{Shutdown, Site};

/// Serves clients until `shutdown` is triggered; in-flight requests are answered first.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    let cgi = cgi::Cgi::new(&site, listener.local_addr()?)?;
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
        let _ = serve_connection(stream, &site, &shutdown, |req| cgi.answer(req));
    }
    Ok(())
}
