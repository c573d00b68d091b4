//! The multi-writer log (`--role peer`), after the Lingua Franca "Web Server" example: every
//! peer accepts writes, and each peer keeps two views of the same entries.
//!
//! - The **fast view** (`/getlogs`) lists entries in the order they arrived here, at once. Two
//!   peers may disagree on that order.
//! - The **consistent view** (`/getlogs_consistent?at=T`) lists the entries stamped ≤ T in
//!   (stamp, peer index, sequence) order, once it is safe: every peer has delivered all its
//!   entries stamped ≤ T, or T + STA has passed (the safe-to-advance time, `--sta-ms`). Every
//!   peer then answers the same list for the same T, as long as every entry arrives within STA.
//!
//! ```text
//!  client      P0                     P1                       P2
//!    | log x -> | stamp (t=100, 0, 7)  |                        |
//!    |<- ok ----| append, fsync        |                        |
//!    |          |-- entries ≤ seq 7, clock 104 ->|  watermark[0] = 104
//!    |          |------------------------------------------------>| watermark[0] = 104
//!    | consistent at=102 on P1: wait until watermark[0] ≥ 102 and watermark[2] ≥ 102
//!    |          (heartbeats carry each peer's clock), or until 102 + STA; then answer
//! ```
//!
//! How a peer knows another has passed T: each peer sends its own entries to every other peer
//! in sequence order, with a `clock` C that says "every entry I stamped ≤ C is in this batch or
//! an earlier one"; an empty batch (a heartbeat, every `--heartbeat-ms`) carries C as well. C
//! is the peer's clock minus one millisecond (less while some of its entries are not yet
//! written), and no later entry is stamped ≤ a C already sent, so the promise holds. A consistent read therefore answers within about a heartbeat when
//! every peer is up, and at T + STA at the latest when one is not.
//!
//! An entry that arrives later than its stamp + STA (its sender was cut off) is **late**: it is
//! kept in the fast view, never put into the consistent order (whose past was perhaps already
//! answered), and reported in every consistent answer that covers its stamp (`"late"`). The
//! state is durable like the primary's: every entry, own or received, is a record in the log.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flash_common::{deferred, Reply, Request, Responder, Response};
use serde_json::{json, Map, Value};

use crate::faults::Faults;
use crate::link::{Delivered, Health, Link, NodeUrl};
use crate::primary::report_cut;
use crate::timer::Timer;
use crate::wal::Wal;
use crate::{error, error_with, json_object, kind, not_allowed, now_ms, send_all, wind_down, Flags, Me};

/// The most entries in one delivery.
const MAX_BATCH: usize = 4096;
/// How far ahead of now a consistent read may ask (a typo of a year should not hang a client).
const MAX_AHEAD_MS: u64 = 60_000;
/// The record tag of a peer entry.
const TAG: u8 = b'L';

/// One entry of the multi-writer log.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    /// The index of the peer that wrote it.
    origin: usize,
    /// Its number among that peer's entries: 1, 2, 3, ...
    seq: u64,
    /// The writer's clock when it was written, in milliseconds since the epoch.
    stamp: u64,
    /// This peer's clock when it arrived here.
    arrival: u64,
    /// It arrived after stamp + STA: out of the consistent order.
    late: bool,
    /// The text.
    text: String,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(30 + self.text.len());
        out.push(TAG);
        out.extend_from_slice(&(self.origin as u32).to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.stamp.to_le_bytes());
        out.extend_from_slice(&self.arrival.to_le_bytes());
        out.push(u8::from(self.late));
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        if b.len() < 30 || b[0] != TAG {
            return None;
        }
        let u64_at = |i: usize| b[i..i + 8].try_into().ok().map(u64::from_le_bytes);
        Some(Entry {
            origin: u32::from_le_bytes(b[1..5].try_into().ok()?) as usize,
            seq: u64_at(5)?,
            stamp: u64_at(13)?,
            arrival: u64_at(21)?,
            late: b[29] != 0,
            text: String::from_utf8(b[30..].to_vec()).ok()?,
        })
    }

    fn key(&self) -> (u64, usize, u64) {
        (self.stamp, self.origin, self.seq)
    }
}

/// A peer of the multi-writer log.
pub struct Peer {
    /// Who this node is.
    me: Me,
    /// This peer's index in `--peer`.
    index: usize,
    /// Every peer, this one included, in `--peer` order.
    peers: Vec<NodeUrl>,
    /// `--sta-ms`.
    sta: u64,
    /// What changes, behind one lock (short sections, no I/O, as in the primary).
    state: Mutex<State>,
    /// Wakes the delivery threads.
    wake: Condvar,
    /// The durable log: every entry, own or received, in arrival order.
    wal: Wal,
    /// Consistent reads' deadlines, delayed acknowledgements.
    timer: Timer,
    /// `--delay` and `--fail-after-append` on received batches.
    faults: Faults,
    /// This node, for callbacks and threads.
    weak: Weak<Peer>,
    /// The delivery threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A peer's state.
struct State {
    /// Every entry in arrival order: the fast view.
    fast: Vec<Arc<Entry>>,
    /// Entries that arrived in time, by (stamp, origin, seq): the consistent view.
    ordered: BTreeMap<(u64, usize, u64), Arc<Entry>>,
    /// Entries that arrived after their stamp + STA.
    late: Vec<Arc<Entry>>,
    /// Per peer: how many of its entries this peer holds (1..=have, no gap).
    have: Vec<u64>,
    /// This peer's own entries, by seq, with their record numbers in the log.
    own: Vec<(u64, Arc<Entry>)>,
    /// The last stamp this peer gave its own entries (stamps never go back).
    last_stamp: u64,
    /// The highest clock this peer promised (no new entry of its own is stamped at or below it).
    promised: u64,
    /// Per peer: every entry it stamped ≤ this is here (its last promised clock).
    watermark: Vec<u64>,
    /// Per peer: delivery of this peer's entries to it.
    links: Vec<Outbound>,
    /// Consistent reads waiting for their safe time.
    readers: Vec<Reader>,
    /// The next reader's key.
    next_key: u64,
    /// The delivery threads must exit.
    closed: bool,
}

/// Delivery of this peer's own entries to one other peer.
#[derive(Default)]
struct Outbound {
    /// The next own seq to send.
    cursor: u64,
    /// Whether `cursor` was learnt from that peer since we started (else probe first).
    known: bool,
    /// Its health and backoff.
    health: Health,
}

/// A consistent read waiting.
struct Reader {
    /// Identifies it to its deadline.
    key: u64,
    /// The time it reads at.
    at: u64,
    /// Where the answer goes.
    responder: Responder,
    /// When it arrived, to report how long it waited.
    started: Instant,
}

impl Peer {
    /// Recovers the log and starts one delivery thread per other peer.
    pub fn start(me: Me, flags: &Flags) -> io::Result<Arc<Peer>> {
        let mut peers = flags.peers.clone();
        let index = match peers.iter().position(|p| p.addr == me.addr) {
            Some(i) => i,
            None if peers.is_empty() => {
                peers.push(NodeUrl { url: me.url.clone(), addr: me.addr });
                0
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("--peer must list this node's own URL too ({}), at its place in the order", me.url),
                ))
            }
        };
        let n = peers.len();
        let recovered = Wal::open(&me.data_dir, flags.fsync)?;
        report_cut(&recovered.cut);
        let mut state = State {
            fast: Vec::new(),
            ordered: BTreeMap::new(),
            late: Vec::new(),
            have: vec![0; n],
            own: Vec::new(),
            last_stamp: 0,
            promised: 0,
            watermark: vec![0; n],
            links: (0..n).map(|_| Outbound { cursor: 1, ..Outbound::default() }).collect(),
            readers: Vec::new(),
            next_key: 0,
            closed: false,
        };
        for (i, record) in recovered.records.iter().enumerate() {
            let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("log record {}: {why}", i + 1));
            let e = Entry::decode(record).ok_or_else(|| bad("not a peer entry"))?;
            if e.origin >= n || e.seq != state.have[e.origin] + 1 {
                return Err(bad("out of order, or from a peer not in --peer (was the list changed?)"));
            }
            state.have[e.origin] = e.seq;
            let e = Arc::new(e);
            if e.origin == index {
                state.last_stamp = state.last_stamp.max(e.stamp);
                state.promised = state.last_stamp;
                state.own.push((i as u64 + 1, e.clone()));
            }
            insert(&mut state, e);
        }
        let timer = Timer::new()?;
        let peer = Arc::new_cyclic(|weak| Peer {
            me,
            index,
            peers,
            sta: flags.sta_ms,
            state: Mutex::new(state),
            wake: Condvar::new(),
            wal: recovered.wal,
            timer,
            faults: Faults::new(flags.delay, flags.fail_after_append),
            weak: weak.clone(),
            threads: Mutex::new(Vec::new()),
        });
        let weak = peer.weak.clone();
        peer.wal.on_written(move || {
            if let Some(p) = weak.upgrade() {
                drop(p.lock());
                p.wake.notify_all();
            }
        });
        for j in (0..n).filter(|j| *j != index) {
            let this = peer.clone();
            let handle = std::thread::Builder::new().name(format!("replog-peer-{j}")).spawn(move || this.deliver(j))?;
            peer.threads.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
        }
        Ok(peer)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes a request (the token is already checked).
    pub fn call(&self, _this: &Arc<Peer>, req: &Request<'_>) -> Reply {
        let (method, path) = (req.method(), req.path());
        let read = matches!(method, "GET" | "HEAD" | "POST");
        match path {
            "/log" if method == "POST" => match json_object(req) {
                Ok(body) => self.new_log(&body),
                Err(res) => Reply::Now(res),
            },
            "/log" => Reply::Now(not_allowed("POST")),
            "/getlogs" if read => Reply::Now(self.fast_view()),
            "/getlogs_consistent" if read => match req.query_param("at").map(str::parse::<u64>) {
                None => self.consistent(None),
                Some(Ok(at)) => self.consistent(Some(at)),
                Some(Err(_)) => Reply::Now(error(400, "at must be a time in milliseconds since the epoch")),
            },
            "/getlogs" | "/getlogs_consistent" => Reply::Now(not_allowed("GET, HEAD, POST")),
            "/" if method == "POST" => self.operation(req),
            "/peer/replicate" if method == "POST" => self.replicate(req),
            "/peer/replicate" => Reply::Now(not_allowed("POST")),
            "/health" if matches!(method, "GET" | "HEAD") => Reply::Now(Response::json(200, &self.health())),
            _ => Reply::Now(error(404, "no such endpoint on a peer")),
        }
    }

    /// The original's single path: `POST / {"operation": ..., "log": ...}`; it always answers.
    fn operation(&self, req: &Request<'_>) -> Reply {
        let body = match json_object(req) {
            Ok(b) => b,
            Err(res) => return Reply::Now(res),
        };
        match body.get("operation").and_then(Value::as_str) {
            Some("newlog") => self.new_log(&body),
            Some("getlog") => Reply::Now(self.fast_view()),
            Some("getlog_consistent") => match body.get("at") {
                None | Some(Value::Null) => self.consistent(None),
                Some(v) => match v.as_u64() {
                    Some(at) => self.consistent(Some(at)),
                    None => Reply::Now(error(400, "\"at\" must be a time in milliseconds since the epoch")),
                },
            },
            Some(other) => {
                Reply::Now(error(400, &format!("unknown operation `{other}`: use newlog, getlog or getlog_consistent")))
            }
            None => Reply::Now(error(400, "missing field \"operation\" (newlog, getlog or getlog_consistent)")),
        }
    }

    /// `POST /log {"log": TEXT}`: stamped here, stored, answered once durable, then sent on.
    fn new_log(&self, body: &Map<String, Value>) -> Reply {
        let text = match body.get("log") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => return Reply::Now(error(400, &format!("\"log\" must be a string, not {}", kind(other)))),
            None => return Reply::Now(error(400, "missing field \"log\"")),
        };
        if !crate::fits_a_delivery(&text, self.me.max_body) {
            return Reply::Now(crate::too_long_to_deliver(self.me.max_body));
        }
        let (responder, pending) = deferred();
        let mut s = self.lock();
        let stamp = now_ms().max(s.last_stamp).max(s.promised + 1);
        s.last_stamp = stamp;
        let seq = s.have[self.index] + 1;
        s.have[self.index] = seq;
        let entry = Arc::new(Entry { origin: self.index, seq, stamp, arrival: stamp, late: false, text });
        let record = self.wal.append(&entry.encode(), move || {
            responder.send(Response::json(200, &json!({"status": "success", "message": "Log stored successfully"})));
        });
        s.own.push((record, entry.clone()));
        insert(&mut s, entry);
        Reply::Later(pending)
    }

    /// `/getlogs`: every entry here, in arrival order.
    fn fast_view(&self) -> Response {
        let s = self.lock();
        let logs: Vec<&str> = s.fast.iter().map(|e| e.text.as_str()).collect();
        Response::json(200, &json!({"status": "success", "logs": logs}))
    }

    /// `/getlogs_consistent?at=T`: answers once it is safe to (see the module documentation).
    fn consistent(&self, at: Option<u64>) -> Reply {
        let now = now_ms();
        let at = at.unwrap_or(now);
        if at > now + MAX_AHEAD_MS {
            return Reply::Now(error(400, &format!("at is more than {MAX_AHEAD_MS} ms ahead of this peer's clock")));
        }
        let started = Instant::now();
        let mut s = self.lock();
        if self.passed(&s, at) {
            return Reply::Now(self.answer(&s, at, started, "watermarks"));
        }
        let (responder, pending) = deferred();
        let key = s.next_key;
        s.next_key += 1;
        s.readers.push(Reader { key, at, responder, started });
        drop(s);
        self.schedule_deadline(key, at);
        Reply::Later(pending)
    }

    /// Arranges for reader `key` to be answered at `at + STA` (wall clock) at the latest.
    fn schedule_deadline(&self, key: u64, at: u64) {
        let due_ms = at + self.sta + 1;
        let wait = Duration::from_millis(due_ms.saturating_sub(now_ms()));
        let weak = self.weak.clone();
        self.timer.after(wait, move || {
            if let Some(p) = weak.upgrade() {
                p.deadline(key, at);
            }
        });
    }

    /// A reader's safe time is up: answer it with what is here (anything stamped ≤ at that
    /// arrives from now on is past its stamp + STA, hence late, so this answer stays true).
    fn deadline(&self, key: u64, at: u64) {
        if now_ms() <= at + self.sta {
            // The timer's clock and the wall clock may disagree by a millisecond: wait for the
            // wall clock, which is the one arrivals are judged by.
            self.schedule_deadline(key, at);
            return;
        }
        let mut s = self.lock();
        let Some(i) = s.readers.iter().position(|r| r.key == key) else { return };
        let reader = s.readers.swap_remove(i);
        let res = self.answer(&s, reader.at, reader.started, "sta");
        drop(s);
        reader.responder.send(res);
    }

    /// Whether every peer has passed `at`: every other peer promised a clock ≥ at, and this
    /// peer's own next stamp will be above it.
    fn passed(&self, s: &State, at: u64) -> bool {
        now_ms() > at && (0..self.peers.len()).all(|j| j == self.index || s.watermark[j] >= at)
    }

    /// The consistent answer at `at`.
    fn answer(&self, s: &State, at: u64, started: Instant, by: &str) -> Response {
        let logs: Vec<&str> = s.ordered.range(..=(at, usize::MAX, u64::MAX)).map(|(_, e)| e.text.as_str()).collect();
        let late: Vec<Value> = s
            .late
            .iter()
            .filter(|e| e.stamp <= at)
            .map(|e| json!({"log": e.text, "stamp": e.stamp, "peer": e.origin, "arrived": e.arrival}))
            .collect();
        Response::json(
            200,
            &json!({
                "status": "success", "logs": logs, "at": at, "late": late,
                "waited_ms": started.elapsed().as_millis() as u64, "by": by,
            }),
        )
    }

    /// Answers every waiting reader whose time every peer has now passed.
    fn wake_readers(&self, s: &mut State) -> Vec<(Responder, Response)> {
        let mut ready = Vec::new();
        let mut i = 0;
        while i < s.readers.len() {
            if self.passed(s, s.readers[i].at) {
                let r = s.readers.swap_remove(i);
                let res = self.answer(s, r.at, r.started, "watermarks");
                ready.push((r.responder, res));
            } else {
                i += 1;
            }
        }
        ready
    }

    /// `POST /peer/replicate`: another peer's entries (in its sequence order) and its clock.
    fn replicate(&self, req: &Request<'_>) -> Reply {
        let batch = match json_object(req).and_then(|b| self.parse_batch(&b).map_err(|r| error(400, &r))) {
            Ok(b) => b,
            Err(res) => return Reply::Now(res),
        };
        let mut s = self.lock();
        let from = batch.from;
        let have = s.have[from];
        if let Some(first) = batch.entries.first() {
            if first.seq > have + 1 {
                return Reply::Now(error_with(
                    409,
                    &format!(
                        "gap: this peer holds entries 1 to {have} of peer {from}; the batch starts at {}",
                        first.seq
                    ),
                    json!({"id": self.me.id, "have": have}),
                ));
            }
        }
        for e in batch.entries.iter().filter(|e| e.seq <= have) {
            let known = s.fast.iter().rev().find(|x| x.origin == from && x.seq == e.seq);
            if known.is_some_and(|k| k.stamp != e.stamp || k.text != e.text) {
                return Reply::Now(error_with(
                    409,
                    &format!(
                        "foreign id: entry {} of peer {from} here is a different entry; nothing was stored",
                        e.seq
                    ),
                    json!({"id": self.me.id, "have": have, "conflict": e.seq}),
                ));
            }
        }
        let arrival = now_ms();
        let nonempty = !batch.entries.is_empty();
        let fresh: Vec<Incoming> = batch.entries.into_iter().filter(|e| e.seq > have).collect();
        let (responder, pending) = deferred();
        let mut responder = Some(responder);
        let count = fresh.len();
        for (k, e) in fresh.into_iter().enumerate() {
            let late = arrival > e.stamp + self.sta;
            let entry = Arc::new(Entry { origin: from, seq: e.seq, stamp: e.stamp, arrival, late, text: e.text });
            if k + 1 == count {
                // The batch is acknowledged once its last entry (and so every one before it) is
                // on disk here.
                let (weak, r, have) = (self.weak.clone(), responder.take(), e.seq);
                self.wal.append(&entry.encode(), move || {
                    if let (Some(p), Some(r)) = (weak.upgrade(), r) {
                        p.acknowledge(r, have);
                    }
                });
            } else {
                self.wal.append(&entry.encode(), || {});
            }
            s.have[from] = e.seq;
            insert(&mut s, entry);
        }
        if let Some(clock) = batch.clock.filter(|_| s.have[from] >= batch.last) {
            s.watermark[from] = s.watermark[from].max(clock);
        }
        let ready = self.wake_readers(&mut s);
        let have = s.have[from];
        drop(s);
        send_all(ready);
        if let Some(r) = responder {
            if nonempty {
                // Only entries it already held: acknowledged like any delivery.
                self.acknowledge(r, have);
            } else {
                // A heartbeat is answered at once and never delayed or failed on purpose.
                r.send(Response::json(200, &json!({"id": self.me.id, "have": have})));
            }
        }
        Reply::Later(pending)
    }

    /// Answers a delivery whose entries are durable, with the injected faults.
    fn acknowledge(&self, responder: Responder, have: u64) {
        let ack = json!({"id": self.me.id, "have": have});
        if self.faults.fail_now() {
            responder.send(error(500, "injected failure after append (--fail-after-append)"));
            return;
        }
        match self.faults.delay() {
            Some(d) => self.timer.after(d, move || responder.send(Response::json(200, &ack))),
            None => responder.send(Response::json(200, &ack)),
        }
    }

    /// Reads and checks a delivery: `{"from": INDEX, "entries": [{"seq", "stamp", "log"}],
    /// "last": SEQ, "clock": MS}`.
    fn parse_batch(&self, b: &Map<String, Value>) -> Result<Batch, String> {
        let from = b.get("from").and_then(Value::as_u64).map(|f| f as usize);
        let from = match from {
            Some(f) if f < self.peers.len() && f != self.index => f,
            _ => return Err(format!("\"from\" must be another peer's index (0 to {})", self.peers.len() - 1)),
        };
        let list = match b.get("entries") {
            Some(Value::Array(list)) => list,
            Some(other) => return Err(format!("\"entries\" must be an array, not {}", kind(other))),
            None => return Err("missing field \"entries\"".into()),
        };
        let mut entries: Vec<Incoming> = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let seq = e.get("seq").and_then(Value::as_u64).filter(|s| *s >= 1);
            let stamp = e.get("stamp").and_then(Value::as_u64);
            let text = e.get("log").and_then(Value::as_str);
            let (Some(seq), Some(stamp), Some(text)) = (seq, stamp, text) else {
                return Err(format!("entry {i} needs \"seq\" (from 1), \"stamp\" (ms) and \"log\" (a string)"));
            };
            if entries.last().is_some_and(|p| p.seq + 1 != seq) {
                return Err("seqs in a batch must be consecutive".into());
            }
            entries.push(Incoming { seq, stamp, text: text.to_string() });
        }
        let last = b.get("last").and_then(Value::as_u64).unwrap_or(entries.last().map_or(0, |e| e.seq));
        let clock = b.get("clock").and_then(Value::as_u64);
        Ok(Batch { from, entries, last, clock })
    }

    /// `GET /health`.
    fn health(&self) -> Value {
        let s = self.lock();
        let hb = self.me.heartbeat;
        let peers: Vec<Value> = self
            .peers
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let (status, watermark) = if j == self.index {
                    ("healthy", now_ms())
                } else {
                    (s.links[j].health.status(hb).name(), s.watermark[j])
                };
                json!({"index": j, "url": p.url, "status": status, "watermark": watermark, "have": s.have[j]})
            })
            .collect();
        json!({
            "id": self.me.id, "role": "peer", "index": self.index, "sta_ms": self.sta,
            "entries": s.fast.len(), "late": s.late.len(), "peers": peers,
        })
    }

    /// The delivery thread towards peer `j`: this peer's entries in order, with its clock;
    /// a heartbeat when there is nothing new.
    fn deliver(&self, j: usize) {
        let hb = self.me.heartbeat;
        let mut link = Link::new(self.peers[j].clone(), self.me.token.clone(), self.me.node_timeout);
        loop {
            let body = {
                let mut s = self.lock();
                loop {
                    if s.closed {
                        return;
                    }
                    let out = &s.links[j];
                    let written = self.wal.written();
                    let sendable = s.own.get(out.cursor as usize - 1).is_some_and(|(record, _)| *record <= written);
                    match out.health.next_call(!out.known || sendable, hb) {
                        None => break,
                        Some(pause) => s = self.wake.wait_timeout(s, pause).unwrap_or_else(PoisonError::into_inner).0,
                    }
                }
                let body = self.batch(&mut s, j);
                s.links[j].health.last_sent = Some(Instant::now());
                body
            };
            let outcome = Delivered::from(link.post("/peer/replicate", &body), &link.node.url);
            let mut s = self.lock();
            let own = s.own.len() as u64;
            let out = &mut s.links[j];
            out.health.record(&outcome, hb);
            match (&outcome, outcome.number("have")) {
                (Delivered::Took(_) | Delivered::Gap(_), Some(have)) => {
                    out.cursor = have.min(own) + 1;
                    out.known = true;
                }
                // An answer without `have` is no acknowledgement: retry after a pause.
                (Delivered::Took(_) | Delivered::Gap(_), None) => out.health.failed(hb),
                _ => {}
            }
        }
    }

    /// The next batch for peer `j`: own entries from its cursor that are written to the
    /// kernel, and (once its cursor is known) the clock this peer promises.
    fn batch(&self, s: &mut State, j: usize) -> Vec<u8> {
        let out = &s.links[j];
        let written = self.wal.written();
        let mut entries = Vec::new();
        let mut last = out.cursor - 1;
        // As the primary's batches: stop before the body passes the peer's --max-body.
        let (mut room, mut first) = (self.me.max_body.saturating_sub(crate::ENVELOPE), true);
        if out.known {
            for (record, e) in s.own.iter().skip(out.cursor as usize - 1).take(MAX_BATCH) {
                let size = serde_json::to_string(&e.text).map_or(u64::MAX, |t| t.len() as u64 + 64);
                if *record > written || (size > room && !first) {
                    break;
                }
                (room, first) = (room.saturating_sub(size), false);
                entries.push(json!({"seq": e.seq, "stamp": e.stamp, "log": e.text}));
                last = e.seq;
            }
        }
        let mut body = json!({"from": self.index, "id": self.me.id, "entries": entries, "last": last});
        if out.known {
            // Entries not yet written are held back, so the promise stops short of them.
            let held = s.own.get(last as usize).map(|(_, e)| e.stamp - 1);
            let clock = (now_ms() - 1).min(held.unwrap_or(u64::MAX)).max(s.promised);
            s.promised = clock;
            body["clock"] = json!(clock);
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// SIGINT/SIGTERM: nothing to do before the drain. Writes finish at their `fsync` and
    /// consistent reads by their safe time (at most a minute ahead plus STA), so the drain ends
    /// on its own; delivery stops in [`Peer::stop`], after it.
    pub fn begin_stop(&self) {}

    /// The server has drained: stop delivering, answer any read still waiting, make the log
    /// durable.
    pub fn stop(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
        wind_down(&self.threads, &self.timer, &self.wal);
    }
}

/// A checked delivery.
struct Batch {
    /// The sender's index.
    from: usize,
    /// Its entries, seqs consecutive.
    entries: Vec<Incoming>,
    /// The last seq the sender counts as delivered with this batch.
    last: u64,
    /// The sender's promise: all its entries stamped ≤ this are delivered (with `last`).
    clock: Option<u64>,
}

/// One received entry.
struct Incoming {
    /// Its seq at the sender.
    seq: u64,
    /// The sender's stamp.
    stamp: u64,
    /// The text.
    text: String,
}

/// Adds an entry to the views.
fn insert(s: &mut State, e: Arc<Entry>) {
    s.fast.push(e.clone());
    if e.late {
        s.late.push(e);
    } else {
        s.ordered.insert(e.key(), e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            origin: 2,
            seq: 9,
            stamp: 1_700_000_000_000,
            arrival: 1_700_000_000_500,
            late: true,
            text: "é".into(),
        };
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::decode(b"M123"), None);
    }
}
