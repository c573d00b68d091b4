//! The `flash-load` binary: everything lives in the library (`flash_load::cli`) so that tests and
//! `compare` drive the same code; this file only hands over the exit code.

fn main() -> std::process::ExitCode {
    flash_load::cli::main()
}
