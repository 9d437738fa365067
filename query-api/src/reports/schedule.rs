//! A report schedule: what to send, to whom, and when, in the account's time zone.
//!
//! A schedule's *slots* are the instants it is due: every day (or every week on one
//! weekday) at a local wall time. A slot is named by the local date it falls on; the
//! report of a slot covers the local day before it (daily) or the seven local days
//! before it (weekly), as whole days of the account's zone.
//!
//! Daylight saving: a local time the clocks skip (02:30 on a spring-forward day) is
//! due at the first valid quarter hour after it; a local time they repeat (01:30 on a
//! fall-back day) is due at the earlier of the two instants. Either way a day has one
//! slot.

use chrono::{Datelike, Days, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::range;
use crate::sections::SECTIONS;
use schemas::event::Channel;

/// The name of the executive summary among a schedule's sections.
pub const SUMMARY: &str = "summary";

/// Most recipients one schedule sends to.
pub const MAX_RECIPIENTS: usize = 50;

/// How often a schedule is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    /// Every day at `local_time`, covering the day before.
    Daily,
    /// Every week on `weekday` at `local_time`, covering the seven days before.
    Weekly,
}

/// The filters of the report's sections, as the dashboard's query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    /// `channel`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `inbox_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox_id: Option<String>,
    /// `agent_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// `team_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

impl Filters {
    /// The filters as `(name, value)` query parameters.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("channel", &self.channel),
            ("inbox_id", &self.inbox_id),
            ("agent_id", &self.agent_id),
            ("team_id", &self.team_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.clone()?)))
        .collect()
    }
}

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Formats {
    /// Attach the report as a PDF.
    pub pdf: bool,
    /// An HTML body with the executive summary (a plain-text part is always sent).
    pub html: bool,
}

impl Default for Formats {
    fn default() -> Self {
        Self {
            pdf: true,
            html: true,
        }
    }
}

/// What an admin sends to create or replace a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// Shown in the UI and the mail's subject.
    pub name: String,
    /// `daily` or `weekly`.
    pub cadence: Cadence,
    /// The weekday of a weekly schedule: `mon` … `sun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<String>,
    /// Local wall time of the slot, `HH:MM` (24 h), in the account's time zone.
    pub local_time: String,
    /// Mail addresses (1 to [`MAX_RECIPIENTS`]).
    pub recipients: Vec<String>,
    /// `summary` and any of the dashboard's sections, in the order they are printed.
    pub sections: Vec<String>,
    /// The sections' filters.
    #[serde(default)]
    pub filters: Filters,
    /// PDF attachment and HTML body (both by default).
    #[serde(default)]
    pub formats: Formats,
    /// A paused schedule sends nothing; its slots while paused are not sent later.
    #[serde(default)]
    pub paused: bool,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Opaque id (32 hex digits).
    pub id: String,
    /// The account it reports on.
    pub account_id: u64,
    /// What the admin set.
    #[serde(flatten)]
    pub input: ScheduleInput,
    /// The token subject that created it.
    pub created_by: String,
    /// When it was created, ms since the epoch; no slot before this is due.
    pub created_at: i64,
    /// When it was last changed (or paused, resumed), ms since the epoch.
    pub updated_at: i64,
}

impl ScheduleInput {
    /// Checks every field, naming the first one that is wrong.
    ///
    /// # Errors
    /// A message of the form `field: what is wrong`.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("name: must be 1 to 200 characters".into());
        }
        parse_local_time(&self.local_time)?;
        match (self.cadence, &self.weekday) {
            (Cadence::Weekly, None) => {
                return Err("weekday: a weekly schedule needs one (mon … sun)".into());
            }
            (Cadence::Weekly, Some(w)) => {
                parse_weekday(w)?;
            }
            (Cadence::Daily, Some(_)) => {
                return Err("weekday: only a weekly schedule has one".into());
            }
            (Cadence::Daily, None) => {}
        }
        if self.recipients.is_empty() || self.recipients.len() > MAX_RECIPIENTS {
            return Err(format!(
                "recipients: must list 1 to {MAX_RECIPIENTS} addresses"
            ));
        }
        for r in &self.recipients {
            r.parse::<lettre::Address>()
                .map_err(|e| format!("recipients: {r:?} is not a mail address ({e})"))?;
        }
        if self.sections.is_empty() {
            return Err("sections: name at least one (summary or a dashboard section)".into());
        }
        for s in &self.sections {
            if s != SUMMARY && !SECTIONS.contains(&s.as_str()) {
                return Err(format!(
                    "sections: unknown section {s:?}; known: summary, {}",
                    SECTIONS.join(", ")
                ));
            }
        }
        if let Some(c) = &self.filters.channel {
            Channel::parse(c).ok_or_else(|| format!("filters.channel: unknown channel {c:?}"))?;
        }
        if !self.formats.pdf && !self.formats.html {
            return Err("formats: choose the PDF attachment, the HTML body or both".into());
        }
        Ok(())
    }
}

/// `HH:MM` on a 24-hour clock.
///
/// # Errors
/// Anything else, with the field named.
pub fn parse_local_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| format!("local_time: {s:?} is not a time of day as HH:MM"))
}

/// `mon` … `sun` (or the full English name).
///
/// # Errors
/// Anything else, with the field named.
pub fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.parse::<Weekday>()
        .map_err(|_| format!("weekday: {s:?} is not a weekday (mon … sun)"))
}

impl Schedule {
    /// The local wall time of its slots.
    fn time(&self) -> NaiveTime {
        parse_local_time(&self.input.local_time).unwrap_or(NaiveTime::MIN)
    }

    /// Whether a slot falls on `date`.
    fn due_on(&self, date: NaiveDate) -> bool {
        match self.input.cadence {
            Cadence::Daily => true,
            Cadence::Weekly => self
                .input
                .weekday
                .as_deref()
                .and_then(|w| parse_weekday(w).ok())
                .is_some_and(|w| date.weekday() == w),
        }
    }

    /// The instant of the slot on `date` in `tz` (see the module's DST rule).
    pub fn slot_at(&self, date: NaiveDate, tz: Tz) -> i64 {
        let local = date.and_time(self.time());
        range::first_instant_from(local, tz).unwrap_or_else(|| range::local_midnight(date, tz))
    }

    /// The slots due in `(after, until]`, oldest first, as `(local date, instant)`;
    /// never one before the schedule was created.
    pub fn slots_between(&self, after: i64, until: i64, tz: Tz) -> Vec<(NaiveDate, i64)> {
        let after = after.max(self.created_at - 1);
        if until <= after {
            return Vec::new();
        }
        let mut date = range::local_date(after, tz)
            .checked_sub_days(Days::new(1))
            .unwrap_or(NaiveDate::MIN);
        let last = range::local_date(until, tz)
            .checked_add_days(Days::new(1))
            .unwrap_or(NaiveDate::MAX);
        let mut slots = Vec::new();
        while date <= last {
            if self.due_on(date) {
                let at = self.slot_at(date, tz);
                if at > after && at <= until {
                    slots.push((date, at));
                }
            }
            date = match date.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        slots
    }

    /// The local dates `[from, to)` the report of the slot on `date` covers.
    pub fn period(&self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        let days = match self.input.cadence {
            Cadence::Daily => 1,
            Cadence::Weekly => 7,
        };
        (date.checked_sub_days(Days::new(days)).unwrap_or(date), date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn schedule(cadence: Cadence, weekday: Option<&str>, time: &str) -> Schedule {
        Schedule {
            id: "s".into(),
            account_id: 1,
            input: ScheduleInput {
                name: "Daily".into(),
                cadence,
                weekday: weekday.map(str::to_owned),
                local_time: time.into(),
                recipients: vec!["a@example.com".into()],
                sections: vec![SUMMARY.into()],
                filters: Filters::default(),
                formats: Formats::default(),
                paused: false,
            },
            created_by: "admin".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_daily_slot_is_the_local_wall_time_across_a_dst_change() {
        let s = schedule(Cadence::Daily, None, "09:00");
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // CET (+01:00) on Saturday, CEST (+02:00) from Sunday 2026-03-29.
        let slots = s.slots_between(utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0), tz);
        assert_eq!(
            slots,
            vec![
                (date(2026, 3, 28), utc(2026, 3, 28, 8, 0)),
                (date(2026, 3, 29), utc(2026, 3, 29, 7, 0)),
            ]
        );
    }

    #[test]
    fn a_skipped_local_time_is_due_after_the_gap_and_a_repeated_one_once() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s = schedule(Cadence::Daily, None, "02:30");
        // 02:00–03:00 does not exist on 2026-03-29: due at 03:00 CEST = 01:00 UTC.
        assert_eq!(s.slot_at(date(2026, 3, 29), tz), utc(2026, 3, 29, 1, 0));
        // 02:30 happens twice on 2026-10-25: the earlier, CEST, is 00:30 UTC.
        let slots = s.slots_between(utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0), tz);
        assert_eq!(slots, vec![(date(2026, 10, 25), utc(2026, 10, 25, 0, 30))]);
    }

    #[test]
    fn a_weekly_schedule_is_due_on_its_weekday_only_and_covers_seven_days() {
        let s = schedule(Cadence::Weekly, Some("mon"), "08:00");
        let slots = s.slots_between(utc(2026, 12, 1, 0, 0), utc(2026, 12, 31, 0, 0), Tz::UTC);
        let dates: Vec<_> = slots.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            dates,
            vec![
                date(2026, 12, 7),
                date(2026, 12, 14),
                date(2026, 12, 21),
                date(2026, 12, 28)
            ]
        );
        assert_eq!(
            s.period(date(2026, 12, 7)),
            (date(2026, 11, 30), date(2026, 12, 7))
        );
    }

    #[test]
    fn no_slot_is_due_before_the_schedule_exists_and_bounds_are_half_open() {
        let mut s = schedule(Cadence::Daily, None, "09:00");
        s.created_at = utc(2026, 12, 4, 10, 0);
        let slots = s.slots_between(0, utc(2026, 12, 6, 9, 0), Tz::UTC);
        assert_eq!(
            slots,
            vec![
                (date(2026, 12, 5), utc(2026, 12, 5, 9, 0)),
                (date(2026, 12, 6), utc(2026, 12, 6, 9, 0))
            ]
        );
        assert!(
            s.slots_between(utc(2026, 12, 6, 9, 0), utc(2026, 12, 6, 23, 0), Tz::UTC)
                .is_empty()
        );
    }

    #[test]
    fn validation_names_the_field_at_fault() {
        let ok = schedule(Cadence::Daily, None, "09:00").input;
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(ScheduleInput, &str)> = vec![
            (
                ScheduleInput {
                    local_time: "9am".into(),
                    ..ok.clone()
                },
                "local_time:",
            ),
            (
                ScheduleInput {
                    cadence: Cadence::Weekly,
                    ..ok.clone()
                },
                "weekday:",
            ),
            (
                ScheduleInput {
                    recipients: vec!["not an address".into()],
                    ..ok.clone()
                },
                "recipients:",
            ),
            (
                ScheduleInput {
                    sections: vec!["sales".into()],
                    ..ok.clone()
                },
                "sections:",
            ),
            (
                ScheduleInput {
                    formats: Formats {
                        pdf: false,
                        html: false,
                    },
                    ..ok.clone()
                },
                "formats:",
            ),
            (
                ScheduleInput {
                    filters: Filters {
                        channel: Some("pigeon".into()),
                        ..Filters::default()
                    },
                    ..ok.clone()
                },
                "filters.channel:",
            ),
        ];
        for (input, field) in cases {
            let err = input.validate().unwrap_err();
            assert!(err.starts_with(field), "{err} should name {field}");
        }
    }
}
