//! Conversation effectiveness: conversations handled per agent, the FRT trend, SLA
//! compliance, resolved vs open, and the agent ranking (definitions in
//! `docs/metrics.md`).
//!
//! SLA deadlines are evaluated here, against the store's complete timestamp: a
//! conversation still waiting past `start + target` counts as breached as soon as that
//! timestamp passes its deadline, without any new event (the pipeline clock ticks),
//! and a change of target applies to the next response.

use foldhash::{HashMap, HashMapExt as _};
use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use schemas::event::{ResolvedBy, format_rfc3339_ms};
use schemas::metrics::Fact;
use schemas::time::BUCKET_MS;
use serde::Serialize;

use super::Params;
use super::kpi::{FrtStats, RangeBody};
use crate::range::{Range, local_date, local_midnight};
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, NO_ID, Snapshot};

/// Trend granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Local clock hours.
    Hour,
    /// Local calendar days.
    Day,
    /// Local weeks, Monday to Sunday.
    Week,
}

impl Granularity {
    /// Parses `hour`, `day` or `week`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            "week" => Some(Granularity::Week),
            _ => None,
        }
    }

    /// The default for `range`, by the local calendar dates it touches (from `from`
    /// to the last millisecond before `to`, in `tz`): hours up to two dates, days up
    /// to 62, weeks beyond. Counting dates rather than hours keeps "yesterday and
    /// today" hourly on a day the clocks change (47 or 49 hours long).
    pub fn default_for(range: Range, tz: Tz) -> Self {
        let last = range.to.saturating_sub(1).max(range.from);
        let dates = (local_date(last, tz) - local_date(range.from, tz)).num_days() + 1;
        if dates <= 2 {
            Granularity::Hour
        } else if dates <= 62 {
            Granularity::Day
        } else {
            Granularity::Week
        }
    }
}

/// SLA compliance over one range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Sla {
    /// First replies in the range within the target.
    pub met: i64,
    /// First replies in the range.
    pub replied: i64,
    /// Conversations still unanswered whose deadline passed in the range (and before
    /// `progress`), including those closed unanswered after their deadline.
    pub breached_unanswered: i64,
    /// `met / (replied + breached_unanswered)`; `null` without data.
    pub compliance: Option<f64>,
}

/// Conversations waiting for a first human reply right now.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Waiting {
    /// Deadline still ahead.
    pub within_target: i64,
    /// Deadline passed.
    pub past_target: i64,
}

/// SLA block.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SlaSection {
    /// The account's first-response target.
    pub target_s: u32,
    /// In the range.
    pub current: Sla,
    /// In the previous period.
    pub previous: Sla,
    /// Now.
    pub waiting_now: Waiting,
}

/// Conversations one agent handled.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Handled {
    /// The agent.
    pub agent_id: String,
    /// Distinct conversations with ≥ 1 message from the agent in the range.
    pub conversations: i64,
    /// The same in the previous period.
    pub previous: i64,
}

/// One point of the FRT trend.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TrendPoint {
    /// Slot start (local hour or day), RFC 3339 UTC.
    pub start: String,
    /// Statistics of first replies in the slot.
    #[serde(flatten)]
    pub stats: FrtStats,
}

/// FRT trend.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Trend {
    /// Slot size: `hour` or `day`.
    pub granularity: Granularity,
    /// Every slot of the range, empty ones included, in order.
    pub points: Vec<TrendPoint>,
}

/// Conversations opened in a range, by state now.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct OpenedInRange {
    /// Sum of the parts.
    pub total: i64,
    /// Resolved now.
    pub resolved: i64,
    /// Not resolved now.
    pub open: i64,
}

/// Resolve events in a range, by who resolved.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ResolveEvents {
    /// Sum of the parts.
    pub total: i64,
    /// Resolved by an agent.
    pub by_agent: i64,
    /// Resolved by the bot.
    pub by_bot: i64,
    /// Closed for inactivity.
    pub by_system: i64,
}

/// Resolution block: both views, labelled.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Resolution {
    /// Conversations opened in the range, and whether they are resolved now.
    pub opened_in_range: OpenedInRange,
    /// `conversation_resolved` events in the range (a conversation resolved twice counts twice).
    pub resolve_events: ResolveEvents,
    /// Resolve events in the previous period.
    pub resolve_events_previous: ResolveEvents,
}

/// One agent in the ranking.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RankedAgent {
    /// 1-based.
    pub rank: usize,
    /// The agent.
    pub agent_id: String,
    /// 0..100, see `formula`.
    pub score: u32,
    /// `good` (≥ thresholds.good), `attention` (< thresholds.attention) or `ok`.
    pub level: &'static str,
    /// Conversations handled.
    pub handled: i64,
    /// Resolutions by this agent.
    pub resolved: i64,
    /// `resolved / handled`, capped at 1.
    pub resolution_rate: Option<f64>,
    /// Mean FRT of the first replies this agent gave.
    pub frt_avg_s: Option<f64>,
    /// Share of those replies within target.
    pub sla_met_rate: Option<f64>,
}

/// Ranking thresholds.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Thresholds {
    /// Scores at or above are `good`.
    pub good: u32,
    /// Scores below are `attention`.
    pub attention: u32,
}

/// The agent ranking.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Ranking {
    /// How the score is computed.
    pub formula: &'static str,
    /// Score thresholds used for `level`.
    pub thresholds: Thresholds,
    /// Best first.
    pub agents: Vec<RankedAgent>,
}

/// The section body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ConversationEffectiveness {
    /// Always `conversation-effectiveness`.
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
    /// SLA compliance, now and before, and conversations waiting now.
    pub sla: SlaSection,
    /// Most conversations first.
    pub handled_per_agent: Vec<Handled>,
    /// First response time per local hour or day.
    pub frt_trend: Trend,
    /// Resolved vs open conversations, and resolve events.
    pub resolution: Resolution,
    /// Agents ranked by a documented score.
    pub agent_ranking: Ranking,
}

/// The score formula, as documented.
pub const FORMULA: &str = exact::AGENT_SCORE_FORMULA;
use super::exact::{self, ATTENTION, GOOD, rate as ratio};

/// First replies of one period, summed as SLA compliance and the ranking read them.
#[derive(Default)]
struct Replies {
    /// First replies.
    replied: i64,
    /// Those within the target.
    met: i64,
    /// `(count, met, seconds sum)` per replying agent id ([`AccountFacts::names`]).
    per_agent: Vec<(i64, i64, i64)>,
}

/// First replies in `r` passing the filters, summed, each also handed to `each`
/// (bucket, seconds, count): one pass feeds SLA, ranking and trend.
fn first_replies(
    facts: Option<&AccountFacts>,
    r: Range,
    p: &Params,
    target_ms: i64,
    mut each: impl FnMut(i64, u32, i64),
) -> Replies {
    let mut out = Replies {
        per_agent: vec![(0, 0, 0); facts.map_or(0, |f| f.names.len())],
        ..Replies::default()
    };
    super::scan_first_responses(facts, r, p, |bucket, k, n| {
        let met = i64::from(k.seconds) * 1000 <= target_ms;
        out.replied += n;
        if met {
            out.met += n;
        }
        if k.agent != NO_ID {
            let e = &mut out.per_agent[k.agent as usize];
            e.0 += n;
            e.2 += i64::from(k.seconds) * n;
            if met {
                e.1 += n;
            }
        }
        each(bucket, k.seconds, n);
    });
    out
}

fn sla(
    facts: Option<&AccountFacts>,
    replies: &Replies,
    r: Range,
    p: &Params,
    target_ms: i64,
    now: i64,
) -> Sla {
    let mut s = Sla {
        replied: replies.replied,
        met: replies.met,
        ..Sla::default()
    };
    // A deadline in [from, to) means a start in [from - target, to - target).
    let scan = Range {
        from: r.from - target_ms - BUCKET_MS,
        to: r.to - target_ms + BUCKET_MS,
    };
    // An unanswered conversation has no replying agent: with an agent filter only
    // that agent's replies count.
    if p.agent_id.is_none() {
        for (fact, n) in facts
            .into_iter()
            .flat_map(|f| f.range("awaiting_first_response", scan.from, scan.to))
        {
            if let Fact::AwaitingFirstResponse {
                start_ms,
                resolved_at_ms,
                channel,
                inbox_id,
                team_id,
                ..
            } = fact
                && p.wants_conversation(*channel, inbox_id)
                && (p.team_id.is_none() || p.team_id.as_deref() == team_id.as_deref())
            {
                let deadline = start_ms + target_ms;
                let breached = deadline <= now && resolved_at_ms.is_none_or(|at| at > deadline);
                if breached && (r.from..r.to).contains(&deadline) {
                    s.breached_unanswered += n;
                }
            }
        }
    }
    s.compliance = ratio(s.met, s.replied + s.breached_unanswered);
    s
}

fn waiting(facts: Option<&AccountFacts>, p: &Params, target_ms: i64, now: i64) -> Waiting {
    let mut w = Waiting::default();
    // As for `breached_unanswered`: nobody has answered these, so no agent's filter
    // admits them.
    if p.agent_id.is_some() {
        return w;
    }
    for (fact, &n) in facts.into_iter().flat_map(|f| &f.awaiting_open) {
        if let Fact::AwaitingFirstResponse {
            start_ms,
            resolved_at_ms: None,
            channel,
            inbox_id,
            team_id,
            ..
        } = fact
            && p.wants_conversation(*channel, inbox_id)
            && (p.team_id.is_none() || p.team_id.as_deref() == team_id.as_deref())
        {
            if start_ms + target_ms <= now {
                w.past_target += n;
            } else {
                w.within_target += n;
            }
        }
    }
    w
}

/// Distinct conversations per agent with a message in `r`.
pub(crate) fn handled(facts: Option<&AccountFacts>, r: Range, p: &Params) -> HashMap<String, i64> {
    if p.channel.is_none()
        && p.inbox_id.is_none()
        && p.agent_id.is_none()
        && p.team_id.is_none()
        && let Some(counts) = facts.and_then(|f| super::handled_per_agent_unfiltered(f, r))
    {
        return counts;
    }
    let filter = facts.map(|f| super::IdFilter::new(p, &f.names));
    super::handled_per_agent(facts, r, |k| {
        filter.is_some_and(|f| {
            f.wants_conversation(k.channel, k.inbox) && f.wants_agent(k.agent, k.team)
        })
    })
}

fn resolve_events(
    facts: Option<&AccountFacts>,
    r: Range,
    p: &Params,
) -> (ResolveEvents, HashMap<String, i64>) {
    let mut e = ResolveEvents::default();
    let mut by_agent: HashMap<String, i64> = HashMap::new();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("resolution", r.from, r.to))
    {
        if let Fact::Resolution {
            resolved_by,
            agent_id,
            team_id,
            channel,
            inbox_id,
            ..
        } = fact
            && p.wants_conversation(*channel, inbox_id)
            && p.wants_agent(agent_id.as_deref(), team_id.as_deref())
        {
            e.total += n;
            match resolved_by {
                ResolvedBy::Agent => {
                    e.by_agent += n;
                    if let Some(a) = agent_id {
                        *super::slot(&mut by_agent, a) += n;
                    }
                }
                ResolvedBy::Bot => e.by_bot += n,
                ResolvedBy::System => e.by_system += n,
            }
        }
    }
    (e, by_agent)
}

fn opened_in_range(facts: Option<&AccountFacts>, r: Range, p: &Params) -> OpenedInRange {
    let mut o = OpenedInRange::default();
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        facts.opened.scan(r.from, r.to, |k, n| {
            if filter.wants_conversation(k.channel, k.inbox) {
                o.total += n;
                if k.resolved {
                    o.resolved += n;
                } else {
                    o.open += n;
                }
            }
        });
    }
    o
}

/// The start of the local hour, day or week containing `t_ms`.
pub(crate) fn slot_start(t_ms: i64, tz: Tz, g: Granularity) -> i64 {
    slot_start_at(t_ms, &local_at(t_ms, tz), tz, g, &mut None)
}

/// `t_ms` in `tz`.
pub(crate) fn local_at(t_ms: i64, tz: Tz) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .unwrap_or_default()
        .with_timezone(&tz)
}

/// [`slot_start`] given `local`, which is `t_ms` in `tz` ([`local_at`]); `midnight`
/// remembers the last local midnight computed, for callers going bucket by bucket.
pub(crate) fn slot_start_at(
    t_ms: i64,
    local: &DateTime<Tz>,
    tz: Tz,
    g: Granularity,
    midnight: &mut Option<(chrono::NaiveDate, i64)>,
) -> i64 {
    let mut midnight_of = |date: chrono::NaiveDate| match *midnight {
        Some((d, t)) if d == date => t,
        _ => {
            let t = local_midnight(date, tz);
            *midnight = Some((date, t));
            t
        }
    };
    match g {
        Granularity::Day => midnight_of(local.date_naive()),
        Granularity::Week => {
            let date = local.date_naive();
            let monday = date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
            midnight_of(monday)
        }
        Granularity::Hour => {
            let into_hour = i64::from(local.minute()) * 60_000
                + i64::from(local.second()) * 1000
                + i64::from(local.timestamp_subsec_millis());
            t_ms - into_hour
        }
    }
}

/// Most trend slots that get a dense histogram each (see [`super::Histogram`]).
const DENSE_SLOTS: usize = 64;

/// The FRT trend of a range, filled reply by reply.
struct TrendBuilder {
    granularity: Granularity,
    local: super::LocalBuckets,
    /// Slot starts in time order, each with its histogram.
    slots: Vec<(i64, super::Histogram)>,
    /// Per bucket of the range, its slot's position in `slots`.
    slot_of: Vec<u32>,
}

impl TrendBuilder {
    fn new(r: Range, tz: Tz, g: Granularity) -> Self {
        let local = super::LocalBuckets::new(r, tz, g);
        let starts: BTreeSet<i64> = local.slots().collect();
        // A dense array per slot pays when the slots are few (days, weeks); an hourly
        // trend over weeks has hundreds of small ones.
        let dense = starts.len() <= DENSE_SLOTS;
        let slots: Vec<(i64, super::Histogram)> = starts
            .iter()
            .map(|&start| {
                let hist = if dense {
                    super::Histogram::default()
                } else {
                    super::Histogram::sparse()
                };
                (start, hist)
            })
            .collect();
        let slot_of = local
            .slots()
            .map(|slot| slots.partition_point(|(s, _)| *s < slot) as u32)
            .collect();
        Self {
            granularity: g,
            local,
            slots,
            slot_of,
        }
    }

    fn add(&mut self, bucket: i64, seconds: u32, n: i64) {
        let at = match self.local.index(bucket) {
            Some(i) => self.slot_of[i] as usize,
            None => {
                // Off the range's grid: its slot, a point of its own if new.
                let slot = self.local.get(bucket).slot;
                match self.slots.binary_search_by_key(&slot, |(s, _)| *s) {
                    Ok(at) => at,
                    Err(at) => {
                        self.slots.insert(at, (slot, super::Histogram::sparse()));
                        for i in &mut self.slot_of {
                            if *i as usize >= at {
                                *i += 1;
                            }
                        }
                        at
                    }
                }
            }
        };
        self.slots[at].1.add(seconds, n);
    }

    fn finish(self) -> Trend {
        Trend {
            granularity: self.granularity,
            points: self
                .slots
                .into_iter()
                .map(|(start, hist)| TrendPoint {
                    start: format_rfc3339_ms(start),
                    stats: hist.stats(),
                })
                .collect(),
        }
    }
}

fn ranking(
    facts: Option<&AccountFacts>,
    first: &Replies,
    handled: &HashMap<String, i64>,
    resolved: &HashMap<String, i64>,
) -> Ranking {
    let replies = &first.per_agent;
    let most = handled.values().copied().max().unwrap_or(0);
    let mut agents: Vec<RankedAgent> = handled
        .iter()
        .map(|(agent, &h)| {
            let (count, met, sum) = facts
                .and_then(|f| f.names.get(agent))
                .and_then(|id| replies.get(id as usize).copied())
                .unwrap_or_default();
            let res = resolved.get(agent).copied().unwrap_or(0);
            let resolution_rate = ratio(res.min(h), h);
            let sla_met_rate = ratio(met, count);
            let score = exact::agent_score((met, count), (res.min(h), h), (h, most));
            RankedAgent {
                rank: 0,
                agent_id: agent.clone(),
                score,
                level: exact::level(score),
                handled: h,
                resolved: res,
                resolution_rate,
                frt_avg_s: exact::tenths(sum, count),
                sla_met_rate,
            }
        })
        .collect();
    agents.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.handled.cmp(&a.handled))
            .then(a.agent_id.cmp(&b.agent_id))
    });
    for (i, a) in agents.iter_mut().enumerate() {
        a.rank = i + 1;
    }
    Ranking {
        formula: FORMULA,
        thresholds: Thresholds {
            good: GOOD,
            attention: ATTENTION,
        },
        agents,
    }
}

/// Computes the section.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
    granularity: Option<Granularity>,
) -> ConversationEffectiveness {
    let facts = snap.accounts.get(&p.account_id);
    let previous = range.previous();
    let target_ms = i64::from(settings.sla_first_response_s) * 1000;
    let now = i64::try_from(snap.progress).unwrap_or(i64::MAX);
    let handled_now = handled(facts, range, p);
    let handled_before = handled(facts, previous, p);
    let (events_now, resolved_by_agent) = resolve_events(facts, range, p);
    let (events_before, _) = resolve_events(facts, previous, p);
    // Each period's first replies are read once and shared by SLA, trend and ranking.
    let mut trend = TrendBuilder::new(
        range,
        settings.timezone,
        granularity.unwrap_or_else(|| Granularity::default_for(range, settings.timezone)),
    );
    let replies = first_replies(facts, range, p, target_ms, |bucket, seconds, n| {
        trend.add(bucket, seconds, n);
    });
    let replies_before = first_replies(facts, previous, p, target_ms, |_, _, _| {});
    let agent_ranking = ranking(facts, &replies, &handled_now, &resolved_by_agent);
    let mut handled_per_agent: Vec<Handled> = handled_now
        .iter()
        .map(|(agent, &n)| Handled {
            agent_id: agent.clone(),
            conversations: n,
            previous: handled_before.get(agent).copied().unwrap_or(0),
        })
        .collect();
    handled_per_agent.sort_by(|a, b| {
        b.conversations
            .cmp(&a.conversations)
            .then(a.agent_id.cmp(&b.agent_id))
    });
    ConversationEffectiveness {
        section: "conversation-effectiveness",
        account_id: p.account_id,
        timezone: settings.timezone.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        sla: SlaSection {
            target_s: settings.sla_first_response_s,
            current: sla(facts, &replies, range, p, target_ms, now),
            previous: sla(facts, &replies_before, previous, p, target_ms, now),
            waiting_now: waiting(facts, p, target_ms, now),
        },
        handled_per_agent,
        frt_trend: trend.finish(),
        resolution: Resolution {
            opened_in_range: opened_in_range(facts, range, p),
            resolve_events: events_now,
            resolve_events_previous: events_before,
        },
        agent_ranking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::resolve;

    fn hourly_slots(day: &str, tz: Tz) -> usize {
        let range = resolve(Some(day), None, tz, 0).unwrap();
        TrendBuilder::new(range, tz, Granularity::Hour)
            .finish()
            .points
            .len()
    }

    #[test]
    fn the_default_granularity_counts_local_dates() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        let range = |from: &str, to: &str| Range {
            from: at(from),
            to: at(to),
        };
        // Yesterday and today on the day the clocks go back: 49 hours, two dates.
        let two_dates = range("2026-10-24T00:00:00+02:00", "2026-10-26T00:00:00+01:00");
        assert_eq!(two_dates.to - two_dates.from, 49 * 3_600_000);
        assert_eq!(
            Granularity::default_for(two_dates, berlin),
            Granularity::Hour
        );
        // 10:00 on one day to 01:00 two days later: 39 hours, three dates.
        let three = range("2026-11-02T10:00:00+01:00", "2026-11-04T01:00:00+01:00");
        assert_eq!(Granularity::default_for(three, berlin), Granularity::Day);
        // `to` is exclusive: up to midnight touches the dates before it only.
        let july_august = range("2026-07-01T00:00:00+02:00", "2026-09-01T00:00:00+02:00");
        assert_eq!(
            Granularity::default_for(july_august, berlin),
            Granularity::Day
        );
        let one_more = range("2026-07-01T00:00:00+02:00", "2026-09-01T00:15:00+02:00");
        assert_eq!(
            Granularity::default_for(one_more, berlin),
            Granularity::Week
        );
        // The same instants are other dates elsewhere.
        let utc_two = range("2026-11-02T22:30:00Z", "2026-11-03T23:30:00Z");
        assert_eq!(
            Granularity::default_for(utc_two, chrono_tz::UTC),
            Granularity::Hour
        );
        assert_eq!(Granularity::default_for(utc_two, berlin), Granularity::Day);
    }

    #[test]
    fn dst_days_have_23_or_25_local_hours_and_odd_offsets_24() {
        assert_eq!(hourly_slots("2026-03-29", chrono_tz::Europe::Berlin), 23);
        assert_eq!(hourly_slots("2026-10-25", chrono_tz::Europe::Berlin), 25);
        assert_eq!(hourly_slots("2026-11-24", chrono_tz::Asia::Kathmandu), 24);
        assert_eq!(hourly_slots("2026-11-24", chrono_tz::Asia::Kolkata), 24);
    }

    #[test]
    fn slots_start_on_local_hours() {
        // 10:07 UTC is 15:52 in Kathmandu (+05:45): its hour starts at 15:00 local = 09:15 UTC.
        let t = 1_795_514_820_000; // 2026-11-24T10:07:00Z
        let start = slot_start(t, chrono_tz::Asia::Kathmandu, Granularity::Hour);
        assert_eq!(format_rfc3339_ms(start), "2026-11-24T09:15:00.000Z");
        let day = slot_start(t, chrono_tz::Asia::Kathmandu, Granularity::Day);
        assert_eq!(format_rfc3339_ms(day), "2026-11-23T18:15:00.000Z");
        // 2026-11-24 is a Tuesday: its week starts Monday 2026-11-23, local midnight.
        let week = slot_start(t, chrono_tz::Asia::Kathmandu, Granularity::Week);
        assert_eq!(format_rfc3339_ms(week), "2026-11-22T18:15:00.000Z");
    }
}
