//! `flash-replog demo`: a whole cluster on this machine in one command, for a newcomer. It starts
//! a primary with two secondaries (or, with `--peers 3`, three peers of the multi-writer log) as
//! child processes of this one, prints each node's URL and the page to open, and on Ctrl-C (or
//! SIGTERM) stops them all and waits for them to finish.
//!
//! The nodes are this same binary, started with the flags a reader would type by hand: the demo
//! prints those command lines too, so that it teaches the deployment rather than hiding it. The
//! first line it prints is `listening on http://...` with the primary's (or first peer's)
//! address, like every Flash server, so the tests and tools that start servers start it too.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use clap::Parser;

use crate::wal::Fsync;

/// Starts a replicated log on this machine: a primary with two secondaries, or N peers.
#[derive(Parser, Debug)]
#[command(name = "flash-replog demo")]
pub struct DemoArgs {
    /// Start this many peers of the multi-writer log instead of a primary and secondaries.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub peers: Option<u16>,
    /// How many secondaries the primary gets.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=16))]
    pub secondaries: u16,
    /// The primary's (or first peer's) port; the others take free ports (0 = any).
    #[arg(long, short, default_value_t = 0)]
    pub port: u16,
    /// Where the nodes keep their logs [default: a new folder under the system's temporary
    /// folder, removed at exit]. Give one to keep the logs across demos.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Passed to every node.
    #[arg(long, value_enum, default_value = "batch")]
    pub fsync: Fsync,
    /// Passed to every node.
    #[arg(long, default_value_t = 500)]
    pub heartbeat_ms: u64,
    /// Passed to every peer.
    #[arg(long, default_value_t = 3000)]
    pub sta_ms: u64,
    /// Show every node's access log (off by default: heartbeats would fill the terminal).
    #[arg(long)]
    pub access_log: bool,
}

/// One node the demo started.
struct Started {
    /// Its role and number, as printed.
    name: String,
    /// The process.
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
}

/// Runs the demo with the arguments after `demo`.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = DemoArgs::parse_from(std::iter::once("flash-replog demo".to_string()).chain(args));
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &DemoArgs) -> io::Result<()> {
    // Catch Ctrl-C before the first child starts, so that none is left behind.
    let mut signals = signal_hook::iterator::Signals::new(flash_common::shutdown::STOP_SIGNALS)?;
    let (root, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("flash-replog-demo-{}", std::process::id())), true),
    };
    let mut nodes = Vec::new();
    let started = start_all(args, &root, &mut nodes);
    if let Err(e) = started {
        stop_all(&mut nodes);
        return Err(e);
    }
    let first = &nodes[0];
    let mut out = io::stdout().lock();
    writeln!(out, "listening on http://{}", first.addr)?;
    writeln!(out, "flash-replog demo: {} nodes, logs under {}", nodes.len(), root.display())?;
    for n in &nodes {
        writeln!(out, "  {:<12} http://{}", n.name, n.addr)?;
    }
    let url = format!("http://{}", first.addr);
    writeln!(out, "Open {url}/ in a browser, or try:")?;
    if args.peers.is_some() {
        writeln!(out, "  curl -d '{{\"log\": \"hello\"}}' {url}/log")?;
        writeln!(out, "  curl {url}/getlogs_consistent")?;
    } else {
        writeln!(out, "  curl -d '{{\"message\": \"hello\"}}' '{url}/messages?w={}'", nodes.len())?;
        writeln!(out, "  curl {url}/health")?;
    }
    writeln!(out, "Ctrl-C stops them all.")?;
    out.flush()?;
    drop(out);
    let _ = signals.forever().next();
    stop_all(&mut nodes);
    if temporary {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// Starts the nodes: secondaries before the primary (it is given their URLs); peers on ports
/// chosen first, since every peer is given the whole list.
fn start_all(args: &DemoArgs, root: &Path, nodes: &mut Vec<Started>) -> io::Result<()> {
    let mut common = vec!["--fsync".to_string(), fsync_name(args.fsync).into()];
    common.extend(["--heartbeat-ms".into(), args.heartbeat_ms.to_string()]);
    if !args.access_log {
        common.push("--quiet".into());
    }
    if let Some(n) = args.peers {
        let mut ports = vec![args.port];
        ports.extend((1..n).map(|_| 0));
        // Every peer needs every peer's URL before it starts: ports are taken now (bound and
        // released; another program could take one in between, which the peer would report).
        for p in ports.iter_mut().filter(|p| **p == 0) {
            *p = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        }
        let mut peer_args = common.clone();
        peer_args.extend(["--role".into(), "peer".into(), "--sta-ms".into(), args.sta_ms.to_string()]);
        for p in &ports {
            peer_args.extend(["--peer".into(), format!("http://127.0.0.1:{p}")]);
        }
        for (i, p) in ports.iter().enumerate() {
            nodes.push(spawn(format!("peer {i}"), *p, &root.join(format!("peer{i}")), &peer_args)?);
        }
        return Ok(());
    }
    let mut primary_args = common.clone();
    primary_args.extend(["--role".into(), "primary".into()]);
    for i in 1..=args.secondaries {
        let mut a = common.clone();
        a.extend(["--role".into(), "secondary".into()]);
        let node = spawn(format!("secondary {i}"), 0, &root.join(format!("secondary{i}")), &a)?;
        primary_args.extend(["--secondary".into(), format!("http://{}", node.addr)]);
        nodes.push(node);
    }
    let primary = spawn("primary".into(), args.port, &root.join("primary"), &primary_args)?;
    nodes.insert(0, primary);
    Ok(())
}

fn fsync_name(f: Fsync) -> &'static str {
    match f {
        Fsync::Always => "always",
        Fsync::Batch => "batch",
        Fsync::Never => "never",
    }
}

/// Starts one node and reads the address it prints.
fn spawn(name: String, port: u16, data: &Path, args: &[String]) -> io::Result<Started> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--port", &port.to_string(), "--threads", "1", "--data-dir"]).arg(data).args(args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    // A process group of its own: Ctrl-C at the terminal reaches the demo only, which then
    // sends each node one SIGTERM (a node that got the terminal's SIGINT too would take the
    // demo's SIGTERM as a second signal and quit without finishing its work).
    cmd.process_group(0);
    // If the demo itself is killed (SIGKILL), the kernel stops its nodes too.
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; it makes one system call (prctl) and touches no shared memory.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(io::Error::from));
    }
    eprintln!("demo: starting {name}: flash-replog --port {port} --data-dir {} {}", data.display(), args.join(" "));
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    // Keep draining, so that a node never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let addr = first.strip_prefix("listening on http://").and_then(|a| a.parse().ok());
    match addr {
        Some(addr) => Ok(Started { name, child, addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other(format!("{name} did not start (it printed {first:?})")))
        }
    }
}

/// SIGTERM to every node, then waits for each (they finish their work and exit 0).
fn stop_all(nodes: &mut [Started]) {
    for n in nodes.iter() {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(n.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    }
    for n in nodes.iter_mut() {
        match n.child.wait() {
            Ok(status) if status.success() => eprintln!("demo: {} stopped", n.name),
            Ok(status) => eprintln!("demo: {} stopped: {status}", n.name),
            Err(e) => eprintln!("demo: {}: {e}", n.name),
        }
    }
}
