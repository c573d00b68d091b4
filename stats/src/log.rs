//! The activity log: one line per request, job completion and error, with a UTC timestamp,
//! in a file that rotates by size.
//!
//! The original service used Python's `RotatingFileHandler` with UTC times; this is the same
//! idea in a few lines. Each line goes to the file in a single `write` on a file opened for
//! appending, so lines from several threads (or several CGI processes) never interleave.
//! Rotation renames `log` to `log.1`, `log.1` to `log.2` and so on, dropping the oldest.
//! A deliberate simplification: the size is tracked per process, so several processes writing
//! one log may each rotate it; a line or a rotation can then land in a file one step older.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A log file is rotated once it would grow past this many bytes.
pub const MAX_BYTES: u64 = 1 << 20;

/// How many rotated files (`log.1` ... `log.N`) are kept besides the live one.
pub const KEEP: usize = 3;

/// The activity log of a service; a no-op when no file was configured.
pub struct ActivityLog {
    /// The live log file's path, or `None` for no log.
    path: Option<PathBuf>,
    /// The open file and its current size; `None` after a failed rotation.
    file: Mutex<Option<(File, u64)>>,
    /// Rotation threshold in bytes (a field so that tests can rotate small files).
    max_bytes: u64,
}

impl ActivityLog {
    /// Opens (creating it) the log at `path`, or makes a silent log for `None`.
    pub fn open(path: Option<&Path>, max_bytes: u64) -> io::Result<ActivityLog> {
        let file = match path {
            Some(p) => Some(open_append(p)?),
            None => None,
        };
        Ok(ActivityLog { path: path.map(Path::to_path_buf), file: Mutex::new(file), max_bytes })
    }

    /// Whether lines are written anywhere; callers skip formatting a line nobody will read.
    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    /// Appends `level message` with the current UTC time. A log that cannot be written must
    /// not take the service down, so write errors are reported on stderr once per failure.
    pub fn write(&self, level: &str, message: &str) {
        let Some(path) = &self.path else {
            return;
        };
        let line = format!("{} {level} {message}\n", utc_timestamp(SystemTime::now()));
        let mut slot = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let result = (|| {
            let needs_rotation = match &*slot {
                Some((_, size)) => *size > 0 && size + line.len() as u64 > self.max_bytes,
                None => true,
            };
            if needs_rotation {
                *slot = None;
                rotate(path)?;
                *slot = Some(open_append(path)?);
            }
            if let Some((file, size)) = &mut *slot {
                file.write_all(line.as_bytes())?;
                *size += line.len() as u64;
            }
            Ok::<(), io::Error>(())
        })();
        if let Err(e) = result {
            // Not `eprintln!`, which panics if stderr is closed: the log failing must not cost the job.
            let _ = writeln!(io::stderr().lock(), "flash-stats: cannot write the activity log {}: {e}", path.display());
        }
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// Shifts `path.N-1` to `path.N` ... `path` to `path.1`; missing files are skipped.
fn rotate(path: &Path) -> io::Result<()> {
    let numbered = |n: usize| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    for n in (1..KEEP).rev() {
        ignore_missing(std::fs::rename(numbered(n), numbered(n + 1)))?;
    }
    ignore_missing(std::fs::rename(path, numbered(1)))
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `2026-11-24T10:50:01.123Z`: ISO 8601 in UTC, computed without a date library by the
/// days-to-civil algorithm of Howard Hinnant's `chrono`-compatible date paper.
pub fn utc_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The (year, month, day) of the proleptic Gregorian calendar `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |secs: u64| utc_timestamp(UNIX_EPOCH + Duration::from_millis(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_795_517_401_123), "2026-11-24T10:50:01.123Z");
    }

    #[test]
    fn log_rotates_by_size_and_keeps_a_few_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activity.log");
        let log = ActivityLog::open(Some(&path), 200).unwrap();
        for n in 0..40 {
            log.write("INFO", &format!("line number {n:04} with some padding"));
        }
        let live = std::fs::read_to_string(&path).unwrap();
        assert!(live.contains("line number 0039"), "{live}");
        assert!(std::fs::metadata(&path).unwrap().len() <= 200);
        for n in 1..=KEEP {
            assert!(dir.path().join(format!("activity.log.{n}")).exists());
        }
        assert!(!dir.path().join(format!("activity.log.{}", KEEP + 1)).exists());
    }
}
