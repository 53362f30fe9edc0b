//! Collecting validation failures: handlers run every check on a request and answer one 400
//! `Validation failed` listing all of them.

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::error::{ApiError, FieldError};
use crate::domain::time::{parse_iso, Millis, Precision};

/// Accumulates failed checks on a body, query or path.
#[derive(Default)]
pub struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    pub fn new() -> Self {
        Checks::default()
    }

    /// Records `msg` for the body field `path` unless `ok`.
    pub fn body(&mut self, ok: bool, path: &str, msg: &str) -> &mut Self {
        if !ok {
            self.errors.push(FieldError::body(path, msg));
        }
        self
    }

    /// Records `msg` for the query parameter `path` unless `ok`.
    pub fn query(&mut self, ok: bool, path: &str, msg: &str) -> &mut Self {
        if !ok {
            self.errors.push(FieldError::query(path, msg));
        }
        self
    }

    /// A client-supplied record id (body field `id`): absent → `None`; not a UUID → recorded
    /// as `Invalid id`.
    pub fn client_id(&mut self, raw: Option<&str>) -> Option<String> {
        let raw = raw?;
        let id = parse_uuid(raw);
        self.body(id.is_some(), "id", "Invalid id");
        id
    }

    pub fn push(&mut self, error: FieldError) -> &mut Self {
        self.errors.push(error);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Err(Validation failed)` when any check failed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// A plausible email address (after trimming): one `@`, a non-empty local part, a dotted
/// domain, no spaces, at most 254 characters.
pub fn is_valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// Trims and lowercases an email for storage and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// `#RRGGBB`.
pub fn is_hex_color(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Three ASCII letters (stored upper-case).
pub fn is_currency_code(value: &str) -> bool {
    value.len() == 3 && value.chars().all(|c| c.is_ascii_alphabetic())
}

/// Parses a UUID, answering its canonical lowercase form.
pub fn parse_uuid(value: &str) -> Option<String> {
    Uuid::parse_str(value.trim()).ok().map(|u| u.to_string())
}

/// Parses an ISO-8601 date or date-time.
pub fn parse_time(value: &str) -> Option<Millis> {
    parse_iso(value).map(|(ms, _)| ms)
}

/// Parses a range bound: a date without a time means the start of that UTC day (`end=false`)
/// or its last millisecond (`end=true`).
pub fn parse_bound(value: &str, end: bool) -> Option<Millis> {
    let (ms, precision) = parse_iso(value)?;
    Some(if end && precision == Precision::Day {
        ms + crate::domain::time::DAY_MS - 1
    } else {
        ms
    })
}

/// Parses an optional inclusive date range from the `startDate` / `endDate` query parameters
/// (a date without a time covers its whole UTC day), recording failures in `checks`.
pub fn parse_range(checks: &mut Checks, start: Option<&str>, end: Option<&str>) -> (Option<Millis>, Option<Millis>) {
    let mut bound = |value: Option<&str>, is_end: bool, path: &str, msg: &str| {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        let parsed = parse_bound(value, is_end);
        checks.query(parsed.is_some(), path, msg);
        parsed
    };
    let start = bound(start, false, "startDate", "Invalid start date");
    let end = bound(end, true, "endDate", "Invalid end date");
    (start, end)
}

/// Reads a nullable field of a partial update as absent (`None`), `null` (`Some(None)`) or a
/// value (`Some(Some(v))`). Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_valid_email("a@b.co"));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("@b.co"));
        assert!(!is_valid_email("a b@c.co"));
        assert!(!is_valid_email("a@@b.co"));
        assert_eq!(normalize_email("  John@Example.COM "), "john@example.com");
    }

    #[test]
    fn colors_and_currencies() {
        assert!(is_hex_color("#FF6B6B"));
        assert!(!is_hex_color("FF6B6B"));
        assert!(!is_hex_color("#GG0000"));
        assert!(is_currency_code("usd"));
        assert!(!is_currency_code("US"));
    }

    #[test]
    fn absent_null_or_value() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "double_option")]
            color: Option<Option<String>>,
        }
        let read = |text: &str| serde_json::from_str::<Body>(text).unwrap().color;
        assert_eq!(read("{}"), None);
        assert_eq!(read(r#"{"color":null}"#), Some(None));
        assert_eq!(read(r##"{"color":"#FFFFFF"}"##), Some(Some("#FFFFFF".into())));
    }

    #[test]
    fn bounds() {
        let start = parse_bound("2025-06-01", false).unwrap();
        let end = parse_bound("2025-06-01", true).unwrap();
        assert_eq!(end - start, 86_400_000 - 1);
        assert_eq!(
            parse_bound("2025-06-01T10:00:00Z", true),
            parse_bound("2025-06-01T10:00:00Z", false)
        );
    }
}
