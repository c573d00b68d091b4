//! `cargo build --release` and then `cargo run --release -p flash-load -- compare` must be one
//! build, not two. Cargo resolves the features of shared dependencies over the packages a command
//! selects, so `-p flash-load` compiles its dependencies anew whenever they resolve differently
//! than in the whole workspace (and flash-load with them). `compare` itself selects the whole
//! workspace when it builds the servers (`--workspace --bin`, checked in its unit tests); this test
//! checks the other half with `cargo tree`: every dependency of flash-load has the same features
//! under `-p flash-load` as under `--workspace`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Each package of the normal dependency tree (build dependencies included) with its features: a
/// set of pairs, since a package built both for build scripts and for the target may appear twice.
fn features(selection: &[&str]) -> BTreeSet<(String, String)> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["tree", "--offline", "-e", "no-dev", "--prefix", "none", "-f", "{p}|{f}"])
        .args(selection)
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim_end_matches(" (*)").split_once('|'))
        .map(|(package, features)| (package.to_string(), features.to_string()))
        .collect()
}

#[test]
fn flash_load_resolves_its_dependencies_as_the_whole_workspace_does() {
    let alone = features(&["-p", "flash-load"]);
    let workspace = features(&["--workspace"]);
    assert!(alone.iter().any(|(p, _)| p.starts_with("mio ")), "cargo tree listed flash-load's dependencies: {alone:?}");
    let differ: Vec<String> = alone
        .difference(&workspace)
        .map(|(package, features)| {
            let there: Vec<&str> = workspace.iter().filter(|(p, _)| p == package).map(|(_, f)| f.as_str()).collect();
            format!("{package}: [{features}] alone, [{}] in the workspace", there.join("] or ["))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "`cargo run -p flash-load` would compile these again after `cargo build` (give flash-load the same \
         features, e.g. in the root Cargo.toml's [workspace.dependencies]):\n{}",
        differ.join("\n")
    );
}
