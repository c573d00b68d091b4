//! Where io_uring is forbidden (a container's seccomp filter) or missing (an old kernel), the
//! binary must say why in one line and exit 69 (`EX_UNAVAILABLE`) before it prints the
//! `listening on` line, so that a script or `flash-load compare` can report a skip, not a crash.
//!
//! The test forbids io_uring to the real binary the way a container does: a seccomp filter,
//! installed in the child between `fork` and `exec`, makes `io_uring_setup` fail with `EPERM`
//! (or `ENOSYS`, as on a kernel without io_uring).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use nix::libc;

/// Runs the binary with `io_uring_setup` failing with `errno`, and returns what it did.
fn run_without_io_uring(errno: u32) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-08-io-uring"));
    cmd.args(["--port", "0", "--quiet"]);
    // SAFETY: the closure runs in the forked child before exec and only makes two system calls
    // (no allocation, no lock), which is what `pre_exec` allows.
    unsafe { cmd.pre_exec(move || forbid_io_uring_setup(errno)) };
    cmd.output().expect("cannot run the server binary")
}

/// Installs a seccomp filter: `io_uring_setup` fails with `errno`, every other call is allowed.
fn forbid_io_uring_setup(errno: u32) -> io::Result<()> {
    // The syscall number is 425 on every architecture (io_uring came after their tables merged).
    let nr = libc::SYS_io_uring_setup as u32;
    let filter = [
        // Load the syscall number (offset 0 of `struct seccomp_data`).
        libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 0 },
        libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf: 1, k: nr },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | errno,
        },
        libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
    ];
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive them (the kernel copies the filter).
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Checks the one-line refusal: exit 69, nothing on stdout, one line on stderr naming `cause`.
fn assert_refused(out: &Output, cause: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "exit status; stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "it printed on stdout (a `listening on` line?): {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.contains("io_uring") && stderr.contains(cause), "the line does not name {cause}: {stderr:?}");
}

#[test]
fn forbidden_by_seccomp_it_says_why_and_exits_69_before_listening() {
    assert_refused(&run_without_io_uring(libc::EPERM as u32), "EPERM");
}

#[test]
fn on_a_kernel_without_io_uring_it_says_why_and_exits_69_before_listening() {
    assert_refused(&run_without_io_uring(libc::ENOSYS as u32), "ENOSYS");
}
