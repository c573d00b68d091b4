//! The `flash-02-fork-exec-cgi` binary: the shared command line around this crate's `serve`.

fn main() -> std::process::ExitCode {
    flash_demo::main(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"), flash_02_fork_exec_cgi::serve)
}
