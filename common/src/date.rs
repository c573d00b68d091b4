//! Dates the way HTTP and access logs write them.
//!
//! HTTP wants `Date`, `Last-Modified` and `If-Modified-Since` in the IMF-fixdate form
//! (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) and Common Log Format wants
//! `06/Nov/1994:08:49:37 +0000`. Both are a few lines of calendar arithmetic, so we write them
//! instead of pulling in a date crate. The `Date` header is formatted at most once per second
//! per thread ([`http_date_now`]): formatting it per response would be wasted work on the hot path.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A broken-down UTC time.
struct Civil {
    /// Calendar year.
    year: i64,
    /// Month, 1 to 12.
    month: u32,
    /// Day of the month, 1 to 31.
    day: u32,
    /// Seconds into the day.
    secs: u64,
    /// Days since the epoch, which gives the weekday.
    days: i64,
}

/// Splits Unix seconds into a UTC calendar date (Howard Hinnant's `civil_from_days`).
fn civil(unix: u64) -> Civil {
    let days = (unix / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe as i64 + era * 400 + i64::from(month <= 2);
    Civil { year, month, day, secs: unix % 86_400, days }
}

/// The inverse of [`civil`]: days since the epoch for a calendar date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = (y - era * 400) as u64;
    let mp = u64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

/// Formats Unix seconds as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix: u64) -> String {
    String::from_utf8_lossy(&http_date_bytes(unix)).into_owned()
}

/// [`http_date`] into a fixed array, without allocating: the `Date` header is formatted on the
/// request path (once a second), which must not touch the heap. Years past 9999 do not fit the
/// format's four digits and are written as 9999.
fn http_date_bytes(unix: u64) -> [u8; 29] {
    let c = civil(unix);
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let year = c.year.clamp(0, 9999) as u64;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[c.days.rem_euclid(7) as usize].as_bytes());
    out[5..7].copy_from_slice(&two(u64::from(c.day)));
    out[8..11].copy_from_slice(MONTHS[c.month as usize - 1].as_bytes());
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year));
    out[17..19].copy_from_slice(&two(c.secs / 3600));
    out[20..22].copy_from_slice(&two(c.secs / 60 % 60));
    out[23..25].copy_from_slice(&two(c.secs % 60));
    out
}

/// Formats Unix seconds for Common Log Format, e.g. `06/Nov/1994:08:49:37 +0000`.
pub fn clf_date(unix: u64) -> String {
    let c = civil(unix);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        c.day,
        MONTHS[c.month as usize - 1],
        c.year,
        c.secs / 3600,
        c.secs / 60 % 60,
        c.secs % 60
    )
}

/// Formats milliseconds since the Unix epoch as `1994-11-06 08:49:37.123` (UTC), the form the
/// replicated log's original used for `registered_at`: sortable and readable in a JSON answer.
pub fn utc_millis(unix_ms: u64) -> String {
    let c = civil(unix_ms / 1000);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        c.year,
        c.month,
        c.day,
        c.secs / 3600,
        c.secs / 60 % 60,
        c.secs % 60,
        unix_ms % 1000
    )
}

/// Parses an IMF-fixdate. The two obsolete forms (RFC 850, asctime) are not accepted: a date we
/// cannot read makes a conditional request unconditional, which is always safe.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes.
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = std::str::from_utf8(&b[r]).ok()?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let day = num(5..7)? as u32;
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as u32 + 1;
    let year = num(12..16)? as i64;
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days as u64 * 86_400 + h * 3600 + m * 60 + sec)
}

thread_local! {
    /// This thread's formatted `Date` value and the second it stands for.
    static DATE_CACHE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// The `Date` header value for now, formatted at most once per second per thread.
pub fn http_date_now() -> [u8; 29] {
    let now = unix_now();
    DATE_CACHE.with(|cache| {
        let (second, bytes) = cache.get();
        if second == now {
            return bytes;
        }
        let fresh = http_date_bytes(now);
        cache.set((now, fresh));
        fresh
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_rfc_example() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(clf_date(784_111_777), "06/Nov/1994:08:49:37 +0000");
        assert_eq!(utc_millis(784_111_777_042), "1994-11-06 08:49:37.042");
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [0, 784_111_777, 951_782_400, 1_709_251_199, 4_102_444_800] {
            assert_eq!(parse_http_date(&http_date(t)), Some(t), "{}", http_date(t));
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }
}
