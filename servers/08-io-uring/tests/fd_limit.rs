//! Out of file descriptors, the multishot accept ends with `EMFILE`; the ring must go on serving
//! the clients it has, and ask to accept again once they free descriptors (the same check as 04's).

use flash_conformance::runnable;

#[test]
fn out_of_descriptors_it_still_serves_its_clients_and_stops() {
    if !runnable(&[flash_08_io_uring::available]) {
        return;
    }
    flash_conformance::lesson::serves_out_of_descriptors(env!("CARGO_BIN_EXE_flash-08-io-uring").as_ref());
}
