//! ARI timestamps.
//!
//! Asterisk writes times with `%FT%T.%q%z`, e.g. `2026-01-02T10:11:12.345+0000`: the offset
//! has no colon, so it is not RFC 3339. Both forms are accepted; times are written back in
//! Asterisk's form.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serializer};

/// The format Asterisk writes (`ast_tvfmt` with `%FT%T.%q%z`).
const ASTERISK_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f%z";
/// What [`format`] writes: Asterisk's form with milliseconds.
const WRITE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f%z";

/// A timestamp that is neither Asterisk's form nor RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ari timestamp {0:?}")]
pub struct TimestampError(pub String);

/// Parses an ARI timestamp: Asterisk's `2026-01-02T10:11:12.345+0000`, or RFC 3339.
pub fn parse(text: &str) -> Result<DateTime<FixedOffset>, TimestampError> {
    DateTime::parse_from_str(text, ASTERISK_FORMAT)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map_err(|_| TimestampError(text.to_owned()))
}

/// Writes a timestamp the way Asterisk does.
pub fn format(time: &DateTime<FixedOffset>) -> String {
    time.format(WRITE_FORMAT).to_string()
}

/// `#[serde(with = "crate::time::required")]` for a timestamp field.
pub(crate) mod required {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub(crate) fn serialize<S: Serializer>(time: &DateTime<FixedOffset>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(time))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use chrono::{Datelike, Timelike};

    use super::*;

    #[test]
    fn parses_asterisk_form_without_colon_in_offset() {
        let time = parse("2026-01-02T10:11:12.345+0000").unwrap();
        assert_eq!((time.year(), time.month(), time.day()), (2026, 1, 2));
        assert_eq!((time.hour(), time.minute(), time.second()), (10, 11, 12));
        assert_eq!(time.timestamp_subsec_millis(), 345);
        assert_eq!(time.offset().local_minus_utc(), 0);
    }

    #[test]
    fn keeps_a_non_utc_offset() {
        let time = parse("2026-01-02T10:11:12.345-0530").unwrap();
        assert_eq!(time.offset().local_minus_utc(), -(5 * 3600 + 30 * 60));
        assert_eq!(time.to_utc().hour(), 15);
    }

    #[test]
    fn parses_rfc3339() {
        let rfc = parse("2026-01-02T10:11:12.345+01:00").unwrap();
        let asterisk = parse("2026-01-02T10:11:12.345+0100").unwrap();
        assert_eq!(rfc, asterisk);
        assert_eq!(parse("2026-01-02T09:11:12Z").unwrap().timestamp(), rfc.timestamp());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse("yesterday"), Err(TimestampError("yesterday".into())));
        assert!(parse("2026-01-02 10:11:12").is_err());
    }

    #[test]
    fn writes_asterisk_form_and_reads_it_back() {
        let time = parse("2026-01-02T10:11:12.345+0200").unwrap();
        assert_eq!(format(&time), "2026-01-02T10:11:12.345+0200");
        assert_eq!(parse(&format(&time)).unwrap(), time);
    }
}
