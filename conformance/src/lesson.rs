//! Helpers for the lesson tests: each asserts a model's character (who waits for whom, how many
//! idle clients it holds) with bounds generous enough for a loaded 2-core machine.

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flash_common::client::Client;

/// Generous timeout for any one request in a lesson test.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What [`hellos_during`] saw.
#[derive(Debug)]
pub struct Overlap {
    /// How long the slow request took.
    pub slow: Duration,
    /// The latency of each `/hello` sent while it was in flight, in order.
    pub hellos: Vec<Duration>,
}

impl Overlap {
    /// The longest `/hello`.
    pub fn worst_hello(&self) -> Duration {
        self.hellos.iter().copied().max().unwrap_or_default()
    }
}

/// Sends `slow_target` on one connection and, until its answer arrives, `/hello` after `/hello`
/// on another, one at a time. If the server makes clients wait for each other, one of those
/// hellos waits for (most of) the slow request; if not, every hello is quick. No sleeping: the
/// hellos are the clock.
pub fn hellos_during(addr: SocketAddr, slow_target: &str) -> Overlap {
    let (done, finished) = mpsc::channel();
    let target = slow_target.to_string();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let res = Client::connect(addr, TIMEOUT).and_then(|mut c| c.get(&target));
        let _ = done.send(());
        (started.elapsed(), res)
    });
    let mut hellos = Vec::new();
    let mut client = Client::connect(addr, TIMEOUT).expect("connect for /hello");
    let deadline = Instant::now() + TIMEOUT;
    while finished.try_recv().is_err() && Instant::now() < deadline && hellos.len() < 100_000 {
        let t = Instant::now();
        let res = client.get("/hello").expect("/hello while a slow request is in flight");
        assert_eq!(res.status, 200);
        hellos.push(t.elapsed());
    }
    let (slow_time, res) = slow.join().expect("the slow request's thread");
    assert_eq!(res.expect("the slow request").status, 200, "{slow_target}");
    Overlap { slow: slow_time, hellos }
}

/// How many `/cpu` units take about `want` on this machine, measured in this process (whose code
/// is the server's when the server runs in-process).
pub fn cpu_units_for(want: Duration) -> u64 {
    let probe = 200_000;
    let t = Instant::now();
    std::hint::black_box(flash_demo::cpu_work(probe));
    let per_unit = t.elapsed().as_secs_f64() / probe as f64;
    ((want.as_secs_f64() / per_unit) as u64).max(1)
}

/// Opens `n` keep-alive connections, has each complete one `/hello`, and returns them still
/// open: the server now holds `n` idle clients.
pub fn hold_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Client::connect(addr, TIMEOUT).unwrap_or_else(|e| panic!("connection {i} of {n}: {e}"));
        let res = c.get("/hello").unwrap_or_else(|e| panic!("/hello on connection {i} of {n}: {e}"));
        assert_eq!(res.status, 200, "connection {i} of {n}");
        held.push(c.into_stream());
    }
    held
}

/// Checks that every held connection is still open and served: one more `/hello` on each.
pub fn all_still_served(held: Vec<TcpStream>) {
    let n = held.len();
    for (i, stream) in held.into_iter().enumerate() {
        let mut c = Client::from_stream(stream).unwrap_or_else(|e| panic!("connection {i} of {n}: {e}"));
        let res = c.get("/hello").unwrap_or_else(|e| panic!("/hello again on held connection {i} of {n}: {e}"));
        assert_eq!(res.status, 200);
    }
}
