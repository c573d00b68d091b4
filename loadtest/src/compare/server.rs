//! Starting, watching and stopping the servers that `compare` measures.
//!
//! A server is a program and its arguments ([`Launch`]); what differs between them is how the port
//! is agreed. A Flash server is started with `--port 0` and its first stdout line tells the address
//! (the contract every Flash server keeps); a reference server is handed a free port, in `$PORT`
//! or in a config file written just before it starts, and is ready when it answers. Each is stopped
//! with SIGTERM, as a user would, so that a server that does not shut down cleanly shows it. While a
//! scenario runs, a sampler thread reads `/proc/PID/status` for the peak thread count; the peak RSS
//! comes from the kernel's own high-water mark (`VmHWM`). A server runs in a process group of its
//! own and dies with flash-load, so Ctrl-C and crashes leave none behind.
//!
//! A server that exits before it listens, with a failing exit code and exactly one line on stderr,
//! is taken at its word: it cannot run on this machine (io_uring unavailable, say), and that line
//! is the reason the report gives. A crash (a panic prints more than one line; a signal has no exit
//! code) is a failure, never a skip.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::interrupt::{self, Interrupt};
use crate::procfs;

/// How long a server may take to print its address and answer a first request.
const STARTUP: Duration = Duration::from_secs(15);

/// How long a server may take to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// How long to wait, once a server's output has ended, for its exit status and last stderr line.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// How many times a start is tried when the port picked for it was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// Finds the workspace root: the nearest folder at or above `start` with `servers/` and a
/// `Cargo.toml`.
pub fn find_workspace(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("servers").is_dir() && dir.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The cargo target folder: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        }
        _ => workspace.join("target"),
    }
}

/// How a server and compare agree on its port.
#[derive(Debug)]
pub enum PortRule {
    /// `--port 0` is among its arguments and its first stdout line is `listening on http://ADDR`.
    Announced,
    /// A free port is picked here and handed over in `$PORT`.
    Env,
    /// A free port is picked here and written into a config file, `template` with `{PORT}`
    /// replaced, at `path` before each start.
    ConfigFile {
        /// Where the server reads its config.
        path: PathBuf,
        /// The config, with `{PORT}` where the port goes.
        template: String,
    },
}

/// How to start one server.
#[derive(Debug)]
pub struct Launch {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// How its port is agreed.
    pub port: PortRule,
    /// CPUs to pin the server to (`taskset -c`), if pinning.
    pub cpus: Option<String>,
    /// A folder the server works in for the whole comparison (nginx's prefix), removed with the
    /// launch.
    pub scratch: Option<tempfile::TempDir>,
}

impl Launch {
    /// A Flash server binary: `--port 0 --quiet`, then `args`.
    pub fn flash(program: PathBuf, args: Vec<String>, cpus: Option<String>) -> Launch {
        let mut all: Vec<String> = vec!["--port".into(), "0".into(), "--quiet".into()];
        all.extend(args);
        Launch { program, args: all, port: PortRule::Announced, cpus, scratch: None }
    }
}

/// Why a server could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// It cannot run on this machine: it exited with an error before it listened, and its one
    /// line of stderr says why.
    Unavailable(String),
    /// Anything else: it crashed, hung, printed no address or never answered.
    Failed(String),
}

impl StartError {
    /// The reason, whichever kind.
    fn why(&self) -> &str {
        match self {
            StartError::Unavailable(why) | StartError::Failed(why) => why,
        }
    }
}

/// A running server; dropping it without [`Running::stop`] (an error, a panic) kills it, so that
/// no path leaves a server behind.
pub struct Running {
    /// The child process (possibly `taskset`, which execs the server under the same pid).
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The last lines it wrote to stderr, to explain a failure.
    stderr: Arc<Mutex<Vec<String>>>,
    /// The thread collecting them; finished once the server's stderr is closed.
    stderr_reader: Option<thread::JoinHandle<()>>,
    /// Knows the child's pid, so that a second Ctrl-C kills it before quitting.
    interrupt: Interrupt,
    /// Whether the child was reaped (its pid may belong to someone else from then on).
    reaped: bool,
}

impl Running {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(reason)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.reaped();
                Some(format!("exited ({status}){}", self.last_words()))
            }
            Ok(None) => None,
            Err(e) => Some(format!("cannot be watched: {e}")),
        }
    }

    /// The tail of its stderr, for a failure message.
    fn last_words(&self) -> String {
        match self.stderr_lines().last() {
            Some(line) => format!(": {line}"),
            None => String::new(),
        }
    }

    /// What it wrote to stderr so far (the last 20 lines).
    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits, a bounded time, for a server whose output has ended (or that failed to start) to
    /// exit, and says why it did: [`StartError::Unavailable`] for one line of error and a failing
    /// exit code, [`StartError::Failed`] otherwise. `None` if it is still running.
    fn why_it_ended(&mut self) -> Option<StartError> {
        let deadline = Instant::now() + LAST_WORDS;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {}
                Ok(None) => return None,
                Err(e) => return Some(StartError::Failed(format!("cannot be watched: {e}"))),
            }
            // Polling the exit status is all std offers; the server has closed its output, so
            // its exit is a matter of moments.
            thread::sleep(Duration::from_millis(5));
        };
        self.reaped();
        // Its last line may still be in the pipe: the reader ends when the pipe closes, which a
        // server's leftover child could delay, hence the deadline.
        while self.stderr_reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        Some(classify(status, &self.stderr_lines()))
    }

    /// Notes that the child was reaped: a second Ctrl-C must not signal its pid any more.
    fn reaped(&mut self) {
        self.reaped = true;
        self.interrupt.forget_child();
    }

    /// Stops it with SIGTERM; returns whether it exited by itself within the grace period (it is
    /// killed otherwise).
    pub fn stop(mut self) -> bool {
        self.stop_now()
    }

    /// [`Running::stop`] on a borrowed server, for `stop` and `drop`.
    fn stop_now(&mut self) -> bool {
        if self.reaped {
            return true;
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            self.reaped();
            return true;
        }
        // std can only send SIGKILL; `kill` from procps sends the polite signal.
        let sent = interrupt::kill(self.child.id(), "-TERM");
        let deadline = Instant::now() + GRACE;
        while sent && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.reaped();
                return true;
            }
            // Polling the exit status is all std offers; 10 ms is invisible next to a scenario.
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped();
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped();
        }
    }
}

/// A server that exited before it answered: one line of stderr and a failing exit code mean it
/// says it cannot run here; a crash (a panic's several lines, a signal, silence) is a failure.
fn classify(status: ExitStatus, stderr: &[String]) -> StartError {
    let said: Vec<&str> = stderr.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    match (status.code(), said.as_slice()) {
        (Some(code), [line]) if code != 0 => StartError::Unavailable(line.to_string()),
        (_, [.., last]) => StartError::Failed(format!("exited ({status}) before it answered: {last}")),
        _ => StartError::Failed(format!("exited ({status}) before it answered")),
    }
}

/// Starts a server and waits until it answers `GET /hello` (or until `interrupt` asks to stop).
pub fn start(launch: &Launch, interrupt: &Interrupt) -> Result<Running, StartError> {
    let mut attempt = 1;
    loop {
        match start_once(launch, interrupt) {
            // A port picked here can be taken by another process before the server binds it.
            Err(e)
                if !matches!(launch.port, PortRule::Announced)
                    && e.why().contains("in use")
                    && attempt < PORT_ATTEMPTS =>
            {
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// One attempt of [`start`].
fn start_once(launch: &Launch, interrupt: &Interrupt) -> Result<Running, StartError> {
    let failed = |why: String| StartError::Failed(why);
    let mut cmd = match &launch.cpus {
        Some(cpus) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus]).arg(&launch.program);
            cmd
        }
        None => Command::new(&launch.program),
    };
    cmd.args(&launch.args);
    let port = match &launch.port {
        PortRule::Announced => None,
        PortRule::Env => {
            let port = free_port().map_err(|e| failed(format!("cannot find a free port: {e}")))?;
            cmd.env("PORT", port.to_string());
            Some(port)
        }
        PortRule::ConfigFile { path, template } => {
            let port = free_port().map_err(|e| failed(format!("cannot find a free port: {e}")))?;
            std::fs::write(path, template.replace("{PORT}", &port.to_string()))
                .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
            Some(port)
        }
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A process group of its own: a Ctrl-C at the terminal reaches flash-load only, which ends the
    // measurement and then stops the server with SIGTERM as usual, instead of the server dying under
    // the load and the partial figures showing errors that were the user's doing.
    cmd.process_group(0);
    // And if flash-load itself is killed (SIGKILL, a crash), the kernel sends the server SIGTERM,
    // so that no path leaves a server running unattended. The setting survives the exec (of
    // `taskset` and then of the server).
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; it makes one system call (prctl) and touches no shared memory.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(io::Error::from));
    }
    let mut child = cmd.spawn().map_err(|e| failed(format!("cannot start {}: {e}", launch.program.display())))?;
    interrupt.watch_child(child.id());
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let stderr_reader = child.stderr.take().map(|pipe| {
        let sink = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                    let excess = lines.len().saturating_sub(20);
                    lines.drain(..excess);
                }
            }
        })
    });
    let stdout = child.stdout.take().ok_or_else(|| failed("no stdout pipe".into()))?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = tx.send(first);
        // Keep draining so that a chatty server never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let mut running = Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))),
        stderr,
        stderr_reader,
        interrupt: interrupt.clone(),
        reaped: false,
    };
    if port.is_none() {
        running.addr = announced_address(&mut running, &rx, interrupt)?;
    }
    let deadline = Instant::now() + STARTUP;
    loop {
        if answers(running.addr) {
            return Ok(running);
        }
        if running.child.try_wait().is_ok_and(|s| s.is_some()) {
            let why = running.why_it_ended().unwrap_or_else(|| failed("exited".into()));
            return Err(match (why, port) {
                // A Flash server that printed its address was running: dying now is a failure.
                (StartError::Unavailable(line), None) => failed(format!("died at startup: {line}")),
                (why, _) => why,
            });
        }
        if interrupt.requested() {
            running.stop();
            return Err(failed("start-up stopped by a signal".into()));
        }
        if Instant::now() >= deadline {
            running.stop();
            return Err(failed("listened but never answered GET /hello".into()));
        }
        // A refused probe returns at once; pausing keeps the wait from spinning a core.
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a Flash server's first stdout line, `listening on http://ADDR`, from `rx`; a server that
/// ends its output without one is asked why it ended.
fn announced_address(
    running: &mut Running,
    rx: &mpsc::Receiver<String>,
    interrupt: &Interrupt,
) -> Result<SocketAddr, StartError> {
    let started = Instant::now();
    let line = loop {
        // Short waits, so that a Ctrl-C during a slow start-up is noticed.
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => break line,
            Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < STARTUP && !interrupt.requested() => {}
            Err(_) => {
                let why = if interrupt.requested() { "start-up stopped by a signal" } else { "printed no address" };
                running.stop_now();
                return Err(StartError::Failed(format!("did not start: {why}")));
            }
        }
    };
    if let Some(addr) = parse_listening(&line) {
        return Ok(addr);
    }
    // An empty line is the end of its output: it exited (or is about to) without listening.
    let why = match running.why_it_ended() {
        Some(why) if line.is_empty() => why,
        _ => StartError::Failed(format!("did not start: its first line was {:?}", line.trim_end())),
    };
    running.stop_now();
    Err(why)
}

/// A port nothing listens on right now. Another process may take it before the server binds it;
/// [`start`] tries again when the server says so.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Parses `listening on http://127.0.0.1:PORT`.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix("listening on http://")?.parse().ok()
}

/// Whether `GET /hello` gets an HTTP response (any status) within a second.
pub fn answers(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1."))
    };
    attempt().unwrap_or(false)
}

/// Samples a process's thread count while a scenario runs.
pub struct Sampler {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The highest thread count seen.
    peak_threads: Arc<AtomicU64>,
    /// The sampling thread.
    handle: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `pid` every 20 ms.
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_threads = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_threads.clone());
        let handle = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match procfs::process_status(pid) {
                    Some(status) => {
                        p.fetch_max(status.threads, Ordering::Relaxed);
                    }
                    None => break,
                }
                // A sampling period, not synchronization: thread counts change slowly.
                thread::sleep(Duration::from_millis(20));
            }
        });
        Sampler { stop, peak_threads, handle: Some(handle) }
    }

    /// Stops sampling and returns the peak thread count.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.peak_threads.load(Ordering::Relaxed)
    }
}

/// Pins this process (all its threads) to `cpus` with `taskset`; threads created later inherit it.
pub fn pin_self(cpus: &str) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("--pin needs taskset (util-linux): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("--pin: taskset could not pin flash-load to CPU {cpus}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        assert_eq!(parse_listening("listening on http://127.0.0.1:8080\n"), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(parse_listening("hello"), None);
    }

    /// A shell command standing for a server, run by `sh -c`. Not a script file: a file written
    /// here and exec'd could still be open for writing in a child another test thread forks at
    /// that moment (until the child's exec), and the kernel refuses to run it ("Text file busy").
    pub(crate) fn fake(body: &str, port: PortRule) -> Launch {
        Launch { program: "/bin/sh".into(), args: vec!["-c".into(), body.into()], port, cpus: None, scratch: None }
    }

    #[test]
    fn one_line_of_error_before_listening_says_why_it_cannot_run() {
        let fails =
            fake("echo 'error: io_uring: Function not implemented (os error 38)' >&2; exit 1", PortRule::Announced);
        let outcome = start(&fails, &Interrupt::new()).map(|r| r.addr);
        assert_eq!(
            outcome,
            Err(StartError::Unavailable("error: io_uring: Function not implemented (os error 38)".into()))
        );
    }

    #[test]
    fn a_crash_or_a_signal_at_start_is_a_failure() {
        let panics =
            fake("echo \"thread 'main' panicked\" >&2; echo 'note: backtrace' >&2; exit 101", PortRule::Announced);
        match start(&panics, &Interrupt::new()).map(|r| r.addr) {
            Err(StartError::Failed(why)) => assert!(why.contains("101") && why.contains("note: backtrace"), "{why}"),
            other => panic!("a panic at start is a failure, not {other:?}"),
        }
        let killed = fake("echo 'about to die' >&2; kill -KILL $$", PortRule::Announced);
        match start(&killed, &Interrupt::new()).map(|r| r.addr) {
            Err(StartError::Failed(why)) => assert!(why.contains("signal"), "{why}"),
            other => panic!("death by a signal is a failure, not {other:?}"),
        }
        let quiet = fake("exit 0", PortRule::Announced);
        assert!(matches!(start(&quiet, &Interrupt::new()), Err(StartError::Failed(_))));
    }

    #[test]
    fn a_reference_is_handed_a_free_port_and_is_ready_when_it_answers() {
        // Any program that serves HTTP stands for a reference: Python's, given the port in $PORT,
        // then in a config file written just before the start.
        let by_env = fake("exec python3 -m http.server \"$PORT\" --bind 127.0.0.1", PortRule::Env);
        let running = start(&by_env, &Interrupt::new()).unwrap();
        assert!(running.addr.port() != 0 && answers(running.addr), "{}", running.addr);
        assert!(running.stop(), "it exits on SIGTERM");

        let dir = tempfile::Builder::new().prefix("flash-load-fake-").tempdir().unwrap();
        let config = dir.path().join("server.conf");
        let rule = PortRule::ConfigFile { path: config.clone(), template: "{PORT}".into() };
        let by_file =
            fake(&format!("exec python3 -m http.server \"$(cat {})\" --bind 127.0.0.1", config.display()), rule);
        let running = start(&by_file, &Interrupt::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), running.addr.port().to_string());
        assert!(answers(running.addr));
        assert!(running.stop());
    }
}
