//! The compact columns ([`crate::store::Columns`]) give the same distinct counts as
//! the fact-by-fact computation they replaced, recomputed here in batch from the same
//! updates: every fact's multiplicity summed, day rollups of the summed facts, and the
//! old per-fact code (string sets and maps) over the old `range_merged` read (edges by
//! bucket, whole UTC days from the rollups).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use schemas::event::{AgentStatus, Channel, ResolvedBy};
use schemas::metrics::{Fact, MetricBatch};

use super::{IdFilter, Params};
use crate::range::Range;
use crate::store::{AccountFacts, CompactKey as Key, ViewStore};

const DAY_MS: i64 = 86_400_000;
const QUARTER: i64 = 15 * 60 * 1000;
/// Start of the generated history: a UTC midnight.
const BASE: i64 = 20_400 * DAY_MS;

/// The old store, recomputed in batch: facts by bucket and day rollups, both summed.
struct Batch {
    buckets: BTreeMap<i64, BTreeMap<Fact, i64>>,
    days: BTreeMap<i64, BTreeMap<Fact, i64>>,
}

impl Batch {
    fn new(updates: &[(Fact, i64)]) -> Self {
        let mut sums: BTreeMap<Fact, i64> = BTreeMap::new();
        for (f, d) in updates {
            *sums.entry(f.clone()).or_default() += d;
        }
        let mut b = Batch {
            buckets: BTreeMap::new(),
            days: BTreeMap::new(),
        };
        for (f, n) in sums.into_iter().filter(|(_, n)| *n != 0) {
            let bucket = f.bucket().expect("bucketed");
            let day = bucket.div_euclid(DAY_MS) * DAY_MS;
            *b.days
                .entry(day)
                .or_default()
                .entry(f.with_bucket(day))
                .or_default() += n;
            b.buckets.entry(bucket).or_default().insert(f, n);
        }
        for m in b.days.values_mut() {
            m.retain(|_, n| *n != 0);
        }
        b
    }

    /// The old `AccountFacts::range_merged` of one kind.
    fn range_merged(&self, kind: &str, from: i64, to: i64) -> Vec<(&Fact, i64)> {
        let first_day = (from + DAY_MS - 1).div_euclid(DAY_MS) * DAY_MS;
        let last_day = to.div_euclid(DAY_MS) * DAY_MS;
        fn of<'a>(
            series: &'a BTreeMap<i64, BTreeMap<Fact, i64>>,
            kind: &str,
            from: i64,
            to: i64,
        ) -> Vec<(&'a Fact, i64)> {
            series
                .range(from..to.max(from))
                .flat_map(|(_, m)| m.iter().map(|(f, n)| (f, *n)))
                .filter(|(f, _)| f.kind() == kind)
                .collect()
        }
        let mut out = Vec::new();
        if first_day < last_day {
            out.extend(of(&self.buckets, kind, from, first_day));
            out.extend(of(&self.days, kind, first_day, last_day));
            out.extend(of(&self.buckets, kind, last_day, to));
        } else {
            out.extend(of(&self.buckets, kind, from, to));
        }
        out
    }

    /// The old `handled` of conversation effectiveness (`agent_filter`) and agent
    /// productivity (without).
    fn handled(&self, r: Range, p: &Params, agent_filter: bool) -> BTreeMap<String, i64> {
        let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (fact, _) in self.range_merged("agent_handled", r.from, r.to) {
            if let Fact::AgentHandled {
                agent_id,
                team_id,
                conversation_id,
                channel,
                inbox_id,
                ..
            } = fact
                && p.wants_conversation(*channel, inbox_id)
                && (!agent_filter || p.wants_agent(Some(agent_id), team_id.as_deref()))
            {
                seen.entry(agent_id).or_default().insert(conversation_id);
            }
        }
        seen.into_iter()
            .map(|(a, c)| (a.to_owned(), c.len() as i64))
            .collect()
    }

    /// The old `customers` of customer load: (total, new).
    fn customers(&self, r: Range, p: &Params) -> (i64, i64) {
        let mut all = BTreeSet::new();
        let mut first_here = BTreeSet::new();
        for (fact, _) in self.range_merged("customer_conversation", r.from, r.to) {
            if let Fact::CustomerConversation {
                customer_id,
                first,
                channel,
                inbox_id,
                ..
            } = fact
            {
                if *first {
                    first_here.insert(customer_id);
                }
                if p.wants_conversation(*channel, inbox_id) {
                    all.insert(customer_id);
                }
            }
        }
        let new = all.iter().filter(|c| first_here.contains(*c)).count();
        (all.len() as i64, new as i64)
    }

    /// The old `repeat` of business impact: (customers, repeat).
    fn repeat(&self, r: Range, p: &Params) -> (i64, i64) {
        let mut per_customer: BTreeMap<&str, i64> = BTreeMap::new();
        for (fact, n) in self.range_merged("customer_conversation", r.from, r.to) {
            if let Fact::CustomerConversation {
                customer_id,
                channel,
                inbox_id,
                ..
            } = fact
                && p.wants_conversation(*channel, inbox_id)
            {
                *per_customer.entry(customer_id).or_default() += n;
            }
        }
        (
            per_customer.len() as i64,
            per_customer.values().filter(|n| **n >= 2).count() as i64,
        )
    }
}

/// A quarter-hour index from `BASE`, often next to a UTC midnight (where whole days
/// and edges meet).
fn quarter() -> impl Strategy<Value = i64> {
    prop_oneof![
        0..4 * 96i64,
        (0..4i64, -1..=1i64).prop_map(|(d, o)| (d * 96 + o).max(0)),
    ]
}

const CHANNELS: [Channel; 2] = [Channel::Whatsapp, Channel::Email];

fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}")
}

/// One generated update: a handled or a customer fact, somewhere in 4 days, with a
/// diff that may retract (also what was never added, or more than was).
fn update() -> impl Strategy<Value = (Fact, i64)> {
    let handled = (
        quarter(),
        0..3usize,
        0..3usize,
        0..6usize,
        0..2usize,
        0..2usize,
    )
        .prop_map(|(q, a, t, c, ch, i)| Fact::AgentHandled {
            account_id: 1 + (c == 5) as u64,
            bucket: BASE + q * QUARTER,
            agent_id: name("a", a),
            team_id: (t > 0).then(|| name("t", t)),
            conversation_id: name("c", c),
            channel: CHANNELS[ch],
            inbox_id: name("i", i),
        });
    let customer = (quarter(), 0..5usize, any::<bool>(), 0..2usize, 0..2usize).prop_map(
        |(q, u, first, ch, i)| Fact::CustomerConversation {
            account_id: 1,
            bucket: BASE + q * QUARTER,
            customer_id: name("u", u),
            first,
            channel: CHANNELS[ch],
            inbox_id: name("i", i),
        },
    );
    let first = (
        quarter(),
        0..4u32,
        0..4usize,
        0..3usize,
        0..2usize,
        0..2usize,
    )
        .prop_map(|(q, seconds, a, t, ch, i)| Fact::FirstResponse {
            account_id: 1,
            bucket: BASE + q * QUARTER,
            seconds: seconds * 30,
            channel: CHANNELS[ch],
            inbox_id: name("i", i),
            agent_id: (a > 0).then(|| name("a", a - 1)),
            team_id: (t > 0).then(|| name("t", t)),
        });
    let opened = (quarter(), any::<bool>(), 0..3usize, 0..2usize, 0..2usize).prop_map(
        |(q, resolved, c, ch, i)| Fact::ConversationOpened {
            account_id: 1,
            bucket: BASE + q * QUARTER,
            resolved,
            channel: CHANNELS[ch],
            inbox_id: name("i", i),
            campaign_id: (c > 0).then(|| name("k", c)),
        },
    );
    let automation = (
        quarter(),
        (0..2usize, 0..2usize),
        any::<(bool, bool, bool, bool)>(),
        prop_oneof![
            Just(None),
            Just(Some(ResolvedBy::Bot)),
            Just(Some(ResolvedBy::System))
        ],
        (0..3usize, prop_oneof![Just(None), (1..=5u8).prop_map(Some)]),
        prop_oneof![Just(None), (0..3u32).prop_map(Some)],
    )
        .prop_map(
            |(
                q,
                (ch, i),
                (bot, escalated, human, auto_reply),
                resolved_by,
                (intent, csat),
                handling_s,
            )| {
                Fact::AutomationConversation {
                    account_id: 1,
                    bucket: BASE + q * QUARTER,
                    channel: CHANNELS[ch],
                    inbox_id: name("i", i),
                    bot,
                    escalated,
                    human,
                    resolved_by,
                    auto_reply,
                    intent: (intent > 0).then(|| name("n", intent)),
                    csat,
                    handling_s,
                }
            },
        );
    let piece = (
        quarter(),
        0..3usize,
        0..3usize,
        0..4usize,
        0..3i64,
        1..200i64,
    )
        .prop_map(|(q, a, t, status, into, len)| {
            let bucket = BASE + q * QUARTER;
            let start_ms = bucket + into * 60_000;
            let midnight = (start_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
            Fact::AgentStatusPiece {
                account_id: 1,
                bucket,
                agent_id: name("a", a),
                team_id: (t > 0).then(|| name("t", t)),
                status: AgentStatus::ALL[status],
                start_ms,
                end_ms: (start_ms + len * 60_000).min(midnight),
            }
        });
    (
        prop_oneof![handled, customer, first, opened, automation, piece],
        prop_oneof![4 => Just(1i64), 2 => Just(-1), 1 => Just(2)],
    )
}

/// A compact entry back as the fact it stands for (in `bucket`), of account 1.
/// A store that applied `updates` in batches cut at `cuts` (clamped to the updates,
/// in any order), each batch one progress step later than the one before.
pub(super) fn applied_in_batches(updates: &[(Fact, i64)], cuts: Vec<usize>) -> ViewStore {
    let store = ViewStore::default();
    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(updates.len())).collect();
    cuts.extend([0, updates.len()]);
    cuts.sort_unstable();
    for (k, w) in cuts.windows(2).enumerate() {
        store.apply(MetricBatch {
            progress: k as u64 + 1,
            updates: updates[w[0]..w[1]].to_vec(),
            events_consumed: 0,
        });
    }
    store
}

fn fact_of(facts: &AccountFacts, bucket: i64, key: Key) -> Fact {
    facts.fact_of(1, bucket, key)
}

/// Facts with every multiplicity they were read with.
type Multiset = BTreeMap<Fact, Vec<i64>>;

/// Everything the compact columns yield for `[from, to)`, as facts: merged (whole
/// days from rollups, bucket forgotten) and bucket by bucket.
fn compact_reads(facts: &AccountFacts, from: i64, to: i64) -> (Multiset, Multiset) {
    let mut merged = Multiset::new();
    let mut buckets = Multiset::new();
    let put = |m: &mut Multiset, f: Fact, n: i64| m.entry(f).or_default().push(n);
    facts.handled.scan(from, to, |k, n| {
        put(&mut merged, fact_of(facts, 0, Key::Handled(k)), n);
    });
    facts.customer_conversations.scan(from, to, |k, n| {
        put(&mut merged, fact_of(facts, 0, Key::Customer(k)), n);
    });
    facts.first_responses.scan(from, to, |k, n| {
        put(&mut merged, fact_of(facts, 0, Key::First(k)), n);
    });
    facts.opened.scan(from, to, |k, n| {
        put(&mut merged, fact_of(facts, 0, Key::Opened(k)), n);
    });
    facts.handled.scan_buckets(from, to, |b, k, n| {
        put(&mut buckets, fact_of(facts, b, Key::Handled(k)), n);
    });
    facts
        .customer_conversations
        .scan_buckets(from, to, |b, k, n| {
            put(&mut buckets, fact_of(facts, b, Key::Customer(k)), n);
        });
    facts.first_responses.scan_buckets(from, to, |b, k, n| {
        put(&mut buckets, fact_of(facts, b, Key::First(k)), n);
    });
    facts.opened.scan_buckets(from, to, |b, k, n| {
        put(&mut buckets, fact_of(facts, b, Key::Opened(k)), n);
    });
    facts.automation.scan(from, to, |k, n| {
        put(&mut merged, fact_of(facts, 0, Key::Automation(k)), n);
    });
    facts.automation.scan_buckets(from, to, |b, k, n| {
        put(&mut buckets, fact_of(facts, b, Key::Automation(k)), n);
    });
    facts.status_pieces.scan(from, to, |b, k, n| {
        put(&mut buckets, fact_of(facts, b, Key::Piece(k)), n);
    });
    for v in merged.values_mut().chain(buckets.values_mut()) {
        v.sort_unstable();
    }
    (merged, buckets)
}

/// The same reads from the batch recomputation (the old `range_merged` and `range`).
fn batch_reads(batch: &Batch, from: i64, to: i64) -> (Multiset, Multiset) {
    let mut merged = Multiset::new();
    let mut buckets = Multiset::new();
    for kind in [
        "agent_handled",
        "customer_conversation",
        "first_response",
        "conversation_opened",
        "automation_conversation",
        "agent_status_piece",
    ] {
        if kind != "agent_status_piece" {
            for (f, n) in batch.range_merged(kind, from, to) {
                merged.entry(f.with_bucket(0)).or_default().push(n);
            }
        }
        for (_, m) in batch.buckets.range(from..to.max(from)) {
            for (f, n) in m.iter().filter(|(f, _)| f.kind() == kind) {
                buckets.entry(f.clone()).or_default().push(*n);
            }
        }
    }
    for v in merged.values_mut().chain(buckets.values_mut()) {
        v.sort_unstable();
    }
    (merged, buckets)
}

fn params() -> impl Strategy<Value = Params> {
    let value = |prefix: &'static str| {
        prop_oneof![
            Just(None),
            (0..3usize).prop_map(move |i| Some(name(prefix, i))),
            Just(Some("nope".to_owned())),
        ]
    };
    (
        prop_oneof![Just(None), (0..2usize).prop_map(|c| Some(CHANNELS[c]))],
        value("i"),
        value("a"),
        value("t"),
    )
        .prop_map(|(channel, inbox_id, agent_id, team_id)| Params {
            account_id: 1,
            channel,
            inbox_id,
            agent_id,
            team_id,
            ..Params::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Applied incrementally in batches of any size, in any bucket order (late
    /// events), with retractions, the compact columns answer every range on the
    /// quarter-hour grid (every zone's local days start on it) and every filter as the
    /// old fact-by-fact code over the batch recomputation.
    #[test]
    fn compact_distinct_counts_equal_the_fact_by_fact_batch_recomputation(
        updates in proptest::collection::vec(update(), 0..80),
        cuts in proptest::collection::vec(0..80usize, 0..6),
        ranges in proptest::collection::vec((quarter(), quarter(), -1..=1i64), 1..6),
        filters in proptest::collection::vec(params(), 1..4),
    ) {
        let store = applied_in_batches(&updates, cuts);
        let batch = Batch::new(
            &updates
                .iter()
                .filter(|(f, _)| f.account_id() == 1)
                .cloned()
                .collect::<Vec<_>>(),
        );
        store.read(|snap| {
            let facts = snap.accounts.get(&1);
            for (a, b, shift) in &ranges {
                // Any order: an inverted range is empty for both.
                let r = Range {
                    from: BASE + (a + shift) * QUARTER,
                    to: BASE + b * QUARTER,
                };
                if let Some(f) = facts {
                    prop_assert_eq!(compact_reads(f, r.from, r.to), batch_reads(&batch, r.from, r.to));
                } else {
                    prop_assert_eq!(
                        batch_reads(&batch, r.from, r.to),
                        (Multiset::new(), Multiset::new())
                    );
                }
                for p in &filters {
                    if let Some(f) = facts {
                        // The filters decide on ids as they did on strings.
                        let ids = IdFilter::new(p, &f.names);
                        f.first_responses.scan_buckets(r.from, r.to, |b, k, _| {
                            let fact = fact_of(f, b, Key::First(k));
                            if let Fact::FirstResponse { channel, inbox_id, agent_id, team_id, .. } = &fact {
                                assert_eq!(
                                    ids.wants_conversation(k.channel, k.inbox),
                                    p.wants_conversation(*channel, inbox_id.as_str())
                                );
                                assert_eq!(
                                    ids.wants_agent(k.agent, k.team),
                                    p.wants_agent(agent_id.as_deref(), team_id.as_deref())
                                );
                            }
                        });
                    }
                    let sorted = |m: foldhash::HashMap<String, i64>| {
                        m.into_iter().collect::<BTreeMap<_, _>>()
                    };
                    prop_assert_eq!(
                        sorted(super::conversation_effectiveness::handled(facts, r, p)),
                        batch.handled(r, p, true)
                    );
                    prop_assert_eq!(
                        sorted(super::agent_productivity::handled(facts, r, p)),
                        batch.handled(r, p, false)
                    );
                    let c = super::customer_load::customers(facts, r, p);
                    prop_assert_eq!((c.total, c.new), batch.customers(r, p));
                    prop_assert_eq!(c.returning, c.total - c.new);
                    let presence = super::agent_productivity::presence(facts, r, r.to);
                    let mut want: BTreeMap<String, [i64; 4]> = BTreeMap::new();
                    for (_, m) in batch.buckets.range(r.from - DAY_MS..r.to.max(r.from - DAY_MS)) {
                        for (f, n) in m {
                            if let Fact::AgentStatusPiece { agent_id, status, start_ms, end_ms, .. } = f {
                                let ms = (end_ms.min(&r.to) - start_ms.max(&r.from)).max(0) * n;
                                want.entry(agent_id.clone()).or_default()[*status as usize] += ms;
                            }
                        }
                    }
                    let got: BTreeMap<String, [i64; 4]> = presence
                        .time
                        .iter()
                        .map(|(a, t)| (a.clone(), [t.online, t.busy, t.away, t.offline]))
                        .collect();
                    prop_assert_eq!(got, want);
                    let rep = super::business_impact::repeat(facts, r, p);
                    prop_assert_eq!((rep.customers, rep.repeat), batch.repeat(r, p));
                }
            }
            Ok(())
        })?;
    }
}
