//! The KPI strip: active conversations now, first response time with SLA status,
//! WhatsApp delivery rate, open tickets now, messages today. Every range metric comes
//! with its value for the previous period of equal length.

use std::collections::BTreeMap;

use schemas::event::{Direction, Priority, format_rfc3339_ms};
use schemas::metrics::{Fact, Holder};
use schemas::time::{BUCKET_MS, floor_to_bucket};
use serde::Serialize;

use super::Params;
use crate::range::{Range, first_instant_from, local_date, local_midnight};
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, Snapshot};

/// `{from, to}` as RFC 3339.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RangeBody {
    /// Inclusive start.
    pub from: String,
    /// Exclusive end.
    pub to: String,
}

impl From<Range> for RangeBody {
    fn from(r: Range) -> Self {
        Self {
            from: format_rfc3339_ms(r.from),
            to: format_rfc3339_ms(r.to),
        }
    }
}

/// Active conversations now, by holder.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Active {
    /// All active conversations.
    pub total: i64,
    /// Open, assigned to nobody (includes bot hand-overs not yet picked up).
    pub unassigned: i64,
    /// Held by the bot.
    pub bot: i64,
    /// Held by a human agent.
    pub agent: i64,
}

/// First-response statistics over one range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FrtStats {
    /// Conversations whose first human reply fell in the range.
    pub count: i64,
    /// Mean seconds; `null` without data.
    pub avg_s: Option<f64>,
    /// Median (nearest rank); `null` without data.
    pub p50_s: Option<u32>,
    /// 90th percentile (nearest rank); `null` without data.
    pub p90_s: Option<u32>,
}

/// First response time, now and before, with SLA status.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FirstResponse {
    /// In the range.
    pub current: FrtStats,
    /// In the previous period.
    pub previous: FrtStats,
    /// The account's target.
    pub sla_target_s: u32,
    /// `green` (p90 ≤ target), `yellow` (≤ 2× target), `red`, or `null` without data.
    pub sla_status: Option<&'static str>,
}

/// WhatsApp delivery over one range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Delivery {
    /// Outbound WhatsApp messages created in the range that reached delivered or read.
    pub delivered: i64,
    /// Those that reached any status.
    pub with_status: i64,
    /// `delivered / with_status`, `null` when `with_status` is 0.
    pub rate: Option<f64>,
}

/// WhatsApp delivery rate, now and before, with the alert.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WhatsappDelivery {
    /// In the range.
    pub current: Delivery,
    /// In the previous period.
    pub previous: Delivery,
    /// Alert threshold.
    pub alert_below: f64,
    /// `current.rate < alert_below`.
    pub alert: bool,
}

/// Open tickets now by priority.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct OpenTickets {
    /// All open tickets.
    pub total: i64,
    /// Open tickets of priority low.
    pub low: i64,
    /// Open tickets of priority medium.
    pub medium: i64,
    /// Open tickets of priority high.
    pub high: i64,
    /// Open tickets of priority urgent.
    pub urgent: i64,
}

/// Messages by direction.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MessageCounts {
    /// Inbound messages.
    pub inbound: i64,
    /// Outbound messages.
    pub outbound: i64,
    /// Sum of the parts.
    pub total: i64,
}

/// Messages since local midnight, and the same window yesterday.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MessagesToday {
    /// Local midnight today.
    pub since: String,
    /// Today so far.
    pub current: MessageCounts,
    /// Yesterday from midnight to the same 15-minute slot.
    pub previous: MessageCounts,
}

/// The KPI strip body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Kpi {
    /// Always `kpi`.
    pub section: &'static str,
    /// The account the numbers belong to.
    pub account_id: u64,
    /// The account's IANA zone.
    pub timezone: String,
    /// Effective range.
    pub range: RangeBody,
    /// The previous period.
    pub previous_range: RangeBody,
    /// Pipeline time up to which the state is complete.
    pub progress: u64,
    /// Active conversations now, by holder.
    pub active_conversations: Active,
    /// First response time, now and before, with SLA status.
    pub first_response: FirstResponse,
    /// WhatsApp delivery rate, now and before, with the alert.
    pub whatsapp_delivery: WhatsappDelivery,
    /// Open tickets now, by priority.
    pub open_tickets: OpenTickets,
    /// Messages since local midnight, and the same window yesterday.
    pub messages_today: MessagesToday,
}

fn frt(facts: Option<&AccountFacts>, r: Range, p: &Params) -> FrtStats {
    let mut hist = super::Histogram::default();
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        facts.first_responses.scan(r.from, r.to, |k, n| {
            if filter.wants_conversation(k.channel, k.inbox) && filter.wants_agent(k.agent, k.team)
            {
                hist.add(k.seconds, n);
            }
        });
    }
    hist.stats()
}

impl FrtStats {
    /// Count, mean and nearest-rank p50/p90 of a `seconds → count` histogram.
    pub fn from_histogram(hist: &BTreeMap<u32, i64>) -> Self {
        let sorted: Vec<(u32, i64)> = hist.iter().map(|(s, n)| (*s, *n)).collect();
        Self::from_sorted(&sorted)
    }

    /// [`Self::from_histogram`] of `(seconds, count)` pairs in ascending order of
    /// seconds, each value once.
    pub fn from_sorted(hist: &[(u32, i64)]) -> Self {
        Self::from_ascending(|| hist.iter().copied())
    }

    /// [`Self::from_sorted`] of the pairs `pairs()` yields (each call the same ones,
    /// in ascending order of seconds; zero counts are ignored).
    pub(crate) fn from_ascending<I: Iterator<Item = (u32, i64)>>(pairs: impl Fn() -> I) -> Self {
        let (mut count, mut sum) = (0i64, 0i64);
        for (s, n) in pairs() {
            count += n;
            sum += i64::from(s) * n;
        }
        if count <= 0 {
            return FrtStats::default();
        }
        let nearest_rank = |num: i64, den: i64| {
            let rank = super::exact::nearest_rank(num, den, count);
            let mut seen = 0;
            pairs()
                .find(|(_, n)| {
                    seen += *n;
                    *n != 0 && seen >= rank
                })
                .map(|(s, _)| s)
        };
        FrtStats {
            count,
            avg_s: super::exact::tenths(sum, count),
            p50_s: nearest_rank(1, 2),
            p90_s: nearest_rank(9, 10),
        }
    }
}

fn delivery(facts: Option<&AccountFacts>, r: Range) -> Delivery {
    let mut d = Delivery::default();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("whatsapp_outcome", r.from, r.to))
    {
        if let Fact::WhatsappOutcome { delivered, .. } = fact {
            d.with_status += n;
            if *delivered {
                d.delivered += n;
            }
        }
    }
    d.rate = super::exact::rate(d.delivered, d.with_status);
    d
}

fn messages(facts: Option<&AccountFacts>, r: Range, p: &Params) -> MessageCounts {
    let mut m = MessageCounts::default();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("message", r.from, r.to))
    {
        if let Fact::Message {
            direction, channel, ..
        } = fact
            && p.wants_channel(*channel)
        {
            match direction {
                Direction::Inbound => m.inbound += n,
                Direction::Outbound => m.outbound += n,
            }
        }
    }
    m.total = m.inbound + m.outbound;
    m
}

/// The end of `messages_today.previous` (docs/metrics.md, messages today): yesterday at
/// the local time of day that ends the 15-minute slot of the pipeline's progress (the
/// last complete instant), the first instant after a skipped hour. Before the progress
/// reaches today's midnight nothing of today is counted yet, so the comparison is
/// empty too (yesterday's midnight); a slot ending at the next midnight compares with
/// the whole of yesterday.
fn same_time_yesterday(
    progress: u64,
    today: chrono::NaiveDate,
    yesterday: chrono::NaiveDate,
    tz: chrono_tz::Tz,
) -> i64 {
    let last = i64::try_from(progress)
        .unwrap_or(i64::MAX)
        .saturating_sub(1);
    let slot_end = floor_to_bucket(last) + BUCKET_MS;
    let end = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(slot_end)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local();
    if end.date() < today || slot_end <= local_midnight(today, tz) {
        return local_midnight(yesterday, tz);
    }
    if end.date() > today {
        return local_midnight(today, tz);
    }
    first_instant_from(yesterday.and_time(end.time()), tz)
        .unwrap_or_else(|| local_midnight(today, tz))
}

/// Computes the KPI strip.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
    now_ms: i64,
) -> Kpi {
    let facts = snap.accounts.get(&p.account_id);
    let mut active = Active::default();
    let mut tickets = OpenTickets::default();
    for (fact, n) in facts.into_iter().flat_map(|f| {
        f.now_of("active_conversation")
            .chain(f.now_of("open_ticket"))
    }) {
        match fact {
            Fact::ActiveConversation {
                holder,
                channel,
                inbox_id,
                ..
            } if p.wants_conversation(*channel, inbox_id) => {
                active.total += n;
                match holder {
                    Holder::Unassigned => active.unassigned += n,
                    Holder::Bot => active.bot += n,
                    Holder::Agent => active.agent += n,
                }
            }
            Fact::OpenTicket { priority, .. } => {
                tickets.total += n;
                match priority {
                    Priority::Low => tickets.low += n,
                    Priority::Medium => tickets.medium += n,
                    Priority::High => tickets.high += n,
                    Priority::Urgent => tickets.urgent += n,
                }
            }
            _ => {}
        }
    }

    let previous = range.previous();
    let current_frt = frt(facts, range, p);
    let target = settings.sla_first_response_s;
    let sla_status = current_frt.p90_s.map(|p90| {
        if p90 <= target {
            "green"
        } else if p90 <= target.saturating_mul(2) {
            "yellow"
        } else {
            "red"
        }
    });

    let current_delivery = delivery(facts, range);
    let alert = current_delivery
        .rate
        .is_some_and(|r| r < settings.whatsapp_delivery_alert_below);

    let tz = settings.timezone;
    let today = local_date(now_ms, tz);
    let midnight = local_midnight(today, tz);
    let yesterday_date = today.pred_opt().unwrap_or(today);
    let yesterday = local_midnight(yesterday_date, tz);
    let previous_end = same_time_yesterday(snap.progress, today, yesterday_date, tz);

    Kpi {
        section: "kpi",
        account_id: p.account_id,
        timezone: tz.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        active_conversations: active,
        first_response: FirstResponse {
            previous: frt(facts, previous, p),
            current: current_frt,
            sla_target_s: target,
            sla_status,
        },
        whatsapp_delivery: WhatsappDelivery {
            previous: delivery(facts, previous),
            current: current_delivery,
            alert_below: settings.whatsapp_delivery_alert_below,
            alert,
        },
        open_tickets: tickets,
        messages_today: MessagesToday {
            since: format_rfc3339_ms(midnight),
            current: messages(
                facts,
                Range {
                    from: midnight,
                    to: i64::MAX,
                },
                p,
            ),
            previous: messages(
                facts,
                Range {
                    from: yesterday,
                    to: previous_end.max(yesterday),
                },
                p,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    }

    fn end(progress: &str, today: &str, tz: chrono_tz::Tz) -> i64 {
        let today: chrono::NaiveDate = today.parse().unwrap();
        let progress = u64::try_from(at(progress)).unwrap();
        same_time_yesterday(progress, today, today.pred_opt().unwrap(), tz)
    }

    /// docs/metrics.md, messages today: the worked example and its edges.
    #[test]
    fn yesterday_ends_at_the_time_of_day_of_the_progress_slot() {
        let kolkata = chrono_tz::Asia::Kolkata;
        assert_eq!(
            end("2026-11-20T14:05:30+05:30", "2026-11-20", kolkata),
            at("2026-11-19T14:15:00+05:30")
        );
        // The progress still yesterday: nothing of today is counted, nor of yesterday.
        assert_eq!(
            end("2026-11-19T23:58:00+05:30", "2026-11-20", kolkata),
            at("2026-11-19T00:00:00+05:30")
        );
        // The last slot of the day ends at the next midnight: the whole of yesterday.
        assert_eq!(
            end("2026-11-20T23:50:00+05:30", "2026-11-20", kolkata),
            at("2026-11-20T00:00:00+05:30")
        );
        // Exactly on a slot boundary: the last complete instant is in the slot before.
        assert_eq!(
            end("2026-11-20T14:15:00+05:30", "2026-11-20", kolkata),
            at("2026-11-19T14:15:00+05:30")
        );
        // Yesterday's clocks skipped 02:00–03:00 (Berlin, 29 March 2026): 02:15 does not
        // exist, the next quarter-hour that does is 03:00.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            end("2026-03-30T02:05:00+02:00", "2026-03-30", berlin),
            at("2026-03-29T03:00:00+02:00")
        );
        // After a 25-hour day the same wall time (01:45 summer time), not 24 hours
        // before (02:45 summer time).
        assert_eq!(
            end("2026-10-26T01:35:00+01:00", "2026-10-26", berlin),
            at("2026-10-25T01:45:00+02:00")
        );
    }
}
