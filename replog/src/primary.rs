//! The primary: numbers each message, appends it to its log, delivers it to every secondary, and
//! answers the client once `w` nodes (itself included) hold it durably.
//!
//! ```text
//!  client          primary (reactor)        wal writer        delivery S1      S1
//!    | POST w=2  ->  | id=7, append, wait       |                 |            |
//!    |               |------------------------->| write           |            |
//!    |               |                          |-- written ----->| batch 7..9 |
//!    |               |                          | fsync           |----------->| append, fsync
//!    |               |<-- durable(7): acks=1 ---|                 |<- last 9 --|
//!    |<- 201 --------|<-- acks=2 (S1 acked 9) --------------------|            |
//! ```
//!
//! One owner for the shared state: everything (the messages, each secondary's acknowledged id
//! and health, the writes waiting for acknowledgements) sits behind one std `Mutex`. Every
//! critical section is short and does no I/O, as mini-redis's `db.rs` argues for its own; the log
//! writer, the delivery threads and the timer each take it, do a little, and let go.
//!
//! Who wakes whom: a write appends and waits (`Reply::Later`); the log's writer thread wakes the
//! delivery threads when records reach the kernel and counts the primary's own acknowledgement
//! when they are durable; a delivery thread, one per secondary, sends everything that secondary
//! lacks in one batch (so the batch grows with the load) and counts its acknowledgement when it
//! answers; whoever counts an acknowledgement answers every write that now has its `w`. A slow
//! or dead secondary therefore holds up only the writes that need it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flash_common::date::utc_millis;
use flash_common::{deferred, Reply, Request, Responder, Response};
use serde_json::{json, Value};

use crate::link::{parse_url, Cut, Delivered, Health, Link, NodeUrl, Status};
use crate::store::{self, Message};
use crate::timer::Timer;
use crate::wal::Wal;
use crate::{error, error_with, fits_a_delivery, json_object, kind, not_allowed, now_ms, send_all};
use crate::{too_long_to_deliver, wind_down, Flags, Me, ENVELOPE};

/// The most messages in one delivery.
const MAX_BATCH: u64 = 4096;
/// The longest a stopping primary waits for writes short of their acknowledgements (less when
/// `--node-timeout` is shorter, or when no healthy secondary is left to give them).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The primary node.
pub struct Primary {
    /// Who this node is.
    me: Me,
    /// Everything that changes, behind one lock.
    state: Mutex<State>,
    /// Wakes the delivery threads: records reached the kernel, a secondary registered, stop.
    wake: Condvar,
    /// The durable log (record n = message n).
    wal: Wal,
    /// Write timeouts.
    timer: Timer,
    /// This node, for the callbacks and threads it starts.
    weak: Weak<Primary>,
    /// The delivery threads, joined by [`Primary::stop`].
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The primary's state.
struct State {
    /// Every message, in id order.
    messages: Vec<Message>,
    /// Messages durable here (the primary's own acknowledgement).
    durable: u64,
    /// The secondaries, in the order they became known (indices never change).
    secondaries: Vec<Secondary>,
    /// Writes waiting for their acknowledgements.
    waiters: Vec<Waiter>,
    /// The next waiter's key.
    next_key: u64,
    /// SIGINT/SIGTERM arrived: writes are refused.
    stopping: bool,
    /// The delivery threads must exit.
    closed: bool,
}

/// What the primary knows of one secondary.
struct Secondary {
    /// Its URL.
    node: NodeUrl,
    /// Its name, as it last told us (its host:port until then).
    id: String,
    /// The last message it holds durably, with every one before it.
    acked: u64,
    /// The next message to send it.
    cursor: u64,
    /// Whether `acked` was learnt from it since this primary started (else a probe goes first).
    known: bool,
    /// Its health and backoff.
    health: Health,
    /// Ends its delivery thread's call in flight when the primary stops.
    cut: Cut,
}

/// A write waiting for acknowledgements.
struct Waiter {
    /// Identifies it to its timeout.
    key: u64,
    /// The message's id.
    id: u64,
    /// Acknowledgements wanted.
    w: usize,
    /// Where the answer goes.
    responder: Responder,
}

/// The name of the membership file in the data folder.
const MEMBERS: &str = "members.json";

impl Primary {
    /// Recovers the log and the membership, and starts one delivery thread per secondary.
    pub fn start(me: Me, flags: &Flags) -> io::Result<Arc<Primary>> {
        let recovered = Wal::open(&me.data_dir, flags.fsync)?;
        report_cut(&recovered.cut);
        let messages = store::recover_in(&me.data_dir, &recovered.records)?;
        let mut members = load_members(&me.data_dir)?;
        for s in &flags.secondaries {
            if !members.contains(s) {
                members.push(s.clone());
            }
        }
        save_members(&me.data_dir, &members)?;
        let durable = messages.len() as u64;
        let secondaries = members.into_iter().map(Secondary::new).collect::<Vec<_>>();
        let count = secondaries.len();
        let timer = Timer::new()?;
        let primary = Arc::new_cyclic(|weak| Primary {
            me,
            state: Mutex::new(State {
                messages,
                durable,
                secondaries,
                waiters: Vec::new(),
                next_key: 0,
                stopping: false,
                closed: false,
            }),
            wake: Condvar::new(),
            wal: recovered.wal,
            timer,
            weak: weak.clone(),
            threads: Mutex::new(Vec::new()),
        });
        let weak = primary.weak.clone();
        primary.wal.on_written(move || {
            if let Some(p) = weak.upgrade() {
                // Taking the lock orders this wake-up after any delivery thread's check.
                drop(p.lock());
                p.wake.notify_all();
            }
        });
        for i in 0..count {
            primary.spawn_delivery(i)?;
        }
        Ok(primary)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes a request (the token is already checked).
    pub fn call(&self, this: &Arc<Primary>, req: &Request<'_>) -> Reply {
        let (method, path) = (req.method(), req.path());
        let get = matches!(method, "GET" | "HEAD");
        let res = match path {
            "/messages" if get => self.list(req),
            "/messages" if matches!(method, "POST" | "PUT") => return this.write(req, None),
            "/messages" => not_allowed("GET, HEAD, POST, PUT"),
            _ if path.starts_with("/messages/") => match (method, path["/messages/".len()..].parse::<u64>()) {
                ("POST" | "PUT", Ok(w)) => return this.write(req, Some(w)),
                ("POST" | "PUT", Err(_)) => error(400, "in /messages/K, K is the write concern: a whole number"),
                _ => not_allowed("POST, PUT"),
            },
            "/register" | "/secondary/register" if method == "POST" => self.register(req),
            "/register" | "/secondary/register" => not_allowed("POST"),
            "/health" if get => Response::json(200, &self.health()),
            "/secondary/list" | "/secondaries" if get => Response::json(200, &self.secondary_list()),
            "/replicate" => error(409, "this node is the primary: it sends /replicate, it does not take it"),
            _ => error(404, "no such endpoint on a primary"),
        };
        Reply::Now(res)
    }

    /// `GET /messages`: the messages durable here, in id order.
    fn list(&self, req: &Request<'_>) -> Response {
        let s = self.lock();
        match store::list(&s.messages, s.durable, req) {
            Ok(page) => Response::json(200, &page),
            Err(reason) => error(400, &reason),
        }
    }

    /// `POST /messages`: appends, then answers once `w` nodes hold the message.
    fn write(&self, req: &Request<'_>, path_w: Option<u64>) -> Reply {
        let body = match json_object(req) {
            Ok(b) => b,
            Err(res) => return Reply::Now(res),
        };
        let text = match body.get("message") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => {
                return Reply::Now(error(400, &format!("\"message\" must be a string, not {}", kind(other))))
            }
            None => return Reply::Now(error(400, "missing field \"message\"")),
        };
        if !fits_a_delivery(&text, self.me.max_body) {
            return Reply::Now(too_long_to_deliver(self.me.max_body));
        }
        let number = |name: &str, v: Option<&str>| -> Result<Option<u64>, Response> {
            v.map(|v| v.parse::<u64>().map_err(|_| error(400, &format!("{name} must be a whole number, not `{v}`"))))
                .transpose()
        };
        let body_w = match body.get("w") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(w) => Some(w),
                None => return Reply::Now(error(400, &format!("\"w\" must be a whole number, not {v}"))),
            },
        };
        let query_w = match number("w", req.query_param("w").or_else(|| req.query_param("wc"))) {
            Ok(w) => w,
            Err(res) => return Reply::Now(res),
        };
        let timeout = match number("timeout_ms", req.query_param("timeout_ms")) {
            Ok(t) => t.map(Duration::from_millis),
            Err(res) => return Reply::Now(res),
        };
        let (responder, pending) = deferred();
        let mut s = self.lock();
        let n = 1 + s.secondaries.len();
        let w = path_w.or(query_w).or(body_w).unwrap_or(majority(n) as u64);
        if w < 1 || w > n as u64 {
            return Reply::Now(error_with(
                400,
                &format!("w must be from 1 to {n} (the primary and {} secondaries)", n - 1),
                json!({"w": w, "nodes": n}),
            ));
        }
        if s.stopping {
            return Reply::Now(error(503, "the primary is stopping").with_header("Retry-After", "1"));
        }
        let (healthy, needed) = self.quorum(&s);
        if healthy < needed {
            return Reply::Now(
                error_with(
                    503,
                    "read-only: fewer than a majority of nodes are healthy, so a write could not be made safe",
                    json!({"healthy": healthy, "needed": needed}),
                )
                .with_header("Retry-After", "1"),
            );
        }
        let id = s.messages.len() as u64 + 1;
        let message = Message { id, text, at_ms: now_ms() };
        let weak = self.weak.clone();
        self.wal.append(&message.encode(), move || {
            if let Some(p) = weak.upgrade() {
                p.durable_here(id);
            }
        });
        s.messages.push(message);
        let key = s.next_key;
        s.next_key += 1;
        s.waiters.push(Waiter { key, id, w: w as usize, responder });
        drop(s);
        if let Some(t) = timeout {
            let weak = self.weak.clone();
            self.timer.after(t, move || {
                if let Some(p) = weak.upgrade() {
                    p.expire(key);
                }
            });
        }
        Reply::Later(pending)
    }

    /// Healthy nodes (the primary counts itself) and the majority needed to accept writes.
    fn quorum(&self, s: &State) -> (usize, usize) {
        let hb = self.me.heartbeat;
        let healthy = 1 + s.secondaries.iter().filter(|x| x.health.status(hb) == Status::Healthy).count();
        (healthy, majority(1 + s.secondaries.len()))
    }

    /// The log says message `id` (and all before it) is on disk here.
    fn durable_here(&self, id: u64) {
        let mut s = self.lock();
        // The whole batch that `id` was written with is durable: the first callback of a batch
        // answers for all of it, and the others find nothing left to do.
        s.durable = s.durable.max(id).max(self.wal.durable().min(s.messages.len() as u64));
        let ready = settle(&mut s, &self.me.id);
        drop(s);
        send_all(ready);
    }

    /// A write's `timeout_ms` is up: if it is still waiting, answer 504 with what it has.
    fn expire(&self, key: u64) {
        let mut s = self.lock();
        let Some(i) = s.waiters.iter().position(|w| w.key == key) else { return };
        let waiter = s.waiters.swap_remove(i);
        let acks = acks(&s, waiter.id);
        drop(s);
        waiter.responder.send(error_with(
            504,
            "too few acknowledgements in time; the message is stored and keeps replicating",
            json!({"acks": acks, "w": waiter.w, "message_id": waiter.id}),
        ));
    }

    /// `POST /register {"url": ...}`: a secondary joins (or says it is back).
    fn register(&self, req: &Request<'_>) -> Response {
        let body = match json_object(req) {
            Ok(b) => b,
            Err(res) => return res,
        };
        let node = match body.get("url").and_then(Value::as_str).map(parse_url) {
            Some(Ok(node)) => node,
            Some(Err(reason)) => return error(400, &format!("\"url\": {reason}")),
            None => return error(400, "missing field \"url\" (the secondary's http://HOST:PORT)"),
        };
        if node.url == self.me.url {
            return error(400, "a primary cannot register itself as its own secondary");
        }
        let mut s = self.lock();
        let (index, known) = match s.secondaries.iter().position(|x| x.node == node) {
            Some(i) => (i, true),
            None => {
                s.secondaries.push(Secondary::new(node.clone()));
                (s.secondaries.len() - 1, false)
            }
        };
        if let Some(id) = body.get("id").and_then(Value::as_str) {
            s.secondaries[index].id = id.to_string();
        }
        // Back from a restart or a partition: look again at once, from what it really holds.
        s.secondaries[index].health.retry_now();
        s.secondaries[index].known = false;
        let nodes = 1 + s.secondaries.len();
        if !known {
            let members: Vec<NodeUrl> = s.secondaries.iter().map(|x| x.node.clone()).collect();
            if let Err(e) = save_members(&self.me.data_dir, &members) {
                s.secondaries.pop();
                return error(500, &format!("cannot record the new member: {e}"));
            }
        }
        drop(s);
        self.wake.notify_all();
        if !known {
            if let Err(e) = self.spawn_delivery(index) {
                return error(500, &format!("cannot start delivery to {}: {e}", node.url));
            }
        }
        Response::json(200, &json!({"registered": node.url, "nodes": nodes, "new": !known}))
    }

    /// `GET /health`.
    fn health(&self) -> Value {
        let s = self.lock();
        let hb = self.me.heartbeat;
        let (healthy, needed) = self.quorum(&s);
        let mut nodes = vec![json!({
            "id": self.me.id, "url": self.me.url, "role": "primary", "status": "healthy", "acked": s.durable,
        })];
        nodes.extend(s.secondaries.iter().map(|x| {
            json!({
                "id": x.id, "url": x.node.url, "role": "secondary",
                "status": x.health.status(hb).name(), "acked": x.acked,
            })
        }));
        json!({
            "id": self.me.id, "role": "primary", "read_only": healthy < needed, "healthy": healthy,
            "needed": needed, "last_id": s.messages.len(), "waiting_writes": s.waiters.len(), "nodes": nodes,
        })
    }

    /// `GET /secondary/list`, in the original's shape plus what `/health` says.
    fn secondary_list(&self) -> Value {
        let s = self.lock();
        let hb = self.me.heartbeat;
        let data: Vec<Value> = s
            .secondaries
            .iter()
            .map(|x| {
                let since = x.health.last_ok.map(|t| now_ms().saturating_sub(t.elapsed().as_millis() as u64));
                json!({
                    "id": x.id, "url": x.node.url, "host": x.node.addr.ip().to_string(), "port": x.node.addr.port(),
                    "status": x.health.status(hb).name(), "acked": x.acked,
                    "last_healthy_status": since.map(utc_millis),
                })
            })
            .collect();
        json!({ "data": data })
    }

    fn spawn_delivery(&self, index: usize) -> io::Result<()> {
        let this = self.weak.upgrade().ok_or_else(|| io::Error::other("the primary is gone"))?;
        let handle =
            std::thread::Builder::new().name(format!("replog-deliver-{index}")).spawn(move || this.deliver(index))?;
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
        Ok(())
    }

    /// One secondary's delivery thread: sends what it lacks, in batches, paced by its health;
    /// a heartbeat (an empty batch) when there is nothing to send.
    fn deliver(&self, index: usize) {
        let hb = self.me.heartbeat;
        let (node, cut) = {
            let s = self.lock();
            (s.secondaries[index].node.clone(), s.secondaries[index].cut.clone())
        };
        let mut link = Link::new(node, self.me.token.clone(), self.me.node_timeout).cut_by(cut);
        loop {
            let body = {
                let mut s = self.lock();
                loop {
                    if s.closed {
                        return;
                    }
                    let sec = &s.secondaries[index];
                    let written = self.wal.written().min(s.messages.len() as u64);
                    match sec.health.next_call(!sec.known || sec.cursor <= written, hb) {
                        None => break,
                        Some(pause) => s = self.wake.wait_timeout(s, pause).unwrap_or_else(PoisonError::into_inner).0,
                    }
                }
                let written = self.wal.written().min(s.messages.len() as u64);
                let sec = &s.secondaries[index];
                let (from, to) = if sec.known && sec.cursor <= written {
                    (sec.cursor, written.min(sec.cursor + MAX_BATCH - 1))
                } else {
                    (1, 0)
                };
                let limit = self.me.max_body.saturating_sub(ENVELOPE) as usize;
                let body = batch_body(&self.me.url, &s.messages[(from - 1) as usize..to as usize], limit);
                s.secondaries[index].health.last_sent = Some(Instant::now());
                body
            };
            let outcome = Delivered::from(link.post("/replicate", &body), &link.node.url);
            let mut s = self.lock();
            let len = s.messages.len() as u64;
            let sec = &mut s.secondaries[index];
            sec.health.record(&outcome, hb);
            let (id, last_id) = (outcome.id(), outcome.number("last_id"));
            match (&outcome, id, last_id) {
                (Delivered::Took(_), Some(id), Some(last_id)) => {
                    sec.id = id;
                    sec.acked = last_id.min(len);
                    sec.cursor = sec.acked + 1;
                    sec.known = true;
                }
                // A gap: it holds less than we thought; resume from what it has.
                (Delivered::Gap(_), Some(id), Some(last_id)) => {
                    sec.id = id;
                    sec.acked = last_id.min(len);
                    sec.cursor = outcome.number("have").unwrap_or(last_id).min(len) + 1;
                    sec.known = true;
                }
                // An answer without its fields is no acknowledgement: retry after a pause.
                (Delivered::Took(_) | Delivered::Gap(_), _, _) => sec.health.failed(hb),
                // Refused or silent: paced by `record`; duplicates of a retry are acknowledged.
                _ => {}
            }
            let ready = settle(&mut s, &self.me.id);
            drop(s);
            send_all(ready);
        }
    }

    /// SIGINT/SIGTERM: refuse new writes; give the waiting ones a moment to get their
    /// acknowledgements, then answer the rest with what they have (their messages are stored
    /// here and go on replicating when the primary comes back).
    ///
    /// The moment is at most [`STOP_GRACE`] and at most `--node-timeout` (a delivery in flight
    /// has its answer or its failure by then), and it ends as soon as no waiting write could
    /// still be settled by the secondaries that are healthy: one whose secondaries are silent
    /// is answered now, not when the grace is up.
    pub fn begin_stop(&self) {
        let deadline = Instant::now() + STOP_GRACE.min(self.me.node_timeout);
        let mut s = self.lock();
        s.stopping = true;
        while self.could_settle(&s) && Instant::now() < deadline {
            s = self.wake.wait_timeout(s, Duration::from_millis(20)).unwrap_or_else(PoisonError::into_inner).0;
        }
        let left: Vec<Waiter> = std::mem::take(&mut s.waiters);
        let answers: Vec<(Responder, Response)> = left
            .into_iter()
            .map(|w| {
                let acks = acks(&s, w.id);
                let res = error_with(
                    503,
                    "the primary is stopping before enough nodes acknowledged; the message is stored \
                     and replicates when the primary is back",
                    json!({"acks": acks, "w": w.w, "message_id": w.id}),
                );
                (w.responder, res)
            })
            .collect();
        drop(s);
        send_all(answers);
    }

    /// Whether some waiting write could still get its `w` from the secondaries that are healthy
    /// now (a silent one turns suspected after two heartbeats).
    fn could_settle(&self, s: &State) -> bool {
        let hb = self.me.heartbeat;
        s.waiters.iter().any(|w| {
            let coming = s.secondaries.iter().filter(|x| x.acked < w.id && x.health.status(hb) == Status::Healthy);
            acks(s, w.id) + coming.count() >= w.w
        })
    }

    /// The server has drained: stop delivering, answer any write still waiting, and make the
    /// log durable. Every waiter is answered by now, so the deliveries in flight have nobody
    /// left to serve: they are cut rather than waited for (up to `--node-timeout` each, for a
    /// silent secondary), and what they carried is sent again when the primary is back.
    pub fn stop(&self) {
        self.begin_stop();
        let mut s = self.lock();
        s.closed = true;
        for secondary in &s.secondaries {
            secondary.cut.now();
        }
        drop(s);
        self.wake.notify_all();
        wind_down(&self.threads, &self.timer, &self.wal);
    }
}

impl Secondary {
    fn new(node: NodeUrl) -> Secondary {
        let id = node.url.trim_start_matches("http://").to_string();
        Secondary { node, id, acked: 0, cursor: 1, known: false, health: Health::default(), cut: Cut::default() }
    }
}

/// More than half of `nodes`: the default `w`, and the healthy nodes a primary needs to write.
fn majority(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// How many nodes hold message `id` durably.
fn acks(s: &State, id: u64) -> usize {
    usize::from(s.durable >= id) + s.secondaries.iter().filter(|x| x.acked >= id).count()
}

/// Takes every write that now has its acknowledgements, with its 201.
fn settle(s: &mut State, me: &str) -> Vec<(Responder, Response)> {
    if s.waiters.is_empty() {
        return Vec::new();
    }
    let mut ready = Vec::new();
    let mut i = 0;
    while i < s.waiters.len() {
        let (id, w) = (s.waiters[i].id, s.waiters[i].w);
        if acks(s, id) >= w {
            let waiter = s.waiters.swap_remove(i);
            let m = &s.messages[(id - 1) as usize];
            let mut to = Vec::with_capacity(w);
            if s.durable >= id {
                to.push(me.to_string());
            }
            to.extend(s.secondaries.iter().filter(|x| x.acked >= id).map(|x| x.id.clone()));
            let body = json!({"message": m.text, "meta": {
                "message_id": id, "registered_at": utc_millis(m.at_ms), "registered_to": to,
            }});
            ready.push((waiter.responder, Response::json(201, &body)));
        } else {
            i += 1;
        }
    }
    ready
}

/// A delivery's body: `{"primary": URL, "entries": [{"id", "at", "message"}, ...]}`, written
/// by hand because it is built under the lock for every batch.
///
/// The entries stop before the body passes `limit` bytes (at least one goes, which a write's own
/// check made fit): a secondary far behind catches up in several batches, none over its
/// `--max-body`, rather than being sent 4,096 long messages it must refuse every time.
fn batch_body(primary: &str, messages: &[Message], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + messages.iter().map(|m| m.text.len() + 48).sum::<usize>().min(limit));
    out.extend_from_slice(b"{\"primary\":");
    let _ = serde_json::to_writer(&mut out, primary);
    out.extend_from_slice(b",\"entries\":[");
    for (i, m) in messages.iter().enumerate() {
        let before = out.len();
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("{{\"id\":{},\"at\":{},\"message\":", m.id, m.at_ms).as_bytes());
        let _ = serde_json::to_writer(&mut out, &m.text);
        out.push(b'}');
        if i > 0 && out.len() > limit {
            out.truncate(before);
            break;
        }
    }
    out.extend_from_slice(b"]}");
    out
}

/// Says at start that a torn tail was cut, and where.
pub fn report_cut(cut: &Option<(PathBuf, u64, u64)>) {
    if let Some((path, at, bytes)) = cut {
        flash_common::log_line!("replog: cut a torn tail of {bytes} bytes at byte {at} of {}", path.display());
    }
}

/// The secondaries recorded in `dir` (none if the file does not exist yet).
fn load_members(dir: &Path) -> io::Result<Vec<NodeUrl>> {
    let path = dir.join(MEMBERS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let urls = v.get("secondaries").and_then(Value::as_array).ok_or_else(|| bad("no \"secondaries\" list".into()))?;
    urls.iter().map(|u| parse_url(u.as_str().unwrap_or_default()).map_err(bad)).collect()
}

/// Records the membership atomically: a new file, synced, renamed over the old one.
fn save_members(dir: &Path, members: &[NodeUrl]) -> io::Result<()> {
    let urls: Vec<&str> = members.iter().map(|m| m.url.as_str()).collect();
    let tmp = dir.join(format!("{MEMBERS}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    io::Write::write_all(&mut file, &serde_json::to_vec_pretty(&json!({ "secondaries": urls }))?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(MEMBERS))?;
    std::fs::File::open(dir)?.sync_all()
}
