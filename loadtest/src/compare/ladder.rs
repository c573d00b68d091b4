//! The ladder: every server `compare` measures, in report order, as one table ([`LADDER`]).
//!
//! Adding a server is one row. A Flash server is named by its folder in `servers/` (package
//! `flash-` + the folder, binary of the same name); a reference is a server outside Flash measured
//! beside the lessons so that a reader sees the ceiling: nginx from `PATH`, and the hyper and
//! may_minihttp servers that the peers' `build.sh` builds, found in `--peers DIR`. A row that
//! cannot run here is not an error: [`Rung::launch`] says why (the folder is not in this checkout,
//! nginx is not installed, `--peers` was not given), the report lists it as not measured with that
//! reason, and the comparison goes on. A test checks that every folder in `servers/` has its row,
//! so that a new server cannot be left out by forgetting the line.
//!
//! One row is not a server but Flash's cluster (`cluster/`): `flash-cluster` in front of two
//! copies of server 04 that it starts itself, on the same CPUs as any other row, so the report
//! shows what the hop and the supervision cost next to the single server it multiplies.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::results::Kind;
use super::server::{target_dir, Launch, PortRule};

/// How a row is built and started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A Flash server of this workspace, `servers/NAME`, built here and started with the flags
    /// every Flash server shares.
    Flash,
    /// nginx from `PATH`, configured as the peers' `nginx.conf` (one worker, no access log,
    /// `return 200` on `/hello`) on a port picked for each start.
    Nginx,
    /// A binary in `--peers DIR` (or its `target/release/`) that serves `GET /hello` on `$PORT`.
    Peer(&'static str),
    /// The replicated log (`replog/`, package `flash-replog`) as `flash-replog demo` starts it: a
    /// primary and two secondaries, measured through the primary under the `replog-*` scenarios.
    Replog,
    /// Flash's cluster, `cluster/` (package `flash-cluster`), started with the flags every Flash
    /// server gets, `--backend` running [`CLUSTER_COPIES`] copies of server 04 with them too, and
    /// `--queue 1024`.
    Cluster,
}

/// How many copies of 04 the cluster row runs.
pub const CLUSTER_COPIES: usize = 2;

/// The name of the replicated log's row (the `replog-*` scenarios measure it and nothing else).
pub const REPLOG: &str = "replog";

/// One row of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// The name in the report: a Flash server's folder name, or a reference's name.
    pub name: &'static str,
    /// How it is built and started.
    pub start: Start,
}

impl Rung {
    /// A Flash server in `servers/NAME`.
    const fn flash(name: &'static str) -> Rung {
        Rung { name, start: Start::Flash }
    }

    /// A reference server.
    const fn reference(name: &'static str, start: Start) -> Rung {
        Rung { name, start }
    }

    /// A Flash lesson or a reference.
    pub fn kind(&self) -> Kind {
        match self.start {
            Start::Flash | Start::Replog | Start::Cluster => Kind::Flash,
            Start::Nginx | Start::Peer(_) => Kind::Reference,
        }
    }

    /// The cargo package (and binary) of a Flash server, the replicated log or the cluster.
    pub fn package(&self) -> Option<String> {
        match self.start {
            Start::Flash | Start::Replog => Some(format!("flash-{}", self.name)),
            Start::Cluster => Some("flash-cluster".into()),
            _ => None,
        }
    }

    /// Every package it runs: its own, and for the cluster the server its copies run.
    pub fn packages(&self) -> Vec<String> {
        let copies = (self.start == Start::Cluster).then(|| "flash-04-epoll".to_string());
        self.package().into_iter().chain(copies).collect()
    }

    /// Whether a Flash server's folder is in this checkout (a reference has none).
    pub fn in_checkout(&self, workspace: Option<&Path>) -> bool {
        match (self.start, workspace) {
            (Start::Flash, Some(ws)) => ws.join("servers").join(self.name).join("Cargo.toml").is_file(),
            (Start::Replog, Some(ws)) => ws.join(self.name).join("Cargo.toml").is_file(),
            (Start::Cluster, Some(ws)) => {
                ws.join("cluster/Cargo.toml").is_file() && ws.join("servers/04-epoll/Cargo.toml").is_file()
            }
            (Start::Flash | Start::Replog | Start::Cluster, None) => false,
            _ => true,
        }
    }

    /// How to start it here, or why it cannot be.
    pub fn launch(&self, ctx: &Context) -> Result<Launch, String> {
        match self.start {
            Start::Flash => {
                let Some(workspace) = ctx.workspace.filter(|ws| self.in_checkout(Some(ws))) else {
                    return Err(format!("servers/{} is not in this checkout", self.name));
                };
                // Cargo puts the `dev` profile's binaries in `debug/` and every other profile's
                // in a folder of its own name.
                let folder = if ctx.profile == "dev" { "debug" } else { ctx.profile };
                let binary = target_dir(workspace).join(folder).join(self.package().unwrap_or_default());
                if !binary.is_file() {
                    return Err(format!("no binary at {} (build it, or drop --no-build)", binary.display()));
                }
                Ok(Launch::flash(binary, ctx.flash_args.clone(), ctx.cpus.clone()))
            }
            Start::Replog => {
                let binary = ctx
                    .workspace
                    .filter(|ws| self.in_checkout(Some(ws)))
                    .map(|ws| target_dir(ws).join(if ctx.profile == "dev" { "debug" } else { ctx.profile }))
                    .map(|dir| dir.join("flash-replog"))
                    .ok_or("replog/ is not in this checkout")?;
                if !binary.is_file() {
                    return Err(format!("no binary at {} (build it, or drop --no-build)", binary.display()));
                }
                // The demo's nodes keep their logs in a temporary folder it removes, each node on
                // one reactor thread; it prints the primary's address first, like a server.
                let args = ["demo", "--port", "0", "--heartbeat-ms", "100"].map(String::from).to_vec();
                Ok(Launch { program: binary, args, port: PortRule::Announced, cpus: ctx.cpus.clone(), scratch: None })
            }
            Start::Cluster => {
                let Some(workspace) = ctx.workspace.filter(|ws| self.in_checkout(Some(ws))) else {
                    return Err("cluster/ or servers/04-epoll is not in this checkout".into());
                };
                let folder = if ctx.profile == "dev" { "debug" } else { ctx.profile };
                let [cluster, copy] =
                    ["flash-cluster", "flash-04-epoll"].map(|p| target_dir(workspace).join(folder).join(p));
                if let Some(missing) = [&cluster, &copy].into_iter().find(|b| !b.is_file()) {
                    return Err(format!("no binary at {} (build it, or drop --no-build)", missing.display()));
                }
                // Each copy gets the flags every Flash server gets (the docroot matters for the
                // static scenario), quoted for the cluster's word splitting.
                let mut backend = format!("{} --port {{port}} --quiet", quote(&copy.display().to_string()));
                for arg in &ctx.flash_args {
                    backend.push(' ');
                    backend.push_str(&quote(arg));
                }
                let mut args = ctx.flash_args.clone();
                args.extend(["--backend".into(), backend, "--size".into(), CLUSTER_COPIES.to_string()]);
                // The pipelined scenario keeps 64 x 16 requests outstanding: with the default queue
                // (128) most of them would be refused with 503, which is the queue doing its job,
                // not the throughput this row is here to show.
                args.extend(["--queue".into(), "1024".into()]);
                Ok(Launch::flash(cluster, args, ctx.cpus.clone()))
            }
            Start::Nginx => {
                let nginx = find_on_path("nginx", ctx.path.as_deref())
                    .ok_or("nginx is not on PATH (apt-get install -y nginx)")?;
                nginx_launch(nginx, ctx.cpus.clone())
            }
            Start::Peer(file) => {
                let dir = ctx
                    .peers
                    .as_deref()
                    .ok_or_else(|| format!("no --peers DIR given (the folder where the peers' build.sh put {file})"))?;
                let program = [dir.join(file), dir.join("target/release").join(file)]
                    .into_iter()
                    .find(|p| p.is_file())
                    .ok_or_else(|| format!("no {file} in {} (nor in its target/release)", dir.display()))?;
                Ok(Launch { program, args: Vec::new(), port: PortRule::Env, cpus: ctx.cpus.clone(), scratch: None })
            }
        }
    }
}

/// Every server compare knows, in report order: the lessons, the replicated log on top of them,
/// then the references.
pub const LADDER: &[Rung] = &[
    Rung::flash("01-sequential"),
    Rung::flash("02-fork-exec-cgi"),
    Rung::flash("03-thread-per-request"),
    Rung::flash("04-epoll"),
    Rung::flash("05-threaded-epoll"),
    Rung::flash("06-worker-pool"),
    Rung::flash("07-reactors"),
    Rung::flash("08-io-uring"),
    Rung { name: REPLOG, start: Start::Replog },
    Rung { name: "cluster", start: Start::Cluster },
    Rung::reference("nginx", Start::Nginx),
    Rung::reference("hyper", Start::Peer("hyper-peer")),
    Rung::reference("may_minihttp", Start::Peer("may-peer")),
];

/// What a row needs to know about this run to be started.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// The workspace, where Flash servers are built.
    pub workspace: Option<&'a Path>,
    /// The cargo profile they were built with.
    pub profile: &'a str,
    /// The flags every Flash server is given after `--port 0 --quiet` (threads, docroot).
    pub flash_args: Vec<String>,
    /// `--peers DIR`.
    pub peers: Option<PathBuf>,
    /// CPUs to pin servers to.
    pub cpus: Option<String>,
    /// The `PATH` to look for nginx in (the environment's, or a test's).
    pub path: Option<std::ffi::OsString>,
}

/// Keeps the rows named in `--servers` (by name, number such as `04`, or package), in the order
/// given; every row when none is named; none for `none` (only `--peer` servers then).
pub fn select(wanted: &[String]) -> Result<Vec<Rung>, String> {
    if wanted.is_empty() {
        return Ok(LADDER.to_vec());
    }
    let mut chosen: Vec<Rung> = Vec::new();
    for want in wanted.iter().map(|w| w.trim()) {
        if want == "none" {
            continue;
        }
        let hit = LADDER
            .iter()
            .find(|r| r.name == want || r.package().as_deref() == Some(want) || r.name.split('-').next() == Some(want));
        match hit {
            Some(rung) if !chosen.contains(rung) => chosen.push(*rung),
            Some(_) => {}
            None => {
                let names: Vec<&str> = LADDER.iter().map(|r| r.name).collect();
                return Err(format!("--servers: no server {want:?} (known: {})", names.join(", ")));
            }
        }
    }
    Ok(chosen)
}

/// Builds the Flash servers among `rungs` that are in this checkout, with one cargo command.
///
/// The packages are selected with `--workspace --bin NAME`, not `-p NAME`: cargo resolves the
/// features of shared dependencies over the packages selected, so `-p` subsets resolve them
/// differently from `cargo build --release` (today `bitflags` loses `std`, which `tempfile` in
/// flash-conformance turns on), and every server would be compiled a second time. `--workspace`
/// resolves as `cargo build` does, and `--bin` still builds only the servers asked for.
pub fn build(workspace: &Path, rungs: &[Rung], profile: &str) -> Result<(), String> {
    let packages = packages_of(rungs.iter().filter(|r| r.in_checkout(Some(workspace))));
    if packages.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace).args(build_args(profile, &packages));
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build --profile {profile} failed for {}", packages.join(", ")))
    }
}

/// The packages `rungs` run, each once (the cluster's copies are server 04, which may be a row too).
fn packages_of<'a>(rungs: impl Iterator<Item = &'a Rung>) -> Vec<String> {
    let mut packages: Vec<String> = Vec::new();
    for package in rungs.flat_map(Rung::packages) {
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages
}

/// The arguments of [`build`]'s cargo command.
fn build_args(profile: &str, packages: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec!["build".into(), "--profile".into(), profile.into(), "--workspace".into()];
    for package in packages {
        args.extend(["--bin".into(), package.clone()]);
    }
    args
}

/// `word` in single quotes, as a shell (and the cluster's `--backend` splitting) reads it back.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The first executable file called `name` in the folders of `path` (a `PATH` value).
pub fn find_on_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// nginx with a prefix folder of its own, so that it writes nothing outside it (pid file,
/// temporary folders) and runs as any user.
fn nginx_launch(nginx: PathBuf, cpus: Option<String>) -> Result<Launch, String> {
    let scratch = tempfile::Builder::new()
        .prefix("flash-compare-nginx-")
        .tempdir()
        .map_err(|e| format!("cannot create a folder for nginx: {e}"))?;
    let prefix = scratch.path().to_path_buf();
    let config = prefix.join("nginx.conf");
    // `-e stderr`: errors before the config is read go to stderr too, so that a refusal to start
    // is the one line the report gives as the reason.
    let args = vec!["-p".into(), format!("{}/", prefix.display()), "-c".into(), config.display().to_string()]
        .into_iter()
        .chain(["-e".to_string(), "stderr".to_string()])
        .collect();
    Ok(Launch {
        program: nginx,
        args,
        port: PortRule::ConfigFile { path: config, template: nginx_config(&prefix) },
        cpus,
        scratch: Some(scratch),
    })
}

/// The peers' nginx.conf (one worker, no access log, a 13-byte `return 200` on `/hello`, keep-alive
/// requests unbounded), with `{PORT}` for the port and these differences: `master_process off`, so
/// that the one process compare starts is the one that serves (its CPU, peak RSS and threads are
/// then the server's, not an idle master's); enough connections and descriptors for `idle-10k`; and
/// every file nginx writes inside `prefix`.
fn nginx_config(prefix: &Path) -> String {
    let p = prefix.display();
    format!(
        "worker_processes 1;\nmaster_process off;\ndaemon off;\nerror_log stderr warn;\npid {p}/nginx.pid;\n\
         worker_rlimit_nofile 20000;\nevents {{\n    worker_connections 16384;\n}}\nhttp {{\n    access_log off;\n\
         \x20   default_type text/plain;\n    keepalive_requests 100000000;\n    keepalive_timeout 65s;\n\
         \x20   client_body_temp_path {p}/body;\n    proxy_temp_path {p}/proxy;\n    fastcgi_temp_path {p}/fastcgi;\n\
         \x20   uwsgi_temp_path {p}/uwsgi;\n    scgi_temp_path {p}/scgi;\n    server {{\n\
         \x20       listen 127.0.0.1:{{PORT}};\n        location = /hello {{\n            return 200 \"Hello, world!\";\n\
         \x20       }}\n    }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_folder_has_its_row() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for entry in std::fs::read_dir(workspace.join("servers")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let numbered = name.len() > 3 && name.as_bytes()[..2].iter().all(u8::is_ascii_digit);
            if numbered && workspace.join("servers").join(&name).join("Cargo.toml").is_file() {
                assert!(
                    LADDER.iter().any(|r| r.name == name && r.start == Start::Flash),
                    "servers/{name} has no row in compare's LADDER (loadtest/src/compare/ladder.rs): add Rung::flash(\"{name}\")"
                );
            }
        }
        let mut names: Vec<&str> = LADDER.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LADDER.len(), "each name is on one row");
    }

    #[test]
    fn selects_by_name_number_or_package() {
        let names = |rungs: Vec<Rung>| rungs.iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(select(&["04".into(), "01-sequential".into()]).unwrap()), ["04-epoll", "01-sequential"]);
        assert_eq!(
            names(select(&["flash-07-reactors".into(), "nginx".into(), "07".into()]).unwrap()),
            ["07-reactors", "nginx"]
        );
        assert!(select(&["09".into()]).unwrap_err().contains("may_minihttp"));
        assert!(select(&["none".into()]).unwrap().is_empty());
        let replog = select(&["replog".into()]).unwrap();
        assert_eq!((replog[0].package().as_deref(), replog[0].kind()), (Some("flash-replog"), Kind::Flash));
        assert_eq!(select(&[]).unwrap(), LADDER.to_vec());
        assert_eq!(LADDER.iter().filter(|r| r.kind() == Kind::Reference).count(), 3);
    }

    #[test]
    fn the_build_resolves_features_as_the_whole_workspace_does() {
        let args = build_args("release", &["flash-01-sequential".into(), "flash-04-epoll".into()]);
        assert_eq!(
            args.join(" "),
            "build --profile release --workspace --bin flash-01-sequential --bin flash-04-epoll"
        );
        assert!(!args.iter().any(|a| a == "-p"), "-p would resolve features for a subset and rebuild");
    }

    #[test]
    fn a_row_that_cannot_run_here_says_why() {
        let empty = tempfile::Builder::new().prefix("flash-load-ladder-").tempdir().unwrap();
        let ctx = Context {
            workspace: Some(empty.path()),
            profile: "release",
            path: Some(empty.path().as_os_str().to_owned()),
            ..Context::default()
        };
        let why = |name: &str| LADDER.iter().find(|r| r.name == name).unwrap().launch(&ctx).unwrap_err();
        assert_eq!(why("08-io-uring"), "servers/08-io-uring is not in this checkout");
        assert_eq!(why("replog"), "replog/ is not in this checkout");
        assert_eq!(why("nginx"), "nginx is not on PATH (apt-get install -y nginx)");
        assert!(why("hyper").starts_with("no --peers DIR given"), "{}", why("hyper"));
        let ctx = Context { peers: Some(empty.path().to_path_buf()), ..ctx };
        let missing = LADDER.iter().find(|r| r.name == "may_minihttp").unwrap().launch(&ctx).unwrap_err();
        assert!(
            missing.starts_with("no may-peer in ") && missing.ends_with("(nor in its target/release)"),
            "{missing}"
        );
    }

    #[test]
    fn the_cluster_row_runs_two_copies_of_04_with_the_servers_flags() {
        let ws = tempfile::Builder::new().prefix("flash-load-cluster-").tempdir().unwrap();
        for file in ["cluster/Cargo.toml", "servers/04-epoll/Cargo.toml", "target/release/flash-cluster"] {
            std::fs::create_dir_all(ws.path().join(file).parent().unwrap()).unwrap();
            std::fs::write(ws.path().join(file), "").unwrap();
        }
        let row = LADDER.iter().find(|r| r.start == Start::Cluster).unwrap();
        let packages = vec!["flash-cluster".to_string(), "flash-04-epoll".into()];
        assert_eq!((row.name, row.kind(), row.packages()), ("cluster", Kind::Flash, packages));
        let flash_args = vec!["--threads".into(), "1".into(), "--docroot".into(), "/tmp/it's here".into()];
        let ctx = Context { workspace: Some(ws.path()), profile: "release", flash_args, ..Context::default() };
        assert!(row.launch(&ctx).unwrap_err().contains("flash-04-epoll"), "the copies' binary is needed too");
        std::fs::write(ws.path().join("target/release/flash-04-epoll"), "").unwrap();
        let launch = row.launch(&ctx).unwrap();
        let copy = ws.path().join("target/release/flash-04-epoll").display().to_string();
        let backend = format!("'{copy}' --port {{port}} --quiet '--threads' '1' '--docroot' '/tmp/it'\\''s here'");
        let want = [
            "--port",
            "0",
            "--quiet",
            "--threads",
            "1",
            "--docroot",
            "/tmp/it's here",
            "--backend",
            &backend,
            "--size",
            "2",
            "--queue",
            "1024",
        ];
        assert_eq!(launch.args, want);
        assert!(matches!(launch.port, PortRule::Announced));
        let args = build_args("release", &packages_of(LADDER.iter()));
        for bin in ["flash-cluster", "flash-04-epoll"] {
            assert_eq!(args.iter().filter(|a| *a == bin).count(), 1, "{bin} built once: {args:?}");
        }
    }

    #[test]
    fn nginx_is_found_on_path_and_given_a_folder_of_its_own() {
        use std::os::unix::fs::PermissionsExt;
        let bin = tempfile::Builder::new().prefix("flash-load-path-").tempdir().unwrap();
        let fake = bin.path().join("nginx");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        assert_eq!(find_on_path("nginx", Some(bin.path().as_os_str())), None, "a file that is not executable");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), bin.path()]).unwrap();
        assert_eq!(find_on_path("nginx", Some(&path)), Some(fake.clone()));
        let ctx = Context { path: Some(path), ..Context::default() };
        let launch = LADDER.iter().find(|r| r.start == Start::Nginx).unwrap().launch(&ctx).unwrap();
        let prefix = launch.scratch.as_ref().unwrap().path().to_path_buf();
        let PortRule::ConfigFile { path, template } = &launch.port else { panic!("{:?}", launch.port) };
        assert_eq!(path, &prefix.join("nginx.conf"));
        assert!(template.contains("listen 127.0.0.1:{PORT};") && template.contains("master_process off;"));
        assert!(template.contains(&format!("pid {}/nginx.pid;", prefix.display())));
        assert_eq!((launch.program, launch.args.last().map(String::as_str)), (fake, Some("stderr")));
        drop(launch.scratch);
        assert!(!prefix.exists(), "nginx's folder goes with the launch");
    }
}
