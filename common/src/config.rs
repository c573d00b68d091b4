//! The command line every server shares, and what it turns into.
//!
//! One [`Config`] for all servers keeps `--help` the same everywhere: a reader comparing two
//! servers compares their models, not their flags. Flags that only one model reads (`--queue`
//! for 06, `--cgi-dir` for 02, ...) sit under their own heading and say which server uses them.
//! An application adds its own flags beside these (see [`crate::server::main_with`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::parse::{Limits, HEADER_CAP};

/// A Flash HTTP/1.1 server.
#[derive(Parser, Clone, Debug)]
#[command(version, about, long_about = None)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "FLASH_ADDR", default_value = "127.0.0.1")]
    pub addr: IpAddr,
    /// Port to listen on (0 = any free port; the bound address is printed on the first line).
    #[arg(long, short, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Folder served as static files [default: the bundled www/].
    #[arg(long, env = "FLASH_DOCROOT", value_parser = existing_dir)]
    pub docroot: Option<PathBuf>,
    /// Worker threads, for the servers that have them [default: the number of cores].
    #[arg(long, short = 't', env = "TP_NUM_OF_THREADS", value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// Largest request body accepted (e.g. 8MiB, 64KiB, 1000).
    #[arg(long, default_value = "8MiB", value_parser = parse_bytes)]
    pub max_body: u64,
    /// Time allowed to receive a request head, from its first byte (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub header_timeout: Duration,
    /// Time a connection may sit idle between requests, or without progress, before it is closed.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub idle_timeout: Duration,
    /// Longest request target, in bytes (longer gets 414).
    #[arg(long, default_value_t = 8 * 1024, value_parser = at_least_one)]
    pub max_target: usize,
    /// Longest request head, in bytes (longer gets 431).
    #[arg(long, default_value_t = 16 * 1024, value_parser = at_least_one)]
    pub max_head: usize,
    /// Most header fields in a request (more gets 431; at most 256).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=HEADER_CAP as i64))]
    pub max_headers: u16,
    /// Write the access log (Common Log Format) to this file instead of stderr.
    #[arg(long, env = "FLASH_ACCESS_LOG")]
    pub access_log: Option<PathBuf>,
    /// No access log at all (for benchmarks).
    #[arg(long, short)]
    pub quiet: bool,

    /// 03: most connection threads at once; past it new clients get 503.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one, help_heading = "Model options")]
    pub max_threads: usize,
    /// 06: connections that may wait for a worker; the cluster: requests that may wait for a
    /// copy (HAProxy's maxqueue). Past it new ones get 503 with Retry-After.
    #[arg(long, default_value_t = 128, help_heading = "Model options")]
    pub queue: usize,
    /// 02: folder of CGI scripts served under /cgi-bin/ [default: the bundled cgi-bin/].
    #[arg(long, env = "FLASH_CGI_DIR", value_parser = existing_dir, help_heading = "Model options")]
    pub cgi_dir: Option<PathBuf>,
    /// 02: a CGI script running longer than this is killed and answered with 504.
    #[arg(long, default_value = "30s", value_parser = positive_duration, help_heading = "Model options")]
    pub cgi_timeout: Duration,
}

impl Config {
    /// The defaults, as if no flag were given and the environment were empty, except port 0 and
    /// no access log: what in-process test servers start from, whatever the developer's shell
    /// has set.
    pub fn for_tests() -> Config {
        let mut c: Config = defaults();
        c.port = 0;
        c.quiet = true;
        c
    }

    /// The parser's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_target: self.max_target,
            max_head: self.max_head,
            max_headers: usize::from(self.max_headers),
            max_body: self.max_body,
        }
    }

    /// Worker threads: the flag, else the number of cores.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(cores).max(1)
    }

    /// The static files' root.
    pub fn docroot(&self) -> PathBuf {
        self.docroot.clone().unwrap_or_else(|| bundled("www"))
    }
}

/// The defaults of a set of flags, as if none were given and the environment were empty.
pub fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("flash-test")).mut_args(|arg| arg.env(None));
    T::from_arg_matches(&command.get_matches_from(["flash-test"])).expect("every flag has a default")
}

/// Reads an environment variable that is set but empty as unset, for every env-backed flag of
/// `command` at once: `FLASH_ACCESS_LOG=` (what a shell leaves after `FLASH_ACCESS_LOG=$UNSET`,
/// or a blank line in a compose file) then means the default, as `http_proxy=` means no proxy to
/// curl, instead of failing as `--access-log` given without its value.
///
/// clap 4 has no setting for this: `Arg::env` takes the variable's value as it finds it, empty
/// or not, when the command is built. So the flags whose variable is empty right now are
/// unlinked from it here, before parsing; `--help` then omits their `[env: ...]` note, which is
/// the only trace. Applications' flags (`--token` from `API_KEY`, ...) are included: an empty
/// `API_KEY=` is no token, the same as none.
pub fn empty_env_is_unset(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| match arg.get_env() {
        Some(name) if std::env::var_os(name).is_some_and(|value| value.is_empty()) => arg.env(None),
        _ => arg,
    })
}

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A folder that ships with the repository (found relative to the workspace at build time, so
/// that a fresh clone runs with nothing else installed).
pub fn bundled(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// Accepts a folder that exists, so that a mistyped `--docroot` or `--cgi-dir` is reported by
/// the command line (naming the flag) before the server says it is listening, not as a 404 later.
pub fn existing_dir(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(path),
        Ok(_) => Err(format!("`{s}` is not a folder")),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (try 10s or 500ms)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s or m)")),
    };
    // Deadlines are `Instant::now() + d`, which panics past the clock's range: a year is more
    // than any timeout or interval needs, and far inside it.
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d > LONGEST => Err(format!("`{s}` is longer than a year")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// The longest duration a flag takes.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// A count that zero would make meaningless (no threads, a head limit nothing fits): refused on
/// the command line, naming the flag, rather than quietly taken as 1 or as "refuse everyone".
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// [`parse_duration`] for a timeout, where zero would close every connection at once.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than zero (try 10s or 500ms)".into()),
        d => Ok(d),
    }
}

/// Parses `8MiB`, `64KiB`, `8M`, `1000` into bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size (try 8MiB or 65536)"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("2h").is_err());
        assert_eq!(parse_duration("525600m"), Ok(Duration::from_secs(365 * 24 * 3600)));
        assert!(parse_duration("525601m").is_err());
        assert!(parse_duration("10000000000000000000s").is_err());
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn folders_must_exist() {
        let err = Config::try_parse_from(["flash", "--cgi-dir", "/no/such/folder"]).unwrap_err().to_string();
        assert!(err.contains("--cgi-dir") && err.contains("/no/such/folder"), "{err}");
        let err = Config::try_parse_from(["flash", "--docroot", "/etc/hostname"]).unwrap_err().to_string();
        assert!(err.contains("--docroot") && err.contains("not a folder"), "{err}");
        assert!(Config::try_parse_from(["flash", "--docroot", "/tmp"]).is_ok());
    }

    #[test]
    fn zero_is_refused_where_it_means_nothing() {
        for (flag, value) in [
            ("--threads", "0"),
            ("--max-threads", "0"),
            ("--max-head", "0"),
            ("--max-target", "0"),
            ("--header-timeout", "0s"),
            ("--idle-timeout", "0ms"),
            ("--cgi-timeout", "0"),
            ("--threads", "many"),
        ] {
            let err = Config::try_parse_from(["flash", flag, value]).unwrap_err().to_string();
            assert!(err.contains(flag), "{flag} {value}: {err}");
        }
        let ok = Config::try_parse_from(["flash", "--threads", "3", "--header-timeout", "500ms"]).unwrap();
        assert_eq!((ok.threads, ok.header_timeout), (Some(3), Duration::from_millis(500)));
    }
}
