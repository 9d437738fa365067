//! [`Assembler`]: turns the records of `crm.metrics.v1`, read from every partition,
//! back into [`MetricBatch`]es that are each complete at a progress record.
//!
//! The rule a consumer follows (docs/kafka.md): deltas are buffered by the progress
//! they belong to; once every partition has delivered a progress record `>= t`, all
//! buffered deltas with progress `<= t` are applied together. The state is then
//! exactly the pipeline's state at `t`: never half of a batch. Pure logic, next to the
//! record types, so every consumer (the view store of `serve`, `tail-metrics`, tests)
//! assembles batches the same way without depending on the pipeline.

use std::collections::{BTreeMap, HashMap};

use super::MetricRecord;
use crate::metrics::{Fact, MetricBatch};

/// Rebuilds complete [`MetricBatch`]es from the records of every partition.
#[derive(Debug)]
pub struct Assembler {
    /// Latest progress record per partition (absent: none yet).
    progress: HashMap<i32, u64>,
    /// Partitions of the topic: a batch is released only once each has delivered a
    /// progress record.
    partitions: usize,
    /// Deltas not yet released, by the progress of the batch they belong to.
    pending: BTreeMap<u64, HashMap<Fact, i64>>,
    /// Progress of the latest released batch.
    released: u64,
    /// `events_consumed` of the progress records not yet released, by progress.
    consumed_at: BTreeMap<u64, u64>,
    /// `events_consumed` of the latest released batch.
    events_consumed: u64,
}

impl Assembler {
    /// An assembler for a topic of `partitions` partitions.
    pub fn new(partitions: usize) -> Self {
        Self {
            progress: HashMap::new(),
            partitions: partitions.max(1),
            pending: BTreeMap::new(),
            released: 0,
            consumed_at: BTreeMap::new(),
            events_consumed: 0,
        }
    }

    /// Progress of the latest released batch (0 before the first).
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Takes one record of `partition`; returns a batch when the progress complete
    /// on every partition moved past the last released one.
    pub fn push(&mut self, partition: i32, record: MetricRecord) -> Option<MetricBatch> {
        match record {
            MetricRecord::Deltas { progress, updates } => {
                let pending = self.pending.entry(progress).or_default();
                for (fact, diff) in updates {
                    *pending.entry(fact).or_default() += diff;
                }
                None
            }
            MetricRecord::Progress {
                progress,
                events_consumed,
            } => {
                let seen = self.progress.entry(partition).or_default();
                *seen = (*seen).max(progress);
                // Kept by progress: a later batch's record on one partition says
                // nothing about the batch released now.
                let at = self.consumed_at.entry(progress).or_default();
                *at = (*at).max(events_consumed);
                if self.progress.len() < self.partitions {
                    return None;
                }
                let complete = self.progress.values().copied().min().unwrap_or(0);
                if complete <= self.released {
                    return None;
                }
                self.released = complete;
                self.events_consumed = take_through(&mut self.consumed_at, complete)
                    .into_values()
                    .fold(self.events_consumed, u64::max);
                let ready = take_through(&mut self.pending, complete);
                let mut merged: HashMap<Fact, i64> = HashMap::new();
                for (_, updates) in ready {
                    for (fact, diff) in updates {
                        *merged.entry(fact).or_default() += diff;
                    }
                }
                Some(MetricBatch {
                    progress: complete,
                    updates: merged.into_iter().filter(|(_, d)| *d != 0).collect(),
                    events_consumed: self.events_consumed,
                })
            }
        }
    }
}

/// Removes and returns the entries of `map` with progress `<= t`.
fn take_through<V>(map: &mut BTreeMap<u64, V>, t: u64) -> BTreeMap<u64, V> {
    let later = map.split_off(&(t + 1));
    std::mem::replace(map, later)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Priority;

    fn ticket(p: Priority) -> Fact {
        Fact::OpenTicket {
            account_id: 1,
            priority: p,
        }
    }

    #[test]
    fn a_batch_is_released_only_when_every_partition_has_passed_its_progress() {
        let mut a = Assembler::new(2);
        let deltas = |progress, fact, diff| MetricRecord::Deltas {
            progress,
            updates: vec![(fact, diff)],
        };
        let progress = |progress| MetricRecord::Progress {
            progress,
            events_consumed: progress,
        };
        assert!(a.push(0, deltas(10, ticket(Priority::Low), 1)).is_none());
        assert!(a.push(1, deltas(10, ticket(Priority::High), 2)).is_none());
        assert!(
            a.push(0, progress(10)).is_none(),
            "partition 1 is not there yet"
        );
        assert!(a.push(0, deltas(20, ticket(Priority::Low), -1)).is_none());
        assert!(a.push(0, progress(20)).is_none());
        let batch = a.push(1, progress(10)).expect("both partitions passed 10");
        assert_eq!(batch.progress, 10);
        let mut updates = batch.updates;
        updates.sort();
        assert_eq!(
            updates,
            vec![(ticket(Priority::Low), 1), (ticket(Priority::High), 2)]
        );
        let batch = a.push(1, progress(25)).expect("both passed 20");
        assert_eq!(batch.progress, 20);
        assert_eq!(batch.updates, vec![(ticket(Priority::Low), -1)]);
        assert!(a.push(1, progress(25)).is_none(), "nothing new");
    }

    #[test]
    fn a_released_batch_counts_the_events_of_its_own_progress_not_of_a_later_one() {
        // The 2026-12-01 kill -9 flake: partition 0 had already delivered the next
        // batch's progress record (more events) while partition 1 had not; the batch
        // released then must not claim the later batch's event count.
        let mut a = Assembler::new(2);
        let progress = |progress, events_consumed| MetricRecord::Progress {
            progress,
            events_consumed,
        };
        assert!(a.push(0, progress(10, 100)).is_none());
        assert!(a.push(0, progress(20, 250)).is_none());
        let batch = a
            .push(1, progress(10, 100))
            .expect("both partitions passed 10");
        assert_eq!((batch.progress, batch.events_consumed), (10, 100));
        let batch = a.push(1, progress(20, 250)).expect("both passed 20");
        assert_eq!((batch.progress, batch.events_consumed), (20, 250));
        // A partition ahead of the others: released at the common progress, with
        // the largest count among the records at or below it.
        assert!(a.push(0, progress(40, 400)).is_none());
        let batch = a.push(1, progress(35, 350)).expect("both passed 35");
        assert_eq!((batch.progress, batch.events_consumed), (35, 350));
    }
}
