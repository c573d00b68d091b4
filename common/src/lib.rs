//! `flash-common`: the HTTP layer and the server runtime every Flash server shares, so that each
//! server holds only its model, and every application plugs into every server the same way.
//!
//! Two invariants shape this crate:
//!
//! 1. **The HTTP layer does no I/O.** [`parse`] and [`chunked`] turn bytes into requests, [`conn`]
//!    turns a connection's bytes into responses and says what it wants next (read, write,
//!    close), and [`response`] turns responses into bytes ([`response_reader`] turns them back,
//!    for clients and the cluster's proxy). Nothing in them touches a socket, so every server,
//!    blocking or event-driven, drives the same logic and behaves the same.
//! 2. **A server never parses or formats HTTP itself.** It moves bytes between sockets and a
//!    [`Conn`], and decides who runs what, when. That decision is the lesson of each server.
//!
//! Around the HTTP layer, the runtime: the application interface ([`app`], with the [`App`] trait
//! and its [`Reply`] that may come later from another thread), the [`Site`] a server is handed
//! (application, configuration, [`access_log`], [`status`] counters), the shared command line
//! ([`config`]) and the one entry point every binary goes through ([`server::main_with`]),
//! graceful [`shutdown`], the blocking connection loop the thread-based servers share
//! ([`blocking`]), a small [`client`] for tests, and [`drive`], a connection driven in memory for
//! the checks that split its input.
//!
//! This crate knows no application and no model: the demo site and the stats service
//! (`flash-demo`), the replicated log and the cluster live above it; the servers beside them.
//!
//! Imports run one way, from the connection down: `conn` → `site` → `app` → `reply`, `request`,
//! `response` → `parse`, `chunked`.

pub mod access_log;
pub mod app;
pub mod blocking;
pub mod chunked;
pub mod client;
pub mod config;
pub mod conn;
pub mod date;
pub mod drive;
pub mod parse;
pub mod reply;
pub mod request;
pub mod response;
pub mod response_reader;
pub mod server;
pub mod shutdown;
pub mod site;
pub mod status;

/// `eprintln!` for code that serves: one line on stderr (the error log), or nothing if stderr is
/// gone. `eprintln!` panics when its write fails, so a server whose stderr is a pipe to a reader
/// that exited (`flash-cluster ... 2>&1 | head`, a log shipper restarting) would lose the thread
/// that logged: nginx goes on serving when its error log cannot be written, and so do we.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub use app::App;
pub use config::Config;
pub use conn::Conn;
pub use reply::{deferred, Pending, Reply, Responder};
pub use request::Request;
pub use response::{Body, Response};
pub use shutdown::Shutdown;
pub use site::Site;
pub use status::Status;
