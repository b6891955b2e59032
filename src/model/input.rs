//! Parsing of values people type: time zones, due dates, clock times. Every
//! failure names what was wrong and the accepted forms.

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// A value a person typed that cannot be used; the message says why and
/// what would be accepted. Callers report it as bad input (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(msg: impl Into<String>) -> Self {
        InputError(msg.into())
    }
}

/// Checks an IANA zone name such as `Europe/Lisbon`.
pub fn parse_zone(name: &str) -> Result<TimeZone, InputError> {
    TimeZone::get(name.trim()).map_err(|_| {
        InputError::new(format!(
            "unknown time zone `{name}`: use an IANA name such as Europe/Lisbon, \
             America/New_York, Asia/Tokyo or UTC"
        ))
    })
}

/// Parses a due date. Accepted: `2026-12-01T17:00` or `2026-12-01 17:00`
/// (in `default_zone`), `2026-12-01` (17:00 in `default_zone`),
/// `2026-12-01T17:00[America/New_York]`, `2026-12-01T17:00-05:00` and RFC
/// 3339 instants like `2026-12-01T22:00:00Z`.
pub fn parse_due(text: &str, default_zone: &str) -> Result<ZonedDateTime, InputError> {
    let text = text.trim();
    let bad = || {
        InputError::new(format!(
            "cannot read due date `{text}`: use 2026-12-01T17:00 (your time zone), \
             2026-12-01 (17:00), 2026-12-01T17:00[America/New_York] or 2026-12-01T17:00-05:00"
        ))
    };
    if text.contains('[') {
        return text.parse::<ZonedDateTime>().map_err(|_| bad());
    }
    let zone = parse_zone(default_zone)?;
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.to_zoned_datetime(zone));
    }
    let normalized = text.replacen(' ', "T", 1);
    let civil = if normalized.contains('T') {
        normalized.parse::<DateTime>().map_err(|_| bad())?
    } else {
        let date = normalized.parse::<jiff::civil::Date>().map_err(|_| bad())?;
        date.to_datetime(Time::constant(17, 0, 0, 0))
    };
    civil.to_zoned_datetime(zone).map_err(|_| bad())
}

/// Parses `09:00` or `9:30` as a clock time.
pub fn parse_clock(text: &str) -> Result<Time, InputError> {
    let text = text.trim();
    let padded = if text.len() == 4 && text.as_bytes().get(1) == Some(&b':') {
        format!("0{text}")
    } else {
        text.to_owned()
    };
    padded
        .parse::<Time>()
        .map_err(|_| InputError::new(format!("cannot read time `{text}`: use HH:MM, e.g. 09:00")))
}

/// Parses `09:00-17:30` into a start and end on the same day.
pub fn parse_hours(text: &str) -> Result<(Time, Time), InputError> {
    let (start, end) = text.split_once('-').ok_or_else(|| {
        InputError::new(format!(
            "cannot read working hours `{text}`: use START-END, e.g. 09:00-17:30"
        ))
    })?;
    let (start, end) = (parse_clock(start)?, parse_clock(end)?);
    if end <= start {
        return Err(InputError::new(format!(
            "working hours `{text}` end before they start: use START-END on one day, e.g. 09:00-17:30"
        )));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_due_is_read_in_the_given_zone() {
        let due = parse_due("2026-12-01T17:00", "Europe/Lisbon").expect("parse");
        assert_eq!(due.time_zone().iana_name(), Some("Europe/Lisbon"));
        assert_eq!(due.timestamp().to_string(), "2026-12-01T17:00:00Z");
        let ny = parse_due("2026-12-01T17:00", "America/New_York").expect("parse");
        assert_eq!(ny.timestamp().to_string(), "2026-12-01T22:00:00Z");
    }

    #[test]
    fn explicit_zone_and_date_only_forms() {
        let tokyo = parse_due("2026-12-01T09:00[Asia/Tokyo]", "UTC").expect("parse");
        assert_eq!(tokyo.timestamp().to_string(), "2026-12-01T00:00:00Z");
        let date = parse_due("2026-12-01", "UTC").expect("parse");
        assert_eq!(date.timestamp().to_string(), "2026-12-01T17:00:00Z");
        let space = parse_due("2026-12-01 08:30", "UTC").expect("parse");
        assert_eq!(space.timestamp().to_string(), "2026-12-01T08:30:00Z");
    }

    #[test]
    fn bad_dates_and_zones_name_the_accepted_forms() {
        let err = parse_due("next tuesday", "UTC").expect_err("bad");
        assert!(err.0.contains("next tuesday") && err.0.contains("2026-12-01T17:00"));
        let err = parse_zone("Mars/Olympus").expect_err("bad");
        assert!(err.0.contains("Mars/Olympus") && err.0.contains("IANA"));
        assert!(parse_due("2026-13-45", "UTC").is_err());
    }

    #[test]
    fn hours_must_be_a_forward_range() {
        let (s, e) = parse_hours("9:00-17:30").expect("parse");
        assert_eq!((s.hour(), e.hour(), e.minute()), (9, 17, 30));
        assert!(parse_hours("18:00-09:00").is_err());
        assert!(parse_hours("nine to five").is_err());
    }
}
