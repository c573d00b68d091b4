//! The conformance corpus through the cluster: every case that needs only an address (the same
//! cases `FLASH_TARGET` runs against any server), sent to flash-cluster in front of two copies of
//! server 04. A proxy that dropped a field, reframed a body wrongly, answered out of order or
//! mishandled `100-continue` fails here by the case's name.

mod common;

use common::{backend_04, Cluster};

#[test]
fn the_corpus_passes_through_the_cluster_in_front_of_04() {
    let backend = backend_04();
    let cluster = Cluster::start(&["--backend", &backend, "--size", "2"]);
    let failures = flash_conformance::run_net_cases(cluster.addr());
    let names: Vec<String> = failures.iter().map(|(name, why)| format!("{name}: {why}")).collect();
    assert!(failures.is_empty(), "{} case(s) failed through the cluster:\n{}", failures.len(), names.join("\n"));
    assert!(flash_conformance::net_cases().len() >= 38, "the corpus lost cases");
}
