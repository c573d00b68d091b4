//! Finding, building, starting, watching and stopping the servers that `compare` measures.
//!
//! Servers are discovered from the workspace's `servers/` folder (`servers/NN-name` is package
//! `flash-NN-name`), so a new server joins the comparison by existing. Each is started with
//! `--port 0 --quiet`, its first stdout line tells the port (the contract every Flash server keeps),
//! and it is stopped with SIGTERM, as a user would, so that a server that does not shut down cleanly
//! shows it. While a scenario runs, a sampler thread reads `/proc/PID/status` for the peak thread
//! count; the peak RSS comes from the kernel's own high-water mark (`VmHWM`). A server runs in a
//! process group of its own and dies with flash-load, so Ctrl-C and crashes leave none behind.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A server folder found in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDir {
    /// The folder name, such as `04-epoll`.
    pub name: String,
    /// The cargo package and binary, such as `flash-04-epoll`.
    pub package: String,
}

/// Lists `servers/NN-name` folders that have a `Cargo.toml`, in numeric order.
pub fn discover(workspace: &Path) -> std::io::Result<Vec<ServerDir>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(workspace.join("servers"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let numbered =
            name.len() > 3 && name.as_bytes()[..2].iter().all(u8::is_ascii_digit) && name.as_bytes()[2] == b'-';
        if numbered && entry.path().join("Cargo.toml").is_file() {
            found.push(ServerDir { package: format!("flash-{name}"), name });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Keeps the servers named in `--servers` (by number such as `04`, or full name); all when empty.
pub fn select(all: Vec<ServerDir>, wanted: &[String]) -> Result<Vec<ServerDir>, String> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut chosen = Vec::new();
    for want in wanted {
        let want = want.trim();
        if want == "none" {
            continue;
        }
        let hit = all.iter().find(|s| s.name == want || s.package == want || s.name.split('-').next() == Some(want));
        match hit {
            Some(server) if !chosen.contains(server) => chosen.push(server.clone()),
            Some(_) => {}
            None => {
                let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                return Err(format!("--servers: no server {want:?} in servers/ (found: {})", names.join(", ")));
            }
        }
    }
    Ok(chosen)
}

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

/// Builds the packages with one cargo command in the given profile; a failure names the packages.
pub fn build(workspace: &Path, packages: &[&str], profile: &str) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace).args(["build", "--profile", profile]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build --profile {profile} failed for {}", packages.join(", ")))
    }
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary.
    pub binary: PathBuf,
    /// Extra arguments after `--port 0 --quiet`.
    pub args: Vec<String>,
    /// CPUs to pin the server to (`taskset -c`), if pinning.
    pub cpus: Option<String>,
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
        let lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        match lines.last() {
            Some(line) => format!(": {line}"),
            None => String::new(),
        }
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

/// Starts a server and waits until it answers `GET /hello` (or until `interrupt` asks to stop).
pub fn start(launch: &Launch, interrupt: &Interrupt) -> Result<Running, String> {
    let mut cmd = match &launch.cpus {
        Some(cpus) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus]).arg(&launch.binary);
            cmd
        }
        None => Command::new(&launch.binary),
    };
    cmd.args(["--port", "0", "--quiet"]).args(&launch.args);
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
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", launch.binary.display()))?;
    interrupt.watch_child(child.id());
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(pipe) = child.stderr.take() {
        let sink = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                    let excess = lines.len().saturating_sub(20);
                    lines.drain(..excess);
                }
            }
        });
    }
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
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
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stderr,
        interrupt: interrupt.clone(),
        reaped: false,
    };
    let started = Instant::now();
    let line = loop {
        // Short waits, so that a Ctrl-C during a slow start-up is noticed.
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => break line,
            Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < STARTUP && !interrupt.requested() => {}
            Err(_) => {
                let why = running.exited().unwrap_or_else(|| {
                    if interrupt.requested() { "start-up stopped by a signal" } else { "printed no address" }.into()
                });
                running.stop();
                return Err(format!("did not start: {why}"));
            }
        }
    };
    let Some(addr) = parse_listening(&line) else {
        let why = running.exited().unwrap_or_default();
        running.stop();
        return Err(format!("did not start: first line was {:?} {why}", line.trim_end()));
    };
    running.addr = addr;
    let deadline = Instant::now() + STARTUP;
    loop {
        if answers(addr) {
            return Ok(running);
        }
        if let Some(why) = running.exited() {
            return Err(format!("died at startup: {why}"));
        }
        if interrupt.requested() {
            running.stop();
            return Err("start-up stopped by a signal".into());
        }
        if Instant::now() >= deadline {
            running.stop();
            return Err("listened but never answered GET /hello".into());
        }
        // A refused probe returns at once; pausing keeps the wait from spinning a core.
        thread::sleep(Duration::from_millis(10));
    }
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
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        assert_eq!(parse_listening("listening on http://127.0.0.1:8080\n"), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(parse_listening("hello"), None);
    }

    #[test]
    fn selects_by_number_or_name() {
        let all = vec![
            ServerDir { name: "01-sequential".into(), package: "flash-01-sequential".into() },
            ServerDir { name: "04-epoll".into(), package: "flash-04-epoll".into() },
        ];
        let picked = select(all.clone(), &["04".into(), "01-sequential".into()]).unwrap();
        assert_eq!(picked.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["04-epoll", "01-sequential"]);
        assert!(select(all.clone(), &["09".into()]).unwrap_err().contains("01-sequential"));
        assert!(select(all, &["none".into()]).unwrap().is_empty());
    }
}
