//! Helpers shared by the integration tests: a service in a temporary directory, the bundled
//! cases of one endpoint, and the API calls the original checker makes (its comparison of
//! answers is `flash_stats::checker::compare`).
//!
//! Waiting is always polling for a condition under a deadline, never a fixed sleep: the
//! suite runs in parallel on two shared cores, where any fixed delay is sometimes too short.
//! The polling is the workspace's one helper, `flash_conformance::wait`: a dev-dependency on
//! the crate that depends on this one, a cycle cargo allows for tests. Integration tests link
//! the same `flash-stats` library as `flash-conformance` does, so there is one copy of every
//! type; the price is that `cargo test -p flash-stats` also builds the HTTP layer.

#![allow(dead_code)] // Each test file uses a different subset of these helpers.

use std::path::Path;
use std::time::Duration;

use flash_conformance::wait::{until, until_true};
use flash_stats::checker::{cases_dir, read_cases, Case};
use flash_stats::{ApiResponse, Service, StatsConfig};
use serde_json::Value;

/// How long any wait may take before the test fails; generous for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A configuration over the bundled CSV with results in `dir`.
pub fn config(dir: &Path) -> StatsConfig {
    StatsConfig { csv: None, results_dir: dir.to_path_buf(), job_threads: 2, log_file: None, inline_jobs: false }
}

/// The bundled cases of one endpoint, by case number.
pub fn cases(endpoint: &str) -> Vec<Case> {
    read_cases(&cases_dir()).expect("the bundled cases").into_iter().filter(|c| c.endpoint == endpoint).collect()
}

/// A request the service must answer (the path is under /api/), parsed as JSON.
pub fn call(service: &Service, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let ApiResponse { status, body, .. } =
        service.handle(method, path, body).unwrap_or_else(|| panic!("{path} not handled"));
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {body:?}"));
    (status, value)
}

/// POSTs a job and returns its id, failing unless the answer is `{"job_id": "job_id_N"}`.
pub fn submit(service: &Service, endpoint: &str, body: &Value) -> String {
    let body = serde_json::to_vec(body).unwrap();
    let (status, answer) = call(service, "POST", &format!("/api/{endpoint}"), &body);
    assert_eq!(status, 200, "{endpoint}: {answer}");
    let id = answer["job_id"].as_str().unwrap_or_else(|| panic!("no job_id: {answer}"));
    assert!(id.starts_with("job_id_"), "{id}");
    id.to_string()
}

/// Polls `get_results` as the checker does until the job is done, and returns its `data`.
/// Every poll must be answered 200 with status running or done.
pub fn wait_for_result(service: &Service, id: &str) -> Value {
    until(&format!("{id} to be done"), DEADLINE, || {
        let (status, answer) = call(service, "GET", &format!("/api/get_results/{id}"), b"");
        assert_eq!(status, 200, "{id}: {answer}");
        match answer["status"].as_str() {
            Some("done") => Some(answer["data"].clone()),
            Some("running") => None,
            _ => panic!("{id}: unexpected answer {answer}"),
        }
    })
}

/// Polls `num_jobs` until it is 0.
pub fn wait_until_idle(service: &Service) {
    until_true("no job to be pending", DEADLINE, || {
        let (status, answer) = call(service, "GET", "/api/num_jobs", b"");
        assert_eq!(status, 200, "{answer}");
        answer["num_jobs"] == 0
    });
}
