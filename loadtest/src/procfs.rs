//! What `/proc` says about CPU time, memory and threads, for the load generator and for a server.
//!
//! A load generator that is itself at 100% of a core measures itself, not the server. wrk cannot
//! tell; we read our own worker threads' CPU time (`getrusage(RUSAGE_THREAD)`) and the server's
//! (`/proc/PID/stat`, which also counts reaped children so that a forking CGI server is charged
//! for its workers), and say so when we are the bottleneck. Everything here degrades to `None`
//! when `/proc` is missing (or, for the server's figures, when this process has no file
//! descriptor left to read it) rather than failing a measurement.

use std::fs;
use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;

/// Clock ticks per second of `/proc/PID/stat`. Linux has reported times in units of `USER_HZ` = 100
/// on every architecture for decades; reading `sysconf(_SC_CLK_TCK)` would need a libc binding for a
/// constant.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The CPU time (user + system) the calling thread has used so far. A system call rather than
/// `/proc/thread-self/schedstat`, which needs a file descriptor: a run with more connections
/// than `ulimit -n` has none left at its end, and its report then said 0%.
pub fn thread_cpu() -> Option<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
    let time = |t: TimeVal| Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64);
    Some(time(usage.user_time()) + time(usage.system_time()))
}

/// The CPU time (user + system, including reaped children) a process has used so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields are counted after the
    // last ')'. utime, stime, cutime, cstime are fields 14 to 17, i.e. 11 to 14 after it.
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11..15)?.iter().map(|f| f.parse::<u64>().unwrap_or(0)).sum();
    Some(Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND))
}

/// The CPU time of a process and all its living descendants (reaped ones are already in the
/// parent's figures), so that a server made of several processes (nginx's master and workers, a
/// CGI server's children) is charged for all of them.
pub fn tree_cpu(pid: u32) -> Option<Duration> {
    let mut total = process_cpu(pid)?;
    let mut pending = children(pid);
    // Bounded: a process tree on one machine has at most a few hundred thousand members.
    let mut budget = 100_000;
    while let Some(child) = pending.pop() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        total += process_cpu(child).unwrap_or_default();
        pending.extend(children(child));
    }
    Some(total)
}

/// The direct children of a process, from `/proc/PID/task/*/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// Memory and thread figures of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Resident memory now, in KiB.
    pub rss_kib: u64,
    /// Peak resident memory since start (or since the last reset), in KiB.
    pub peak_rss_kib: u64,
    /// Number of threads.
    pub threads: u64,
    /// How many CPUs the process may run on.
    pub cpus_allowed: u64,
}

/// Reads `/proc/PID/status`; `None` once the process is gone.
pub fn process_status(pid: u32) -> Option<ProcStatus> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut status = ProcStatus::default();
    for line in text.lines() {
        let (key, value) = line.split_once(':')?;
        let number = || value.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match key {
            "VmRSS" => status.rss_kib = number(),
            "VmHWM" => status.peak_rss_kib = number(),
            "Threads" => status.threads = number(),
            "Cpus_allowed_list" => status.cpus_allowed = count_cpu_list(value.trim()),
            _ => {}
        }
    }
    Some(status)
}

/// Resets a child's peak RSS so that each scenario reports its own peak (`echo 5 > clear_refs`).
pub fn reset_peak_rss(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Counts the CPUs in a list such as `0-3,6`.
pub fn count_cpu_list(list: &str) -> u64 {
    list.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => 1,
        })
        .sum()
}

/// The number of CPUs this process may use.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_figures() {
        // Spin until this thread has been charged 10 ms more CPU: on a busy machine a fixed wall
        // time may buy less than that, so the condition is waited for, and the deadline is what
        // fails a clock that does not move.
        let before = thread_cpu().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while thread_cpu().unwrap() < before + Duration::from_millis(10) {
            assert!(std::time::Instant::now() < deadline, "20 s of spinning were not charged 10 ms of CPU");
        }
        let status = process_status(std::process::id()).unwrap();
        assert!(status.threads >= 1 && status.rss_kib > 0 && status.peak_rss_kib >= status.rss_kib);
        // The process alone first, then the tree: other tests' threads keep charging CPU between
        // the two reads, so only this order makes the comparison hold every time.
        let own = process_cpu(std::process::id());
        assert!(own.is_some());
        assert!(tree_cpu(std::process::id()) >= own);
        assert_eq!(count_cpu_list("0-3,6"), 5);
    }
}
