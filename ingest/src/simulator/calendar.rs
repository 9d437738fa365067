//! The account's local clock: the weekday × hour demand curve and local wall times.
//!
//! Everything a team lead plans in local time (shifts, broadcasts, the daily rush) is
//! placed through this module, so a `+05:30` or `+05:45` account, or a DST day, gets
//! its peaks at the right local hours.
//!
//! Demand is piecewise constant over 15-minute UTC slots: every UTC offset in current
//! use is a multiple of 15 minutes, so a slot never straddles a local hour boundary.

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

use super::dist::{DAY_MS, MINUTE_MS};

/// Length of a constant-demand slot.
pub(super) const SLOT_MS: i64 = 15 * MINUTE_MS;

/// Relative arrivals per local hour on a weekday: quiet at night, a morning peak 9–13,
/// a lunch dip, an afternoon peak 15–19, tailing off in the evening.
const HOUR_WEIGHT: [f64; 24] = [
    0.20, 0.12, 0.07, 0.05, 0.05, 0.08, // 00–05
    0.20, 0.45, 0.90, 1.60, 1.95, 2.00, // 06–11
    1.85, 1.40, 1.35, 1.70, 1.85, 1.85, // 12–17
    1.65, 1.20, 0.90, 0.70, 0.50, 0.32, // 18–23
];

/// Relative arrivals per local weekday, Monday first: Monday carries the weekend's
/// backlog, Saturday and Sunday run at about 40% of a weekday.
const DAY_WEIGHT: [f64; 7] = [1.08, 1.04, 1.00, 1.00, 0.96, 0.45, 0.38];

/// Local-time arithmetic and the demand curve for one account.
pub(super) struct Calendar {
    /// The account's IANA zone.
    tz: Tz,
    /// Inbound conversations per millisecond at demand 1.0 (the weekly mean).
    per_ms_at_mean: f64,
    /// Mean of `HOUR_WEIGHT × DAY_WEIGHT` over the 168 hours of a week, so that
    /// [`Calendar::demand`] averages exactly 1.0 and `conversations_per_day` means
    /// what it says.
    mean_weight: f64,
}

impl Calendar {
    pub(super) fn new(tz: Tz, conversations_per_day: f64) -> Self {
        let total: f64 = DAY_WEIGHT
            .iter()
            .map(|d| HOUR_WEIGHT.iter().map(|h| d * h).sum::<f64>())
            .sum();
        let per_ms_at_mean = if conversations_per_day.is_finite() && conversations_per_day > 0.0 {
            conversations_per_day / DAY_MS as f64
        } else {
            0.0
        };
        Self {
            tz,
            per_ms_at_mean,
            mean_weight: total / 168.0,
        }
    }

    /// The zone, for callers that label things by it.
    pub(super) fn tz(&self) -> Tz {
        self.tz
    }

    /// `ms` as a local date-time.
    pub(super) fn local(&self, ms: i64) -> DateTime<Tz> {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&self.tz)
    }

    /// The local calendar date at `ms`.
    pub(super) fn local_date(&self, ms: i64) -> NaiveDate {
        self.local(ms).date_naive()
    }

    /// Demand at `ms` relative to the weekly mean: about 2.5 at the late-morning peak of
    /// a weekday, 0.06 at 3 a.m.
    pub(super) fn demand(&self, ms: i64) -> f64 {
        let local = self.local(ms);
        let day = local.weekday().num_days_from_monday() as usize;
        DAY_WEIGHT[day] * HOUR_WEIGHT[local.hour() as usize] / self.mean_weight
    }

    /// Expected inbound conversation arrivals per millisecond at `ms`.
    pub(super) fn arrivals_per_ms(&self, ms: i64) -> f64 {
        self.per_ms_at_mean * self.demand(ms)
    }

    /// Epoch milliseconds of `minute_of_day` minutes after local midnight on `date`
    /// (values past 1440 roll into the next day).
    ///
    /// A wall time that falls in a DST gap does not exist; it becomes the first valid
    /// quarter hour after the gap, which is what a shift rota does in practice. An
    /// ambiguous wall time (the repeated hour in autumn) takes its first occurrence.
    pub(super) fn at_local(&self, date: NaiveDate, minute_of_day: i64) -> i64 {
        let mut naive = date.and_time(NaiveTime::MIN) + TimeDelta::minutes(minute_of_day);
        // No zone has a gap longer than a day; the bound only guards the loop.
        for _ in 0..96 {
            if let Some(t) = self.tz.from_local_datetime(&naive).earliest() {
                return t.timestamp_millis();
            }
            naive += TimeDelta::minutes(15);
        }
        naive.and_utc().timestamp_millis()
    }

    /// Whether `date` is a Saturday or Sunday.
    pub(super) fn is_weekend(date: NaiveDate) -> bool {
        matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_averages_one_over_a_week() {
        let cal = Calendar::new(chrono_tz::UTC, 1200.0);
        // 2026-11-23 is a Monday.
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let start = cal.at_local(monday, 0);
        let mean: f64 = (0..168)
            .map(|h| cal.demand(start + h * 3_600_000))
            .sum::<f64>()
            / 168.0;
        assert!((mean - 1.0).abs() < 1e-9, "{mean}");
        assert!(cal.demand(start + 11 * 3_600_000) > 20.0 * cal.demand(start + 3 * 3_600_000));
    }

    #[test]
    fn local_times_respect_offsets_and_dst_gaps() {
        let kathmandu = Calendar::new(chrono_tz::Asia::Kathmandu, 1.0);
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        // 09:00 at +05:45 is 03:15 UTC.
        assert_eq!(
            kathmandu.at_local(d, 9 * 60),
            Utc.with_ymd_and_hms(2026, 11, 24, 3, 15, 0)
                .unwrap()
                .timestamp_millis()
        );
        // New York skips 02:00–03:00 on 2026-03-08: 02:30 becomes 03:00 EDT (07:00 UTC).
        let ny = Calendar::new(chrono_tz::America::New_York, 1.0);
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        assert_eq!(
            ny.at_local(d, 150),
            Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }
}
