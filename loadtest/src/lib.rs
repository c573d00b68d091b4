//! flash-load: the HTTP/1.1 load tester bundled with Flash, hand-written on `mio` like the servers.
//!
//! It exists so that every Flash server is measured by an instrument readers can inspect, as accurate
//! as wrk in closed loop and as honest as wrk2 in open loop, and so that `compare` can drive all the
//! servers the same way. The layout follows the data:
//!
//! - [`request`]: the target and the requests, encoded once before the run;
//! - [`spec`]: the [`LoadSpec`], everything a run needs, validated (a leaf, so the worker imports
//!   it without reaching up into this file);
//! - [`response`]: response framing (sans-I/O, so it is tested byte by byte);
//! - `worker`: one thread's event loop, the only hot code;
//! - [`stats`]: what the workers record and the merged [`LoadResult`];
//! - [`report`]: the human summary; [`procfs`]: CPU, memory and threads from `/proc`;
//! - [`findmax`]: the search for the highest rate that meets a latency target;
//! - [`interrupt`]: Ctrl-C and SIGTERM stop a run (or `compare`) with a report;
//! - [`compare`]: builds, starts and measures every server, and writes the report with charts.
//!
//! [`run`] is the whole load generator as a function, so tests and `compare` call it directly and
//! `main.rs` is only the command line.

pub mod cli;
pub mod compare;
pub mod findmax;
pub mod interrupt;
pub mod procfs;
pub mod report;
pub mod request;
pub mod response;
pub mod spec;
pub mod stats;
mod worker;

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use interrupt::Interrupt;
pub use request::{InputError, RequestSet, RequestSpec, Target};
pub use spec::LoadSpec;
pub use stats::{Errors, LoadResult};

/// Runs the load and returns the merged result. `stop` ends the run early when set.
pub fn run(spec: &LoadSpec, stop: &AtomicBool) -> io::Result<LoadResult> {
    spec.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let start = Instant::now();
    let measure_start = start + spec.warmup;
    let deadline = spec.duration.map(|d| measure_start + d);
    let progress: Vec<AtomicU64> = (0..spec.threads).map(|_| AtomicU64::new(0)).collect();
    // The server's CPU time, and when it was read: at the start of the window and at its end
    // (the deadline, or when the workers stopped if that came first).
    let server_cpu = |now: Instant| spec.server_pid.and_then(procfs::tree_cpu).map(|cpu| (now, cpu));
    let mut server_cpu_before = None;
    let mut server_cpu_after = None;
    let bar = progress_bar(spec);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let parts = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(spec.threads);
        let mut first_conn = 0;
        for (index, counter) in progress.iter().enumerate() {
            let conns = share(spec.connections as u64, spec.threads, index) as usize;
            let budget = spec.count.map(|n| share(n, spec.threads, index));
            let plan = worker::Plan {
                spec,
                index,
                first_conn,
                conns,
                budget,
                start,
                measure_start,
                deadline,
                progress: counter,
                stop,
            };
            first_conn += conns;
            let done = done_tx.clone();
            let handle =
                std::thread::Builder::new().name(format!("flash-load-{index}")).spawn_scoped(scope, move || {
                    let result = worker::run(plan);
                    let _ = done.send(());
                    result
                })?;
            handles.push(handle);
        }
        drop(done_tx);
        // The main thread only watches: it samples the server's CPU when measuring starts and at
        // the deadline, and draws the progress line, waking on a worker's end, at those two
        // moments, or every 100 ms.
        let mut finished = 0;
        while finished < spec.threads {
            let now = Instant::now();
            if server_cpu_before.is_none() && now >= measure_start {
                server_cpu_before = server_cpu(now);
            }
            if server_cpu_after.is_none() && server_cpu_before.is_some() && deadline.is_some_and(|d| now >= d) {
                server_cpu_after = server_cpu(now);
            }
            let next = if now < measure_start { Some(measure_start) } else { deadline.filter(|d| now < *d) };
            let wait = next.map_or(Duration::from_millis(100), |t| (t - now).min(Duration::from_millis(100)));
            match done_rx.recv_timeout(wait) {
                Ok(()) => finished += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Some(bar) = &bar {
                let completed: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
                update_bar(bar, spec, completed, start, measure_start);
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked"))))
            .collect::<io::Result<Vec<_>>>()
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (mut result, _) = stats::merge(parts, measure_start, deadline);
    result.model = if spec.rate.is_some() { "open".into() } else { "closed".into() };
    result.rate = spec.rate;
    result.connections = spec.connections;
    result.pipeline = spec.pipeline;
    let server_cpu_after = server_cpu_after.or_else(|| server_cpu(Instant::now()));
    if let (Some(pid), Some((t0, before)), Some((t1, after))) = (spec.server_pid, server_cpu_before, server_cpu_after) {
        let seconds = after.saturating_sub(before).as_secs_f64();
        let max_cores = procfs::process_status(pid).map(|s| s.threads.min(s.cpus_allowed.max(1)).max(1) as f64);
        // Divided by the time between the two readings, which is what the CPU time covers (the
        // window the rates cover can be shorter). `/proc` counts in 10 ms ticks, so a server
        // busy on every core can read a tick over: a share is at most the cores it could use.
        let cores = seconds / t1.saturating_duration_since(t0).as_secs_f64().max(1e-9);
        result.cpu.server_cpu_seconds = Some(seconds);
        result.cpu.server_cores = Some(max_cores.map_or(cores, |max| cores.min(max)));
        result.cpu.server_max_cores = max_cores;
    }
    result.warnings = warnings(&result);
    Ok(result)
}

/// The share of `total` for worker `index` of `parts`, spreading the remainder over the first ones.
fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

/// What to say when some connections could not be opened for want of file descriptors: the
/// load asked for was not applied, and the cause is on this side, in one line that names `-c`
/// and the limit.
pub fn fd_limit_message(result: &LoadResult) -> Option<String> {
    if result.fd_limited_connections == 0 {
        return None;
    }
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or("unknown".to_string(), |(soft, _)| report::group(soft));
    let opened = (result.connections as u64).saturating_sub(result.fd_limited_connections);
    Some(format!(
        "only {} of the -c {} connections could be opened: too many open files (EMFILE; the limit, ulimit -n, is {limit}); \
         raise the limit or lower -c",
        report::group(opened),
        result.connections
    ))
}

/// The judgements a reader should see: a saturated generator, errors, unfinished requests.
fn warnings(result: &LoadResult) -> Vec<String> {
    let mut warnings: Vec<String> = fd_limit_message(result).into_iter().collect();
    let busiest = result.cpu.generator_threads.iter().copied().fold(0.0, f64::max);
    if busiest >= 0.9 {
        match (result.cpu.server_cores, result.cpu.server_max_cores) {
            (Some(used), Some(max)) if used < 0.8 * max => warnings.push(format!(
                "the load generator is saturated ({:.0}% of a core) while the server is not ({:.2} of {:.0} cores): \
                 these figures measure flash-load more than the server; add threads (-t) or cores",
                busiest * 100.0,
                used,
                max
            )),
            (None, _) => warnings.push(format!(
                "a load generator thread was {:.0}% busy; pass --server-pid to learn whether the server or the generator is the bottleneck",
                busiest * 100.0
            )),
            _ => {}
        }
    }
    if result.requests == 0 {
        warnings.push("no response was completed".into());
    }
    warnings
}

/// A progress line, when asked for and stderr is a terminal.
fn progress_bar(spec: &LoadSpec) -> Option<indicatif::ProgressBar> {
    if !spec.progress || !io::stderr().is_terminal() {
        return None;
    }
    let (length, template) = match (spec.duration, spec.count) {
        (Some(d), None) => (d.as_millis() as u64, "{spinner} [{bar:30}] {elapsed_precise} {msg}"),
        (_, Some(n)) => (n, "{spinner} [{bar:30}] {pos}/{len} {msg}"),
        (None, None) => (1, "{spinner} {msg}"),
    };
    let bar = indicatif::ProgressBar::with_draw_target(Some(length), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// Moves the progress line: time or count, and the running request rate.
fn update_bar(bar: &indicatif::ProgressBar, spec: &LoadSpec, completed: u64, start: Instant, measure_start: Instant) {
    let now = Instant::now();
    if now < measure_start {
        bar.set_message(format!("warming up ({:.1} s)", (now - start).as_secs_f64()));
        return;
    }
    let elapsed = (now - measure_start).as_secs_f64().max(1e-3);
    bar.set_message(format!(
        "{} responses, {} req/s",
        report::group(completed),
        report::group((completed as f64 / elapsed) as u64)
    ));
    if spec.count.is_some() {
        bar.set_position(completed);
    } else {
        bar.set_position((elapsed * 1000.0) as u64);
    }
}

/// Parses a duration such as `10s`, `250ms`, `2m`, `1.5s` or `3` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 10s, 250ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use ms, s, m or h)")),
    };
    // A deadline is `Instant::now() + d`, which panics past the clock's range; a year is more
    // than any run, warm-up or timeout needs.
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d.as_secs() > 365 * 24 * 3600 => Err(format!("{text:?} is longer than a year")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!("{text:?} is out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_shares() {
        assert!(parse_duration("10000000000000000000s").is_err(), "a deadline that far would panic");
        assert!(parse_duration("8761h").is_err());
        assert!(parse_duration("8760h").is_ok());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert_eq!((0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(), vec![4, 3, 3]);
    }
}
