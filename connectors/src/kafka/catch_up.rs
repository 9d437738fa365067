//! [`ReadToEnd`]: when a reader that started at the first offset of every partition
//! has read everything that was in the topic when it opened.
//!
//! The rule has two parts. First, every partition must have delivered a message at
//! or past its high watermark at open minus one. Second, a poll after that must have
//! found nothing: tansu 0.6 answers `ListOffsets(latest)` with the base offset of the
//! partition's last record batch plus one, so the last batch's other records lie
//! beyond the mark. Fetches do return them, and a reader that stopped at the mark
//! would miss them (the metrics sink's read-back would then publish their deltas a
//! second time). A high watermark of 0 is exact even on tansu: a topic whose
//! partitions are all empty is caught up at once.
//!
//! The tracker is pure bookkeeping: the caller polls its consumer and reports each
//! message ([`ReadToEnd::message`]) and each poll that returned nothing
//! ([`ReadToEnd::nothing_more`]). A poll that returned an error is neither.

use std::collections::{HashMap, HashSet};

/// Tracks a read from the start of every partition up to the end of the topic as it
/// was when the reader opened.
#[derive(Debug, Clone)]
pub struct ReadToEnd {
    /// High watermark of each partition when the reader opened.
    marks: HashMap<i32, i64>,
    /// The partitions, sorted.
    partitions: Vec<i32>,
    /// Partitions not yet read up to their mark.
    behind: HashSet<i32>,
    /// A poll found nothing after `behind` became empty.
    drained: bool,
}

impl ReadToEnd {
    /// A tracker for a topic whose partitions had the high watermarks `marks` when
    /// the reader opened.
    pub fn new(marks: HashMap<i32, i64>) -> Self {
        Self::starting_at(marks, &HashMap::new())
    }

    /// A tracker for a reader that starts each partition at its offset in `starts`
    /// (the first offset for a partition not in it), as a resume from a checkpoint
    /// does: a partition whose start is at or past its mark is not behind.
    pub fn starting_at(marks: HashMap<i32, i64>, starts: &HashMap<i32, i64>) -> Self {
        let mut partitions: Vec<i32> = marks.keys().copied().collect();
        partitions.sort_unstable();
        let behind: HashSet<i32> = marks
            .iter()
            .filter(|(p, high)| **high > starts.get(p).copied().unwrap_or(0))
            .map(|(p, _)| *p)
            .collect();
        Self {
            // Every partition empty: nothing to drain. A partition that starts at or
            // past its mark may still hold more (tansu's lagging mark): a poll decides.
            drained: marks.values().all(|high| *high == 0),
            marks,
            partitions,
            behind,
        }
    }

    /// The topic's partitions, sorted.
    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// Each partition's high watermark when the reader opened.
    pub fn marks(&self) -> &HashMap<i32, i64> {
        &self.marks
    }

    /// Messages the topic held by its high watermarks at open (a lower bound on
    /// brokers whose marks lag).
    pub fn messages_at_open(&self) -> i64 {
        self.marks.values().sum()
    }

    /// Partitions not yet read up to their mark.
    pub fn behind(&self) -> &HashSet<i32> {
        &self.behind
    }

    /// Notes that a poll returned the message at `offset` of `partition`.
    pub fn message(&mut self, partition: i32, offset: i64) {
        if self.marks.get(&partition).is_some_and(|h| offset + 1 >= *h) {
            self.behind.remove(&partition);
        }
    }

    /// Notes that a poll found nothing more (it waited its whole timeout without a
    /// message). Once every partition has reached its mark, this ends the read.
    pub fn nothing_more(&mut self) {
        if self.behind.is_empty() {
            self.drained = true;
        }
    }

    /// True once everything that was in the topic at open has been read: every
    /// partition up to its mark, and then one poll that found nothing more.
    pub fn caught_up(&self) -> bool {
        self.behind.is_empty() && self.drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(marks: &[(i32, i64)]) -> ReadToEnd {
        ReadToEnd::new(marks.iter().copied().collect())
    }

    #[test]
    fn a_topic_of_empty_partitions_is_caught_up_at_once() {
        let t = tracker(&[(0, 0), (1, 0)]);
        assert!(t.caught_up());
        assert_eq!(t.partitions(), &[0, 1]);
        assert_eq!(t.messages_at_open(), 0);
    }

    #[test]
    fn reaching_every_mark_is_not_enough_without_an_empty_poll_after_it() {
        let mut t = tracker(&[(1, 3), (0, 2)]);
        assert_eq!(t.partitions(), &[0, 1], "sorted");
        assert_eq!(t.messages_at_open(), 5);
        t.message(0, 0);
        t.message(0, 1);
        assert!(!t.caught_up());
        assert_eq!(t.behind(), &HashSet::from([1]));
        t.message(1, 2);
        assert!(t.behind().is_empty());
        assert!(
            !t.caught_up(),
            "tansu's mark may lag the last batch: read on until a poll finds nothing"
        );
        // Records of the last batch beyond the mark still come in.
        t.message(1, 3);
        t.message(1, 4);
        assert!(!t.caught_up());
        t.nothing_more();
        assert!(t.caught_up());
        // Caught up stays caught up: later messages are new input.
        t.message(0, 2);
        assert!(t.caught_up());
    }

    #[test]
    fn an_empty_poll_before_the_marks_are_reached_does_not_count() {
        let mut t = tracker(&[(0, 2), (1, 1)]);
        t.nothing_more();
        t.message(1, 0);
        t.nothing_more();
        assert!(!t.caught_up(), "partition 0 is still behind");
        t.message(0, 1);
        assert!(
            !t.caught_up(),
            "the earlier empty polls were before the marks"
        );
        t.nothing_more();
        assert!(t.caught_up());
    }

    #[test]
    fn a_reader_resumed_at_offsets_is_behind_only_where_the_topic_has_more() {
        let marks: HashMap<i32, i64> = [(0, 5), (1, 3), (2, 4)].into_iter().collect();
        let starts: HashMap<i32, i64> = [(0, 5), (1, 1)].into_iter().collect();
        let mut t = ReadToEnd::starting_at(marks, &starts);
        assert_eq!(
            t.behind(),
            &HashSet::from([1, 2]),
            "0 starts at its mark, 2 at 0"
        );
        t.message(1, 2);
        t.message(2, 3);
        assert!(!t.caught_up());
        t.nothing_more();
        assert!(t.caught_up());
        let t = ReadToEnd::starting_at([(0, 5)].into_iter().collect(), &starts);
        assert!(!t.caught_up(), "still one empty poll: tansu's mark may lag");
    }

    #[test]
    fn an_empty_partition_is_never_behind_and_an_unknown_one_is_ignored() {
        let mut t = tracker(&[(0, 0), (1, 1)]);
        assert_eq!(t.behind(), &HashSet::from([1]));
        t.message(7, 100);
        assert_eq!(t.behind(), &HashSet::from([1]));
        t.message(1, 0);
        t.nothing_more();
        assert!(t.caught_up());
    }
}
