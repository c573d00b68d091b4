//! Answers now or later: the part of the application interface that lets a handler reply from
//! another thread after it has returned.
//!
//! A handler returns a [`Reply`]. Most answer at once (`Reply::Now`). A handler that must wait on
//! something else (the replicated log answers a write only once enough replicas have acknowledged
//! it) calls [`deferred`] and returns `Reply::Later(pending)`, keeping the [`Responder`] to finish
//! with later from any thread. Each server decides what waiting means for its model: a blocking
//! server simply blocks on [`Pending::wait`]; an event loop must not block, so it asks to be
//! called back with [`Pending::on_ready`] and wakes its poll from that callback.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::response::Response;

/// What a handler returns.
pub enum Reply {
    /// The response is ready.
    Now(Response),
    /// The response will come through the [`Responder`] that pairs with this.
    Later(Pending),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Reply::Now(r)
    }
}

/// The callback an event loop leaves to be run when the response arrives.
type Callback = Box<dyn FnOnce(Response) + Send>;

/// The state both halves share.
enum Slot {
    /// Nothing yet, nobody waiting by callback.
    Empty,
    /// The server asked to be called back.
    Callback(Callback),
    /// The response arrived before anyone asked for it.
    Ready(Response),
    /// Handed over; nothing more will happen.
    Taken,
}

/// What both halves point at.
struct Shared {
    /// Where the response (or the callback waiting for it) is kept.
    slot: Mutex<Slot>,
    /// Wakes a blocking server waiting in [`Pending::wait`].
    ready: Condvar,
}

/// Creates a pair: the handler keeps the [`Responder`], the server gets the [`Pending`].
pub fn deferred() -> (Responder, Pending) {
    let shared = Arc::new(Shared { slot: Mutex::new(Slot::Empty), ready: Condvar::new() });
    (Responder { shared: Some(shared.clone()) }, Pending { shared })
}

/// The handler's half: send the response from any thread, once.
pub struct Responder {
    /// `None` once sent, so that `Drop` knows whether the handler forgot to answer.
    shared: Option<Arc<Shared>>,
}

impl Responder {
    /// Delivers the response to whichever server is waiting for it.
    pub fn send(mut self, response: Response) {
        if let Some(shared) = self.shared.take() {
            deliver(&shared, response);
        }
    }

    /// Delivers a [`Reply`]: at once if it is ready, else when its own responder sends.
    pub fn forward(self, reply: Reply) {
        match reply {
            Reply::Now(r) => self.send(r),
            Reply::Later(p) => p.on_ready(move |r| self.send(r)),
        }
    }
}

impl Drop for Responder {
    /// A handler that drops its responder unanswered would leave the client hanging; answer 500.
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            deliver(&shared, Response::error(500, "the handler ended without answering"));
        }
    }
}

fn deliver(shared: &Shared, response: Response) {
    let mut slot = shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
    match std::mem::replace(&mut *slot, Slot::Taken) {
        Slot::Callback(cb) => {
            drop(slot);
            cb(response);
        }
        Slot::Empty => {
            *slot = Slot::Ready(response);
            shared.ready.notify_all();
        }
        other => *slot = other,
    }
}

/// The server's half: a response that is on its way.
pub struct Pending {
    /// Shared with the responder.
    shared: Arc<Shared>,
}

impl Pending {
    /// Blocks until the response arrives (for the blocking servers).
    pub fn wait(self) -> Response {
        let mut slot = self.shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match std::mem::replace(&mut *slot, Slot::Taken) {
                Slot::Ready(r) => return r,
                other => *slot = other,
            }
            slot = self.shared.ready.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Runs `callback` with the response when it arrives: now, if it already has, else on the
    /// thread that sends it. The callback must be quick (an event loop's is "queue it and wake").
    pub fn on_ready(self, callback: impl FnOnce(Response) + Send + 'static) {
        let mut slot = self.shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Ready(r) => {
                drop(slot);
                callback(r);
            }
            Slot::Empty => *slot = Slot::Callback(Box::new(callback)),
            other => *slot = other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn wait_gets_a_response_sent_later() {
        let (responder, pending) = deferred();
        let t = std::thread::spawn(move || responder.send(Response::text(200, "late")));
        assert_eq!(pending.wait().status, 200);
        t.join().unwrap();
    }

    #[test]
    fn callback_runs_whichever_comes_first() {
        let (responder, pending) = deferred();
        responder.send(Response::new(201));
        let (tx, rx) = mpsc::channel();
        pending.on_ready(move |r| tx.send(r.status).unwrap());
        assert_eq!(rx.recv().unwrap(), 201);

        let (responder, pending) = deferred();
        let (tx, rx) = mpsc::channel();
        pending.on_ready(move |r| tx.send(r.status).unwrap());
        drop(responder);
        assert_eq!(rx.recv().unwrap(), 500);
    }
}
