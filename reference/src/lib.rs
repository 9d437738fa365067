//! The dashboard, recomputed from `docs/metrics.md` alone.
//!
//! Every section of the API is computed here again from the raw events, by someone
//! reading the definitions: deduplicate, group each entity's events, sort them by
//! event time, and walk them in plain loops. Nothing here is shared with the pipeline
//! (`crmpulse-pipeline`) or the query layer (`crmpulse-query-api`): a property test
//! that compares them (`tests/sections.rs`) can then find a wrong *definition*, not
//! only a wrong incremental update. Readability beats speed; the inputs are small.
//!
//! Each section function returns the body as JSON with the field names of the API
//! (`docs/api.md`). The comparison checks every value the reference produces.

#![allow(clippy::missing_panics_doc)]

pub mod agent_productivity;
pub mod automation_impact;
pub mod business_impact;
pub mod conversation_effectiveness;
pub mod customer_load;
pub mod kpi;
pub mod whatsapp_performance;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use schemas::event::{Channel, Event};
use serde_json::Value;

/// The account settings a body depends on (`docs/operations.md`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// IANA zone: local days and hours.
    pub timezone: Tz,
    /// First-response target, seconds.
    pub sla_first_response_s: u32,
    /// Delivery-rate alert threshold.
    pub whatsapp_delivery_alert_below: f64,
    /// Cost of an active agent hour, minor units.
    pub agent_hourly_cost_minor: i64,
    /// Fee per conversation by channel name, minor units.
    pub conversation_fee_minor: BTreeMap<String, i64>,
    /// Currency of the costs.
    pub cost_currency: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            sla_first_response_s: 300,
            whatsapp_delivery_alert_below: 0.9,
            agent_hourly_cost_minor: 0,
            conversation_fee_minor: BTreeMap::new(),
            cost_currency: "USD".into(),
        }
    }
}

/// The query string of a request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Account.
    pub account_id: u64,
    /// `from` as sent.
    pub from: Option<String>,
    /// `to` as sent.
    pub to: Option<String>,
    /// Filters.
    pub channel: Option<Channel>,
    /// Filters.
    pub inbox_id: Option<String>,
    /// Filters.
    pub agent_id: Option<String>,
    /// Filters.
    pub team_id: Option<String>,
    /// `hour`, `day` or `week`.
    pub granularity: Option<String>,
}

/// Everything a body is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Every event delivered, duplicates and all, in arrival order.
    pub events: &'a [Event],
    /// The account's settings.
    pub settings: &'a Settings,
    /// The request.
    pub query: &'a Query,
    /// The complete pipeline timestamp the body is computed at (ms).
    pub progress_ms: i64,
    /// The server clock (ms): only for the default range ("today").
    pub now_ms: i64,
}

/// A half-open range `[from, to)`, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Inclusive.
    pub from: i64,
    /// Exclusive.
    pub to: i64,
}

impl Range {
    /// Same length, ending where this one starts.
    pub fn previous(self) -> Range {
        Range {
            from: 2 * self.from - self.to,
            to: self.from,
        }
    }

    /// `t` is in the range.
    pub fn contains(self, t: i64) -> bool {
        self.from <= t && t < self.to
    }
}

/// The body of `section` for `input`, or the error a request for it gets.
///
/// # Errors
/// The range does not resolve (`docs/metrics.md#ranges`).
pub fn section(name: &str, input: &Input<'_>) -> Result<Value, String> {
    let range = resolve_range(input)?;
    Ok(match name {
        "kpi" => kpi::body(input, range),
        "conversation-effectiveness" => conversation_effectiveness::body(input, range),
        "whatsapp-performance" => whatsapp_performance::body(input, range),
        "customer-load" => customer_load::body(input, range),
        "agent-productivity" => agent_productivity::body(input, range),
        "automation-impact" => automation_impact::body(input, range),
        "business-impact" => business_impact::body(input, range),
        other => return Err(format!("unknown section {other}")),
    })
}

const QUARTER_MS: i64 = 15 * 60 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Events of the request's account, each `event_id` once (its first delivery).
pub fn account_events<'a>(input: &Input<'a>) -> Vec<&'a Event> {
    let mut seen = HashSet::new();
    input
        .events
        .iter()
        .filter(|e| e.account_id == input.query.account_id)
        .filter(|e| seen.insert(e.event_id.clone()))
        .collect()
}

/// `events` grouped by `key`, each group sorted by event time (the generator gives
/// distinct times within an entity; same-instant order is not defined by the docs).
pub fn grouped<'a, K: Ord>(
    events: &[&'a Event],
    key: impl Fn(&Event) -> Option<K>,
) -> BTreeMap<K, Vec<&'a Event>> {
    let mut groups: BTreeMap<K, Vec<&'a Event>> = BTreeMap::new();
    for e in events {
        if let Some(k) = key(e) {
            groups.entry(k).or_default().push(e);
        }
    }
    for g in groups.values_mut() {
        g.sort_by_key(|e| e.occurred_at_ms);
    }
    groups
}

/// Floor to the 15-minute grid.
pub fn floor_quarter(t: i64) -> i64 {
    t.div_euclid(QUARTER_MS) * QUARTER_MS
}

/// `t` in the zone.
pub fn local(t: i64, tz: Tz) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp_millis(t)
        .expect("in range")
        .with_timezone(&tz)
}

/// Local midnight of `date` (the first valid instant after it when midnight is skipped).
pub fn midnight(date: NaiveDate, tz: Tz) -> i64 {
    let mut t = date.and_time(NaiveTime::MIN);
    loop {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.timestamp_millis();
        }
        t += chrono::Duration::minutes(15);
    }
}

/// The request's range, as `docs/metrics.md#ranges` says.
///
/// # Errors
/// A bound does not parse, the range is empty, or longer than 400 days.
pub fn resolve_range(input: &Input<'_>) -> Result<Range, String> {
    let tz = input.settings.timezone;
    enum B {
        Date(NaiveDate),
        At(i64),
    }
    let parse = |s: &str| -> Result<B, String> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(B::Date(d));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| B::At(t.timestamp_millis()))
            .map_err(|_| format!("bad bound {s}"))
    };
    let from = match &input.query.from {
        Some(s) => parse(s)?,
        None => B::Date(local(input.now_ms, tz).date_naive()),
    };
    let from_ms = match from {
        B::Date(d) => midnight(d, tz),
        B::At(t) => t,
    };
    let to_ms = match (&input.query.to, &from) {
        (Some(s), _) => match parse(s)? {
            B::Date(d) => midnight(d, tz),
            B::At(t) => t,
        },
        (None, B::Date(d)) => midnight(d.succ_opt().expect("date"), tz),
        (None, B::At(t)) => t + DAY_MS,
    };
    let r = Range {
        from: floor_quarter(from_ms),
        to: floor_quarter(to_ms),
    };
    if r.to <= r.from {
        return Err("to: must be after from".into());
    }
    if r.to - r.from > 400 * DAY_MS {
        return Err("to: ranges are limited to 400 days".into());
    }
    Ok(r)
}

/// `a ÷ b` rounded half up to `decimals` places, exactly; `None` when `b` is 0.
pub fn ratio(a: i128, b: i128, decimals: u32) -> Option<f64> {
    (b != 0).then(|| {
        let scale = 10i128.pow(decimals);
        let n = div_half_up(a * scale, b);
        n as f64 / scale as f64
    })
}

/// `a ÷ b` rounded half up to an integer (`b > 0`; `a` may be negative).
pub fn div_half_up(a: i128, b: i128) -> i128 {
    assert!(b > 0);
    (2 * a + b).div_euclid(2 * b)
}

/// The nearest-rank `q`-quantile (`q = num/den`) of `values`: the smallest value with
/// at least ⌈q·n⌉ values at or below it. `None` when empty.
pub fn nearest_rank(values: &[i64], num: usize, den: usize) -> Option<i64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let rank = (num * n).div_ceil(den).max(1);
    Some(v[rank - 1])
}

/// RFC 3339 UTC with milliseconds, as the API writes instants.
pub fn rfc3339(t: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(t)
        .expect("in range")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
