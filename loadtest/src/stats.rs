//! Measurements: what each worker thread records, and the merged result a run reports.
//!
//! Each worker owns its histograms and counters outright (no atomics, no locks on the hot path) and
//! hands them over when it stops; the merge happens once. Latencies are recorded in nanoseconds in
//! an HDR histogram with three significant digits, so that a 20 µs loopback answer and a 5 s stall
//! are both kept to 0.1%. The result is plain data with `serde` derives: it is the `--json` output
//! and what `compare` stores.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The highest latency a histogram keeps exactly (100 s); longer ones are recorded as this.
const MAX_LATENCY_NS: u64 = 100_000_000_000;

/// A latency histogram in nanoseconds with three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("the bounds are valid constants")
}

/// A coarser histogram (two digits) for each second of the time series, which needs only a p99.
fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 2).expect("the bounds are valid constants")
}

/// Errors by kind. Each counts requests lost that way, except `connect`, which counts failed
/// connection attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// Connection attempts refused, unreachable or timed out.
    pub connect: u64,
    /// Requests lost to a connection reset (ECONNRESET, EPIPE and other socket errors).
    pub reset: u64,
    /// Requests lost because the server closed the connection without answering them.
    pub closed: u64,
    /// Requests not answered within `--timeout`.
    pub timeout: u64,
    /// Responses that were not valid HTTP/1.1 (or data nobody asked for).
    pub malformed: u64,
}

impl Errors {
    /// All errors together.
    pub fn total(&self) -> u64 {
        self.connect + self.reset + self.closed + self.timeout + self.malformed
    }

    /// Adds another thread's counts.
    pub fn add(&mut self, other: &Errors) {
        self.connect += other.connect;
        self.reset += other.reset;
        self.closed += other.closed;
        self.timeout += other.timeout;
        self.malformed += other.malformed;
    }
}

/// The kinds of error, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// See [`Errors::connect`].
    Connect,
    /// See [`Errors::reset`].
    Reset,
    /// See [`Errors::closed`].
    Closed,
    /// See [`Errors::timeout`].
    Timeout,
    /// See [`Errors::malformed`].
    Malformed,
}

/// One second of a worker's measurements.
#[derive(Debug, Clone)]
pub struct Second {
    /// Responses completed in this second.
    pub requests: u64,
    /// Their latencies.
    pub histogram: Histogram<u64>,
}

/// Everything one worker thread measured.
#[derive(Debug, Clone)]
pub struct ThreadStats {
    /// Latency of every measured response.
    pub histogram: Histogram<u64>,
    /// The same per second of the measured window, for the time series.
    pub seconds: Vec<Second>,
    /// Responses per status code (index = code; codes above 599 count as 599).
    pub status: Vec<u64>,
    /// Errors by kind.
    pub errors: Errors,
    /// Measured responses completed.
    pub completed: u64,
    /// Measured requests written.
    pub sent: u64,
    /// Bytes read during the measured window.
    pub bytes: u64,
    /// Connections established (during the whole run, warm-up included).
    pub connects: u64,
    /// Connections given up because the process had no file descriptor left (EMFILE).
    pub fd_limited: u64,
    /// Requests (warm-up ones included) sent but unanswered when the run stopped.
    pub in_flight_at_deadline: u64,
    /// How long the oldest of those had been waiting.
    pub oldest_in_flight: Duration,
    /// Open loop only: requests that were due before the deadline but never sent because their
    /// connection was still waiting for earlier answers.
    pub unsent_at_deadline: u64,
    /// CPU time this thread used from the start of the measured window until it stopped.
    pub cpu: Option<Duration>,
    /// When this worker stopped (a little after the deadline, when it was busy then), which is
    /// also when `cpu` was read.
    pub ended: Instant,
    /// Whether it stopped early because a stop was asked for (Ctrl-C), before its deadline or count.
    pub interrupted: bool,
}

impl ThreadStats {
    /// Empty statistics.
    pub fn new(now: Instant) -> ThreadStats {
        ThreadStats {
            histogram: latency_histogram(),
            seconds: Vec::new(),
            status: vec![0; 600],
            errors: Errors::default(),
            completed: 0,
            sent: 0,
            bytes: 0,
            connects: 0,
            fd_limited: 0,
            in_flight_at_deadline: 0,
            oldest_in_flight: Duration::ZERO,
            unsent_at_deadline: 0,
            cpu: None,
            ended: now,
            interrupted: false,
        }
    }

    /// Records one measured response.
    #[inline]
    pub fn record(&mut self, latency: Duration, second: usize, status: u16) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos);
        self.completed += 1;
        self.status[usize::from(status).min(599)] += 1;
        if second >= self.seconds.len() {
            self.grow_seconds(second);
        }
        let bucket = &mut self.seconds[second];
        bucket.requests += 1;
        bucket.histogram.saturating_record(nanos);
    }

    /// Adds buckets up to `second`; cold, so kept out of `record`'s inlined body.
    #[cold]
    fn grow_seconds(&mut self, second: usize) {
        while self.seconds.len() <= second {
            self.seconds.push(Second { requests: 0, histogram: second_histogram() });
        }
    }

    /// Counts `n` errors of a kind.
    pub fn error(&mut self, kind: ErrorKind, n: u64) {
        let slot = match kind {
            ErrorKind::Connect => &mut self.errors.connect,
            ErrorKind::Reset => &mut self.errors.reset,
            ErrorKind::Closed => &mut self.errors.closed,
            ErrorKind::Timeout => &mut self.errors.timeout,
            ErrorKind::Malformed => &mut self.errors.malformed,
        };
        *slot += n;
    }
}

/// The latency summary every report shows, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Fastest response.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// Slowest response.
    pub max_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 75th percentile.
    pub p75_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// 99.99th percentile.
    pub p9999_us: f64,
}

impl Latency {
    /// Summarizes a nanosecond histogram.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        let q = |quantile: f64| us(h.value_at_quantile(quantile));
        Latency {
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
            stdev_us: h.stdev() / 1000.0,
            max_us: us(h.max()),
            p50_us: q(0.50),
            p75_us: q(0.75),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            p9999_us: q(0.9999),
        }
    }
}

/// One point of the full percentile spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantile {
    /// The percentile (0 to 100).
    pub percentile: f64,
    /// The latency at that percentile, in microseconds.
    pub latency_us: f64,
}

/// The full spectrum, halving the distance to 100% five points at a time (as HdrHistogram's own
/// percentile output does), so the tail is as detailed as the body.
pub fn spectrum(h: &Histogram<u64>) -> Vec<Quantile> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<Quantile> = h
        .iter_quantiles(5)
        .map(|v| Quantile {
            percentile: v.quantile_iterated_to() * 100.0,
            latency_us: v.value_iterated_to() as f64 / 1000.0,
        })
        .collect();
    points.dedup_by(|b, a| a.percentile == b.percentile);
    points
}

/// One second of the time series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Seconds since the measured window began.
    pub second: usize,
    /// Responses completed in that second.
    pub requests: u64,
    /// Their 99th percentile latency, in microseconds.
    pub p99_us: f64,
}

/// CPU use of the load generator and, when known, of the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// Each worker thread's busy fraction of the measured window (1.0 = a whole core).
    pub generator_threads: Vec<f64>,
    /// The server's CPU use in cores (1.0 = one core busy all the time), when its pid was known.
    pub server_cores: Option<f64>,
    /// The server's CPU seconds in the measured window.
    pub server_cpu_seconds: Option<f64>,
    /// How many cores the server could use at most (its threads and allowed CPUs).
    pub server_max_cores: Option<f64>,
}

/// The result of one run, as printed and as written by `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// `closed` (send when answered, like wrk) or `open` (send on schedule, like wrk2).
    pub model: String,
    /// The open-loop rate asked for, in requests/s.
    pub rate: Option<f64>,
    /// Connections used.
    pub connections: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Length of the measured window in seconds (warm-up excluded).
    pub seconds: f64,
    /// Measured responses completed.
    pub requests: u64,
    /// Measured requests written.
    pub sent: u64,
    /// Completed responses per second.
    pub requests_per_sec: f64,
    /// Bytes read during the window.
    pub bytes: u64,
    /// Bytes read per second.
    pub bytes_per_sec: f64,
    /// The latency summary.
    pub latency: Latency,
    /// The full percentile spectrum.
    pub spectrum: Vec<Quantile>,
    /// Responses per status code.
    pub status: BTreeMap<u16, u64>,
    /// Errors by kind.
    pub errors: Errors,
    /// Requests sent but not answered when the run stopped; neither counted as done nor as errors.
    pub in_flight_at_deadline: u64,
    /// How long the oldest of them had waited, in µs: a closed-loop run against a server that
    /// leaves some connections waiting shows good latencies for the others, and this exposes it.
    pub oldest_in_flight_us: f64,
    /// Open loop: requests due before the deadline but still queued behind unanswered ones.
    pub unsent_at_deadline: u64,
    /// Connections established, warm-up included.
    pub connections_opened: u64,
    /// Connections never opened (or not reopened) because this process had no file descriptor
    /// left for them (EMFILE, `ulimit -n`): the run applied that many fewer than `connections`.
    #[serde(default)]
    pub fd_limited_connections: u64,
    /// Requests/s and p99 for each second of the window.
    pub timeline: Vec<SecondPoint>,
    /// CPU use of the generator and the server.
    pub cpu: CpuUse,
    /// Things the reader should know, such as a saturated load generator.
    pub warnings: Vec<String>,
    /// Whether the run was stopped early (Ctrl-C, SIGTERM): the figures cover `seconds` only.
    #[serde(default)]
    pub interrupted: bool,
}

/// Merges the workers' statistics into the result.
pub fn merge(
    parts: Vec<ThreadStats>,
    measure_start: Instant,
    window_end: Option<Instant>,
) -> (LoadResult, Histogram<u64>) {
    let mut histogram = latency_histogram();
    let mut seconds: Vec<Second> = Vec::new();
    let mut status: BTreeMap<u16, u64> = BTreeMap::new();
    let mut errors = Errors::default();
    let (mut requests, mut sent, mut bytes, mut opened, mut in_flight, mut unsent) = (0, 0, 0, 0, 0, 0);
    let mut fd_limited = 0;
    let mut ended = measure_start;
    let mut oldest = Duration::ZERO;
    let mut cpu = Vec::new();
    let mut interrupted = false;
    for part in &parts {
        interrupted |= part.interrupted;
        histogram.add(&part.histogram).expect("histograms share bounds");
        for (i, s) in part.seconds.iter().enumerate() {
            if i >= seconds.len() {
                seconds.push(Second { requests: 0, histogram: second_histogram() });
            }
            seconds[i].requests += s.requests;
            seconds[i].histogram.add(&s.histogram).expect("histograms share bounds");
        }
        for (code, &n) in part.status.iter().enumerate() {
            if n > 0 {
                *status.entry(code as u16).or_default() += n;
            }
        }
        errors.add(&part.errors);
        requests += part.completed;
        sent += part.sent;
        bytes += part.bytes;
        opened += part.connects;
        fd_limited += part.fd_limited;
        in_flight += part.in_flight_at_deadline;
        unsent += part.unsent_at_deadline;
        oldest = oldest.max(part.oldest_in_flight);
        ended = ended.max(part.ended);
        // A thread's CPU time was read when it stopped, so it is divided by the time from the
        // window's start to then, not by the window: a thread busy past its deadline would
        // otherwise read as more than one core. The kernel brings a running thread's time up to
        // date at its ticks, so a busy thread can read a tick over; a share is at most 1.
        let measured = part.ended.saturating_duration_since(measure_start).as_secs_f64().max(1e-9);
        cpu.push(part.cpu.map_or(0.0, |c| (c.as_secs_f64() / measured).min(1.0)));
    }
    let end = window_end.map_or(ended, |w| w.min(ended).max(measure_start));
    let window = end.saturating_duration_since(measure_start).as_secs_f64().max(1e-9);
    let timeline = seconds
        .iter()
        .enumerate()
        .map(|(second, s)| SecondPoint {
            second,
            requests: s.requests,
            p99_us: if s.histogram.is_empty() { 0.0 } else { s.histogram.value_at_quantile(0.99) as f64 / 1000.0 },
        })
        .collect();
    let result = LoadResult {
        model: String::new(),
        rate: None,
        connections: 0,
        threads: parts.len(),
        pipeline: 1,
        seconds: window,
        requests,
        sent,
        requests_per_sec: requests as f64 / window,
        bytes,
        bytes_per_sec: bytes as f64 / window,
        latency: Latency::from_histogram(&histogram),
        spectrum: spectrum(&histogram),
        status,
        errors,
        in_flight_at_deadline: in_flight,
        oldest_in_flight_us: oldest.as_secs_f64() * 1e6,
        unsent_at_deadline: unsent,
        connections_opened: opened,
        fd_limited_connections: fd_limited,
        timeline,
        cpu: CpuUse { generator_threads: cpu, ..CpuUse::default() },
        warnings: Vec::new(),
        interrupted,
    };
    (result, histogram)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that stopped a second past the window (it was opening connections when the
    /// deadline passed) and was busy all along used one core, not two: its CPU time is divided
    /// by the time it was measured over, not by the window the rates cover.
    #[test]
    fn a_thread_busy_past_the_window_is_at_most_one_core() {
        let measure_start = Instant::now();
        let mut part = ThreadStats::new(measure_start);
        part.cpu = Some(Duration::from_secs(2));
        part.ended = measure_start + Duration::from_secs(2);
        let (result, _) = merge(vec![part], measure_start, Some(measure_start + Duration::from_secs(1)));
        assert_eq!(result.seconds, 1.0, "rates cover the window");
        assert_eq!(result.cpu.generator_threads, vec![1.0]);
    }
}
