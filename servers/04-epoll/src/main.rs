//! The `flash-04-epoll` binary: the shared command line around this crate's `serve`.

fn main() -> std::process::ExitCode {
    flash_demo::main(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_DESCRIPTION"), flash_04_epoll::serve)
}
