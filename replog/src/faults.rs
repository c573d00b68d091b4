//! Fault injection for tests and demos, on secondaries and peers: `--delay LO..HI` waits a random
//! time before acknowledging each replicated batch (without blocking anything else: the answer
//! waits on the timer), and `--fail-after-append P` answers 500 *after* the batch is stored, with
//! probability P. The second is the UCU task's tip for testing deduplication and ordering: the
//! sender must retry, and the retry must be acknowledged, not stored twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A delay range, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delay {
    /// Shortest delay.
    pub lo_ms: u64,
    /// Longest delay.
    pub hi_ms: u64,
}

/// Parses `LO..HI` in milliseconds, or the original's `lower,upper` in seconds (its `DELAY`).
pub fn parse_delay(s: &str) -> Result<Delay, String> {
    let parse_pair = |sep: &str, scale: f64| -> Option<Delay> {
        let (a, b) = s.split_once(sep)?;
        let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a >= 0.0 && b >= a && b * scale < 3_600_000.0)
            .then_some(Delay { lo_ms: (a * scale) as u64, hi_ms: (b * scale) as u64 })
    };
    parse_pair("..", 1.0).or_else(|| parse_pair(",", 1000.0)).ok_or_else(|| {
        format!("`{s}` is not a delay: use LO..HI in milliseconds (0..50) or lower,upper in seconds (1,3)")
    })
}

/// Parses a probability from 0 to 1.
pub fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a probability from 0 to 1")),
    }
}

/// The faults one node injects.
pub struct Faults {
    /// `--delay`, if any.
    delay: Option<Delay>,
    /// `--fail-after-append`.
    fail: f64,
    /// A xorshift generator's state: good enough for coin flips, and no dependency.
    rng: AtomicU64,
}

impl Faults {
    /// Faults as configured.
    pub fn new(delay: Option<Delay>, fail: f64) -> Faults {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) | 1;
        Faults { delay, fail, rng: AtomicU64::new(seed) }
    }

    /// A uniform number in [0, 1).
    fn random(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether this answer should be an injected failure.
    pub fn fail_now(&self) -> bool {
        self.fail > 0.0 && self.random() < self.fail
    }

    /// How long to hold this answer back, if at all.
    pub fn delay(&self) -> Option<Duration> {
        let d = self.delay?;
        let ms = d.lo_ms as f64 + self.random() * (d.hi_ms - d.lo_ms) as f64;
        Some(Duration::from_millis(ms as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_in_both_forms() {
        assert_eq!(parse_delay("0..50"), Ok(Delay { lo_ms: 0, hi_ms: 50 }));
        assert_eq!(parse_delay("1,3"), Ok(Delay { lo_ms: 1000, hi_ms: 3000 }));
        assert!(parse_delay("50..10").is_err());
        assert!(parse_delay("soon").unwrap_err().contains("LO..HI"));
        assert!(parse_probability("1.5").is_err());
        assert_eq!(parse_probability("0.3"), Ok(0.3));
    }

    #[test]
    fn coin_flips_follow_the_probability() {
        let f = Faults::new(Some(Delay { lo_ms: 5, hi_ms: 10 }), 0.3);
        let fails = (0..10_000).filter(|_| f.fail_now()).count();
        assert!((2500..3500).contains(&fails), "{fails} of 10000");
        assert!((0..100).all(|_| f.delay().is_some_and(|d| (5..=10).contains(&(d.as_millis() as u64)))));
        assert!(!Faults::new(None, 0.0).fail_now());
    }
}
