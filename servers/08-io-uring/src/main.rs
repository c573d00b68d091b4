//! The `flash-08-io-uring` binary: the shared command line around this crate's `serve`, after
//! one check the other servers need not make: that this machine lets a process use io_uring.

use std::process::ExitCode;

/// The exit status of a server that cannot run on this machine (`EX_UNAVAILABLE`, sysexits.h).
const UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    if let Err(e) = flash_08_io_uring::available() {
        eprintln!("error: {e}");
        return ExitCode::from(UNAVAILABLE);
    }
    flash_demo::main(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"), flash_08_io_uring::serve)
}
