//! The workloads of `compare`: what each one asks of a server, and the fixtures it needs.
//!
//! A scenario is a row of [`SCENARIOS`] and a load built from it by [`Scenario::spec`]; the two
//! sit together so that a new scenario is one row and one arm. `idle-10k` also needs 10,000 idle
//! connections held beside the load, and a census of what became of them ([`IdleCensus`]), and
//! `static` a file to serve ([`Docroot`]); both live here because nothing else uses them.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report::group;
use crate::request::{RequestSet, RequestSpec, Target};
use crate::spec::LoadSpec;

/// Idle connections held open in `idle-10k`.
pub const IDLE_CONNECTIONS: usize = 10_000;

/// The static file served in `static`.
const STATIC_FILE: &str = "static-64k.bin";

/// One workload of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Its short name.
    pub name: &'static str,
    /// What it does, for the report.
    pub about: &'static str,
    /// Whether it needs Flash's routes (`/sleep`, `/cpu`, a docroot), so references skip it.
    pub flash_only: bool,
}

/// The body every replicated-log scenario writes: about sixty bytes, as in the replog benchmark.
const REPLOG_MESSAGE: &str = r#"{"message": "a message of about sixty bytes for the replicated log"}"#;

/// The scenarios, in report order. The last two measure the replicated log (`flash-replog demo`:
/// a primary and two secondaries on this machine) and only it: the other servers do not serve
/// its API, and it serves nothing else.
pub const SCENARIOS: [Scenario; 9] = [
    Scenario { name: "hello", about: "GET /hello, 64 keep-alive connections", flash_only: false },
    Scenario {
        name: "hello-close",
        about: "GET /hello, a new connection per request (16 at a time)",
        flash_only: false,
    },
    Scenario { name: "pipelined", about: "GET /hello, 64 connections, 16 pipelined requests each", flash_only: false },
    Scenario { name: "slow-mix", about: "2% GET /sleep?ms=200 among GET /hello, 64 connections", flash_only: true },
    Scenario {
        name: "cpu",
        about: "GET /cpu?n=50000 (about 1 ms of CPU each) open loop at 1,500 req/s, 16 connections: more work than one core can do",
        flash_only: true,
    },
    Scenario {
        name: "idle-10k",
        about: "hello on 64 connections while 10,000 idle ones are held open",
        flash_only: false,
    },
    Scenario { name: "static", about: "GET of a 64 KiB file, 64 keep-alive connections", flash_only: true },
    Scenario {
        name: "replog-w1",
        about: "the replicated log: POST /messages?w=1 (answered once the primary's fsync is done), 64 writers",
        flash_only: true,
    },
    Scenario {
        name: "replog-w3",
        about: "the replicated log: POST /messages?w=3 (once all three nodes hold it durably), 64 writers",
        flash_only: true,
    },
];

/// How each cell is measured.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Measured time per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Runs per cell.
    pub runs: usize,
    /// Load generator threads.
    pub threads: usize,
}

impl Scenario {
    /// Resolves `--scenarios` (all of them, in report order, when none is named).
    pub fn pick(wanted: &[String]) -> Result<Vec<Scenario>, String> {
        if wanted.is_empty() {
            return Ok(SCENARIOS.to_vec());
        }
        wanted
            .iter()
            .map(|w| {
                SCENARIOS.iter().find(|s| s.name == w.trim()).copied().ok_or_else(|| {
                    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                    format!("--scenarios: unknown scenario {w:?} (known: {})", names.join(", "))
                })
            })
            .collect()
    }

    /// Whether it measures the replicated log (whose row measures nothing else).
    pub fn for_replog(&self) -> bool {
        self.name.starts_with("replog-")
    }

    /// Whether it holds idle connections beside the load.
    pub fn holds_idle_connections(&self) -> bool {
        self.name == "idle-10k"
    }

    /// The load of this scenario against `addr`; `pid` is the server's, when compare started it.
    pub fn spec(&self, addr: SocketAddr, settings: &Settings, pid: Option<u32>) -> Result<LoadSpec, String> {
        let get =
            |path: &str, weight: u32| RequestSpec { method: "GET".into(), path: path.into(), body: Vec::new(), weight };
        let (connections, specs, pipeline, per_conn, rate) = match self.name {
            "hello" | "idle-10k" => (64, vec![get("/hello", 1)], 1, None, None),
            "hello-close" => (16, vec![get("/hello", 1)], 1, Some(1), None),
            "pipelined" => (64, vec![get("/hello", 1)], 16, None, None),
            "slow-mix" => (64, vec![get("/hello", 98), get("/sleep?ms=200", 2)], 1, None, None),
            "cpu" => (16, vec![get("/cpu?n=50000", 1)], 1, None, Some(1500.0)),
            "static" => (64, vec![get(&format!("/{STATIC_FILE}"), 1)], 1, None, None),
            "replog-w1" | "replog-w3" => {
                let path = format!("/messages?w={}", &self.name["replog-w".len()..]);
                let post = RequestSpec { method: "POST".into(), path, body: REPLOG_MESSAGE.into(), weight: 1 };
                (64, vec![post], 1, None, None)
            }
            other => return Err(format!("unknown scenario {other}")),
        };
        let target = Target { addr, host: addr.to_string(), path: specs[0].path.clone() };
        let requests = RequestSet::encode(&target, &specs, &[], per_conn == Some(1)).map_err(|e| e.to_string())?;
        let spec = LoadSpec {
            target,
            requests,
            connections,
            threads: settings.threads.min(connections),
            duration: Some(settings.duration),
            count: None,
            warmup: settings.warmup,
            timeout: Duration::from_secs(2),
            per_conn,
            pipeline,
            rate,
            ramp_up: Duration::ZERO,
            server_pid: pid,
            progress: false,
        };
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }
}

/// Opens up to `n` idle connections; stops early when the server stops accepting (three connects
/// in a row time out), since a full accept queue makes every further attempt wait, or when `stop`
/// is set.
pub fn open_idle(addr: SocketAddr, n: usize, stop: &AtomicBool) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    let mut failures_in_a_row = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while streams.len() < n && failures_in_a_row < 3 && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => {
                failures_in_a_row = 0;
                streams.push(stream);
            }
            Err(_) => failures_in_a_row += 1,
        }
    }
    streams
}

/// What became of the idle connections of `idle-10k` by the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleCensus {
    /// Connected and neither closed nor answered: held by the server (or waiting in its accept
    /// queue, which the client cannot tell apart).
    pub open: usize,
    /// Answered `503` (a bounded server turning the client away).
    pub refused: usize,
    /// Closed or reset by the server without a 503.
    pub closed: usize,
    /// Never connected: the server's accept queue was full.
    pub unconnected: usize,
}

impl IdleCensus {
    /// Looks at each idle connection without blocking.
    pub fn take(streams: &[TcpStream]) -> IdleCensus {
        let mut census =
            IdleCensus { unconnected: IDLE_CONNECTIONS.saturating_sub(streams.len()), ..IdleCensus::default() };
        for stream in streams {
            let mut head = [0u8; 12];
            let seen = stream.set_nonblocking(true).and_then(|()| stream.peek(&mut head));
            match seen {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => census.open += 1,
                Ok(n) if n > 0 && head[..n].starts_with(b"HTTP/1.1 503") => census.refused += 1,
                _ => census.closed += 1,
            }
        }
        census
    }

    /// One line for the report, such as "idle connections: 130 of 10,000 still open, 9,870
    /// refused with 503".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} of {} still open", group(self.open as u64), group(IDLE_CONNECTIONS as u64))];
        if self.refused > 0 {
            parts.push(format!("{} refused with 503", group(self.refused as u64)));
        }
        if self.closed > 0 {
            parts.push(format!("{} closed by the server", group(self.closed as u64)));
        }
        if self.unconnected > 0 {
            parts.push(format!("{} never connected (accept queue full)", group(self.unconnected as u64)));
        }
        format!("idle connections: {}", parts.join(", "))
    }
}

/// A temporary docroot with the 64 KiB file of the `static` scenario; removed when dropped.
pub struct Docroot {
    /// The folder, deleted with it.
    dir: tempfile::TempDir,
}

impl Docroot {
    /// Writes the folder and its files.
    pub fn create() -> Result<Docroot, String> {
        let dir = tempfile::Builder::new()
            .prefix("flash-compare-")
            .tempdir()
            .map_err(|e| format!("cannot create a docroot for the static scenario: {e}"))?;
        // Bytes that do not compress, so that no layer can cheat on them.
        let mut rng = crate::request::Rng::new(64);
        let data: Vec<u8> = (0..64 * 1024).map(|_| rng.next_u64() as u8).collect();
        std::fs::write(dir.path().join(STATIC_FILE), data).map_err(|e| format!("cannot write the static file: {e}"))?;
        std::fs::write(dir.path().join("index.html"), "<!doctype html><title>Flash</title>\n")
            .map_err(|e| format!("cannot write the docroot's index.html: {e}"))?;
        Ok(Docroot { dir })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_picked_by_name() {
        assert_eq!(Scenario::pick(&[]).unwrap(), SCENARIOS.to_vec());
        let picked = Scenario::pick(&["static".into(), " hello".into()]).unwrap();
        assert_eq!(picked.iter().map(|s| s.name).collect::<Vec<_>>(), ["static", "hello"]);
        assert!(Scenario::pick(&["nope".into()]).unwrap_err().contains("hello-close"));
    }

    #[test]
    fn every_scenario_has_a_valid_load() {
        let settings = Settings { duration: Duration::from_secs(1), warmup: Duration::ZERO, runs: 1, threads: 1 };
        for scenario in &SCENARIOS {
            scenario.spec("127.0.0.1:1".parse().unwrap(), &settings, None).unwrap();
        }
    }

    #[test]
    fn the_replog_preset_writes_with_its_write_concern() {
        let replog: Vec<&Scenario> = SCENARIOS.iter().filter(|s| s.for_replog()).collect();
        assert_eq!(replog.iter().map(|s| s.name).collect::<Vec<_>>(), ["replog-w1", "replog-w3"]);
        assert!(replog.iter().all(|s| s.flash_only), "no reference serves the replicated log's API");
        let settings = Settings { duration: Duration::from_secs(1), warmup: Duration::ZERO, runs: 1, threads: 1 };
        let spec = replog[1].spec("127.0.0.1:1".parse().unwrap(), &settings, None).unwrap();
        assert_eq!((spec.connections, spec.target.path.as_str()), (64, "/messages?w=3"));
        assert!(!SCENARIOS.iter().filter(|s| !s.for_replog()).any(|s| s.name.starts_with("replog")));
    }

    #[test]
    fn idle_connections_are_told_apart() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut accepted: Vec<TcpStream> = (0..3).map(|_| listener.accept().unwrap().0).collect();
        accepted[0].write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").unwrap();
        accepted[1].shutdown(std::net::Shutdown::Both).unwrap();
        // What the server sent must have arrived before the census: poll for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let census = loop {
            let census = IdleCensus::take(&clients);
            if census.refused + census.closed == 2 || Instant::now() > deadline {
                break census;
            }
            // A pause between checks of a bounded poll (the deadline above), not a guess.
            std::thread::sleep(Duration::from_millis(5));
        };
        let expected = IdleCensus { open: 1, refused: 1, closed: 1, unconnected: IDLE_CONNECTIONS - 3 };
        assert_eq!(census, expected);
        assert_eq!(
            census.describe(),
            "idle connections: 1 of 10,000 still open, 1 refused with 503, 1 closed by the server, \
             9,997 never connected (accept queue full)"
        );
    }

    #[test]
    fn the_docroot_serves_the_static_file_and_goes_away() {
        let docroot = Docroot::create().unwrap();
        let path = docroot.path().to_path_buf();
        assert_eq!(std::fs::metadata(path.join(STATIC_FILE)).unwrap().len(), 64 * 1024);
        drop(docroot);
        assert!(!path.exists(), "the docroot is removed when dropped");
    }
}
