//! The UTC time format of object keys and run ids: `YYYYMMDDTHHMMSSZ`.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

const STAMP_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// `at` as `YYYYMMDDTHHMMSSZ`.
pub fn stamp(at: Timestamp) -> String {
    at.strftime(STAMP_FORMAT).to_string()
}

/// Parses a `YYYYMMDDTHHMMSSZ` stamp.
pub fn parse_stamp(text: &str) -> Option<Timestamp> {
    let civil = DateTime::strptime(STAMP_FORMAT, text).ok()?;
    Some(civil.to_zoned(TimeZone::UTC).ok()?.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_seconds() {
        let at: Timestamp = "2026-11-22T14:36:05Z".parse().unwrap();
        assert_eq!(stamp(at), "20261122T143605Z");
        assert_eq!(parse_stamp(&stamp(at)), Some(at));
        assert_eq!(parse_stamp("2026-11-22"), None);
    }
}
