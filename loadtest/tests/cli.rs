//! The `flash-load` binary refuses a bad command line before it sends any load: a run whose
//! results could not be saved is not started, so that nothing measured is lost at the end. Every
//! run here is asked for far longer than the test waits, so a binary that started the load anyway
//! fails on the exit deadline instead of passing late.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Behaviour, TestServer};
use flash_testkit::child::run_to_exit;

/// Runs `flash-load URL -c 2 -d 60s ARGS` and returns its exit code and stderr, failing if it has
/// not exited within 10 s.
fn refused(url: &str, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let long = ["-c", "2", "-d", "60s"].map(std::ffi::OsStr::new);
    exit_of(url, &[&long[..], args].concat())
}

/// Runs `flash-load URL ARGS` and returns its exit code and stderr, failing if it has not exited
/// within 10 s.
fn exit_of(url: &str, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-load"));
    cmd.arg(url).args(args);
    let (status, _, stderr) = run_to_exit(&mut cmd, Duration::from_secs(10));
    (status.code(), stderr)
}

#[test]
fn an_unwritable_json_path_is_refused_before_the_run() {
    let server = TestServer::start(Behaviour::Answer);
    let dir = tempfile::Builder::new().prefix("flash-load-json-").tempdir().unwrap();
    let missing_folder = dir.path().join("no-such-folder").join("out.json");
    for path in [missing_folder.as_path(), dir.path()] {
        let (code, stderr) = refused(&server.url(), &["--json".as_ref(), path.as_os_str()]);
        assert_eq!(code, Some(1), "{}: {stderr}", path.display());
        assert!(stderr.contains(&format!("--json {}", path.display())), "the flag and path are named: {stderr}");
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 0, "no load was sent");
    assert!(!missing_folder.parent().unwrap().exists(), "no folder was created");
}

#[test]
fn a_user_content_length_is_refused_naming_the_flag() {
    let server = TestServer::start(Behaviour::Answer);
    let (code, stderr) =
        refused(&server.url(), &["--body".as_ref(), "abc".as_ref(), "-H".as_ref(), "Content-Length: 3".as_ref()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("-H \"Content-Length: 3\""), "{stderr}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 0, "no load was sent");
}

/// Nobody listens: the report shows the connect errors, and the exit code says nothing was
/// measured, so a script does not take an empty run for a result.
#[test]
fn a_run_that_completes_nothing_exits_non_zero() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let (code, stderr) = exit_of(&url, &["-c", "1", "-d", "300ms"].map(std::ffi::OsStr::new));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("nothing was measured"), "{stderr}");
}

/// More connections than the process may open files (`-c 200` under `ulimit -n 64`, set by `sh`
/// for this run only): the run ends at its deadline, reports the connections it really opened
/// and a CPU share it can measure, and says in one line what went wrong, naming `-c` and the
/// limit, with exit code 1: the load asked for was not applied. It used to retry every missing
/// connection every 10 ms, counting each failure as a connect error, and report 0% CPU.
#[test]
fn more_connections_than_file_descriptors_is_named() {
    let server = TestServer::start(Behaviour::Answer);
    let mut cmd = Command::new("sh");
    let url = server.url();
    let load = [env!("CARGO_BIN_EXE_flash-load"), &url, "-c", "200", "-d", "500ms"];
    cmd.args(["-c", "ulimit -n 64 && exec \"$@\"", "sh"]).args(load);
    let began = Instant::now();
    let (status, stdout, stderr) = run_to_exit(&mut cmd, Duration::from_secs(30));
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "a 500 ms run took {took:?}");
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    let named: Vec<&str> = stderr.lines().filter(|l| l.contains("too many open files")).collect();
    assert_eq!(named.len(), 1, "one line names the cause: {stderr}");
    assert!(named[0].contains("-c 200") && named[0].contains("ulimit -n") && named[0].contains("64"), "{stderr}");
    let number_before = |marker: &str| -> u64 {
        let head = &stdout[..stdout.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {stdout}"))];
        head.rsplit(' ').next().unwrap().replace(',', "").parse().unwrap()
    };
    let opened = number_before(" connections opened");
    assert!((1..64).contains(&opened), "{opened} connections opened under a limit of 64: {stdout}");
    let cpu_line = stdout.lines().find(|l| l.contains("load generator threads")).unwrap();
    let busy: f64 = cpu_line.split("threads ").nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
    assert!(busy > 0.0 && busy <= 100.0, "one thread was {busy}% busy: {stdout}");
    assert!(server.requests.load(Ordering::SeqCst) > 0, "the connections that opened were used");
}
