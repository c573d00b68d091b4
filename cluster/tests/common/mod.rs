//! What the cluster's tests share: starting `flash-cluster` as a real process in front of copies
//! of server 04 (each test in a scratch folder of its own, where the copies keep their stats
//! results), finding its admin port, and reading `/status`.
//!
//! The cluster runs under [`ChildServer`], so a failing test never leaves it behind; the copies
//! die with it (PDEATHSIG), and a test that stops it with SIGTERM checks they were stopped.

// Each test file uses a part of this module; the rest would be reported as dead code there.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use flash_common::client::{Client, ClientResponse};
use flash_conformance::process::{workspace_binary, ChildServer};
use flash_conformance::wait::until;
use serde_json::Value;
use tempfile::TempDir;

/// How long a test waits for the cluster to do something it was asked (a copy restarted, a
/// size reached): generous, for a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running cluster and its scratch folder.
pub struct Cluster {
    /// The cluster's process.
    pub server: ChildServer,
    /// Its working folder (the copies' stats results land here); removed after the cluster.
    pub scratch: TempDir,
}

/// Server 04's binary, built if need be.
pub fn server_04() -> PathBuf {
    workspace_binary("flash-04-epoll")
}

/// The `--backend` command for copies of 04.
pub fn backend_04() -> String {
    format!("{} --port {{port}} --quiet", server_04().display())
}

impl Cluster {
    /// Starts `flash-cluster --port 0 --quiet --admin-port 0` with `args`, and waits for it to
    /// listen (which it does once its copies passed their health checks).
    #[track_caller]
    pub fn start(args: &[&str]) -> Cluster {
        Cluster::start_with(args, ChildServer::spawn)
    }

    /// [`Cluster::start`] with a stderr nobody reads any more (see
    /// [`ChildServer::spawn_with_stderr_closed`]); [`Cluster::admin`] cannot find the admin port
    /// then, as it reads it from stderr.
    #[track_caller]
    pub fn start_with_stderr_closed(args: &[&str]) -> Cluster {
        Cluster::start_with(args, ChildServer::spawn_with_stderr_closed)
    }

    #[track_caller]
    fn start_with(args: &[&str], spawn: fn(Command, &std::path::Path) -> ChildServer) -> Cluster {
        let scratch = tempfile::tempdir().expect("a scratch folder");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-cluster"));
        cmd.args(["--port", "0", "--quiet", "--admin-port", "0", "--threads", "1"])
            .args(args)
            .current_dir(scratch.path());
        let server = spawn(cmd, scratch.path());
        Cluster { server, scratch }
    }

    /// The processes the cluster has started (its copies), from `/proc`: what a test sees when it
    /// cannot ask `/status`.
    pub fn children(&self) -> Vec<u32> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.server.pid())).into_iter().flatten().flatten();
        let lists = tasks.filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok());
        let mut pids: Vec<u32> =
            lists.flat_map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<_>>()).collect();
        pids.retain(|&p| alive(p));
        pids.sort_unstable();
        pids
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Where the admin interface listens (read from the cluster's stderr).
    #[track_caller]
    pub fn admin(&self) -> SocketAddr {
        until("the admin address on stderr", PATIENCE, || {
            let log = self.server.stderr_log();
            let line = log.lines().find_map(|l| l.strip_prefix("flash-cluster: admin on http://"))?;
            line.trim().parse().ok()
        })
    }

    /// `GET /status` on the admin port.
    #[track_caller]
    pub fn status(&self) -> Value {
        let res = Client::connect(self.admin(), PATIENCE).and_then(|mut c| c.get("/status")).expect("GET /status");
        assert_eq!(res.status, 200, "{}", res.text());
        serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {}", res.text()))
    }

    /// `POST /size` on the admin port with `body`.
    #[track_caller]
    pub fn post_size(&self, body: &str) -> ClientResponse {
        let mut client = Client::connect(self.admin(), PATIENCE).expect("connect to the admin port");
        client.request("POST", "/size", &[("Content-Type", "application/json")], body.as_bytes()).expect("POST /size")
    }

    /// The copies in `/status` (spawned and upstream), as JSON objects.
    pub fn copies(&self) -> Vec<Value> {
        self.status()["copies"].as_array().cloned().unwrap_or_default()
    }

    /// How many copies are in `state`.
    pub fn count(&self, state: &str) -> usize {
        self.copies().iter().filter(|c| c["state"] == state).count()
    }

    /// Waits until `/status` shows exactly `n` healthy copies and nothing starting or leaving.
    #[track_caller]
    pub fn wait_for_size(&self, n: usize) {
        until(&format!("{n} healthy copies and no other"), PATIENCE, || {
            let copies = self.copies();
            (copies.len() == n && copies.iter().all(|c| c["state"] == "healthy")).then_some(())
        });
    }

    /// A client of the cluster.
    pub fn client(&self) -> Client {
        Client::connect(self.addr(), PATIENCE).expect("connect to the cluster")
    }

    /// What the cluster wrote to stderr.
    pub fn log(&self) -> String {
        self.server.stderr_log()
    }
}

/// Whether process `pid` still exists (a zombie counts as gone: it runs nothing).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The pids of the spawned copies in a `/status`.
pub fn pids(status: &Value) -> Vec<u32> {
    status["copies"].as_array().into_iter().flatten().filter_map(|c| c["pid"].as_u64()).map(|p| p as u32).collect()
}

/// What a scripted backend does with one request.
pub struct Answer {
    /// The bytes it writes back (a response, part of one, or nothing).
    pub bytes: Vec<u8>,
    /// Whether it then closes the connection.
    pub close: bool,
}

impl Answer {
    /// A whole `200 OK` with `body`, keeping the connection.
    pub fn ok(body: &str) -> Answer {
        Answer {
            bytes: format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes(),
            close: false,
        }
    }

    /// Writes `bytes`, then closes: a copy dying at that point.
    pub fn dies_after(bytes: &str) -> Answer {
        Answer { bytes: bytes.as_bytes().to_vec(), close: true }
    }
}

/// A backend whose every answer a test scripts, on 127.0.0.1:0, recording each request it
/// receives (head and body, as raw text): for the proxy's behaviour at the byte level, and for
/// failures at exact points (a response cut mid-body), which a real server cannot be made to
/// show on cue. Given to the cluster with `--upstream`.
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request received, in order.
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// How many connections brought at least one request (health checks' bare connects do not).
    pub connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Set to stop the accept loop.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The accept loop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scripted {
    /// Starts a backend answering each request with `script(request, how many requests with the
    /// same request line came before it)`.
    pub fn start(script: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Scripted {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a scripted backend");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let (seen2, stop2, connections2) = (seen.clone(), stop.clone(), connections.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let (seen, script, connections) = (seen2.clone(), script.clone(), connections2.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(PATIENCE));
                    let mut buf = Vec::new();
                    for served in 0.. {
                        // One request: a head, then the Content-Length the cluster always sends.
                        let mut head = flash_common::parse::Head::default();
                        let limits = flash_common::parse::Limits::default();
                        let (len, body) = loop {
                            if let Ok(Some(len)) = flash_common::parse::parse_head(&buf, &limits, &mut head) {
                                let body = match head.framing {
                                    flash_common::parse::Framing::Length(n) => n as usize,
                                    _ => 0,
                                };
                                if buf.len() >= len + body {
                                    break (len, body);
                                }
                            }
                            let mut chunk = [0u8; 16384];
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        if served == 0 {
                            connections.fetch_add(1, Ordering::SeqCst);
                        }
                        let raw = String::from_utf8_lossy(&buf[..len + body]).into_owned();
                        buf.drain(..len + body);
                        let line = raw.lines().next().unwrap_or_default().to_string();
                        let nth = {
                            let mut seen = seen.lock().unwrap();
                            let nth = seen.iter().filter(|r| r.lines().next() == Some(line.as_str())).count();
                            seen.push(raw.clone());
                            nth
                        };
                        let answer = script(&raw, nth);
                        if stream.write_all(&answer.bytes).is_err() || answer.close {
                            return;
                        }
                    }
                });
            }
        });
        Scripted { addr, seen, connections, stop, thread: Some(thread) }
    }

    /// The `--upstream` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received whose request line starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<String> {
        self.seen.lock().unwrap().iter().filter(|r| r.starts_with(prefix)).cloned().collect()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A gate scripted backends wait at: closed until a test opens it (bounded by [`PATIENCE`]), to
/// hold requests in flight for exactly as long as a test needs.
#[derive(Clone, Default)]
pub struct Gate(
    /// Whether the gate is open, and the condition waiters sleep on.
    std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
);

impl Gate {
    /// Waits until the gate is open (or [`PATIENCE`] passes, so a failing test cannot hang).
    pub fn pass(&self) {
        let (open, changed) = &*self.0;
        let guard = open.lock().unwrap();
        let _ = changed.wait_timeout_while(guard, PATIENCE, |open| !*open).unwrap();
    }

    /// Opens the gate for everyone waiting and everyone to come.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
}
