//! The view store: the fact multiset at the latest complete pipeline timestamp.
//!
//! Fed with [`MetricBatch`]es (in process from the pipeline, or later from
//! `crm.metrics.v1`), each applied atomically under a write lock, so a reader holding
//! the read lock sees the state at exactly one `progress` and never half of a batch.
//! Facts are indexed by kind and, when they carry a time bucket, by bucket, so a range
//! query touches only the facts of the kind it reads in the buckets of its range.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use schemas::metrics::{Fact, MetricBatch};
use tokio::sync::watch;

/// One account's facts.
#[derive(Debug, Default)]
pub struct AccountFacts {
    /// Facts without a bucket ("now" metrics), with multiplicities.
    pub now: HashMap<Fact, i64>,
    /// Bucketed facts: kind → bucket start (ms) → fact → multiplicity.
    pub buckets: HashMap<&'static str, BTreeMap<i64, HashMap<Fact, i64>>>,
}

impl AccountFacts {
    fn apply(&mut self, fact: Fact, diff: i64) {
        let map = match fact.bucket() {
            Some(b) => self
                .buckets
                .entry(fact.kind())
                .or_default()
                .entry(b)
                .or_default(),
            None => &mut self.now,
        };
        let entry = map.entry(fact).or_default();
        *entry += diff;
        if *entry == 0 {
            // Keep maps small: a fact whose multiplicity returns to zero is gone.
            map.retain(|_, d| *d != 0);
        }
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
            assert!(s.accounts[&3].now.is_empty());
        });
        assert_eq!(store.progress(), 9);
    }
}
