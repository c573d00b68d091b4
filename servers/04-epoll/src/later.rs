//! Answers that arrive later, from other threads, brought back to the event loop.
//!
//! A handler that returns [`Reply::Later`](flash_common::Reply) finishes on some other thread
//! (the replicated log's replication, a test's slow answer). The loop must not block waiting for it, so
//! the answer is queued on a channel and the loop is woken through a `mio::Waker` (an eventfd
//! registered like any socket). A burst of answers costs one wake-up, not one each: the flag
//! `woken` says a wake-up is already on its way. Server 08 uses the same queue with a wake-up of
//! its own (an eventfd its ring reads), hence the key `K` and [`Later::with_waker`].

use std::collections::HashMap;
use std::hash::Hash;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use flash_common::{Pending, Response};
use mio::{Poll, Token, Waker};

/// The waker's token in the loop's poll.
pub const WAKER: Token = Token(usize::MAX - 2);

/// Responses that handlers deliver later, from other threads, back to the loop, each tagged with
/// the key `K` of its client.
pub struct Later<K = Token> {
    /// Wakes the loop from another thread, once per burst.
    wake: Wake,
    /// Finished responses, tagged with the client's key and the id its `Conn` gave the answer.
    tx: mpsc::Sender<(K, u64, Response)>,
    /// The loop's end of `tx`.
    rx: mpsc::Receiver<(K, u64, Response)>,
}

/// Wakes the loop from any thread; a burst of calls costs one wake-up. Shared by [`Later`] and by
/// 05's pool, which sends clients back through it (see [`crate::away`]).
#[derive(Clone)]
pub struct Wake {
    /// Wakes the loop (writes its eventfd).
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Set while a wake-up is on its way, so that a burst of answers costs one wake, not many.
    woken: Arc<AtomicBool>,
}

impl Wake {
    /// Wakes the loop, unless a wake-up is already on its way.
    pub fn ring(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            (self.wake)();
        }
    }
}

impl Later {
    pub fn new(poll: &Poll) -> io::Result<Later> {
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Later::with_waker(move || {
            let _ = waker.wake();
        }))
    }
}

impl<K: Copy + Eq + Hash + Send + 'static> Later<K> {
    /// A queue whose loop is woken by calling `wake` (from any thread).
    pub fn with_waker(wake: impl Fn() + Send + Sync + 'static) -> Later<K> {
        let (tx, rx) = mpsc::channel();
        Later { wake: Wake { wake: Arc::new(wake), woken: Arc::new(AtomicBool::new(false)) }, tx, rx }
    }

    /// The loop's wake-up, for another thread with something else to bring back.
    pub fn wake(&self) -> Wake {
        self.wake.clone()
    }

    /// Arranges for the response of `pending` (with the id its `Conn` gave it) to come back to
    /// client `key` on this loop.
    pub fn watch(&self, (id, pending): (u64, Pending), key: K) {
        let (tx, wake) = (self.tx.clone(), self.wake.clone());
        pending.on_ready(move |res| {
            // The loop may be gone (shutdown finished); then nobody is left to answer.
            if tx.send((key, id, res)).is_ok() {
                wake.ring();
            }
        });
    }

    /// Everything delivered since the last wake-up, grouped by client (in the order each
    /// client's answers arrived), so that a client answered many times over is driven, and its
    /// answers written, once. Call it before taking anything else the wake-up brings: it re-arms
    /// the wake-up, so that whatever arrives after is announced again.
    pub fn take(&self) -> Vec<(K, Vec<(u64, Response)>)> {
        self.wake.woken.store(false, Ordering::Release);
        let mut by_client: Vec<(K, Vec<(u64, Response)>)> = Vec::new();
        let mut index: HashMap<K, usize> = HashMap::new();
        for (key, id, res) in self.rx.try_iter() {
            let at = *index.entry(key).or_insert_with(|| {
                by_client.push((key, Vec::new()));
                by_client.len() - 1
            });
            by_client[at].1.push((id, res));
        }
        by_client
    }
}
