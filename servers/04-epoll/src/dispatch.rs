//! What the event loop hands each request (or each ready client) to, and when it says a round
//! is over.
//!
//! 04 answers on the loop's own thread, so a closure (`|req| site.call(req)`) is all it needs,
//! and every closure is a [`Dispatch`]. Server 05 drives its clients on a thread pool: the loop
//! hands it each ready client whole ([`Dispatch::take`]), socket and `Conn`, and a pool thread
//! reads, answers and writes as the loop would. Each hand-off wakes a pool thread and, on a busy
//! core, costs two context switches, so 05 wants many clients per trip: the loop also says when
//! a round of events is over ([`Dispatch::end_of_batch`]), and 05 sends the round's clients to
//! the pool there.

use flash_common::{Reply, Request};
use mio::Token;

use crate::away::Back;
use crate::Client;

/// Answers requests for the event loop.
pub trait Dispatch {
    /// Answers one request, now or later.
    fn call(&mut self, req: &Request<'_>) -> Reply;

    /// Every request this round of events brought in has been through
    /// [`call`](Dispatch::call), and the loop is watching for their answers. Nothing to do where
    /// requests are answered on the spot.
    fn end_of_batch(&mut self) {}

    /// Whether this dispatch drives whole clients on other threads (05's) rather than letting
    /// the loop drive them and answer through [`call`](Dispatch::call).
    fn takes_clients(&self) -> bool {
        false
    }

    /// Takes a ready client (when [`takes_clients`](Dispatch::takes_clients)) to drive elsewhere,
    /// as [`Client::drive`] does; it must come back through `back`.
    fn take(&mut self, token: Token, client: Client, back: &Back) {
        let _ = (token, client, back);
        unreachable!("only a dispatch that takes clients is handed one");
    }
}

impl<F: FnMut(&Request<'_>) -> Reply> Dispatch for F {
    fn call(&mut self, req: &Request<'_>) -> Reply {
        self(req)
    }
}
