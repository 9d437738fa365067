//! The set of final entities' hashes: one 64-bit hash per entity that ever became
//! final, so it grows with history (4.3M at 217 days of the simulated team, 7.3M at
//! 365). It is looked up for every event that names an entity not live, and carried by
//! every checkpoint, so what it costs to build and to write matters as much as a
//! lookup:
//!
//! - most hashes are in a **sorted array** with a bucket index on their top bits
//!   (a lookup reads one index entry and a few neighbouring hashes: two or three cache
//!   misses, like a hash table's), 8 bytes per hash where a hash set takes about 18 at
//!   its load factor;
//! - the hashes added since the array was last rebuilt are in a small hash set, merged
//!   into the array when it reaches a quarter of the array's size (each hash is moved
//!   a few times in all, as in a log-structured merge);
//! - a checkpoint writes the array as raw little-endian bytes (one copy) and the
//!   recent hashes after it; a start reads the array back as it is and rebuilds only
//!   the index. Inserting 4.3M random hashes into a hash set took 0.4–0.7 s at every
//!   start; reading the array takes tens of milliseconds.

use foldhash::{HashSet, HashSetExt as _};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The least number of recent hashes merged into the array (so that a small set is
/// not rebuilt for every few hashes); small in tests, so that they merge often.
const MERGE_AT_LEAST: usize = if cfg!(test) { 64 } else { 1 << 16 };

/// Bits of the hash that pick an index bucket: about 4 hashes per bucket, at least
/// one bucket.
fn index_bits(len: usize) -> u32 {
    (usize::BITS - (len / 4).leading_zeros()).min(32)
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tombstones {
    /// Sorted, distinct.
    sorted: Vec<u64>,
    /// `index[b]`: the first position in `sorted` of a hash whose top `bits` are at
    /// least `b`; one more entry than buckets, the last `sorted.len()`.
    index: Vec<u32>,
    bits: u32,
    /// Added since `sorted` was last rebuilt; none of them is in `sorted`.
    recent: HashSet<u64>,
}

impl Tombstones {
    /// Whether `hash` is in the set.
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.recent.contains(&hash) || self.in_sorted(hash)
    }

    fn in_sorted(&self, hash: u64) -> bool {
        if self.sorted.is_empty() {
            return false;
        }
        let bucket = if self.bits == 0 {
            0
        } else {
            (hash >> (64 - self.bits)) as usize
        };
        let (from, to) = (self.index[bucket] as usize, self.index[bucket + 1] as usize);
        self.sorted[from..to].binary_search(&hash).is_ok()
    }

    /// Adds `hash`. (Not looked up in the array first: an entity is finalized once, so
    /// a hash is new but for a collision, and [`Tombstones::merge`] drops repeats.)
    pub(crate) fn insert(&mut self, hash: u64) {
        self.recent.insert(hash);
        if self.recent.len() >= (self.sorted.len() / 4).max(MERGE_AT_LEAST) {
            self.merge();
        }
    }

    /// Hashes in the set (a hash added again since the last merge counts twice until
    /// the next).
    pub(crate) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Moves the recent hashes into the sorted array.
    fn merge(&mut self) {
        let mut recent: Vec<u64> = self.recent.drain().collect();
        recent.sort_unstable();
        let old = std::mem::take(&mut self.sorted);
        let mut merged = Vec::with_capacity(old.len() + recent.len());
        let (mut a, mut b) = (old.into_iter().peekable(), recent.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(next) = next
                && merged.last() != Some(&next)
            {
                merged.push(next);
            }
        }
        self.sorted = merged;
        self.reindex();
    }

    /// Rebuilds the bucket index of `sorted`.
    fn reindex(&mut self) {
        self.bits = index_bits(self.sorted.len());
        let buckets = 1usize << self.bits;
        let mut index = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for bucket in 0..buckets as u64 {
            // The least hash of `bucket`: its top bits, zeros below.
            let least = if self.bits == 0 {
                0
            } else {
                bucket << (64 - self.bits)
            };
            while at < self.sorted.len() && self.sorted[at] < least {
                at += 1;
            }
            index.push(at as u32);
        }
        index.push(self.sorted.len() as u32);
        self.index = index;
    }
}

/// On disk: the sorted array as raw little-endian bytes, then the recent hashes.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(borrow, with = "serde_bytes")]
    sorted: std::borrow::Cow<'a, [u8]>,
    recent: Vec<u64>,
}

impl Serialize for Tombstones {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted = Vec::with_capacity(self.sorted.len() * 8);
        for hash in &self.sorted {
            sorted.extend_from_slice(&hash.to_le_bytes());
        }
        Stored {
            sorted: sorted.into(),
            recent: self.recent.iter().copied().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Tombstones {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
        if stored.sorted.len() % 8 != 0 {
            return Err(D::Error::custom("tombstones: not a whole number of hashes"));
        }
        let sorted: Vec<u64> = stored
            .sorted
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect();
        if !sorted.windows(2).all(|w| w[0] < w[1]) {
            return Err(D::Error::custom("tombstones: the array is not sorted"));
        }
        if sorted.len() > u32::MAX as usize {
            return Err(D::Error::custom("tombstones: too many"));
        }
        let mut set = Self {
            sorted,
            ..Self::default()
        };
        set.reindex();
        set.recent = HashSet::with_capacity(stored.recent.len());
        for hash in stored.recent {
            set.insert(hash);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever was inserted (duplicates, any number of merges) is found, nothing
        /// else is, and a round trip through a checkpoint's encoding keeps the set.
        #[test]
        fn holds_exactly_what_was_inserted_across_merges_and_checkpoints(
            hashes in proptest::collection::vec(
                prop_oneof![any::<u64>(), 0u64..512, (u64::MAX - 512)..=u64::MAX],
                0..5_000,
            ),
            probes in proptest::collection::vec(any::<u64>(), 0..1_000),
            restart_at in 0usize..5_000,
        ) {
            let mut set = Tombstones::default();
            let mut model = std::collections::BTreeSet::new();
            for (i, h) in hashes.iter().enumerate() {
                if i == restart_at {
                    let bytes = postcard::to_allocvec(&set).unwrap();
                    set = postcard::from_bytes(&bytes).unwrap();
                }
                set.insert(*h);
                model.insert(*h);
                // Neighbours of what is held are the likeliest mistakes of an index.
                if i % 100 == 0 {
                    prop_assert!(set.contains(*h));
                }
            }
            // Repeats since the last merge count until the next one.
            set.merge();
            prop_assert_eq!(set.len(), model.len());
            for h in &hashes {
                prop_assert!(set.contains(*h));
            }
            let neighbours = hashes.iter().flat_map(|h| [h.wrapping_add(1), h.wrapping_sub(1)]);
            for p in probes.iter().copied().chain(neighbours) {
                prop_assert_eq!(set.contains(p), model.contains(&p), "{}", p);
            }
            let bytes = postcard::to_allocvec(&set).unwrap();
            let mut back: Tombstones = postcard::from_bytes(&bytes).unwrap();
            back.merge();
            prop_assert_eq!(back.len(), model.len());
            for p in probes.iter().chain(hashes.iter()) {
                prop_assert_eq!(back.contains(*p), model.contains(p));
            }
        }
    }

    #[test]
    fn the_extremes_of_the_hash_space_are_found() {
        let mut set = Tombstones::default();
        for h in [0, 1, u64::MAX, u64::MAX - 1, 1 << 63] {
            set.insert(h);
        }
        set.merge();
        for h in [0, 1, u64::MAX, u64::MAX - 1, 1 << 63] {
            assert!(set.contains(h), "{h}");
        }
        assert!(!set.contains(2));
        assert!(!set.contains((1 << 63) - 1));
    }

    #[test]
    fn a_damaged_array_is_an_error_not_a_wrong_set() {
        let stored = Stored {
            sorted: [2u64, 1]
                .iter()
                .flat_map(|h| h.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
            recent: vec![],
        };
        let bytes = postcard::to_allocvec(&stored).unwrap();
        assert!(postcard::from_bytes::<Tombstones>(&bytes).is_err());
    }
}
