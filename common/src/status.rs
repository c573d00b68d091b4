//! The server's own counters, shown by the demo application's `/server-status`.
//!
//! They are the runtime's, not the application's: a server counts the connections each of its
//! workers accepts, and an application that wants to show them is handed the same [`Status`] when
//! it is built (see [`crate::server::Setup`]). Kept per worker, not per request, so counting is
//! free on the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// How many worker slots `/server-status` reports at most.
const MAX_WORKERS: usize = 64;

/// A counter alone on its cache line, so that two cores counting do not slow each other down.
#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

/// When the server started and how many connections each worker (thread, reactor) accepted.
pub struct Status {
    /// When the counters were created, at the server's start.
    started: Instant,
    /// Connections accepted by each worker.
    workers: [Padded; MAX_WORKERS],
}

impl Default for Status {
    fn default() -> Self {
        Status::new()
    }
}

impl Status {
    /// Fresh counters, started now.
    pub fn new() -> Status {
        Status { started: Instant::now(), workers: std::array::from_fn(|_| Padded::default()) }
    }

    /// Counts a connection accepted by `worker` (ids past the last slot share it).
    pub fn accepted(&self, worker: usize) {
        self.workers[worker.min(MAX_WORKERS - 1)].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as JSON: uptime, and connections per worker that accepted any.
    pub fn to_json(&self) -> serde_json::Value {
        let workers: Vec<_> = self
            .workers
            .iter()
            .enumerate()
            .map(|(id, c)| (id, c.0.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .map(|(id, n)| serde_json::json!({"worker": id, "connections": n}))
            .collect();
        let total: u64 = self.workers.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
        serde_json::json!({
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "connections": total,
            "workers": workers,
        })
    }
}
