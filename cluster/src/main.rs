//! The `flash-cluster` binary: server 07's reactors in front, the cluster as the application.

fn main() -> std::process::ExitCode {
    flash_common::server::main_with(
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_DESCRIPTION"),
        flash_07_reactors::serve,
        flash_cluster::ClusterApp::launch,
    )
}
