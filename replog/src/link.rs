//! The road to one other node: its address, a kept-alive connection, and what we know of its
//! health. Every node-to-node call (a primary delivering to a secondary, a secondary registering,
//! a peer sending its entries) goes through a [`Link`], on a background thread of its own, with
//! blocking I/O and a timeout: no event loop ever waits on another node.
//!
//! Health is judged by time since the node last answered anything (heartbeats make sure we ask
//! at least every `--heartbeat-ms`): Suspected after 2 heartbeats of silence, Unhealthy after 5.
//! Failures are counted per node, as nginx's `max_fails` counts them per upstream: each failure in
//! a row doubles the pause before the next try, from 20 ms up to one heartbeat, so a dead node
//! gets one request per heartbeat and not a storm, and a node that comes back is noticed within
//! one heartbeat.
//!
//! A call waits at most `--node-timeout` for a silent node, and only once: a stale kept-alive
//! connection is retried on a new one, a timeout is not. A stopping node does not wait even that
//! long: its [`Cut`] shuts the connection in use down, and the blocked call returns at once.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flash_common::client::{Client, ClientResponse};
use serde_json::Value;

/// A node's address as given on the command line, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeUrl {
    /// `http://host:port`, without a trailing slash: the node's name in membership lists.
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
}

/// Parses `http://HOST:PORT` (a trailing `/` is allowed; nothing else after the port is).
pub fn parse_url(s: &str) -> Result<NodeUrl, String> {
    let rest = s.strip_prefix("http://").ok_or_else(|| format!("`{s}` is not an http:// URL"))?;
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.is_empty() || hostport.contains('/') {
        return Err(format!("`{s}` must be http://HOST:PORT, with no path"));
    }
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("`{s}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))?;
    Ok(NodeUrl { url: format!("http://{hostport}"), addr })
}

/// How a node looks from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Answered within the last two heartbeats.
    Healthy,
    /// Silent for two heartbeats or more.
    Suspected,
    /// Silent for five heartbeats or more, or never heard from.
    Unhealthy,
}

impl Status {
    /// The name `/health` shows.
    pub fn name(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Suspected => "suspected",
            Status::Unhealthy => "unhealthy",
        }
    }
}

/// What we know of a node's health, and when we may call it next.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// When it last answered (any status: a node that answers 500 is alive).
    pub last_ok: Option<Instant>,
    /// When we last sent it anything (heartbeats are due a heartbeat after this).
    pub last_sent: Option<Instant>,
    /// Failures in a row; each doubles the pause before the next try.
    pub fails: u32,
    /// Not before this instant (the backoff after a failure).
    pub next_try: Option<Instant>,
}

impl Health {
    /// Its status, judged with heartbeat period `hb`.
    pub fn status(&self, hb: Duration) -> Status {
        match self.last_ok.map(|t| t.elapsed()) {
            Some(quiet) if quiet < 2 * hb => Status::Healthy,
            Some(quiet) if quiet < 5 * hb => Status::Suspected,
            _ => Status::Unhealthy,
        }
    }

    /// It answered.
    pub fn answered(&mut self) {
        self.last_ok = Some(Instant::now());
    }

    /// It answered as we hoped: the backoff is over.
    pub fn succeeded(&mut self) {
        self.answered();
        self.fails = 0;
        self.next_try = None;
    }

    /// It failed (no answer, or an answer that means "try again"): pause before the next try.
    pub fn failed(&mut self, hb: Duration) {
        self.fails = self.fails.saturating_add(1);
        let pause = Duration::from_millis(10).saturating_mul(1 << self.fails.min(16)).min(hb);
        self.next_try = Some(Instant::now() + pause);
    }

    /// When a delivery thread should next call this node: `None` to call now (there is `work`,
    /// or a heartbeat is due, and no backoff holds it back), else how long to wait before
    /// looking again (a wake-up may come sooner, when new work arrives).
    pub fn next_call(&self, work: bool, hb: Duration) -> Option<Duration> {
        let now = Instant::now();
        if let Some(t) = self.next_try.filter(|t| now < *t) {
            return Some(t - now);
        }
        let due = self.last_sent.map_or(now, |t| t + hb);
        (!work && now < due).then(|| due - now)
    }

    /// Counts a delivery's outcome: an answer is a sign of life; only a batch taken (or a gap,
    /// which is resumed at once) ends the backoff.
    pub fn record(&mut self, d: &Delivered, hb: Duration) {
        match d {
            Delivered::Took(_) => self.succeeded(),
            Delivered::Gap(_) => self.answered(),
            Delivered::Refused => {
                self.answered();
                self.failed(hb);
            }
            Delivered::Silent => self.failed(hb),
        }
    }

    /// Forget the backoff: the node said it is back (it registered again).
    pub fn retry_now(&mut self) {
        self.fails = 0;
        self.next_try = None;
    }
}

/// What the answer to a delivery (a primary's to a secondary, a peer's to a peer) means: the
/// same protocol on both roads, so read in one place.
pub enum Delivered {
    /// 200: the node took the batch; its answer.
    Took(Value),
    /// 409 with `have` (and no `conflict`): it holds less than the batch assumed; resume there.
    Gap(Value),
    /// It answered and did not take the batch: an injected failure or a stopping node (retried
    /// after a pause), or a refusal (a foreign id, a wrong token), which is also logged.
    Refused,
    /// No answer at all.
    Silent,
}

impl Delivered {
    /// Reads the answer of `url` to a delivery.
    pub fn from(result: io::Result<ClientResponse>, url: &str) -> Delivered {
        let res = match result {
            Ok(res) => res,
            Err(_) => return Delivered::Silent,
        };
        let json: Option<Value> = serde_json::from_slice(&res.body).ok();
        match (res.status, json) {
            (200, Some(v)) => Delivered::Took(v),
            (409, Some(v)) if v.get("have").is_some() && v.get("conflict").is_none() => Delivered::Gap(v),
            (status, _) => {
                if matches!(status, 400..=499) {
                    flash_common::log_line!("replog: {url} refused a batch: {status} {}", res.text().trim());
                }
                Delivered::Refused
            }
        }
    }

    /// The answering node's `id`, if the answer has one.
    pub fn id(&self) -> Option<String> {
        match self {
            Delivered::Took(v) | Delivered::Gap(v) => v.get("id").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    /// The answer's field `name` as a number, if it has one.
    pub fn number(&self, name: &str) -> Option<u64> {
        match self {
            Delivered::Took(v) | Delivered::Gap(v) => v.get(name).and_then(Value::as_u64),
            _ => None,
        }
    }
}

/// Ends a [`Link`]'s calls from another thread, for a node that is stopping: the call in flight
/// returns at once (its connection is shut down) and no new one starts. Without it, a delivery
/// thread blocked on a silent node (SIGSTOP, a partition) holds the shutdown for a whole
/// `--node-timeout` after the node has nothing left to wait for.
#[derive(Clone, Default)]
pub struct Cut(Arc<Mutex<CutState>>);

/// What a [`Cut`] shares with its link.
#[derive(Default)]
struct CutState {
    /// Cut: every call from now on fails at once.
    done: bool,
    /// A second handle on the link's open connection, to shut it down from the cutting thread.
    stream: Option<TcpStream>,
}

impl Cut {
    /// Ends the call in flight, if any, and every later one.
    pub fn now(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.done = true;
        if let Some(stream) = state.stream.take() {
            // A blocked read or write on the other handle returns at once: shutdown acts on the
            // connection, not on one descriptor, as closing ours would.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Keeps a handle on the link's new connection; fails (closing it) if the cut came first.
    fn watch(&self, stream: TcpStream) -> io::Result<()> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.done {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(stopping());
        }
        state.stream = Some(stream);
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).done
    }
}

/// The error of a call made after its link was cut.
fn stopping() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "this node is stopping")
}

/// A kept-alive connection to one node, reopened as needed.
pub struct Link {
    /// Where the node is.
    pub node: NodeUrl,
    /// Sent as `Authorization: Bearer` when the cluster has a token.
    token: Option<String>,
    /// Timeout of every connect, read and write.
    timeout: Duration,
    /// The open connection, if any.
    client: Option<Client>,
    /// How another thread ends this link's calls (a default one nobody else holds, unless the
    /// owner passed its own with [`Link::cut_by`]).
    cut: Cut,
}

impl Link {
    /// A link to `node`; nothing is connected until the first call.
    pub fn new(node: NodeUrl, token: Option<String>, timeout: Duration) -> Link {
        Link { node, token, timeout, client: None, cut: Cut::default() }
    }

    /// The same link, its calls ended by `cut`.
    pub fn cut_by(self, cut: Cut) -> Link {
        Link { cut, ..self }
    }

    /// `POST path` with a JSON body. A kept-alive connection that the node closed meanwhile (it
    /// restarted, or timed us out) fails the first try; the call is then made once more on a
    /// new connection. Every call made this way is idempotent (deliveries are deduplicated by id,
    /// registration by URL), so sending twice is safe.
    ///
    /// A timeout is not retried: the node took the connection and did not answer within
    /// `--node-timeout`, which says nothing stale about the connection, and a new one would wait
    /// as long again (a primary stopping with its secondaries SIGSTOPped waited two timeouts).
    pub fn post(&mut self, path: &str, body: &[u8]) -> io::Result<ClientResponse> {
        let reused = self.client.is_some();
        match self.try_post(path, body) {
            Err(e) if reused && !timed_out(&e) => self.try_post(path, body),
            other => other,
        }
    }

    fn try_post(&mut self, path: &str, body: &[u8]) -> io::Result<ClientResponse> {
        if self.client.is_none() {
            if self.cut.is_done() {
                return Err(stopping());
            }
            let mut client = Client::connect(self.node.addr, self.timeout)?;
            self.cut.watch(client.stream().try_clone()?)?;
            self.client = Some(client);
        }
        let client = self.client.as_mut().ok_or_else(|| io::Error::other("no connection"))?;
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let result = client.request("POST", path, &headers, body);
        let keep =
            result.as_ref().is_ok_and(|r| !r.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")));
        if !keep {
            self.client = None;
        }
        result
    }
}

/// Whether a call failed because the node was silent for the whole timeout (a read or write
/// timeout is `WouldBlock` on Unix, a connect timeout `TimedOut`).
fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalized() {
        let u = parse_url("http://127.0.0.1:8081/").unwrap();
        assert_eq!(u.url, "http://127.0.0.1:8081");
        assert_eq!(u.addr, "127.0.0.1:8081".parse().unwrap());
        assert!(parse_url("127.0.0.1:8081").unwrap_err().contains("http://"));
        assert!(parse_url("http://127.0.0.1:8081/messages").unwrap_err().contains("no path"));
        assert!(parse_url("http://127.0.0.1").is_err(), "a port is required");
    }

    #[test]
    fn health_follows_silence_and_backs_off() {
        let hb = Duration::from_millis(100);
        let mut h = Health::default();
        assert_eq!(h.status(hb), Status::Unhealthy, "never heard from");
        h.succeeded();
        assert_eq!(h.status(hb), Status::Healthy);
        h.last_ok = Some(Instant::now() - 3 * hb);
        assert_eq!(h.status(hb), Status::Suspected);
        h.last_ok = Some(Instant::now() - 6 * hb);
        assert_eq!(h.status(hb), Status::Unhealthy);
        let mut pauses = Vec::new();
        for _ in 0..8 {
            h.failed(hb);
            pauses.push(h.next_try.unwrap() - Instant::now());
        }
        assert!(pauses[1] > pauses[0], "each failure waits longer");
        assert!(pauses.iter().all(|p| *p <= hb), "never longer than a heartbeat");
        h.retry_now();
        assert!(h.next_try.is_none());
    }
}
