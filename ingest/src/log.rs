//! The embedded durable event log: crmpulse's source of truth when it runs without Kafka.
//!
//! Backed by [redb](https://docs.rs/redb), a maintained, pure-Rust, ACID embedded
//! key-value store with copy-on-write B-trees: a committed append survives a crash or a
//! `kill -9` (commits are fsynced), and readers see consistent snapshots while a writer
//! appends. It needs no C toolchain and no background compaction threads, which keeps
//! `crmpulse demo` a single self-contained process.
//!
//! Invariants:
//! - Sequence numbers are dense, start at 0 and never change: the pipeline rebuilds
//!   state by reading `0..len()` in order.
//! - An `event_id` is stored at most once: a second delivery is counted as a duplicate
//!   and not appended, so the log (and everything derived from it) is idempotent under
//!   retries.
//! - Rejected input never enters the event table: it goes to the dead-letter table with
//!   its original bytes and the reason.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
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

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another process holds the log open.
    #[error("the event log at {0} is in use by another crmpulse process")]
    InUse(String),
    /// The storage engine failed.
    #[error("event log storage error")]
    Storage(#[from] redb::Error),
    /// A stored record does not decode; the log is damaged.
    #[error("event log record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Where.
        seq: u64,
        /// Why.
        reason: String,
    },
}

macro_rules! from_redb {
    ($($t:ty),+) => {$(
        impl From<$t> for LogError {
            fn from(e: $t) -> Self { LogError::Storage(e.into()) }
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

/// The durable, append-only, deduplicating event log. Cheap to share behind an `Arc`.
pub struct EventLog {
    db: Database,
    /// Number of stored events; readers wait on it for new data.
    len: watch::Sender<u64>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("len", &*self.len.borrow())
            .finish()
    }
}

impl EventLog {
    /// Opens (creating if needed) the log in `dir/events.redb`.
    ///
    /// # Errors
    /// [`LogError::InUse`] when another process has it open; storage errors otherwise.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::Storage(redb::StorageError::Io(e).into()))?;
        let path = dir.join("events.redb");
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(LogError::InUse(path.display().to_string()));
            }
            Err(e) => return Err(LogError::Storage(e.into())),
        };
        let txn = db.begin_write()?;
        let len = {
            let events = txn.open_table(EVENTS)?;
            txn.open_table(EVENT_IDS)?;
            txn.open_table(DEAD_LETTERS)?;
            txn.open_table(META)?;
            events.len()?
        };
        txn.commit()?;
        Ok(Self {
            db,
            len: watch::Sender::new(len),
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
    /// Blocking (it fsyncs): call it from a blocking thread in async code.
    ///
    /// # Errors
    /// Storage errors; on error nothing of the batch is stored.
    pub fn append(&self, events: &[Event]) -> Result<AppendOutcome, LogError> {
        let mut outcome = AppendOutcome::default();
        if events.is_empty() {
            return Ok(outcome);
        }
        let txn = self.db.begin_write()?;
        let mut next = self.len();
        {
            let mut table = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(EVENT_IDS)?;
            let mut key = String::new();
            for event in events {
                key.clear();
                use std::fmt::Write as _;
                let _ = write!(key, "{}:{}", event.account_id, event.event_id);
                if ids.get(key.as_str())?.is_some() {
                    outcome.duplicates += 1;
                    continue;
                }
                ids.insert(key.as_str(), next)?;
                table.insert(next, event.to_proto_bytes().as_slice())?;
                next += 1;
                outcome.accepted += 1;
            }
        }
        txn.commit()?;
        self.len.send_replace(next);
        metrics::counter!("crmpulse_log_appended_events_total").increment(outcome.accepted);
        metrics::counter!("crmpulse_log_duplicate_events_total").increment(outcome.duplicates);
        Ok(outcome)
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
    ///
    /// # Errors
    /// Storage errors.
    pub fn dead_letter(&self, source: &str, raw: &[u8], reason: &str) -> Result<(), LogError> {
        let record = serde_json::json!({
            "reason": reason,
            "source": source,
            "raw": String::from_utf8_lossy(raw),
        });
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(DEAD_LETTERS)?;
            let next = table.len()?;
            table.insert(next, record.to_string().as_bytes())?;
        }
        txn.commit()?;
        Ok(())
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
        log.len.send_replace(2);
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
