//! Ctrl-C and SIGTERM: stop sending, report what was measured, and leave no server running.
//!
//! A long run stopped by hand is still a measurement: the first SIGINT or SIGTERM only sets a flag
//! that the workers check on every turn of their loops (a `poll` waits at most 100 ms), so they stop
//! sending, count what is still in flight, and return; the caller prints the report and writes
//! `--json` (or `compare`'s partial report) as after a full run, and the process exits with
//! 128 + the signal's number (130 for Ctrl-C) so that a script does not take the partial figures
//! for a full run. A second signal means "quit now": the server `compare` started, if any, is
//! killed first, then the process exits with the same code.
//!
//! The signals are received by a `signal-hook` iterator on a thread of its own rather than in a
//! handler, so that reacting to them may print, kill a child and exit, none of which a signal
//! handler may do.

use std::io;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The shared state of an [`Interrupt`].
#[derive(Debug, Default)]
struct State {
    /// Set by the first signal; the load and `compare` stop when they see it.
    stop: AtomicBool,
    /// The first signal's number, 0 while none arrived.
    signal: AtomicI32,
    /// The server process `compare` is running, 0 when none: a second signal kills it.
    child: AtomicU32,
}

/// The stop request that signals raise; cloned handles share it.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    /// The flag, the signal and the child, shared with the signal thread.
    state: Arc<State>,
}

impl Interrupt {
    /// A stop request no signal raises (for tests and library callers, which may set it).
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Starts receiving SIGINT and SIGTERM. Call it before anything long starts: a signal that
    /// arrives before it still ends the process the default way, without a report.
    pub fn install() -> io::Result<Interrupt> {
        let interrupt = Interrupt::new();
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let state = interrupt.state.clone();
        std::thread::Builder::new().name("flash-load-signals".into()).spawn(move || {
            for signal in signals.forever() {
                if state.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    state.stop.store(true, Ordering::SeqCst);
                    eprintln!(
                        "\nflash-load: {}: stopping and reporting what was measured (send it again to quit at once)",
                        name(signal)
                    );
                } else {
                    let child = state.child.swap(0, Ordering::SeqCst);
                    if child != 0 {
                        kill(child, "-KILL");
                    }
                    eprintln!("flash-load: {} again: quitting without a report", name(signal));
                    std::process::exit(128 + state.signal.load(Ordering::SeqCst));
                }
            }
        })?;
        Ok(interrupt)
    }

    /// The flag that [`crate::run`] and `compare` check.
    pub fn flag(&self) -> &AtomicBool {
        &self.state.stop
    }

    /// Whether a stop was asked for (by a signal or by [`Interrupt::request`]).
    pub fn requested(&self) -> bool {
        self.state.stop.load(Ordering::SeqCst)
    }

    /// Asks for a stop without a signal.
    pub fn request(&self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }

    /// The exit code a stopped run ends with: 128 + the signal's number, when a signal stopped it.
    pub fn exit_code(&self) -> Option<u8> {
        match self.state.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => u8::try_from(128 + signal).ok(),
        }
    }

    /// Remembers the server process to kill if a second signal says to quit at once.
    pub fn watch_child(&self, pid: u32) {
        self.state.child.store(pid, Ordering::SeqCst);
    }

    /// Forgets the server process (it has been reaped, so its pid may be reused).
    pub fn forget_child(&self) {
        self.state.child.store(0, Ordering::SeqCst);
    }
}

/// The signal's usual name.
fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "interrupted (SIGINT)",
        SIGTERM => "terminated (SIGTERM)",
        _ => "signal",
    }
}

/// Sends a signal with procps' `kill` (std can only send SIGKILL to a `Child` it holds).
pub(crate) fn kill(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_a_signal_has_no_exit_code() {
        let interrupt = Interrupt::new();
        assert!(!interrupt.requested());
        interrupt.clone().request();
        assert!(interrupt.requested() && interrupt.flag().load(Ordering::SeqCst));
        assert_eq!(interrupt.exit_code(), None);
    }
}
