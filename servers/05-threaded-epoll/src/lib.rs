//! # Server 05: threaded epoll
//!
//! # Model
//! Server 04's event loop still owns every socket and still waits in `epoll_wait`, but no longer
//! serves anyone: each ready connection is handed, socket and HTTP state together, to a thread
//! pool, whose thread reads, answers and writes as 04's loop would until the socket would block,
//! then hands it back (Apache's event MPM). A slow handler now occupies a pool thread, not the
//! loop, so `/hello` keeps flowing while `/cpu` runs.
//!
//! # Changes from 04
//! None in the loop's logic: this crate calls 04's [`run_reactor`] with a [`Dispatch`] that
//! [takes clients](Dispatch::takes_clients). Where 04 drives a ready client on its own thread,
//! the loop now gives it to [`ToPool::take`], which adds it to this round's queue; at the end of
//! the round one job per pool thread (fewer for a short queue) takes clients from that queue and
//! drives each with 04's own [`Client::drive`], then sends them back, all at once, through
//! 04's [`away`](flash_04_epoll::away) map, which kept what epoll and late answers said about
//! them meanwhile. And the loop's thread asks the scheduler not to preempt the pool's
//! (`SCHED_BATCH`): on a shared core, each wake-up of the loop would otherwise cut a round short.
//!
//! # Limits
//! A connection's pipelined requests run one after another on the thread that holds it, as in
//! Apache and nginx. Each round costs a few wake-ups and context switches; on one core that is
//! what separates 05 from 04. See README.md for the numbers and the design this one replaced.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};

use flash_04_epoll::away::{Back, Returned};
use flash_04_epoll::dispatch::Dispatch;
use flash_04_epoll::run_reactor;
use flash_04_epoll::Client;
use flash_common::{Reply, Request, Shutdown, Site};
use mio::Token;
use threadpool::ThreadPool;

/// Serves every client from one event loop and `--threads` pool threads until `shutdown` is
/// triggered; then waits for the pool to finish.
pub fn serve(listener: TcpListener, site: Site, shutdown: Shutdown) -> io::Result<()> {
    // The pool's threads are made first, so they keep the normal policy the loop's thread gives up.
    let pool = ThreadPool::with_name("flash-pool".into(), site.config().threads());
    batch_scheduling();
    let to_pool = ToPool { pool: pool.clone(), site: site.clone(), round: Vec::new(), back: None };
    let result = run_reactor(listener, &site, &shutdown, 0, to_pool);
    pool.join();
    result
}

/// The loop's [`Dispatch`]: a round's ready clients collect in a queue the pool's jobs empty.
struct ToPool {
    /// The threads that drive clients.
    pool: ThreadPool,
    /// The limits, log and application every pool thread serves with.
    site: Site,
    /// This round's ready clients so far, each with its token in the loop.
    round: Vec<(Token, Client)>,
    /// The way back to the loop, given with the first client.
    back: Option<Back>,
}

impl Dispatch for ToPool {
    /// Never called: the loop hands this dispatch clients, not requests.
    fn call(&mut self, req: &Request<'_>) -> Reply {
        self.site.call(req)
    }

    fn takes_clients(&self) -> bool {
        true
    }

    fn take(&mut self, token: Token, client: Client, back: &Back) {
        self.back.get_or_insert_with(|| back.clone());
        self.round.push((token, client));
    }

    fn end_of_batch(&mut self) {
        // One job per pool thread (or per client, if fewer), all taking clients from the one
        // queue of this round: a slow request holds up its own thread only, while a round of
        // fast ones costs a few wake-ups, not one per client.
        let Some(back) = self.back.as_ref().filter(|_| !self.round.is_empty()) else { return };
        let jobs = self.round.len().min(self.pool.max_count());
        let queue = Arc::new(Mutex::new(std::mem::take(&mut self.round).into_iter()));
        for _ in 0..jobs {
            let (queue, site, back) = (queue.clone(), self.site.clone(), back.clone());
            self.pool.execute(move || drive_all(&queue, &site, &back));
        }
    }
}

/// A pool job: drives clients from the round's queue until it is empty, then sends them back to
/// the loop together, so that a round costs the loop one wake-up, not one per client.
fn drive_all(queue: &Mutex<std::vec::IntoIter<(Token, Client)>>, site: &Site, back: &Back) {
    let mut driven = Vec::new();
    while let Some((token, mut client)) = next(queue) {
        let mut pending = Vec::new();
        let done = client.drive(&mut |req: &Request<'_>| site.call(req), |p| pending.push(p));
        driven.push(Returned { token, client, pending, done });
    }
    site.flush_log(); // This thread's access log lines, before it waits for the next job.
    if !driven.is_empty() {
        back.send(driven);
    }
}

/// The next client of a round, if any is left.
fn next<T>(queue: &Mutex<std::vec::IntoIter<T>>) -> Option<T> {
    queue.lock().unwrap_or_else(PoisonError::into_inner).next()
}

/// Marks the calling thread `SCHED_BATCH`: the scheduler then never preempts a running thread to
/// run this one when it wakes, but lets it wait for the running one's slice (its share of the
/// CPU is unchanged). For the loop that means a pool thread finishes its round while the next
/// round's readiness piles up, instead of being interrupted after every client it answers (on
/// one core: 380,000 context switches for 7.3 million pipelined requests without it, 30,000
/// with it). Best effort: where it is refused, 05 still serves, only slower.
fn batch_scheduling() {
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param`, a valid sched_param that outlives the call, and
    // changes only the calling thread's scheduling policy (pid 0); it touches no memory of ours.
    let _ = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_BATCH, &param) };
}
