//! The auto size policy: how many copies the cluster wants, from how long its queue is.
//!
//! The seed (ya-httpx-client) lets a size be any expression of the cluster, evaluated whenever it
//! likes, and warns that such an expression must itself avoid changing too often. Here the policy
//! is one fixed rule with four knobs, evaluated on a clock, which makes flapping impossible by
//! construction: the supervisor samples the queue on every tick ([`Auto::observe`]), and once per
//! `--interval` [`Auto::decide`] looks at the samples and moves the size by at most one copy:
//!
//! - up one, if more than `--scale-up-queue` requests waited on average over the interval
//!   (requests wait only when every copy has `--max-in-flight`, so a long queue means too few);
//! - down one, after `--scale-down-idle` intervals in a row in which no request waited at all;
//! - always within `--min` ..= `--max`.
//!
//! It is a pure function of the samples and the time given, so its tests need no process.

use std::time::{Duration, Instant};

/// The policy's knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoPolicy {
    /// The fewest copies.
    pub min: usize,
    /// The most copies.
    pub max: usize,
    /// Grow when the queue averaged more than this over an interval.
    pub scale_up_queue: usize,
    /// Shrink after this many idle intervals in a row.
    pub scale_down_idle: u32,
    /// How often the policy decides.
    pub interval: Duration,
}

/// One evaluation of the policy, kept for `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// When it was made.
    pub at: Instant,
    /// The size before.
    pub from: usize,
    /// The size decided (equal to `from` when nothing changes).
    pub to: usize,
    /// Why, in words.
    pub why: String,
}

/// The policy and what it has observed since its last decision.
#[derive(Clone, Debug)]
pub struct Auto {
    /// The knobs.
    pub policy: AutoPolicy,
    /// When the current interval began.
    window_start: Instant,
    /// Sum of the queue lengths sampled in this interval.
    sum: u64,
    /// How many samples.
    samples: u64,
    /// The longest queue sampled in this interval.
    peak: usize,
    /// Idle intervals in a row so far.
    idle_intervals: u32,
}

impl Auto {
    /// Starts observing at `now`.
    pub fn new(policy: AutoPolicy, now: Instant) -> Auto {
        Auto { policy, window_start: now, sum: 0, samples: 0, peak: 0, idle_intervals: 0 }
    }

    /// Records the queue's length now.
    pub fn observe(&mut self, queued: usize) {
        self.sum += queued as u64;
        self.samples += 1;
        self.peak = self.peak.max(queued);
    }

    /// At the end of an interval, decides the size for a cluster of `size` copies; `None` before.
    pub fn decide(&mut self, now: Instant, size: usize) -> Option<Decision> {
        if now < self.window_start + self.policy.interval {
            return None;
        }
        let p = &self.policy;
        let average = if self.samples == 0 { 0.0 } else { self.sum as f64 / self.samples as f64 };
        let idle = self.peak == 0;
        self.idle_intervals = if idle { self.idle_intervals + 1 } else { 0 };
        let secs = p.interval.as_secs_f64();
        let (to, why) = if size < p.min {
            (p.min, format!("{size} copies is below --min {}", p.min))
        } else if size > p.max {
            (p.max, format!("{size} copies is above --max {}", p.max))
        } else if average > p.scale_up_queue as f64 && size < p.max {
            (size + 1, format!("the queue averaged {average:.1} > --scale-up-queue {} over {secs}s", p.scale_up_queue))
        } else if idle && self.idle_intervals >= p.scale_down_idle && size > p.min {
            self.idle_intervals = 0;
            (size - 1, format!("no request waited for {} intervals of {secs}s in a row", p.scale_down_idle))
        } else if idle {
            (size, format!("idle for {} of --scale-down-idle {} intervals", self.idle_intervals, p.scale_down_idle))
        } else {
            (size, format!("the queue averaged {average:.1} (peak {}), within bounds", self.peak))
        };
        self.window_start = now;
        (self.sum, self.samples, self.peak) = (0, 0, 0);
        Some(Decision { at: now, from: size, to, why })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AutoPolicy {
        AutoPolicy { min: 1, max: 3, scale_up_queue: 8, scale_down_idle: 2, interval: Duration::from_secs(10) }
    }

    /// Runs the policy over `intervals` intervals with a constant queue, returning the sizes.
    fn run(auto: &mut Auto, start: &mut Instant, size: &mut usize, queue: usize, intervals: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        for _ in 0..intervals {
            // Ten samples per interval, then the decision at its end (and none before it).
            for tick in 1..=10 {
                auto.observe(queue);
                *start += Duration::from_secs(1);
                let decision = auto.decide(*start, *size);
                assert_eq!(decision.is_some(), tick == 10, "a decision only at the interval's end");
                if let Some(d) = decision {
                    assert!(d.to.abs_diff(d.from) <= 1, "one copy at a time: {d:?}");
                    assert!(!d.why.is_empty());
                    *size = d.to;
                }
            }
            sizes.push(*size);
        }
        sizes
    }

    #[test]
    fn a_burst_grows_to_max_and_idle_shrinks_to_min_one_interval_at_a_time() {
        let mut now = Instant::now();
        let mut auto = Auto::new(policy(), now);
        let mut size = 1;
        assert_eq!(run(&mut auto, &mut now, &mut size, 20, 4), [2, 3, 3, 3], "grows by one per interval, up to max");
        assert_eq!(run(&mut auto, &mut now, &mut size, 0, 5), [3, 2, 2, 1, 1], "shrinks after two idle intervals");
        assert_eq!(run(&mut auto, &mut now, &mut size, 3, 3), [1, 1, 1], "a short queue is neither busy nor idle");
    }

    #[test]
    fn a_busy_interval_resets_the_idle_count() {
        let mut now = Instant::now();
        let mut auto = Auto::new(policy(), now);
        let mut size = 3;
        run(&mut auto, &mut now, &mut size, 0, 1);
        run(&mut auto, &mut now, &mut size, 1, 1);
        assert_eq!(run(&mut auto, &mut now, &mut size, 0, 1), [3], "one idle interval after a busy one");
        assert_eq!(run(&mut auto, &mut now, &mut size, 0, 1), [2]);
    }

    #[test]
    fn out_of_bounds_sizes_are_brought_back() {
        let now = Instant::now();
        let mut auto = Auto::new(policy(), now);
        let later = now + Duration::from_secs(10);
        assert_eq!(auto.decide(later, 7).map(|d| d.to), Some(3));
        assert_eq!(auto.decide(later + Duration::from_secs(10), 0).map(|d| d.to), Some(1));
    }
}
