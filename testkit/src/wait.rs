//! Waiting for a condition with a deadline: the one way a Flash test waits.
//!
//! Tests never sleep to synchronize ("the job is surely done by now"): they poll for the
//! condition they need and fail, naming it, if it does not hold in time. Every test that waits
//! for something outside its own thread (a job, a child process, a replica, a restarted copy)
//! goes through [`until`], so the deadline and the pause between polls are chosen once.

use std::time::{Duration, Instant};

/// The first pause between polls; each pause doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between polls: short enough that a test never waits long past the moment
/// its condition holds, long enough not to busy a 2-core machine.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Polls `probe` until it returns `Some`, and returns that; panics naming `what` if `limit`
/// passes first. The pauses between polls are not guesses at how long to wait: the deadline is.
#[track_caller]
pub fn until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        let now = Instant::now();
        assert!(now < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Polls `condition` until it holds; panics naming `what` if `limit` passes first.
#[track_caller]
pub fn until_true(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    until(what, limit, || condition().then_some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_what_the_probe_found() {
        let mut calls = 0;
        let found = until("the third call", Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls * 10)
        });
        assert_eq!(found, 30);
    }

    #[test]
    #[should_panic(expected = "waiting for something that never happens")]
    fn fails_naming_the_condition() {
        until_true("something that never happens", Duration::from_millis(20), || false);
    }
}
