//! The stats job service over real sockets: the original checker's replay of the 114 cases,
//! and the job lifecycle, written once and run against every server that wants them.
//!
//! `flash_stats` tests its `Service` directly; these functions test what a client sees: the
//! same API through a server's connection model, its framing, its threads or its event loop.
//! A server's `tests/stats.rs` is one line, [`stats_suite!`](crate::stats_suite), which runs
//! them all with its `serve` function (and, for `kill -9`, its binary), so no server carries a
//! copy. The cases, the comparison and the tables of bad input are `flash_stats::checker`'s,
//! shared with the service's own tests.
//!
//! [`replay_all`] does what the assignment's checker does (`test_webserver.py`, with
//! `requests`): for each case it POSTs the input on a fresh connection, then polls
//! `get_results` every 0.2 s until the job is done, insists that every poll is answered 200,
//! and compares `data` with the expected output within 0.01 (DeepDiff's `math_epsilon`). The
//! checker waited at most a second per job; a loaded 2-core CI machine gets [`JOB_DEADLINE`].
//! The nine endpoints are replayed at once, one client thread each, so the replay takes about
//! as long as the longest endpoint's 20 cases rather than all 114 one after another.
//!
//! Every wait is a poll under a deadline; the only pause is the checker's own 0.2 s interval
//! (and a shorter one while waiting for `num_jobs` to drain), never a sleep that stands in for
//! a condition.

/// Expands to one `#[test]` per check of this module, run against the server whose `serve`
/// function and binary are given, so that every server that serves the stats API is held to
/// the same checks, and no server's copy can drift from another's:
///
/// ```ignore
/// flash_conformance::stats_suite!(flash_04_epoll::serve, env!("CARGO_BIN_EXE_flash-04-epoll"));
/// ```
#[macro_export]
macro_rules! stats_suite {
    ($serve:path, $binary:expr $(,)?) => {
        #[test]
        fn all_114_original_cases_pass() {
            $crate::stats::all_114_cases_pass($serve);
        }

        #[test]
        fn the_checker_catches_a_wrong_answer() {
            $crate::stats::the_checker_catches_a_wrong_answer($serve);
        }

        #[test]
        fn five_hundred_concurrent_jobs_all_finish_and_are_listed() {
            $crate::stats::five_hundred_concurrent_jobs($serve);
        }

        #[test]
        fn graceful_shutdown_refuses_new_jobs_and_drains_the_queue() {
            $crate::stats::graceful_shutdown_drains($serve);
        }

        #[test]
        fn invalid_job_ids_get_an_error_with_status_200() {
            $crate::stats::invalid_job_ids($serve);
        }

        #[test]
        fn each_kind_of_bad_input_gets_a_400() {
            $crate::stats::bad_input_is_400($serve);
        }

        #[test]
        fn results_survive_a_restart() {
            $crate::stats::results_survive_a_restart($serve);
        }

        #[test]
        fn queued_jobs_survive_kill_9() {
            $crate::stats::queued_jobs_survive_kill_9(::std::path::Path::new($binary));
        }
    };
}

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flash_common::client::Client;
use flash_common::server::Serve;
use flash_demo::FlashApp;
use flash_stats::checker::{bad_inputs, cases_dir, compare, read_cases, BadInput, Case, INVALID_JOB_IDS};
use serde_json::{json, Value};

use crate::process::ChildServer;
use crate::server::TestServer;

/// The checker's pause between two polls of `get_results`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long one job may stay "running" before its case fails (the checker allowed 1 s on an
/// idle machine; the suite shares two cores with other tests).
pub const JOB_DEADLINE: Duration = Duration::from_secs(30);

/// The read/write timeout of every request, so that a silent server fails a case, not hangs it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The question every lifecycle test asks (any of the nine would do).
const QUESTION: &str = flash_stats::QUESTIONS[0].0;

/// What a replay found.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases replayed, per endpoint, in name order.
    pub endpoints: Vec<(String, usize)>,
    /// Cases whose answer matched.
    pub passed: usize,
    /// One line per case that did not: which case, and what went wrong.
    pub failures: Vec<String>,
    /// The most polls any one case needed before its job was done.
    pub most_polls: usize,
}

impl Report {
    /// How many cases were replayed.
    pub fn total(&self) -> usize {
        self.endpoints.iter().map(|(_, n)| n).sum()
    }

    /// Asserts that exactly `expected` cases were replayed and all passed, listing every
    /// failure otherwise.
    #[track_caller]
    pub fn assert_all_passed(&self, expected: usize) {
        assert!(
            self.failures.is_empty(),
            "{} of {} cases failed:\n{}",
            self.failures.len(),
            self.total(),
            self.failures.join("\n")
        );
        assert_eq!(self.total(), expected, "cases replayed, per endpoint: {:?}", self.endpoints);
        assert_eq!(self.passed, expected);
    }
}

/// The 114 original cases, replayed against a fresh server as the original checker does: all
/// must pass.
pub fn all_114_cases_pass(serve: Serve) {
    let server = TestServer::start(serve);
    replay_all(server.addr(), &cases_dir()).assert_all_passed(114);
    server.stop();
}

/// Replays every case under `cases_dir` against the server at `addr` as the original checker
/// does, one client thread per endpoint. Never panics on a wrong answer: each becomes a line
/// of the report, so one run shows every case that broke.
pub fn replay_all(addr: SocketAddr, cases_dir: &Path) -> Report {
    let cases = match read_cases(cases_dir) {
        Ok(cases) => cases,
        Err(e) => return Report { failures: vec![format!("cannot read the cases: {e}")], ..Report::default() },
    };
    let endpoints: Vec<String> =
        cases.iter().map(|c| c.endpoint.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let outcomes: Vec<(String, Vec<Result<usize, String>>)> = std::thread::scope(|s| {
        let clients: Vec<_> = endpoints
            .iter()
            .map(|endpoint| {
                let mine: Vec<&Case> = cases.iter().filter(|c| &c.endpoint == endpoint).collect();
                s.spawn(move || mine.into_iter().map(|case| replay_one(addr, case)).collect::<Vec<_>>())
            })
            .collect();
        endpoints
            .iter()
            .zip(clients)
            .map(|(endpoint, client)| {
                let results =
                    client.join().unwrap_or_else(|_| vec![Err(format!("{endpoint}: client thread panicked"))]);
                (endpoint.clone(), results)
            })
            .collect()
    });
    let mut report = Report::default();
    for (endpoint, results) in outcomes {
        report.endpoints.push((endpoint, results.len()));
        for result in results {
            match result {
                Ok(polls) => {
                    report.passed += 1;
                    report.most_polls = report.most_polls.max(polls);
                }
                Err(failure) => report.failures.push(failure),
            }
        }
    }
    report
}

/// One case, as the checker runs it; returns how many polls it took.
fn replay_one(addr: SocketAddr, case: &Case) -> Result<usize, String> {
    let name = format!("{} case {}", case.endpoint, case.n);
    let body = serde_json::to_vec(&case.input).map_err(|e| format!("{name}: {e}"))?;
    let (status, answer) =
        request(addr, "POST", &format!("/api/{}", case.endpoint), &body).map_err(|e| format!("{name}: POST: {e}"))?;
    if status != 200 {
        return Err(format!("{name}: POST answered {status}: {answer}"));
    }
    let id = answer["job_id"].as_str().ok_or_else(|| format!("{name}: no job_id in {answer}"))?;
    let started = Instant::now();
    let mut polls = 0;
    loop {
        polls += 1;
        let (status, answer) = request(addr, "GET", &format!("/api/get_results/{id}"), b"")
            .map_err(|e| format!("{name}: poll {polls} of {id}: {e}"))?;
        if status != 200 {
            return Err(format!("{name}: poll {polls} of {id} answered {status}: {answer}"));
        }
        match answer["status"].as_str() {
            Some("done") => return compare(&answer["data"], &case.expected, &format!("{name}: data")).map(|()| polls),
            Some("running") if started.elapsed() < JOB_DEADLINE => std::thread::sleep(POLL_INTERVAL),
            Some("running") => return Err(format!("{name}: {id} still running after {JOB_DEADLINE:?}")),
            _ => return Err(format!("{name}: {id}: unexpected answer {answer}")),
        }
    }
}

/// One request on a fresh connection (as Python's `requests.get`/`post` make), its answer
/// parsed as JSON.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(u16, Value), String> {
    let mut client = Client::connect(addr, REQUEST_TIMEOUT).map_err(|e| format!("connect to {addr}: {e}"))?;
    send(&mut client, method, path, body)
}

/// One request on an open connection, its answer parsed as JSON.
fn send(client: &mut Client, method: &str, path: &str, body: &[u8]) -> Result<(u16, Value), String> {
    let headers: &[(&str, &str)] = if method == "POST" { &[("Content-Type", "application/json")] } else { &[] };
    let res = client.request(method, path, headers, body).map_err(|e| format!("{method} {path}: {e}"))?;
    let value = serde_json::from_slice(&res.body).map_err(|e| {
        format!("{method} {path}: answered {} with a body that is not JSON ({e}): {}", res.status, res.text())
    })?;
    Ok((res.status, value))
}

/// A request that must succeed at the HTTP level; its status and JSON answer.
#[track_caller]
fn call(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    request(addr, method, path, body).unwrap_or_else(|e| panic!("{e}"))
}

/// POSTs a job on `client` and returns its id, failing unless the answer is a job id.
#[track_caller]
fn submit(client: &mut Client, endpoint: &str, body: &Value) -> String {
    let (status, answer) = send(client, "POST", &format!("/api/{endpoint}"), body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "POST /api/{endpoint}: {answer}");
    let id = answer["job_id"].as_str().unwrap_or_else(|| panic!("no job_id: {answer}"));
    assert!(id.starts_with("job_id_"), "{answer}");
    id.to_string()
}

/// A keep-alive connection to `addr`.
#[track_caller]
fn connect(addr: SocketAddr) -> Client {
    Client::connect(addr, REQUEST_TIMEOUT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Polls `get_results` until the job is done and returns the whole answer; every poll must be
/// answered 200 with "running" or "done".
#[track_caller]
fn wait_done(addr: SocketAddr, id: &str) -> Value {
    let mut client = connect(addr);
    crate::wait::until(&format!("{id} to be done"), JOB_DEADLINE, || {
        let (status, answer) =
            send(&mut client, "GET", &format!("/api/get_results/{id}"), b"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "{id}: {answer}");
        match answer["status"].as_str() {
            Some("done") => Some(answer),
            Some("running") => None,
            _ => panic!("{id}: unexpected answer {answer}"),
        }
    })
}

/// Polls `num_jobs` until it is 0.
#[track_caller]
fn wait_idle(addr: SocketAddr) {
    crate::wait::until_true("the stats service to have no jobs pending", JOB_DEADLINE, || {
        let (status, answer) = call(addr, "GET", "/api/num_jobs", b"");
        assert_eq!(status, 200, "{answer}");
        answer["num_jobs"] == 0
    });
}

/// `/api/jobs` as (id, state) pairs, in the order listed.
#[track_caller]
fn listed_jobs(addr: SocketAddr) -> Vec<(String, String)> {
    let (status, answer) = call(addr, "GET", "/api/jobs", b"");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "done", "{answer}");
    let entries = answer["data"].as_array().unwrap_or_else(|| panic!("no data list: {answer}"));
    entries
        .iter()
        .map(|entry| {
            let object = entry.as_object().filter(|o| o.len() == 1).unwrap_or_else(|| panic!("entry {entry}"));
            let (id, state) = object.iter().next().expect("one pair");
            (id.clone(), state.as_str().unwrap_or_else(|| panic!("state of {id}: {state}")).to_string())
        })
        .collect()
}

/// Every case's (endpoint, input), cycled through by the tests that need many valid jobs.
fn inputs() -> Vec<(String, Value)> {
    read_cases(&cases_dir()).expect("the bundled cases").into_iter().map(|c| (c.endpoint, c.input)).collect()
}

/// The checker can fail: a copy of two endpoints' cases with one expected value moved by 0.02
/// must be reported as exactly that one failure, or a server could "pass" a checker that
/// passes everything.
pub fn the_checker_catches_a_wrong_answer(serve: Serve) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for endpoint in ["global_mean", "state_mean"] {
        for side in ["input", "output"] {
            let (from, to) = (cases_dir().join(endpoint).join(side), dir.path().join(endpoint).join(side));
            std::fs::create_dir_all(&to).expect("a case folder");
            for entry in std::fs::read_dir(&from).expect("the bundled cases") {
                let entry = entry.expect("a case file");
                std::fs::copy(entry.path(), to.join(entry.file_name())).expect("a copy of a case");
            }
        }
    }
    let out = dir.path().join("global_mean/output/out-3.json");
    let value: Value = serde_json::from_slice(&std::fs::read(&out).expect("out-3.json")).expect("JSON");
    let moved = value["global_mean"].as_f64().expect("a number") + 0.02;
    std::fs::write(&out, json!({ "global_mean": moved }).to_string()).expect("write out-3.json");

    let server = TestServer::start(serve);
    let report = replay_all(server.addr(), dir.path());
    server.stop();
    assert_eq!(report.total(), 29, "{:?}", report.endpoints);
    assert_eq!(report.passed, 28, "{:?}", report.failures);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(report.failures[0].starts_with("global_mean case 3:"), "{:?}", report.failures);
}

/// 500 jobs from four client threads at once: every id is unique, every job finishes, and
/// `/api/jobs` lists exactly `job_id_1` to `job_id_500`, all done.
pub fn five_hundred_concurrent_jobs(serve: Serve) {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 125;
    let server = TestServer::start(serve);
    let addr = server.addr();
    let inputs = inputs();
    let ids: Vec<String> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let inputs = &inputs;
                s.spawn(move || {
                    let mut client = connect(addr);
                    (0..PER_CLIENT)
                        .map(|n| {
                            let (endpoint, body) = &inputs[(c * PER_CLIENT + n) % inputs.len()];
                            submit(&mut client, endpoint, body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().expect("a client thread")).collect()
    });
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), CLIENTS * PER_CLIENT, "job ids must be unique");
    wait_idle(addr);
    for id in &ids {
        assert!(!wait_done(addr, id)["data"].is_null(), "{id} has no data");
    }
    let listed = listed_jobs(addr);
    let expected: Vec<(String, String)> =
        (1..=CLIENTS * PER_CLIENT).map(|n| (format!("job_id_{n}"), "done".to_string())).collect();
    assert_eq!(listed, expected);
    server.stop();
}

/// `GET /api/graceful_shutdown`: new jobs are refused with 503 and the exact error body, the
/// jobs already accepted still finish, `num_jobs` reaches 0, and results stay readable.
pub fn graceful_shutdown_drains(serve: Serve) {
    let server = TestServer::start(serve);
    let addr = server.addr();
    let mut client = connect(addr);
    let ids: Vec<String> = inputs().iter().cycle().take(200).map(|(e, b)| submit(&mut client, e, b)).collect();

    let (status, answer) = call(addr, "GET", "/api/graceful_shutdown", b"");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["status"] == "shutting down" || answer["status"] == "done", "{answer}");

    let body = json!({"question": QUESTION}).to_string();
    for endpoint in ["states_mean", "global_mean"] {
        let (status, answer) = call(addr, "POST", &format!("/api/{endpoint}"), body.as_bytes());
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer, json!({"status": "error", "reason": "shutting down"}));
    }
    wait_idle(addr);
    for id in &ids {
        wait_done(addr, id);
    }
    assert_eq!(listed_jobs(addr).len(), ids.len(), "the refused requests made no job");
    let (_, answer) = call(addr, "GET", "/api/graceful_shutdown", b"");
    assert_eq!(answer["status"], "done", "{answer}");
    server.stop();
}

/// Job ids that name no job get `{"status": "error", "reason": "Invalid job_id"}` with HTTP 200,
/// as the original checker expects.
pub fn invalid_job_ids(serve: Serve) {
    let server = TestServer::start(serve);
    for id in INVALID_JOB_IDS {
        let (status, answer) = call(server.addr(), "GET", &format!("/api/get_results/{id}"), b"");
        assert_eq!(status, 200, "{id}: {answer}");
        assert_eq!(answer, json!({"status": "error", "reason": "Invalid job_id"}), "{id}");
    }
    server.stop();
}

/// Each kind of bad input gets a 400 with a JSON reason that names the problem, and makes no
/// job; wrong methods get a 405 with `Allow`, unknown endpoints a 404.
pub fn bad_input_is_400(serve: Serve) {
    let server = TestServer::start(serve);
    let addr = server.addr();
    for BadInput { endpoint, body, reason } in bad_inputs() {
        let mut client = connect(addr);
        let res = client
            .request("POST", &format!("/api/{endpoint}"), &[("Content-Type", "application/json")], &body)
            .unwrap_or_else(|e| panic!("POST /api/{endpoint}: {e}"));
        assert_eq!(res.status, 400, "{endpoint} {body:?}: {}", res.text());
        assert_eq!(res.header("content-type"), Some("application/json"), "{endpoint}");
        let answer: Value = serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("{e}: {}", res.text()));
        assert_eq!(answer["status"], "error", "{answer}");
        let text = answer["reason"].as_str().unwrap_or_default();
        assert!(text.contains(reason), "{endpoint} {body:?}: {text:?} should say {reason:?}");
    }
    let mut client = connect(addr);
    for (method, path, allow) in [("GET", "/api/states_mean", "POST"), ("POST", "/api/jobs", "GET, HEAD")] {
        let res = client.request(method, path, &[], b"{}").unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(res.status, 405, "{method} {path}: {}", res.text());
        assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
    }
    let (status, _) = call(addr, "GET", "/api/no_such_statistic", b"");
    assert_eq!(status, 404);
    assert!(listed_jobs(addr).is_empty(), "a refused request made a job");
    let ok = json!({"question": QUESTION, "state": "Ohio"});
    assert_eq!(submit(&mut client, "state_mean", &ok), "job_id_1");
    server.stop();
}

/// Finished results survive a clean restart on the same results directory: `get_results`
/// answers the same bytes, `/api/jobs` lists them, and new jobs are numbered after them.
pub fn results_survive_a_restart(serve: Serve) {
    let dir = tempfile::tempdir().expect("a temporary results folder");
    let start = || {
        TestServer::start_app(
            serve,
            |_| {},
            |mut setup| {
                setup.flags.results_dir = dir.path().to_path_buf();
                Ok(Arc::new(FlashApp::launch(setup)?))
            },
        )
    };
    let inputs = inputs();
    let first = start();
    let mut client = connect(first.addr());
    let ids: Vec<String> = inputs.iter().take(10).map(|(e, b)| submit(&mut client, e, b)).collect();
    let answers: Vec<Value> = ids.iter().map(|id| wait_done(first.addr(), id)).collect();
    drop(client);
    first.stop();

    let second = start();
    for (id, answer) in ids.iter().zip(&answers) {
        assert_eq!(&wait_done(second.addr(), id), answer, "{id} after a restart");
    }
    assert_eq!(listed_jobs(second.addr()).len(), 10);
    let (endpoint, body) = &inputs[0];
    assert_eq!(submit(&mut connect(second.addr()), endpoint, body), "job_id_11", "new ids follow the old ones");
    second.stop();
}

/// `kill -9` with 200 jobs queued: after a new server starts on the same results folder, every
/// job that finished is `done` with its right answer, every other one carries an "interrupted"
/// error (none stays `running`, which a client would poll forever), a torn temporary file is
/// gone, and the next job is numbered after the highest.
///
/// The queue is made deterministic rather than raced: the server has one job thread, and the
/// test puts a FIFO where job 101 will write its temporary result file. Opening a FIFO for
/// writing blocks until a reader opens it, and none does, so job 101 stalls mid-write as on a
/// disk that hangs: jobs 1 to 100 finish, 101 is running and 102 to 300 wait in the queue,
/// whatever the machine's speed. The test waits for exactly that (`num_jobs` = 200), then kills.
pub fn queued_jobs_survive_kill_9(binary: &Path) {
    const JOBS: u64 = 300;
    const STALLED: u64 = 101;
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let results = scratch.path().join("results");
    let args = ["--job-threads", "1"];
    let first = ChildServer::start(binary, &results, scratch.path(), &args);
    // Created after the server started: a starting server deletes temporary files it finds.
    let stall = results.join(format!(".job_id_{STALLED}.json.tmp"));
    nix::unistd::mkfifo(&stall, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).expect("mkfifo");

    let cases = read_cases(&cases_dir()).expect("the bundled cases");
    let mut client = connect(first.addr());
    let submitted: Vec<(String, &Case)> =
        cases.iter().cycle().take(JOBS as usize).map(|c| (submit(&mut client, &c.endpoint, &c.input), c)).collect();
    drop(client);
    let numbered: Vec<String> = (1..=JOBS).map(|n| format!("job_id_{n}")).collect();
    assert!(submitted.iter().map(|(id, _)| id).eq(&numbered), "ids are handed out in order");
    crate::wait::until_true("jobs 1 to 100 done and the rest still pending", JOB_DEADLINE, || {
        let (status, answer) = call(first.addr(), "GET", "/api/num_jobs", b"");
        assert_eq!(status, 200, "{answer}");
        answer["num_jobs"] == JOBS - STALLED + 1
    });
    first.kill_9();
    // What a kill in the middle of writing leaves: a partial temporary file, not a FIFO (which
    // would stall the next server too).
    std::fs::remove_file(&stall).expect("remove the FIFO");
    std::fs::write(&stall, b"{\"status\": \"done\", \"da").expect("a torn temporary file");

    let second = ChildServer::start(binary, &results, scratch.path(), &args);
    let addr = second.addr();
    let listed = listed_jobs(addr);
    assert_eq!(listed.len(), JOBS as usize, "{listed:?}");
    for (n, ((id, state), (submitted_id, case))) in (1..).zip(listed.iter().zip(&submitted)) {
        assert_eq!(id, submitted_id);
        let (status, answer) = call(addr, "GET", &format!("/api/get_results/{id}"), b"");
        assert_eq!(status, 200, "{id}: {answer}");
        if n < STALLED {
            assert_eq!(state, "done", "{id}");
            assert_eq!(answer["status"], "done", "{id}: {answer}");
            let name = format!("{id} ({} case {}) after kill -9", case.endpoint, case.n);
            compare(&answer["data"], &case.expected, &name).unwrap_or_else(|e| panic!("{e}"));
        } else {
            assert_eq!(state, "error", "{id} was queued or running at the kill");
            assert_eq!(answer["status"], "error", "{id}: {answer}");
            let reason = answer["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("interrupted"), "{id}: {answer}");
        }
    }
    assert!(!stall.exists(), "the torn temporary file was left behind");
    let next = submit(&mut connect(addr), "global_mean", &json!({"question": QUESTION}));
    assert_eq!(next, format!("job_id_{}", JOBS + 1), "the job after the highest id");
    wait_done(addr, &next);
}
