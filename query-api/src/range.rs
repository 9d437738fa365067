//! Resolving `from`/`to` query parameters into exact instants in the account's zone.
//!
//! A bound is an RFC 3339 instant or a `YYYY-MM-DD` date meaning local midnight in
//! the account's IANA zone (on a day whose midnight falls in a DST gap, the first
//! valid local instant after it). Bounds are truncated to the 15-minute bucket grid,
//! which contains every local hour boundary of every zone (see `schemas::time`).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use schemas::time::floor_to_bucket;

use crate::error::ApiError;

/// A half-open range `[from, to)` in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Inclusive start.
    pub from: i64,
    /// Exclusive end.
    pub to: i64,
}

impl Range {
    /// The range of equal length immediately before this one.
    pub fn previous(self) -> Range {
        Range {
            from: self.from - (self.to - self.from),
            to: self.from,
        }
    }
}

/// Longest accepted range.
const MAX_RANGE_MS: i64 = 400 * 24 * 3600 * 1000;

/// Local midnight of `date` in `tz` (first valid instant if midnight is skipped).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    first_instant_from(midnight, tz)
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight).timestamp_millis())
}

/// The first instant at or after the local wall time `local` in `tz`, on the
/// 15-minute grid: `local` itself unless the clocks skipped it (the earlier of two
/// when they repeat it); `None` if no quarter-hour of the following day exists.
pub fn first_instant_from(mut local: chrono::NaiveDateTime, tz: Tz) -> Option<i64> {
    for _ in 0..(4 * 24) {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return Some(t.timestamp_millis());
        }
        local += chrono::Duration::minutes(15);
    }
    None
}

/// The local date at `t_ms` in `tz`.
pub fn local_date(t_ms: i64, tz: Tz) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

enum Bound {
    Date(NaiveDate),
    Instant(i64),
}

fn parse_bound(name: &str, s: &str) -> Result<Bound, ApiError> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Bound::Date(d));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Bound::Instant(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: expected an RFC 3339 instant or YYYY-MM-DD, got {s:?}"
            ))
        })
}

/// Resolves the requested range. Defaults: `from` = local midnight today, `to` = the
/// next local midnight after a date `from`, or `from` + 24 h after an instant.
///
/// # Errors
/// `400` naming the parameter when a bound does not parse, `to` is not after `from`,
/// or the range is longer than 400 days.
pub fn resolve(
    from: Option<&str>,
    to: Option<&str>,
    tz: Tz,
    now_ms: i64,
) -> Result<Range, ApiError> {
    let from_bound = match from {
        Some(s) => parse_bound("from", s)?,
        None => Bound::Date(local_date(now_ms, tz)),
    };
    let from_ms = match from_bound {
        Bound::Date(d) => local_midnight(d, tz),
        Bound::Instant(t) => t,
    };
    let to_ms = match to {
        Some(s) => match parse_bound("to", s)? {
            Bound::Date(d) => local_midnight(d, tz),
            Bound::Instant(t) => t,
        },
        None => match from_bound {
            Bound::Date(d) => local_midnight(d.checked_add_days(Days::new(1)).unwrap_or(d), tz),
            Bound::Instant(t) => t + 24 * 3600 * 1000,
        },
    };
    let range = Range {
        from: floor_to_bucket(from_ms),
        to: floor_to_bucket(to_ms),
    };
    if range.to <= range.from {
        return Err(ApiError::bad_request("to: must be after from".into()));
    }
    if range.to - range.from > MAX_RANGE_MS {
        return Err(ApiError::bad_request(
            "to: ranges are limited to 400 days".into(),
        ));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn dates_are_local_midnights_in_odd_offset_zones() {
        let r = resolve(Some("2026-11-24"), None, chrono_tz::Asia::Kathmandu, 0).unwrap();
        assert_eq!(r.from, ms("2026-11-23T18:15:00Z"));
        assert_eq!(r.to, ms("2026-11-24T18:15:00Z"));
        let r = resolve(
            Some("2026-11-24"),
            Some("2026-11-26"),
            chrono_tz::Asia::Kolkata,
            0,
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (ms("2026-11-23T18:30:00Z"), ms("2026-11-25T18:30:00Z"))
        );
    }

    #[test]
    fn a_dst_day_is_23_hours_long() {
        let r = resolve(Some("2026-03-29"), None, chrono_tz::Europe::Berlin, 0).unwrap();
        assert_eq!(r.to - r.from, 23 * 3600 * 1000);
        assert_eq!(r.previous().to, r.from);
    }

    #[test]
    fn default_is_today_and_errors_name_the_parameter() {
        let now = ms("2026-11-24T20:00:00Z");
        let r = resolve(None, None, chrono_tz::Asia::Kolkata, now).unwrap();
        assert_eq!(r.from, ms("2026-11-24T18:30:00Z"));
        let e = resolve(Some("yesterday"), None, Tz::UTC, now).unwrap_err();
        assert!(e.to_string().starts_with("from: expected"));
        let e = resolve(Some("2026-11-24"), Some("2026-11-24"), Tz::UTC, now).unwrap_err();
        assert_eq!(e.to_string(), "to: must be after from");
    }

    #[test]
    fn both_bounds_truncate_so_nothing_after_to_is_counted() {
        let r = resolve(
            Some("2026-11-24T10:07:00Z"),
            Some("2026-11-24T11:07:00Z"),
            Tz::UTC,
            0,
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (ms("2026-11-24T10:00:00Z"), ms("2026-11-24T11:00:00Z"))
        );
        assert_eq!(r.previous().from, ms("2026-11-24T09:00:00Z"));
        let e = resolve(
            Some("2026-11-24T10:01:00Z"),
            Some("2026-11-24T10:14:00Z"),
            Tz::UTC,
            0,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "to: must be after from");
    }

    #[test]
    fn instants_truncate_to_the_bucket_grid() {
        let r = resolve(
            Some("2026-11-24T10:07:00Z"),
            Some("2026-11-24T11:00:00Z"),
            Tz::UTC,
            0,
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (ms("2026-11-24T10:00:00Z"), ms("2026-11-24T11:00:00Z"))
        );
    }
}
