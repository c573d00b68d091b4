//! The real binary, as deployed: it finds `flash-cgi` next to itself, a script's stderr lands in
//! the server's error log (its stderr) and never in the response, and SIGTERM stops it cleanly.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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
fn the_binary_runs_scripts_logs_their_stderr_and_stops_on_sigterm() {
    let cgi = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o755).open(cgi.path().join("talk.sh")).unwrap();
    f.write_all(b"#!/bin/sh\necho 'note from the script' >&2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n")
        .unwrap();
    drop(f);
    let child = Command::new(env!("CARGO_BIN_EXE_flash-02-fork-exec-cgi"))
        .args(["--port", "0", "--quiet", "--cgi-dir"])
        .arg(cgi.path())
        .current_dir(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    // The first line names the port; if the server fails instead, it exits and this reads EOF.
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("first line: {line:?}"));
    let mut client = Client::connect(addr.parse().unwrap(), Duration::from_secs(10)).unwrap();
    assert_eq!(client.get("/hello").unwrap().text(), "Hello, world!");
    let res = client.get("/cgi-bin/talk.sh").unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    drop(client);

    kill(Pid::from_raw(server.0.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop within 10 s of SIGTERM");
        // A pause between checks of a bounded poll, not a guess at how long stopping takes.
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("note from the script"), "the script's stderr is not in the error log: {log:?}");
}

#[test]
fn a_missing_cgi_dir_is_refused_before_listening() {
    // `output` waits for the exit: the server must refuse at once, never start serving.
    let out = Command::new(env!("CARGO_BIN_EXE_flash-02-fork-exec-cgi"))
        .args(["--port", "0", "--quiet", "--cgi-dir", "/no/such/cgi-bin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a bad --cgi-dir was accepted");
    assert!(!stdout.contains("listening"), "it said it was listening: {stdout:?}");
    assert!(stderr.contains("--cgi-dir") && stderr.contains("/no/such/cgi-bin"), "unclear error: {stderr:?}");
}
