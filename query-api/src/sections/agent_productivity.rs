//! Agent productivity: per agent, conversations handled, resolution rate, time in each
//! status within the range, current status and for how long, open conversations now,
//! a productivity score; and how evenly the open work is spread (definitions in
//! `docs/metrics.md`).

use foldhash::{HashMap, HashMapExt as _};
use std::collections::BTreeSet;

use schemas::event::{AgentStatus, ResolvedBy, format_rfc3339_ms};
use schemas::metrics::{Fact, Holder};
use serde::Serialize;

use super::Params;
use super::kpi::RangeBody;
use crate::range::Range;
use crate::settings::AccountSettings;
use crate::store::{AccountFacts, NO_ID, Snapshot};

const DAY_MS: i64 = 86_400_000;
/// The score formula, as documented.
pub const FORMULA: &str = exact::AGENT_SCORE_FORMULA;
use exact::{ATTENTION, GOOD};

/// Seconds spent in each status within the range.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TimeInStatus {
    /// Seconds online.
    pub online: i64,
    /// Seconds busy.
    pub busy: i64,
    /// Seconds away.
    pub away: i64,
    /// Seconds offline.
    pub offline: i64,
}

/// An agent's status now.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StatusNow {
    /// Current status: online, busy, away or offline.
    pub status: &'static str,
    /// Since when, RFC 3339.
    pub since: String,
    /// Seconds in it up to `progress`.
    pub for_s: i64,
}

/// One agent.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AgentRow {
    /// The agent.
    pub agent_id: String,
    /// Team last named by the agent's status events.
    pub team_id: Option<String>,
    /// Distinct conversations with ≥ 1 message from the agent in the range.
    pub handled: i64,
    /// The same in the previous period.
    pub handled_previous: i64,
    /// Resolutions by the agent in the range.
    pub resolved: i64,
    /// `resolved / handled`, capped at 1.
    pub resolution_rate: Option<f64>,
    /// Seconds per status within the range (up to `progress`).
    pub time_in_status_s: TimeInStatus,
    /// online + busy.
    pub active_s: i64,
    /// away.
    pub idle_s: i64,
    /// `active / (active + idle)`.
    pub utilisation: Option<f64>,
    /// Status now.
    pub status_now: Option<StatusNow>,
    /// Open conversations held by the agent now.
    pub open_conversations: i64,
    /// Mean FRT of the first replies the agent gave in the range.
    pub frt_avg_s: Option<f64>,
    /// Share of those within target.
    pub sla_met_rate: Option<f64>,
    /// 0..100, see `formula`.
    pub productivity_score: u32,
    /// `good`, `ok` or `attention`.
    pub level: &'static str,
}

/// How evenly open conversations are spread over the agents available now.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Workload {
    /// Agents online or busy now.
    pub agents: i64,
    /// Open conversations those agents hold.
    pub open_conversations: i64,
    /// Mean per agent.
    pub mean: Option<f64>,
    /// Population standard deviation.
    pub std_dev: Option<f64>,
    /// `std_dev / mean`: 0 is perfectly even.
    pub coefficient_of_variation: Option<f64>,
}

/// Score thresholds.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Thresholds {
    /// At or above: `good`.
    pub good: u32,
    /// Below: `attention`.
    pub attention: u32,
}

/// The section body.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AgentProductivity {
    /// Always `agent-productivity`.
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
    /// How `productivity_score` is computed.
    pub formula: &'static str,
    /// Score thresholds used for `level`.
    pub thresholds: Thresholds,
    /// Best score first.
    pub agents: Vec<AgentRow>,
    /// How evenly open conversations are spread over available agents.
    pub workload: Workload,
}

use super::exact::{self, rate as ratio};

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn overlap(start: i64, end: i64, r: Range) -> i64 {
    (end.min(r.to) - start.max(r.from)).max(0)
}

fn add_time(t: &mut TimeInStatus, status: AgentStatus, ms: i64) {
    let slot = match status {
        AgentStatus::Online => &mut t.online,
        AgentStatus::Busy => &mut t.busy,
        AgentStatus::Away => &mut t.away,
        AgentStatus::Offline => &mut t.offline,
    };
    *slot += ms;
}

/// Distinct conversations per agent with a message in `r`, by the conversation filters.
pub(crate) fn handled(facts: Option<&AccountFacts>, r: Range, p: &Params) -> HashMap<String, i64> {
    if p.channel.is_none()
        && p.inbox_id.is_none()
        && let Some(counts) = facts.and_then(|f| super::handled_per_agent_unfiltered(f, r))
    {
        return counts;
    }
    let filter = facts.map(|f| super::IdFilter::new(p, &f.names));
    super::handled_per_agent(facts, r, |k| {
        filter.is_some_and(|f| f.wants_conversation(k.channel, k.inbox))
    })
}

/// Agents' presence within a range.
pub(crate) struct Presence {
    /// Milliseconds per status within the range, per agent.
    pub time: HashMap<String, TimeInStatus>,
    /// Team last named by each agent's status events.
    pub teams: HashMap<String, Option<String>>,
    /// Current status and since when, per agent.
    pub now_status: HashMap<String, (AgentStatus, i64)>,
}

/// Time per status within `spent` (which must end at or before `now`), the current
/// stretch counted up to `now`. Closed stretches are cut at UTC midnights, so pieces
/// starting up to a day before the range can overlap it.
pub(crate) fn presence(facts: Option<&AccountFacts>, spent: Range, now: i64) -> Presence {
    // Keyed by the facts' own strings: one hash per agent, no allocation. Each agent's
    // team is the one last named: by its latest status piece, then by its current
    // status.
    let mut agents: HashMap<&str, (TimeInStatus, Option<&str>)> = HashMap::new();
    let mut now_status: HashMap<&str, (AgentStatus, i64)> = HashMap::new();
    if let Some(facts) = facts {
        // Per agent id: time per status, and the (bucket, start) and team of its
        // latest piece.
        type Acc = (TimeInStatus, (i64, i64), u32);
        let mut pieces: Vec<Option<Acc>> = (0..facts.names.len()).map(|_| None).collect();
        facts
            .status_pieces
            .scan(spent.from - DAY_MS, spent.to, |bucket, k, n| {
                let at = (bucket, k.start_ms);
                let e = pieces[k.agent as usize]
                    .get_or_insert_with(|| (TimeInStatus::default(), at, k.team));
                if at >= e.1 {
                    e.1 = at;
                    e.2 = k.team;
                }
                add_time(&mut e.0, k.status, overlap(k.start_ms, k.end_ms, spent) * n);
            });
        for (id, acc) in pieces.into_iter().enumerate() {
            if let Some((time, _, team)) = acc {
                let team = (team != NO_ID).then(|| facts.names.name(team));
                agents.insert(facts.names.name(id as u32), (time, team));
            }
        }
        for (fact, n) in facts.now_of("agent_current_status") {
            if let Fact::AgentCurrentStatus {
                agent_id,
                team_id,
                status,
                since_ms,
                ..
            } = fact
            {
                let e = agents
                    .entry(agent_id)
                    .or_insert_with(|| (TimeInStatus::default(), None));
                e.1 = team_id.as_deref();
                now_status.insert(agent_id, (*status, *since_ms));
                add_time(&mut e.0, *status, overlap(*since_ms, now, spent) * n);
            }
        }
    }
    let mut p = Presence {
        time: HashMap::with_capacity(agents.len()),
        teams: HashMap::with_capacity(agents.len()),
        now_status: now_status
            .into_iter()
            .map(|(a, s)| (a.to_owned(), s))
            .collect(),
    };
    for (agent, (time, team)) in agents {
        p.teams.insert(agent.to_owned(), team.map(str::to_owned));
        p.time.insert(agent.to_owned(), time);
    }
    p
}

/// Computes the section.
pub fn compute(
    snap: &Snapshot,
    p: &Params,
    settings: &AccountSettings,
    range: Range,
) -> AgentProductivity {
    let facts = snap.accounts.get(&p.account_id);
    let previous = range.previous();
    let now = i64::try_from(snap.progress).unwrap_or(i64::MAX);
    let target_ms = i64::from(settings.sla_first_response_s) * 1000;
    // Time is counted up to now: a range reaching into the future is not yet spent.
    let spent = Range {
        from: range.from,
        to: range.to.min(now),
    };

    let Presence {
        mut time,
        teams,
        now_status,
    } = presence(facts, spent, now);
    let mut open: HashMap<&str, i64> = HashMap::new();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.now_of("active_conversation"))
    {
        if let Fact::ActiveConversation {
            holder: Holder::Agent,
            agent_id: Some(agent_id),
            channel,
            inbox_id,
            ..
        } = fact
            && p.wants_conversation(*channel, inbox_id)
        {
            *open.entry(agent_id).or_default() += n;
        }
    }

    let handled_now = handled(facts, range, p);
    let handled_before = handled(facts, previous, p);
    let mut resolved: HashMap<&str, i64> = HashMap::new();
    for (fact, n) in facts
        .into_iter()
        .flat_map(|f| f.range_merged("resolution", range.from, range.to))
    {
        if let Fact::Resolution {
            resolved_by: ResolvedBy::Agent,
            agent_id: Some(agent_id),
            channel,
            inbox_id,
            ..
        } = fact
            && p.wants_conversation(*channel, inbox_id)
        {
            *resolved.entry(agent_id).or_default() += n;
        }
    }
    // count, met, sum per agent id ([`AccountFacts::names`]).
    let mut replies: Vec<(i64, i64, i64)> = Vec::new();
    if let Some(facts) = facts {
        let filter = super::IdFilter::new(p, &facts.names);
        replies.resize(facts.names.len(), (0, 0, 0));
        facts.first_responses.scan(range.from, range.to, |k, n| {
            if k.agent != NO_ID && filter.wants_conversation(k.channel, k.inbox) {
                let e = &mut replies[k.agent as usize];
                e.0 += n;
                e.2 += i64::from(k.seconds) * n;
                if i64::from(k.seconds) * 1000 <= target_ms {
                    e.1 += n;
                }
            }
        });
    }
    let replies_of = |agent: &str| {
        facts
            .and_then(|f| f.names.get(agent))
            .and_then(|id| replies.get(id as usize).copied())
            .unwrap_or_default()
    };

    let names: BTreeSet<&str> = teams
        .keys()
        .map(String::as_str)
        .chain(handled_now.keys().map(String::as_str))
        .chain(open.keys().copied())
        .chain(resolved.keys().copied())
        .collect();
    // Per row, its (sla, resolution) score inputs, in row order.
    let mut scoring = Vec::new();
    let mut agents: Vec<AgentRow> = names
        .into_iter()
        .filter(|a| {
            let team = teams.get(*a).cloned().flatten();
            p.wants_agent(Some(*a), team.as_deref())
        })
        .map(|a| {
            let t = time.remove(a).unwrap_or_default();
            let h = handled_now.get(a).copied().unwrap_or(0);
            let res = resolved.get(a).copied().unwrap_or(0);
            let (count, met, sum) = replies_of(a);
            let active = (t.online + t.busy) / 1000;
            let idle = t.away / 1000;
            let resolution_rate = ratio(res.min(h), h);
            let sla_met_rate = ratio(met, count);
            let utilisation = ratio(active, active + idle);
            scoring.push(((met, count), (res.min(h), h)));
            AgentRow {
                agent_id: a.to_owned(),
                team_id: teams.get(a).cloned().flatten(),
                handled: h,
                handled_previous: handled_before.get(a).copied().unwrap_or(0),
                resolved: res,
                resolution_rate,
                time_in_status_s: TimeInStatus {
                    online: t.online / 1000,
                    busy: t.busy / 1000,
                    away: t.away / 1000,
                    offline: t.offline / 1000,
                },
                active_s: active,
                idle_s: idle,
                utilisation,
                status_now: now_status.get(a).map(|(status, since)| StatusNow {
                    status: status.as_str(),
                    since: format_rfc3339_ms(*since),
                    for_s: (now - since).max(0) / 1000,
                }),
                open_conversations: open.get(a).copied().unwrap_or(0),
                frt_avg_s: exact::tenths(sum, count),
                sla_met_rate,
                productivity_score: 0,
                level: "",
            }
        })
        .collect();
    // The agent score compares each row's chats handled with the most of any row.
    let most = agents.iter().map(|a| a.handled).max().unwrap_or(0);
    for (a, (sla, resolution)) in agents.iter_mut().zip(scoring) {
        a.productivity_score = exact::agent_score(sla, resolution, (a.handled, most));
        a.level = exact::level(a.productivity_score);
    }
    agents.sort_by(|a, b| {
        b.productivity_score
            .cmp(&a.productivity_score)
            .then(b.handled.cmp(&a.handled))
            .then(a.agent_id.cmp(&b.agent_id))
    });

    let available: Vec<i64> = agents
        .iter()
        .filter(|a| {
            a.status_now
                .as_ref()
                .is_some_and(|s| matches!(s.status, "online" | "busy"))
        })
        .map(|a| a.open_conversations)
        .collect();
    let n = available.len() as i64;
    let total: i64 = available.iter().sum();
    // Population variance × n² = n·Σx² − (Σx)², exact in integers; only the square
    // root is floating point.
    let spread = (n * available.iter().map(|x| x * x).sum::<i64>() - total * total) as f64;
    let workload = Workload {
        agents: n,
        open_conversations: total,
        mean: exact::rate(total, n),
        std_dev: (n > 0).then(|| round4(spread.sqrt() / n as f64)),
        coefficient_of_variation: (total > 0).then(|| round4(spread.sqrt() / total as f64)),
    };

    AgentProductivity {
        section: "agent-productivity",
        account_id: p.account_id,
        timezone: settings.timezone.name().to_owned(),
        range: range.into(),
        previous_range: previous.into(),
        progress: snap.progress,
        formula: FORMULA,
        thresholds: Thresholds {
            good: GOOD,
            attention: ATTENTION,
        },
        agents,
        workload,
    }
}
