//! The conformance corpus: one set of cases, written once, run against every Flash server.
//!
//! A server joins with one line in its `tests/conformance.rs`:
//!
//! ```ignore
//! flash_conformance::suite!(flash_01_sequential::serve);
//! ```
//!
//! which expands to one `#[test]` per case, named after the case (as ripgrep's `rgtest!` does),
//! so `cargo test` lists every case by name and a failure names the behaviour that broke. Each
//! test starts its own server in-process on `127.0.0.1:0` ([`TestServer`]), talks raw bytes to it
//! over a real socket ([`Wire`]), and stops it, checking that `serve` returned `Ok`.
//!
//! A server that is not expected to pass a case says so, with a reason and the words its failure
//! must contain, and that difference is *asserted*: the case must fail in exactly that way (a
//! panic, a timeout or any other failure fails the test), and the day it passes the test says to
//! drop the entry (the table of "what this step does not support yet" of db_tutorial, kept
//! honest):
//!
//! ```ignore
//! flash_conformance::suite!(flash_02_cgi::serve, unsupported: {
//!     pipelining_ten_in_one_write: "each request is a new process" => "expected 10 responses",
//! });
//! ```
//!
//! A server that some machines cannot run at all (08 needs io_uring, which seccomp may forbid)
//! names the check with `requires: path::to::check`; where it fails, every case prints why and
//! returns early, a skip rather than a failure or a silent pass.
//!
//! Cases come in two kinds. Most need only an address ([`cases`] functions taking a
//! `SocketAddr`), so they also run against any server already running, named by the environment
//! variable `FLASH_TARGET=http://127.0.0.1:PORT` (see `tests/target.rs`): that is how a reader
//! holds Flash against nginx or a peer. The others need a server configured for them (a short
//! timeout, a small body limit, a docroot with a symlink pointing out) or need to stop it
//! (graceful shutdown); they take the `serve` function and start their own.
//!
//! Every read has a deadline and no case sleeps to synchronize: a case waits for the bytes or
//! the close it expects, and fails with what it got instead if they do not come.

pub mod cases;
pub mod lesson;
pub mod process;
pub mod server;
pub mod stats;
pub mod wire;

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use flash_common::server::Serve;

pub use flash_testkit::{browser, child, script, wait};
pub use server::TestServer;
pub use wire::{Response, Wire};

/// A case a server is expected to fail, why, and how.
#[derive(Debug)]
pub struct Expected {
    /// The case's name.
    pub case: &'static str,
    /// Why the server fails it.
    pub reason: &'static str,
    /// Words the case's failure message must contain: any other failure (a crash, a timeout)
    /// is a real one.
    pub fails_with: &'static str,
}

/// A server's list of cases it is expected to fail.
pub type Unsupported = &'static [Expected];

/// What the machine must allow for a server to run at all: checks that say why not.
pub type Requires = &'static [fn() -> std::io::Result<()>];

/// Expands to one `#[test]` per conformance case, run against the server whose `serve` function
/// is given; an optional `unsupported: { case: "reason" => "failure", ... }` lists the cases
/// that server is expected to fail and words their failure must contain (a misspelt case name
/// does not compile), and an optional `requires: check` what the machine must allow for the
/// server to run (see [`runnable`]).
#[macro_export]
macro_rules! suite {
    ($serve:path $(, unsupported: { $($case:ident : $reason:literal => $fails_with:literal),* $(,)? })? $(, requires: $requires:path)? $(,)?) => {
        /// The cases this server is expected to fail, why, and how.
        const FLASH_UNSUPPORTED: $crate::Unsupported =
            &[$($($crate::Expected { case: stringify!($case), reason: $reason, fails_with: $fails_with }),*)?];
        /// What this machine must allow for the server to run; without it every case skips.
        const FLASH_REQUIRES: $crate::Requires = &[$($requires)?];
        $($(const _: () = {
            // Names a case that does not exist fail to compile here.
            let _ = $crate::cases::$case;
        };)*)?
        $crate::__for_each_case!(suite $serve, FLASH_UNSUPPORTED, FLASH_REQUIRES);
    };
}

/// Expands to one `#[test]` per case that needs no special server configuration, run against
/// `FLASH_TARGET` when it is set and otherwise against the server given (in-process).
#[macro_export]
macro_rules! target_suite {
    ($fallback:path $(,)?) => {
        $crate::__for_each_case!(target $fallback);
    };
}

/// The list of cases, in the order a reader meets them. `net` cases need only an address;
/// `own` cases start a server configured for them.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_case {
    ($($ctx:tt)*) => {
        // Messages and connections.
        $crate::__case!(net hello_exact_response; $($ctx)*);
        $crate::__case!(net http11_keeps_alive_by_default; $($ctx)*);
        $crate::__case!(net http11_connection_close_closes; $($ctx)*);
        $crate::__case!(net http10_closes_by_default; $($ctx)*);
        $crate::__case!(net http10_keep_alive_stays_open; $($ctx)*);
        $crate::__case!(net pipelining_ten_in_one_write; $($ctx)*);
        $crate::__case!(net pipelining_behind_a_file; $($ctx)*);
        $crate::__case!(net request_split_byte_by_byte; $($ctx)*);
        $crate::__case!(net chunked_body_with_extensions_and_trailers; $($ctx)*);
        $crate::__case!(net chunked_body_split_byte_by_byte; $($ctx)*);
        $crate::__case!(net expect_100_continue; $($ctx)*);
        $crate::__case!(net http10_expect_100_continue_is_ignored; $($ctx)*);
        $crate::__case!(net expect_other_is_417; $($ctx)*);
        $crate::__case!(net absolute_form_target_is_served; $($ctx)*);
        $crate::__case!(net percent_encoded_unreserved_path_is_decoded; $($ctx)*);
        $crate::__case!(net head_has_no_body; $($ctx)*);
        // The application.
        $crate::__case!(net echo_preserves_content_type; $($ctx)*);
        $crate::__case!(net echo_large_body; $($ctx)*);
        $crate::__case!(net addone_answers; $($ctx)*);
        $crate::__case!(net addone_refuses_bad_input; $($ctx)*);
        $crate::__case!(net sleep_answers_and_refuses; $($ctx)*);
        $crate::__case!(net cpu_answers_and_refuses; $($ctx)*);
        $crate::__case!(net server_status_is_json; $($ctx)*);
        $crate::__case!(net wrong_method_is_405_with_allow; $($ctx)*);
        $crate::__case!(net root_serves_index; $($ctx)*);
        // Malformed requests: each answered, closed, and the server still serves.
        $crate::__case!(net unknown_method_is_501; $($ctx)*);
        $crate::__case!(net http2_is_505; $($ctx)*);
        $crate::__case!(net missing_host_is_400; $($ctx)*);
        $crate::__case!(net two_hosts_is_400; $($ctx)*);
        $crate::__case!(net invalid_host_is_400; $($ctx)*);
        $crate::__case!(net whitespace_in_target_is_400; $($ctx)*);
        $crate::__case!(net malformed_target_is_400; $($ctx)*);
        $crate::__case!(net content_length_and_chunked_is_400; $($ctx)*);
        $crate::__case!(net conflicting_content_lengths_is_400; $($ctx)*);
        $crate::__case!(net bad_content_length_is_400; $($ctx)*);
        $crate::__case!(net unsupported_transfer_coding_is_501; $($ctx)*);
        $crate::__case!(net transfer_coding_not_ending_in_chunked_is_400; $($ctx)*);
        $crate::__case!(net http10_transfer_encoding_is_400; $($ctx)*);
        $crate::__case!(net bad_chunk_size_is_400; $($ctx)*);
        $crate::__case!(net blank_chunk_size_is_400; $($ctx)*);
        $crate::__case!(net chunk_extension_control_bytes_is_400; $($ctx)*);
        $crate::__case!(net bad_chunked_framing_is_400; $($ctx)*);
        $crate::__case!(net bare_cr_is_400; $($ctx)*);
        $crate::__case!(net bare_lf_is_400; $($ctx)*);
        $crate::__case!(net obs_fold_is_400; $($ctx)*);
        $crate::__case!(net space_before_colon_is_400; $($ctx)*);
        $crate::__case!(net long_target_is_414; $($ctx)*);
        $crate::__case!(net large_head_is_431; $($ctx)*);
        $crate::__case!(net too_many_headers_is_431; $($ctx)*);
        $crate::__case!(net huge_content_length_is_413; $($ctx)*);
        $crate::__case!(own body_over_small_limit_is_413; $($ctx)*);
        // Static files.
        $crate::__case!(own static_index_and_content_types; $($ctx)*);
        $crate::__case!(own static_directory_without_slash_is_301; $($ctx)*);
        $crate::__case!(own static_percent_encoded_path; $($ctx)*);
        $crate::__case!(own static_if_modified_since_is_304; $($ctx)*);
        $crate::__case!(own static_range_is_206_or_416; $($ctx)*);
        $crate::__case!(own static_head_has_length_no_body; $($ctx)*);
        $crate::__case!(own static_traversal_never_leaves_root; $($ctx)*);
        // Time and lifecycle.
        $crate::__case!(own slow_head_is_408; $($ctx)*);
        $crate::__case!(own idle_keep_alive_is_closed; $($ctx)*);
        $crate::__case!(net half_close_is_answered_then_closed; $($ctx)*);
        $crate::__case!(own graceful_shutdown_finishes_in_flight; $($ctx)*);
    };
}

/// One case as one `#[test]`, in the form its context asks for.
#[doc(hidden)]
#[macro_export]
macro_rules! __case {
    (net $name:ident; suite $serve:path, $unsupported:ident, $requires:ident) => {
        #[test]
        fn $name() {
            if $crate::runnable($requires) {
                $crate::run_net(stringify!($name), $serve, $unsupported, $crate::cases::$name);
            }
        }
    };
    (own $name:ident; suite $serve:path, $unsupported:ident, $requires:ident) => {
        #[test]
        fn $name() {
            if $crate::runnable($requires) {
                $crate::run_own(stringify!($name), $serve, $unsupported, $crate::cases::$name);
            }
        }
    };
    (net $name:ident; target $fallback:path) => {
        #[test]
        fn $name() {
            $crate::run_target($fallback, $crate::cases::$name);
        }
    };
    // A case that configures its own server cannot run against one that is already running.
    (own $name:ident; target $fallback:path) => {};
    (net $name:ident; list $cases:ident) => {
        $cases.extend([(stringify!($name), $crate::cases::$name as fn(SocketAddr))]);
    };
    (own $name:ident; list $cases:ident) => {};
}

/// A case that needs only an address, with its name.
pub type NetCase = (&'static str, fn(SocketAddr));

/// Every case that needs only an address, named, in the corpus' order: for a test that runs them
/// all against a server it started itself as a process (the cluster in front of server 04), as
/// `FLASH_TARGET` runs them against a server someone else started.
pub fn net_cases() -> Vec<NetCase> {
    let mut cases = Vec::new();
    __for_each_case!(list cases);
    cases
}

/// Runs every [`net_cases`] case against `addr`, one after another, and returns the ones that
/// failed with what they said (each failure's panic message is also printed as it happens).
pub fn run_net_cases(addr: SocketAddr) -> Vec<(&'static str, String)> {
    net_cases()
        .into_iter()
        .filter_map(|(name, case)| {
            let failure = catch_unwind(AssertUnwindSafe(|| case(addr))).err()?;
            let message = failure
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| failure.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Some((name, message))
        })
        .collect()
}

/// False, after printing why, when this machine cannot run the server under test: its tests then
/// skip (return early, the reason in their output) instead of failing, or passing in silence.
pub fn runnable(requires: Requires) -> bool {
    for check in requires {
        if let Err(why) = check() {
            eprintln!("skipped: {why}");
            return false;
        }
    }
    true
}

/// Runs a case that needs only an address against a fresh in-process server, then stops it.
pub fn run_net(name: &str, serve: Serve, unsupported: Unsupported, case: fn(SocketAddr)) {
    expect(name, unsupported, || {
        let server = TestServer::start(serve);
        case(server.addr());
        server.stop();
    });
}

/// Runs a case that starts (and stops) its own server.
pub fn run_own(name: &str, serve: Serve, unsupported: Unsupported, case: fn(Serve)) {
    expect(name, unsupported, || case(serve));
}

/// Runs a case against `FLASH_TARGET` if it is set, else against `fallback` in-process.
pub fn run_target(fallback: Serve, case: fn(SocketAddr)) {
    match target_from_env() {
        Some(addr) => case(addr),
        None => {
            let server = TestServer::start(fallback);
            case(server.addr());
            server.stop();
        }
    }
}

/// The address in `FLASH_TARGET` (`http://127.0.0.1:PORT`), if set. Only loopback addresses are
/// accepted: the corpus sends malformed and hostile requests, which belong on this machine only.
pub fn target_from_env() -> Option<SocketAddr> {
    let raw = std::env::var("FLASH_TARGET").ok().filter(|s| !s.trim().is_empty())?;
    let rest = raw.trim().strip_prefix("http://").unwrap_or(raw.trim()).trim_end_matches('/');
    let rest = rest.replace("localhost", "127.0.0.1");
    let addr: SocketAddr =
        rest.parse().unwrap_or_else(|e| panic!("FLASH_TARGET={raw:?} is not http://127.0.0.1:PORT: {e}"));
    assert!(addr.ip().is_loopback(), "FLASH_TARGET={raw:?}: only loopback (127.0.0.1) targets are allowed");
    Some(addr)
}

/// Runs `body` as case `name`: it must pass, unless the server lists it as unsupported, in which
/// case it must fail with the listed words (so the list never goes stale, and never hides
/// another failure).
fn expect(name: &str, unsupported: Unsupported, body: impl FnOnce()) {
    let Some(expected) = unsupported.iter().find(|e| e.case == name) else {
        body();
        return;
    };
    let reason = expected.reason;
    let payload = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(()) => panic!("case {name} is listed as unsupported ({reason}) but passes: remove it from the list"),
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_string());
    assert!(
        message.contains(expected.fails_with),
        "case {name} is listed as unsupported ({reason}), failing with {:?}, but failed otherwise: {message}",
        expected.fails_with
    );
    eprintln!("case {name} failed as expected: {reason}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: Unsupported = &[Expected { case: "listed", reason: "a known limit", fails_with: "the known way" }];

    #[test]
    fn an_unlisted_case_must_pass() {
        expect("unlisted", LISTED, || {});
        let failed = catch_unwind(|| expect("unlisted", LISTED, || panic!("the known way")));
        assert!(failed.is_err());
    }

    #[test]
    fn a_listed_case_must_fail_the_listed_way() {
        expect("listed", LISTED, || panic!("it failed the known way, at last"));
        expect("listed", LISTED, || panic!("{}", String::from("a formatted message: the known way")));
    }

    #[test]
    #[should_panic(expected = "but failed otherwise: timed out")]
    fn a_listed_case_failing_another_way_fails() {
        expect("listed", LISTED, || panic!("timed out"));
    }

    #[test]
    #[should_panic(expected = "but passes: remove it from the list")]
    fn a_listed_case_that_passes_fails() {
        expect("listed", LISTED, || {});
    }

    #[test]
    fn a_failed_requirement_skips_and_none_runs() {
        assert!(runnable(&[]));
        assert!(runnable(&[|| Ok(())]));
        assert!(!runnable(&[|| Ok(()), || Err(std::io::Error::other("no io_uring here"))]));
    }
}
