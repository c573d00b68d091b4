//! Answers that arrive later, from other threads, brought back to the event loop.
//!
//! A handler that returns [`Reply::Later`](flash_common::Reply) finishes on some other thread
//! (05's pool, or the replicated log's replication). The loop must not block waiting for it, so
//! the answer is queued on a channel and the loop is woken through a `mio::Waker` (an eventfd
//! registered like any socket). A burst of answers costs one wake-up, not one each: the flag
//! `woken` says a wake-up is already on its way.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use flash_common::{Pending, Response};
use mio::{Poll, Token, Waker};

/// The waker's token in the loop's poll.
pub const WAKER: Token = Token(usize::MAX - 2);

/// Responses that handlers deliver later, from other threads, back to the loop.
pub struct Later {
    /// Wakes `poll` from another thread.
    waker: Arc<Waker>,
    /// Finished responses, tagged with the client's token and the id its `Conn` gave the answer.
    tx: mpsc::Sender<(Token, u64, Response)>,
    /// The loop's end of `tx`.
    rx: mpsc::Receiver<(Token, u64, Response)>,
    /// Set while a wake-up is on its way, so that a burst of answers costs one wake, not many.
    woken: Arc<AtomicBool>,
}

impl Later {
    pub fn new(poll: &Poll) -> io::Result<Later> {
        let (tx, rx) = mpsc::channel();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Later { waker, tx, rx, woken: Arc::new(AtomicBool::new(false)) })
    }

    /// Arranges for the response of `pending` (with the id its `Conn` gave it) to come back to
    /// client `token` on this loop.
    pub fn watch(&self, (id, pending): (u64, Pending), token: Token) {
        let (tx, waker, woken) = (self.tx.clone(), self.waker.clone(), self.woken.clone());
        pending.on_ready(move |res| {
            // The loop may be gone (shutdown finished); then nobody is left to answer.
            if tx.send((token, id, res)).is_ok() && !woken.swap(true, Ordering::AcqRel) {
                let _ = waker.wake();
            }
        });
    }

    /// Everything delivered since the last wake-up, grouped by client (in the order each
    /// client's answers arrived), so that a client answered many times over is driven, and its
    /// answers written, once: a pipelined batch back from 05's pool is one `write`, not sixteen.
    pub fn take(&self) -> Vec<(Token, Vec<(u64, Response)>)> {
        self.woken.store(false, Ordering::Release);
        let mut by_client: Vec<(Token, Vec<(u64, Response)>)> = Vec::new();
        let mut index: HashMap<Token, usize> = HashMap::new();
        for (token, id, res) in self.rx.try_iter() {
            let at = *index.entry(token).or_insert_with(|| {
                by_client.push((token, Vec::new()));
                by_client.len() - 1
            });
            by_client[at].1.push((id, res));
        }
        by_client
    }
}
