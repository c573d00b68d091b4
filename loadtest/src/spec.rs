//! The [`LoadSpec`]: everything one run needs, checked once before any thread starts.
//!
//! It lives in a module of its own, below everything that uses it: the command line and `compare`
//! build one, [`crate::run`] and the worker threads read it, and none of them has to import it
//! from the crate root that in turn depends on them.

use std::time::Duration;

use crate::request::{InputError, RequestSet, RequestSpec, Target};

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to connect and what `Host` to send.
    pub target: Target,
    /// The requests, encoded, with their mix weights.
    pub requests: RequestSet,
    /// Concurrent connections, over all threads.
    pub connections: usize,
    /// Worker threads, each with its own poller and its share of the connections.
    pub threads: usize,
    /// How long to measure (after the warm-up); `None` with a count.
    pub duration: Option<Duration>,
    /// How many measured requests to send, with `-n`.
    pub count: Option<u64>,
    /// Load applied before measuring, to fill caches and connection pools.
    pub warmup: Duration,
    /// How long a request (or a connect) may take before it counts as a timeout.
    pub timeout: Duration,
    /// Requests per connection before reconnecting; `Some(1)` is `--no-keepalive`.
    pub per_conn: Option<u64>,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Open loop: requests per second over all connections; `None` is closed loop.
    pub rate: Option<f64>,
    /// Connections are opened evenly over this span instead of all at once.
    pub ramp_up: Duration,
    /// The server's process id, to report its CPU use next to ours.
    pub server_pid: Option<u32>,
    /// Show a live progress line (only when stderr is a terminal).
    pub progress: bool,
}

impl LoadSpec {
    /// A spec for `GET url` with wrk-like defaults (10 connections, one thread, 10 s), for callers
    /// that then adjust a few fields.
    pub fn get(url: &str) -> Result<LoadSpec, InputError> {
        let target = Target::parse(url)?;
        let spec = RequestSpec { method: "GET".into(), path: target.path.clone(), body: Vec::new(), weight: 1 };
        let requests = RequestSet::encode(&target, &[spec], &[], false)?;
        Ok(LoadSpec {
            target,
            requests,
            connections: 10,
            threads: 1,
            duration: Some(Duration::from_secs(10)),
            count: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(2),
            per_conn: None,
            pipeline: 1,
            rate: None,
            ramp_up: Duration::ZERO,
            server_pid: None,
            progress: false,
        })
    }

    /// Checks the combination of settings, naming the flag at fault.
    pub fn validate(&self) -> Result<(), InputError> {
        let err = |m: &str| Err(InputError(m.to_string()));
        if self.connections == 0 {
            return err("-c/--connections must be at least 1");
        }
        if self.threads == 0 || self.threads > self.connections {
            return err("-t/--threads must be between 1 and the number of connections (-c)");
        }
        if self.pipeline == 0 || self.pipeline > 1024 {
            return err("--pipeline must be between 1 and 1024");
        }
        if self.per_conn == Some(0) {
            return err("--requests-per-conn must be at least 1");
        }
        if self.per_conn == Some(1) && self.pipeline > 1 {
            return err("--pipeline needs keep-alive: it cannot be combined with --no-keepalive");
        }
        if self.duration.is_none() && self.count.is_none() {
            return err("give a duration (-d) or a request count (-n)");
        }
        if self.count == Some(0) {
            return err("-n/--requests must be at least 1");
        }
        if self.duration == Some(Duration::ZERO) {
            return err("-d/--duration must be more than zero");
        }
        if self.timeout.is_zero() {
            return err("--timeout must be more than zero");
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return err("--rate must be a positive number of requests per second");
            }
            if rate / (self.connections as f64) > 1e6 {
                return err("--rate is above a million requests/s per connection; use more connections (-c)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_flag() {
        let mut spec = LoadSpec::get("http://127.0.0.1:1/").unwrap();
        spec.threads = 20;
        assert!(spec.validate().unwrap_err().0.contains("--threads"));
        spec.threads = 1;
        spec.per_conn = Some(1);
        spec.pipeline = 4;
        assert!(spec.validate().unwrap_err().0.contains("--pipeline"));
    }
}
