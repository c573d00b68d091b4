//! A test server on a thread, shared by the integration tests: `std::net` and a thread per
//! connection, each built to show one behaviour (count, reset, garbage, silence, stall). It listens
//! on 127.0.0.1 port 0 and stops when dropped.

#![allow(dead_code)] // Each test crate uses a different part of this module.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How a test server treats each connection.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Answers every request with `ok`, honouring `Connection: close`.
    Answer,
    /// Waits for a request and closes with it unread, which makes the kernel send a reset.
    Reset,
    /// Answers every request with bytes that are not HTTP.
    Garbage,
    /// Reads requests and never answers.
    Silent,
    /// Answers each connection's first request with a body that has no length (HTTP/1.1 200, no
    /// `Content-Length`, not chunked), so that only the close ends it, and closes at once: the
    /// close and the last bytes usually reach the client together.
    CloseDelimited,
    /// Answers, but holds every answer while the clock is inside a stall window
    /// (`stall_ms` out of every `period_ms`, starting at `offset_ms` after the first request). The
    /// clock starts at the first request, not at the server's start, so that a load that starts
    /// late on a busy machine still meets the stall where the test put it.
    Stall { period_ms: u64, stall_ms: u64, offset_ms: u64 },
}

/// A test server on a thread, counting requests and connections; stops when dropped.
pub struct TestServer {
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Requests seen.
    pub requests: Arc<AtomicU64>,
    /// Connections accepted.
    pub connections: Arc<AtomicU64>,
    /// Set on drop so that every thread ends.
    stop: Arc<AtomicBool>,
    /// The accept loop.
    acceptor: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let first_request = Arc::new(OnceLock::new());
        let (r, c, s) = (requests.clone(), connections.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (r, s, first) = (r.clone(), s.clone(), first_request.clone());
                thread::spawn(move || serve(stream, behaviour, &r, &s, &first));
            }
        });
        TestServer { addr, requests, connections, stop, acceptor: Some(acceptor) }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hello", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // One connection wakes the blocked accept so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Serves one connection according to its behaviour; `first_request` is when the server saw its
/// first request on any connection (set by whichever connection sees it).
fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    requests: &AtomicU64,
    stop: &AtomicBool,
    first_request: &OnceLock<Instant>,
) {
    // A read timeout bounds every thread: it rechecks the stop flag at least this often.
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    if let Behaviour::Reset = behaviour {
        let mut byte = [0u8; 1];
        while !stop.load(Ordering::SeqCst) {
            match stream.peek(&mut byte) {
                Ok(0) => return,
                Ok(_) => break,
                Err(_) => continue,
            }
        }
        return; // Dropped with the request unread: the kernel answers with RST.
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut close = false;
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            buf.drain(..end + 4);
            requests.fetch_add(1, Ordering::SeqCst);
            first_request.get_or_init(Instant::now);
            close |= head.contains("connection: close");
            match behaviour {
                Behaviour::Answer | Behaviour::Stall { .. } => {
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
                    out.extend_from_slice(if close { &b"Connection: close\r\n\r\nok"[..] } else { &b"\r\nok"[..] });
                }
                Behaviour::Garbage => out.extend_from_slice(b"garbage\r\n\r\n"),
                Behaviour::CloseDelimited => {
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\nhello");
                    close = true;
                    break;
                }
                Behaviour::Silent | Behaviour::Reset => {}
            }
        }
        if let Behaviour::Stall { period_ms, stall_ms, offset_ms } = behaviour {
            // The stall is the behaviour under test (a server that freezes), not synchronization.
            let t = first_request.get().map_or(0, |t| t.elapsed().as_millis() as u64);
            if t >= offset_ms && (t - offset_ms) % period_ms < stall_ms {
                thread::sleep(Duration::from_millis(stall_ms - (t - offset_ms) % period_ms));
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if close {
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
    }
}
