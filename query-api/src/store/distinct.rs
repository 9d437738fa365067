//! Exact distinct counts over bucket ranges, kept incrementally: [`DistinctPairs`].
//!
//! The items counted are *pairs* `(group, item)` (an agent and a conversation, or a
//! customer under a flag), each present in a set of 15-minute buckets. The number of
//! distinct pairs of a group in `[from, to)` is the number of its *occurrences*
//! (pair, bucket) in `[from, to)` whose previous occurrence of the same pair is before
//! `from` (or does not exist): each pair is counted at its first bucket in the range.
//! So every occurrence remembers the bucket of its pair's previous occurrence, and per
//! UTC day the occurrences whose previous one is on an earlier day are summed by
//! `(previous, group)`: a whole day inside the range contributes the sums whose
//! previous is before `from` (most are "none", one sum per group), and only the
//! partial days at the range's edges are read occurrence by occurrence. An
//! occurrence whose previous one is on its own day never counts for a whole day
//! inside the range (the previous one is in the range too).
//!
//! Adding or removing an occurrence changes the previous of at most one other (the
//! pair's next occurrence), so an update costs a few map operations, in any order,
//! with retractions: the state is a function of the set of occurrences only.

use foldhash::HashMap;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// Length of a UTC day.
const DAY_MS: i64 = 86_400_000;

/// The "previous occurrence" of a pair's first occurrence: before every bucket.
const NONE: i64 = i64::MIN;

/// Start of the UTC day of `ms`.
fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// One UTC day's occurrences.
#[derive(Debug, Default)]
struct Day {
    /// `(ms after the day's start, group, item)` → the bucket of the pair's previous
    /// occurrence ([`NONE`] for none): read at the range's edges.
    occurrences: HashMap<(u32, u32, u32), i64>,
    /// `(previous, group)` → occurrences of the day with that previous occurrence,
    /// for the occurrences whose previous one is before the day: read for whole days.
    before: BTreeMap<(i64, u32), i64>,
}

/// Distinct `(group, item)` pairs over bucket ranges (see the module docs). Items are
/// dense ids (an [`super::Interner`]'s); groups any `u32`.
#[derive(Debug, Default)]
pub struct DistinctPairs {
    /// Per item: `(group, bucket, entries)` for every bucket where the pair is
    /// present, sorted by group then bucket; `entries` counts the store entries
    /// behind the occurrence (facts that differ in other fields).
    chains: Vec<Vec<(u32, i64, u32)>>,
    /// Per UTC day start.
    days: BTreeMap<i64, Day>,
}

impl DistinctPairs {
    /// One more (`delta` 1) or one fewer (`delta` -1) store entry for the pair
    /// `(group, item)` in `bucket`; the pair is present in `bucket` while it has
    /// entries there.
    pub fn apply(&mut self, bucket: i64, group: u32, item: u32, delta: i32) {
        let i = item as usize;
        if self.chains.len() <= i {
            self.chains.resize_with(i + 1, Vec::new);
        }
        let chain = &mut self.chains[i];
        let at = chain.partition_point(|&(g, b, _)| (g, b) < (group, bucket));
        let found = chain
            .get(at)
            .is_some_and(|&(g, b, _)| (g, b) == (group, bucket));
        let prev = at
            .checked_sub(1)
            .and_then(|p| chain.get(p))
            .filter(|(g, _, _)| *g == group)
            .map_or(NONE, |e| e.1);
        let next_at = if found { at + 1 } else { at };
        let next = chain
            .get(next_at)
            .filter(|(g, _, _)| *g == group)
            .map(|e| e.1);
        if delta > 0 {
            if found {
                chain[at].2 += 1;
                return;
            }
            chain.insert(at, (group, bucket, 1));
            if let Some(n) = next {
                self.unlink(n, group, item, prev);
                self.link(n, group, item, bucket);
            }
            self.link(bucket, group, item, prev);
        } else if delta < 0 && found {
            chain[at].2 -= 1;
            if chain[at].2 > 0 {
                return;
            }
            chain.remove(at);
            self.unlink(bucket, group, item, prev);
            if let Some(n) = next {
                self.unlink(n, group, item, bucket);
                self.link(n, group, item, prev);
            }
        }
    }

    /// Records the occurrence `(group, item)` in `bucket` with its previous one.
    fn link(&mut self, bucket: i64, group: u32, item: u32, prev: i64) {
        let day = day_of(bucket);
        let d = self.days.entry(day).or_default();
        d.occurrences
            .insert((offset(bucket, day), group, item), prev);
        if prev < day {
            *d.before.entry((prev, group)).or_default() += 1;
        }
    }

    /// Forgets the occurrence `(group, item)` in `bucket`, whose previous one is `prev`.
    fn unlink(&mut self, bucket: i64, group: u32, item: u32, prev: i64) {
        let day = day_of(bucket);
        let Some(d) = self.days.get_mut(&day) else {
            return;
        };
        d.occurrences.remove(&(offset(bucket, day), group, item));
        if prev < day
            && let Entry::Occupied(mut e) = d.before.entry((prev, group))
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        if d.occurrences.is_empty() {
            self.days.remove(&day);
        }
    }

    /// Calls `f(group, n)` with, summed over the calls of a group, the number of
    /// distinct pairs of that group present in some bucket of `[from, to)`.
    pub fn count(&self, from: i64, to: i64, mut f: impl FnMut(u32, i64)) {
        if from >= to {
            return;
        }
        let first_day = day_of(from + DAY_MS - 1);
        let last_day = day_of(to);
        for (&day, d) in self.days.range(day_of(from)..to) {
            if first_day <= day && day < last_day {
                for (&(_, g), &n) in d.before.range(..(from, 0)) {
                    f(g, n);
                }
            } else {
                for (&(o, g, _), &prev) in &d.occurrences {
                    let b = day + i64::from(o);
                    if from <= b && b < to && prev < from {
                        f(g, 1);
                    }
                }
            }
        }
    }
}

/// A bucket as ms after its day's start.
fn offset(bucket: i64, day: i64) -> u32 {
    u32::try_from(bucket - day).expect("within the day")
}
