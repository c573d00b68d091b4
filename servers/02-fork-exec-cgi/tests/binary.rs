//! The real binary, as deployed: it finds `flash-cgi` next to itself, a script's stderr lands in
//! the server's error log (its stderr) and never in the response, and SIGTERM stops it cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

use flash_common::client::Client;
use flash_conformance::process::ChildServer;

#[test]
fn the_binary_runs_scripts_logs_their_stderr_and_stops_on_sigterm() {
    let cgi = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    flash_conformance::script::install(
        &cgi.path().join("talk.sh"),
        "#!/bin/sh\necho 'note from the script' >&2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n",
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-02-fork-exec-cgi"));
    cmd.args(["--port", "0", "--quiet", "--cgi-dir"]).arg(cgi.path()).current_dir(work.path());
    let mut server = ChildServer::spawn(cmd, work.path());
    let mut client = Client::connect(server.addr(), Duration::from_secs(10)).unwrap();
    assert_eq!(client.get("/hello").unwrap().text(), "Hello, world!");
    let res = client.get("/cgi-bin/talk.sh").unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    drop(client);

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let log = server.stderr_log();
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
