//! The embedded durable event log: crmpulse's source of truth when it runs without Kafka.
//!
//! Backed by [redb](https://docs.rs/redb), a maintained, pure-Rust, ACID embedded
//! key-value store with copy-on-write B-trees: a committed append survives a crash or a
//! `kill -9` (commits are fsynced), and readers see consistent snapshots while a writer
//! appends. It needs no C toolchain and no background compaction threads, which keeps
//! `crmpulse demo` a single self-contained process.
//!
//! Writes go through one committer thread (group commit): every [`EventLog::write`]
//! hands its batch to the committer and waits; the committer takes every batch that is
//! waiting, applies them in arrival order in **one** write transaction and **one**
//! fsync, then answers each caller with its own outcome. While one group is being
//! fsynced the next one gathers, so concurrent writers share the cost of durability
//! instead of queueing behind it.
//!
//! Invariants (by construction, not by caching):
//! - Sequence numbers are dense, start at 0 and never change: the pipeline rebuilds
//!   state by reading `0..len()` in order. The next sequence number is read from the
//!   event table itself inside the write transaction (its last key + 1), never from a
//!   copy kept outside it, so two batches can never be given the same numbers.
//! - An `event_id` is stored at most once: a second delivery is counted as a duplicate
//!   and not appended, so the log (and everything derived from it) is idempotent under
//!   retries. The id table and the event table change in the same transaction; the
//!   committer's copy of the id table in memory is loaded from it at open, and again
//!   after a failed commit ([`ids`]).
//! - Acknowledged means durable: a caller gets `Ok` only after the transaction holding
//!   its batch has committed (fsynced). A failed group commit stores nothing of any
//!   batch in it, and every caller in it gets the error.
//! - Events are stored in compressed blocks of consecutive sequence numbers
//!   ([`blocks`]); the last block is rewritten by each commit until it is full, in the
//!   same transaction as everything else, so a block is never half written.
//! - A batch and its dead letters are stored together or not at all
//!   ([`EventLog::write`]): rejected input never enters the event table; it goes to the
//!   dead-letter table with its original bytes and the reason.

mod blocks;
mod ids;

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use ids::{ID_SETS, IdHash, IdHasher, Ids};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use schemas::Event;
use tokio::sync::watch;

/// First sequence number of a block → a compressed block of protobuf-encoded
/// [`Event`]s ([`blocks`]).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("event_blocks_v2");
/// The format before blocks (until 2026-12): sequence number → one protobuf-encoded
/// [`Event`]. Moved into [`EVENTS`] when an older data dir is opened.
const EVENTS_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("events_v1");
/// How far ahead of the log's clock an event may move its account's watermark: an
/// event stamped in the future by a wrong client clock is stored, but cannot make the
/// account's real events look late.
pub const FUTURE_SLACK_MS: i64 = 3_600_000;
/// The default lateness horizon: 7 days.
pub const DEFAULT_HORIZON_MS: i64 = 7 * 86_400_000;
const DAY_MS: i64 = 86_400_000;
/// The dead-letter reason of an event older than its account's watermark − horizon.
pub const TOO_LATE: &str = "too_late";

/// How the log admits events.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The lateness horizon, ms: an event older than its account's watermark (the
    /// latest event time stored for it) minus this is refused to the dead-letter table
    /// with reason [`TOO_LATE`]; `None` admits events of any age. Ids of events older
    /// than the horizon are forgotten, so the id table holds the horizon, not the
    /// history.
    pub lateness_horizon_ms: Option<i64>,
    /// Where the commit's "now" comes from (it caps the watermark, [`FUTURE_SLACK_MS`]).
    pub clock: schemas::Clock,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            lateness_horizon_ms: Some(DEFAULT_HORIZON_MS),
            clock: schemas::Clock::system(),
        }
    }
}

/// Records moved from [`EVENTS_V1`] per transaction by the migration.
const MIGRATION_CHUNK: usize = 32 * 1024;
/// `account_id:event_id` → sequence number: the id table before the lateness horizon
/// (until 2026-12). Replaced by [`ID_SETS`] when an older data dir is opened
/// ([`upgrade_ids`]).
const EVENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("event_ids_v1");
/// `account_id:event_id` → the event's time (ms): the id table from the lateness horizon
/// until the hashed sets of [`ID_SETS`] (2026-12). Replaced like [`EVENT_IDS`].
const EVENT_IDS_V2: TableDefinition<&str, i64> = TableDefinition::new("event_ids_v2");
/// Account → its watermark: the latest event time accepted, at most the commit's "now"
/// + [`FUTURE_SLACK_MS`] (ms).
const WATERMARKS: TableDefinition<u64, i64> = TableDefinition::new("watermarks_v1");
/// Dead letters: sequence → JSON `{"reason": .., "source": .., "raw": ..}`.
const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters_v1");
/// Small named values (simulator state and the like).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_v1");

/// Batches waiting for the committer before writers block (backpressure).
const QUEUED_WRITES: usize = 256;
/// A group stops taking waiting batches once it holds this many events, so one
/// transaction stays a bounded amount of work.
const MAX_GROUP_EVENTS: usize = 200_000;

/// Errors of the event log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// Another process holds the log open.
    #[error("the event log at {0} is in use by another crmpulse process")]
    InUse(String),
    /// The storage engine failed. Shared, because one failed group commit is the error
    /// of every batch in it.
    #[error("event log storage error")]
    Storage(#[source] Arc<redb::Error>),
    /// The committer thread is gone (the log is shutting down or it panicked).
    #[error("the event log's committer has stopped")]
    Closed,
    /// A stored record does not decode; the log is damaged.
    #[error("event log record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Where.
        seq: u64,
        /// Why.
        reason: String,
    },
}

impl From<redb::Error> for LogError {
    fn from(e: redb::Error) -> Self {
        LogError::Storage(Arc::new(e))
    }
}

macro_rules! from_redb {
    ($($t:ty),+) => {$(
        impl From<$t> for LogError {
            fn from(e: $t) -> Self { LogError::Storage(Arc::new(e.into())) }
        }
    )+};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What one [`EventLog::append`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Newly stored events.
    pub accepted: u64,
    /// Events whose `event_id` was already stored (in the log or earlier in the batch).
    pub duplicates: u64,
    /// Positions (in the batch) of the events refused as older than their account's
    /// watermark − horizon; each is in the dead-letter table with reason [`TOO_LATE`].
    pub too_late: Vec<usize>,
}

/// A rejected input, stored with the batch it came in ([`EventLog::write`]).
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// Where it came from (`http`, `replay:FILE`, …).
    pub source: &'a str,
    /// The original bytes.
    pub raw: &'a [u8],
    /// Why it was rejected.
    pub reason: &'a str,
}

impl DeadLetter<'_> {
    fn encode(&self) -> Vec<u8> {
        serde_json::json!({
            "reason": self.reason,
            "source": self.source,
            "raw": String::from_utf8_lossy(self.raw),
        })
        .to_string()
        .into_bytes()
    }
}

/// One event of a [`Write`], encoded on the caller's thread.
struct Record {
    /// The hash of `event_id` ([`IdHasher`]).
    id: IdHash,
    account_id: u64,
    occurred_at_ms: i64,
    /// Protobuf.
    bytes: Vec<u8>,
}

/// One caller's batch, encoded on the caller's thread so the committer only writes.
struct Write {
    /// The events, in the caller's order.
    events: Vec<Record>,
    /// Where it came from, for the dead letters of events refused as too late.
    source: String,
    /// Encoded dead-letter records.
    dead_letters: Vec<Vec<u8>>,
    reply: mpsc::SyncSender<Result<AppendOutcome, LogError>>,
}

/// The durable, append-only, deduplicating event log. Cheap to share behind an `Arc`.
pub struct EventLog {
    db: Arc<Database>,
    /// Number of stored events; readers wait on it for new data. Only the committer
    /// sends on it, after each commit, so it never goes backwards.
    len: Arc<watch::Sender<u64>>,
    /// The committer's queue; `None` once shutting down.
    writes: Option<mpsc::SyncSender<Write>>,
    committer: Option<JoinHandle<()>>,
    /// Hashes the ids of appended events, on the caller's thread.
    hasher: IdHasher,
}

/// What the committer needs besides the database.
struct Admission {
    horizon_ms: Option<i64>,
    clock: schemas::Clock,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("len", &*self.len.borrow())
            .finish()
    }
}

impl Drop for EventLog {
    /// Stops the committer after it has answered every batch already handed to it, so
    /// the file is closed when this returns (a reopen in the same process succeeds).
    fn drop(&mut self) {
        self.writes.take();
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }
}

impl EventLog {
    /// Opens (creating if needed) the log in `dir/events.redb`, with the default
    /// [`LogOptions`] (7-day horizon, system clock).
    ///
    /// # Errors
    /// [`LogError::InUse`] when another process has it open; storage errors otherwise.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        Self::open_with(dir, LogOptions::default())
    }

    /// Opens (creating if needed) the log in `dir/events.redb`.
    ///
    /// # Errors
    /// [`LogError::InUse`] when another process has it open; storage errors otherwise.
    pub fn open_with(dir: &Path, options: LogOptions) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::from(redb::Error::from(redb::StorageError::Io(e))))?;
        let path = dir.join("events.redb");
        let mut db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(LogError::InUse(path.display().to_string()));
            }
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let txn = db.begin_write()?;
        let log_id = {
            txn.open_table(EVENTS)?;
            txn.open_table(WATERMARKS)?;
            txn.open_table(DEAD_LETTERS)?;
            let mut meta = txn.open_table(META)?;
            // The log's identity, made once: what a checkpoint names its log by, and
            // the key of its id hashes.
            let stored = meta.get(LOG_ID)?.map(|v| log_id_of(v.value()));
            match stored {
                Some(id) => id,
                None => {
                    let id = rand::random::<u128>();
                    meta.insert(LOG_ID, id.to_le_bytes().as_slice())?;
                    id
                }
            }
        };
        txn.commit()?;
        let hasher = IdHasher::new(log_id);
        migrate_v1(&db)?;
        upgrade_ids(&db, hasher, options.lateness_horizon_ms)?;
        compact_if_sparse(&mut db, &path)?;
        let ids = load_ids(&db)?;
        let len = next_seq(&db.begin_read()?.open_table(EVENTS)?)?;
        let db = Arc::new(db);
        let len = Arc::new(watch::Sender::new(len));
        let (writes, queue) = mpsc::sync_channel(QUEUED_WRITES);
        let committer = {
            let db = Arc::clone(&db);
            let len = Arc::clone(&len);
            let admission = Admission {
                horizon_ms: options.lateness_horizon_ms,
                clock: options.clock,
            };
            std::thread::Builder::new()
                .name("crmpulse-log-commit".into())
                .spawn(move || commit_loop(&db, &admission, ids, &len, &queue))
                .map_err(|e| LogError::from(redb::Error::from(redb::StorageError::Io(e))))?
        };
        Ok(Self {
            db,
            len,
            writes: Some(writes),
            committer: Some(committer),
            hasher,
        })
    }

    /// The log's identity: random, made when the log was created, never changed. A
    /// checkpoint carries it, so that one found beside another log (a restored or
    /// recreated `events.redb`) is not taken for this log's.
    ///
    /// # Errors
    /// Storage errors.
    pub fn id(&self) -> Result<u128, LogError> {
        Ok(log_id_of(&self.meta(LOG_ID)?.unwrap_or_default()))
    }

    /// Number of events stored.
    pub fn len(&self) -> u64 {
        *self.len.borrow()
    }

    /// True when no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver that changes whenever events are appended; its value is [`Self::len`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.len.subscribe()
    }

    /// Appends events durably, skipping those whose `event_id` is already stored.
    /// Blocking (it waits for the group commit's fsync): call it from a blocking
    /// thread in async code.
    ///
    /// # Errors
    /// Storage errors; on error nothing of the batch is stored.
    pub fn append(&self, events: &[Event]) -> Result<AppendOutcome, LogError> {
        self.write("append", events, &[])
    }

    /// Stores a batch and the dead letters rejected from the same input in one atomic
    /// write: both are stored, or (on error) neither. Returns when they are durable.
    /// Blocking, like [`Self::append`]. Events older than their account's watermark −
    /// the horizon are stored as dead letters from `source` instead
    /// ([`AppendOutcome::too_late`]).
    ///
    /// # Errors
    /// Storage errors; [`LogError::Closed`] when the log is shutting down.
    pub fn write(
        &self,
        source: &str,
        events: &[Event],
        dead_letters: &[DeadLetter<'_>],
    ) -> Result<AppendOutcome, LogError> {
        if events.is_empty() && dead_letters.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let events = events
            .iter()
            .map(|e| Record {
                id: self.hasher.hash(&e.event_id),
                account_id: e.account_id,
                occurred_at_ms: e.occurred_at_ms,
                bytes: e.to_proto_bytes(),
            })
            .collect();
        let dead_letters = dead_letters.iter().map(DeadLetter::encode).collect();
        let (reply, answer) = mpsc::sync_channel(1);
        self.writes
            .as_ref()
            .ok_or(LogError::Closed)?
            .send(Write {
                events,
                source: source.to_owned(),
                dead_letters,
                reply,
            })
            .map_err(|_| LogError::Closed)?;
        answer.recv().map_err(|_| LogError::Closed)?
    }

    /// Reads up to `max` records starting at sequence `from`, in order, and returns
    /// the decoded events with the sequence number to continue from.
    ///
    /// A record that no longer decodes (a damaged file, or one written by an
    /// incompatible version) is skipped, logged and counted in
    /// `crmpulse_log_corrupt_records_total`: one bad record never stops the pipeline.
    ///
    /// # Errors
    /// Storage errors.
    pub fn read(&self, from: u64, max: usize) -> Result<(Vec<Event>, u64), LogError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(max.min(65_536));
        let mut next = from;
        // The block holding `from` starts at or before it.
        let start = table
            .range(..=from)?
            .next_back()
            .transpose()?
            .map_or(from, |(first, _)| first.value());
        let mut taken = 0;
        for entry in table.range(start..)? {
            if taken == max {
                break;
            }
            let (first, block) = entry?;
            let first = first.value();
            let records = match blocks::decode(block.value()) {
                Ok(records) => records,
                Err(e) => {
                    // Every record of the block is lost; the next block starts where
                    // its header says this one ends (or, without a header, at its key).
                    let count = blocks::count(block.value()).unwrap_or(0) as u64;
                    let err = LogError::Corrupt {
                        seq: first,
                        reason: format!("block of {count} records: {e}"),
                    };
                    tracing::error!(error = %err, "skipping an unreadable log block");
                    metrics::counter!("crmpulse_log_corrupt_records_total").increment(count);
                    next = next.max(first + count);
                    continue;
                }
            };
            for (seq, bytes) in (first..).zip(records) {
                if seq < from {
                    continue;
                }
                if taken == max {
                    break;
                }
                taken += 1;
                next = seq + 1;
                out.extend(decode_record(seq, &bytes));
            }
        }
        Ok((out, next))
    }

    /// The events at `positions` (ascending), in that order: what a restart from a
    /// checkpoint replays. Each block holding one of them is decompressed once; only
    /// the records asked for are decoded. A position past the end, or a record that
    /// does not decode, is skipped and counted as [`EventLog::read`] does.
    ///
    /// # Errors
    /// Storage errors.
    pub fn read_positions(&self, positions: &[u64]) -> Result<Vec<Event>, LogError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(positions.len());
        // The block decoded last: its first sequence number, raw bytes and records.
        type Block = (u64, Vec<u8>, Vec<std::ops::Range<usize>>);
        let mut block: Option<Block> = None;
        for &seq in positions {
            let held = block.as_ref().is_some_and(|(first, _, records)| {
                seq >= *first && seq < first + records.len() as u64
            });
            if !held {
                let Some(entry) = table.range(..=seq)?.next_back() else {
                    continue;
                };
                let (first, bytes) = entry?;
                match blocks::decode_ranges(bytes.value()) {
                    Ok((raw, records)) => block = Some((first.value(), raw, records)),
                    Err(e) => {
                        let err = LogError::Corrupt {
                            seq,
                            reason: format!("block: {e}"),
                        };
                        tracing::error!(error = %err, "skipping an unreadable log record");
                        metrics::counter!("crmpulse_log_corrupt_records_total").increment(1);
                        block = None;
                        continue;
                    }
                }
            }
            let Some((first, raw, records)) = &block else {
                continue;
            };
            let Some(range) = records.get((seq - first) as usize) else {
                continue;
            };
            out.extend(decode_record(seq, &raw[range.clone()]));
        }
        Ok(out)
    }

    /// Stores a rejected input with the reason, for inspection and replay after a fix.
    /// Durable when it returns.
    ///
    /// # Errors
    /// Storage errors.
    pub fn dead_letter(&self, source: &str, raw: &[u8], reason: &str) -> Result<(), LogError> {
        self.write(
            source,
            &[],
            &[DeadLetter {
                source,
                raw,
                reason,
            }],
        )
        .map(|_| ())
    }

    /// All dead letters, oldest first, as stored JSON values.
    ///
    /// # Errors
    /// Storage errors.
    pub fn dead_letters(&self) -> Result<Vec<serde_json::Value>, LogError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DEAD_LETTERS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, bytes) = entry?;
            out.push(serde_json::from_slice(bytes.value()).unwrap_or(serde_json::Value::Null));
        }
        Ok(out)
    }

    /// Reads a small named value.
    ///
    /// # Errors
    /// Storage errors.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, LogError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        Ok(table.get(name)?.map(|v| v.value().to_vec()))
    }

    /// Writes a small named value.
    ///
    /// # Errors
    /// Storage errors.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), LogError> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.insert(name, value)?;
        txn.commit()?;
        Ok(())
    }
}

/// The event stored at `seq`, or `None` (logged and counted in
/// `crmpulse_log_corrupt_records_total`) when its bytes do not decode: one bad record
/// never stops a reader.
fn decode_record(seq: u64, bytes: &[u8]) -> Option<Event> {
    match Event::from_proto_bytes(bytes) {
        Ok(event) => Some(event),
        Err(e) => {
            let err = LogError::Corrupt {
                seq,
                reason: e.to_string(),
            };
            tracing::error!(error = %err, "skipping an unreadable log record");
            metrics::counter!("crmpulse_log_corrupt_records_total").increment(1);
            None
        }
    }
}

/// The meta key of the log's identity ([`EventLog::id`]).
const LOG_ID: &str = "log_id";

/// The log's identity as stored in [`META`].
fn log_id_of(bytes: &[u8]) -> u128 {
    <[u8; 16]>::try_from(bytes).map_or(0, u128::from_le_bytes)
}

/// The next free sequence number of a sequence-keyed table: its last key + 1.
fn next_key<T: ReadableTable<u64, &'static [u8]>>(table: &T) -> Result<u64, LogError> {
    Ok(table.last()?.map_or(0, |(seq, _)| seq.value() + 1))
}

/// The next free sequence number of the event table: its last block's first sequence
/// number + the records it holds.
fn next_seq<T: ReadableTable<u64, &'static [u8]>>(table: &T) -> Result<u64, LogError> {
    let Some((first, block)) = table.last()? else {
        return Ok(0);
    };
    let count = blocks::count(block.value()).map_err(|e| LogError::Corrupt {
        seq: first.value(),
        reason: format!("the last block: {e}"),
    })?;
    Ok(first.value() + count as u64)
}

/// Appends `records` to the event table after its current last record: the last block
/// (the open one) is decoded and packed again with them ([`blocks::pack`]): it is
/// rewritten, and the blocks it fills are followed by new ones. Returns the table's new
/// length.
fn append_blocks<R: AsRef<[u8]>>(
    table: &mut redb::Table<'_, u64, &'static [u8]>,
    records: &[R],
) -> Result<u64, LogError> {
    let mut next = next_seq(table)?;
    if records.is_empty() {
        return Ok(next);
    }
    let tail = table.last()?.and_then(|(first, block)| {
        let block = block.value();
        (!blocks::is_full(block)).then(|| (first.value(), blocks::decode(block)))
    });
    // A damaged last block is left as it is (its records are skipped by readers); new
    // records go to a block of their own. So do they after a full block: packing it
    // again would only compress it again to seal it.
    let (mut first, held) = match tail {
        Some((first, Ok(held))) if !held.is_empty() => (first, held),
        _ => (next, Vec::new()),
    };
    let all: Vec<&[u8]> = held
        .iter()
        .map(Vec::as_slice)
        .chain(records.iter().map(AsRef::as_ref))
        .collect();
    for (count, block) in blocks::pack(&all) {
        table.insert(first, block.as_slice())?;
        first += count as u64;
    }
    next += records.len() as u64;
    debug_assert_eq!(first, next);
    Ok(next)
}

/// Compacts the log's file when at least an eighth of it, and 1 MiB, is free pages.
///
/// redb never shrinks its file: pages a commit frees are reused by later commits, but
/// a burst (a backfill, a large replay of imports) leaves its high-water mark behind,
/// a third of the demo's file after its 35-day backfill. Compaction moves pages down
/// and truncates; it needs the database to itself, so it runs at open, before any
/// reader. It takes about 40 ms for the demo's 71 MB file.
fn compact_if_sparse(db: &mut Database, path: &Path) -> Result<(), LogError> {
    const MIN_FREE: u64 = 1024 * 1024;
    let file = std::fs::metadata(path)
        .map_err(|e| LogError::from(redb::Error::from(redb::StorageError::Io(e))))?
        .len();
    let used = {
        let txn = db.begin_write()?;
        let stats = txn.stats()?;
        txn.abort()?;
        stats.allocated_pages() * stats.page_size() as u64
    };
    let free = file.saturating_sub(used);
    if free < MIN_FREE || free * 8 < file {
        return Ok(());
    }
    let started = std::time::Instant::now();
    db.compact().map_err(redb::Error::from)?;
    let after = std::fs::metadata(path).map_or(0, |m| m.len());
    tracing::info!(
        before_bytes = file,
        after_bytes = after,
        ms = started.elapsed().as_millis() as u64,
        "compacted the event log's file"
    );
    Ok(())
}

/// Moves the records of a data dir written before blocks ([`EVENTS_V1`]) into
/// [`EVENTS`], in chunks of [`MIGRATION_CHUNK`], each in one transaction: a crash
/// during the move loses nothing (a chunk is moved whole or not at all), and the next
/// open continues where it stopped. Sequence numbers are kept.
fn migrate_v1(db: &Database) -> Result<(), LogError> {
    let mut moved = 0u64;
    loop {
        let txn = db.begin_write()?;
        let done = {
            // Opening creates it when absent (a new data dir): it is deleted below.
            let mut old = txn.open_table(EVENTS_V1)?;
            let mut new = txn.open_table(EVENTS)?;
            let mut chunk = Vec::with_capacity(MIGRATION_CHUNK);
            let expected = next_seq(&new)?;
            while chunk.len() < MIGRATION_CHUNK {
                let Some((seq, bytes)) = old.pop_first()? else {
                    break;
                };
                let seq = seq.value();
                if seq != expected + chunk.len() as u64 {
                    return Err(LogError::Corrupt {
                        seq,
                        reason: format!(
                            "migrating events_v1: expected sequence {}",
                            expected + chunk.len() as u64
                        ),
                    });
                }
                chunk.push(bytes.value().to_vec());
            }
            append_blocks(&mut new, &chunk)?;
            moved += chunk.len() as u64;
            chunk.len() < MIGRATION_CHUNK
        };
        if done {
            txn.delete_table(EVENTS_V1)?;
        }
        txn.commit()?;
        if done {
            break;
        }
        if moved.is_multiple_of(16 * MIGRATION_CHUNK as u64) {
            tracing::info!(moved, "moving the event log into compressed blocks");
        }
    }
    if moved > 0 {
        tracing::info!(
            moved,
            "moved the event log into compressed blocks (events_v1 → event_blocks_v2)"
        );
    }
    Ok(())
}

/// The committer: takes every waiting batch into one group, commits the group in one
/// transaction and answers each batch's caller. Ends when every sender is gone.
///
/// `ids` is the id table's copy in memory ([`ids`]). A group that fails may have
/// changed it, so it is loaded again from the table (which the failed transaction did
/// not change) before the next group; while that load fails, groups fail with its error.
fn commit_loop(
    db: &Database,
    admission: &Admission,
    ids: Ids,
    len: &watch::Sender<u64>,
    queue: &mpsc::Receiver<Write>,
) {
    let mut ids = Some(ids);
    while let Ok(first) = queue.recv() {
        let mut size = first.events.len();
        let mut group = vec![first];
        while size < MAX_GROUP_EVENTS
            && let Ok(next) = queue.try_recv()
        {
            size += next.events.len();
            group.push(next);
        }
        metrics::histogram!("crmpulse_log_group_commit_batches").record(group.len() as f64);
        let result = match ids.take() {
            Some(held) => Ok(held),
            None => load_ids(db),
        }
        .and_then(|mut held| {
            let result = commit_group(db, admission, &mut held, &group);
            if result.is_ok() {
                ids = Some(held);
            }
            result
        });
        match result {
            Ok((outcomes, next_seq)) => {
                len.send_replace(next_seq);
                let (accepted, duplicates, late) =
                    outcomes.iter().fold((0, 0, 0), |(a, d, l), o| {
                        (
                            a + o.accepted,
                            d + o.duplicates,
                            l + o.too_late.len() as u64,
                        )
                    });
                metrics::counter!("crmpulse_log_appended_events_total").increment(accepted);
                metrics::counter!("crmpulse_log_duplicate_events_total").increment(duplicates);
                metrics::counter!("crmpulse_log_too_late_events_total").increment(late);
                for (write, outcome) in group.into_iter().zip(outcomes) {
                    let _ = write.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batches = group.len(), "event log group commit failed");
                metrics::counter!("crmpulse_log_failed_commits_total").increment(1);
                for write in group {
                    let _ = write.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes a group of batches in one transaction, in order: duplicates are detected
/// against the log and against earlier batches of the same group, and events older
/// than their account's watermark − horizon go to the dead letters. Returns each
/// batch's outcome and the log's new length.
fn commit_group(
    db: &Database,
    admission: &Admission,
    ids: &mut Ids,
    group: &[Write],
) -> Result<(Vec<AppendOutcome>, u64), LogError> {
    let txn = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(group.len());
    // The watermark may not run further ahead of the log's clock than this.
    let cap = admission.clock.now_ms().saturating_add(FUTURE_SLACK_MS);
    let next = {
        let mut table = txn.open_table(EVENTS)?;
        let mut id_table = txn.open_table(ID_SETS)?;
        let mut marks = txn.open_table(WATERMARKS)?;
        let mut dead = txn.open_table(DEAD_LETTERS)?;
        // Allocated here, inside the transaction, from the tables themselves.
        let first = next_seq(&table)?;
        let mut next = first;
        let mut next_dead = next_key(&dead)?;
        let mut fresh: Vec<&[u8]> = Vec::new();
        // Each account's watermark as stored, and as this group moves it.
        let mut watermarks: foldhash::HashMap<u64, (Option<i64>, i64)> = Default::default();
        for write in group {
            let mut outcome = AppendOutcome::default();
            for record in &write.dead_letters {
                dead.insert(next_dead, record.as_slice())?;
                next_dead += 1;
            }
            for (position, record) in write.events.iter().enumerate() {
                let mark = match watermarks.entry(record.account_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let stored = marks.get(record.account_id)?.map(|m| m.value());
                        e.insert((stored, stored.unwrap_or(i64::MIN)))
                    }
                };
                if ids.contains(record.account_id, record.id) {
                    outcome.duplicates += 1;
                    continue;
                }
                if let Some(horizon) = admission.horizon_ms
                    && record.occurred_at_ms < mark.1.saturating_sub(horizon)
                {
                    let letter = too_late_letter(&write.source, record, mark.1, horizon);
                    dead.insert(next_dead, letter.as_slice())?;
                    next_dead += 1;
                    outcome.too_late.push(position);
                    continue;
                }
                mark.1 = mark.1.max(record.occurred_at_ms.min(cap));
                ids.insert(record.account_id, record.id, record.occurred_at_ms);
                fresh.push(record.bytes.as_slice());
                next += 1;
                outcome.accepted += 1;
            }
            outcomes.push(outcome);
        }
        let stored = append_blocks(&mut table, &fresh)?;
        debug_assert_eq!(stored, next);
        ids.write_pending(&mut id_table, first + 1)?;
        for (account, (stored, mark)) in watermarks {
            if stored == Some(mark) || mark == i64::MIN {
                continue;
            }
            marks.insert(account, mark)?;
            // Once per UTC day of watermark: forget the ids of the days the horizon
            // has passed whole (a redelivery that old is refused as too late, so it
            // need not be known), and make each complete day one entry.
            let today = mark.div_euclid(DAY_MS);
            if stored.is_none_or(|s| s.div_euclid(DAY_MS) != today) {
                let forget_before = admission
                    .horizon_ms
                    .map(|horizon| mark.saturating_sub(horizon).div_euclid(DAY_MS));
                ids.roll_day(&mut id_table, account, today, forget_before)?;
            }
        }
        stored
    };
    txn.commit()?;
    Ok((outcomes, next))
}

/// The id table's copy in memory, read from the database.
fn load_ids(db: &Database) -> Result<Ids, LogError> {
    let txn = db.begin_read()?;
    match txn.open_table(ID_SETS) {
        Ok(table) => Ids::load(&table),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(Ids::default()),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the id tables of older data dirs ([`EVENT_IDS`], [`EVENT_IDS_V2`]) by
/// [`ID_SETS`], in one transaction. Their keys are the ids themselves, so the sets are
/// made from the events: every event of the log, or with a horizon, those at or after
/// their account's watermark − horizon (older ones are refused as too late, so their
/// ids need not be known; an account without a watermark keeps every id). A crash
/// during the upgrade leaves the old tables, and the next open does it again.
fn upgrade_ids(db: &Database, hasher: IdHasher, horizon: Option<i64>) -> Result<(), LogError> {
    {
        use redb::TableHandle as _;
        let txn = db.begin_read()?;
        let old = [EVENT_IDS.name(), EVENT_IDS_V2.name()];
        if !txn.list_tables()?.any(|t| old.contains(&t.name())) {
            return Ok(());
        }
    }
    let started = std::time::Instant::now();
    let txn = db.begin_write()?;
    let mut ids = Ids::default();
    let mut events = 0u64;
    {
        let table = txn.open_table(EVENTS)?;
        let marks = txn.open_table(WATERMARKS)?;
        let mut cutoffs: foldhash::HashMap<u64, i64> = Default::default();
        for entry in table.iter()? {
            let (first, block) = entry?;
            let Ok(records) = blocks::decode(block.value()) else {
                continue; // counted and logged by the readers
            };
            for (seq, bytes) in (first.value()..).zip(records) {
                let Some(e) = decode_record(seq, &bytes) else {
                    continue;
                };
                let cutoff = match cutoffs.entry(e.account_id) {
                    std::collections::hash_map::Entry::Occupied(c) => *c.get(),
                    std::collections::hash_map::Entry::Vacant(c) => {
                        let mark = marks.get(e.account_id)?.map(|m| m.value());
                        *c.insert(match (mark, horizon) {
                            (Some(mark), Some(h)) => mark.saturating_sub(h),
                            _ => i64::MIN,
                        })
                    }
                };
                events += 1;
                if e.occurred_at_ms >= cutoff {
                    ids.insert(e.account_id, hasher.hash(&e.event_id), e.occurred_at_ms);
                }
            }
        }
        let mut id_table = txn.open_table(ID_SETS)?;
        // Key 1 (a commit's): the next day roll of each account makes them key 0.
        ids.write_pending(&mut id_table, 1)?;
    }
    txn.delete_table(EVENT_IDS)?;
    txn.delete_table(EVENT_IDS_V2)?;
    txn.commit()?;
    tracing::info!(
        events,
        ids = ids.len(),
        ms = started.elapsed().as_millis() as u64,
        "rebuilt the event log's id table from its events (event_ids_v1/v2 → event_ids_v3)"
    );
    Ok(())
}

/// The dead letter of an event refused as too late: the event's JSON, and why.
fn too_late_letter(source: &str, record: &Record, watermark: i64, horizon: i64) -> Vec<u8> {
    let raw = Event::from_proto_bytes(&record.bytes)
        .ok()
        .and_then(|e| serde_json::to_string(&e).ok())
        .unwrap_or_default();
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map_or_else(
            || ms.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    };
    let reason = format!(
        "{TOO_LATE}: occurred_at {} is more than the lateness horizon ({} h) before account {}'s latest event time {}",
        at(record.occurred_at_ms),
        horizon / 3_600_000,
        record.account_id,
        at(watermark),
    );
    DeadLetter {
        source,
        raw: raw.as_bytes(),
        reason: &reason,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::Payload;
    use std::collections::BTreeMap;

    fn event(id: &str, t: i64) -> Event {
        Event {
            event_id: id.into(),
            account_id: 1,
            occurred_at_ms: t,
            payload: Payload::TicketResolved {
                ticket_id: "t".into(),
            },
        }
    }

    #[test]
    fn appends_are_durable_ordered_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = EventLog::open(dir.path()).unwrap();
            let out = log
                .append(&[event("a", 1), event("b", 2), event("a", 3)])
                .unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    accepted: 2,
                    duplicates: 1,
                    too_late: vec![]
                }
            );
            let out = log.append(&[event("b", 9), event("c", 4)]).unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    accepted: 1,
                    duplicates: 1,
                    too_late: vec![]
                }
            );
            assert!(matches!(
                EventLog::open(dir.path()),
                Err(LogError::InUse(_))
            ));
        }
        let log = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.len(), 3);
        let (events, next) = log.read(0, 10).unwrap();
        let ids: Vec<_> = events.into_iter().map(|e| e.event_id).collect();
        assert_eq!(
            (ids, next),
            (vec!["a".to_string(), "b".into(), "c".into()], 3)
        );
        assert_eq!(log.read(2, 10).unwrap().0[0].occurred_at_ms, 4);
    }

    #[test]
    fn a_corrupt_record_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        log.append(&[event("a", 1)]).unwrap();
        // A record that does not decode, in a block of its own at sequence 1.
        let txn = log.db.begin_write().unwrap();
        txn.open_table(EVENTS)
            .unwrap()
            .insert(1, blocks::encode(&[[0xff_u8, 0xff]]).as_slice())
            .unwrap();
        txn.commit().unwrap();
        log.append(&[event("c", 3)]).unwrap();
        let (events, next) = log.read(0, 10).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!((ids, next), (vec!["a", "c"], 3));
        // A block that does not decompress at all: its records are skipped, the
        // records after it are read, and appends go on after it.
        let txn = log.db.begin_write().unwrap();
        let mut garbage = blocks::encode(&[b"x".to_vec(), b"y".to_vec()]);
        let last = garbage.len() - 1;
        garbage[8..last].fill(0xee);
        txn.open_table(EVENTS)
            .unwrap()
            .insert(3, garbage.as_slice())
            .unwrap();
        txn.commit().unwrap();
        log.append(&[event("f", 6)]).unwrap();
        let (events, next) = log.read(0, 10).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!((ids, next), (vec!["a", "c", "f"], 6));
        assert_eq!(log.read(4, 10).unwrap().0[0].event_id, "f");
    }

    #[test]
    fn reads_from_any_position_across_blocks_return_the_appended_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let mut n = 0;
        // Batches of 1 to 1025 events: some fill the tail block, some span several.
        // Ids of hashed digits compress like real ones (about 3×), so blocks seal.
        for size in [1, 3, 700, 1, 511, 2, 1025, 9] {
            let batch: Vec<Event> = (n..n + size)
                .map(|i| {
                    let hash = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    event(&format!("e{i}-{hash:x}{:x}", hash.rotate_left(17)), i)
                })
                .collect();
            log.append(&batch).unwrap();
            n += size;
        }
        assert_eq!(log.len(), n as u64);
        let blocks = {
            use redb::ReadableTableMetadata as _;
            log.db
                .begin_read()
                .unwrap()
                .open_table(EVENTS)
                .unwrap()
                .len()
                .unwrap()
        };
        assert!(blocks >= 3, "{n} events in {blocks} blocks");
        for (from, max) in [
            (0, 5000),
            (0, 1),
            (511, 3),
            (512, 1),
            (700, 800),
            (2251, 10),
            (2252, 1),
        ] {
            let (events, next) = log.read(from, max).unwrap();
            let want: Vec<i64> = (from as i64..(from as i64 + max as i64).min(n)).collect();
            let got: Vec<i64> = events.iter().map(|e| e.occurred_at_ms).collect();
            assert_eq!(got, want, "from {from} max {max}");
            assert_eq!(next, from + want.len() as u64);
        }
        // Scattered positions, some sharing a block, one past the end.
        let positions = [
            0,
            1,
            511,
            512,
            700,
            701,
            1500,
            2251,
            n as u64 - 1,
            n as u64 + 4,
        ];
        let got: Vec<i64> = log
            .read_positions(&positions)
            .unwrap()
            .iter()
            .map(|e| e.occurred_at_ms)
            .collect();
        let want: Vec<i64> = positions[..positions.len() - 1]
            .iter()
            .map(|p| *p as i64)
            .collect();
        assert_eq!(got, want);
        drop(log);
        // Reopened: the length and the tail block carry on.
        let log = EventLog::open(dir.path()).unwrap();
        log.append(&[event("last", n)]).unwrap();
        assert_eq!(log.read(n as u64, 10).unwrap().0[0].event_id, "last");
        assert_eq!(log.read(0, 10_000).unwrap().0.len(), n as usize + 1);
    }

    #[test]
    fn a_data_dir_written_before_blocks_is_moved_into_them_keeping_its_sequences() {
        let dir = tempfile::tempdir().unwrap();
        let count = MIGRATION_CHUNK as i64 + 77;
        {
            let db = Database::create(dir.path().join("events.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut old = txn.open_table(EVENTS_V1).unwrap();
                let mut ids = txn.open_table(EVENT_IDS).unwrap();
                for i in 0..count {
                    let e = event(&format!("old{i}"), i);
                    old.insert(i as u64, e.to_proto_bytes().as_slice()).unwrap();
                    let key = format!("{}:{}", e.account_id, e.event_id);
                    ids.insert(key.as_str(), i as u64).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let log = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.len(), count as u64);
        let out = log
            .append(&[event("old5", 0), event("new", count)])
            .unwrap();
        assert_eq!((out.accepted, out.duplicates), (1, 1));
        let (events, next) = log.read(0, usize::MAX).unwrap();
        assert_eq!(next, count as u64 + 1);
        let times: Vec<i64> = events.iter().map(|e| e.occurred_at_ms).collect();
        assert_eq!(times, (0..=count).collect::<Vec<_>>());
        let txn = log.db.begin_read().unwrap();
        assert!(txn.open_table(EVENTS_V1).is_err(), "the old table is gone");
    }

    const H: i64 = 3_600_000;

    fn pinned(at_ms: i64) -> schemas::Clock {
        schemas::Clock::starting_at(at_ms)
    }

    fn log_with(dir: &Path, horizon: Option<i64>, now_ms: i64) -> EventLog {
        EventLog::open_with(
            dir,
            LogOptions {
                lateness_horizon_ms: horizon,
                clock: pinned(now_ms),
            },
        )
        .unwrap()
    }

    #[test]
    fn an_event_older_than_the_watermark_minus_the_horizon_is_a_dead_letter() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_000 * DAY_MS;
        let log = log_with(dir.path(), Some(10 * H), now);
        let out = log
            .write(
                "http",
                &[event("a", now - 2 * H), event("b", now - 13 * H)],
                &[],
            )
            .unwrap();
        // `b` is 11 h before `a`, in the same batch: refused.
        assert_eq!((out.accepted, out.too_late.clone()), (1, vec![1]));
        // 10 h before the watermark is still in: the horizon is inclusive.
        let out = log
            .write(
                "http",
                &[event("c", now - 12 * H), event("b", now - 13 * H)],
                &[],
            )
            .unwrap();
        assert_eq!((out.accepted, out.too_late), (1, vec![1]));
        let dl = log.dead_letters().unwrap();
        assert_eq!(dl.len(), 2);
        assert_eq!(dl[0]["source"], "http");
        assert!(
            dl[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("too_late: occurred_at"),
            "{}",
            dl[0]
        );
        let raw: serde_json::Value = serde_json::from_str(dl[0]["raw"].as_str().unwrap()).unwrap();
        assert_eq!(raw["event_id"], "b");
        // Another account has its own watermark.
        let mut other = event("b", now - 13 * H);
        other.account_id = 2;
        assert_eq!(log.append(&[other]).unwrap().accepted, 1);
        // The watermark is stored: a reopened log refuses the same.
        drop(log);
        let log = log_with(dir.path(), Some(10 * H), now);
        assert_eq!(
            log.append(&[event("d", now - 13 * H)]).unwrap().too_late,
            vec![0]
        );
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn an_event_from_the_future_cannot_make_the_present_late() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_000 * DAY_MS;
        let log = log_with(dir.path(), Some(10 * H), now);
        // A client clock a year ahead: stored, but the watermark stops at now + slack.
        let out = log.append(&[event("future", now + 365 * DAY_MS)]).unwrap();
        assert_eq!(out.accepted, 1);
        // (The clock runs on from `now`: a minute of margin for the test's own time.)
        let out = log
            .append(&[event("present", now - 9 * H + 60_000)])
            .unwrap();
        assert_eq!((out.accepted, out.too_late), (1, vec![]));
        let out = log.append(&[event("past", now - 12 * H)]).unwrap();
        assert_eq!(out.too_late, vec![0], "more than 10 h before now + 1 h");
    }

    #[test]
    fn ids_past_the_horizon_are_forgotten_and_their_redelivery_is_too_late() {
        let dir = tempfile::tempdir().unwrap();
        let day0 = 1_000 * DAY_MS;
        let log = log_with(dir.path(), Some(DAY_MS), day0 + 10 * DAY_MS);
        let first: Vec<Event> = (0..50)
            .map(|i| event(&format!("old{i}"), day0 + i))
            .collect();
        assert_eq!(log.append(&first).unwrap().accepted, 50);
        // Redelivered within the horizon: duplicates.
        assert_eq!(log.append(&first[..5]).unwrap().duplicates, 5);
        // Three days on, the watermark has passed them by more than the horizon.
        log.append(&[event("later", day0 + 3 * DAY_MS)]).unwrap();
        assert_eq!(
            id_table(&log),
            (BTreeMap::from([((1, 1_003), 1)]), 1),
            "only the id within the horizon is kept"
        );
        let out = log.append(&first[..5]).unwrap();
        assert_eq!(
            (out.accepted, out.duplicates, out.too_late.len()),
            (0, 0, 5)
        );
        assert_eq!(log.len(), 51);
    }

    /// The id table's entries per (account, day), and the ids it holds.
    fn id_table(log: &EventLog) -> (BTreeMap<(u64, i64), usize>, usize) {
        ids::shape(&log.db.begin_read().unwrap().open_table(ID_SETS).unwrap())
    }

    #[test]
    fn a_day_of_single_event_commits_becomes_one_entry_when_the_day_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let day0 = 1_000 * DAY_MS;
        let open = || log_with(dir.path(), Some(3 * DAY_MS), day0 + 10 * DAY_MS);
        let log = open();
        let mut all = Vec::new();
        for day in 0..2 {
            for i in 0..20 {
                let e = event(&format!("d{day}-{i}"), day0 + day * DAY_MS + i * H);
                assert_eq!(log.append(std::slice::from_ref(&e)).unwrap().accepted, 1);
                all.push(e);
            }
        }
        let today: Vec<Event> = (0..3)
            .map(|i| event(&format!("d2-{i}"), day0 + 2 * DAY_MS + i))
            .collect();
        for e in &today {
            log.append(std::slice::from_ref(e)).unwrap();
        }
        all.extend(today);
        assert_eq!(
            id_table(&log),
            (
                BTreeMap::from([((1, 1_000), 1), ((1, 1_001), 1), ((1, 1_002), 3)]),
                43
            ),
            "the complete days are one entry each; today is an entry per commit"
        );
        // Every id is still known: now, and read back from the table after a restart.
        assert_eq!(log.append(&all).unwrap().duplicates, 43);
        drop(log);
        let log = open();
        assert_eq!(log.append(&all).unwrap().duplicates, 43);
        assert_eq!(log.len(), 43);
    }

    #[test]
    fn a_data_dir_with_the_string_id_table_gets_hashed_sets_made_from_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let day0 = 1_000 * DAY_MS;
        let open = || log_with(dir.path(), Some(DAY_MS), day0 + 10 * DAY_MS);
        let old: Vec<Event> = (0..10)
            .map(|i| event(&format!("old{i}"), day0 + i))
            .collect();
        let recent: Vec<Event> = (0..10)
            .map(|i| event(&format!("new{i}"), day0 + 3 * DAY_MS + i))
            .collect();
        {
            let log = open();
            log.append(&old).unwrap();
            log.append(&recent).unwrap();
        }
        // As the build before the hashed sets left it: a string-keyed table, no sets.
        {
            let db = Database::create(dir.path().join("events.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(ID_SETS).unwrap();
            txn.open_table(EVENT_IDS_V2)
                .unwrap()
                .insert("1:new0", day0 + 3 * DAY_MS)
                .unwrap();
            txn.commit().unwrap();
        }
        let log = open();
        assert_eq!(
            id_table(&log).1,
            10,
            "the ids within the horizon of the account's watermark"
        );
        let txn = log.db.begin_read().unwrap();
        assert!(
            txn.open_table(EVENT_IDS_V2).is_err(),
            "the old table is gone"
        );
        drop(txn);
        let out = log.append(&recent).unwrap();
        assert_eq!((out.accepted, out.duplicates), (0, 10));
        let out = log.append(&old).unwrap();
        assert_eq!(out.too_late.len(), 10, "older than the horizon");
        assert_eq!(log.len(), 20);
    }

    /// What one event of a [`model`] batch is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fate {
        Accepted,
        Duplicate,
        TooLate,
    }

    /// The admission rules as the docs state them, for one account: a stored id is a
    /// duplicate; else an event older than the watermark − horizon is too late; else
    /// it is stored and moves the watermark. When a batch moves the watermark into a
    /// new UTC day, the ids of the days wholly before watermark − horizon are forgotten.
    fn model(batches: &[Vec<(String, i64)>], horizon: i64) -> Vec<Vec<Fate>> {
        let mut ids: BTreeMap<String, i64> = BTreeMap::new();
        let mut mark: Option<i64> = None;
        batches
            .iter()
            .map(|batch| {
                let stored = mark;
                let fates = batch
                    .iter()
                    .map(|(id, at)| {
                        if ids.contains_key(id) {
                            Fate::Duplicate
                        } else if mark.is_some_and(|m| *at < m - horizon) {
                            Fate::TooLate
                        } else {
                            ids.insert(id.clone(), at.div_euclid(DAY_MS));
                            mark = Some(mark.map_or(*at, |m| m.max(*at)));
                            Fate::Accepted
                        }
                    })
                    .collect();
                if let Some(m) = mark
                    && stored.is_none_or(|s| s.div_euclid(DAY_MS) != m.div_euclid(DAY_MS))
                {
                    let before = (m - horizon).div_euclid(DAY_MS);
                    ids.retain(|_, day| *day >= before);
                }
                fates
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Appends of ids from a small pool at times over a week, with restarts between
        /// them: every event's fate is the rules' ([`model`]), so the id table in
        /// memory and the one read back at open agree with them.
        #[test]
        fn duplicates_and_lateness_follow_the_rules_across_restarts(
            batches in proptest::collection::vec(
                proptest::collection::vec((0u8..40, 0i64..7 * 24), 1..12),
                1..24,
            ),
            restarts in proptest::collection::vec(proptest::bool::weighted(0.2), 24),
        ) {
            let day0 = 1_000 * DAY_MS;
            let horizon = 2 * DAY_MS;
            let batches: Vec<Vec<(String, i64)>> = batches
                .into_iter()
                .map(|b| b.into_iter().map(|(id, hour)| (format!("e{id}"), day0 + hour * H)).collect())
                .collect();
            let expected = model(&batches, horizon);
            let dir = tempfile::tempdir().unwrap();
            let open = || log_with(dir.path(), Some(horizon), day0 + 100 * DAY_MS);
            let mut log = open();
            for (i, batch) in batches.iter().enumerate() {
                if restarts[i] {
                    drop(log);
                    log = open();
                }
                let events: Vec<Event> = batch.iter().map(|(id, at)| event(id, *at)).collect();
                let out = log.append(&events).unwrap();
                let fates: Vec<Fate> = (0..events.len())
                    .map(|p| if out.too_late.contains(&p) { Fate::TooLate } else { Fate::Accepted })
                    .collect();
                let want = &expected[i];
                let count = |f: Fate| want.iter().filter(|w| **w == f).count() as u64;
                proptest::prop_assert_eq!(
                    (out.accepted, out.duplicates),
                    (count(Fate::Accepted), count(Fate::Duplicate)),
                    "batch {}: {:?}", i, batch
                );
                let late: Vec<bool> = fates.iter().map(|f| *f == Fate::TooLate).collect();
                let want_late: Vec<bool> = want.iter().map(|f| *f == Fate::TooLate).collect();
                proptest::prop_assert_eq!(late, want_late, "batch {}", i);
            }
        }
    }

    #[test]
    fn without_a_horizon_every_age_is_admitted_and_every_id_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_with(dir.path(), None, 1_000 * DAY_MS);
        log.append(&[event("new", 999 * DAY_MS)]).unwrap();
        let out = log.append(&[event("ancient", 0), event("new", 5)]).unwrap();
        assert_eq!((out.accepted, out.duplicates, out.too_late), (1, 1, vec![]));
    }

    #[test]
    fn dead_letters_keep_raw_bytes_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        log.dead_letter("http", b"{\"type\":1}", "type: expected a string")
            .unwrap();
        let dl = log.dead_letters().unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0]["reason"], "type: expected a string");
        assert_eq!(dl[0]["raw"], "{\"type\":1}");
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn a_file_left_sparse_by_a_burst_is_compacted_at_open_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.redb");
        let now = 1_800_000_000_000;
        let n = 60_000i64;
        {
            // A 1 h horizon over a 10 h burst: ids are stored and forgotten again. A
            // reader holds its snapshot meanwhile, as the pipeline's replay does while
            // the demo backfills: what the commits free cannot be reused under it.
            let log = log_with(dir.path(), Some(3_600_000), now);
            let reader = log.db.begin_read().unwrap();
            for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
                let batch: Vec<Event> = chunk
                    .iter()
                    .map(|&i| event(&format!("burst-{i}-{:x}", i * 7919), now - (n - i) * 600))
                    .collect();
                log.append(&batch).unwrap();
            }
            drop(reader);
        }
        let before = std::fs::metadata(&path).unwrap().len();
        let log = log_with(dir.path(), Some(3_600_000), now);
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after * 4 < before * 3, "{before} -> {after} bytes");
        let (events, _) = log.read(0, n as usize + 1).unwrap();
        let times: Vec<i64> = events.iter().map(|e| e.occurred_at_ms).collect();
        assert_eq!(
            times,
            (0..n).map(|i| now - (n - i) * 600).collect::<Vec<_>>()
        );
        assert_eq!(log.len(), n as u64);
    }
}
