//! The binary stops cleanly on each of the signals that ask a server to stop, SIGHUP (a closing
//! terminal) included, whose default action would kill it on the spot, mid-request: it closes
//! its connections and exits 0. What "cleanly" covers (requests in flight finish) is the
//! conformance case `graceful_shutdown_finishes_in_flight`; this checks that each signal leads
//! there. 04 stands for every server: they all install `flash_common::shutdown::STOP_SIGNALS`.

use flash_conformance::cases::get;
use flash_conformance::process::ChildServer;
use flash_conformance::Wire;
use nix::sys::signal::Signal;

#[test]
fn sighup_sigint_and_sigterm_each_stop_it_cleanly() {
    for signal in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGTERM] {
        let scratch = tempfile::tempdir().unwrap();
        let binary = env!("CARGO_BIN_EXE_flash-04-epoll").as_ref();
        let mut server = ChildServer::start(binary, scratch.path(), scratch.path(), &[]);
        let mut wire = Wire::connect(server.addr());
        wire.roundtrip(get("/hello")).assert_status(200);
        let status = server.stop_with(signal);
        assert!(status.success(), "after {signal}: {status}");
        wire.expect_closed();
    }
}
