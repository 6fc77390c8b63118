//! Times as the sidecar writes them: RFC 3339 in UTC with milliseconds, everywhere (audit
//! entries, webhook bodies, the clients file).

use std::time::{SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, macros::format_description};

/// Milliseconds since the Unix epoch, now (0 for a clock before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` since the Unix epoch as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-12-04T09:00:00.250Z`; out of range, the number itself with `ms`.
pub fn format_ms(ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{ms}ms"))
}

/// Now, as [`format_ms`] writes it.
pub fn now_rfc3339() -> String {
    format_ms(now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_milliseconds_in_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1500), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_ms(1_709_254_861_000), "2024-03-01T01:01:01.000Z");
        assert_eq!(format_ms(i64::MAX), format!("{}ms", i64::MAX));
    }
}
