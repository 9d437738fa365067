//! The view store: the fact multiset at the latest complete pipeline timestamp.
//!
//! Fed with [`MetricBatch`]es (in process from the pipeline, or later from
//! `crm.metrics.v1`), each applied atomically under a write lock, so a reader holding
//! the read lock sees the state at exactly one `progress` and never half of a batch.
//! Facts are indexed by kind and, when they carry a time bucket, by bucket, so a range
//! query touches only the facts of the kind it reads in the buckets of its range.
//!
//! Pre-aggregation: for the kinds in [`ROLLED_UP`], every fact is also kept in a *day
//! rollup*: the same fact with its bucket set to the start of its UTC day, summed. A
//! query that does not need the 15-minute bucket ([`AccountFacts::range_merged`]) reads
//! the whole UTC days inside its range from the rollups and only the edges bucket by
//! bucket. Facts that differ only by bucket collapse into one per day, so a 90-day
//! query reads ~96× fewer entries for counters, and facts that carry an id still show
//! every id once per day. Sums are
//! unchanged: a rollup entry's multiplicity is the sum of its buckets'. The rollups are
//! zone-free (every local day boundary is still a bucket boundary), so they stay exact
//! in any zone and across a timezone change.
//!
//! Compact columns: the facts behind exact distinct counts (`agent_handled`,
//! `customer_conversation`) carry a conversation or customer id each, and those of
//! `first_response`, `conversation_opened`, `automation_conversation` and
//! `agent_status_piece` are about one per conversation or status change, so these six
//! kinds are most of what a long range reads. They are not kept as [`Fact`]s: their
//! ids (agent, team, inbox, campaign, intent; conversation; customer) are interned to
//! dense `u32`s per account ([`Interner`]) and each fact becomes a small `Copy` key
//! ([`HandledKey`], [`CustomerKey`], [`FirstResponseKey`], [`OpenedKey`],
//! [`AutomationKey`], [`PieceKey`]). By bucket they are kept per UTC day in one
//! contiguous `Vec` ([`Series`]); the first five also by UTC day, with the same rollup
//! rule as above ([`Columns`]). A 90-day scan is a pass over small integer records (a
//! 90-day distinct count goes into dense per-id arrays), with no string hashed or
//! compared; filters are translated to ids once per query ([`crate::sections`]).
//!
//! Pairs indexes: the (agent, conversation) pairs of `agent_handled` and the customers
//! of `customer_conversation` are also kept in a [`DistinctPairs`], updated from the
//! entries that appear and go, so an unfiltered distinct count over a long range is a
//! sum per UTC day and group instead of a pass over the entries. It agrees with the
//! rollups while no entry is negative ([`Series::all_positive`]); readers check.

use foldhash::HashMap;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::RwLock;

use schemas::event::{AgentStatus, Channel, ResolvedBy};
use schemas::metrics::{Fact, MetricBatch};
use tokio::sync::watch;

mod distinct;
pub use distinct::DistinctPairs;

/// Length of a rollup day.
const DAY_MS: i64 = 86_400_000;

/// Start of the UTC day of `ms`.
fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// The whole UTC days inside `[from, to)`, as `[first, last)`, when there is one.
/// Rollup reads take these from the day rollups and the edges bucket by bucket.
fn whole_days(from: i64, to: i64) -> Option<(i64, i64)> {
    let first = day_of(from + DAY_MS - 1);
    let last = day_of(to);
    (first < last).then_some((first, last))
}

/// Adds `diff` to `key` in the map of `at` in `series`, forgetting the map when it
/// empties.
fn add_at<K: Eq + Hash>(series: &mut BTreeMap<i64, HashMap<K, i64>>, at: i64, key: K, diff: i64) {
    let map = series.entry(at).or_default();
    add(map, key, diff);
    if map.is_empty() {
        series.remove(&at);
    }
}

/// Kinds kept in day rollups: those read by queries that ignore the bucket.
pub const ROLLED_UP: &[&str] = &[
    "whatsapp_outcome",
    "message",
    "resolution",
    "ticket_resolved",
    "lead",
    "deal_won",
    "whatsapp_message",
    "broadcast",
];

/// Adds `diff` to `fact` in `map`, forgetting it when it returns to zero (O(1)).
fn add<K: Eq + Hash>(map: &mut HashMap<K, i64>, fact: K, diff: i64) {
    match map.entry(fact) {
        Entry::Occupied(mut e) => {
            *e.get_mut() += diff;
            if *e.get() == 0 {
                // Keep maps small: a fact whose multiplicity returns to zero is gone.
                e.remove();
            }
        }
        Entry::Vacant(e) => {
            if diff != 0 {
                e.insert(diff);
            }
        }
    }
}

/// One account's facts.
#[derive(Debug, Default)]
pub struct AccountFacts {
    /// Facts without a bucket ("now" metrics): kind → fact → multiplicity.
    pub now: HashMap<&'static str, HashMap<Fact, i64>>,
    /// Bucketed facts: kind → bucket start (ms) → fact → multiplicity.
    pub buckets: HashMap<&'static str, BTreeMap<i64, HashMap<Fact, i64>>>,
    /// Day rollups of the kinds in [`ROLLED_UP`]: kind → UTC day start → fact with its
    /// bucket set to the day → multiplicity.
    pub days: HashMap<&'static str, BTreeMap<i64, HashMap<Fact, i64>>>,
    /// The `awaiting_first_response` facts not closed (`resolved_at_ms` is `None`):
    /// conversations waiting for a first human reply now. Kept beside the bucketed
    /// copy so "waiting now" reads the few open ones, not every unanswered
    /// conversation in history.
    pub awaiting_open: HashMap<Fact, i64>,
    /// Agent, team and inbox ids of the compact columns.
    pub names: Interner,
    /// Conversation ids of the compact columns.
    pub conversations: Interner,
    /// Customer ids of the compact columns.
    pub customers: Interner,
    /// `agent_handled` facts, compact (not in `buckets` or `days`).
    pub handled: Columns<HandledKey>,
    /// `customer_conversation` facts, compact (not in `buckets` or `days`).
    pub customer_conversations: Columns<CustomerKey>,
    /// `first_response` facts, compact (not in `buckets` or `days`).
    pub first_responses: Columns<FirstResponseKey>,
    /// `conversation_opened` facts, compact (not in `buckets` or `days`).
    pub opened: Columns<OpenedKey>,
    /// `automation_conversation` facts, compact (not in `buckets` or `days`).
    pub automation: Columns<AutomationKey>,
    /// `agent_status_piece` facts, compact, by bucket only (not in `buckets`).
    pub status_pieces: Series<PieceKey>,
    /// The (agent, conversation) pairs of `handled`, for distinct conversations per
    /// agent without a conversation filter (groups are agent ids).
    pub handled_pairs: DistinctPairs,
    /// The customers of `customer_conversations`, for distinct customers without a
    /// conversation filter: group [`ANY_CONVERSATION`] for every entry,
    /// [`FIRST_CONVERSATION`] for those of a customer's first conversation.
    pub customer_pairs: DistinctPairs,
}

/// [`AccountFacts::customer_pairs`]' group of every `customer_conversation` entry.
pub const ANY_CONVERSATION: u32 = 0;
/// [`AccountFacts::customer_pairs`]' group of the entries of a customer's first
/// conversation ever.
pub const FIRST_CONVERSATION: u32 = 1;

impl AccountFacts {
    fn apply(&mut self, fact: Fact, diff: i64) {
        match &fact {
            Fact::AgentHandled {
                bucket,
                agent_id,
                team_id,
                conversation_id,
                channel,
                inbox_id,
                ..
            } => {
                let key = HandledKey {
                    agent: self.names.intern(agent_id),
                    team: self.names.intern_opt(team_id.as_deref()),
                    conversation: self.conversations.intern(conversation_id),
                    inbox: self.names.intern(inbox_id),
                    channel: *channel,
                };
                let change = self.handled.apply(*bucket, key, diff);
                if change != 0 {
                    self.handled_pairs
                        .apply(*bucket, key.agent, key.conversation, change);
                }
                return;
            }
            Fact::CustomerConversation {
                bucket,
                customer_id,
                first,
                channel,
                inbox_id,
                ..
            } => {
                let key = CustomerKey {
                    customer: self.customers.intern(customer_id),
                    inbox: self.names.intern(inbox_id),
                    channel: *channel,
                    first: *first,
                };
                let change = self.customer_conversations.apply(*bucket, key, diff);
                if change != 0 {
                    self.customer_pairs
                        .apply(*bucket, ANY_CONVERSATION, key.customer, change);
                    if key.first {
                        self.customer_pairs.apply(
                            *bucket,
                            FIRST_CONVERSATION,
                            key.customer,
                            change,
                        );
                    }
                }
                return;
            }
            Fact::FirstResponse {
                bucket,
                seconds,
                channel,
                inbox_id,
                agent_id,
                team_id,
                ..
            } => {
                let key = FirstResponseKey {
                    seconds: *seconds,
                    agent: self.names.intern_opt(agent_id.as_deref()),
                    team: self.names.intern_opt(team_id.as_deref()),
                    inbox: self.names.intern(inbox_id),
                    channel: *channel,
                };
                self.first_responses.apply(*bucket, key, diff);
                return;
            }
            Fact::ConversationOpened {
                bucket,
                resolved,
                channel,
                inbox_id,
                campaign_id,
                ..
            } => {
                let key = OpenedKey {
                    campaign: self.names.intern_opt(campaign_id.as_deref()),
                    inbox: self.names.intern(inbox_id),
                    channel: *channel,
                    resolved: *resolved,
                };
                self.opened.apply(*bucket, key, diff);
                return;
            }
            Fact::AutomationConversation {
                bucket,
                channel,
                inbox_id,
                bot,
                escalated,
                human,
                resolved_by,
                auto_reply,
                intent,
                csat,
                handling_s,
                ..
            } => {
                let key = AutomationKey {
                    inbox: self.names.intern(inbox_id),
                    intent: self.names.intern_opt(intent.as_deref()),
                    handling_s: *handling_s,
                    channel: *channel,
                    bot: *bot,
                    escalated: *escalated,
                    human: *human,
                    resolved_by: *resolved_by,
                    auto_reply: *auto_reply,
                    csat: *csat,
                };
                self.automation.apply(*bucket, key, diff);
                return;
            }
            Fact::AgentStatusPiece {
                bucket,
                agent_id,
                team_id,
                status,
                start_ms,
                end_ms,
                ..
            } => {
                let key = PieceKey {
                    start_ms: *start_ms,
                    end_ms: *end_ms,
                    agent: self.names.intern(agent_id),
                    team: self.names.intern_opt(team_id.as_deref()),
                    status: *status,
                };
                self.status_pieces.apply(*bucket, key, diff);
                return;
            }
            _ => {}
        }
        let kind = fact.kind();
        let Some(b) = fact.bucket() else {
            add(self.now.entry(kind).or_default(), fact, diff);
            return;
        };
        if let Fact::AwaitingFirstResponse {
            resolved_at_ms: None,
            ..
        } = &fact
        {
            add(&mut self.awaiting_open, fact.clone(), diff);
        }
        if ROLLED_UP.contains(&kind) {
            let day = day_of(b);
            add_at(
                self.days.entry(kind).or_default(),
                day,
                fact.with_bucket(day),
                diff,
            );
        }
        add_at(self.buckets.entry(kind).or_default(), b, fact, diff);
    }

    /// Calls `f` with every fact of the account (`account`) and its multiplicity, the
    /// compact columns turned back into [`Fact`]s: the fact multiset the store holds,
    /// each fact once (the day rollups and `awaiting_open` are copies and are skipped).
    /// A checkpoint writes it; applying it to an empty store gives the same store.
    pub fn for_each_fact(&self, account_id: u64, mut f: impl FnMut(Fact, i64)) {
        for facts in self.now.values() {
            for (fact, n) in facts {
                f(fact.clone(), *n);
            }
        }
        for series in self.buckets.values() {
            for facts in series.values() {
                for (fact, n) in facts {
                    f(fact.clone(), *n);
                }
            }
        }
        self.handled.buckets.for_each(|bucket, k, n| {
            f(self.fact_of(account_id, bucket, CompactKey::Handled(k)), n);
        });
        self.customer_conversations
            .buckets
            .for_each(|bucket, k, n| {
                f(self.fact_of(account_id, bucket, CompactKey::Customer(k)), n);
            });
        self.first_responses.buckets.for_each(|bucket, k, n| {
            f(self.fact_of(account_id, bucket, CompactKey::First(k)), n);
        });
        self.opened.buckets.for_each(|bucket, k, n| {
            f(self.fact_of(account_id, bucket, CompactKey::Opened(k)), n);
        });
        self.automation.buckets.for_each(|bucket, k, n| {
            f(
                self.fact_of(account_id, bucket, CompactKey::Automation(k)),
                n,
            );
        });
        self.status_pieces.for_each(|bucket, k, n| {
            f(self.fact_of(account_id, bucket, CompactKey::Piece(k)), n);
        });
    }

    /// A compact column's entry back as the fact it stands for, of `account_id`, in
    /// `bucket`.
    pub fn fact_of(&self, account_id: u64, bucket: i64, key: CompactKey) -> Fact {
        let name = |id: u32| self.names.name(id).to_owned();
        let opt = |id: u32| (id != NO_ID).then(|| name(id));
        match key {
            CompactKey::Handled(k) => Fact::AgentHandled {
                account_id,
                bucket,
                agent_id: name(k.agent),
                team_id: opt(k.team),
                conversation_id: self.conversations.name(k.conversation).to_owned(),
                channel: k.channel,
                inbox_id: name(k.inbox),
            },
            CompactKey::Customer(k) => Fact::CustomerConversation {
                account_id,
                bucket,
                customer_id: self.customers.name(k.customer).to_owned(),
                first: k.first,
                channel: k.channel,
                inbox_id: name(k.inbox),
            },
            CompactKey::First(k) => Fact::FirstResponse {
                account_id,
                bucket,
                seconds: k.seconds,
                channel: k.channel,
                inbox_id: name(k.inbox),
                agent_id: opt(k.agent),
                team_id: opt(k.team),
            },
            CompactKey::Opened(k) => Fact::ConversationOpened {
                account_id,
                bucket,
                resolved: k.resolved,
                channel: k.channel,
                inbox_id: name(k.inbox),
                campaign_id: opt(k.campaign),
            },
            CompactKey::Automation(k) => Fact::AutomationConversation {
                account_id,
                bucket,
                channel: k.channel,
                inbox_id: name(k.inbox),
                bot: k.bot,
                escalated: k.escalated,
                human: k.human,
                resolved_by: k.resolved_by,
                auto_reply: k.auto_reply,
                intent: opt(k.intent),
                csat: k.csat,
                handling_s: k.handling_s,
            },
            CompactKey::Piece(k) => Fact::AgentStatusPiece {
                account_id,
                bucket,
                agent_id: name(k.agent),
                team_id: opt(k.team),
                status: k.status,
                start_ms: k.start_ms,
                end_ms: k.end_ms,
            },
        }
    }

    /// Facts of `kind` with bucket in `[from, to)`, read from the day rollups for whole
    /// UTC days inside the range: the same sums and the same distinct ids as
    /// [`Self::range`], but a fact's bucket may be replaced by its day's start. For
    /// queries that do not look at the bucket.
    pub fn range_merged<'a>(
        &'a self,
        kind: &'a str,
        from: i64,
        to: i64,
    ) -> Box<dyn Iterator<Item = (&'a Fact, i64)> + 'a> {
        match (self.days.get(kind), whole_days(from, to)) {
            (Some(days), Some((first_day, last_day))) => Box::new(
                self.range(kind, from, first_day)
                    .chain(
                        days.range(first_day..last_day)
                            .flat_map(|(_, facts)| facts.iter().map(|(f, d)| (f, *d))),
                    )
                    .chain(self.range(kind, last_day, to)),
            ),
            _ => Box::new(self.range(kind, from, to)),
        }
    }

    /// "Now" facts of `kind`.
    pub fn now_of(&self, kind: &str) -> impl Iterator<Item = (&Fact, i64)> {
        self.now
            .get(kind)
            .into_iter()
            .flat_map(|facts| facts.iter().map(|(f, d)| (f, *d)))
    }

    /// Facts of `kind` with bucket in `[from, to)`.
    pub fn range(&self, kind: &str, from: i64, to: i64) -> impl Iterator<Item = (&Fact, i64)> {
        self.buckets
            .get(kind)
            .into_iter()
            .flat_map(move |series| series.range(from..to.max(from)))
            .flat_map(|(_, facts)| facts.iter().map(|(f, d)| (f, *d)))
    }
}

/// An optional id that is absent (a fact without a team).
pub const NO_ID: u32 = u32::MAX;
/// The id a filter value gets when no fact ever carried it: it matches nothing.
pub const UNKNOWN_ID: u32 = u32::MAX - 1;

/// Strings of one namespace as dense `u32` ids, in order of first appearance. Ids are
/// never forgotten (a retracted fact's ids stay): the table grows with the distinct
/// ids an account ever had, once each, where facts used to hold a copy of the string
/// per bucket and per day.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `s`, assigned on first sight.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.names.len())
            .ok()
            .filter(|id| *id < UNKNOWN_ID)
            .expect("fewer than 2^32 - 2 ids per namespace and account");
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// The id of an optional `s`, [`NO_ID`] when absent.
    pub fn intern_opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NO_ID, |s| self.intern(s))
    }

    /// The id of `s`, if some fact carried it.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// A filter value as an id: `None` without a filter, [`UNKNOWN_ID`] for a value no
    /// fact carries.
    pub fn filter(&self, s: Option<&str>) -> Option<u32> {
        s.map(|s| self.get(s).unwrap_or(UNKNOWN_ID))
    }

    /// The string of `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Ids assigned so far (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// No id assigned yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// An entry of one of the compact columns, by kind ([`AccountFacts::fact_of`]).
#[derive(Debug, Clone, Copy)]
pub enum CompactKey {
    /// `agent_handled`.
    Handled(HandledKey),
    /// `customer_conversation`.
    Customer(CustomerKey),
    /// `first_response`.
    First(FirstResponseKey),
    /// `conversation_opened`.
    Opened(OpenedKey),
    /// `automation_conversation`.
    Automation(AutomationKey),
    /// `agent_status_piece`.
    Piece(PieceKey),
}

/// An `agent_handled` fact without its account and bucket, ids interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandledKey {
    /// The agent ([`AccountFacts::names`]).
    pub agent: u32,
    /// The team ([`AccountFacts::names`]), [`NO_ID`] without one.
    pub team: u32,
    /// The conversation ([`AccountFacts::conversations`]).
    pub conversation: u32,
    /// The inbox ([`AccountFacts::names`]).
    pub inbox: u32,
    /// The conversation's channel.
    pub channel: Channel,
}

/// A `customer_conversation` fact without its account and bucket, ids interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomerKey {
    /// The customer ([`AccountFacts::customers`]).
    pub customer: u32,
    /// The inbox ([`AccountFacts::names`]).
    pub inbox: u32,
    /// The conversation's channel.
    pub channel: Channel,
    /// The customer's first conversation ever.
    pub first: bool,
}

/// A `first_response` fact without its account and bucket, ids interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirstResponseKey {
    /// Seconds to the first human reply.
    pub seconds: u32,
    /// The replying agent ([`AccountFacts::names`]), [`NO_ID`] when not named.
    pub agent: u32,
    /// The team ([`AccountFacts::names`]), [`NO_ID`] without one.
    pub team: u32,
    /// The inbox ([`AccountFacts::names`]).
    pub inbox: u32,
    /// The conversation's channel.
    pub channel: Channel,
}

/// A `conversation_opened` fact without its account and bucket, ids interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenedKey {
    /// The campaign ([`AccountFacts::names`]), [`NO_ID`] without one.
    pub campaign: u32,
    /// The inbox ([`AccountFacts::names`]).
    pub inbox: u32,
    /// The channel.
    pub channel: Channel,
    /// Resolved now.
    pub resolved: bool,
}

/// An `automation_conversation` fact without its account and bucket, ids interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AutomationKey {
    /// The inbox ([`AccountFacts::names`]).
    pub inbox: u32,
    /// The first detected intent ([`AccountFacts::names`]), [`NO_ID`] without one.
    pub intent: u32,
    /// Human handling seconds, when set.
    pub handling_s: Option<u32>,
    /// The channel.
    pub channel: Channel,
    /// Was ever assigned to the bot.
    pub bot: bool,
    /// Was escalated by the bot at least once.
    pub escalated: bool,
    /// A human agent wrote in it.
    pub human: bool,
    /// Who resolved it last, when resolved now.
    pub resolved_by: Option<ResolvedBy>,
    /// Carries at least one auto-reply message.
    pub auto_reply: bool,
    /// Latest CSAT score, when rated.
    pub csat: Option<u8>,
}

/// An `agent_status_piece` fact without its account and bucket, ids interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceKey {
    /// Start, ms since epoch.
    pub start_ms: i64,
    /// End (exclusive), ms since epoch.
    pub end_ms: i64,
    /// The agent ([`AccountFacts::names`]).
    pub agent: u32,
    /// The agent's team ([`AccountFacts::names`]), [`NO_ID`] without one.
    pub team: u32,
    /// The status held.
    pub status: AgentStatus,
}

/// One UTC day of a kind's compact facts by bucket: the entries in one contiguous
/// `Vec` (a scan reads it sequentially, where one hash table per 15-minute bucket
/// cost a cache miss or two per bucket), with an index from (bucket, key) to the
/// entry for updates. Entries are in no particular order within the day.
#[derive(Debug)]
struct Day<K> {
    /// `(ms after the day's start, key, multiplicity)`, none zero.
    entries: Vec<(u32, K, i64)>,
    index: HashMap<(u32, K), u32>,
}

impl<K> Default for Day<K> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<K: Copy + Eq + Hash> Day<K> {
    /// Adds `diff` to `key` at `offset`, forgetting it when it returns to zero (O(1):
    /// the last entry takes its place). Returns the entry's multiplicity before and
    /// after (0 for none).
    fn add(&mut self, offset: u32, key: K, diff: i64) -> (i64, i64) {
        match self.index.entry((offset, key)) {
            Entry::Occupied(e) => {
                let i = *e.get() as usize;
                let before = self.entries[i].2;
                self.entries[i].2 += diff;
                let after = self.entries[i].2;
                if after == 0 {
                    e.remove();
                    self.entries.swap_remove(i);
                    if let Some(&(o, k, _)) = self.entries.get(i) {
                        *self.index.get_mut(&(o, k)).expect("indexed") = i as u32;
                    }
                }
                (before, after)
            }
            Entry::Vacant(e) => {
                if diff != 0 {
                    e.insert(u32::try_from(self.entries.len()).expect("< 2^32 entries a day"));
                    self.entries.push((offset, key, diff));
                }
                (0, diff)
            }
        }
    }
}

/// One kind's compact facts by bucket, grouped by UTC day.
#[derive(Debug)]
pub struct Series<K> {
    days: BTreeMap<i64, Day<K>>,
    /// Entries whose multiplicity is negative (a retraction ahead of its fact, or of
    /// more than it). The derived indexes that treat "has an entry" as "is present"
    /// ([`DistinctPairs`]) agree with the day rollups only while there are none.
    negative: usize,
}

impl<K> Default for Series<K> {
    fn default() -> Self {
        Self {
            days: BTreeMap::new(),
            negative: 0,
        }
    }
}

impl<K: Copy + Eq + Hash> Series<K> {
    /// Adds `diff` to `key` in `bucket`. Returns 1 when the entry appeared, -1 when
    /// it went, 0 otherwise.
    fn apply(&mut self, bucket: i64, key: K, diff: i64) -> i32 {
        let day = day_of(bucket);
        let offset = u32::try_from(bucket - day).expect("within the day");
        let d = self.days.entry(day).or_default();
        let (before, after) = d.add(offset, key, diff);
        if d.entries.is_empty() {
            self.days.remove(&day);
        }
        self.negative = self.negative + usize::from(after < 0) - usize::from(before < 0);
        i32::from(after != 0) - i32::from(before != 0)
    }

    /// No entry has a negative multiplicity.
    pub fn all_positive(&self) -> bool {
        self.negative == 0
    }

    /// The earliest bucket holding an entry.
    /// Calls `f` with every `(bucket, key, multiplicity)`.
    fn for_each(&self, mut f: impl FnMut(i64, K, i64)) {
        for (day, d) in &self.days {
            for &(o, k, n) in &d.entries {
                f(day + i64::from(o), k, n);
            }
        }
    }

    pub fn first_bucket(&self) -> Option<i64> {
        let (day, d) = self.days.iter().next()?;
        d.entries.iter().map(|e| day + i64::from(e.0)).min()
    }

    /// Calls `f` with every entry with bucket in `[from, to)`, with its bucket and
    /// multiplicity: day after day, in no particular order within a day (see
    /// [`crate::sections`]' `PerQuarter` for per-bucket work).
    pub fn scan(&self, from: i64, to: i64, mut f: impl FnMut(i64, K, i64)) {
        if from >= to {
            return;
        }
        for (day, d) in self.days.range(day_of(from)..to) {
            if *day >= from && day + DAY_MS <= to {
                for &(o, k, n) in &d.entries {
                    f(day + i64::from(o), k, n);
                }
            } else {
                for &(o, k, n) in &d.entries {
                    let b = day + i64::from(o);
                    if from <= b && b < to {
                        f(b, k, n);
                    }
                }
            }
        }
    }
}

/// One kind's compact facts: by bucket ([`Series`]), and summed per UTC day (the
/// rollup rule of [`ROLLED_UP`], so whole days read the same sums as their buckets).
#[derive(Debug)]
pub struct Columns<K> {
    buckets: Series<K>,
    days: BTreeMap<i64, HashMap<K, i64>>,
}

impl<K> Default for Columns<K> {
    fn default() -> Self {
        Self {
            buckets: Series::default(),
            days: BTreeMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> Columns<K> {
    /// Adds `diff` to `key` in `bucket`: [`Series::apply`]'s change of the entry.
    fn apply(&mut self, bucket: i64, key: K, diff: i64) -> i32 {
        add_at(&mut self.days, day_of(bucket), key, diff);
        self.buckets.apply(bucket, key, diff)
    }

    /// No entry has a negative multiplicity ([`Series::all_positive`]).
    pub fn all_positive(&self) -> bool {
        self.buckets.all_positive()
    }

    /// Calls `f` with every entry with bucket in `[from, to)` and its multiplicity:
    /// the whole UTC days inside the range from the day rollups, the edges bucket by
    /// bucket. What [`AccountFacts::range_merged`] yields for a rolled-up kind.
    pub fn scan(&self, from: i64, to: i64, mut f: impl FnMut(K, i64)) {
        if let Some((first_day, last_day)) = whole_days(from, to) {
            self.buckets.scan(from, first_day, |_, k, n| f(k, n));
            for (_, map) in self.days.range(first_day..last_day) {
                for (k, n) in map {
                    f(*k, *n);
                }
            }
            self.buckets.scan(last_day, to, |_, k, n| f(k, n));
        } else {
            self.buckets.scan(from, to, |_, k, n| f(k, n));
        }
    }

    /// The earliest bucket holding an entry.
    pub fn first_bucket(&self) -> Option<i64> {
        self.buckets.first_bucket()
    }

    /// Calls `f` with every entry with bucket in `[from, to)`, with its bucket: see
    /// [`Series::scan`].
    pub fn scan_buckets(&self, from: i64, to: i64, f: impl FnMut(i64, K, i64)) {
        self.buckets.scan(from, to, f);
    }
}

/// The state at one complete timestamp.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Pipeline time up to which (exclusive) the state is complete; 0 before any batch.
    pub progress: u64,
    /// Input events reflected in the state.
    pub events_consumed: u64,
    /// Batches applied so far: any change to the state changes it (the key of
    /// [`crate::bodies::BodyCache`]).
    pub version: u64,
    /// Per-account facts.
    pub accounts: HashMap<u64, AccountFacts>,
}

/// The shared view store.
#[derive(Debug)]
pub struct ViewStore {
    state: RwLock<Snapshot>,
    progress: watch::Sender<u64>,
}

impl Default for ViewStore {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            progress: watch::Sender::new(0),
        }
    }
}

impl ViewStore {
    /// Applies a batch atomically and wakes subscribers.
    pub fn apply(&self, batch: MetricBatch) {
        let progress = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for (fact, diff) in batch.updates {
                state
                    .accounts
                    .entry(fact.account_id())
                    .or_default()
                    .apply(fact, diff);
            }
            state.progress = state.progress.max(batch.progress);
            state.version += 1;
            state.events_consumed = batch.events_consumed;
            state.progress
        };
        // Never backwards (a checkpoint's facts load beside the warm-up's batches).
        self.progress.send_replace(progress);
    }

    /// Calls `f` with every fact the store holds and its multiplicity, at one complete
    /// timestamp (under the read lock: batches wait meanwhile). Returns that state's
    /// `(progress, events_consumed)`.
    pub fn for_each_fact(&self, mut f: impl FnMut(Fact, i64)) -> (u64, u64) {
        self.read(|s| {
            for (account, facts) in &s.accounts {
                facts.for_each_fact(*account, &mut f);
            }
            (s.progress, s.events_consumed)
        })
    }

    /// Runs `f` on the state at one complete timestamp.
    pub fn read<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A receiver that changes whenever progress advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The latest complete timestamp.
    pub fn progress(&self) -> u64 {
        *self.progress.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::Priority;

    #[test]
    fn day_rollups_give_the_same_sums_and_ids_as_buckets() {
        use schemas::event::{Channel, ResolvedBy};
        let day = 20_000 * DAY_MS;
        let resolution = |bucket: i64, agent: &str| Fact::Resolution {
            account_id: 1,
            bucket,
            resolved_by: ResolvedBy::Agent,
            agent_id: Some(agent.into()),
            team_id: None,
            channel: Channel::Sms,
            inbox_id: "i".into(),
        };
        let handled = |bucket: i64, conversation: &str| Fact::AgentHandled {
            account_id: 1,
            bucket,
            agent_id: "a".into(),
            team_id: None,
            conversation_id: conversation.into(),
            channel: Channel::Sms,
            inbox_id: "i".into(),
        };
        let quarter = 15 * 60 * 1000;
        let at = [
            (day - quarter, "c0", 1),
            (day, "c1", 1),
            (day + 3 * quarter, "c1", 1),
            (day + 5 * quarter, "c2", 2),
            (day + DAY_MS + quarter, "c3", 1),
            (day + 2 * DAY_MS, "c4", 1),
        ];
        let store = ViewStore::default();
        store.apply(MetricBatch {
            progress: 1,
            updates: at
                .iter()
                .flat_map(|(b, c, n)| [(handled(*b, c), *n), (resolution(*b, c), *n)])
                .collect(),
            events_consumed: 1,
        });
        // Retract one so a rollup entry returns to zero and is forgotten.
        store.apply(MetricBatch {
            progress: 2,
            updates: vec![
                (handled(day + 3 * quarter, "c1"), -1),
                (resolution(day + 3 * quarter, "c1"), -1),
            ],
            events_consumed: 2,
        });
        store.read(|s| {
            let a = &s.accounts[&1];
            for (from, to) in [
                (day - quarter, day + 2 * DAY_MS + quarter),
                (day, day + DAY_MS),
                (day + quarter, day + DAY_MS + 2 * quarter),
                (day - DAY_MS, day + 3 * DAY_MS),
            ] {
                let sum = |it: Box<dyn Iterator<Item = (&Fact, i64)> + '_>| {
                    let mut by_agent: BTreeMap<String, i64> = BTreeMap::new();
                    for (f, n) in it {
                        if let Fact::Resolution {
                            agent_id: Some(agent),
                            ..
                        } = f
                        {
                            *by_agent.entry(agent.clone()).or_default() += n;
                        }
                    }
                    by_agent
                };
                assert_eq!(
                    sum(a.range_merged("resolution", from, to)),
                    sum(Box::new(a.range("resolution", from, to))),
                    "[{from}, {to})"
                );
                let mut merged: BTreeMap<u32, i64> = BTreeMap::new();
                a.handled.scan(from, to, |k, n| {
                    *merged.entry(k.conversation).or_default() += n
                });
                let mut by_bucket: BTreeMap<u32, i64> = BTreeMap::new();
                a.handled.scan_buckets(from, to, |_, k, n| {
                    *by_bucket.entry(k.conversation).or_default() += n;
                });
                assert_eq!(merged, by_bucket, "[{from}, {to})");
            }
            assert_eq!(a.days["resolution"][&day].len(), 2, "c1 and c2 on the day");
            assert_eq!(
                a.handled.days[&day].len(),
                2,
                "c1 and c2 on the day, compact"
            );
            assert!(
                !a.buckets.contains_key("agent_handled"),
                "kept compact only"
            );
        });
    }

    #[test]
    fn every_fact_comes_back_out_of_the_compact_columns() {
        use schemas::event::{AgentStatus, Channel, ResolvedBy};
        let day = 20_000 * DAY_MS;
        let facts = vec![
            (
                Fact::AgentHandled {
                    account_id: 7,
                    bucket: day + 900_000,
                    agent_id: "a".into(),
                    team_id: Some("t".into()),
                    conversation_id: "c1".into(),
                    channel: Channel::Whatsapp,
                    inbox_id: "i".into(),
                },
                2,
            ),
            (
                Fact::CustomerConversation {
                    account_id: 7,
                    bucket: day,
                    customer_id: "u".into(),
                    first: true,
                    channel: Channel::Sms,
                    inbox_id: "i".into(),
                },
                1,
            ),
            (
                Fact::FirstResponse {
                    account_id: 7,
                    bucket: day + DAY_MS,
                    seconds: 42,
                    channel: Channel::Sms,
                    inbox_id: "i2".into(),
                    agent_id: None,
                    team_id: Some("t".into()),
                },
                1,
            ),
            (
                Fact::ConversationOpened {
                    account_id: 7,
                    bucket: day,
                    resolved: false,
                    channel: Channel::Whatsapp,
                    inbox_id: "i".into(),
                    campaign_id: Some("k".into()),
                },
                3,
            ),
            (
                Fact::AutomationConversation {
                    account_id: 8,
                    bucket: day,
                    channel: Channel::Whatsapp,
                    inbox_id: "i".into(),
                    bot: true,
                    escalated: false,
                    human: true,
                    resolved_by: Some(ResolvedBy::Bot),
                    auto_reply: true,
                    intent: Some("billing".into()),
                    csat: Some(4),
                    handling_s: Some(90),
                },
                1,
            ),
            (
                Fact::AgentStatusPiece {
                    account_id: 7,
                    bucket: day + 1_800_000,
                    agent_id: "a".into(),
                    team_id: None,
                    status: AgentStatus::Online,
                    start_ms: day + 1_800_000,
                    end_ms: day + 2_000_000,
                },
                1,
            ),
            (
                Fact::Resolution {
                    account_id: 7,
                    bucket: day,
                    resolved_by: ResolvedBy::Agent,
                    agent_id: Some("a".into()),
                    team_id: None,
                    channel: Channel::Sms,
                    inbox_id: "i".into(),
                },
                -1,
            ),
            (
                Fact::OpenTicket {
                    account_id: 8,
                    priority: Priority::High,
                },
                2,
            ),
        ];
        let store = ViewStore::default();
        store.apply(MetricBatch {
            progress: 11,
            updates: facts.clone(),
            events_consumed: 5,
        });
        let mut out = Vec::new();
        let at = store.for_each_fact(|f, n| out.push((f, n)));
        assert_eq!(at, (11, 5));
        let mut want = facts;
        want.sort();
        out.sort();
        assert_eq!(out, want);
        // Applied to an empty store, it is the same store.
        let copy = ViewStore::default();
        copy.apply(MetricBatch {
            progress: 11,
            updates: out.clone(),
            events_consumed: 5,
        });
        let mut again = Vec::new();
        copy.for_each_fact(|f, n| again.push((f, n)));
        again.sort();
        assert_eq!(again, out);
    }

    #[test]
    fn applies_diffs_and_forgets_zeroes() {
        let store = ViewStore::default();
        let t = Fact::OpenTicket {
            account_id: 3,
            priority: Priority::High,
        };
        store.apply(MetricBatch {
            progress: 5,
            updates: vec![(t.clone(), 2)],
            events_consumed: 2,
        });
        store.apply(MetricBatch {
            progress: 9,
            updates: vec![(t.clone(), -2)],
            events_consumed: 3,
        });
        store.read(|s| {
            assert_eq!(s.progress, 9);
            assert_eq!(s.events_consumed, 3);
            assert_eq!(s.accounts[&3].now_of("open_ticket").count(), 0);
        });
        assert_eq!(store.progress(), 9);
    }
}
