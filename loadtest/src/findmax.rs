//! `--find-max-rate --slo p99=10ms`: the highest open-loop rate whose latency target holds.
//!
//! Peak closed-loop throughput says how fast a server can go when nobody cares how long each answer
//! takes; capacity planning needs the rate at which answers are still fast enough. The search first
//! measures the closed-loop peak (an upper bound), then bisects open-loop rates below it. A rate
//! passes when the chosen percentile stays under the target, no request failed, and the server kept
//! up (at least 95% of the asked rate completed).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::run;
use crate::spec::LoadSpec;
use crate::stats::LoadResult;

/// A latency objective such as `p99=10ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// The percentile, 0 to 100.
    pub percentile: f64,
    /// The latency it must stay under.
    pub limit: Duration,
}

impl Slo {
    /// Parses `pNN=DURATION`, e.g. `p99=10ms` or `p99.9=50ms`.
    pub fn parse(text: &str) -> Result<Slo, String> {
        let bad = || format!("--slo {text:?}: expected a percentile and a limit, such as p99=10ms");
        let (p, limit) = text.split_once('=').ok_or_else(bad)?;
        let percentile: f64 = p.strip_prefix('p').ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if !(percentile > 0.0 && percentile < 100.0) {
            return Err(format!("--slo {text:?}: the percentile must be between 0 and 100"));
        }
        let limit = crate::parse_duration(limit).map_err(|e| format!("--slo: {e}"))?;
        Ok(Slo { percentile, limit })
    }

    /// The measured latency at this objective's percentile, in microseconds.
    pub fn measured_us(&self, result: &LoadResult) -> f64 {
        result
            .spectrum
            .iter()
            .find(|q| q.percentile >= self.percentile)
            .or(result.spectrum.last())
            .map_or(0.0, |q| q.latency_us)
    }
}

/// One probe of the search.
#[derive(Debug, Clone)]
pub struct Step {
    /// The rate tried; `None` for the closed-loop probe.
    pub rate: Option<f64>,
    /// What it measured.
    pub result: LoadResult,
    /// Whether it met the objective.
    pub passed: bool,
}

/// Searches for the highest passing rate; `on_step` sees each probe as it finishes.
pub fn find_max_rate(
    spec: &LoadSpec,
    slo: Slo,
    stop: &AtomicBool,
    mut on_step: impl FnMut(&Step),
) -> std::io::Result<(Option<f64>, Vec<Step>)> {
    let mut steps = Vec::new();
    let mut probe = spec.clone();
    probe.rate = None;
    let peak = run(&probe, stop)?;
    let upper = peak.requests_per_sec;
    let step = Step { rate: None, passed: false, result: peak };
    on_step(&step);
    steps.push(step);
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok((None, steps));
    }
    let (mut low, mut high) = (0.0_f64, upper * 1.05);
    let mut best = None;
    for _ in 0..8 {
        if high - low < high * 0.03 || high < 1.0 {
            break;
        }
        let rate = if best.is_none() && low == 0.0 { high * 0.5 } else { (low + high) / 2.0 };
        let mut trial = spec.clone();
        trial.rate = Some(rate);
        let result = run(&trial, stop)?;
        let passed = result.errors.total() == 0
            && result.requests_per_sec >= 0.95 * rate
            && slo.measured_us(&result) <= slo.limit.as_secs_f64() * 1e6;
        if passed {
            low = rate;
            best = Some(rate);
        } else {
            high = rate;
        }
        let step = Step { rate: Some(rate), passed, result };
        on_step(&step);
        steps.push(step);
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok((best, steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objectives() {
        assert_eq!(Slo::parse("p99=10ms").unwrap(), Slo { percentile: 99.0, limit: Duration::from_millis(10) });
        assert_eq!(Slo::parse("p99.9=1s").unwrap().percentile, 99.9);
        assert!(Slo::parse("99=10ms").is_err());
        assert!(Slo::parse("p100=10ms").is_err());
        assert!(Slo::parse("p99").is_err());
    }
}
