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
//! query reads ~96× fewer entries for counters, and exact distinct counts (facts that
//! carry a conversation or customer id) still see every id once per day. Sums are
//! unchanged: a rollup entry's multiplicity is the sum of its buckets'. The rollups are
//! zone-free (every local day boundary is still a bucket boundary), so they stay exact
//! in any zone and across a timezone change.

use foldhash::HashMap;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::sync::RwLock;

use schemas::metrics::{Fact, MetricBatch};
use tokio::sync::watch;

/// Length of a rollup day.
const DAY_MS: i64 = 86_400_000;

/// Kinds kept in day rollups: those read by queries that ignore the bucket.
pub const ROLLED_UP: &[&str] = &[
    "first_response",
    "whatsapp_outcome",
    "message",
    "conversation_opened",
    "resolution",
    "agent_handled",
    "customer_conversation",
    "ticket_resolved",
    "lead",
    "deal_won",
    "whatsapp_message",
    "broadcast",
    "automation_conversation",
];

/// Adds `diff` to `fact` in `map`, forgetting it when it returns to zero (O(1)).
fn add(map: &mut HashMap<Fact, i64>, fact: Fact, diff: i64) {
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
}

impl AccountFacts {
    fn apply(&mut self, fact: Fact, diff: i64) {
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
            let day = b.div_euclid(DAY_MS) * DAY_MS;
            let days = self.days.entry(kind).or_default();
            let map = days.entry(day).or_default();
            add(map, fact.with_bucket(day), diff);
            if map.is_empty() {
                days.remove(&day);
            }
        }
        let series = self.buckets.entry(kind).or_default();
        let map = series.entry(b).or_default();
        add(map, fact, diff);
        if map.is_empty() {
            series.remove(&b);
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
        let first_day = (from + DAY_MS - 1).div_euclid(DAY_MS) * DAY_MS;
        let last_day = to.div_euclid(DAY_MS) * DAY_MS;
        match self.days.get(kind) {
            Some(days) if first_day < last_day => Box::new(
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
        {
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
        }
        self.progress.send_replace(batch.progress);
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
        use schemas::event::Channel;
        let day = 20_000 * DAY_MS;
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
        let facts = [
            (handled(day - quarter, "c0"), 1),
            (handled(day, "c1"), 1),
            (handled(day + 3 * quarter, "c1"), 1),
            (handled(day + 5 * quarter, "c2"), 2),
            (handled(day + DAY_MS + quarter, "c3"), 1),
            (handled(day + 2 * DAY_MS, "c4"), 1),
        ];
        let store = ViewStore::default();
        store.apply(MetricBatch {
            progress: 1,
            updates: facts.to_vec(),
            events_consumed: 1,
        });
        // Retract one so a rollup entry returns to zero and is forgotten.
        store.apply(MetricBatch {
            progress: 2,
            updates: vec![(handled(day + 3 * quarter, "c1"), -1)],
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
                    let mut by_conv: BTreeMap<String, i64> = BTreeMap::new();
                    for (f, n) in it {
                        if let Fact::AgentHandled {
                            conversation_id, ..
                        } = f
                        {
                            *by_conv.entry(conversation_id.clone()).or_default() += n;
                        }
                    }
                    by_conv
                };
                assert_eq!(
                    sum(a.range_merged("agent_handled", from, to)),
                    sum(Box::new(a.range("agent_handled", from, to))),
                    "[{from}, {to})"
                );
            }
            assert_eq!(
                a.days["agent_handled"][&day].len(),
                2,
                "c1 and c2 on the day"
            );
        });
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
