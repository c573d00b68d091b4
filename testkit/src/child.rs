//! A child process a test started and must not leave behind.
//!
//! A test that runs a program as a raw [`Child`] (to read its exit code and stderr, not to talk
//! to it) loses it when an assertion fails first: the panic unwinds past the `wait`, and the
//! program runs on after the test. [`Reaper`] kills and reaps it on drop, whatever path leaves
//! the test. (Servers that print their address go through `flash-conformance`'s `ChildServer`,
//! which does the same.)

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Kills and reaps the child when dropped, so that no process outlives a failed test.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to its end and returns how it exited and what it wrote on stdout and stderr: for a
/// program expected to stop by itself (a command line refused, a start that must fail). Fails the
/// test if it has not exited within `limit`, and kills it then. Its output is read once it has
/// exited, so it must write less than a pipe holds (64 KiB), as an error message does.
#[track_caller]
pub fn run_to_exit(cmd: &mut Command, limit: Duration) -> (ExitStatus, String, String) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = Reaper(child.unwrap_or_else(|e| panic!("cannot start {program}: {e}")));
    let status = crate::wait::until(&format!("{program} to exit"), limit, || child.0.try_wait().unwrap());
    let (mut out, mut err) = (String::new(), String::new());
    let _ = child.0.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = child.0.stderr.take().map(|mut s| s.read_to_string(&mut err));
    (status, out, err)
}
