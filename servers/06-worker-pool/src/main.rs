//! The `flash-06-worker-pool` binary: the shared command line around this crate's `serve`.

fn main() -> std::process::ExitCode {
    flash_demo::main(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"), flash_06_worker_pool::serve)
}
