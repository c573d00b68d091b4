//! The job lifecycle through `Service::handle`: many concurrent jobs, graceful shutdown,
//! invalid ids, bad input, results surviving a restart, the inline (CGI) mode and the log.

mod common;

use std::collections::BTreeSet;

use common::{call, cases, config, submit, wait_for_result, wait_until_idle};
use flash_stats::checker::{bad_inputs, BadInput, INVALID_JOB_IDS};
use flash_stats::{Endpoint, Service, StatsConfig};
use serde_json::{json, Value};

/// Every case input of every endpoint, as (endpoint, body) pairs.
fn all_inputs() -> Vec<(&'static str, Value)> {
    Endpoint::ALL.iter().flat_map(|e| cases(e.name()).into_iter().map(|case| (e.name(), case.input))).collect()
}

fn question() -> &'static str {
    flash_stats::QUESTIONS[0].0
}

/// The job ids `/api/jobs` lists, with their states.
fn listed_jobs(service: &Service) -> Vec<(String, String)> {
    let (status, answer) = call(service, "GET", "/api/jobs", b"");
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "done");
    answer["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data list: {answer}"))
        .iter()
        .map(|entry| {
            let (id, state) = entry.as_object().unwrap().iter().next().unwrap();
            (id.clone(), state.as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn five_hundred_concurrent_jobs_all_finish_and_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let inputs = all_inputs();
    let ids: Vec<String> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..4)
            .map(|client| {
                let (service, inputs) = (&service, &inputs);
                s.spawn(move || {
                    (0..125)
                        .map(|n| {
                            let (endpoint, body) = &inputs[(client * 125 + n) % inputs.len()];
                            submit(service, endpoint, body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 500, "job ids must be unique");

    wait_until_idle(&service);
    for id in &ids {
        assert!(!wait_for_result(&service, id).is_null());
    }
    let listed = listed_jobs(&service);
    assert_eq!(listed.len(), 500);
    let expected: Vec<String> = (1..=500).map(|n| format!("job_id_{n}")).collect();
    let listed_ids: Vec<String> = listed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(listed_ids, expected, "jobs are listed by id");
    assert!(listed.iter().all(|(_, state)| state == "done"));
    // The pool is fixed: never more job threads than cores, whatever was asked.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(service.config().job_threads <= cores);
}

#[test]
fn job_threads_are_clamped_to_the_cores() {
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (asked, expected) in [(0, 1), (1, 1), (10_000, cores)] {
        let cfg = StatsConfig { job_threads: asked, ..config(dir.path()) };
        assert_eq!(Service::open(cfg).unwrap().config().job_threads, expected);
    }
}

#[test]
fn graceful_shutdown_refuses_new_jobs_and_drains_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let inputs = all_inputs();
    let ids: Vec<String> = inputs.iter().take(60).map(|(e, b)| submit(&service, e, b)).collect();

    let (status, answer) = call(&service, "GET", "/api/graceful_shutdown", b"");
    assert_eq!(status, 200);
    assert!(answer["status"] == "shutting down" || answer["status"] == "done", "{answer}");

    let body = serde_json::to_vec(&json!({"question": question()})).unwrap();
    let (status, answer) = call(&service, "POST", "/api/states_mean", &body);
    assert_eq!(status, 503);
    assert_eq!(answer, json!({"status": "error", "reason": "shutting down"}));

    wait_until_idle(&service);
    for id in &ids {
        wait_for_result(&service, id);
    }
    assert_eq!(listed_jobs(&service).len(), 60, "the refused request made no job");
    let (_, answer) = call(&service, "GET", "/api/graceful_shutdown", b"");
    assert_eq!(answer["status"], "done");
}

#[test]
fn shutdown_finishes_every_queued_job_before_returning() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let ids: Vec<String> = all_inputs().iter().map(|(e, b)| submit(&service, e, b)).collect();
    service.shutdown();
    let (_, answer) = call(&service, "GET", "/api/num_jobs", b"");
    assert_eq!(answer["num_jobs"], 0);
    for id in &ids {
        let (_, answer) = call(&service, "GET", &format!("/api/get_results/{id}"), b"");
        assert_eq!(answer["status"], "done", "{id}");
    }
}

#[test]
fn invalid_job_ids_get_an_error_with_status_200() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    for id in INVALID_JOB_IDS {
        let (status, answer) = call(&service, "GET", &format!("/api/get_results/{id}"), b"");
        assert_eq!(status, 200, "{id}");
        assert_eq!(answer, json!({"status": "error", "reason": "Invalid job_id"}), "{id}");
    }
}

#[test]
fn bad_input_gets_a_400_with_a_reason_and_makes_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    for BadInput { endpoint, body, reason } in bad_inputs() {
        let (status, answer) = call(&service, "POST", &format!("/api/{endpoint}"), &body);
        assert_eq!(status, 400, "{endpoint} {body:?}: {answer}");
        assert_eq!(answer["status"], "error");
        let text = answer["reason"].as_str().unwrap();
        assert!(text.contains(reason), "{endpoint}: {text:?} should say {reason:?}");
    }
    assert!(listed_jobs(&service).is_empty());
    let ok = json!({"question": question(), "state": "Ohio"});
    assert_eq!(submit(&service, "state_mean", &ok), "job_id_1");
}

#[test]
fn wrong_methods_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    for (method, path, allow) in [
        ("GET", "/api/states_mean", "POST"),
        ("PUT", "/api/best5", "POST"),
        ("POST", "/api/get_results/job_id_1", "GET, HEAD"),
        ("POST", "/api/jobs", "GET, HEAD"),
        ("DELETE", "/api/num_jobs", "GET, HEAD"),
        ("POST", "/api/graceful_shutdown", "GET, HEAD"),
    ] {
        let response = service.handle(method, path, b"{}").unwrap();
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.allow, Some(allow), "{method} {path}");
        let answer: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(answer["status"], "error");
    }
    let (status, _) = call(&service, "GET", "/api/no_such_thing", b"");
    assert_eq!(status, 404);
    assert!(service.handle("GET", "/hello", b"").is_none());
    assert!(service.handle("GET", "/api", b"").is_none());
    assert!(service.handle("GET", "/apix/jobs", b"").is_none());
    // A query string does not change the route.
    let (status, _) = call(&service, "GET", "/api/num_jobs?verbose=1", b"");
    assert_eq!(status, 200);
}

#[test]
fn results_survive_reopening_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = all_inputs();
    let first = Service::open(config(dir.path())).unwrap();
    let ids: Vec<String> = inputs.iter().take(10).map(|(e, b)| submit(&first, e, b)).collect();
    let answers: Vec<Value> = ids.iter().map(|id| wait_for_result(&first, id)).collect();
    drop(first);

    let second = Service::open(config(dir.path())).unwrap();
    for (id, answer) in ids.iter().zip(&answers) {
        assert_eq!(&wait_for_result(&second, id), answer, "{id} after a restart");
    }
    assert_eq!(listed_jobs(&second).len(), 10);
    let (endpoint, body) = &inputs[0];
    assert_eq!(submit(&second, endpoint, body), "job_id_11", "new ids follow the old ones");
    let id = "job_id_11";
    wait_for_result(&second, id);

    // A process killed after its jobs finished leaves them on disk: forgetting the service
    // skips every shutdown step, as `kill -9` would (its idle threads stay parked).
    std::mem::forget(second);
    let third = Service::open(config(dir.path())).unwrap();
    assert_eq!(listed_jobs(&third).len(), 11);
    assert!(listed_jobs(&third).iter().all(|(_, state)| state == "done"));
    assert_eq!(wait_for_result(&third, id), answers[0]);
}

#[test]
fn inline_jobs_are_done_before_the_answer_and_state_lives_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let inline = StatsConfig { inline_jobs: true, ..config(dir.path()) };
    // Two services on one directory stand for two CGI processes.
    let a = Service::open(inline.clone()).unwrap();
    let b = Service::open(inline.clone()).unwrap();
    let body = json!({"question": question()});
    let first = submit(&a, "global_mean", &body);
    let (_, answer) = call(&a, "GET", &format!("/api/get_results/{first}"), b"");
    assert_eq!(answer["status"], "done", "no polling needed inline");
    let (_, answer) = call(&b, "GET", &format!("/api/get_results/{first}"), b"");
    assert_eq!(answer["status"], "done", "the other process reads it from disk");
    let second = submit(&b, "global_mean", &body);
    assert_ne!(first, second);
    let (_, answer) = call(&a, "GET", "/api/num_jobs", b"");
    assert_eq!(answer["num_jobs"], 0);
    assert_eq!(listed_jobs(&a).len(), 2);

    // A graceful shutdown asked of one process holds for the others, through the disk.
    let (status, _) = call(&b, "GET", "/api/graceful_shutdown", b"");
    assert_eq!(status, 200);
    let (status, _) = call(&a, "POST", "/api/global_mean", body.to_string().as_bytes());
    assert_eq!(status, 503);
    // A newly started long-lived server clears it.
    let server = Service::open(config(dir.path())).unwrap();
    drop(server);
    assert_eq!(submit(&a, "global_mean", &body), "job_id_3");
}

#[test]
fn a_bad_csv_is_a_clear_error_not_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StatsConfig { csv: Some(dir.path().join("missing.csv")), ..config(dir.path()) };
    let service = Service::open(cfg).unwrap();
    service.warm_up();
    let body = json!({"question": question()}).to_string();
    let (status, answer) = call(&service, "POST", "/api/states_mean", body.as_bytes());
    assert_eq!(status, 500);
    assert!(answer["reason"].as_str().unwrap().contains("missing.csv"), "{answer}");
    assert!(listed_jobs(&service).is_empty());
}

#[test]
fn the_activity_log_records_requests_completions_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("activity.log");
    let cfg = StatsConfig { log_file: Some(log.clone()), ..config(&dir.path().join("results")) };
    let service = Service::open(cfg).unwrap();
    let id = submit(&service, "state_mean", &json!({"question": question(), "state": "Ohio"}));
    wait_for_result(&service, &id);
    call(&service, "POST", "/api/state_mean", b"{}");
    drop(service);

    let text = std::fs::read_to_string(&log).unwrap();
    let has = |needle: &str| text.lines().any(|l| l.contains(needle));
    assert!(has(&format!("state=\"Ohio\" -> {id}")), "{text}");
    assert!(has(question()), "{text}");
    assert!(has(&format!("{id} done (state_mean)")), "{text}");
    assert!(has("ERROR POST /api/state_mean -> 400"), "{text}");
    for line in text.lines() {
        // `2026-11-24T10:50:01.123Z LEVEL ...`
        let stamp = line.split(' ').next().unwrap();
        assert_eq!(stamp.len(), 24, "{line}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T', "{line}");
    }
}
