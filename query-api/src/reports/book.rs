//! The report book: schedules, slot claims and runs, as records in one ordered,
//! durable journal that every scheduler of the deployment shares.
//!
//! The journal is the embedded `reports.redb` in the data dir (`demo`, `run`) or the
//! one-partition topic `crm.reports.v1` (Kafka `run` and every `serve` replica). Each
//! process folds the journal, in order, into the same [`State`]; nothing else holds
//! schedules or runs, so every replica shows the same ones.
//!
//! **Exactly once per slot.** Before a scheduler sends a slot it appends a
//! [`Claim`] and reads the journal up to it: the slot belongs to the *first* claim of
//! it in journal order, so of two replicas (or a process and its restart) that claim
//! the same slot, exactly one wins, and only the winner sends. The journal's order is
//! the same for every reader, so they all agree on the winner without talking to each
//! other. A winner that dies before recording the run leaves the claim alone in the
//! book: that slot is shown as `interrupted` and is not sent again (at most once; see
//! docs/reports.md).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::schedule::Schedule;

/// An ordered, durable, append-only journal of records shared by every scheduler.
pub trait Journal: Send + Sync {
    /// Appends `record` durably and returns its position (positions only grow).
    ///
    /// # Errors
    /// When the record is not durably stored; then it may or may not appear later.
    fn append(&self, record: &[u8]) -> Result<u64, String>;

    /// Records at positions `>= from`, at most `max`, in order, waiting up to `wait`
    /// for the first when there is none yet.
    ///
    /// # Errors
    /// When the journal cannot be read.
    fn read(&self, from: u64, max: usize, wait: Duration) -> Result<Vec<(u64, Vec<u8>)>, String>;

    /// The record at `position`, if the journal still holds it.
    ///
    /// # Errors
    /// When the journal cannot be read.
    fn fetch(&self, position: u64) -> Result<Option<Vec<u8>>, String>;

    /// Deletes the records at `positions` (runs past the history's retention), where
    /// the journal can; a journal that cannot (a Kafka topic) keeps them and the book
    /// forgets them after folding.
    ///
    /// # Errors
    /// When the deletion fails.
    fn forget(&self, positions: &[u64]) -> Result<(), String> {
        let _ = positions;
        Ok(())
    }
}

/// One record of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A schedule created or replaced (paused, resumed, edited).
    ScheduleSaved {
        /// The whole schedule as it is now.
        schedule: Schedule,
    },
    /// A schedule deleted; its runs stay in the history.
    ScheduleDeleted {
        /// Its account.
        account_id: u64,
        /// Its id.
        id: String,
    },
    /// A scheduler's claim of one slot (or of a manual run).
    SlotClaimed {
        /// The claim.
        claim: Claim,
    },
    /// The outcome of a claimed run.
    RunRecorded {
        /// What happened.
        run: Run,
        /// The PDF that was (or would have been) attached, base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pdf_base64: Option<String>,
    },
}

/// A scheduler's claim of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The run this claim starts (also the history's id).
    pub run_id: String,
    /// The schedule.
    pub schedule_id: String,
    /// Its account.
    pub account_id: u64,
    /// `YYYY-MM-DD` (the local date of the slot), or `manual-<run_id>`.
    pub slot: String,
    /// When the slot was due, ms since the epoch.
    pub due_at: i64,
    /// The process that claimed it.
    pub claimed_by: String,
    /// When, ms since the epoch.
    pub claimed_at: i64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The SMTP server accepted the message for every recipient.
    Sent,
    /// Every attempt failed (`error` says why).
    Failed,
    /// Claimed, but no outcome was recorded (the process stopped while sending).
    Interrupted,
    /// Claimed and still being rendered or sent.
    Sending,
}

/// One run of a schedule, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    /// Id (the claim's).
    pub run_id: String,
    /// The schedule.
    pub schedule_id: String,
    /// The schedule's name when it ran.
    pub schedule_name: String,
    /// Its account.
    pub account_id: u64,
    /// The slot (`YYYY-MM-DD`, or `manual-…`).
    pub slot: String,
    /// When the slot was due.
    pub due_at: i64,
    /// The local dates the report covers, `[from, to)`, as `["YYYY-MM-DD", "YYYY-MM-DD"]`.
    #[schema(value_type = Vec<String>)]
    pub period: (String, String),
    /// Who it went to.
    pub recipients: Vec<String>,
    /// The outcome.
    pub status: Status,
    /// Why it failed, for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// SMTP attempts made.
    pub attempts: u32,
    /// Size of the mail message, bytes.
    pub message_bytes: u64,
    /// Size of the PDF, bytes (0 when none was made).
    pub pdf_bytes: u64,
    /// When it ended, ms since the epoch.
    pub finished_at: i64,
}

/// Everything the journal says, folded in order.
#[derive(Debug, Default)]
pub struct State {
    /// The next position to read.
    next: u64,
    /// Schedules by id.
    schedules: BTreeMap<String, Schedule>,
    /// The winning claim of each `(schedule, slot)`.
    winners: HashMap<(String, String), Claim>,
    /// Runs by id, with the journal positions of their claim and of their outcome
    /// (which holds the PDF).
    runs: HashMap<String, (Run, u64, Option<u64>)>,
    /// Records that did not decode (counted and skipped, never fatal).
    pub undecodable: u64,
}

impl State {
    fn apply(&mut self, position: u64, bytes: &[u8]) {
        self.next = position + 1;
        let record: Record = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.undecodable += 1;
                metrics::counter!("crmpulse_reports_bad_records_total").increment(1);
                tracing::error!(position, error = %e, "skipping a report record that does not decode");
                return;
            }
        };
        match record {
            Record::ScheduleSaved { schedule } => {
                self.schedules.insert(schedule.id.clone(), schedule);
            }
            Record::ScheduleDeleted { id, .. } => {
                self.schedules.remove(&id);
            }
            Record::SlotClaimed { claim } => {
                let key = (claim.schedule_id.clone(), claim.slot.clone());
                if let std::collections::hash_map::Entry::Vacant(v) = self.winners.entry(key) {
                    let run = Run {
                        run_id: claim.run_id.clone(),
                        schedule_id: claim.schedule_id.clone(),
                        schedule_name: self
                            .schedules
                            .get(&claim.schedule_id)
                            .map(|s| s.input.name.clone())
                            .unwrap_or_default(),
                        account_id: claim.account_id,
                        slot: claim.slot.clone(),
                        due_at: claim.due_at,
                        period: (String::new(), String::new()),
                        recipients: Vec::new(),
                        status: Status::Sending,
                        error: None,
                        attempts: 0,
                        message_bytes: 0,
                        pdf_bytes: 0,
                        finished_at: claim.claimed_at,
                    };
                    self.runs
                        .insert(claim.run_id.clone(), (run, position, None));
                    v.insert(claim);
                }
            }
            Record::RunRecorded { run, .. } => {
                // Only the winner's run is recorded; a loser never gets this far. A
                // run whose claim was forgotten (past the history) stays forgotten.
                if let Some(entry) = self.runs.get_mut(&run.run_id) {
                    *entry = (run, entry.1, Some(position));
                }
            }
        }
    }

    /// The schedule `id` of `account_id`.
    pub fn schedule(&self, account_id: u64, id: &str) -> Option<&Schedule> {
        self.schedules
            .get(id)
            .filter(|s| s.account_id == account_id)
    }

    /// Every schedule, oldest first within an account.
    pub fn schedules(&self) -> impl Iterator<Item = &Schedule> {
        self.schedules.values()
    }

    /// The winning claim of `(schedule, slot)`.
    pub fn winner(&self, schedule_id: &str, slot: &str) -> Option<&Claim> {
        self.winners.get(&(schedule_id.to_owned(), slot.to_owned()))
    }
}

/// The shared book over a [`Journal`].
pub struct Book {
    journal: Arc<dyn Journal>,
    state: Mutex<State>,
    /// How long a run may stay `sending` before the history calls it `interrupted`.
    pub stale_after_ms: i64,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book").finish_non_exhaustive()
    }
}

/// How many records one read takes.
const READ_MAX: usize = 512;

impl Book {
    /// Opens the book, folding everything the journal holds.
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub fn open(journal: Arc<dyn Journal>) -> Result<Self, String> {
        let book = Self {
            journal,
            state: Mutex::new(State::default()),
            stale_after_ms: 15 * 60 * 1000,
        };
        book.sync()?;
        Ok(book)
    }

    /// Folds the records appended since the last read (not waiting for more).
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub fn sync(&self) -> Result<(), String> {
        let mut state = self.lock();
        loop {
            let records = self.journal.read(state.next, READ_MAX, Duration::ZERO)?;
            if records.is_empty() {
                return Ok(());
            }
            for (position, bytes) in records {
                state.apply(position, &bytes);
            }
        }
    }

    /// Folds the journal at least through `position`, waiting up to `timeout`.
    fn sync_through(&self, position: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.next <= position {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the report journal did not return position {position} within {} ms",
                    timeout.as_millis()
                ));
            }
            let records =
                self.journal
                    .read(state.next, READ_MAX, left.min(Duration::from_millis(100)))?;
            for (p, bytes) in records {
                state.apply(p, &bytes);
            }
        }
        Ok(())
    }

    /// Appends `record` and folds the journal through it.
    ///
    /// # Errors
    /// When the journal refuses the record or does not return it.
    pub fn append(&self, record: &Record) -> Result<u64, String> {
        let bytes = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let position = self.journal.append(&bytes)?;
        self.sync_through(position, Duration::from_secs(10))?;
        Ok(position)
    }

    /// Reads the folded state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Claims `claim`'s slot; `true` when this claim is the slot's first, so its
    /// holder (and no one else) sends it.
    ///
    /// # Errors
    /// When the claim cannot be appended or read back.
    pub fn claim(&self, claim: Claim) -> Result<bool, String> {
        let (schedule, slot, run) = (
            claim.schedule_id.clone(),
            claim.slot.clone(),
            claim.run_id.clone(),
        );
        self.append(&Record::SlotClaimed { claim })?;
        Ok(self.read(|s| s.winner(&schedule, &slot).is_some_and(|w| w.run_id == run)))
    }

    /// Records a run's outcome with its PDF.
    ///
    /// # Errors
    /// When the record cannot be appended.
    pub fn record(&self, run: Run, pdf: Option<&[u8]>) -> Result<(), String> {
        let pdf_base64 = pdf.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
        self.append(&Record::RunRecorded { run, pdf_base64 })
            .map(|_| ())
    }

    /// The runs of `account_id` (of one schedule, when given), newest first, those
    /// older than `since_ms` left out. A run still `sending` after
    /// [`Book::stale_after_ms`] is reported `interrupted`.
    pub fn runs(
        &self,
        account_id: u64,
        schedule_id: Option<&str>,
        since_ms: i64,
        now_ms: i64,
    ) -> Vec<Run> {
        let mut runs: Vec<Run> = self.read(|s| {
            s.runs
                .values()
                .map(|(r, _, _)| r)
                .filter(|r| r.account_id == account_id)
                .filter(|r| schedule_id.is_none_or(|id| r.schedule_id == id))
                .filter(|r| r.finished_at.max(r.due_at) >= since_ms)
                .cloned()
                .collect()
        });
        for r in &mut runs {
            if r.status == Status::Sending && now_ms - r.finished_at > self.stale_after_ms {
                r.status = Status::Interrupted;
            }
        }
        runs.sort_by(|a, b| (b.due_at, &b.run_id).cmp(&(a.due_at, &a.run_id)));
        runs
    }

    /// The PDF of run `run_id` of `account_id`.
    ///
    /// # Errors
    /// When the journal cannot be read or the stored PDF does not decode.
    pub fn pdf(&self, account_id: u64, run_id: &str) -> Result<Option<Vec<u8>>, String> {
        let position = self.read(|s| {
            s.runs
                .get(run_id)
                .filter(|(r, _, _)| r.account_id == account_id)
                .and_then(|(_, _, p)| *p)
        });
        let Some(position) = position else {
            return Ok(None);
        };
        let Some(bytes) = self.journal.fetch(position)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Record>(&bytes).map_err(|e| e.to_string())? {
            Record::RunRecorded {
                pdf_base64: Some(pdf),
                ..
            } => base64::engine::general_purpose::STANDARD
                .decode(pdf)
                .map(Some)
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }

    /// Forgets the runs that ended before `since_ms` (their claims, outcomes and PDFs),
    /// deleting their records where the journal can. Returns how many.
    ///
    /// # Errors
    /// When the journal fails to delete them.
    pub fn prune(&self, since_ms: i64) -> Result<usize, String> {
        let mut state = self.lock();
        let old: Vec<String> = state
            .runs
            .iter()
            .filter(|(_, (r, _, _))| {
                r.finished_at.max(r.due_at) < since_ms && r.status != Status::Sending
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut positions = Vec::new();
        for id in &old {
            if let Some((_, claim, outcome)) = state.runs.remove(id) {
                positions.push(claim);
                positions.extend(outcome);
            }
        }
        drop(state);
        positions.sort_unstable();
        self.journal.forget(&positions)?;
        Ok(old.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("report_records_v1");

/// The embedded journal: `reports.redb` in the data dir. Positions are allocated
/// inside the write transaction (the table's last key + 1), so concurrent appends
/// never share one.
pub struct RedbJournal {
    db: Database,
}

impl RedbJournal {
    /// Opens (creating if needed) `dir/reports.redb`.
    ///
    /// # Errors
    /// When the file cannot be created or is held by another process.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("reports.redb");
        let db = Database::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.open_table(RECORDS).map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
        Ok(Self { db })
    }
}

impl Journal for RedbJournal {
    fn append(&self, record: &[u8]) -> Result<u64, String> {
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        let position = {
            let mut table = txn.open_table(RECORDS).map_err(|e| e.to_string())?;
            let position = table
                .last()
                .map_err(|e| e.to_string())?
                .map_or(0, |(k, _)| k.value() + 1);
            table.insert(position, record).map_err(|e| e.to_string())?;
            position
        };
        txn.commit().map_err(|e| e.to_string())?;
        Ok(position)
    }

    fn read(&self, from: u64, max: usize, _wait: Duration) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(RECORDS).map_err(|e| e.to_string())?;
        table
            .range(from..)
            .map_err(|e| e.to_string())?
            .take(max)
            .map(|r| {
                r.map(|(k, v)| (k.value(), v.value().to_vec()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn fetch(&self, position: u64) -> Result<Option<Vec<u8>>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(RECORDS).map_err(|e| e.to_string())?;
        Ok(table
            .get(position)
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec()))
    }

    fn forget(&self, positions: &[u64]) -> Result<(), String> {
        if positions.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| e.to_string())?;
            for p in positions {
                table.remove(p).map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())
    }
}

/// A journal in memory (tests, and `AppState::new` when nothing durable is given).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    records: Mutex<Vec<Vec<u8>>>,
}

impl Journal for MemoryJournal {
    fn append(&self, record: &[u8]) -> Result<u64, String> {
        let mut records = self.records.lock().map_err(|e| e.to_string())?;
        records.push(record.to_vec());
        Ok(records.len() as u64 - 1)
    }

    fn read(&self, from: u64, max: usize, _wait: Duration) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let records = self.records.lock().map_err(|e| e.to_string())?;
        Ok(records
            .iter()
            .enumerate()
            .skip(usize::try_from(from).unwrap_or(usize::MAX))
            .take(max)
            .map(|(i, r)| (i as u64, r.clone()))
            .collect())
    }

    fn fetch(&self, position: u64) -> Result<Option<Vec<u8>>, String> {
        let records = self.records.lock().map_err(|e| e.to_string())?;
        Ok(usize::try_from(position)
            .ok()
            .and_then(|p| records.get(p))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(run: &str, by: &str) -> Claim {
        Claim {
            run_id: run.into(),
            schedule_id: "s1".into(),
            account_id: 1,
            slot: "2026-12-06".into(),
            due_at: 1,
            claimed_by: by.into(),
            claimed_at: 1,
        }
    }

    #[test]
    fn of_two_books_on_one_journal_only_the_first_claim_of_a_slot_wins() {
        let journal: Arc<dyn Journal> = Arc::new(MemoryJournal::default());
        let a = Book::open(Arc::clone(&journal)).unwrap();
        let b = Book::open(Arc::clone(&journal)).unwrap();
        assert!(a.claim(claim("r1", "a")).unwrap());
        assert!(!b.claim(claim("r2", "b")).unwrap());
        // A restart folds the same journal to the same winner.
        let c = Book::open(journal).unwrap();
        assert!(!c.claim(claim("r3", "c")).unwrap());
        assert_eq!(
            c.read(|s| s.winner("s1", "2026-12-06").unwrap().run_id.clone()),
            "r1"
        );
        assert_eq!(c.runs(1, None, 0, 2).len(), 1, "losers leave no run");
    }

    #[test]
    fn concurrent_claims_on_the_redb_journal_have_exactly_one_winner() {
        let dir = tempfile_dir();
        let journal: Arc<dyn Journal> = Arc::new(RedbJournal::open(&dir).unwrap());
        let wins: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let journal = Arc::clone(&journal);
                    scope.spawn(move || {
                        let book = Book::open(journal).unwrap();
                        usize::from(book.claim(claim(&format!("r{i}"), "t")).unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_record_that_does_not_decode_is_counted_and_skipped() {
        let journal: Arc<dyn Journal> = Arc::new(MemoryJournal::default());
        journal.append(b"{not json").unwrap();
        let book = Book::open(Arc::clone(&journal)).unwrap();
        assert!(book.claim(claim("r1", "a")).unwrap());
        assert_eq!(book.read(|s| s.undecodable), 1);
    }

    #[test]
    fn a_claim_without_an_outcome_becomes_interrupted_and_a_recorded_pdf_reads_back() {
        let book = Book::open(Arc::new(MemoryJournal::default())).unwrap();
        assert!(book.claim(claim("r1", "a")).unwrap());
        assert_eq!(book.runs(1, None, 0, 2)[0].status, Status::Sending);
        let late = 2 + book.stale_after_ms;
        assert_eq!(book.runs(1, None, 0, late)[0].status, Status::Interrupted);
        let mut run = book.runs(1, None, 0, 2).remove(0);
        run.status = Status::Sent;
        book.record(run, Some(b"%PDF-1.7 test")).unwrap();
        assert_eq!(book.runs(1, None, 0, late)[0].status, Status::Sent);
        assert_eq!(book.pdf(1, "r1").unwrap().unwrap(), b"%PDF-1.7 test");
        assert_eq!(book.pdf(2, "r1").unwrap(), None, "another account's run");
    }

    #[test]
    fn runs_past_the_history_are_forgotten_and_their_records_deleted() {
        let dir = tempfile_dir();
        let journal: Arc<dyn Journal> = Arc::new(RedbJournal::open(&dir).unwrap());
        let book = Book::open(Arc::clone(&journal)).unwrap();
        for (run, due) in [("old", 1_000), ("new", 9_000)] {
            let mut c = claim(run, "a");
            c.slot = run.into();
            c.due_at = due;
            c.claimed_at = due;
            assert!(book.claim(c).unwrap());
            let mut r = book
                .runs(1, None, 0, due)
                .into_iter()
                .find(|r| r.run_id == run)
                .unwrap();
            r.status = Status::Sent;
            r.finished_at = due;
            book.record(r, Some(b"%PDF")).unwrap();
        }
        assert_eq!(book.prune(5_000).unwrap(), 1);
        let left: Vec<String> = book
            .runs(1, None, 0, 10_000)
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(left, ["new"]);
        // Deleted from the journal: a restart does not bring it back.
        let again = Book::open(journal).unwrap();
        let left: Vec<String> = again
            .runs(1, None, 0, 10_000)
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(left, ["new"]);
        assert_eq!(again.pdf(1, "new").unwrap().unwrap(), b"%PDF");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "crmpulse-book-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
