//! Clients away on another thread: what the loop keeps for them while server 05's pool drives
//! them, and how they come back.
//!
//! 04 and 07 drive every client on the loop's own thread, so for them this map stays empty. 05
//! hands a ready client (its socket and its `Conn`) to a pool thread, which reads, answers and
//! writes until the socket would block, as the loop would, then sends it back. While it is away
//! the loop still owns its place in epoll, so two things can happen that the client must not
//! miss: epoll reports it again (edge-triggered, that report comes only once) and an answer it
//! was waiting for arrives. Both are kept here and replayed when it is back.

use std::collections::HashMap;
use std::sync::mpsc;

use flash_common::{Pending, Response};
use mio::event::Event;
use mio::Token;

use crate::later::{Later, Wake};
use crate::Client;

/// A client a pool thread has finished driving, on its way back to the loop.
pub struct Returned {
    /// Its key in the loop.
    pub token: Token,
    /// The client, as the pool thread left it.
    pub client: Client,
    /// The deferred answers its requests were given there, for the loop to watch.
    pub pending: Vec<(u64, Pending)>,
    /// The connection is finished; dropping the client closes it.
    pub done: bool,
}

/// The way back to the loop, for a thread driving its clients.
#[derive(Clone)]
pub struct Back {
    /// Where finished clients go, a batch at a time.
    tx: mpsc::Sender<Vec<Returned>>,
    /// Wakes the loop to take them.
    wake: Wake,
}

impl Back {
    /// Sends a batch of driven clients back and wakes the loop (once per burst).
    pub fn send(&self, clients: Vec<Returned>) {
        // The loop only returns once every client is back, so it is still there to receive.
        if self.tx.send(clients).is_ok() {
            self.wake.ring();
        }
    }
}

/// What happened to a client while it was away.
#[derive(Default)]
struct Missed {
    /// Epoll's reports about it, replayed in order.
    events: Vec<Event>,
    /// Answers that came back for it.
    answers: Vec<(u64, Response)>,
    /// The loop was told to stop.
    stop: bool,
}

/// The clients that are away, and the channel they come back on.
pub struct Away {
    /// Each away client's missed events and answers.
    missed: HashMap<Token, Missed>,
    /// Handed to whoever drives clients elsewhere.
    back: Back,
    /// The loop's end of `back`.
    rx: mpsc::Receiver<Vec<Returned>>,
}

impl Away {
    /// An empty map whose clients come back through `later`'s wake-up.
    pub fn new(later: &Later) -> Away {
        let (tx, rx) = mpsc::channel();
        Away { missed: HashMap::new(), back: Back { tx, wake: later.wake() }, rx }
    }

    /// Client `token` leaves; it must come back through the returned [`Back`].
    pub fn leave(&mut self, token: Token) -> &Back {
        self.missed.insert(token, Missed::default());
        &self.back
    }

    /// Keeps `event` for client `token` if it is away; false if it is not.
    pub fn missed_event(&mut self, token: Token, event: &Event) -> bool {
        self.missed.get_mut(&token).map(|m| m.events.push(event.clone())).is_some()
    }

    /// Keeps `answers` for client `token` if it is away; hands them back if it is not.
    pub fn missed_answers(&mut self, token: Token, answers: Vec<(u64, Response)>) -> Option<Vec<(u64, Response)>> {
        match self.missed.get_mut(&token) {
            Some(m) => {
                m.answers.extend(answers);
                None
            }
            None => Some(answers),
        }
    }

    /// Every away client is told to stop when it is back.
    pub fn stop(&mut self) {
        self.missed.values_mut().for_each(|m| m.stop = true);
    }

    /// The clients that are back and not finished, with their deferred answers watched and what
    /// they missed replayed into them; each with whether that gave it something to do. (One that
    /// missed nothing is left alone: its thread drove it until nothing moved, and sending it
    /// straight out again would keep it away for good, out of reach of the deadline sweep.)
    pub fn back(&mut self, later: &Later) -> Vec<(Token, Client, bool)> {
        let mut ready = Vec::new();
        for Returned { token, mut client, pending, done } in self.rx.try_iter().flatten() {
            let missed = self.missed.remove(&token).unwrap_or_default();
            if done {
                continue;
            }
            for p in pending {
                later.watch(p, token);
            }
            for event in &missed.events {
                client.note(event);
            }
            if missed.stop {
                client.conn.shutdown();
            }
            let news = !missed.events.is_empty() || !missed.answers.is_empty() || missed.stop;
            client.conn.complete_all(missed.answers);
            ready.push((token, client, news));
        }
        ready
    }

    /// No client is away.
    pub fn is_empty(&self) -> bool {
        self.missed.is_empty()
    }
}
