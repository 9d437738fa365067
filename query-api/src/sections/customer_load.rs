//! Customer load: conversations opened over time, by hour of day, peak hours, new vs
//! returning customers, wait time at peak vs off-peak, the weekday × hour heatmap and
//! a next-24-hours forecast (definitions in `docs/metrics.md`). Hours and weekdays are
//! local to the account's zone.

use foldhash::HashSet;
use std::collections::BTreeMap;

use schemas::event::format_rfc3339_ms;
use serde::Serialize;

use super::Params;
use super::conversation_effectiveness::{Granularity, slot_start};
use super::kpi::{FrtStats, RangeBody};
use crate::range::Range;
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, Snapshot};

const HOUR_MS: i64 = 3_600_000;
const WEEK_MS: i64 = 7 * 24 * HOUR_MS;
/// Hours of day reported as peak.
const PEAK_HOURS: usize = 3;
/// Weeks of history behind the forecast.
const FORECAST_WEEKS: i64 = 4;

/// Conversations opened in one slot.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CountPoint {
    /// Slot start (local hour or day), RFC 3339 UTC.
    pub start: String,
    /// Conversations opened.
    pub count: i64,
}

/// Conversations opened over the range.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Opened {
    /// In the range.
    pub total: i64,
    /// In the previous period.
    pub previous: i64,
    /// Slot size of `points`.
    pub granularity: Granularity,
    /// Every slot of the range, empty ones included.
    pub points: Vec<CountPoint>,
}

/// One local hour of day.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HourOfDay {
    /// 0..23, local.
    pub hour: u32,
    /// Conversations opened in that hour, summed over the range.
    pub count: i64,
    /// Whether it is one of the peak hours.
    pub peak: bool,
}

/// Distinct customers with a conversation opened in a range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Customers {
    /// Distinct customers.
    pub total: i64,
    /// Whose first conversation ever was opened in the range.
    pub new: i64,
    /// The others.
    pub returning: i64,
}

/// New vs returning, now and before.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CustomersSection {
    /// The figure for the range.
    pub current: Customers,
    /// The same figure for the previous period.
    pub previous: Customers,
}

/// First-response time by whether the reply fell in a peak hour.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WaitTime {
    /// Replies in peak hours.
    pub peak: FrtStats,
    /// Replies in other hours.
    pub off_peak: FrtStats,
}

/// Weekday × hour counts.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Heatmap {
    /// Row labels: Monday first.
    pub weekdays: Vec<&'static str>,
    /// `cells[weekday][hour]`: conversations opened.
    pub cells: Vec<Vec<i64>>,
}

/// One forecast hour.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ForecastPoint {
    /// Local hour start, RFC 3339 UTC.
    pub start: String,
    /// Mean of the same weekday-hour over the weeks with history, to 0.01; `null`
    /// when there is not enough history (no such week).
    pub expected: Option<f64>,
    /// Weeks averaged, 0 to 4: those whose comparison hour ends after the account's
    /// first conversation.
    pub weeks: u32,
}

/// Next 24 hours.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Forecast {
    /// How `expected` is computed.
    pub method: &'static str,
    /// The series, in time order.
    pub points: Vec<ForecastPoint>,
}

/// The section body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CustomerLoad {
    /// Always `customer-load`.
    pub section: &'static str,
    /// The account the numbers belong to.
    pub account_id: u64,
    /// The account's IANA timezone, used for local hours and days.
    pub timezone: String,
    /// The effective range `[from, to)`, bounds on the 15-minute grid.
    pub range: RangeBody,
    /// The previous period: same length, ending where `range` starts.
    pub previous_range: RangeBody,
    /// Pipeline time (ms since epoch) up to which the state is complete.
    pub progress: u64,
    /// Conversations opened over the range.
    pub opened: Opened,
    /// 24 entries, local hour 0 first.
    pub hour_of_day: Vec<HourOfDay>,
    /// The busiest local hours of day in the range, busiest first.
    pub peak_hours: Vec<u32>,
    /// New vs returning customers, now and before.
    pub customers: CustomersSection,
    /// First response time at peak vs off-peak hours.
    pub wait_time: WaitTime,
    /// Conversations opened by local weekday × hour.
    pub heatmap: Heatmap,
    /// Expected conversations for the next 24 local hours.
    pub forecast: Forecast,
}

/// Calls `f` with `(bucket, count)` of conversations opened in `r` passing the
/// filters, day after day.
fn opened(facts: Option<&AccountFacts>, r: Range, p: &Params, mut f: impl FnMut(i64, i64)) {
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        facts.opened.scan_buckets(r.from, r.to, |bucket, k, n| {
            if filter.wants_conversation(k.channel, k.inbox) {
                f(bucket, n);
            }
        });
    }
}

/// Conversations opened in `r` passing the filters.
fn opened_total(facts: Option<&AccountFacts>, r: Range, p: &Params) -> i64 {
    let mut total = 0;
    opened(facts, r, p, |_, n| total += n);
    total
}

/// Distinct customers with a conversation in `r`, and those among them whose first
/// conversation ever is in `r`.
pub(crate) fn customers(facts: Option<&AccountFacts>, r: Range, p: &Params) -> Customers {
    let Some(facts) = facts else {
        return Customers::default();
    };
    if p.channel.is_none() && p.inbox_id.is_none() && facts.customer_conversations.all_positive() {
        // Without a conversation filter every customer with a first conversation in
        // `r` is one of those counted: new is the distinct count of those entries.
        let (mut total, mut new_total) = (0, 0);
        facts.customer_pairs.count(r.from, r.to, |group, n| {
            if group == crate::store::FIRST_CONVERSATION {
                new_total += n;
            } else {
                total += n;
            }
        });
        return Customers {
            total,
            new: new_total,
            returning: total - new_total,
        };
    }
    let filter = super::IdFilter::new(p, &facts.names);
    let mut all = super::Bits::new(facts.customers.len());
    let mut seen: Vec<u32> = Vec::new();
    // A customer is new when their first conversation ever was opened in `r`, on any
    // channel or inbox: the filters choose which customers are counted, not which of
    // their conversations was the first (one who came by webchat this morning and by
    // WhatsApp this afternoon is a new WhatsApp customer today).
    let mut first_here = super::Bits::new(facts.customers.len());
    facts.customer_conversations.scan(r.from, r.to, |k, _| {
        if k.first {
            first_here.insert(k.customer);
        }
        if filter.wants_conversation(k.channel, k.inbox) && all.insert(k.customer) {
            seen.push(k.customer);
        }
    });
    let total = seen.len() as i64;
    let new_total = seen.iter().filter(|c| first_here.contains(**c)).count() as i64;
    Customers {
        total,
        new: new_total,
        returning: total - new_total,
    }
}

/// Computes the section.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
    granularity: Option<Granularity>,
) -> CustomerLoad {
    let tz = settings.timezone;
    let facts = snap.accounts.get(&p.account_id);
    let previous = range.previous();
    let g = granularity.unwrap_or_else(|| Granularity::default_for(range, tz));

    let local = super::LocalBuckets::new(range, tz, g);
    let mut slots: BTreeMap<i64, i64> = BTreeMap::new();
    for slot in local.slots() {
        slots.entry(slot).or_default();
    }
    let mut by_hour = [0i64; 24];
    let mut heat = vec![vec![0i64; 24]; 7];
    let mut total = 0;
    // Summed per bucket of the range first (an index per fact), then per bucket into
    // slots, hours and weekdays.
    let mut per_cell = vec![0i64; local.cells().len()];
    let mut place = |l: super::LocalBucket, n: i64, slots: &mut BTreeMap<i64, i64>| {
        let hour = l.hour as usize;
        *slots.entry(l.slot).or_default() += n;
        by_hour[hour] += n;
        heat[l.weekday][hour] += n;
    };
    opened(facts, range, p, |bucket, n| {
        total += n;
        match local.index(bucket) {
            Some(i) => per_cell[i] += n,
            None => place(local.get(bucket), n, &mut slots),
        }
    });
    // Consecutive buckets mostly share a slot: one map update per run of them.
    let mut run: Option<(i64, i64)> = None;
    for (l, &n) in local.cells().iter().zip(&per_cell) {
        if n == 0 {
            continue;
        }
        let hour = l.hour as usize;
        by_hour[hour] += n;
        heat[l.weekday][hour] += n;
        match &mut run {
            Some((slot, sum)) if *slot == l.slot => *sum += n,
            _ => {
                if let Some((slot, sum)) = run.replace((l.slot, n)) {
                    *slots.entry(slot).or_default() += sum;
                }
            }
        }
    }
    if let Some((slot, sum)) = run {
        *slots.entry(slot).or_default() += sum;
    }
    let mut ranked: Vec<u32> = (0..24).filter(|h| by_hour[*h as usize] > 0).collect();
    ranked.sort_by(|a, b| {
        by_hour[*b as usize]
            .cmp(&by_hour[*a as usize])
            .then(a.cmp(b))
    });
    ranked.truncate(PEAK_HOURS);
    let peak: HashSet<u32> = ranked.iter().copied().collect();

    let mut is_peak = [false; 24];
    for h in &ranked {
        is_peak[*h as usize] = true;
    }
    let mut peak_hist = super::Histogram::default();
    let mut off_hist = super::Histogram::default();
    let peak_cell: Vec<bool> = local
        .cells()
        .iter()
        .map(|l| is_peak[l.hour as usize])
        .collect();
    super::scan_first_responses(facts, range, p, |bucket, k, n| {
        let peak = match local.index(bucket) {
            Some(i) => peak_cell[i],
            None => is_peak[local.get(bucket).hour as usize],
        };
        let hist = if peak { &mut peak_hist } else { &mut off_hist };
        hist.add(k.seconds, n);
    });

    let now = i64::try_from(snap.progress).unwrap_or(i64::MAX);
    let first_hour = slot_start(now, tz, Granularity::Hour);
    // History starts at the account's first conversation (any channel or inbox): a
    // week before it is not a week with no conversations, it is no data.
    let history_from = facts.and_then(|f| f.opened.first_bucket());
    let forecast = (0..24)
        .map(|k| {
            let start = first_hour + k * HOUR_MS;
            let (mut past, mut weeks) = (0i64, 0u32);
            for w in 1..=FORECAST_WEEKS {
                let from = start - w * WEEK_MS;
                if history_from.is_some_and(|first| from + HOUR_MS > first) {
                    weeks += 1;
                    past += opened_total(
                        facts,
                        Range {
                            from,
                            to: from + HOUR_MS,
                        },
                        p,
                    );
                }
            }
            ForecastPoint {
                start: format_rfc3339_ms(start),
                expected: super::exact::decimal(past.into(), weeks.into(), 2),
                weeks,
            }
        })
        .collect();

    CustomerLoad {
        section: "customer-load",
        account_id: p.account_id,
        timezone: tz.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        opened: Opened {
            total,
            previous: opened_total(facts, previous, p),
            granularity: g,
            points: slots
                .into_iter()
                .map(|(start, count)| CountPoint {
                    start: format_rfc3339_ms(start),
                    count,
                })
                .collect(),
        },
        hour_of_day: (0..24)
            .map(|h| HourOfDay {
                hour: h,
                count: by_hour[h as usize],
                peak: peak.contains(&h),
            })
            .collect(),
        peak_hours: ranked,
        customers: CustomersSection {
            current: customers(facts, range, p),
            previous: customers(facts, previous, p),
        },
        wait_time: WaitTime {
            peak: peak_hist.stats(),
            off_peak: off_hist.stats(),
        },
        heatmap: Heatmap {
            weekdays: vec!["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            cells: heat,
        },
        forecast: Forecast {
            method: "mean of conversations opened in the same local weekday and hour over the previous 4 weeks (absolute 7-day steps) that have history; null when none has",
            points: forecast,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ViewStore;
    use schemas::event::Channel;
    use schemas::metrics::{Fact, MetricBatch};

    /// The forecast when the account has one week of history, or none: the mean over
    /// the weeks that exist, and `null` ("not enough history") without any. Dividing by
    /// four weeks regardless gave a quarter of the real load (issue 13).
    #[test]
    fn the_forecast_averages_the_weeks_that_have_history() {
        let now = 1_764_000_000_000 / HOUR_MS * HOUR_MS + HOUR_MS / 2; // half past an hour, UTC
        let opened = |at: i64| Fact::ConversationOpened {
            account_id: 1,
            bucket: schemas::time::floor_to_bucket(at),
            resolved: false,
            channel: Channel::Whatsapp,
            inbox_id: "i".into(),
            campaign_id: None,
        };
        let forecast_at = |facts: Vec<(Fact, i64)>| {
            let store = ViewStore::default();
            store.apply(MetricBatch {
                progress: now as u64,
                events_consumed: 1,
                updates: facts,
            });
            let p = Params {
                account_id: 1,
                ..Params::default()
            };
            let settings = AccountSettings::default();
            let range = crate::range::resolve(None, None, settings.timezone, now).unwrap();
            store.read(|snap| compute(snap, &p, &settings, range, None).forecast)
        };
        let this_hour = now - HOUR_MS / 2;
        // 58 conversations in this hour one week ago, the account's first week.
        let week_ago = this_hour - WEEK_MS + 60_000;
        let f = forecast_at(vec![(opened(week_ago), 58)]);
        assert_eq!(
            (f.points[0].expected, f.points[0].weeks),
            (Some(58.0), 1),
            "one week of history: its count, not 58 / 4"
        );
        // The next hour also has one week of history (it ends after the first
        // conversation), with no conversation in it.
        assert_eq!((f.points[1].expected, f.points[1].weeks), (Some(0.0), 1));
        // With history four weeks back, every week counts.
        let f = forecast_at(vec![
            (opened(week_ago), 58),
            (opened(this_hour - 4 * WEEK_MS), 2),
        ]);
        assert_eq!((f.points[0].expected, f.points[0].weeks), (Some(15.0), 4));
        // No conversation at all: nothing to forecast from.
        let f = forecast_at(vec![]);
        assert!(
            f.points
                .iter()
                .all(|p| p.expected.is_none() && p.weeks == 0)
        );
    }
}
