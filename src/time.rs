//! Wall-clock helpers: milliseconds since the Unix epoch, RFC 3339 text, and
//! the `DATETIME(3)` literal MySQL stores (always UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `1700000000123` -> `2023-11-14T22:13:20.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
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
        return Ok(secs * 1000);
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
}
