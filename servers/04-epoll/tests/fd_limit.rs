//! An event loop out of file descriptors must keep serving the clients it has: only they can
//! free a descriptor. (A loop that retries `accept` until it works never gets back to them.)
//!
//! The real binary runs under `ulimit -n 64` (through `sh`, so the limit is the server's alone,
//! and its hard limit too, so the server cannot raise it), and 100 clients queue in its backlog.

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::process::ChildServer;

#[test]
fn out_of_descriptors_it_still_serves_its_clients_and_stops() {
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -n 64 && exec \"$0\" --port 0 --quiet", env!("CARGO_BIN_EXE_flash-04-epoll")]);
    let mut server = ChildServer::spawn(cmd, scratch.path());
    let addr = server.addr();
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

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
}
