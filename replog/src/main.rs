//! The `flash-replog` binary: server 07's event loops serving the replicated log, plus the
//! `demo` subcommand that starts a whole cluster on this machine.

use std::process::ExitCode;

use flash_replog::ReplogApp;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("demo") {
        return flash_replog::demo::main(args);
    }
    flash_common::server::main_with(
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_DESCRIPTION"),
        flash_07_reactors::serve,
        ReplogApp::launch,
    )
}
