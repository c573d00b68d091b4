//! Running one program for one request: fork, exec, feed its stdin, collect its stdout, reap it,
//! all within a deadline. This is the only file of the crate with `unsafe`, because `fork` is.
//!
//! Between `fork` and `exec` the child is a copy of a process that may have other threads (the
//! test harness has many; the stats service has job threads), and one of them may have held a
//! lock, the allocator's say, at the instant of the fork. So the child calls nothing but
//! async-signal-safe system calls: everything it needs (the path, the argument and environment
//! arrays of C pointers, the empty signal mask) is prepared before the fork.
//!
//! Descriptors: everything Flash opens is close-on-exec (Rust's std, socket2 and the pipes below
//! all ask for it), so neither the listening socket nor another client's socket reaches a
//! script, even when another thread forks at the same moment; the child also closes everything
//! above stderr with `close_range`, a second line of defence.
//!
//! The parent writes the body and reads the output at the same time, with `poll`: writing the
//! whole body first would deadlock with a program that writes a large answer before reading its
//! input (both pipes full, each side waiting for the other).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, setpgid, ForkResult, Pid};

/// How much of the program's output is read per `read`: a whole pipe's worth.
const READ_CHUNK: usize = 64 * 1024;

/// A program to run, already in the form `execve` takes.
pub struct Program<'a> {
    /// The executable (a script with a `#!` line is run by the kernel through its interpreter).
    pub path: &'a CStr,
    /// Its whole environment, as `NAME=value` strings.
    pub env: &'a [CString],
    /// The directory to run it in; `None` keeps the server's.
    pub cwd: Option<&'a CStr>,
}

/// How a run failed.
#[derive(Debug)]
pub enum Failure {
    /// The deadline passed; the program and its process group were killed.
    TimedOut,
    /// The program wrote more than the limit; it was killed.
    TooLarge,
    /// A system call failed in the server (out of processes or descriptors, say).
    Io(io::Error),
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Self {
        Failure::Io(e.into())
    }
}

/// A run that ended on its own.
#[derive(Debug)]
pub struct Finished {
    /// Everything the program wrote on stdout.
    pub output: Vec<u8>,
    /// How it ended (exit code or signal).
    pub status: WaitStatus,
}

/// Runs `program` with `input` on its stdin and returns its stdout, killing it (and whatever it
/// started in its process group) if it is still running at `deadline` or writes more than
/// `max_output` bytes. The child is always reaped before this returns, whatever happens.
pub fn run(program: &Program<'_>, input: &[u8], deadline: Instant, max_output: usize) -> Result<Finished, Failure> {
    let argv = [program.path.as_ptr(), std::ptr::null()];
    let envp: Vec<*const libc::c_char> = program.env.iter().map(|v| v.as_ptr()).chain([std::ptr::null()]).collect();
    let cwd = program.cwd.map_or(std::ptr::null(), CStr::as_ptr);
    let mask = SigSet::empty();
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    // SAFETY: the child branch runs only `exec_child`, which makes async-signal-safe calls on
    // memory prepared above and never returns; the parent branch is ordinary code.
    let child = match unsafe { fork() }? {
        // SAFETY: we are the child of a fork, and every pointer is valid and NUL-terminated.
        ForkResult::Child => unsafe {
            exec_child(
                stdin_r.as_raw_fd(),
                stdout_w.as_raw_fd(),
                program.path.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                cwd,
                mask.as_ref(),
            )
        },
        ForkResult::Parent { child } => Running::new(child),
    };
    // The child's ends must close here, or the output never reaches end-of-file.
    drop((stdin_r, stdout_w));
    // No body: closing our end at once (`filter` drops it) gives the program end-of-file.
    let mut stdin = Some(File::from(nonblocking(stdin_w)?)).filter(|_| !input.is_empty());
    let mut stdout = File::from(nonblocking(stdout_r)?);
    let mut output = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut written = 0;
    // Returning early drops `child`, which kills and reaps it.
    loop {
        let timeout = time_left(deadline).ok_or(Failure::TimedOut)?;
        let (out_ready, in_ready) = {
            let mut fds = vec![PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = &stdin {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            (fds[0].any().unwrap_or(false), fds.get(1).is_some_and(|f| f.any().unwrap_or(false)))
        };
        if let (true, Some(w)) = (in_ready, &mut stdin) {
            match w.write(&input[written..]) {
                Ok(n) => written += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                // The program closed its stdin without reading it all: its choice, and it may
                // still answer, so this is not an error.
                Err(_) => written = input.len(),
            }
            if written == input.len() {
                stdin = None;
            }
        }
        if out_ready && read_available(&mut stdout, &mut chunk, &mut output)? {
            break;
        }
        if output.len() > max_output {
            return Err(Failure::TooLarge);
        }
    }
    drop(stdin);
    let status = child.wait(deadline)?;
    Ok(Finished { output, status })
}

/// Reads what the pipe holds into `output`; true at end-of-file.
fn read_available(pipe: &mut File, chunk: &mut [u8], output: &mut Vec<u8>) -> Result<bool, Failure> {
    loop {
        match pipe.read(chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => output.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

/// The child's side, from `fork` to `exec`. On failure it says so on stderr (the error log) and
/// exits with 127, the shell's "could not run", which the parent reports as a 502.
///
/// # Safety
/// Must be called only in a child just forked; every pointer must be valid, NUL-terminated, and
/// `argv` and `envp` must end with a null pointer.
unsafe fn exec_child(
    stdin: RawFd,
    stdout: RawFd,
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    mask: &libc::sigset_t,
) -> ! {
    // SAFETY: each call below is async-signal-safe, and the pointers are valid (the caller's
    // contract); nothing here allocates or takes a lock.
    unsafe {
        // Its own process group, so that a timeout kills whatever the script started too.
        libc::setpgid(0, 0);
        if libc::dup2(stdin, 0) < 0 || libc::dup2(stdout, 1) < 0 {
            die(b"flash: a CGI child could not set up its stdin and stdout\n");
        }
        // fd 2 stays: a script's stderr is the server's error log. Everything else goes.
        libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, 0 as libc::c_uint);
        if !cwd.is_null() && libc::chdir(cwd) != 0 {
            die(b"flash: a CGI child could not change to its script's folder\n");
        }
        // Rust ignores SIGPIPE and an ignored signal stays ignored across exec; a shell
        // pipeline in a script expects the default. Signals blocked by our threads likewise.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
        libc::execve(path, argv, envp);
        die(b"flash: exec of a CGI program failed (missing interpreter? not executable?)\n")
    }
}

/// Writes `msg` to stderr and exits the child without running any of the parent's cleanup.
fn die(msg: &[u8]) -> ! {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` is a valid slice.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// A close-on-exec pipe whose ends are both above stderr: if the server runs with a standard
/// descriptor closed, a pipe could otherwise land on 0, 1 or 2 and be clobbered by the child's
/// own `dup2` onto those numbers.
fn pipe() -> Result<(OwnedFd, OwnedFd), Failure> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Failure> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let new = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl just created this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The parent's end of a pipe, made non-blocking so that `poll` decides when to wait.
fn nonblocking(fd: OwnedFd) -> Result<OwnedFd, Failure> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(fd)
}

/// The time left until `deadline` as a poll timeout (rounded up), or `None` if it has passed.
fn time_left(deadline: Instant) -> Option<PollTimeout> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    Some(PollTimeout::try_from(left.as_millis() + 1).unwrap_or(PollTimeout::MAX))
}

/// A child that has not been reaped yet. Dropping it kills the child's process group and reaps
/// it, so no path out of [`run`] (an error, a timeout, a panic) can leave a zombie behind.
struct Running {
    /// The child, which is also its process group's leader.
    pid: Pid,
    /// A descriptor that becomes readable when the child exits (Linux 5.3+), so that waiting
    /// for the exit can have a deadline; `None` on older kernels.
    pidfd: Option<OwnedFd>,
    /// Set once `waitpid` has collected the child.
    reaped: bool,
}

impl Running {
    fn new(pid: Pid) -> Running {
        // The child does this itself too; doing it on both sides closes the window in which a
        // timeout could signal a group that does not exist yet. It fails harmlessly once the
        // child has exec'd (by then it has set its group itself).
        let _ = setpgid(pid, pid);
        Running { pid, pidfd: pidfd_open(pid), reaped: false }
    }

    /// Waits for the child to exit, until `deadline`.
    fn wait(mut self, deadline: Instant) -> Result<WaitStatus, Failure> {
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            // The output is complete but the program lingers (it closed stdout and went on).
            let timeout = time_left(deadline).ok_or(Failure::TimedOut)?;
            match &self.pidfd {
                Some(fd) => match poll(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)], timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                },
                // Without a pidfd there is nothing to poll; block (documented in README.md).
                None => match waitpid(self.pid, None) {
                    Ok(status) => {
                        self.reaped = true;
                        return Ok(status);
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The group first: a script's own children (a `sleep` in a shell loop) die with it.
        let _ = killpg(self.pid, Signal::SIGKILL);
        let _ = kill(self.pid, Signal::SIGKILL);
        while waitpid(self.pid, None) == Err(Errno::EINTR) {}
    }
}

/// Opens a pidfd for `pid`, if the kernel has them.
fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags (no memory) and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0 as libc::c_uint) };
    // SAFETY: a non-negative result is a new descriptor (close-on-exec) that only we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
