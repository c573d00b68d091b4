//! Server 02 as a CGI server: the bundled scripts and a few written for a case, each run through
//! a real fork and exec. Servers run in-process on 127.0.0.1:0 (`TestServer`); no case sleeps to
//! synchronize: each waits for a response, a file or a process state, with a deadline.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use flash_02_fork_exec_cgi::serve;
use flash_common::client::{Client, ClientResponse};
use flash_common::Config;
use flash_conformance::wait::until_true;
use flash_conformance::{TestServer, Wire};

/// The longest any one expectation may take.
const DEADLINE: Duration = Duration::from_secs(10);

fn client(server: &TestServer) -> Client {
    Client::connect(server.addr(), DEADLINE).expect("cannot connect")
}

/// Writes an executable script into `dir` (see `flash_conformance::script` for why not with
/// `std::fs::write`: these tests' servers fork on other threads).
fn script(dir: &Path, name: &str, body: &str) {
    flash_conformance::script::install(&dir.join(name), body);
}

/// A server whose `--cgi-dir` is a fresh folder filled by `setup`.
fn server_with_scripts(
    setup: impl FnOnce(&Path),
    configure: impl FnOnce(&mut Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("cannot create a temporary folder");
    setup(dir.path());
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(serve, move |c| {
        c.cgi_dir = Some(path);
        configure(c);
    });
    (server, dir)
}

/// The `NAME=value` lines `env.sh` prints.
fn variables(res: &ClientResponse) -> HashMap<String, String> {
    assert_eq!(res.status, 200, "{}", res.text());
    res.text().lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn env_script_sees_the_rfc_3875_meta_variables() {
    let server = TestServer::start(serve);
    let mut c = client(&server);
    let local_port = c.stream().local_addr().unwrap().port().to_string();
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Custom", "a b"), ("X-Custom", "c")];
    let res = c.request("POST", "/cgi-bin/env.sh/extra/pa%20th?q=1&r=two", &headers, b"x=1&y=2").unwrap();
    let v = variables(&res);
    let docroot = Config::for_tests().docroot().canonicalize().unwrap();
    let port = server.addr().port().to_string();
    let want = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "flash"),
        ("SERVER_PORT", &port),
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", "/cgi-bin/env.sh"),
        ("PATH_INFO", "/extra/pa th"),
        ("PATH_TRANSLATED", &format!("{}/extra/pa th", docroot.display())),
        ("QUERY_STRING", "q=1&r=two"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", &local_port),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("CONTENT_LENGTH", "7"),
        ("HTTP_X_CUSTOM", "a b, c"),
        ("HTTP_HOST", "flash"),
    ];
    for (name, value) in want {
        assert_eq!(v.get(name).map(String::as_str), Some(value), "{name} in:\n{}", res.text());
    }
    assert!(v["SERVER_SOFTWARE"].starts_with("flash/"), "{}", res.text());
    // The body's fields are CONTENT_*, never HTTP_*; the application's settings stay private.
    for absent in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "FLASH_DOCROOT", "FLASH_RESULTS_DIR"] {
        assert!(!v.contains_key(absent), "{absent} in:\n{}", res.text());
    }
    // A GET without path info or query: PATH_INFO and PATH_TRANSLATED unset, QUERY_STRING empty.
    let v = variables(&c.get("/cgi-bin/env.sh").unwrap());
    assert!(!v.contains_key("PATH_INFO") && !v.contains_key("PATH_TRANSLATED") && !v.contains_key("CONTENT_LENGTH"));
    assert_eq!(v.get("QUERY_STRING").map(String::as_str), Some(""));
    drop(c);
    server.stop();
}

#[test]
fn httpoxy_the_proxy_header_never_becomes_http_proxy() {
    let server = TestServer::start(serve);
    let res = client(&server)
        .request("GET", "/cgi-bin/env.sh", &[("Proxy", "http://evil.example:8080"), ("X-Ok", "1")], b"")
        .unwrap();
    let v = variables(&res);
    assert!(!v.contains_key("HTTP_PROXY"), "HTTP_PROXY was set:\n{}", res.text());
    assert!(!res.text().contains("evil.example"), "the Proxy value reached the script:\n{}", res.text());
    assert_eq!(v.get("HTTP_X_OK").map(String::as_str), Some("1"));
    server.stop();
}

#[test]
fn status_404_script_gives_404() {
    let server = TestServer::start(serve);
    let mut c = client(&server);
    let res = c.get("/cgi-bin/status404.sh/missing").unwrap();
    assert_eq!(res.status, 404);
    assert_eq!(res.text(), "No such thing here: /missing\n");
    // The connection survives a CGI response: it was framed with Content-Length.
    assert_eq!(res.header("content-length"), Some("29"));
    assert_eq!(c.get("/hello").unwrap().text(), "Hello, world!");
    drop(c);
    server.stop();
}

#[test]
fn location_gives_local_and_client_redirects() {
    let server = TestServer::start(serve);
    let mut c = client(&server);
    // A local redirect is followed inside the server: the client sees /hello's answer.
    let res = c.get("/cgi-bin/redirect.sh?to=/hello").unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "Hello, world!"));
    // A client redirect is a 302 with the script's Location.
    let res = c.get("/cgi-bin/redirect.sh").unwrap();
    assert_eq!(res.status, 302);
    assert_eq!(res.header("location"), Some(format!("http://flash:{}/hello", server.addr().port()).as_str()));
    drop(c);
    server.stop();
}

#[test]
fn nph_script_writes_its_own_status_line_and_the_connection_closes() {
    let server = TestServer::start(serve);
    let mut wire = Wire::connect(server.addr());
    let res = wire.roundtrip("GET /cgi-bin/nph-hello.sh HTTP/1.1\r\nHost: flash\r\n\r\n");
    res.assert_status(200);
    assert_eq!(res.header("x-nph"), Some("yes"));
    assert_eq!(res.text(), "Hello from an nph script\n");
    assert!(res.says_close());
    wire.expect_closed();
    server.stop();
}

#[test]
fn python_form_handler_reads_the_posted_form() {
    let server = TestServer::start(serve);
    let mut c = client(&server);
    let form = b"name=Ada+Lovelace&colour=%3Cblue%3E";
    let res =
        c.request("POST", "/cgi-bin/form.py", &[("Content-Type", "application/x-www-form-urlencoded")], form).unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.text().contains("<li>name = Ada Lovelace</li><li>colour = &lt;blue&gt;</li>"), "{}", res.text());
    assert_eq!(c.get("/cgi-bin/form.py").unwrap().status, 200);
    assert_eq!(c.request("PUT", "/cgi-bin/form.py", &[], b"x").unwrap().status, 405);
    drop(c);
    server.stop();
}

#[test]
fn looping_script_is_killed_at_the_timeout_with_504() {
    let (server, _dir) = server_with_scripts(
        |dir| {
            // Its own child must die too: the kill is for the whole process group.
            script(dir, "stuck.sh", "#!/bin/sh\nsleep 600 &\necho $! > sleeper.pid\nwait\n");
            let bundled = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("cgi-bin/loop.sh"));
            script(dir, "loop.sh", &bundled.unwrap());
        },
        |c| c.cgi_timeout = Duration::from_secs(1),
    );
    let mut c = client(&server);
    let started = Instant::now();
    let res = c.get("/cgi-bin/loop.sh").unwrap();
    assert_eq!(res.status, 504, "{}", res.text());
    assert!(started.elapsed() >= Duration::from_millis(500), "504 after {:?}, before the timeout", started.elapsed());
    assert_eq!(c.get("/cgi-bin/stuck.sh").unwrap().status, 504);
    let pid = std::fs::read_to_string(_dir.path().join("sleeper.pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    // Killed, then reaped by init (or a zombie waiting for it): either way, not running.
    until_true("the script's own child to be killed", DEADLINE, || {
        std::fs::read_to_string(&stat)
            .map_or(true, |s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
    });
    assert_eq!(c.get("/hello").unwrap().text(), "Hello, world!");
    drop(c);
    server.stop();
}

#[test]
fn dying_or_babbling_scripts_give_502_and_the_server_goes_on() {
    let (server, _dir) = server_with_scripts(
        |dir| {
            script(dir, "silent.sh", "#!/bin/sh\nexit 3\n");
            script(dir, "crash.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n'\nkill -SEGV $$\n");
            script(dir, "garbage.sh", "#!/bin/sh\necho 'this is not a header'\necho\n");
            script(
                dir,
                "inject.sh",
                "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-A: 1\\rSet-Cookie: evil=1\\r\\n\\r\\n'\n",
            );
            script(dir, "noshebang.sh", "echo hi\n");
        },
        |_| {},
    );
    let mut c = client(&server);
    for name in ["silent.sh", "crash.sh", "garbage.sh", "inject.sh", "noshebang.sh"] {
        let res = c.get(&format!("/cgi-bin/{name}")).unwrap();
        assert_eq!(res.status, 502, "{name}: {}", res.text());
        assert!(res.header("set-cookie").is_none());
    }
    assert_eq!(c.get("/hello").unwrap().text(), "Hello, world!");
    drop(c);
    server.stop();
}

#[test]
fn script_paths_cannot_leave_the_cgi_dir() {
    let outside = tempfile::tempdir().unwrap();
    script(outside.path(), "outside.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nescaped'\n");
    let target = outside.path().join("outside.sh");
    let (server, _dir) = server_with_scripts(
        |dir| {
            std::os::unix::fs::symlink(&target, dir.join("link.sh")).unwrap();
            std::fs::write(dir.join("plain.txt"), "not a program").unwrap();
            std::fs::create_dir(dir.join("sub")).unwrap();
            script(
                &dir.join("sub"),
                "ok.sh",
                "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"$SCRIPT_NAME\"\n",
            );
        },
        |_| {},
    );
    let mut c = client(&server);
    for (path, status) in [
        ("/cgi-bin/link.sh", 403),
        ("/cgi-bin/../cgi-bin/sub/ok.sh", 403),
        ("/cgi-bin/%2e%2e/Cargo.toml", 403),
        ("/cgi-bin/sub/%2E%2E/plain.txt", 403),
        ("/cgi-bin/plain.txt", 403),
        ("/cgi-bin/sub", 403),
        ("/cgi-bin/", 403),
        ("/cgi-bin/missing.sh", 404),
    ] {
        let res = c.get(path).unwrap();
        assert_eq!(res.status, status, "{path}: {}", res.text());
        assert!(!res.text().contains("escaped"), "{path} ran a script outside --cgi-dir");
    }
    let res = c.get("/cgi-bin/sub/ok.sh").unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "/cgi-bin/sub/ok.sh"));
    drop(c);
    server.stop();
}

#[test]
fn only_stdin_stdout_and_stderr_reach_a_script() {
    let (server, _dir) = server_with_scripts(
        |dir| {
            // `ls` lists the shell's descriptors (a `$(...)` would add a pipe of its own).
            script(dir, "fds.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nls -l /proc/$$/fd/\n");
        },
        |_| {},
    );
    let res = client(&server).get("/cgi-bin/fds.sh").unwrap();
    assert_eq!(res.status, 200);
    let text = res.text();
    for line in text.lines().filter(|l| l.contains(" -> ")) {
        let (left, target) = line.split_once(" -> ").unwrap_or((line, ""));
        let fd = left.rsplit(' ').next().unwrap_or("");
        // A shell may hold its own script open; anything else (the listener, a client's socket,
        // another request's pipe) is a leak.
        let allowed = matches!(fd, "0" | "1" | "2") || target.ends_with("fds.sh");
        assert!(allowed, "descriptor {fd} -> {target} leaked into the script:\n{text}");
    }
    assert!(text.lines().any(|l| l.contains(" 1 -> pipe:")), "stdout is not a pipe:\n{text}");
    server.stop();
}

#[test]
fn a_large_body_streams_through_a_script_that_answers_while_it_reads() {
    let (server, _dir) = server_with_scripts(
        |dir| {
            script(dir, "cat.sh", "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat\n")
        },
        |_| {},
    );
    let mut c = client(&server);
    // Without a body, stdin is at end-of-file at once: `cat` ends instead of waiting for the timeout.
    let started = Instant::now();
    let res = c.get("/cgi-bin/cat.sh").unwrap();
    assert_eq!((res.status, res.body.len()), (200, 0));
    assert!(started.elapsed() < Duration::from_secs(5), "an empty stdin was held open for {:?}", started.elapsed());
    let body: Vec<u8> = (0..2u32 << 20).map(|i| (i % 253) as u8).collect();
    let res = c.request("POST", "/cgi-bin/cat.sh", &[], &body).unwrap();
    assert_eq!(res.status, 200);
    assert!(res.body == body, "got {} bytes back, not the {} sent", res.body.len(), body.len());
    drop(c);
    server.stop();
}

#[test]
fn graceful_shutdown_finishes_a_script_in_flight() {
    let (server, dir) = server_with_scripts(
        |dir| {
            nix::unistd::mkfifo(&dir.join("release"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            script(
                dir,
                "held.sh",
                "#!/bin/sh\n: > started\nread x < release\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone'\n",
            );
        },
        |_| {},
    );
    let mut wire = Wire::connect(server.addr());
    wire.send("GET /cgi-bin/held.sh HTTP/1.1\r\nHost: flash\r\n\r\n");
    until_true("the script to start", DEADLINE, || dir.path().join("started").exists());
    server.trigger_shutdown();
    // Opening the FIFO waits for the script's end; the line lets it answer.
    std::fs::OpenOptions::new().write(true).open(dir.path().join("release")).unwrap().write_all(b"go\n").unwrap();
    let res = wire.response();
    res.assert_status(200);
    assert_eq!(res.text(), "done");
    wire.expect_closed();
    server.stop();
}
