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
//!   retries. The id table and the event table change in the same transaction.
//! - Acknowledged means durable: a caller gets `Ok` only after the transaction holding
//!   its batch has committed (fsynced). A failed group commit stores nothing of any
//!   batch in it, and every caller in it gets the error.
//! - A batch and its dead letters are stored together or not at all
//!   ([`EventLog::write`]): rejected input never enters the event table; it goes to the
//!   dead-letter table with its original bytes and the reason.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use schemas::Event;
use tokio::sync::watch;

/// Sequence number → protobuf-encoded [`Event`].
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events_v1");
/// `account_id:event_id` → sequence number, for idempotent appends.
const EVENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("event_ids_v1");
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Newly stored events.
    pub accepted: u64,
    /// Events whose `event_id` was already stored (in the log or earlier in the batch).
    pub duplicates: u64,
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

/// One caller's batch, encoded on the caller's thread so the committer only writes.
struct Write {
    /// `(account_id:event_id, protobuf bytes)` in the caller's order.
    events: Vec<(String, Vec<u8>)>,
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
    /// Opens (creating if needed) the log in `dir/events.redb`.
    ///
    /// # Errors
    /// [`LogError::InUse`] when another process has it open; storage errors otherwise.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::from(redb::Error::from(redb::StorageError::Io(e))))?;
        let path = dir.join("events.redb");
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(LogError::InUse(path.display().to_string()));
            }
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let txn = db.begin_write()?;
        let len = {
            let events = txn.open_table(EVENTS)?;
            txn.open_table(EVENT_IDS)?;
            txn.open_table(DEAD_LETTERS)?;
            txn.open_table(META)?;
            next_key(&events)?
        };
        txn.commit()?;
        let db = Arc::new(db);
        let len = Arc::new(watch::Sender::new(len));
        let (writes, queue) = mpsc::sync_channel(QUEUED_WRITES);
        let committer = {
            let db = Arc::clone(&db);
            let len = Arc::clone(&len);
            std::thread::Builder::new()
                .name("crmpulse-log-commit".into())
                .spawn(move || commit_loop(&db, &len, &queue))
                .map_err(|e| LogError::from(redb::Error::from(redb::StorageError::Io(e))))?
        };
        Ok(Self {
            db,
            len,
            writes: Some(writes),
            committer: Some(committer),
        })
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
        self.write(events, &[])
    }

    /// Stores a batch and the dead letters rejected from the same input in one atomic
    /// write: both are stored, or (on error) neither. Returns when they are durable.
    /// Blocking, like [`Self::append`].
    ///
    /// # Errors
    /// Storage errors; [`LogError::Closed`] when the log is shutting down.
    pub fn write(
        &self,
        events: &[Event],
        dead_letters: &[DeadLetter<'_>],
    ) -> Result<AppendOutcome, LogError> {
        if events.is_empty() && dead_letters.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let events = events
            .iter()
            .map(|e| (id_key(e), e.to_proto_bytes()))
            .collect();
        let dead_letters = dead_letters.iter().map(DeadLetter::encode).collect();
        let (reply, answer) = mpsc::sync_channel(1);
        self.writes
            .as_ref()
            .ok_or(LogError::Closed)?
            .send(Write {
                events,
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
        for entry in table.range(from..)?.take(max) {
            let (seq, bytes) = entry?;
            next = seq.value() + 1;
            match Event::from_proto_bytes(bytes.value()) {
                Ok(event) => out.push(event),
                Err(e) => {
                    let err = LogError::Corrupt {
                        seq: seq.value(),
                        reason: e.to_string(),
                    };
                    tracing::error!(error = %err, "skipping an unreadable log record");
                    metrics::counter!("crmpulse_log_corrupt_records_total").increment(1);
                }
            }
        }
        Ok((out, next))
    }

    /// Stores a rejected input with the reason, for inspection and replay after a fix.
    /// Durable when it returns.
    ///
    /// # Errors
    /// Storage errors.
    pub fn dead_letter(&self, source: &str, raw: &[u8], reason: &str) -> Result<(), LogError> {
        self.write(
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

/// The key of the id table: ids are unique per account.
fn id_key(event: &Event) -> String {
    format!("{}:{}", event.account_id, event.event_id)
}

/// The next free sequence number of a sequence-keyed table: its last key + 1.
fn next_key<T: ReadableTable<u64, &'static [u8]>>(table: &T) -> Result<u64, LogError> {
    Ok(table.last()?.map_or(0, |(seq, _)| seq.value() + 1))
}

/// The committer: takes every waiting batch into one group, commits the group in one
/// transaction and answers each batch's caller. Ends when every sender is gone.
fn commit_loop(db: &Database, len: &watch::Sender<u64>, queue: &mpsc::Receiver<Write>) {
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
        match commit_group(db, &group) {
            Ok((outcomes, next_seq)) => {
                len.send_replace(next_seq);
                let (accepted, duplicates) = outcomes
                    .iter()
                    .fold((0, 0), |(a, d), o| (a + o.accepted, d + o.duplicates));
                metrics::counter!("crmpulse_log_appended_events_total").increment(accepted);
                metrics::counter!("crmpulse_log_duplicate_events_total").increment(duplicates);
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
/// against the log and against earlier batches of the same group. Returns each batch's
/// outcome and the log's new length.
fn commit_group(db: &Database, group: &[Write]) -> Result<(Vec<AppendOutcome>, u64), LogError> {
    let txn = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(group.len());
    let next = {
        let mut table = txn.open_table(EVENTS)?;
        let mut ids = txn.open_table(EVENT_IDS)?;
        let mut dead = txn.open_table(DEAD_LETTERS)?;
        // Allocated here, inside the transaction, from the tables themselves.
        let mut next = next_key(&table)?;
        let mut next_dead = next_key(&dead)?;
        for write in group {
            let mut outcome = AppendOutcome::default();
            for record in &write.dead_letters {
                dead.insert(next_dead, record.as_slice())?;
                next_dead += 1;
            }
            for (key, bytes) in &write.events {
                // One tree walk per event: insert, and put the first delivery's
                // sequence back in the rare case the id was already there.
                let earlier = ids.insert(key.as_str(), next)?.map(|seq| seq.value());
                if let Some(earlier) = earlier {
                    ids.insert(key.as_str(), earlier)?;
                    outcome.duplicates += 1;
                    continue;
                }
                table.insert(next, bytes.as_slice())?;
                next += 1;
                outcome.accepted += 1;
            }
            outcomes.push(outcome);
        }
        next
    };
    txn.commit()?;
    Ok((outcomes, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::Payload;

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
                    duplicates: 1
                }
            );
            let out = log.append(&[event("b", 9), event("c", 4)]).unwrap();
            assert_eq!(
                out,
                AppendOutcome {
                    accepted: 1,
                    duplicates: 1
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
        let txn = log.db.begin_write().unwrap();
        txn.open_table(EVENTS)
            .unwrap()
            .insert(1, &[0xff_u8, 0xff][..])
            .unwrap();
        txn.commit().unwrap();
        log.append(&[event("c", 3)]).unwrap();
        let (events, next) = log.read(0, 10).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!((ids, next), (vec!["a", "c"], 3));
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
}
