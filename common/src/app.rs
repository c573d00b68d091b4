//! The application interface: what a server hands each request to.
//!
//! This is the WSGI idea, in Rust. A server moves bytes; an [`App`] answers requests. Because every
//! server hands the same requests to the same `App`, any difference a reader measures between two
//! servers is the server's doing. The applications themselves live above this crate (the demo
//! site and the stats service in `flash-demo`, the replicated log, the cluster proxy) and plug in
//! through [`crate::server::main_with`]; the HTTP layer knows none of them.

use std::ffi::OsString;

use crate::reply::Reply;
use crate::request::Request;

/// An application: turns a request into a reply, now or later (see [`crate::reply`]).
///
/// `call` runs on whichever thread the server chooses and may run on many at once, hence
/// `Send + Sync`. A handler that would block a shared event loop for long should answer
/// [`Reply::Later`] and finish elsewhere.
pub trait App: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: &Request<'_>) -> Reply;

    /// The server is starting: load what the first request would otherwise wait for.
    fn warm_up(&self) {}

    /// The server is stopping and every connection is closed: finish background work (queued
    /// jobs, replication) before the process exits.
    fn shutdown(&self) {}

    /// The environment that configures a copy of this application in another process the same
    /// way (server 02 runs the application as a CGI program per request, and CGI passes
    /// configuration in the environment). Empty for an application with nothing to pass.
    fn environment(&self) -> Vec<(&'static str, OsString)> {
        Vec::new()
    }
}

/// The smallest application: answers every request with `Hello, world!`, as the demo's `/hello`
/// does. For tests, fuzzing and benchmarks of the HTTP layer alone.
pub struct Hello;

impl App for Hello {
    fn call(&self, _req: &Request<'_>) -> Reply {
        Reply::Now(crate::response::Response::text(200, "Hello, world!"))
    }
}
