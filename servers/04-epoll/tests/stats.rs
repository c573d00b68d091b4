//! The stats job service through server 04, an event loop: the assignment's 114 cases
//! replayed as its checker replays them, and the job lifecycle over HTTP, including a
//! `kill -9` of the real binary. The checks live in `flash_conformance::stats`, shared with
//! server 06: the job pool belongs to the application, so both must pass the same ones.

use flash_conformance::stats;
use flash_conformance::TestServer;

const SERVE: flash_common::server::Serve = flash_04_epoll::serve;

#[test]
fn all_114_original_cases_pass() {
    let server = TestServer::start(SERVE);
    stats::replay_all(server.addr(), &stats::cases_dir()).assert_all_passed(114);
    server.stop();
}

#[test]
fn five_hundred_concurrent_jobs_all_finish_and_are_listed() {
    stats::five_hundred_concurrent_jobs(SERVE);
}

#[test]
fn graceful_shutdown_refuses_new_jobs_and_drains_the_queue() {
    stats::graceful_shutdown_drains(SERVE);
}

#[test]
fn invalid_job_ids_get_an_error_with_status_200() {
    let server = TestServer::start(SERVE);
    stats::invalid_job_ids(server.addr());
    server.stop();
}

#[test]
fn each_kind_of_bad_input_gets_a_400() {
    stats::bad_input_is_400(SERVE);
}

#[test]
fn results_survive_a_restart() {
    stats::results_survive_a_restart(SERVE);
}

#[test]
fn queued_jobs_survive_kill_9() {
    stats::queued_jobs_survive_kill_9(env!("CARGO_BIN_EXE_flash-04-epoll").as_ref());
}
