//! An event loop out of file descriptors must keep serving the clients it has: only they can
//! free a descriptor. (A loop that retries `accept` until it works never gets back to them.)
//!
//! The real binary runs under `ulimit -n 64` (through `sh`, so the limit is the server's alone,
//! and its hard limit too, so the server cannot raise it), and 100 clients queue in its backlog.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flash_common::client::Client;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The server process; killed if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn out_of_descriptors_it_still_serves_its_clients_and_stops() {
    let bin = env!("CARGO_BIN_EXE_flash-04-epoll");
    let child = Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" --port 0 --quiet", bin])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    let timeout = Duration::from_secs(10);
    let mut first = Client::connect(addr, timeout).unwrap();
    assert_eq!(first.get("/hello").unwrap().status, 200);

    // More clients than descriptors: the kernel completes their handshakes into the backlog,
    // and the server accepts until it has none left.
    let crowd: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect_timeout(&addr, timeout).unwrap()).collect();
    assert_eq!(first.get("/hello").unwrap().status, 200, "a client it had was not served while out of descriptors");
    drop(crowd);

    // The crowd has left (each closed socket frees one of the server's descriptors once it reads
    // the EOF), so newcomers from the backlog must be accepted and served again.
    let mut late = Client::connect(addr, timeout).unwrap();
    assert_eq!(late.get("/hello").unwrap().status, 200);
    assert_eq!(first.get("/hello").unwrap().status, 200);
    drop((first, late));

    kill(Pid::from_raw(server.0.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop within 10 s of SIGTERM");
        // A pause between checks of a bounded poll, not a guess at how long stopping takes.
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");
}
