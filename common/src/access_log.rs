//! The access log, written without a lock on the request path.
//!
//! Every server logs each request in Common Log Format, and 07's promise is that its reactors
//! share nothing while they serve. A single `Mutex` around the log would break that promise
//! (every response of every core would take the same lock) and would cost a `write(2)` per
//! request besides. So each thread keeps its lines in a buffer of its own and writes them out
//! in one `write` when it is about to wait (an event loop before `epoll_wait`, a blocking
//! connection before `poll`), when the buffer fills, or when the thread ends. A line is late by
//! at most one round of the thread's loop; none is lost on a clean stop.
//!
//! Each write is at most [`PIPE_BUF`] bytes of whole lines, so lines from several threads never
//! interleave, even when stderr is a pipe: POSIX makes writes of that size atomic on pipes, and
//! `O_APPEND` makes them atomic on files.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The largest write the kernel keeps whole on a pipe (POSIX's minimum, Linux's value).
const PIPE_BUF: usize = 4096;

/// Where the lines go: a file opened for appending, or a duplicate of stderr.
pub struct AccessLog {
    /// Written through `&File`, which needs no lock.
    out: File,
    /// Where it goes, for the error log: the path, or "stderr".
    name: String,
    /// A write has failed and the error log has said so (once: a full disk fails every write).
    failed: AtomicBool,
}

impl AccessLog {
    /// Appends to the file at `path`, creating it.
    pub fn file(path: &Path) -> io::Result<Arc<AccessLog>> {
        let out = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(AccessLog { out, name: path.display().to_string(), failed: AtomicBool::new(false) }))
    }

    /// Writes to this process's stderr.
    pub fn stderr() -> io::Result<Arc<AccessLog>> {
        let out = File::from(io::stderr().as_fd().try_clone_to_owned()?);
        Ok(Arc::new(AccessLog { out, name: "stderr".into(), failed: AtomicBool::new(false) }))
    }

    /// Queues one line (ending in `\n`) in this thread's buffer.
    pub fn line(self: &Arc<Self>, line: &[u8]) {
        PENDING.with_borrow_mut(|p| {
            let same = p.log.as_ref().is_some_and(|log| Arc::ptr_eq(log, self));
            if !same || p.bytes.len() + line.len() > PIPE_BUF {
                p.flush();
                p.log = Some(self.clone());
            }
            p.bytes.extend_from_slice(line);
        });
    }

    /// Writes out this thread's queued lines, if any.
    pub fn flush_thread() {
        // `try_with`: during thread teardown the buffer may already be gone (and flushed).
        let _ = PENDING.try_with(|p| p.borrow_mut().flush());
    }
}

/// One thread's queued lines.
#[derive(Default)]
struct Pending {
    /// The log they belong to (a thread may serve two sites in tests).
    log: Option<Arc<AccessLog>>,
    /// Whole lines, at most [`PIPE_BUF`] bytes unless one line is longer.
    bytes: Vec<u8>,
}

impl Pending {
    fn flush(&mut self) {
        if let (Some(log), false) = (&self.log, self.bytes.is_empty()) {
            // A full disk or a closed stderr must not take the server down with it; the lines
            // are lost, not the requests. The error log says so, once, as nginx's does.
            if let Err(e) = (&log.out).write_all(&self.bytes) {
                if !log.failed.swap(true, Ordering::Relaxed) {
                    crate::log_line!("access log {}: {e}; lines are lost while it fails", log.name);
                }
            }
        }
        self.bytes.clear();
    }
}

impl Drop for Pending {
    /// A thread that ends (a connection thread in 03, a reactor at shutdown) writes what it kept.
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    /// This thread's queued lines.
    static PENDING: RefCell<Pending> = RefCell::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_whole_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::file(&path).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        log.line(format!("thread {t} line {i} {}\n", "x".repeat(i % 97)).as_bytes());
                        if i % 300 == 0 {
                            AccessLog::flush_thread();
                        }
                    }
                    // The rest is written when the thread ends.
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4000);
        for t in 0..4 {
            let mine: Vec<_> = lines.iter().filter(|l| l.starts_with(&format!("thread {t} "))).collect();
            assert_eq!(mine.len(), 1000, "thread {t}");
            for (i, l) in mine.iter().enumerate() {
                assert_eq!(**l, format!("thread {t} line {i} {}", "x".repeat(i % 97)), "in order and whole");
            }
        }
    }

    #[test]
    fn a_log_that_cannot_be_written_says_so_and_serving_goes_on() {
        let log = AccessLog::file(Path::new("/dev/full")).unwrap();
        log.line(b"127.0.0.1 - - [05/Dec/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 5\n");
        AccessLog::flush_thread();
        assert!(log.failed.load(Ordering::Relaxed), "the failure was noticed (and told)");
        log.line(b"another\n");
        AccessLog::flush_thread(); // No panic, and nothing said twice.
    }
}
