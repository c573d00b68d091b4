//! Fuzzes the stats service's inputs, `flash_stats::Service::handle`, on every endpoint.
//!
//! The options byte picks the route (its low nibble: the nine job endpoints, `jobs`,
//! `num_jobs`, `get_results/ID`, `graceful_shutdown`, or any path under `/api/`) and the
//! method (its high nibble). For `get_results` and the free path, the data up to its first
//! newline is the rest of the path; the remainder is the body.
//!
//! The service runs its jobs inline (`inline_jobs`), so no thread outlives an input, in a
//! results folder under `$TMPDIR` (`fuzz/run.sh` points it at a scratch folder it removes). It
//! must never panic, and: every answer is JSON; no answer is a 500 (the table is there and the
//! disk works, so a 500 is a bug); 405 says what is allowed; a job that was accepted is done by
//! the time its id is answered (inline) and `get_results` gives its data. Accepted jobs' files
//! are deleted once checked, and the service is replaced every few thousand jobs, so that a long
//! run neither fills the disk nor makes `/api/jobs` ever longer. `graceful_shutdown` flips the
//! service into refusing for good, so it runs on a service of its own, which must then refuse
//! a job with 503.

#![no_main]

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use flash_fuzz::Input;
use flash_stats::{ApiResponse, Endpoint, Service, StatsConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Jobs one service runs before it is replaced by a fresh one.
const JOBS_PER_SERVICE: u64 = 2000;

/// The methods tried: the API's, one it never accepts, and one no server knows.
const METHODS: [&str; 6] = ["POST", "GET", "HEAD", "PUT", "DELETE", "BREW"];

/// The service under test and what it has done.
struct Fixture {
    /// The live service, opened on first use.
    service: Option<Service>,
    /// Jobs it has accepted.
    jobs: u64,
    /// Services opened so far, to name their folders.
    generation: u64,
}

static FIXTURE: Mutex<Fixture> = Mutex::new(Fixture { service: None, jobs: 0, generation: 0 });

fuzz_target!(|input: &[u8]| {
    let Input { options, data, .. } = Input::new(input);
    let method = METHODS[usize::from(options >> 4) % METHODS.len()];
    let (line, rest) = match data.iter().position(|&c| c == b'\n') {
        Some(nl) => (&data[..nl], &data[nl + 1..]),
        None => (data, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let route = usize::from(options & 0xf);
    let (path, body) = match route {
        0..=8 => (format!("/api/{}", Endpoint::ALL[route].name()), data),
        9 => ("/api/jobs".to_string(), data),
        10 => ("/api/num_jobs".to_string(), data),
        11 => (format!("/api/get_results/{line}"), rest),
        12 => return graceful_shutdown(method, data),
        _ => (format!("/api/{line}"), rest),
    };

    let mut fixture = FIXTURE.lock().unwrap_or_else(PoisonError::into_inner);
    let service = fixture.service();
    let res = service.handle(method, &path, body).expect("every /api/ path is the service's");
    let json = check(&res, method, &path);
    assert_ne!(res.status, 503, "{method} {path}: refused as shutting down, but nothing asked it to");
    if res.status == 200 && method == "POST" {
        let Some(id) = json.get("job_id").and_then(Value::as_str) else {
            panic!("{method} {path}: a 200 without a job id: {json}");
        };
        let result = service.handle("GET", &format!("/api/get_results/{id}"), b"").expect("an /api/ path");
        let result_json = check(&result, "GET", "/api/get_results/");
        assert_eq!(result_json.get("status").and_then(Value::as_str), Some("done"), "{id}: {result_json}");
        assert!(result_json.get("data").is_some(), "{id} is done without data: {result_json}");
        let file = fixture.dir().join(format!("{id}.json"));
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        fixture.jobs += 1;
        if fixture.jobs >= JOBS_PER_SERVICE {
            fixture.renew();
        }
    }
});

impl Fixture {
    /// The live service, opening one (and its folder) if there is none.
    fn service(&mut self) -> &Service {
        if self.service.is_none() {
            self.generation += 1;
            let dir = self.dir();
            let _ = std::fs::remove_dir_all(&dir);
            self.service = Some(open(&dir));
        }
        self.service.as_ref().expect("just opened")
    }

    /// The live service's results folder.
    fn dir(&self) -> PathBuf {
        scratch(&format!("live-{}", self.generation))
    }

    /// Drops the service and its folder; the next input opens a fresh one.
    fn renew(&mut self) {
        self.service = None;
        self.jobs = 0;
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// `graceful_shutdown` on a service of its own, which must then refuse a job.
fn graceful_shutdown(method: &str, body: &[u8]) {
    let dir = scratch("shutdown");
    let _ = std::fs::remove_dir_all(&dir);
    let service = open(&dir);
    let res = service.handle(method, "/api/graceful_shutdown", body).expect("an /api/ path");
    check(&res, method, "/api/graceful_shutdown");
    if res.status == 200 {
        let job = service.handle("POST", "/api/global_mean", body).expect("an /api/ path");
        check(&job, "POST", "/api/global_mean");
        assert_eq!(job.status, 503, "a job accepted after graceful_shutdown");
    }
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A results folder of this process's under `$TMPDIR`.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("flash-fuzz-stats-{}-{name}", std::process::id()))
}

fn open(dir: &std::path::Path) -> Service {
    let config =
        StatsConfig { csv: None, results_dir: dir.to_path_buf(), job_threads: 1, log_file: None, inline_jobs: true };
    Service::open(config).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// What holds of every answer: JSON, no 500, `Allow` on a 405, a reason on an error.
fn check(res: &ApiResponse, method: &str, path: &str) -> Value {
    let json: Value = serde_json::from_slice(&res.body).unwrap_or_else(|e| {
        panic!("{method} {path} -> {}: not JSON ({e}): {:?}", res.status, String::from_utf8_lossy(&res.body))
    });
    assert!(matches!(res.status, 200 | 400 | 404 | 405 | 503), "{method} {path} -> {}: {json}", res.status);
    assert_eq!(res.allow.is_some(), res.status == 405, "{method} {path} -> {}: Allow is {:?}", res.status, res.allow);
    if res.status >= 400 {
        let reason = json.get("reason").and_then(Value::as_str).unwrap_or("");
        assert!(
            json.get("status").and_then(Value::as_str) == Some("error") && !reason.is_empty(),
            "{method} {path}: {json}"
        );
    }
    json
}
