//! Replays the assignment's 114 original test cases through `Service::handle`, the way the
//! original checker does over HTTP: POST the input, poll `get_results` until the job is done
//! (every poll answered 200), and compare the `data` with the expected output within 0.01.
//!
//! One `#[test]` per endpoint, so a failure names the statistic. The servers' own tests replay
//! the same cases over real sockets; this one pins the service itself.

mod common;

use std::sync::LazyLock;

use common::{cases, config, submit, wait_for_result};
use flash_stats::checker::compare;
use flash_stats::Service;

/// One service for every case: the CSV is loaded once, and the 114 jobs share its pool and
/// results directory as they would in a server. The directory lives as long as the process.
static SERVICE: LazyLock<(tempfile::TempDir, Service)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    (dir, service)
});

fn replay(endpoint: &str, expected_cases: usize) {
    let service = &SERVICE.1;
    let cases = cases(endpoint);
    assert_eq!(cases.len(), expected_cases, "{endpoint}: number of cases");
    // Submit every case first, as concurrent clients would, then collect the answers.
    let ids: Vec<String> = cases.iter().map(|case| submit(service, endpoint, &case.input)).collect();
    let mut failures = Vec::new();
    for (case, id) in cases.iter().zip(&ids) {
        let data = wait_for_result(service, id);
        if let Err(diff) = compare(&data, &case.expected, &format!("{endpoint} case {}", case.n)) {
            failures.push(diff);
        }
    }
    assert!(failures.is_empty(), "{} cases differ:\n{}", failures.len(), failures.join("\n"));
}

macro_rules! replay_tests {
    ($($endpoint:ident: $cases:expr,)*) => {
        $(
            #[test]
            fn $endpoint() {
                replay(stringify!($endpoint), $cases);
            }
        )*

        #[test]
        fn all_114_cases_are_replayed() {
            assert_eq!(0 $(+ $cases)*, 114);
        }
    };
}

replay_tests! {
    states_mean: 9,
    state_mean: 20,
    best5: 9,
    worst5: 9,
    global_mean: 9,
    diff_from_mean: 9,
    state_diff_from_mean: 20,
    mean_by_category: 9,
    state_mean_by_category: 20,
}
