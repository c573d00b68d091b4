//! `flash-common`: everything the Flash servers share, so that each server holds only its model.
//!
//! Two invariants shape this crate:
//!
//! 1. **The HTTP layer does no I/O.** [`parse`] and [`chunked`] turn bytes into requests, [`conn`]
//!    turns a connection's bytes into responses and says what it wants next (read, write,
//!    close), and [`response`] turns responses into bytes. Nothing in them touches a socket, so
//!    every server, blocking or event-driven, drives the same logic and behaves the same.
//! 2. **A server never parses or formats HTTP itself.** It moves bytes between sockets and a
//!    [`Conn`], and decides who runs what, when. That decision is the lesson of each server.
//!
//! Around the HTTP layer: the application every server serves ([`app`], with the [`App`] trait
//! and its [`Reply`] that may come later from another thread), the shared command line
//! ([`config`]) and `main` ([`server`]), graceful [`shutdown`], the blocking connection loop the
//! thread-based servers share ([`blocking`]), and a small [`client`] for tests.

pub mod app;
pub mod blocking;
pub mod chunked;
pub mod client;
pub mod config;
pub mod conn;
pub mod date;
pub mod parse;
pub mod reply;
pub mod request;
pub mod response;
pub mod server;
pub mod shutdown;
pub mod site;

pub use app::{App, FlashApp};
pub use config::Config;
pub use conn::Conn;
pub use reply::{deferred, Pending, Reply, Responder};
pub use request::{OwnedRequest, Request};
pub use response::{Body, Response};
pub use shutdown::Shutdown;
pub use site::Site;
