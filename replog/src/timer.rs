//! One thread that runs small tasks at given times: a write's `timeout_ms`, a secondary's injected
//! `--delay`, a consistent read's safe time. None of them may block an event loop, and a thread
//! per waiting request would cost a stack each, so they all wait here, in one ordered map.
//!
//! Tasks must be quick (answer a responder, queue a check): they run one after another on the
//! timer's thread. On [`Timer::stop`] every task still waiting runs at once, so that no client
//! is left without an answer when the node shuts down.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A task waiting for its time.
type Task = Box<dyn FnOnce() + Send>;

/// The timer: schedule from any thread.
pub struct Timer {
    /// Shared with the timer's thread.
    shared: Arc<Shared>,
    /// The thread, joined by [`Timer::stop`].
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the scheduling threads and the timer's thread share.
struct Shared {
    /// Tasks by (time, sequence number): the sequence keeps two tasks due at the same instant
    /// apart and in scheduling order.
    state: Mutex<State>,
    /// Wakes the timer's thread when an earlier task arrives or the timer stops.
    wake: Condvar,
}

/// The waiting tasks.
struct State {
    /// Due time and sequence → task.
    tasks: BTreeMap<(Instant, u64), Task>,
    /// The next sequence number.
    next: u64,
    /// Set by [`Timer::stop`].
    stopping: bool,
}

impl Timer {
    /// Starts the timer's thread.
    pub fn new() -> std::io::Result<Timer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { tasks: BTreeMap::new(), next: 0, stopping: false }),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("replog-timer".into()).spawn(move || run(&s))?;
        Ok(Timer { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Runs `task` once `delay` has passed (or at once if the timer is stopping).
    pub fn after(&self, delay: Duration, task: impl FnOnce() + Send + 'static) {
        self.at(Instant::now() + delay, task);
    }

    /// Runs `task` at `when` (or at once if the timer is stopping).
    pub fn at(&self, when: Instant, task: impl FnOnce() + Send + 'static) {
        let mut s = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.stopping {
            drop(s);
            task();
            return;
        }
        let seq = s.next;
        s.next += 1;
        let first = s.tasks.keys().next().map_or(true, |k| when < k.0);
        s.tasks.insert((when, seq), Box::new(task));
        drop(s);
        if first {
            self.shared.wake.notify_one();
        }
    }

    /// Runs every waiting task now and stops the thread.
    pub fn stop(&self) {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner).stopping = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The timer's thread: sleeps until the first task is due, runs every due task, repeats.
fn run(shared: &Shared) {
    let mut s = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        let due: Vec<Task> = if s.stopping {
            std::mem::take(&mut s.tasks).into_values().collect()
        } else {
            let later = s.tasks.split_off(&(now, u64::MAX));
            std::mem::replace(&mut s.tasks, later).into_values().collect()
        };
        if !due.is_empty() {
            drop(s);
            due.into_iter().for_each(|task| task());
            s = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        if s.stopping {
            return;
        }
        s = match s.tasks.keys().next().map(|k| k.0) {
            Some(when) => {
                shared
                    .wake
                    .wait_timeout(s, when.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared.wake.wait(s).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_tasks_in_time_order_and_the_rest_on_stop() {
        let timer = Timer::new().unwrap();
        let (tx, rx) = mpsc::channel();
        for (ms, name) in [(60, "third"), (20, "first"), (40, "second")] {
            let tx = tx.clone();
            timer.after(Duration::from_millis(ms), move || tx.send(name).unwrap());
        }
        let t0 = Instant::now();
        let got: Vec<_> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got, ["first", "second", "third"]);
        assert!(t0.elapsed() >= Duration::from_millis(55), "not early");
        let tx2 = tx.clone();
        timer.after(Duration::from_secs(3600), move || tx2.send("at stop").unwrap());
        timer.stop();
        assert_eq!(rx.try_recv(), Ok("at stop"), "a task still waiting runs when the timer stops");
        timer.after(Duration::from_secs(3600), move || tx.send("after stop").unwrap());
        assert_eq!(rx.try_recv(), Ok("after stop"));
    }
}
