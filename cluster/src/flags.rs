//! The cluster's own flags, added to the shared server command line (`--port`, `--threads`,
//! `--max-body`, `--queue`, ... keep their meaning; `--queue` is the one queue of requests that
//! wait for a copy).
//!
//! Where nginx, HAProxy or Envoy already has a name for a setting, the help says which, so that a
//! user of those finds their way: `--upstream` is a `server` line of an nginx `upstream` block,
//! `--retry` is `proxy_next_upstream` (with `non_idempotent` as `all`), `--tries` is
//! `proxy_next_upstream_tries`, `--max-in-flight` is HAProxy's `maxconn` per server, `--max-fails`
//! is nginx's `max_fails`. Every value is checked here, so that a bad one is a message naming its
//! flag before anything starts.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Args, ValueEnum};
use flash_common::config::parse_duration;

/// The cluster's flags.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterFlags {
    /// The command that runs one copy, e.g. 'target/release/flash-04-epoll --port {port} --quiet':
    /// `{port}` is replaced by a free port for each copy (also given in `$PORT`), `{index}` by its
    /// number. Split into words like a shell would (quotes, backslashes); no other shell syntax
    /// (use `sh -c '... exec server ...'`: `exec`, so that the server dies with the cluster).
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<String>,
    /// A server already running elsewhere, e.g. http://10.0.0.7:8080 (repeatable; nginx `server`
    /// lines in an `upstream` block): balanced and health-checked like the copies, never started
    /// or stopped.
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: Vec<Upstream>,
    /// How many copies of --backend to run: a number, or `auto` (see --min, --max,
    /// --scale-up-queue, --scale-down-idle, --interval).
    #[arg(long, default_value = "2", value_parser = parse_size)]
    pub size: Size,
    /// Auto size: the fewest copies.
    #[arg(long, default_value_t = 1)]
    pub min: usize,
    /// Auto size: the most copies.
    #[arg(long, default_value_t = 5)]
    pub max: usize,
    /// Auto size: add a copy when more requests than this waited in the queue, on average, over
    /// an interval.
    #[arg(long, default_value_t = 8)]
    pub scale_up_queue: usize,
    /// Auto size: remove a copy after this many intervals in a row in which no request waited.
    #[arg(long, default_value_t = 2)]
    pub scale_down_idle: u32,
    /// Auto size: how often the policy looks at the queue, and so the shortest time between two
    /// changes of size.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub interval: Duration,

    /// When a copy exits: `always` restart it, `never`, or `on-failure` (a non-zero exit or a
    /// signal), like systemd's Restart=.
    #[arg(long, value_enum, default_value_t = Restart::Always)]
    pub restart: Restart,
    /// The first wait before a restart; each failure in a row doubles it, up to --restart-max-delay.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub restart_delay: Duration,
    /// The longest wait before a restart.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub restart_max_delay: Duration,
    /// A copy that fails to start (exits, or misses --start-timeout, before its first passing
    /// health check) this many times in a row is reported and left down.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub start_tries: u32,
    /// How long a new copy may take to pass its first health check.
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub start_timeout: Duration,
    /// How long a stopping copy gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// How long a draining copy may take to finish its requests before it is stopped anyway.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Health check: `GET PATH`, passing on a 2xx or 3xx answer (HAProxy's `option httpchk`)
    /// [default: a TCP connect].
    #[arg(long, value_parser = parse_health_path)]
    pub health: Option<String>,
    /// Time between two health checks of a running copy (a starting one is checked more often).
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    pub health_interval: Duration,
    /// A health check not answered within this fails.
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    pub health_timeout: Duration,
    /// Failures in a row (health checks, or requests that could not be delivered) after which a
    /// copy gets no more requests until a health check passes (nginx `max_fails`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_fails: u32,

    /// Which requests are sent again to another copy when theirs failed before answering (nginx
    /// `proxy_next_upstream`): `safe` = idempotent methods and requests with an Idempotency-Key
    /// always, POST and PATCH only if not one byte reached the failed copy; `all` = every request
    /// (nginx `non_idempotent`; may run a POST twice); `none` = never.
    #[arg(long, value_enum, default_value_t = Retry::Safe)]
    pub retry: Retry,
    /// The most copies one request is tried on (nginx `proxy_next_upstream_tries`).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub tries: u32,
    /// The most requests one copy is given at a time (HAProxy `maxconn` per server); more wait
    /// in the queue (--queue).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// A request not answered this long after it arrived is answered 504 Gateway Timeout.
    #[arg(long, default_value = "60s", value_parser = positive_duration)]
    pub request_timeout: Duration,
    /// A connection to a copy not established within this counts as a failure of the copy.
    #[arg(long, default_value = "2s", value_parser = positive_duration)]
    pub connect_timeout: Duration,
    /// An unused keep-alive connection to a copy is closed after this (nginx upstream
    /// `keepalive_timeout`); keep it below the copies' own idle timeout.
    #[arg(long, default_value = "4s", value_parser = positive_duration)]
    pub keepalive_timeout: Duration,

    /// Port of the admin interface (GET /status, POST /size, a live page at /); none if absent.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Address of the admin interface; anything but loopback lets others resize the cluster.
    #[arg(long, default_value = "127.0.0.1")]
    pub admin_addr: IpAddr,
}

/// How many copies to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Exactly this many.
    Fixed(usize),
    /// Decided by the auto size policy.
    Auto,
}

/// The restart policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Restart {
    /// Restart a copy whenever it exits.
    Always,
    /// Never restart: a dead copy stays dead and the others serve.
    Never,
    /// Restart a copy that exited with a non-zero status or was killed by a signal.
    OnFailure,
}

/// Which failed requests are sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Retry {
    /// Idempotent methods and Idempotency-Key always; others only if nothing was sent.
    Safe,
    /// Every request, even a POST its copy may have acted on.
    All,
    /// None.
    None,
}

/// A server given with --upstream.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// As given, for /status.
    pub url: String,
    /// Resolved once at start.
    pub addr: SocketAddr,
}

fn parse_backend(s: &str) -> Result<String, String> {
    let words = split_words(s)?;
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    if !s.contains("{port}") {
        return Err("the command must contain {port}, where each copy is told its own port".into());
    }
    Ok(s.to_string())
}

fn parse_upstream(s: &str) -> Result<Upstream, String> {
    let rest = s.strip_prefix("http://").ok_or_else(|| format!("`{s}`: only http:// URLs are supported"))?;
    let hostport = rest.split('/').next().unwrap_or("");
    let with_port = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("`{s}`: cannot resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}`: {hostport} has no address"))?;
    Ok(Upstream { url: s.to_string(), addr })
}

fn parse_size(s: &str) -> Result<Size, String> {
    if s == "auto" {
        return Ok(Size::Auto);
    }
    s.parse().map(Size::Fixed).map_err(|_| format!("`{s}` is neither a number of copies nor `auto`"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("`{s}` must be more than zero")),
        d => Ok(d),
    }
}

fn parse_health_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && !s.bytes().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a path (it starts with / and has no spaces)"))
    }
}

impl ClusterFlags {
    /// Checks what one flag alone cannot, naming the flags at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.backend.is_none() && self.upstream.is_empty() {
            return Err("give --backend 'COMMAND --port {port}' or at least one --upstream URL".into());
        }
        if self.backend.is_none() && self.size == Size::Auto {
            return Err("--size auto needs --backend: it starts and stops copies".into());
        }
        if self.size == Size::Auto && (self.min == 0 || self.min > self.max) {
            return Err(format!("--min {} and --max {}: need 1 <= --min <= --max", self.min, self.max));
        }
        if self.max > MAX_COPIES {
            return Err(format!("--max {}: at most {MAX_COPIES} copies", self.max));
        }
        if let Size::Fixed(n) = self.size {
            if n > MAX_COPIES {
                return Err(format!("--size {n}: at most {MAX_COPIES} copies"));
            }
            if n == 0 && self.upstream.is_empty() {
                return Err("--size 0 leaves nothing to serve: give a size of 1 or more, or an --upstream".into());
            }
        }
        if self.restart_delay > self.restart_max_delay {
            return Err("--restart-delay is longer than --restart-max-delay".into());
        }
        Ok(())
    }

    /// The copies to start with: the fixed size, or auto's minimum (none without --backend).
    pub fn initial_size(&self) -> usize {
        match (self.backend.is_some(), self.size) {
            (false, _) => 0,
            (true, Size::Fixed(n)) => n,
            (true, Size::Auto) => self.min,
        }
    }
}

/// The most copies one cluster runs: each is a process with its own ports and connections, and a
/// typing mistake (`--size 1000`) should be refused rather than fork a thousand servers.
pub const MAX_COPIES: usize = 256;

/// Splits a command into words as a shell would for a simple command: whitespace separates,
/// single quotes keep everything, double quotes keep everything but `\"` and `\\`, a backslash
/// outside quotes keeps the next character. Nothing is expanded: no variables, globs or pipes.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed ' in `{s}`")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(format!("unclosed \" in `{s}`")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed \" in `{s}`")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("a trailing \\ in `{s}`")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words(r#"sh -c 'exec x --port {port}' "a b" c\ d "q\"q" ''"#).unwrap(),
            ["sh", "-c", "exec x --port {port}", "a b", "c d", "q\"q", ""]
        );
        assert!(split_words("'open").is_err() && split_words("\"open").is_err() && split_words("end\\").is_err());
    }

    #[test]
    fn bad_values_name_the_problem() {
        assert!(parse_backend("server --port 8080").unwrap_err().contains("{port}"));
        assert!(parse_upstream("https://x:1").unwrap_err().contains("http://"));
        assert_eq!(parse_upstream("http://127.0.0.1:9/x").unwrap().addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(parse_size("auto"), Ok(Size::Auto));
        assert!(parse_size("lots").is_err());
        assert!(parse_health_path("hello").is_err() && parse_health_path("/hello").is_ok());
        assert!(positive_duration("0s").is_err());
    }
}
