//! `flash-replog`: the replicated log, the application the ladder of servers exists for. It runs
//! on server 07 (an event loop per core) and answers every request that must wait (for
//! acknowledgements, for a consistent read's safe time, for an `fsync`) through
//! [`Reply::Later`], so that no event loop ever blocks on another node or on the disk.
//!
//! Two systems share one crate and one durable log ([`wal`]):
//!
//! - **Primary/secondary** ([`primary`], [`secondary`]): a primary numbers each message, appends
//!   it, replicates it to every secondary in batches, and answers the client once `w` nodes hold
//!   it durably (the write concern, Kafka's `acks`). Secondaries show only their contiguous
//!   prefix; a secondary that comes back is caught up from where it stopped.
//! - **The multi-writer log** ([`peer`], `--role peer`): every peer accepts writes, stamps them
//!   with its clock, and sends them to every other peer; a fast view lists entries in arrival
//!   order, and a consistent read at time T lists the entries stamped ≤ T in (stamp, peer) order,
//!   identical on every peer, once every peer has passed T or the safe-to-advance time is up.
//!
//! This file holds the command line, the application that routes requests to the node's role,
//! and what every role shares: the token check and JSON answers. `main.rs` is
//! `main_with(.., flash_07_reactors::serve, ReplogApp::launch)` plus the `demo` subcommand.

pub mod crc32;
pub mod demo;
pub mod faults;
pub mod link;
pub mod peer;
pub mod primary;
pub mod secondary;
pub mod store;
pub mod timer;
pub mod wal;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use flash_common::config::parse_duration;
use flash_common::server::Setup;
use flash_common::{App, Body, Reply, Request, Response};
use serde_json::{json, Value};

use crate::faults::{parse_delay, parse_probability, Delay};
use crate::link::{parse_url, NodeUrl};
use crate::wal::Fsync;

/// The cluster page, served by a primary or a secondary at `/`.
const CLUSTER_PAGE: &str = include_str!("../../www/cluster.html");
/// The multi-writer log's page (after the Lingua Franca example's `logging.html`), served by a
/// peer at `/`.
const LOGGING_PAGE: &str = include_str!("../../www/logging.html");

/// What this node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Numbers and replicates messages; the only node that accepts writes.
    Primary,
    /// Holds a copy of the primary's log.
    Secondary,
    /// One of several equal writers of the multi-writer log.
    Peer,
}

/// Parses a role; the original's `master` means primary.
fn parse_role(s: &str) -> Result<Role, String> {
    match s.to_ascii_lowercase().as_str() {
        "primary" | "master" => Ok(Role::Primary),
        "secondary" => Ok(Role::Secondary),
        "peer" => Ok(Role::Peer),
        _ => Err(format!("`{s}` is not a role: use primary, secondary or peer")),
    }
}

/// How a secondary spaces its registration attempts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The same interval every time.
    Uniform,
    /// The interval grows by 5/4 after each attempt (as the original's), up to 5 s.
    Exponential,
}

/// The replicated log's flags, beside the server's own.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Replicated log")]
pub struct Flags {
    /// This node's role: primary (or master), secondary, or peer (the multi-writer log).
    #[arg(long, env = "SERVER_TYPE", value_parser = parse_role, default_value = "primary")]
    pub role: Role,
    /// This node's name in answers and in `/health` [default: 127.0.0.1:PORT].
    #[arg(long, env = "HOSTNAME")]
    pub id: Option<String>,
    /// Where the durable log lives [default: replog-data/<id>].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// When the log calls fsync: batch (group commit), always (one per record), or never (a
    /// crashed process loses nothing, a power cut loses what the kernel had not written).
    #[arg(long, value_enum, default_value = "batch")]
    pub fsync: Fsync,
    /// Primary: a secondary's URL (repeat the flag; it may not be running yet).
    #[arg(long = "secondary", value_parser = parse_url, value_name = "URL")]
    pub secondaries: Vec<NodeUrl>,
    /// Secondary: the primary's URL, to register with at start.
    #[arg(long, value_parser = parse_url, value_name = "URL")]
    pub primary: Option<NodeUrl>,
    /// Secondary: how registration retries are spaced.
    #[arg(long, value_enum, default_value = "exponential")]
    pub retry_mechanism: Retry,
    /// Secondary: the first pause between registration attempts (e.g. 200ms, 1s).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub retry_interval: Duration,
    /// Peer: every peer's URL, this one's included, in the same order on every peer (a peer's
    /// index is its place in the list).
    #[arg(long = "peer", value_parser = parse_url, value_name = "URL")]
    pub peers: Vec<NodeUrl>,
    /// Peer: the safe-to-advance time: a consistent read at T answers by T + this at the latest.
    #[arg(long, default_value_t = 3000)]
    pub sta_ms: u64,
    /// Require `Authorization: Bearer SECRET` (or `x-token: SECRET`) on every endpoint but
    /// /healthcheck and the pages; nodes use it to talk to each other.
    #[arg(long, env = "API_KEY", value_name = "SECRET")]
    pub token: Option<String>,
    /// Heartbeat period: a node is suspected after 2 missed heartbeats, unhealthy after 5.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub heartbeat_ms: u64,
    /// Timeout of each node-to-node call (connect, send, answer).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub node_timeout: Duration,
    /// Fault injection (secondary, peer): wait LO..HI ms (or the original's `lower,upper` in
    /// seconds) before acknowledging each replicated batch.
    #[arg(long, env = "DELAY", value_parser = parse_delay, help_heading = "Fault injection")]
    pub delay: Option<Delay>,
    /// Fault injection (secondary, peer): answer 500 after appending a batch, with probability P.
    #[arg(long, default_value = "0", value_parser = parse_probability, value_name = "P", help_heading = "Fault injection")]
    pub fail_after_append: f64,
}

/// What every role is told about itself.
pub struct Me {
    /// The node's name.
    pub id: String,
    /// The node's own URL (`http://` + the bound address).
    pub url: String,
    /// The bound address (a peer finds itself in `--peer` by it).
    pub addr: std::net::SocketAddr,
    /// Where its log lives.
    pub data_dir: PathBuf,
    /// The cluster's token, if any.
    pub token: Option<String>,
    /// `--heartbeat-ms`.
    pub heartbeat: Duration,
    /// `--node-timeout`.
    pub node_timeout: Duration,
    /// `--max-body`: the largest body this node takes, and (the nodes of a cluster are started
    /// alike) the largest delivery another node takes from it.
    pub max_body: u64,
}

/// Room a delivery keeps for all but its messages' text: the envelope (the sender, its id, its
/// clock) and each entry's own fields.
pub const ENVELOPE: u64 = 256;

/// Whether a message of `text` fits a delivery to a node that takes `max_body` bytes: one that
/// does not is refused when written (413), or no node could ever take it and every delivery
/// after it would fail.
pub fn fits_a_delivery(text: &str, max_body: u64) -> bool {
    serde_json::to_string(text).is_ok_and(|json| json.len() as u64 + ENVELOPE <= max_body)
}

/// The 413 for a message that does not fit a delivery.
pub fn too_long_to_deliver(max_body: u64) -> Response {
    error(
        413,
        &format!(
            "a message this long could not be delivered to the other nodes, which take at most {max_body} bytes \
             (--max-body) with {ENVELOPE} of them for the envelope"
        ),
    )
}

/// The node this process is.
enum Node {
    /// `--role primary`.
    Primary(Arc<primary::Primary>),
    /// `--role secondary`.
    Secondary(Arc<secondary::Secondary>),
    /// `--role peer`.
    Peer(Arc<peer::Peer>),
}

/// The replicated log as a Flash application.
pub struct ReplogApp {
    /// The node, by role.
    node: Node,
    /// `--token`.
    token: Option<String>,
}

impl ReplogApp {
    /// Builds the node once the server has bound its port: recovers its log, starts its
    /// background threads, and arranges for SIGINT/SIGTERM to answer whoever is still waiting.
    pub fn launch(setup: Setup<'_, Flags>) -> io::Result<ReplogApp> {
        let app = ReplogApp::new(setup)?;
        app.watch_signals()?;
        Ok(app)
    }

    /// [`ReplogApp::launch`] without the signal watcher.
    pub fn new(setup: Setup<'_, Flags>) -> io::Result<ReplogApp> {
        let flags = setup.flags;
        let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let id = flags.id.clone().unwrap_or_else(|| setup.addr.to_string());
        let me = Me {
            url: format!("http://{}", setup.addr),
            addr: setup.addr,
            data_dir: flags.data_dir.clone().unwrap_or_else(|| PathBuf::from("replog-data").join(id.replace(':', "_"))),
            id,
            token: flags.token.clone().filter(|t| !t.is_empty()),
            heartbeat: Duration::from_millis(flags.heartbeat_ms),
            node_timeout: flags.node_timeout,
            max_body: setup.config.max_body,
        };
        let node = match flags.role {
            Role::Primary => {
                if flags.primary.is_some() || !flags.peers.is_empty() {
                    return Err(bad("--primary and --peer do not apply to a primary (use --secondary)".into()));
                }
                Node::Primary(primary::Primary::start(me, &flags)?)
            }
            Role::Secondary => {
                if !flags.secondaries.is_empty() || !flags.peers.is_empty() {
                    return Err(bad("--secondary and --peer do not apply to a secondary (use --primary)".into()));
                }
                Node::Secondary(secondary::Secondary::start(me, &flags)?)
            }
            Role::Peer => {
                if !flags.secondaries.is_empty() || flags.primary.is_some() {
                    return Err(bad("--secondary and --primary do not apply to a peer (use --peer)".into()));
                }
                Node::Peer(peer::Peer::start(me, &flags)?)
            }
        };
        Ok(ReplogApp { node, token: flags.token.filter(|t| !t.is_empty()) })
    }

    /// On the first SIGINT or SIGTERM, before the server drains its connections: stop taking
    /// writes and answer every client still waiting (a write short of its acknowledgements), so
    /// that the drain can finish. The server's own handler, registered first, does the rest.
    fn watch_signals(&self) -> io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new(flash_common::shutdown::STOP_SIGNALS)?;
        let stop: Box<dyn Fn() + Send> = match &self.node {
            Node::Primary(p) => {
                let p = p.clone();
                Box::new(move || p.begin_stop())
            }
            Node::Secondary(s) => {
                let s = s.clone();
                Box::new(move || s.begin_stop())
            }
            Node::Peer(p) => {
                let p = p.clone();
                Box::new(move || p.begin_stop())
            }
        };
        std::thread::Builder::new().name("replog-signals".into()).spawn(move || {
            if signals.forever().next().is_some() {
                stop();
            }
        })?;
        Ok(())
    }

    /// Checks the token: `Ok` when none is set or the request carries it.
    fn authorize(&self, req: &Request<'_>) -> Result<(), Response> {
        let Some(token) = &self.token else { return Ok(()) };
        let given = req
            .header("authorization")
            .and_then(|v| v.strip_prefix(b"Bearer ".as_slice()))
            .or_else(|| req.header("x-token"));
        match given {
            None => Err(error(401, "this node needs a token: Authorization: Bearer SECRET, or x-token: SECRET")
                .with_header("WWW-Authenticate", "Bearer")),
            Some(g) if constant_time_eq(g, token.as_bytes()) => Ok(()),
            Some(_) => Err(error(403, "wrong token")),
        }
    }
}

impl App for ReplogApp {
    fn call(&self, req: &Request<'_>) -> Reply {
        let get = matches!(req.method(), "GET" | "HEAD");
        match req.path() {
            "/healthcheck" if get => return Reply::Now(Response::text(200, "HEALTHY")),
            "/" | "/index.html" | "/cluster.html" | "/logging.html" if get => return Reply::Now(self.page(req.path())),
            _ => {}
        }
        if let Err(res) = self.authorize(req) {
            return Reply::Now(res);
        }
        match &self.node {
            Node::Primary(p) => p.call(p, req),
            Node::Secondary(s) => s.call(s, req),
            Node::Peer(p) => p.call(p, req),
        }
    }

    fn shutdown(&self) {
        match &self.node {
            Node::Primary(p) => p.stop(),
            Node::Secondary(s) => s.stop(),
            Node::Peer(p) => p.stop(),
        }
    }
}

impl ReplogApp {
    /// The pages carry no data (they fetch it with the visitor's token), so they need none.
    fn page(&self, path: &str) -> Response {
        let page = match (path, &self.node) {
            ("/logging.html", _) | ("/" | "/index.html", Node::Peer(_)) => LOGGING_PAGE,
            _ => CLUSTER_PAGE,
        };
        Response::new(200).with_body("text/html; charset=utf-8", Body::Static(page.as_bytes()))
    }
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON error: `{"reason": ...}` with this status.
pub fn error(status: u16, reason: &str) -> Response {
    Response::json(status, &json!({"reason": reason}))
}

/// A JSON error carrying more fields than the reason.
pub fn error_with(status: u16, reason: &str, mut extra: Value) -> Response {
    extra["reason"] = json!(reason);
    Response::json(status, &extra)
}

/// 405 naming what the resource allows.
pub fn not_allowed(allow: &'static str) -> Response {
    error(405, &format!("this resource allows {allow}")).with_header("Allow", allow)
}

/// The request's body as a JSON object, or a 400 that says what is wrong with it.
pub fn json_object(req: &Request<'_>) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(req.body()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(error(400, &format!("the body must be a JSON object, not {}", kind(&other)))),
        Err(e) => Err(error(400, &format!("malformed JSON: {e}"))),
    }
}

/// A JSON value's kind, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Sends answers gathered under a node's lock, after it is released (sending wakes an event
/// loop, which is no work to do while holding the lock).
pub(crate) fn send_all(ready: Vec<(flash_common::Responder, Response)>) {
    for (responder, res) in ready {
        responder.send(res);
    }
}

/// The last step of every node's shutdown, once the server has drained: join its background
/// threads (told to stop already), run the timer's remaining tasks so that nobody is left
/// unanswered, and make the log durable.
pub(crate) fn wind_down(
    threads: &std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    timer: &timer::Timer,
    wal: &wal::Wal,
) {
    let threads = std::mem::take(&mut *threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for t in threads {
        let _ = t.join();
    }
    timer.stop();
    wal.flush();
    wal.close();
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn roles_accept_the_originals_names() {
        assert_eq!(parse_role("master"), Ok(Role::Primary));
        assert_eq!(parse_role("Secondary"), Ok(Role::Secondary));
        assert!(parse_role("leader").unwrap_err().contains("primary, secondary or peer"));
    }
}
