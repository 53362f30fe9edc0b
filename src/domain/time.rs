//! Time as the contract speaks it: stored as epoch milliseconds (exact and sortable on every
//! database), answered as ISO-8601 UTC with milliseconds, read from any ISO-8601 form.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Serialize, Serializer};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// `2025-06-01T10:00:00.000Z`.
pub fn to_iso(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// The UTC day of a moment, `YYYY-MM-DD`.
pub fn to_day(ms: Millis) -> String {
    to_iso(ms)[..10].to_string()
}

/// How precisely a parsed input named its moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Day,
    Instant,
}

/// Parses any ISO-8601 date or date-time (offsets honoured; none means UTC).
pub fn parse_iso(text: &str) -> Option<(Millis, Precision)> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some((dt.with_timezone(&Utc).timestamp_millis(), Precision::Instant));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(text, format) {
            return Some((dt.with_timezone(&Utc).timestamp_millis(), Precision::Instant));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some((dt.and_utc().timestamp_millis(), Precision::Instant));
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some((date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(), Precision::Day))
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// An epoch-millisecond moment answered as an ISO string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Iso(pub Millis);

impl Serialize for Iso {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_iso(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds() {
        assert_eq!(to_iso(1_748_772_000_000), "2025-06-01T10:00:00.000Z");
        assert_eq!(to_iso(1_748_772_000_123), "2025-06-01T10:00:00.123Z");
    }

    #[test]
    fn parses_iso_forms() {
        let ten = 1_748_772_000_000;
        assert_eq!(parse_iso("2025-06-01T10:00:00.000Z"), Some((ten, Precision::Instant)));
        assert_eq!(parse_iso("2025-06-01T12:00:00+02:00"), Some((ten, Precision::Instant)));
        assert_eq!(parse_iso("2025-06-01T10:00:00"), Some((ten, Precision::Instant)));
        assert_eq!(parse_iso("2025-06-01"), Some((ten - 10 * 3_600_000, Precision::Day)));
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("2025-13-01"), None);
    }
}
