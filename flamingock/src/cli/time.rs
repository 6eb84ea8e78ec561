//! Reading the times people type for `--since` / `--until`: RFC 3339, a date or a date and time
//! in UTC, or an age ("30m", "12h", "7d": that long ago by the audit store's clock).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

/// Which end of a range a time closes: a bare date means that day's start for `--since`, and the
/// next day's start for `--until` (so the date's whole day is included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Since,
    Until,
}

/// A time as typed: an instant, or an age to be measured back from the audit store's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedTime {
    At(DateTime<Utc>),
    Ago(Duration),
}

impl TypedTime {
    /// The instant, with ages measured back from `now` (the store's clock, which stamped the
    /// rows: a client whose clock is off would select other rows than it means).
    pub fn at(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        match self {
            TypedTime::At(at) => Ok(at),
            TypedTime::Ago(age) => now
                .checked_sub_signed(age)
                .ok_or_else(|| "that age reaches before any time there is".to_owned()),
        }
    }
}

/// Parses `text` as an instant, relative to `now` for ages.
#[cfg(test)]
pub fn parse_time(text: &str, bound: Bound, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    read_time(text, bound)?.at(now)
}

/// Reads `text` as an instant or an age, without a clock.
pub fn read_time(text: &str, bound: Bound) -> Result<TypedTime, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(TypedTime::At(at.with_timezone(&Utc)));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(TypedTime::At(at.and_utc()));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = match bound {
            Bound::Since => date,
            Bound::Until => date
                .succ_opt()
                .ok_or_else(|| format!("{text} is the last date there is"))?,
        };
        return Ok(TypedTime::At(
            day.and_time(chrono::NaiveTime::MIN).and_utc(),
        ));
    }
    if let Some(age) = parse_age(text) {
        return Ok(TypedTime::Ago(age));
    }
    Err(format!(
        "`{text}` is not a time: use RFC 3339 (2026-01-31T12:00:00Z), a UTC date (2026-01-31) or date and time (2026-01-31 12:00), or an age (30m, 12h, 7d)"
    ))
}

/// `"30s"`, `"30m"`, `"12h"`, `"7d"`, `"2w"`.
fn parse_age(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    if number < 0 {
        return None;
    }
    match unit {
        's' => Duration::try_seconds(number),
        'm' => Duration::try_minutes(number),
        'h' => Duration::try_hours(number),
        'd' => Duration::try_days(number),
        'w' => Duration::try_weeks(number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn every_accepted_spelling() {
        let now = at("2026-03-10T12:00:00Z");
        let since = |t| parse_time(t, Bound::Since, now).unwrap();
        assert_eq!(
            since("2026-01-31T12:00:00+01:00"),
            at("2026-01-31T11:00:00Z")
        );
        assert_eq!(since("2026-01-31 12:30"), at("2026-01-31T12:30:00Z"));
        assert_eq!(
            since("2026-01-31T12:30:15.250"),
            at("2026-01-31T12:30:15.250Z")
        );
        assert_eq!(since("2026-01-31"), at("2026-01-31T00:00:00Z"));
        assert_eq!(
            parse_time("2026-01-31", Bound::Until, now).unwrap(),
            at("2026-02-01T00:00:00Z")
        );
        assert_eq!(since("90m"), at("2026-03-10T10:30:00Z"));
        assert_eq!(since("2d"), at("2026-03-08T12:00:00Z"));
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        let now = Utc::now();
        for bad in ["yesterday", "2026-13-01", "-3d", "5y", ""] {
            let error = parse_time(bad, Bound::Since, now).unwrap_err();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }
}
