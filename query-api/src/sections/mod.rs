//! Dashboard sections: each turns the view store's facts into one response body.
//! REST (`GET /api/dashboard/{section}`) and WebSocket subscriptions share
//! [`compute`], so both always say the same thing.

pub mod agent_productivity;
pub mod automation_impact;
pub mod business_impact;
pub mod conversation_effectiveness;
pub mod customer_load;
pub mod exact;
pub mod kpi;
pub mod whatsapp_performance;

use std::collections::HashMap;
use std::sync::Arc;

use conversation_effectiveness::Granularity;
use schemas::event::Channel;

use crate::AppState;
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::range::{self, Range};

/// Section names served.
pub const SECTIONS: &[&str] = &[
    "kpi",
    "conversation-effectiveness",
    "whatsapp-performance",
    "customer-load",
    "agent-productivity",
    "automation-impact",
    "business-impact",
];

/// Parameters common to every section, parsed from the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Params {
    /// Account to read.
    pub account_id: u64,
    /// `from` as given.
    pub from: Option<String>,
    /// `to` as given.
    pub to: Option<String>,
    /// Channel filter.
    pub channel: Option<Channel>,
    /// Inbox filter.
    pub inbox_id: Option<String>,
    /// Agent filter.
    pub agent_id: Option<String>,
    /// Team filter.
    pub team_id: Option<String>,
    /// Trend granularity (`hour`, `day` or `week`); by default hours up to two days,
    /// days up to 62 days, weeks beyond.
    pub granularity: Option<Granularity>,
}

impl Params {
    /// Parses query parameters; unknown names are refused so typos do not pass silently.
    ///
    /// # Errors
    /// `400` naming the parameter.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let mut p = Params {
            account_id: 1,
            ..Params::default()
        };
        for (k, v) in query {
            match k.as_str() {
                "account_id" => {
                    p.account_id = v.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "account_id: expected a non-negative integer, got {v:?}"
                        ))
                    })?;
                }
                "from" => p.from = Some(v.clone()),
                "to" => p.to = Some(v.clone()),
                "channel" => {
                    p.channel = Some(Channel::parse(v).ok_or_else(|| {
                        let all: Vec<_> = Channel::ALL.iter().map(|c| c.as_str()).collect();
                        ApiError::bad_request(format!(
                            "channel: unknown value {v:?}, expected one of {}",
                            all.join(", ")
                        ))
                    })?);
                }
                "inbox_id" => p.inbox_id = Some(v.clone()),
                "agent_id" => p.agent_id = Some(v.clone()),
                "team_id" => p.team_id = Some(v.clone()),
                "granularity" => {
                    p.granularity = Some(Granularity::parse(v).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "granularity: unknown value {v:?}, expected one of hour, day, week"
                        ))
                    })?);
                }
                other => return Err(ApiError::bad_request(format!("{other}: unknown parameter"))),
            }
        }
        Ok(p)
    }
}

impl Params {
    /// [`Params::parse`] for a token holder: bound to the token's account and to the
    /// filters its role may use ([`Principal::scope_params`]). REST and live
    /// subscriptions both take their parameters here.
    ///
    /// # Errors
    /// `400` naming a bad parameter, `403` for one outside the role.
    pub fn parse_for(
        query: &HashMap<String, String>,
        principal: Option<&Principal>,
    ) -> Result<Self, ApiError> {
        let mut params = Self::parse(query)?;
        if let Some(p) = principal {
            p.scope_params(&mut params, query.contains_key("account_id"))?;
        }
        Ok(params)
    }

    /// The channel filter admits `channel`.
    pub fn wants_channel(&self, channel: Channel) -> bool {
        self.channel.is_none_or(|c| c == channel)
    }

    /// The channel and inbox filters admit a conversation on `channel` in `inbox_id`.
    pub fn wants_conversation(&self, channel: Channel, inbox_id: &str) -> bool {
        self.wants_channel(channel) && self.inbox_id.as_deref().is_none_or(|i| i == inbox_id)
    }

    /// The agent and team filters admit work by `agent_id` in `team_id`.
    pub fn wants_agent(&self, agent_id: Option<&str>, team_id: Option<&str>) -> bool {
        (self.agent_id.is_none() || self.agent_id.as_deref() == agent_id)
            && (self.team_id.is_none() || self.team_id.as_deref() == team_id)
    }
}

/// `map[key]`, inserted as `V::default()` when missing. Per-fact aggregation keyed by
/// an id the facts carry: an owned key is made only for a new entry, where
/// `entry(key.clone())` allocated once per fact (the top item of the API profile).
pub(crate) fn slot<'m, V: Default, S: std::hash::BuildHasher>(
    map: &'m mut std::collections::HashMap<String, V, S>,
    key: &str,
) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("present: inserted above")
}

/// [`Params`]' filters as interned ids of one account ([`crate::store::Interner`]),
/// for the compact columns: the same decisions as [`Params::wants_conversation`] and
/// [`Params::wants_agent`], with integers compared instead of strings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdFilter {
    channel: Option<Channel>,
    inbox: Option<u32>,
    agent: Option<u32>,
    team: Option<u32>,
}

impl IdFilter {
    pub(crate) fn new(p: &Params, names: &crate::store::Interner) -> Self {
        Self {
            channel: p.channel,
            inbox: names.filter(p.inbox_id.as_deref()),
            agent: names.filter(p.agent_id.as_deref()),
            team: names.filter(p.team_id.as_deref()),
        }
    }

    /// [`Params::wants_conversation`].
    pub(crate) fn wants_conversation(&self, channel: Channel, inbox: u32) -> bool {
        self.channel.is_none_or(|c| c == channel) && self.inbox.is_none_or(|i| i == inbox)
    }

    /// [`Params::wants_agent`] for work by `agent` (never absent) in `team` ([`NO_ID`]
    /// without one).
    ///
    /// [`NO_ID`]: crate::store::NO_ID
    pub(crate) fn wants_agent(&self, agent: u32, team: u32) -> bool {
        self.agent.is_none_or(|a| a == agent) && self.team.is_none_or(|t| t == team)
    }
}

/// Calls `f` with every first response with bucket in `r` that passes `p`'s filters
/// (conversation channel and inbox, agent and team): its bucket, key and multiplicity.
pub(crate) fn scan_first_responses(
    facts: Option<&crate::store::AccountFacts>,
    r: Range,
    p: &Params,
    mut f: impl FnMut(i64, crate::store::FirstResponseKey, i64),
) {
    let Some(facts) = facts else { return };
    let filter = IdFilter::new(p, &facts.names);
    facts
        .first_responses
        .scan_buckets(r.from, r.to, |bucket, k, n| {
            if filter.wants_conversation(k.channel, k.inbox) && filter.wants_agent(k.agent, k.team)
            {
                f(bucket, k, n);
            }
        });
}

/// Distinct conversations per agent among all the `agent_handled` entries in `r`
/// (agents without one are absent), from the pairs index
/// ([`crate::store::AccountFacts::handled_pairs`]): per UTC day one sum per agent
/// instead of a pass over every entry. `None` while the column holds a negative
/// multiplicity, where only [`handled_per_agent`]'s scan is exact.
pub(crate) fn handled_per_agent_unfiltered(
    facts: &crate::store::AccountFacts,
    r: crate::range::Range,
) -> Option<foldhash::HashMap<String, i64>> {
    if !facts.handled.all_positive() {
        return None;
    }
    let mut counts = vec![0i64; facts.names.len()];
    facts.handled_pairs.count(r.from, r.to, |agent, n| {
        counts[agent as usize] += n;
    });
    Some(
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(a, n)| (facts.names.name(a as u32).to_owned(), *n))
            .collect(),
    )
}

/// Distinct conversations per agent among the `agent_handled` entries in `r` that
/// `keep` admits (agents without one are absent). Conversation ids are dense, so the
/// first agent seen per conversation is kept in an array; the few conversations
/// handled by more than one agent go to a set of (agent, conversation) pairs.
pub(crate) fn handled_per_agent(
    facts: Option<&crate::store::AccountFacts>,
    r: crate::range::Range,
    keep: impl Fn(&crate::store::HandledKey) -> bool,
) -> foldhash::HashMap<String, i64> {
    let Some(facts) = facts else {
        return Default::default();
    };
    // owner[conversation]: 1 + the first agent counted for it, 0 for none yet.
    let mut owner = vec![0u32; facts.conversations.len()];
    let mut others: foldhash::HashSet<u64> = Default::default();
    let mut counts = vec![0i64; facts.names.len()];
    facts.handled.scan(r.from, r.to, |k, _| {
        if !keep(&k) {
            return;
        }
        let first = &mut owner[k.conversation as usize];
        let counted = if *first == 0 {
            *first = k.agent + 1;
            true
        } else {
            *first != k.agent + 1
                && others.insert((u64::from(k.agent) << 32) | u64::from(k.conversation))
        };
        if counted {
            counts[k.agent as usize] += 1;
        }
    });
    counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(a, n)| (facts.names.name(a as u32).to_owned(), *n))
        .collect()
}

/// Seconds below which [`Histogram`] counts in a dense array: most first replies
/// (the median is minutes; a 64 KiB array stays in L2).
const DENSE_SECONDS: usize = 8_192;

/// A `seconds → count` histogram filled in any order: values below
/// [`DENSE_SECONDS`] in a dense array grown on demand (an indexed add per fact, where
/// hashing every fact was the top item of the customer-load and
/// conversation-effectiveness profiles), the rest hashed; read in ascending order
/// once at the end ([`Histogram::stats`]).
pub(crate) struct Histogram {
    /// `dense[s]`: count of `s` seconds; at most [`DENSE_SECONDS`] long.
    dense: Vec<i64>,
    /// Longest `dense` may grow: [`DENSE_SECONDS`], or 0 for a sparse-only histogram.
    dense_max: usize,
    /// Counts of the values not in `dense`.
    sparse: foldhash::HashMap<u32, i64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            dense: Vec::new(),
            dense_max: DENSE_SECONDS,
            sparse: Default::default(),
        }
    }
}

impl Histogram {
    /// A histogram that hashes every value: for callers holding many small ones
    /// (an hourly trend's slots), where a dense array each would cost more to clear
    /// than the hashing it saves.
    pub(crate) fn sparse() -> Self {
        Self {
            dense_max: 0,
            ..Self::default()
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, seconds: u32, n: i64) {
        let s = seconds as usize;
        if s < self.dense_max {
            if s >= self.dense.len() {
                let len = (s + 1).max(2 * self.dense.len()).min(self.dense_max);
                self.dense.resize(len, 0);
            }
            self.dense[s] += n;
        } else {
            *self.sparse.entry(seconds).or_default() += n;
        }
    }

    /// The statistics ([`kpi::FrtStats::from_sorted`]) of the values in ascending
    /// order, read in place: the dense counts in order, then the sorted sparse ones
    /// (every sparse value is past every dense one).
    pub(crate) fn stats(self) -> kpi::FrtStats {
        let mut tail: Vec<(u32, i64)> = self.sparse.into_iter().collect();
        tail.sort_unstable_by_key(|(s, _)| *s);
        let dense = self.dense.iter().enumerate().map(|(s, n)| (s as u32, *n));
        kpi::FrtStats::from_ascending(|| dense.clone().chain(tail.iter().copied()))
    }
}

/// A set of dense ids.
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    /// `id` is in the set.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.0[(id / 64) as usize] & (1u64 << (id % 64)) != 0
    }

    /// Adds `id`; whether it was new.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        let new = self.0[word] & bit == 0;
        self.0[word] |= bit;
        new
    }
}

/// Local time per 15-minute bucket of a range, each computed once (a timezone
/// conversion is the dearest step per bucket): its trend slot, local hour and
/// weekday. Buckets off the table (outside the range or off the grid) are computed
/// on demand, the same way.
pub(crate) struct LocalBuckets {
    from: i64,
    tz: chrono_tz::Tz,
    g: Granularity,
    cells: Vec<LocalBucket>,
}

/// One bucket's local time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalBucket {
    /// Start of its local hour, day or week ([`conversation_effectiveness::slot_start`]).
    pub slot: i64,
    /// Local hour, 0..23.
    pub hour: u32,
    /// Local weekday, Monday 0.
    pub weekday: usize,
}

impl LocalBuckets {
    pub(crate) fn new(r: Range, tz: chrono_tz::Tz, g: Granularity) -> Self {
        use chrono::{Offset as _, TimeZone as _};
        const DAY_MS: i64 = 86_400_000;
        const HOUR_MS: i64 = 3_600_000;
        let step = chrono::TimeDelta::milliseconds(schemas::time::BUCKET_MS);
        let mut cells = Vec::with_capacity(
            usize::try_from((r.to - r.from).max(0) / schemas::time::BUCKET_MS + 1).unwrap_or(0),
        );
        let mut midnight = None;
        // (local day number, its slot) of the last bucket: a day or week slot is the
        // same for every bucket of a local date.
        let mut day_slot: Option<(i64, i64)> = None;
        let mut utc = chrono::DateTime::from_timestamp_millis(r.from)
            .unwrap_or_default()
            .naive_utc();
        let mut t = r.from;
        while t < r.to {
            // The zone's offset at `t`, looked up for every bucket (it may change at
            // any bucket); the rest is arithmetic on the local time in ms.
            let offset = tz.offset_from_utc_datetime(&utc).fix().local_minus_utc();
            let local_ms = t + i64::from(offset) * 1000;
            let day = local_ms.div_euclid(DAY_MS);
            let slot = match g {
                Granularity::Hour => t - local_ms.rem_euclid(HOUR_MS),
                Granularity::Day | Granularity::Week => match day_slot {
                    Some((d, slot)) if d == day => slot,
                    _ => {
                        let local = conversation_effectiveness::local_at(t, tz);
                        let slot = conversation_effectiveness::slot_start_at(
                            t,
                            &local,
                            tz,
                            g,
                            &mut midnight,
                        );
                        day_slot = Some((day, slot));
                        slot
                    }
                },
            };
            cells.push(LocalBucket {
                slot,
                hour: (local_ms.rem_euclid(DAY_MS) / HOUR_MS) as u32,
                // 1970-01-01 was a Thursday (Monday 0).
                weekday: (day + 3).rem_euclid(7) as usize,
            });
            t += schemas::time::BUCKET_MS;
            utc += step;
        }
        Self {
            from: r.from,
            tz,
            g,
            cells,
        }
    }

    fn at(
        t: i64,
        tz: chrono_tz::Tz,
        g: Granularity,
        midnight: &mut Option<(chrono::NaiveDate, i64)>,
    ) -> LocalBucket {
        use chrono::{Datelike as _, Timelike as _};
        let local = conversation_effectiveness::local_at(t, tz);
        LocalBucket {
            slot: conversation_effectiveness::slot_start_at(t, &local, tz, g, midnight),
            hour: local.hour(),
            weekday: local.weekday().num_days_from_monday() as usize,
        }
    }

    /// The slots of the range's buckets, in bucket order (with repeats).
    pub(crate) fn slots(&self) -> impl Iterator<Item = i64> + '_ {
        self.cells.iter().map(|c| c.slot)
    }

    /// The index of `bucket` in the table (its cell among the range's buckets), when
    /// it is one of them.
    pub(crate) fn index(&self, bucket: i64) -> Option<usize> {
        let offset = bucket - self.from;
        (offset >= 0 && offset % schemas::time::BUCKET_MS == 0)
            .then_some((offset / schemas::time::BUCKET_MS) as usize)
            .filter(|i| *i < self.cells.len())
    }

    /// The range's buckets' local times, in bucket order.
    pub(crate) fn cells(&self) -> &[LocalBucket] {
        &self.cells
    }

    pub(crate) fn get(&self, bucket: i64) -> LocalBucket {
        let offset = bucket - self.from;
        if offset >= 0
            && offset % schemas::time::BUCKET_MS == 0
            && let Some(c) = self.cells.get((offset / schemas::time::BUCKET_MS) as usize)
        {
            return *c;
        }
        Self::at(bucket, self.tz, self.g, &mut None)
    }
}

/// Most points one series of a body may have (the conversation-effectiveness FRT
/// trend, customer-load `opened`): a range × granularity giving more is refused with
/// `400`. Every default granularity stays far within it (hours up to two days: at most
/// 74 points; days up to 62 days: 64; weeks up to the longest range, 400 days: 59), and
/// so does `day` over 400 days (402); `hour` is accepted up to 41 days.
pub const MAX_POINTS: usize = 1_000;

/// Sections whose bodies hold a series over the range, one point per slot.
const SERIES_SECTIONS: &[&str] = &["conversation-effectiveness", "customer-load"];

/// Points of a series over `r` at granularity `g` in `tz`: its distinct local slots,
/// counted bucket by bucket as the sections lay them out ([`LocalBuckets`]). Stops
/// counting past `stop_after`.
fn series_points(r: Range, tz: chrono_tz::Tz, g: Granularity, stop_after: usize) -> usize {
    let (mut count, mut last, mut midnight) = (0, None, None);
    let mut t = r.from;
    while t < r.to && count <= stop_after {
        let local = conversation_effectiveness::local_at(t, tz);
        let slot = conversation_effectiveness::slot_start_at(t, &local, tz, g, &mut midnight);
        if last != Some(slot) {
            count += 1;
            last = Some(slot);
        }
        t += schemas::time::BUCKET_MS;
    }
    count
}

/// Refuses a series of more than [`MAX_POINTS`] points.
///
/// # Errors
/// `400` naming `granularity`, the limit and a coarser granularity to use.
fn check_points(
    section: &str,
    params: &Params,
    r: Range,
    tz: chrono_tz::Tz,
) -> Result<(), ApiError> {
    if !SERIES_SECTIONS.contains(&section) {
        return Ok(());
    }
    let g = params
        .granularity
        .unwrap_or_else(|| Granularity::default_for(r, tz));
    let (name, slot_ms, coarser) = match g {
        Granularity::Hour => ("hour", 3_600_000, "; use granularity=day"),
        Granularity::Day => ("day", 86_400_000, "; use granularity=week"),
        Granularity::Week => ("week", 7 * 86_400_000, ""),
    };
    // A slot is at least half its nominal length (a local hour of a half-hour DST
    // shift, a 23-hour day) and the edges add one each: below this bound the series
    // fits without looking at the calendar.
    let most = (r.to - r.from) / (slot_ms / 2) + 2;
    if usize::try_from(most).unwrap_or(usize::MAX) <= MAX_POINTS
        || series_points(r, tz, g, MAX_POINTS) <= MAX_POINTS
    {
        return Ok(());
    }
    let about = (r.to - r.from)
        .div_euclid(slot_ms)
        .max(MAX_POINTS as i64 + 1);
    Err(ApiError::bad_request(format!(
        "granularity: {name} over this range gives about {about} points, at most {MAX_POINTS}{coarser}"
    )))
}

/// Computes a section body at the store's latest complete timestamp.
///
/// # Errors
/// `404` for an unknown section, `400` for bad parameters.
pub fn compute(
    app: &AppState,
    section: &str,
    params: &Params,
    now_ms: i64,
) -> Result<serde_json::Value, ApiError> {
    compute_for(app, section, params, now_ms, None)
}

/// [`compute`] for a token holder: the body without the agent-level rows the
/// principal may not see (see [`crate::auth`]). `params` must already be scoped to the
/// principal ([`Principal::scope_params`]). Both the body and the agents' teams are
/// read from one snapshot, and so is the check that an `agent_id` filter names an
/// agent the principal may see ([`Principal::scope_agent`]).
///
/// # Errors
/// As [`compute`]; `403` for an `agent_id` outside the principal's agents.
pub fn compute_for(
    app: &AppState,
    section: &str,
    params: &Params,
    now_ms: i64,
    principal: Option<&Principal>,
) -> Result<serde_json::Value, ApiError> {
    compute_shared(app, section, params, now_ms, principal).map(crate::bodies::Body::into_value)
}

/// [`compute_for`] as the shared body itself: everyone asking for the same view of
/// the same state (and, for a redacted body, with the same
/// [`Principal::redaction_scope`]) gets the same [`Arc`] while it is cached or held
/// (see [`crate::bodies`]). Live subscriptions keep this, never a copy.
///
/// # Errors
/// As [`compute`].
pub fn compute_shared(
    app: &AppState,
    section: &str,
    params: &Params,
    now_ms: i64,
    principal: Option<&Principal>,
) -> Result<Arc<crate::bodies::Body>, ApiError> {
    let (settings, range) = resolve(app, &[section], params, now_ms)?;
    let scope = principal
        .map(Principal::redaction_scope)
        .unwrap_or_default();
    app.store.read(|snap| {
        // The agents' teams, the `agent_id` check and the redaction all read this
        // one snapshot.
        let teams = scoped_teams(snap, params, principal)?;
        let compute = || section_body(snap, section, params, &settings, range, now_ms);
        let redact = |body: &mut serde_json::Value| {
            if let (Some(principal), Some(teams)) = (principal, &teams) {
                principal.redact(body, teams);
            }
        };
        let Some(cache) = &app.bodies else {
            let mut body = compute()?;
            redact(&mut body);
            return Ok(crate::bodies::Body::new(body));
        };
        let whole_key = crate::bodies::Key {
            section: section.to_owned(),
            params: params.clone(),
            range: (range.from, range.to),
            now_bucket: schemas::time::floor_to_bucket(now_ms),
            version: snap.version,
            settings: serde_json::to_string(&settings).unwrap_or_default(),
            scope: String::new(),
        };
        let whole = match cache.get(&whole_key) {
            Some(body) => body,
            None => cache.put(whole_key.clone(), compute()?),
        };
        if scope.is_empty() {
            return Ok(whole);
        }
        let key = crate::bodies::Key { scope, ..whole_key };
        if let Some(body) = cache.get(&key) {
            return Ok(body);
        }
        let mut body = (*whole).clone();
        redact(&mut body);
        Ok(cache.put(key, body))
    })
}

/// The account's settings and the range of `params`, once the range fits every one
/// of `sections` (their series' point limits).
fn resolve(
    app: &AppState,
    sections: &[&str],
    params: &Params,
    now_ms: i64,
) -> Result<(crate::settings::AccountSettings, Range), ApiError> {
    let settings = app.settings.account(params.account_id);
    let range: Range = range::resolve(
        params.from.as_deref(),
        params.to.as_deref(),
        settings.timezone,
        now_ms,
    )?;
    for section in sections {
        check_points(section, params, range, settings.timezone)?;
    }
    Ok((settings, range))
}

/// For a token holder: the agents' teams in `snap`, once the `agent_id` filter is
/// checked against them (`None` without a principal).
fn scoped_teams(
    snap: &crate::store::Snapshot,
    params: &Params,
    principal: Option<&Principal>,
) -> Result<Option<HashMap<String, String>>, ApiError> {
    let Some(principal) = principal else {
        return Ok(None);
    };
    let teams = auth::agent_teams(snap, params.account_id);
    principal.scope_agent(params, &teams)?;
    Ok(Some(teams))
}

/// Several sections' bodies for one query, all computed from **one** snapshot, so they
/// agree with each other to the event (the executive summary reads five). Scoped and
/// redacted for `principal` as [`compute_for`] is; never cached.
///
/// # Errors
/// As [`compute`].
pub fn compute_together(
    app: &AppState,
    sections: &[&str],
    params: &Params,
    now_ms: i64,
    principal: Option<&Principal>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let (settings, range) = resolve(app, sections, params, now_ms)?;
    app.store.read(|snap| {
        let teams = scoped_teams(snap, params, principal)?;
        sections
            .iter()
            .map(|section| {
                let mut body = section_body(snap, section, params, &settings, range, now_ms)?;
                if let (Some(principal), Some(teams)) = (principal, &teams) {
                    principal.redact(&mut body, teams);
                }
                Ok(body)
            })
            .collect()
    })
}

/// One section's body, computed from `snap`.
fn section_body(
    snap: &crate::store::Snapshot,
    section: &str,
    params: &Params,
    settings: &crate::settings::AccountSettings,
    range: Range,
    now_ms: i64,
) -> Result<serde_json::Value, ApiError> {
    match section {
        "kpi" => serde_json::to_value(kpi::compute(snap, params, settings, range, now_ms)),
        "whatsapp-performance" => {
            serde_json::to_value(whatsapp_performance::compute(snap, params, settings, range))
        }
        "automation-impact" => {
            serde_json::to_value(automation_impact::compute(snap, params, settings, range))
        }
        "business-impact" => {
            serde_json::to_value(business_impact::compute(snap, params, settings, range))
        }
        "agent-productivity" => {
            serde_json::to_value(agent_productivity::compute(snap, params, settings, range))
        }
        "customer-load" => serde_json::to_value(customer_load::compute(
            snap,
            params,
            settings,
            range,
            params.granularity,
        )),
        "conversation-effectiveness" => serde_json::to_value(conversation_effectiveness::compute(
            snap,
            params,
            settings,
            range,
            params.granularity,
        )),
        other => {
            return Err(ApiError::NotFound(format!(
                "section: unknown section {other:?}, expected one of {}",
                SECTIONS.join(", ")
            )));
        }
    }
    .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod compact_tests;

#[cfg(test)]
mod pairs_tests;

#[cfg(test)]
mod points_tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;

    fn app() -> AppState {
        let mut app = AppState::new(Arc::new(crate::store::ViewStore::default()));
        app.clock = schemas::Clock::starting_at_rfc3339("2026-11-20T12:00:00Z").unwrap();
        app
    }

    fn ask(
        app: &AppState,
        section: &str,
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value, ApiError> {
        let query: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let params = Params::parse(&query)?;
        compute(app, section, &params, app.clock.now_ms())
    }

    fn points(body: &serde_json::Value) -> usize {
        body.get("frt_trend")
            .or_else(|| body.get("opened"))
            .and_then(|s| s["points"].as_array())
            .map_or(0, Vec::len)
    }

    #[test]
    fn hourly_over_400_days_is_refused_naming_the_limit_and_the_parameter() {
        let app = app();
        for section in SERIES_SECTIONS {
            let err = ask(
                &app,
                section,
                &[
                    ("from", "2025-10-16"),
                    ("to", "2026-11-20"),
                    ("granularity", "hour"),
                ],
            )
            .unwrap_err();
            let message = err.to_string();
            assert_eq!(err.code(), "bad_request");
            assert!(
                message.starts_with("granularity: hour over this range gives about 9")
                    && message.contains("points, at most 1000; use granularity=day"),
                "{message}"
            );
        }
        // Sections without a series take any granularity.
        ask(
            &app,
            "kpi",
            &[
                ("from", "2025-10-16"),
                ("to", "2026-11-20"),
                ("granularity", "hour"),
            ],
        )
        .unwrap();
    }

    #[test]
    fn every_default_granularity_and_day_over_400_days_stay_within_the_limit() {
        let app = app();
        for zone in [
            "UTC",
            "Europe/Berlin",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
        ] {
            let mut app = app.clone();
            let mut accounts = crate::AccountsConfig::default();
            accounts.defaults.timezone = zone.parse().unwrap();
            app.settings = crate::Settings::new(accounts);
            for section in SERIES_SECTIONS {
                for (from, to, granularity) in [
                    ("2026-10-23T00:15:00Z", "2026-10-25T23:45:00Z", None), // < 3 days: hours
                    ("2026-09-20", "2026-11-21", None),                     // 62 days: days
                    ("2025-11-16", "2026-12-21", None),                     // 400 days: weeks
                    ("2025-11-16", "2026-12-21", Some("day")),
                    ("2025-11-16", "2026-12-21", Some("week")),
                    ("2026-10-10", "2026-11-20", Some("hour")), // 41 days
                ] {
                    let mut query = vec![("from", from), ("to", to)];
                    query.extend(granularity.map(|g| ("granularity", g)));
                    let body = ask(&app, section, &query)
                        .unwrap_or_else(|e| panic!("{zone} {section} {query:?}: {e}"));
                    assert!(
                        points(&body) <= MAX_POINTS && points(&body) > 0,
                        "{zone} {section} {query:?}"
                    );
                }
                // One more day of hours is past the limit.
                let err = ask(
                    &app,
                    section,
                    &[
                        ("from", "2026-10-09"),
                        ("to", "2026-11-20"),
                        ("granularity", "hour"),
                    ],
                )
                .unwrap_err();
                assert_eq!(err.code(), "bad_request", "{zone}");
            }
        }
    }

    #[test]
    fn the_count_is_the_number_of_points_a_body_has() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        // 2026-10-25 has 25 local hours in Berlin.
        let r = crate::range::resolve(Some("2026-10-25"), None, tz, 0).unwrap();
        assert_eq!(series_points(r, tz, Granularity::Hour, MAX_POINTS), 25);
        let r = crate::range::resolve(Some("2026-10-01"), Some("2026-11-01"), tz, 0).unwrap();
        assert_eq!(series_points(r, tz, Granularity::Day, MAX_POINTS), 31);
        assert_eq!(
            series_points(r, tz, Granularity::Hour, 100),
            101,
            "stops past the bound"
        );
    }
}

#[cfg(test)]
mod histogram_tests {
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    use super::{DENSE_SECONDS, Histogram};
    use crate::sections::kpi::FrtStats;

    proptest! {
        /// Dense, sparse or both (values on either side of [`DENSE_SECONDS`]), in any
        /// order, with counts that cancel: the statistics of the summed `BTreeMap`.
        #[test]
        fn histogram_stats_equal_those_of_the_summed_map(
            values in proptest::collection::vec(
                (prop_oneof![0..40u32, DENSE_SECONDS as u32 - 3..DENSE_SECONDS as u32 + 3, 0..100_000u32], -2..=3i64),
                0..200,
            ),
            sparse in any::<bool>(),
        ) {
            let mut hist = if sparse { Histogram::sparse() } else { Histogram::default() };
            let mut want: BTreeMap<u32, i64> = BTreeMap::new();
            for &(s, n) in &values {
                hist.add(s, n);
                *want.entry(s).or_default() += n;
            }
            prop_assert_eq!(hist.stats(), FrtStats::from_histogram(&want));
        }
    }
}

#[cfg(test)]
mod local_buckets_tests {
    use super::{Granularity, LocalBuckets};
    use crate::range::Range;

    /// The table computed by offset arithmetic says, bucket by bucket, what a full
    /// timezone conversion of each bucket says, across DST changes (both ways, and
    /// Lord Howe's half hour) and in +05:45 and -09:30 zones.
    #[test]
    fn the_table_equals_a_conversion_per_bucket() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        for zone in [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
            "Pacific/Marquesas",
            "Pacific/Chatham",
        ] {
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            for (from, to) in [
                ("2026-03-20T00:00:00Z", "2026-04-10T00:00:00Z"),
                ("2026-09-25T06:15:00Z", "2026-11-05T21:45:00Z"),
            ] {
                let r = Range {
                    from: at(from),
                    to: at(to),
                };
                for g in [Granularity::Hour, Granularity::Day, Granularity::Week] {
                    let table = LocalBuckets::new(r, tz, g);
                    let mut t = r.from;
                    let mut n = 0;
                    while t < r.to {
                        let want = LocalBuckets::at(t, tz, g, &mut None);
                        let got = table.get(t);
                        assert_eq!(
                            (got.slot, got.hour, got.weekday),
                            (want.slot, want.hour, want.weekday),
                            "{zone} {g:?} at {t}"
                        );
                        t += schemas::time::BUCKET_MS;
                        n += 1;
                    }
                    assert_eq!(table.cells.len(), n);
                }
            }
        }
    }
}
