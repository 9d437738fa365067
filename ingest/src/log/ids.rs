//! The id table: which `event_id`s each account has stored, so that a redelivery is
//! counted as a duplicate instead of stored twice.
//!
//! On disk ([`ID_SETS`]) an entry is `(account, UTC day of the events, commit)` → the
//! 128-bit hashes of the ids the commit accepted for that account and day, 16 bytes
//! each, back to back. A commit adds one entry per account and day it touched, in its
//! own transaction with the events, so the id table and the event table never
//! disagree. When an account's watermark enters a new UTC day ([`Ids::roll_day`]):
//! - the days the lateness horizon has passed are removed whole, a range delete (an
//!   event that old is refused as too late, so its id need not be known);
//! - each complete day still held as several entries is rewritten as one (`commit`
//!   0), so a day of single-event webhook commits does not keep an entry per event.
//!
//! The ids are hashed with SipHash-1-3 keyed by the log's random identity, so the
//! table's size does not depend on how long the ids are (a WhatsApp `wamid` is about
//! 60 characters), and no client can make two different ids collide on purpose. By
//! chance, two of an account's ids share a hash with probability about n² / 2¹²⁹ (for
//! ten million ids in the horizon, 1.5 × 10⁻²⁵).
//!
//! The committer keeps every stored hash in memory as well ([`Ids`]), loaded from the
//! table when the log opens: a lookup is one probe of a hash map instead of a B-tree
//! search. The copy is changed only by the committer, while it builds the transaction
//! that writes the same change to the table; when that transaction fails, the copy is
//! loaded again from the table, so it never holds an id the table does not.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};
use schemas::sharded::ShardedMap;

use super::{DAY_MS, LogError};

/// `(account, UTC day, commit)` → concatenated 16-byte id hashes. `commit` is the
/// committing group's first sequence number + 1, or 0 for a day rewritten as one entry.
pub(super) const ID_SETS: TableDefinition<(u64, i64, u64), &[u8]> =
    TableDefinition::new("event_ids_v3");

/// Bytes of one id hash on disk.
const HASH_BYTES: usize = 16;

/// An event id's keyed 128-bit hash, as two halves (8-byte aligned in the hash map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct IdHash(u64, u64);

impl IdHash {
    fn to_bytes(self) -> [u8; HASH_BYTES] {
        let mut out = [0; HASH_BYTES];
        out[..8].copy_from_slice(&self.0.to_le_bytes());
        out[8..].copy_from_slice(&self.1.to_le_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let half = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        Self(half(&bytes[..8]), half(&bytes[8..HASH_BYTES]))
    }
}

/// Hashes event ids with the log's key: SipHash-1-3, 128 bits.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdHasher {
    k0: u64,
    k1: u64,
}

impl IdHasher {
    /// The hasher of the log whose identity is `log_id`.
    pub(super) fn new(log_id: u128) -> Self {
        Self {
            k0: log_id as u64,
            k1: (log_id >> 64) as u64,
        }
    }

    /// The hash of `event_id` (ids are unique per account; the account is the key's
    /// first part, so it is not hashed).
    pub(super) fn hash(&self, event_id: &str) -> IdHash {
        use std::hash::Hasher as _;
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(event_id.as_bytes());
        let h = siphasher::sip128::Hasher128::finish128(&h);
        IdHash(h.h1, h.h2)
    }
}

/// The committer's copy of the id table, and the ids of the group being committed.
#[derive(Debug, Default)]
pub(super) struct Ids {
    /// Account → each stored id's hash → the UTC day of its event (sharded: the map
    /// of a busy account holds millions, and one growth must not stall a commit).
    accounts: foldhash::HashMap<u64, ShardedMap<IdHash, i64>>,
    /// The ids accepted by the group being built, by account and day, encoded.
    pending: BTreeMap<(u64, i64), Vec<u8>>,
}

impl Ids {
    /// Reads every stored id.
    pub(super) fn load<T: ReadableTable<(u64, i64, u64), &'static [u8]>>(
        table: &T,
    ) -> Result<Self, LogError> {
        let mut ids = Self::default();
        for entry in table.iter()? {
            let (key, hashes) = entry?;
            let (account, day, _) = key.value();
            let held = ids.accounts.entry(account).or_default();
            for hash in hashes.value().chunks_exact(HASH_BYTES) {
                held.insert(IdHash::from_bytes(hash), day);
            }
        }
        Ok(ids)
    }

    /// Ids held, over every account.
    pub(super) fn len(&self) -> usize {
        self.accounts.values().map(|held| held.len()).sum()
    }

    /// Whether `id` is stored for `account`, or accepted earlier in this group.
    pub(super) fn contains(&self, account: u64, id: IdHash) -> bool {
        self.accounts
            .get(&account)
            .is_some_and(|held| held.contains_key(&id))
    }

    /// Records an id the group accepts, for an event at `at_ms`: held at once (a second
    /// copy later in the group is a duplicate), written by [`Ids::write_pending`].
    pub(super) fn insert(&mut self, account: u64, id: IdHash, at_ms: i64) {
        let day = at_ms.div_euclid(DAY_MS);
        self.accounts.entry(account).or_default().insert(id, day);
        self.pending
            .entry((account, day))
            .or_default()
            .extend_from_slice(&id.to_bytes());
    }

    /// Writes the group's ids, one entry per account and day, keyed by `commit`
    /// (unique to the group and never 0: [`ID_SETS`]).
    pub(super) fn write_pending(
        &mut self,
        table: &mut redb::Table<'_, (u64, i64, u64), &'static [u8]>,
        commit: u64,
    ) -> Result<(), LogError> {
        debug_assert_ne!(commit, 0);
        for ((account, day), hashes) in std::mem::take(&mut self.pending) {
            table.insert((account, day, commit), hashes.as_slice())?;
        }
        Ok(())
    }

    /// The account's watermark entered UTC day `today`: forgets the ids of the days
    /// before `forget_before` (when the log has a horizon), and rewrites each complete
    /// day held as several entries as one.
    pub(super) fn roll_day(
        &mut self,
        table: &mut redb::Table<'_, (u64, i64, u64), &'static [u8]>,
        account: u64,
        today: i64,
        forget_before: Option<i64>,
    ) -> Result<(), LogError> {
        let mut from = i64::MIN;
        if let Some(before) = forget_before {
            table.retain_in((account, i64::MIN, 0)..(account, before, 0), |_, _| false)?;
            if let Some(held) = self.accounts.get_mut(&account) {
                held.retain(|_, day| *day >= before);
            }
            from = before;
        }
        // Days before `today` with more than one entry.
        let mut entries: BTreeMap<i64, usize> = BTreeMap::new();
        for entry in table.range((account, from, 0)..(account, today, 0))? {
            let (key, _) = entry?;
            *entries.entry(key.value().1).or_default() += 1;
        }
        for (day, _) in entries.into_iter().filter(|(_, n)| *n > 1) {
            let range = (account, day, 0)..=(account, day, u64::MAX);
            let mut all = Vec::new();
            for entry in table.range(range.clone())? {
                all.extend_from_slice(entry?.1.value());
            }
            table.retain_in(range, |_, _| false)?;
            table.insert((account, day, 0), all.as_slice())?;
        }
        Ok(())
    }
}

/// Entries per account and day, and ids, of a table: for tests.
#[cfg(test)]
pub(super) fn shape<T: ReadableTable<(u64, i64, u64), &'static [u8]>>(
    table: &T,
) -> (BTreeMap<(u64, i64), usize>, usize) {
    let mut entries = BTreeMap::new();
    let mut ids = 0;
    for entry in table.iter().unwrap() {
        let (key, hashes) = entry.unwrap();
        let (account, day, _) = key.value();
        *entries.entry((account, day)).or_default() += 1;
        ids += hashes.value().len() / HASH_BYTES;
    }
    (entries, ids)
}
