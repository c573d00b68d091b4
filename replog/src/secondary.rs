//! A secondary: holds a copy of the primary's log, takes batches from it on `POST /replicate`,
//! and acknowledges each batch once it is on disk here.
//!
//! The rules that make delivery safe to retry, whatever the network did:
//!
//! - A batch is a run of consecutive ids. Ids this node already holds are checked (the same
//!   message: acknowledged, as Kafka acknowledges an idempotent producer's duplicate; another
//!   message under the same id: 409, a foreign id, nothing stored) and the rest appended.
//! - A batch that starts past the end of what this node holds would leave a hole: 409 with
//!   `have`, and the primary resumes from there. So this node only ever holds a contiguous
//!   prefix, and `GET /messages` can never show message 4 before message 3.
//! - The acknowledgement is `last_id`, the last message durable here: it counts towards `w`.
//!
//! At start it recovers its own log from disk, then registers with `--primary` (retrying until
//! the primary answers), which is also how it says "I am back"; a primary that already knew it
//! catches it up anyway, from the `last_id` of its first heartbeat.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use flash_common::{deferred, Reply, Request, Responder, Response};
use serde_json::{json, Value};

use crate::faults::Faults;
use crate::link::{Link, NodeUrl};
use crate::primary::report_cut;
use crate::store::{self, Message};
use crate::timer::Timer;
use crate::wal::Wal;
use crate::{error, error_with, wind_down, Flags, Me, Retry};

/// The longest pause between two registration attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// A secondary node.
pub struct Secondary {
    /// Who this node is.
    me: Me,
    /// The primary's URL: `--primary`, or learnt from its deliveries.
    primary: Mutex<Option<String>>,
    /// What changes, behind one lock.
    state: Mutex<State>,
    /// Wakes the registration thread when the node stops.
    wake: Condvar,
    /// The durable log (record n = message n).
    wal: Wal,
    /// Delayed acknowledgements (`--delay`).
    timer: Timer,
    /// `--delay` and `--fail-after-append`.
    faults: Faults,
    /// This node, for callbacks.
    weak: Weak<Secondary>,
    /// The registration thread, if any.
    registrar: Mutex<Vec<JoinHandle<()>>>,
}

/// The secondary's state.
struct State {
    /// Every message held, ids 1..=len with no gap.
    messages: Vec<Message>,
    /// Messages durable here.
    durable: u64,
    /// Deliveries waiting for their last message to be durable.
    waiting: Vec<(u64, Responder)>,
    /// SIGINT/SIGTERM arrived.
    stopping: bool,
}

/// One entry of a delivery.
#[derive(serde::Deserialize)]
struct Entry {
    /// Its id.
    id: u64,
    /// Its text.
    #[serde(rename = "message")]
    text: String,
    /// When the primary accepted it.
    #[serde(rename = "at", default)]
    at_ms: u64,
}

impl Secondary {
    /// Recovers the log and starts registering with the primary, if one is named.
    pub fn start(me: Me, flags: &Flags) -> io::Result<Arc<Secondary>> {
        let recovered = Wal::open(&me.data_dir, flags.fsync)?;
        report_cut(&recovered.cut);
        let messages = store::recover_in(&me.data_dir, &recovered.records)?;
        let durable = messages.len() as u64;
        let timer = Timer::new()?;
        let node = Arc::new_cyclic(|weak| Secondary {
            me,
            primary: Mutex::new(flags.primary.as_ref().map(|p| p.url.clone())),
            state: Mutex::new(State { messages, durable, waiting: Vec::new(), stopping: false }),
            wake: Condvar::new(),
            wal: recovered.wal,
            timer,
            faults: Faults::new(flags.delay, flags.fail_after_append),
            weak: weak.clone(),
            registrar: Mutex::new(Vec::new()),
        });
        if let Some(primary) = flags.primary.clone() {
            let this = node.clone();
            let (mechanism, first) = (flags.retry_mechanism, flags.retry_interval);
            let handle = std::thread::Builder::new()
                .name("replog-register".into())
                .spawn(move || this.register(primary, mechanism, first))?;
            node.registrar.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
        }
        Ok(node)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn primary_url(&self) -> Option<String> {
        self.primary.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Routes a request (the token is already checked).
    pub fn call(&self, _this: &Arc<Secondary>, req: &Request<'_>) -> Reply {
        let (method, path) = (req.method(), req.path());
        let get = matches!(method, "GET" | "HEAD");
        let res = match path {
            "/messages" if get => {
                let s = self.lock();
                match store::list(&s.messages, s.durable, req) {
                    Ok(page) => Response::json(200, &page),
                    Err(reason) => error(400, &reason),
                }
            }
            "/replicate" if method == "POST" => return self.replicate(req),
            "/replicate" => crate::not_allowed("POST"),
            "/health" if get => Response::json(200, &self.health()),
            _ if path == "/messages" || path.starts_with("/messages/") || path.ends_with("register") => {
                let primary = self.primary_url();
                let mut res = error_with(
                    405,
                    &format!(
                        "this node is a secondary: write to the primary ({})",
                        primary.as_deref().unwrap_or("unknown yet")
                    ),
                    json!({"primary": primary}),
                )
                .with_header("Allow", "GET, HEAD");
                if let Some(p) = primary {
                    res = res.with_header("Location", format!("{p}{}", req.target()));
                }
                res
            }
            _ => error(404, "no such endpoint on a secondary"),
        };
        Reply::Now(res)
    }

    /// `GET /health`.
    fn health(&self) -> Value {
        let s = self.lock();
        json!({
            "id": self.me.id, "role": "secondary", "read_only": true, "last_id": s.durable,
            "primary": self.primary_url(),
            "nodes": [{"id": self.me.id, "url": self.me.url, "role": "secondary", "status": "healthy", "acked": s.durable}],
        })
    }

    /// `POST /replicate`: checks the whole batch, stores what is new, acknowledges once durable.
    fn replicate(&self, req: &Request<'_>) -> Reply {
        let (primary, entries) = match parse_batch(req.body()) {
            Ok(b) => b,
            Err(reason) => return Reply::Now(error(400, &reason)),
        };
        let heartbeat = entries.is_empty();
        if let Some(p) = primary.as_deref() {
            let mut known = self.primary.lock().unwrap_or_else(PoisonError::into_inner);
            if known.as_deref() != Some(p) {
                *known = Some(p.to_string());
            }
        }
        let mut s = self.lock();
        let have = s.messages.len() as u64;
        if let Some(first) = entries.first() {
            if first.id > have + 1 {
                return Reply::Now(error_with(
                    409,
                    &format!("gap: this node holds messages 1 to {have}, the batch starts at {}", first.id),
                    json!({"id": self.me.id, "last_id": s.durable, "have": have}),
                ));
            }
        }
        for e in entries.iter().filter(|e| e.id <= have) {
            if s.messages[(e.id - 1) as usize].text != e.text {
                return Reply::Now(error_with(
                    409,
                    &format!("foreign id: message {} here is a different message; nothing was stored", e.id),
                    json!({"id": self.me.id, "last_id": s.durable, "conflict": e.id}),
                ));
            }
        }
        for e in entries.into_iter().filter(|e| e.id > have) {
            let message = Message { id: e.id, text: e.text, at_ms: e.at_ms };
            let weak = self.weak.clone();
            let id = message.id;
            self.wal.append(&message.encode(), move || {
                if let Some(node) = weak.upgrade() {
                    node.durable_here(id);
                }
            });
            s.messages.push(message);
        }
        let target = s.messages.len() as u64;
        let (responder, pending) = deferred();
        // A heartbeat (no entries) is answered at once and never delayed or failed on purpose:
        // the faults are about deliveries, and health must stay measurable.
        if heartbeat {
            let res = self.acknowledgement(&s);
            drop(s);
            responder.send(res);
        } else if s.durable >= target {
            drop(s);
            self.acknowledge(responder);
        } else {
            s.waiting.push((target, responder));
        }
        Reply::Later(pending)
    }

    /// The log says message `id` (and all before it) is on disk here.
    fn durable_here(&self, id: u64) {
        let mut s = self.lock();
        // The whole batch that `id` was written with is durable: the first callback of a batch
        // answers for all of it, and the others find nothing left to do.
        s.durable = s.durable.max(id).max(self.wal.durable().min(s.messages.len() as u64));
        let durable = s.durable;
        let (ready, waiting): (Vec<_>, Vec<_>) = s.waiting.drain(..).partition(|(t, _)| *t <= durable);
        s.waiting = waiting;
        drop(s);
        ready.into_iter().for_each(|(_, r)| self.acknowledge(r));
    }

    /// `{"id", "last_id", "have"}`.
    fn acknowledgement(&self, s: &State) -> Response {
        Response::json(200, &json!({"id": self.me.id, "last_id": s.durable, "have": s.messages.len()}))
    }

    /// Answers a delivery whose messages are durable, with the injected faults.
    fn acknowledge(&self, responder: Responder) {
        if self.faults.fail_now() {
            responder.send(error(500, "injected failure after append (--fail-after-append)"));
            return;
        }
        match self.faults.delay() {
            Some(d) => {
                let weak = self.weak.clone();
                self.timer.after(d, move || match weak.upgrade() {
                    Some(node) => {
                        let res = node.acknowledgement(&node.lock());
                        responder.send(res);
                    }
                    None => responder.send(error(503, "stopping")),
                });
            }
            None => {
                let res = self.acknowledgement(&self.lock());
                responder.send(res);
            }
        }
    }

    /// The registration thread: `POST /register` until the primary answers.
    fn register(&self, primary: NodeUrl, mechanism: Retry, first: Duration) {
        let mut link = Link::new(primary.clone(), self.me.token.clone(), self.me.node_timeout);
        let body = serde_json::to_vec(&json!({"url": self.me.url, "id": self.me.id})).unwrap_or_default();
        let mut pause = first;
        loop {
            match link.post("/register", &body) {
                Ok(res) if res.status == 200 => {
                    flash_common::log_line!("replog: registered with the primary at {}", primary.url);
                    return;
                }
                Ok(res) => flash_common::log_line!(
                    "replog: the primary refused registration: {} {}",
                    res.status,
                    res.text().trim()
                ),
                Err(_) => {}
            }
            let mut s = self.lock();
            if !s.stopping {
                s = self.wake.wait_timeout(s, pause).unwrap_or_else(PoisonError::into_inner).0;
            }
            if s.stopping {
                return;
            }
            if mechanism == Retry::Exponential {
                pause = (pause * 5 / 4).min(MAX_RETRY_PAUSE);
            }
        }
    }

    /// SIGINT/SIGTERM: stop registering.
    pub fn begin_stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    /// The server has drained: answer what waits, make the log durable.
    pub fn stop(&self) {
        self.begin_stop();
        wind_down(&self.registrar, &self.timer, &self.wal);
    }
}

/// A delivery as it arrives: `{"primary": URL, "entries": [{"id": N, "message": S, "at": MS}]}`.
/// Parsed into types rather than a `serde_json::Value`: a batch of thousands of messages is the
/// hot path of replication, and a typed parse allocates once per message instead of per field.
#[derive(serde::Deserialize)]
struct Batch {
    /// The sender's URL.
    #[serde(default)]
    primary: Option<String>,
    /// The messages, ids consecutive.
    entries: Vec<Entry>,
}

/// Reads and checks a delivery: ids from 1 and consecutive.
fn parse_batch(body: &[u8]) -> Result<(Option<String>, Vec<Entry>), String> {
    let batch: Batch = serde_json::from_slice(body).map_err(|e| format!("malformed delivery: {e}"))?;
    for (i, pair) in batch.entries.windows(2).enumerate() {
        if pair[1].id != pair[0].id + 1 {
            return Err(format!(
                "ids in a batch must be consecutive: entry {i} is {}, the next {}",
                pair[0].id, pair[1].id
            ));
        }
    }
    if batch.entries.first().is_some_and(|e| e.id == 0) {
        return Err("message ids start at 1".into());
    }
    Ok((batch.primary, batch.entries))
}
