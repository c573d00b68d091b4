//! The supervisor: one thread that owns the copies' processes and decides their lives.
//!
//! It starts each copy of `--backend` on a free port, in a process group of its own (so that
//! stopping a copy stops whatever it started) and with `PDEATHSIG` (so that the kernel kills it
//! if the cluster dies without stopping it); it health-checks every copy and `--upstream`; it
//! restarts a copy that exits, after a backoff, unless `--restart` says otherwise, and gives up on
//! one that fails to start `--start-tries` times in a row; it drains a copy before stopping it
//! (no new requests, the ones in flight finish); and it sets the number of copies, fixed or by
//! the auto policy.
//!
//! Who tells whom: the supervisor tells the proxy loop which copies exist and which may take
//! requests ([`Msg`]); the proxy tells the supervisor when a copy fails requests or has drained
//! ([`Notice`]), health probes report their results, and the admin interface asks for the status
//! or a new size; all of these arrive as [`Event`]s on one channel, so the supervisor's state has
//! one owner and no lock. Between events it wakes every [`TICK`] to reap exited processes, start
//! what is due and sample the queue.
//!
//! A copy's life:
//!
//! ```text
//!   starting --(health check passes)--> healthy <--(passes)--> unhealthy
//!      |                                   |  (fails, or the proxy saw --max-fails failures)
//!      | exits / --start-timeout           | shrink or stop: draining --(nothing in flight)--> stopping
//!      v                                   v exits                                    (SIGTERM, then
//!    dead --(--restart, after backoff)--> starting                                     SIGKILL) --> gone
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flash_common::client::Client;
use flash_common::{Responder, Response};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::flags::{split_words, ClusterFlags, Restart, Size, Upstream, MAX_COPIES};
use crate::policy::{Auto, AutoPolicy, Decision};
use crate::proxy::{CopyId, CopyStats, Msg, Notice, Proxy};

/// How often the supervisor looks at its processes when no event wakes it sooner; also how often
/// a starting copy is probed.
const TICK: Duration = Duration::from_millis(20);
/// How many lines of history `/status` shows.
const HISTORY: usize = 50;

/// What wakes the supervisor.
pub enum Event {
    /// Something the proxy loop noticed.
    Proxy(Notice),
    /// A health probe of copy `id` finished.
    Health {
        /// The copy probed.
        id: CopyId,
        /// `Ok` if it passed, else why not.
        result: Result<(), String>,
    },
    /// `GET /status`: answer with the status as JSON.
    Status(Responder),
    /// `POST /size`: change the size, and answer with the new one.
    Resize(SizeRequest, Responder),
    /// Tell this sender once every initial copy is up or given up on (`Err` if none is up).
    WhenReady(mpsc::Sender<Result<(), String>>),
    /// Stop every copy and end.
    Stop,
}

/// A new size, from `POST /size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeRequest {
    /// Exactly this many copies.
    Fixed(usize),
    /// The auto policy, with these knobs.
    Auto(AutoPolicy),
}

/// The handle the cluster keeps: the channel in, and the thread to join.
pub struct Supervisor {
    /// Where events go.
    events: mpsc::Sender<Event>,
    /// The supervisor's thread.
    thread: JoinHandle<()>,
    /// The proxy loop, told to stop by the thread as it ends, or by [`Supervisor::stop`] if the
    /// thread died first (a panic must not leave the loop, and the cluster's exit, hanging).
    proxy: Proxy,
}

impl Supervisor {
    /// Starts the supervisor thread, which starts the initial copies at once. `events` is the
    /// channel it listens on (made first, so that the proxy's notices can be sent to it).
    pub fn start(
        flags: ClusterFlags,
        queue_limit: usize,
        proxy: Proxy,
        (events, inbox): (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    ) -> io::Result<Supervisor> {
        let mut state = State::new(flags, queue_limit, proxy.clone(), events.clone());
        let thread = std::thread::Builder::new().name("flash-cluster-supervisor".into()).spawn(move || {
            // Copies are forked from this thread, and PDEATHSIG fires when the thread that forked
            // a child ends, not only the process: so this thread must live as long as the copies.
            state.run(inbox);
        })?;
        Ok(Supervisor { events, thread, proxy })
    }

    /// A sender of events, for the proxy's notices and the admin interface.
    pub fn events(&self) -> mpsc::Sender<Event> {
        self.events.clone()
    }

    /// Stops every copy (SIGTERM to its group, SIGKILL after `--stop-timeout`) and waits, then
    /// makes sure the proxy loop is told to stop too.
    pub fn stop(self) {
        let _ = self.events.send(Event::Stop);
        let _ = self.thread.join();
        self.proxy.send(Msg::Stop);
    }
}

/// Where a copy is in its life (see the module's diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Started, not yet through its first health check.
    Starting,
    /// Taking requests.
    Healthy,
    /// Failing health checks or requests: no new requests until a check passes.
    Unhealthy,
    /// Leaving: no new requests; stopped once nothing is in flight.
    Draining,
    /// Sent SIGTERM; SIGKILL at the deadline.
    Stopping,
    /// Not running (and restarted later, or not).
    Dead,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Healthy => "healthy",
            Phase::Unhealthy => "unhealthy",
            Phase::Draining => "draining",
            Phase::Stopping => "stopping",
            Phase::Dead => "dead",
        }
    }
}

/// One copy: a process the cluster runs (restarted as new processes), or an `--upstream`.
struct Slot {
    /// The `{index}` of a spawned copy; `None` for an upstream.
    index: Option<usize>,
    /// The upstream's URL, for an upstream.
    url: Option<String>,
    /// The running process (spawned copies only).
    child: Option<Child>,
    /// Where the current process (or the upstream) listens.
    addr: SocketAddr,
    /// The current process's identity in the proxy; a restart gets a new one.
    id: CopyId,
    /// Where it is in its life.
    phase: Phase,
    /// Counters shared with the proxy (kept across restarts).
    stats: Arc<CopyStats>,
    /// How many times it was restarted.
    restarts: u32,
    /// Failures to start in a row (exits before the first passing check).
    start_failures: u32,
    /// Exits since it last passed a health check: the backoff's exponent.
    crashes: u32,
    /// Left down after `--start-tries` failures to start.
    gave_up: bool,
    /// When a dead copy is due to start again.
    restart_at: Option<Instant>,
    /// When the current phase began.
    since: Instant,
    /// Health check failures in a row.
    health_fails: u32,
    /// A probe is in flight.
    probing: bool,
    /// When the next probe is due.
    next_probe: Instant,
    /// Whether a probe ever finished (upstreams are waited for once at start).
    probed: bool,
    /// How it last exited.
    last_exit: Option<String>,
    /// The current process was killed for missing `--start-timeout`.
    start_timed_out: bool,
    /// The slot goes away once its process has stopped (the cluster shrank).
    leaving: bool,
}

impl Slot {
    /// A copy not started yet (`index`), or an upstream (`url`, `addr`), with fresh counters.
    fn new(index: Option<usize>, url: Option<String>, addr: SocketAddr) -> Slot {
        let now = Instant::now();
        Slot {
            index,
            url,
            child: None,
            addr,
            id: 0,
            phase: if index.is_some() { Phase::Dead } else { Phase::Starting },
            stats: Arc::new(CopyStats::default()),
            restarts: 0,
            start_failures: 0,
            crashes: 0,
            gave_up: false,
            restart_at: None,
            since: now,
            health_fails: 0,
            probing: false,
            next_probe: now,
            probed: false,
            last_exit: None,
            start_timed_out: false,
            leaving: false,
        }
    }
}

/// The supervisor's state; only its thread touches it.
struct State {
    /// The command line.
    flags: ClusterFlags,
    /// The proxy loop.
    proxy: Proxy,
    /// A sender for the probes' results.
    events: mpsc::Sender<Event>,
    /// Every copy.
    slots: Vec<Slot>,
    /// The next copy id to give.
    next_id: CopyId,
    /// The number of spawned copies wanted.
    target: usize,
    /// The auto policy, when the size is `auto`.
    auto: Option<Auto>,
    /// The policy's last decision.
    decision: Option<Decision>,
    /// When the supervisor started (history times are relative to it).
    started: Instant,
    /// Recent events, for `/status`.
    history: VecDeque<String>,
    /// Copies drained and stopped so far.
    drained: u64,
    /// Who waits for the initial copies.
    ready_waiters: Vec<mpsc::Sender<Result<(), String>>>,
    /// The cluster is stopping.
    stopping: bool,
    /// `--queue`, for `/status`.
    queue_limit: usize,
}

impl State {
    fn new(flags: ClusterFlags, queue_limit: usize, proxy: Proxy, events: mpsc::Sender<Event>) -> State {
        let now = Instant::now();
        let auto = (flags.size == Size::Auto).then(|| Auto::new(policy_of(&flags), now));
        State {
            target: flags.initial_size(),
            flags,
            proxy,
            events,
            slots: Vec::new(),
            next_id: 0,
            auto,
            decision: None,
            started: now,
            history: VecDeque::new(),
            drained: 0,
            ready_waiters: Vec::new(),
            stopping: false,
            queue_limit,
        }
    }

    fn run(&mut self, inbox: mpsc::Receiver<Event>) {
        for upstream in self.flags.upstream.clone() {
            self.add_upstream(&upstream);
        }
        loop {
            self.tick();
            if self.stopping && self.slots.iter().all(|s| s.child.is_none()) {
                break;
            }
            match inbox.recv_timeout(TICK) {
                Ok(event) => self.handle(event),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => self.begin_stop(),
            }
            // Drain whatever else arrived, so that a burst of events costs one tick.
            while let Ok(event) = inbox.try_recv() {
                self.handle(event);
            }
        }
        self.proxy.send(Msg::Stop);
    }

    /// Notes an event in the history and on stderr.
    fn log(&mut self, line: String) {
        flash_common::log_line!("flash-cluster: {line}");
        let at = self.started.elapsed().as_secs_f64();
        self.history.push_back(format!("{at:.3}s {line}"));
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Proxy(Notice::Failing(id)) => {
                if let Some(i) = self.find(id).filter(|&i| self.slots[i].phase == Phase::Healthy) {
                    self.slots[i].phase = Phase::Unhealthy;
                    self.slots[i].since = Instant::now();
                    let name = self.name(i);
                    self.log(format!(
                        "{name} failed {} request(s) in a row; no requests until a health check passes",
                        self.flags.max_fails
                    ));
                }
            }
            Event::Proxy(Notice::Drained(id)) => {
                if let Some(i) = self.find(id).filter(|&i| self.slots[i].phase == Phase::Draining) {
                    self.terminate(i, "drained");
                }
            }
            Event::Health { id, result } => self.health(id, result),
            Event::Status(responder) => responder.send(Response::json(200, &self.status())),
            Event::Resize(request, responder) => responder.send(self.resize(request)),
            Event::WhenReady(waiter) => self.ready_waiters.push(waiter),
            Event::Stop => self.begin_stop(),
        }
    }

    /// The slot whose current process (or upstream) is `id`.
    fn find(&self, id: CopyId) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id)
    }

    /// How a slot is named in logs.
    fn name(&self, i: usize) -> String {
        let s = &self.slots[i];
        match (&s.url, &s.child) {
            (Some(url), _) => format!("upstream {url}"),
            (None, Some(child)) => format!("copy {} (pid {}, {})", s.index.unwrap_or(0), child.id(), s.addr),
            (None, None) => format!("copy {}", s.index.unwrap_or(0)),
        }
    }

    fn new_id(&mut self) -> CopyId {
        self.next_id += 1;
        self.next_id
    }

    fn add_upstream(&mut self, upstream: &Upstream) {
        let mut slot = Slot::new(None, Some(upstream.url.clone()), upstream.addr);
        slot.id = self.new_id();
        self.proxy.send(Msg::Add { id: slot.id, addr: slot.addr, stats: slot.stats.clone() });
        self.slots.push(slot);
    }

    /// Everything that happens with time: reaping, restarts, deadlines, probes, size.
    fn tick(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            self.reap(i, now);
        }
        self.slots.retain(|s| !(s.leaving && s.child.is_none()));
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            match s.phase {
                Phase::Dead if s.restart_at.is_some_and(|t| t <= now) && !self.stopping => self.spawn(i),
                Phase::Draining if s.since + self.flags.drain_timeout <= now => {
                    self.terminate(i, "did not drain within --drain-timeout")
                }
                Phase::Stopping if s.since + self.flags.stop_timeout <= now => {
                    if let Some(child) = &s.child {
                        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    }
                }
                Phase::Starting if s.child.is_some() && s.since + self.flags.start_timeout <= now => {
                    if let Some(child) = &s.child {
                        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    }
                    self.slots[i].start_timed_out = true;
                }
                _ => {}
            }
            self.probe_if_due(i, now);
        }
        if let Some(auto) = &mut self.auto {
            auto.observe(self.proxy.queued());
            let size = self.target;
            if let Some(decision) = auto.decide(now, size) {
                if decision.to != decision.from {
                    self.target = decision.to;
                    let line = format!("auto size {} -> {}: {}", decision.from, decision.to, decision.why);
                    self.log(line);
                }
                self.decision = Some(decision);
            }
        }
        if !self.stopping {
            self.fit_size();
        }
        self.answer_ready_waiters();
    }

    /// Notices a copy's process has exited, and decides what comes next.
    fn reap(&mut self, i: usize, now: Instant) {
        let Some(child) = &mut self.slots[i].child else { return };
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => {
                let name = self.name(i);
                self.log(format!("{name} cannot be waited for: {e}"));
                return;
            }
        };
        let pid = child.id();
        // Whatever the copy started dies with it.
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        let name = self.name(i);
        let s = &mut self.slots[i];
        s.child = None;
        self.proxy.send(Msg::Remove(s.id));
        let how = if std::mem::take(&mut s.start_timed_out) {
            "not healthy within --start-timeout (killed)".to_string()
        } else {
            describe(status)
        };
        s.last_exit = Some(how.clone());
        let phase = std::mem::replace(&mut s.phase, Phase::Dead);
        s.since = now;
        if phase == Phase::Stopping {
            if s.leaving {
                self.drained += 1;
                self.log(format!("{name} stopped ({how})"));
            }
            return;
        }
        if phase == Phase::Starting {
            s.start_failures += 1;
        }
        s.crashes += 1;
        let failed = !status.success();
        let (tries, restart) = (self.flags.start_tries, self.flags.restart);
        let detail = s.last_exit.clone().unwrap_or_default();
        if s.start_failures >= tries {
            s.gave_up = true;
            self.log(format!("{name} failed to start {tries} times in a row ({detail}); left down"));
        } else if restart == Restart::Never || (restart == Restart::OnFailure && !failed) {
            self.log(format!("{name} exited ({detail}); not restarted (--restart {})", restart_name(restart)));
        } else {
            let delay = backoff(self.flags.restart_delay, self.flags.restart_max_delay, s.crashes);
            s.restart_at = Some(now + delay);
            self.log(format!("{name} exited ({detail}); restarting in {delay:?}"));
        }
    }

    /// Starts (or restarts) the process of slot `i` on a fresh port.
    fn spawn(&mut self, i: usize) {
        let Some(index) = self.slots[i].index else { return };
        let Some(template) = self.flags.backend.clone() else { return };
        let id = self.new_id();
        let now = Instant::now();
        let s = &mut self.slots[i];
        let restarted = s.restart_at.take().is_some();
        s.restarts += u32::from(restarted);
        s.id = id;
        s.since = now;
        s.next_probe = now;
        s.health_fails = 0;
        s.start_timed_out = false;
        // A probe of the previous process may still be out; its answer will name an id that is
        // gone and be ignored, so the new process must not wait for it.
        s.probing = false;
        match free_port().and_then(|port| spawn_copy(&template, index, port).map(|child| (port, child))) {
            Ok((port, child)) => {
                s.addr = SocketAddr::from(([127, 0, 0, 1], port));
                s.child = Some(child);
                s.phase = Phase::Starting;
                self.proxy.send(Msg::Add { id, addr: s.addr, stats: s.stats.clone() });
                let name = self.name(i);
                self.log(format!("{name} started"));
            }
            Err(e) => {
                // Counted as a failure to start, with the same backoff and the same limit.
                s.phase = Phase::Dead;
                s.start_failures += 1;
                s.crashes += 1;
                let tries = self.flags.start_tries;
                if s.start_failures >= tries {
                    s.gave_up = true;
                    self.log(format!("copy {index} cannot be started ({e}), {tries} times in a row; left down"));
                } else {
                    let delay = backoff(self.flags.restart_delay, self.flags.restart_max_delay, s.crashes);
                    s.restart_at = Some(now + delay);
                    self.log(format!("copy {index} cannot be started ({e}); trying again in {delay:?}"));
                }
            }
        }
    }

    /// Sends SIGTERM to slot `i`'s process group; SIGKILL follows at `--stop-timeout`.
    fn terminate(&mut self, i: usize, why: &str) {
        let name = self.name(i);
        let s = &mut self.slots[i];
        s.phase = Phase::Stopping;
        s.since = Instant::now();
        match &s.child {
            Some(child) => {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
                self.log(format!("{name} {why}; stopping (SIGTERM)"));
            }
            None => s.phase = Phase::Dead,
        }
    }

    /// Starts a health probe of slot `i` if one is due, on a short-lived thread of its own (a
    /// probe may wait up to `--health-timeout`, and the supervisor never waits).
    fn probe_if_due(&mut self, i: usize, now: Instant) {
        let s = &mut self.slots[i];
        let alive = s.child.is_some() || s.url.is_some();
        if !alive
            || s.probing
            || now < s.next_probe
            || !matches!(s.phase, Phase::Starting | Phase::Healthy | Phase::Unhealthy)
        {
            return;
        }
        s.probing = true;
        let (id, addr, events) = (s.id, s.addr, self.events.clone());
        let (path, timeout) = (self.flags.health.clone(), self.flags.health_timeout);
        let spawned = std::thread::Builder::new().name("flash-cluster-probe".into()).spawn(move || {
            let _ = events.send(Event::Health { id, result: probe(addr, path.as_deref(), timeout) });
        });
        if spawned.is_err() {
            s.probing = false;
        }
    }

    fn health(&mut self, id: CopyId, result: Result<(), String>) {
        let Some(i) = self.find(id) else { return };
        let now = Instant::now();
        let interval = if self.slots[i].phase == Phase::Starting { TICK } else { self.flags.health_interval };
        let s = &mut self.slots[i];
        s.probing = false;
        s.next_probe = now + interval;
        let first = !s.probed;
        s.probed = true;
        match result {
            Ok(()) => {
                s.health_fails = 0;
                if matches!(s.phase, Phase::Starting | Phase::Unhealthy) {
                    s.phase = Phase::Healthy;
                    s.since = now;
                    s.start_failures = 0;
                    s.crashes = 0;
                    self.proxy.send(Msg::Up(id));
                    let name = self.name(i);
                    self.log(format!("{name} healthy"));
                }
            }
            Err(why) => {
                s.health_fails += 1;
                let upstream_down = s.url.is_some() && s.phase == Phase::Starting && first;
                if (s.phase == Phase::Healthy && s.health_fails >= self.flags.max_fails) || upstream_down {
                    s.phase = Phase::Unhealthy;
                    s.since = now;
                    self.proxy.send(Msg::Down(id));
                    let name = self.name(i);
                    self.log(format!("{name} failed its health check ({why})"));
                }
            }
        }
    }

    /// Starts or drains copies until the number of spawned copies is the target.
    fn fit_size(&mut self) {
        if self.flags.backend.is_none() {
            return;
        }
        let counted = |s: &Slot| s.index.is_some() && !s.leaving;
        let mut count = self.slots.iter().filter(|s| counted(s)).count();
        while count < self.target {
            let index = (0..).find(|n| !self.slots.iter().any(|s| s.index == Some(*n) && counted(s))).unwrap_or(0);
            self.slots.push(Slot::new(Some(index), None, SocketAddr::from(([127, 0, 0, 1], 0))));
            let i = self.slots.len() - 1;
            self.spawn(i);
            count += 1;
        }
        while count > self.target {
            // The cheapest copy to lose first: one that is not running, then one not yet serving,
            // then the newest of the healthy ones.
            let rank = |s: &Slot| match s.phase {
                Phase::Dead => 0,
                Phase::Starting | Phase::Unhealthy => 1,
                _ => 2,
            };
            let Some(i) = (0..self.slots.len())
                .filter(|&i| counted(&self.slots[i]))
                .min_by_key(|&i| (rank(&self.slots[i]), std::cmp::Reverse(self.slots[i].index)))
            else {
                break;
            };
            self.slots[i].leaving = true;
            count -= 1;
            match self.slots[i].phase {
                Phase::Dead => {}
                Phase::Healthy => {
                    self.slots[i].phase = Phase::Draining;
                    self.slots[i].since = Instant::now();
                    self.proxy.send(Msg::Drain(self.slots[i].id));
                    let name = self.name(i);
                    self.log(format!("{name} draining (the cluster shrinks to {})", self.target));
                }
                _ => {
                    self.proxy.send(Msg::Drain(self.slots[i].id));
                    self.terminate(i, "not needed");
                }
            }
        }
    }

    /// Stops every copy: SIGTERM to each group now (the front end has already finished its
    /// clients, so nothing is in flight), SIGKILL at `--stop-timeout`.
    fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for i in 0..self.slots.len() {
            self.slots[i].leaving = true;
            if self.slots[i].child.is_some() {
                self.proxy.send(Msg::Drain(self.slots[i].id));
                self.terminate(i, "the cluster stops");
            }
        }
    }

    /// Answers those waiting for the initial copies once each is up or given up on.
    fn answer_ready_waiters(&mut self) {
        if self.ready_waiters.is_empty() {
            return;
        }
        let settled = |s: &Slot| match (&s.url, s.phase) {
            (Some(_), _) => s.probed,
            (None, Phase::Healthy) => true,
            (None, Phase::Dead) => s.gave_up || s.restart_at.is_none(),
            _ => false,
        };
        if !self.slots.iter().all(settled) {
            return;
        }
        let result = if self.slots.iter().any(|s| s.phase == Phase::Healthy) {
            Ok(())
        } else {
            let why: Vec<String> = self
                .slots
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}",
                        s.url.clone().unwrap_or_else(|| format!("copy {}", s.index.unwrap_or(0))),
                        s.last_exit.clone().unwrap_or_else(|| s.phase.name().into())
                    )
                })
                .collect();
            Err(format!("no copy became healthy ({})", why.join("; ")))
        };
        for waiter in self.ready_waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }

    /// Applies `POST /size`.
    fn resize(&mut self, request: SizeRequest) -> Response {
        if self.flags.backend.is_none() {
            return Response::error(409, "the cluster has no --backend, so there is nothing to start or stop");
        }
        match request {
            SizeRequest::Fixed(n) => {
                if n > MAX_COPIES || (n == 0 && self.flags.upstream.is_empty()) {
                    return Response::error(400, &format!("size must be from 1 to {MAX_COPIES}"));
                }
                self.auto = None;
                self.log(format!("size set to {n} (was {})", self.target));
                self.target = n;
            }
            SizeRequest::Auto(policy) => {
                if policy.min == 0 || policy.min > policy.max || policy.max > MAX_COPIES || policy.interval.is_zero() {
                    return Response::error(
                        400,
                        &format!("auto needs 1 <= min <= max <= {MAX_COPIES} and an interval"),
                    );
                }
                self.log(format!("auto size: {policy:?}"));
                self.auto = Some(Auto::new(policy, Instant::now()));
            }
        }
        self.fit_size();
        Response::json(200, &self.size_json())
    }

    fn size_json(&self) -> Value {
        match &self.auto {
            Some(auto) => json!({"mode": "auto", "target": self.target, "auto": policy_json(&auto.policy)}),
            None => json!({"mode": "fixed", "target": self.target}),
        }
    }

    /// `GET /status`.
    fn status(&self) -> Value {
        let now = Instant::now();
        let copies: Vec<Value> = self
            .slots
            .iter()
            .map(|s| {
                json!({
                    "index": s.index,
                    "kind": if s.url.is_some() { "upstream" } else { "spawned" },
                    "url": s.url,
                    "pid": s.child.as_ref().map(Child::id),
                    "port": (s.child.is_some() || s.url.is_some()).then_some(s.addr.port()),
                    "addr": s.addr.to_string(),
                    "state": s.phase.name(),
                    "in_flight": s.stats.in_flight.load(Ordering::Relaxed),
                    "served": s.stats.served.load(Ordering::Relaxed),
                    "failed": s.stats.failed.load(Ordering::Relaxed),
                    "restarts": s.restarts,
                    "gave_up": s.gave_up,
                    "last_exit": s.last_exit,
                    "leaving": s.leaving,
                    "state_secs": now.duration_since(s.since).as_secs_f64(),
                })
            })
            .collect();
        let decision = self.decision.as_ref().map(
            |d| json!({"from": d.from, "to": d.to, "why": d.why, "secs_ago": now.duration_since(d.at).as_secs_f64()}),
        );
        json!({
            "size": self.size_json(),
            "queue": {"waiting": self.proxy.queued(), "limit": self.queue_limit},
            "copies": copies,
            "drained": self.drained,
            "policy": {"last_decision": decision},
            "history": self.history,
            "uptime_secs": self.started.elapsed().as_secs_f64(),
        })
    }
}

/// The auto policy of the command line.
pub fn policy_of(flags: &ClusterFlags) -> AutoPolicy {
    AutoPolicy {
        min: flags.min,
        max: flags.max,
        scale_up_queue: flags.scale_up_queue,
        scale_down_idle: flags.scale_down_idle,
        interval: flags.interval,
    }
}

fn policy_json(p: &AutoPolicy) -> Value {
    json!({"min": p.min, "max": p.max, "scale_up_queue": p.scale_up_queue, "scale_down_idle": p.scale_down_idle,
           "interval_secs": p.interval.as_secs_f64()})
}

fn restart_name(r: Restart) -> &'static str {
    match r {
        Restart::Always => "always",
        Restart::Never => "never",
        Restart::OnFailure => "on-failure",
    }
}

/// The wait before restart number `crashes` in a row: doubling from `first`, capped at `cap`.
fn backoff(first: Duration, cap: Duration, crashes: u32) -> Duration {
    first.saturating_mul(1 << crashes.saturating_sub(1).min(20)).min(cap)
}

/// How a process ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => status.to_string(),
    }
}

/// A port nobody listens on now. Another process may take it before the copy binds it; the copy
/// then fails to start and is started again on another port.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts one copy: `{port}` and `{index}` filled in (and `$PORT` set), in a process group of its
/// own, killed by the kernel if the cluster dies, its stdout sent to the cluster's stderr (the
/// cluster's own stdout starts with its address, which tools read).
fn spawn_copy(template: &str, index: usize, port: u16) -> io::Result<Child> {
    let line = template.replace("{port}", &port.to_string()).replace("{index}", &index.to_string());
    let words = split_words(&line).map_err(io::Error::other)?;
    let (program, args) = words.split_first().ok_or_else(|| io::Error::other("the command is empty"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::from(io::stderr().as_fd().try_clone_to_owned()?));
    // The copy's own port in `$PORT` too, the convention many servers read: never the port the
    // cluster itself may have been given there.
    cmd.env("PORT", port.to_string());
    cmd.process_group(0);
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; it makes two system calls (prctl, getppid) and allocates nothing on the
    // success path.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The cluster may have died between the fork and the prctl, too early for the signal.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// One health check: a TCP connect, or `GET path` answered 2xx or 3xx.
fn probe(addr: SocketAddr, path: Option<&str>, timeout: Duration) -> Result<(), String> {
    let Some(path) = path else {
        return std::net::TcpStream::connect_timeout(&addr, timeout).map(drop).map_err(|e| e.to_string());
    };
    let mut client = Client::connect(addr, timeout).map_err(|e| e.to_string())?;
    match client.get(path) {
        Ok(res) if (200..400).contains(&res.status) => Ok(()),
        Ok(res) => Err(format!("GET {path} answered {}", res.status)),
        Err(e) => Err(format!("GET {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (first, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=6).map(|n| backoff(first, cap, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(first, cap, 1000), cap, "no overflow however many crashes");
    }
}
