//! A hash map split into [`SHARDS`] smaller ones, so that growing it never stops the
//! thread that owns it for long.
//!
//! A hash map doubles its table when it fills: it allocates the new table, whose pages
//! the kernel zeroes on first touch, and moves every entry. For the maps that grow
//! with traffic (the log's id hashes, the finalizer's live entities, the folds' entity
//! states: millions of entries) one doubling took 0.2–0.35 s on this machine, and the
//! thread doing it — the log's committer, the pipeline's driver, a dataflow worker —
//! holds every event behind it meanwhile: the sustained-load benchmark's probes saw
//! those pauses as their p99 (docs/benchmarks.md, "Sustained load").
//!
//! Split by a hash of the key, each shard doubles alone, moving 1/[`SHARDS`] of the
//! entries. Were the shards equal, they would also fill at the same rate and double
//! within a few hundred inserts of each other — the same pause, in 64 pieces. So they
//! are not equal: shard `i` takes a share proportional to `SHARDS + i` (from 1.1% to
//! 2.1% of the keys), their sizes span an octave, and their doublings spread over each
//! doubling period of the whole map, as many per period as there are shards. On
//! average the tables are as full as one table would be.
//!
//! The shard is picked with a fixed hasher ([`foldhash::fast::FixedState`]) independent
//! of each shard's own (randomly seeded) one. Iteration visits shard after shard, in no
//! meaningful order, as a hash map's does. A map allocates its shards on its first
//! insert, so an empty one costs four words.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use foldhash::fast::{FixedState, RandomState};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Shards per map.
pub const SHARDS: usize = 64;

type Shard<K, V> = std::collections::HashMap<K, V, RandomState>;

/// The shard selector's hasher (any fixed seed: the shards' own hashers are random).
const SELECTOR: FixedState = FixedState::with_seed(0x9e37_79b9_7f4a_7c15);

/// Bits of the selector's hash that index [`SHARD_OF_SLOT`].
const SLOT_BITS: u32 = 12;

/// Slot → shard: shard `i` owns a run of slots proportional to `SHARDS + i`.
const SHARD_OF_SLOT: [u8; 1 << SLOT_BITS] = {
    let slots = 1 << SLOT_BITS;
    let total = SHARDS * SHARDS + SHARDS * (SHARDS - 1) / 2;
    let mut table = [0u8; 1 << SLOT_BITS];
    let (mut shard, mut weight_so_far, mut slot) = (0, 0, 0);
    while shard < SHARDS {
        weight_so_far += SHARDS + shard;
        let end = weight_so_far * slots / total;
        while slot < end {
            table[slot] = shard as u8;
            slot += 1;
        }
        shard += 1;
    }
    table
};

/// See the module documentation.
pub struct ShardedMap<K, V> {
    /// Empty, or exactly [`SHARDS`] maps.
    shards: Vec<Shard<K, V>>,
    len: usize,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            shards: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Clone, V: Clone> Clone for ShardedMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards.clone(),
            len: self.len,
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn shard_of<Q: Hash + ?Sized>(key: &Q) -> usize {
    // The top bits: the best mixed of foldhash's output.
    SHARD_OF_SLOT[(SELECTOR.hash_one(key) >> (u64::BITS - SLOT_BITS)) as usize] as usize
}

impl<K, V> ShardedMap<K, V> {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, shard after shard.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Every value, shard after shard.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|s| s.values())
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in &mut self.shards {
            shard.retain(&mut keep);
        }
        self.len = self.shards.iter().map(Shard::len).sum();
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn allocate(&mut self) {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| Shard::default()).collect();
        }
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.shards.is_empty() {
            return None;
        }
        self.shards[shard_of(key)].get(key)
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.shards.is_empty() {
            return None;
        }
        self.shards[shard_of(key)].get_mut(key)
    }

    /// Whether `key` is held.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets `key`'s value; returns the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.allocate();
        let old = self.shards[shard_of(&key)].insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.shards.is_empty() {
            return None;
        }
        let old = self.shards[shard_of(key)].remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// `key`'s value, inserted with `make` when absent, and whether it was.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.allocate();
        let i = shard_of(&key);
        match self.shards[i].entry(key) {
            Entry::Occupied(o) => (o.into_mut(), false),
            Entry::Vacant(v) => {
                self.len += 1;
                (v.insert(make()), true)
            }
        }
    }

    /// `key`'s value, inserted as `V::default()` when absent.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(key, V::default).0
    }
}

impl<K: Serialize, V: Serialize> Serialize for ShardedMap<K, V> {
    /// As one map: the same bytes as a hash map of the same entries would write.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K, V> Deserialize<'de> for ShardedMap<K, V>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
        where
            K: Deserialize<'de> + Hash + Eq,
            V: Deserialize<'de>,
        {
            type Value = ShardedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = ShardedMap::new();
                while let Some((k, v)) = access.next_entry()? {
                    map.insert(k, v);
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for ShardedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Against a `BTreeMap` as the model: every operation, in a random sequence.
    #[test]
    fn behaves_as_a_map() {
        let mut map: ShardedMap<u32, u32> = ShardedMap::new();
        let mut model: BTreeMap<u32, u32> = BTreeMap::new();
        // A small xorshift: the sequence is the test's input, fixed.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..20_000u32 {
            let r = next();
            let key = (r % 3_000) as u32;
            match (r >> 32) % 6 {
                0 | 1 => assert_eq!(map.insert(key, step), model.insert(key, step)),
                2 => assert_eq!(map.remove(&key), model.remove(&key)),
                3 => {
                    let (v, new) = map.get_or_insert_with(key, || step);
                    assert_eq!(new, !model.contains_key(&key));
                    *v += 1;
                    *model.entry(key).or_insert(step) += 1;
                }
                4 => assert_eq!(map.get(&key), model.get(&key)),
                _ => {
                    if step % 1_000 == 0 {
                        map.retain(|k, _| k % 7 != 0);
                        model.retain(|k, _| k % 7 != 0);
                    }
                }
            }
            assert_eq!(map.len(), model.len());
        }
        let mut all: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_unstable();
        assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn shares_follow_the_weights() {
        let n = 64 * 96 * 20;
        let map: ShardedMap<u64, ()> = (0..n as u64).map(|k| (k, ())).collect();
        let sizes: Vec<usize> = map.shards.iter().map(Shard::len).collect();
        assert_eq!(sizes.len(), SHARDS);
        let total_weight = (0..SHARDS).map(|i| SHARDS + i).sum::<usize>();
        for (i, size) in sizes.iter().enumerate() {
            let expected = n * (SHARDS + i) / total_weight;
            assert!(
                size.abs_diff(expected) * 10 < expected,
                "shard {i}: {size} keys, {expected} expected ({sizes:?})"
            );
        }
        // The largest shard takes about twice the smallest's share.
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!((18..=22).contains(&(max * 10 / min)), "{sizes:?}");
    }

    /// The point of the weights: over one doubling of the whole map, the shards'
    /// doublings are spread out, not bunched (with equal shards, all 64 fall within
    /// about 2% of the period).
    #[test]
    fn doublings_spread_over_the_period() {
        let mut map: ShardedMap<u64, ()> = ShardedMap::new();
        let mut capacities = vec![0; SHARDS];
        let mut grown_at = Vec::new();
        for k in 0..400_000u64 {
            map.insert(k, ());
            let i = shard_of(&k);
            if map.shards[i].capacity() != capacities[i] {
                capacities[i] = map.shards[i].capacity();
                grown_at.push(k);
            }
        }
        // The doublings between 100k and 200k keys: one per shard (each shard's size
        // doubles over the period); no tenth of the period holds more than a quarter.
        let period: Vec<u64> = grown_at
            .iter()
            .copied()
            .filter(|k| (100_000..200_000).contains(k))
            .collect();
        assert!(
            (56..=72).contains(&period.len()),
            "{} doublings",
            period.len()
        );
        for tenth in 0..10 {
            let from = 100_000 + tenth * 10_000;
            let inside = period
                .iter()
                .filter(|k| (from..from + 10_000).contains(*k))
                .count();
            assert!(
                inside <= SHARDS / 4,
                "{inside} doublings in [{from}, +10k): {period:?}"
            );
        }
    }

    #[test]
    fn serializes_as_a_plain_map() {
        let map: ShardedMap<String, u32> = [("a".to_string(), 1), ("b".to_string(), 2)]
            .into_iter()
            .collect();
        let json = serde_json::to_value(&map).unwrap();
        assert_eq!(json, serde_json::json!({"a": 1, "b": 2}));
        let back: ShardedMap<String, u32> = serde_json::from_value(json).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.get("b"), Some(&2));
        let empty: ShardedMap<String, u32> = ShardedMap::new();
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        assert!(empty.get("a").is_none() && empty.is_empty());
    }
}
