//! Graceful shutdown: one signal every model can wait on the way it waits on sockets.
//!
//! A [`Shutdown`] is a flag plus a pipe. Triggering it (from SIGINT, SIGTERM or SIGHUP, or from a test) sets
//! the flag and writes a byte into the pipe, whose read end then stays readable forever. That one
//! file descriptor is what makes shutdown fit every model: a blocking server `poll`s it next to
//! its socket, an event loop registers it with `mio` like any other source, and code that merely
//! wants to know asks the flag. A second signal while shutting down exits at once, for the
//! operator who does not want to wait.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::OFlag;

/// A clonable handle on "the server should stop".
#[derive(Clone)]
pub struct Shutdown {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

/// What the clones share.
struct Inner {
    /// Set once shutdown begins; read without a syscall.
    flag: Arc<AtomicBool>,
    /// Becomes readable when shutdown begins; pollers wait on it.
    read: OwnedFd,
    /// Written once to wake every poller.
    write: OwnedFd,
}

/// The signals that stop a server gracefully (finish what is in flight, lose nothing): Ctrl-C,
/// `kill`, and SIGHUP, which a closing terminal sends and whose default would end the process
/// mid-request. (nginx reloads on SIGHUP; with no configuration file to reload, stopping cleanly
/// is what is left.) Applications that watch signals of their own use the same list.
pub const STOP_SIGNALS: [i32; 3] =
    [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP];

impl Shutdown {
    /// A shutdown that has not been triggered.
    pub fn new() -> io::Result<Shutdown> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Shutdown { inner: Arc::new(Inner { flag: Arc::new(AtomicBool::new(false)), read, write }) })
    }

    /// Begins shutdown: sets the flag and wakes everything waiting on [`Shutdown::fd`].
    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        // A full pipe (impossible after one byte) or a closed one would both mean the wake-up
        // is already there, so the result does not matter.
        let _ = nix::unistd::write(&self.inner.write, b"x");
    }

    /// True once shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Readable once shutdown has begun (and from then on).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }

    /// Makes each of [`STOP_SIGNALS`] trigger this shutdown; a second one exits at once.
    pub fn install_signals(&self) -> io::Result<()> {
        for sig in STOP_SIGNALS {
            // Registered first, so it sees the flag the first signal sets only on the second.
            signal_hook::flag::register_conditional_shutdown(sig, 1, self.inner.flag.clone())?;
            signal_hook::flag::register(sig, self.inner.flag.clone())?;
            let pipe = self.inner.write.try_clone()?;
            signal_hook::low_level::pipe::register_raw(sig, pipe.as_raw_fd())?;
            // The registration keeps using the descriptor for the life of the process.
            std::mem::forget(pipe);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    #[test]
    fn trigger_makes_the_fd_readable() {
        let s = Shutdown::new().unwrap();
        let readable = |s: &Shutdown| {
            let mut fds = [PollFd::new(s.fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
        };
        assert!(!readable(&s) && !s.is_triggered());
        s.clone().trigger();
        assert!(readable(&s) && s.is_triggered());
    }
}
