//! The `since` of log requests, shared by every server of the API.

use std::time::{Duration, SystemTime};

/// Parses `since`: a duration ago (`10m`, `2h`, `30s`) or an RFC 3339 time.
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let d: Duration = humantime::parse_duration(s)
        .or_else(|_| s.parse::<u64>().map(Duration::from_secs).map_err(|_| ()))
        .map_err(|_| format!("since={s:?}: write a duration such as 10m or 2h, or an RFC 3339 time"))?;
    Ok(now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_seconds_and_times() {
        let now = humantime::parse_rfc3339("2026-01-01T12:00:00Z").unwrap();
        assert_eq!(parse_since("10m", now).unwrap(), humantime::parse_rfc3339("2026-01-01T11:50:00Z").unwrap());
        assert_eq!(parse_since("60", now).unwrap(), humantime::parse_rfc3339("2026-01-01T11:59:00Z").unwrap());
        assert_eq!(parse_since("2026-01-01T11:00:00Z", now).unwrap(), humantime::parse_rfc3339("2026-01-01T11:00:00Z").unwrap());
        assert!(parse_since("yesterday", now).unwrap_err().contains("since="));
    }
}
