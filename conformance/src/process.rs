//! A server binary run as a child process, as it is deployed: for the tests that need the real
//! program (its flags, its signals, its stderr, `kill -9`, its own file-descriptor limit) rather
//! than `serve` called in the test's process.
//!
//! Every wait is bounded, and dropping a [`ChildServer`] kills and reaps it, so a failing test
//! never leaves a server behind.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a server may take to print its address, and to stop after SIGTERM: generous, for a
/// loaded 2-core CI machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A server running as a child process; dropping it kills it (SIGKILL) and reaps it.
pub struct ChildServer {
    /// The process.
    child: Child,
    /// Where it listens, read from its first stdout line.
    addr: SocketAddr,
    /// The file its stderr (the error log) goes to.
    stderr: PathBuf,
}

impl ChildServer {
    /// Runs `cmd` (its stdout and stderr are taken over here; stderr goes to a file in `scratch`)
    /// and waits, bounded, for its `listening on http://ADDR` line.
    #[track_caller]
    pub fn spawn(cmd: Command, scratch: &Path) -> ChildServer {
        let stderr = scratch.join("server-stderr.log");
        let file = File::create(&stderr).expect("a stderr file");
        ChildServer::spawn_with_stderr(cmd, stderr, file.into())
    }

    /// [`ChildServer::spawn`] with a stderr whose reader is already gone, as under
    /// `server 2>&1 | head` once `head` has exited: every write to it fails (EPIPE), and a
    /// server must go on serving. Its [`ChildServer::stderr_log`] is empty.
    #[track_caller]
    pub fn spawn_with_stderr_closed(cmd: Command, scratch: &Path) -> ChildServer {
        let (reader, writer) = nix::unistd::pipe().expect("a pipe");
        drop(reader);
        ChildServer::spawn_with_stderr(cmd, scratch.join("no-stderr.log"), writer.into())
    }

    #[track_caller]
    fn spawn_with_stderr(mut cmd: Command, stderr: PathBuf, to: Stdio) -> ChildServer {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(to)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().expect("a piped stdout");
        let (tell, told) = mpsc::channel();
        // Reads the first line, then drains stdout so the child never blocks on a full pipe;
        // the thread ends when the child does.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tell.send(lines.next());
            lines.for_each(drop);
        });
        let mut guard = ChildServer { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), stderr };
        let line = match told.recv_timeout(DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = guard.child.kill();
                let _ = guard.child.wait();
                panic!("{program} printed no address ({other:?}); stderr:\n{}", guard.stderr_log());
            }
        };
        guard.addr = line
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        assert!(guard.addr.ip().is_loopback(), "{line}");
        guard
    }

    /// Starts `binary --port 0 --quiet --results-dir <results> <args>` in `scratch`.
    #[track_caller]
    pub fn start(binary: &Path, results: &Path, scratch: &Path, args: &[&str]) -> ChildServer {
        let mut cmd = Command::new(binary);
        cmd.args(["--port", "0", "--quiet", "--results-dir"]).arg(results).args(args).current_dir(scratch);
        ChildServer::spawn(cmd, scratch)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id, to read what it costs from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (SIGSTOP and SIGCONT for the fault tests that freeze a node); the process
    /// goes on being this guard's to reap.
    #[track_caller]
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap_or_else(|e| panic!("{signal}: {e}"));
    }

    /// What it has written to stderr so far.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then waits (bounded) for it to exit; returns how it exited.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with(Signal::SIGTERM)
    }

    /// Sends `signal`, then waits (bounded) for it to exit; returns how it exited.
    #[track_caller]
    pub fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap_or_else(|e| panic!("{signal}: {e}"));
        crate::wait::until(&format!("the server to stop after {signal}"), DEADLINE, || {
            self.child.try_wait().expect("wait for the server")
        })
    }

    /// `kill -9`: no shutdown step runs. Waits for the process to be gone.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the killed server");
    }
}

/// The path of a binary of this workspace, built first if it is missing or stale (`cargo build
/// -p PACKAGE --bin PACKAGE`, in the profile and target folder of the running test): for a test
/// that runs another package's binary, such as the cluster's tests starting copies of server 04
/// (cargo only hands a test the binaries of its own package). Built once per test process.
#[track_caller]
pub fn workspace_binary(package: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, path)) = built.iter().find(|(p, _)| p == package) {
        return path.clone();
    }
    // A test runs from <target>/<profile folder>/deps/<test binary>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("a test binary lives in <target>/<profile>/deps");
    let target = profile_dir.parent().expect("a profile folder lives in the target folder");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("no profile folder in {}", exe.display()),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace)
        .args(["build", "--quiet", "--profile", profile, "-p", package, "--bin", package, "--target-dir"])
        .arg(target)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    assert!(output.status.success(), "cargo build -p {package} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let path = profile_dir.join(package);
    assert!(path.is_file(), "cargo built {package} but {} is missing", path.display());
    built.push((package.to_string(), path.clone()));
    path
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // A stopped process (SIGSTOP) dies of SIGKILL all the same, so no SIGCONT is needed.
        // Already reaped after `kill_9` or `terminate`, in which case both calls fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
