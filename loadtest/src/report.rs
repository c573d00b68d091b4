//! The human-readable summary of a run, and small number formatters shared with `compare`.
//!
//! The summary says first which load model was used, because a closed-loop p99 and an open-loop p99
//! answer different questions, and it never hides requests that were still in flight at the deadline.

use std::fmt::Write;

use crate::spec::LoadSpec;
use crate::stats::LoadResult;

/// Groups digits by thousands: 1234567 becomes `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in microseconds with a readable unit.
pub fn latency(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

/// A byte rate with a binary unit.
pub fn bytes(per_sec: f64) -> String {
    if per_sec >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", per_sec / (1024.0 * 1024.0))
    } else if per_sec >= 1024.0 {
        format!("{:.1} KiB", per_sec / 1024.0)
    } else {
        format!("{per_sec:.0} B")
    }
}

/// The one-line description of the load applied.
pub fn describe(spec: &LoadSpec) -> String {
    let model = match spec.rate {
        Some(rate) => format!("open loop at {} req/s (latency from intended send times)", group(rate as u64)),
        None => "closed loop".to_string(),
    };
    let amount = match (spec.count, spec.duration) {
        (Some(n), _) => format!("{} requests", group(n)),
        (None, Some(d)) => format!("{:.1} s", d.as_secs_f64()),
        (None, None) => String::new(),
    };
    let mut line = format!(
        "{model}, {} connections, {} thread{}, {amount}",
        spec.connections,
        spec.threads,
        if spec.threads == 1 { "" } else { "s" }
    );
    if spec.pipeline > 1 {
        let _ = write!(line, ", {} pipelined", spec.pipeline);
    }
    match spec.per_conn {
        Some(1) => line.push_str(", a new connection per request"),
        Some(n) => {
            let _ = write!(line, ", {n} requests per connection");
        }
        None => {}
    }
    if !spec.warmup.is_zero() {
        let _ = write!(line, " after {:.1} s of warm-up", spec.warmup.as_secs_f64());
    }
    line
}

/// The full summary printed after a run.
pub fn summary(spec: &LoadSpec, r: &LoadResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "flash-load {}: {} -> http://{}{}",
        env!("CARGO_PKG_VERSION"),
        describe(spec),
        spec.target.host,
        spec.target.path
    );
    if r.interrupted {
        let _ = writeln!(s, "  stopped    early, by a signal: the figures cover the {:.2} s measured", r.seconds);
    }
    let _ = writeln!(
        s,
        "  requests   {} in {:.2} s = {} req/s, {}/s read",
        group(r.requests),
        r.seconds,
        group(r.requests_per_sec.round() as u64),
        bytes(r.bytes_per_sec)
    );
    let l = &r.latency;
    let _ = writeln!(
        s,
        "  latency    min {}  mean {}  stdev {}  max {}",
        latency(l.min_us),
        latency(l.mean_us),
        latency(l.stdev_us),
        latency(l.max_us)
    );
    let _ = writeln!(
        s,
        "             p50 {}  p75 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}",
        latency(l.p50_us),
        latency(l.p75_us),
        latency(l.p90_us),
        latency(l.p99_us),
        latency(l.p999_us),
        latency(l.p9999_us)
    );
    let statuses: Vec<String> = r.status.iter().map(|(code, n)| format!("{code}: {}", group(*n))).collect();
    let _ = writeln!(s, "  status     {}", if statuses.is_empty() { "none".into() } else { statuses.join(", ") });
    let e = &r.errors;
    if e.total() == 0 {
        let _ = writeln!(s, "  errors     none");
    } else {
        let _ = writeln!(
            s,
            "  errors     connect {}, reset {}, closed {}, timeout {}, malformed {}",
            group(e.connect),
            group(e.reset),
            group(e.closed),
            group(e.timeout),
            group(e.malformed)
        );
    }
    let _ = write!(
        s,
        "  unfinished {} in flight {} (not counted",
        group(r.in_flight_at_deadline),
        if r.interrupted { "when stopped" } else { "at the deadline" }
    );
    if r.oldest_in_flight_us >= 1000.0 {
        let _ = write!(s, "; the oldest had waited {}", latency(r.oldest_in_flight_us));
    }
    s.push(')');
    if r.model == "open" {
        let _ = write!(s, ", {} due but not yet sent", group(r.unsent_at_deadline));
    }
    let _ = writeln!(s, "; {} connections opened", group(r.connections_opened));
    let threads: Vec<String> = r.cpu.generator_threads.iter().map(|f| format!("{:.0}%", f * 100.0)).collect();
    let _ = write!(s, "  cpu        load generator threads {}", threads.join(" "));
    if let (Some(cores), Some(secs)) = (r.cpu.server_cores, r.cpu.server_cpu_seconds) {
        let _ = write!(s, "; server {:.2} cores ({secs:.2} CPU s)", cores);
    }
    s.push('\n');
    for warning in &r.warnings {
        let _ = writeln!(s, "  warning: {warning}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(100), "100");
        assert_eq!(latency(250.0), "250 µs");
        assert_eq!(latency(1500.0), "1.50 ms");
        assert_eq!(latency(2_500_000.0), "2.50 s");
        assert_eq!(bytes(2048.0), "2.0 KiB");
    }
}
