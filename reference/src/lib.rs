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
pub mod finalization;
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
    // docs/metrics.md: a series of more than 1,000 slots is refused.
    if matches!(name, "conversation-effectiveness" | "customer-load") {
        let slot = input
            .query
            .granularity
            .as_deref()
            .and_then(Slot::parse)
            .unwrap_or_else(|| default_slot(range, input.settings.timezone));
        let points = slot_starts(range, slot, input.settings.timezone).len();
        if points > 1000 {
            return Err(format!("granularity: {} slots, more than 1,000", points));
        }
    }
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
        g.sort_by_key(|e| (e.occurred_at_ms, same_instant_rank(e)));
    }
    groups
}

/// `docs/metrics.md`, edge cases: a conversation's events at the same instant apply in
/// the order a CRM emits them — opened, assigned to the bot, escalated, assigned to an
/// agent, messages, resolved, reopened, intent, CSAT. Other events keep rank 0 (the sort
/// is stable, so their arrival order stands).
fn same_instant_rank(e: &Event) -> u8 {
    use schemas::event::{Assignee, Payload as P};
    match &e.payload {
        P::ConversationOpened { .. } => 0,
        P::ConversationAssigned {
            assignee: Assignee::Bot,
            ..
        } => 1,
        P::ConversationEscalated { .. } => 2,
        P::ConversationAssigned { .. } => 3,
        P::MessageCreated { .. } => 4,
        P::ConversationResolved { .. } => 5,
        P::ConversationReopened { .. } => 6,
        P::IntentDetected { .. } => 7,
        P::CsatSubmitted { .. } => 8,
        _ => 0,
    }
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

// ---------------------------------------------------------------------------
// Conversations, first responses and calendar slots: shared by the sections that
// read them (written once from docs/metrics.md "First response time (FRT)").
// ---------------------------------------------------------------------------

/// One conversation that has been opened (events of conversations never opened are
/// held and count nowhere, `docs/metrics.md#edge-cases`), with its events sorted by
/// event time and the attributes of its first `conversation_opened`.
#[derive(Debug, Clone)]
pub struct Conversation<'a> {
    /// `conversation_id`.
    pub id: String,
    /// Every event naming the conversation (lifecycle, messages, intents, CSAT), sorted.
    pub events: Vec<&'a Event>,
    /// Time of the first `conversation_opened`.
    pub opened_at: i64,
    /// Of the first `conversation_opened`.
    pub channel: Channel,
    /// Of the first `conversation_opened`.
    pub inbox_id: String,
    /// Of the first `conversation_opened`.
    pub customer_id: String,
    /// Of the first `conversation_opened`.
    pub campaign_id: Option<String>,
}

/// The first human reply of a conversation (`docs/metrics.md`, FRT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// When the first `sender = agent` message was written.
    pub at: i64,
    /// Whole seconds from the start of the wait (0 when negative, or when the agent
    /// wrote while the bot held the conversation before any hand-over).
    pub frt_s: i64,
    /// The replying agent.
    pub agent_id: Option<String>,
    /// The team of the latest agent assignment at the reply.
    pub team_id: Option<String>,
}

/// Who holds a conversation (KPI "Active conversations").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Never assigned, or escalated by the bot and not yet taken by an agent.
    Unassigned,
    /// Last assigned to the bot.
    Bot,
    /// Last assigned to a human.
    Agent,
}

/// A conversation's state after some prefix of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Opened or reopened and not resolved since.
    pub active: bool,
    /// Who holds it.
    pub holder: Holder,
    /// The agent of the last assignment to a human, while a human holds it.
    pub agent_id: Option<String>,
    /// `resolved_by` of the latest resolution while it is resolved.
    pub resolved_by: Option<schemas::event::ResolvedBy>,
}

fn is_conversation_event(e: &Event) -> bool {
    use schemas::event::Payload as P;
    matches!(
        e.payload,
        P::ConversationOpened { .. }
            | P::ConversationAssigned { .. }
            | P::ConversationEscalated { .. }
            | P::ConversationResolved { .. }
            | P::ConversationReopened { .. }
            | P::MessageCreated { .. }
            | P::IntentDetected { .. }
            | P::CsatSubmitted { .. }
    )
}

/// Every opened conversation of `events` (already deduplicated), by id.
pub fn conversations<'a>(events: &[&'a Event]) -> Vec<Conversation<'a>> {
    use schemas::event::Payload as P;
    let groups = grouped(events, |e| {
        is_conversation_event(e).then(|| e.conversation_id().unwrap_or_default().to_string())
    });
    let mut out = Vec::new();
    for (id, evs) in groups {
        let first_open = evs.iter().find_map(|e| match &e.payload {
            P::ConversationOpened {
                customer_id,
                channel,
                inbox_id,
                campaign_id,
                ..
            } => Some((
                e.occurred_at_ms,
                customer_id,
                channel,
                inbox_id,
                campaign_id,
            )),
            _ => None,
        });
        if let Some((opened_at, customer_id, channel, inbox_id, campaign_id)) = first_open {
            out.push(Conversation {
                id,
                opened_at,
                channel: *channel,
                inbox_id: inbox_id.clone(),
                customer_id: customer_id.clone(),
                campaign_id: campaign_id.clone(),
                events: evs,
            });
        }
    }
    out
}

/// How a conversation waits for its first human reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Waiting for a human since this instant (the open, or the bot's hand-over).
    Since(i64),
    /// The bot holds it and never handed it over (before any human reply): it owes
    /// no human reply.
    BotHolds,
}

impl Conversation<'_> {
    /// The channel and inbox filters of `q` admit the conversation.
    pub fn admits(&self, q: &Query) -> bool {
        q.channel.is_none_or(|c| c == self.channel)
            && q.inbox_id.as_deref().is_none_or(|i| i == self.inbox_id)
    }

    /// Time of the first `sender = agent` message, with the message's agent.
    fn first_agent_message(&self) -> Option<(i64, Option<String>)> {
        self.events.iter().find_map(|e| match &e.payload {
            schemas::event::Payload::MessageCreated {
                sender: schemas::event::Sender::Agent,
                agent_id,
                ..
            } => Some((e.occurred_at_ms, agent_id.clone())),
            _ => None,
        })
    }

    /// The wait for a human, looking only at events before `until`: the bot took it
    /// (before any human reply) and then the first escalation or agent assignment
    /// after that is the hand-over.
    fn wait_before(&self, until: i64) -> Wait {
        use schemas::event::{Assignee, Payload as P};
        let mut bot_took = false;
        for e in &self.events {
            if e.occurred_at_ms >= until {
                break;
            }
            match &e.payload {
                P::ConversationAssigned {
                    assignee: Assignee::Bot,
                    ..
                } => bot_took = true,
                P::ConversationAssigned {
                    assignee: Assignee::Agent,
                    ..
                }
                | P::ConversationEscalated { .. }
                    if bot_took =>
                {
                    return Wait::Since(e.occurred_at_ms);
                }
                _ => {}
            }
        }
        if bot_took {
            Wait::BotHolds
        } else {
            Wait::Since(self.opened_at)
        }
    }

    /// The wait for the first human reply, over the whole history (for a
    /// conversation nobody answered: over all its events).
    pub fn wait(&self) -> Wait {
        let until = self.first_agent_message().map_or(i64::MAX, |(t, _)| t);
        self.wait_before(until)
    }

    /// The first human reply and its FRT, if any.
    pub fn first_reply(&self) -> Option<Reply> {
        let (at, agent_id) = self.first_agent_message()?;
        let frt_s = match self.wait_before(at) {
            Wait::BotHolds => 0,
            Wait::Since(start) => (at - start).div_euclid(1000).max(0),
        };
        Some(Reply {
            at,
            frt_s,
            agent_id,
            team_id: self.team_at(at).map(str::to_string),
        })
    }

    /// When the first reply is owed (start of the wait + target), for a conversation
    /// nobody has answered; `None` when answered or when the bot holds it.
    pub fn deadline(&self, target_s: u32) -> Option<i64> {
        if self.first_agent_message().is_some() {
            return None;
        }
        match self.wait() {
            Wait::Since(start) => Some(start + i64::from(target_s) * 1000),
            Wait::BotHolds => None,
        }
    }

    /// The team of the latest agent assignment at or before `t` (`i64::MAX`: now).
    pub fn team_at(&self, t: i64) -> Option<&str> {
        use schemas::event::{Assignee, Payload as P};
        let mut team = None;
        for e in &self.events {
            if e.occurred_at_ms > t {
                break;
            }
            if let P::ConversationAssigned {
                assignee: Assignee::Agent,
                team_id,
                ..
            } = &e.payload
            {
                team = team_id.as_deref();
            }
        }
        team
    }

    /// The closing that stands: when the conversation was last resolved, if nothing
    /// reopened it since (`None` while it is open).
    pub fn standing_close(&self) -> Option<i64> {
        use schemas::event::Payload as P;
        let mut closed = None;
        for e in &self.events {
            match &e.payload {
                P::ConversationOpened { .. } | P::ConversationReopened { .. } => closed = None,
                P::ConversationResolved { .. } => closed = Some(e.occurred_at_ms),
                _ => {}
            }
        }
        closed
    }

    /// The state after every event at or before `t` (`i64::MAX`: now).
    pub fn state_at(&self, t: i64) -> State {
        use schemas::event::{Assignee, Payload as P};
        let mut s = State {
            active: false,
            holder: Holder::Unassigned,
            agent_id: None,
            resolved_by: None,
        };
        for e in &self.events {
            if e.occurred_at_ms > t {
                break;
            }
            match &e.payload {
                P::ConversationOpened { .. } | P::ConversationReopened { .. } => {
                    s.active = true;
                    s.resolved_by = None;
                }
                P::ConversationResolved { resolved_by, .. } => {
                    s.active = false;
                    s.resolved_by = Some(*resolved_by);
                }
                P::ConversationAssigned {
                    assignee, agent_id, ..
                } => match assignee {
                    Assignee::Bot => {
                        s.holder = Holder::Bot;
                        s.agent_id = None;
                    }
                    Assignee::Agent => {
                        s.holder = Holder::Agent;
                        s.agent_id = agent_id.clone();
                    }
                },
                P::ConversationEscalated { .. } if s.holder == Holder::Bot => {
                    s.holder = Holder::Unassigned;
                }
                _ => {}
            }
        }
        s
    }

    /// `(time, resolved_by, agent_id)` of every `conversation_resolved`, in order.
    pub fn resolutions(&self) -> Vec<(i64, schemas::event::ResolvedBy, Option<&str>)> {
        self.events
            .iter()
            .filter_map(|e| match &e.payload {
                schemas::event::Payload::ConversationResolved {
                    resolved_by,
                    agent_id,
                    ..
                } => Some((e.occurred_at_ms, *resolved_by, agent_id.as_deref())),
                _ => None,
            })
            .collect()
    }

    /// `(time, agent_id)` of every message with `sender = agent`, in order.
    pub fn agent_messages(&self) -> Vec<(i64, Option<&str>)> {
        self.events
            .iter()
            .filter_map(|e| match &e.payload {
                schemas::event::Payload::MessageCreated {
                    sender: schemas::event::Sender::Agent,
                    agent_id,
                    ..
                } => Some((e.occurred_at_ms, agent_id.as_deref())),
                _ => None,
            })
            .collect()
    }
}

/// The agent and team filters of `q` admit work by `agent_id` in `team_id`.
pub fn admits_agent(q: &Query, agent_id: Option<&str>, team_id: Option<&str>) -> bool {
    q.agent_id.as_deref().is_none_or(|a| Some(a) == agent_id)
        && q.team_id.as_deref().is_none_or(|t| Some(t) == team_id)
}

/// `{count, avg_s, p50_s, p90_s}` of FRT values (seconds): the average rounded half
/// up to 0.1 s, nearest-rank percentiles, `null`s without data.
pub fn frt_stats(values: &[i64]) -> Value {
    let n = values.len();
    let sum: i128 = values.iter().map(|v| i128::from(*v)).sum();
    serde_json::json!({
        "count": n,
        "avg_s": ratio(sum, n as i128, 1),
        "p50_s": nearest_rank(values, 1, 2),
        "p90_s": nearest_rank(values, 9, 10),
    })
}

/// `green` (p90 ≤ target), `yellow` (≤ 2× target), `red`, or `null` without data.
pub fn sla_status(p90: Option<i64>, target_s: u32) -> Value {
    let target = i64::from(target_s);
    match p90 {
        None => Value::Null,
        Some(p) if p <= target => "green".into(),
        Some(p) if p <= 2 * target => "yellow".into(),
        Some(_) => "red".into(),
    }
}

/// `{"from", "to"}` of a range, as the API writes it.
pub fn range_json(r: Range) -> Value {
    serde_json::json!({"from": rfc3339(r.from), "to": rfc3339(r.to)})
}

/// The fields every body starts with: section, account, zone, range, previous range,
/// progress.
pub fn header(input: &Input<'_>, range: Range, section: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("section".into(), section.into());
    m.insert("account_id".into(), input.query.account_id.into());
    m.insert(
        "timezone".into(),
        input.settings.timezone.name().to_string().into(),
    );
    m.insert("range".into(), range_json(range));
    m.insert("previous_range".into(), range_json(range.previous()));
    m.insert("progress".into(), input.progress_ms.into());
    m
}

/// The default slot of a range (`docs/metrics.md`): count the local calendar dates
/// from `from` to the last millisecond before `to`; hours up to two, days up to 62,
/// weeks beyond.
pub fn default_slot(range: Range, tz: Tz) -> Slot {
    let first = local(range.from, tz).date_naive();
    let last = local((range.to - 1).max(range.from), tz).date_naive();
    match (last - first).num_days() + 1 {
        0..=2 => Slot::Hour,
        3..=62 => Slot::Day,
        _ => Slot::Week,
    }
}

/// Trend slots: local clock hours, local days, or local weeks (Monday first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Local clock hours.
    Hour,
    /// Local calendar days.
    Day,
    /// Local weeks, Monday to Sunday.
    Week,
}

impl Slot {
    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Hour => "hour",
            Slot::Day => "day",
            Slot::Week => "week",
        }
    }

    /// `hour`, `day` or `week`.
    pub fn parse(s: &str) -> Option<Slot> {
        match s {
            "hour" => Some(Slot::Hour),
            "day" => Some(Slot::Day),
            "week" => Some(Slot::Week),
            _ => None,
        }
    }

    /// Whether a slot starts at `t` (on the 15-minute grid) in `tz`.
    pub fn starts_at(self, t: i64, tz: Tz) -> bool {
        use chrono::{Datelike, Timelike};
        let here = local(t, tz);
        let before = local(t - QUARTER_MS, tz);
        let new_day = here.date_naive() != before.date_naive();
        match self {
            Slot::Hour => here.minute() == 0 || new_day,
            Slot::Day => new_day,
            Slot::Week => new_day && here.weekday() == chrono::Weekday::Mon,
        }
    }
}

/// The start of the slot (local hour, day or week) that contains `t`: a range's first
/// slot is named by its own start even when the range starts inside it.
pub fn slot_start(t: i64, slot: Slot, tz: Tz) -> i64 {
    let mut s = floor_quarter(t);
    while !slot.starts_at(s, tz) {
        s -= QUARTER_MS;
    }
    s
}

/// The slot starts of `range`: the range's start, then every slot boundary inside it.
pub fn slot_starts(range: Range, slot: Slot, tz: Tz) -> Vec<i64> {
    let mut starts = vec![range.from];
    let mut t = floor_quarter(range.from) + QUARTER_MS;
    while t < range.to {
        if slot.starts_at(t, tz) {
            starts.push(t);
        }
        t += QUARTER_MS;
    }
    starts
}

/// `[start, end)` of every slot of `range`, clipped to the range (the first one
/// starts at `range.from`; name it with [`slot_start`]).
pub fn slots(range: Range, slot: Slot, tz: Tz) -> Vec<Range> {
    let starts = slot_starts(range, slot, tz);
    starts
        .iter()
        .enumerate()
        .map(|(i, &from)| Range {
            from,
            to: starts.get(i + 1).copied().unwrap_or(range.to),
        })
        .collect()
}
