//! An event loop out of file descriptors must keep serving the clients it has (see
//! `flash_conformance::lesson::serves_out_of_descriptors`, which runs the real binary under
//! `ulimit -n 64`).

#[test]
fn out_of_descriptors_it_still_serves_its_clients_and_stops() {
    flash_conformance::lesson::serves_out_of_descriptors(env!("CARGO_BIN_EXE_flash-04-epoll").as_ref());
}
