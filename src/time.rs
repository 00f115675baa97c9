//! Wall-clock helpers: milliseconds since the Unix epoch, RFC 3339 text, and
//! the `DATETIME(3)` literal MySQL stores (always UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The last millisecond RFC 3339 (and MySQL's `DATETIME`) can write:
/// `9999-12-31T23:59:59.999Z`.
pub const MAX_MS: u64 = 253_402_300_799_999;

/// `1700000000123` -> `2023-11-14T22:13:20.123Z`. A later time shows as
/// [`MAX_MS`]: past it humantime's `Display` fails, and `to_string` would
/// panic (a sale being restored opens at 2^53 ms, for one).
pub fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.min(MAX_MS))).to_string()
}

/// `1700000000123` -> `2023-11-14 22:13:20.123`, a UTC `DATETIME(3)` literal.
pub fn mysql_datetime(ms: u64) -> String {
    let mut s = rfc3339_ms(ms);
    s.pop(); // the trailing 'Z'
    s.replace('T', " ")
}

/// Parses a time given on the command line: RFC 3339 (`2026-11-21T20:00:00Z`)
/// or whole seconds since the epoch.
pub fn parse_time_ms(s: &str) -> Result<u64, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs
            .checked_mul(1000)
            .filter(|ms| *ms <= MAX_MS)
            .ok_or_else(|| format!("`{s}` seconds since the epoch is after the year 9999"));
    }
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .map_err(|e| format!("`{s}` is neither RFC 3339 nor seconds since the epoch: {e}"))?;
    Ok(t.duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(mysql_datetime(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(parse_time_ms("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time_ms("1700000000").unwrap(), 1_700_000_000_000);
        assert!(parse_time_ms("tomorrow").is_err());
    }

    #[test]
    fn times_after_the_year_9999_show_as_its_last_millisecond_instead_of_panicking() {
        for ms in [MAX_MS + 1, 1 << 53, u64::MAX] {
            assert_eq!(rfc3339_ms(ms), "9999-12-31T23:59:59.999Z");
            assert_eq!(mysql_datetime(ms), "9999-12-31 23:59:59.999");
        }
        assert_eq!(rfc3339_ms(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert!(parse_time_ms("253402300800").is_err());
        assert!(parse_time_ms(&u64::MAX.to_string()).is_err());
        assert_eq!(parse_time_ms("253402300799").unwrap(), MAX_MS - 999);
    }
}
