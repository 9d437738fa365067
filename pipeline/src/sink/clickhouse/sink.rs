//! The ClickHouse sink: keeps the absolute value of every rollup row, writes the rows
//! that changed, and ships the raw events from the event log.
//!
//! Invariants:
//! - Rows are absolute, never increments: a row written twice, or rewritten after a
//!   restart rebuilt the state from the log, replaces itself (ReplacingMergeTree keyed
//!   by the row's dimensions, `version` = the pipeline's complete timestamp when the
//!   row was taken), so nothing is ever counted twice.
//! - Nothing is dropped: a failed insert is retried with backoff until it succeeds; the
//!   rows changed meanwhile wait in a set of *dirty keys* (one entry per row however
//!   often it changed), so memory grows with the number of distinct changed rows, not
//!   with the outage's length. [`ClickHouseSink::wait_for_room`] blocks the event-log
//!   reader when `max_buffered_rows` is reached: backpressure instead of unbounded
//!   memory. The view store is fed before, so the dashboard keeps serving.
//! - After a restart, once the state the log held is rebuilt and written, rows an
//!   earlier run left non-zero and this run did not rewrite are zeroed (`reconcile`).
//! - Raw events are copied by their own thread straight from the event log, from the
//!   position after the last one ClickHouse holds, so an outage or a restart costs no
//!   memory and loses no event. Each insert holds consecutive log positions of one
//!   `events` partition (one UTC month), so it lands as one part, whole or not at all,
//!   and inserts go in log order: what ClickHouse holds is always a prefix of the log,
//!   and "the newest `log_seq` + 1" is an exact resume position even after a give-up at
//!   shutdown or a crash in the middle of an insert.
//! - The sink's committed position is [`SinkStats::written_through`]: the number of
//!   source events whose rollup rows and raw rows are all in ClickHouse. It only moves
//!   when an insert succeeded, so waiting for it to reach N is waiting for "everything
//!   up to N is written" (`/healthz` `clickhouse.written_through`,
//!   `crmpulse_clickhouse_written_through_events`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use schemas::event::Event;
use schemas::metrics::MetricBatch;

use super::client::{Client, ClientError};
use super::config::ClickHouseConfig;
use super::migrate;
use super::rollup::{Measures, RowKey, Table, rows_of};

/// Reads the event log: `(from, max)` → the events from position `from` on (at most
/// `max`) and the position after them.
pub type EventReader = Box<dyn FnMut(u64, usize) -> Result<(Vec<Event>, u64), String> + Send>;

/// Counters describing the sink, also exported as `crmpulse_clickhouse_*` metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Rollup rows written (each rewrite of a row counts).
    pub rows_written: u64,
    /// Raw events written.
    pub events_written: u64,
    /// Successful inserts.
    pub batches: u64,
    /// Failed requests.
    pub failures: u64,
    /// Retries after a failure.
    pub retries: u64,
    /// Changed rows not yet written (waiting or in flight).
    pub buffered_rows: u64,
    /// Progress of the newest batch accepted from the pipeline.
    pub accepted_progress: u64,
    /// Progress up to which every accepted change is in ClickHouse.
    pub written_progress: u64,
    /// Source events (the pipeline's `events_consumed`) whose rollup rows are all in
    /// ClickHouse. Stays 0 until the sink has written the state the log held at start
    /// and cleared the rows an earlier run left behind (reconciliation): before that,
    /// ClickHouse may still hold stale rows.
    pub rollups_written_through: u64,
    /// Log positions whose raw events are all in `events` (the resume position), or
    /// `None` when raw events are not shipped.
    pub raw_events_written_through: Option<u64>,
    /// Facts with no table yet (see `rollup.rs`).
    pub unmapped_facts: u64,
    /// Wall time spent in successful rollup inserts, µs: rows written ÷ this is what
    /// ClickHouse takes, independent of how fast the pipeline produces changes.
    pub insert_micros: u64,
}

impl SinkStats {
    /// The sink's committed position: source events whose rows (rollups and, when
    /// shipped, raw events) are all in ClickHouse, their inserts acknowledged. A caller
    /// that has put N events into the log waits for this to reach N, never for a while.
    pub fn written_through(&self) -> u64 {
        self.raw_events_written_through
            .map_or(self.rollups_written_through, |raw| {
                raw.min(self.rollups_written_through)
            })
    }

    /// Milliseconds of pipeline time the rollups in ClickHouse are behind the pipeline.
    pub fn lag_ms(&self) -> u64 {
        self.accepted_progress.saturating_sub(self.written_progress)
    }
}

#[derive(Debug, Default)]
struct Rollups {
    /// Absolute value of every row with a non-zero value (or a zero not yet written).
    rows: HashMap<RowKey, Measures>,
    /// Rows changed since they were last taken for writing.
    dirty: HashSet<RowKey>,
    /// Rows taken by the writer and not yet confirmed.
    in_flight: usize,
    /// Progress of the newest accepted batch.
    accepted_progress: u64,
    /// Progress up to which everything accepted is written.
    written_progress: u64,
    /// Progress of the first batch of this run: every row this run writes has a
    /// version at least this.
    run_start: Option<u64>,
    /// Input events reflected in the newest accepted batch.
    consumed: u64,
    /// Input events whose rows are all written (the `consumed` of the newest batch
    /// every row of which is in ClickHouse).
    written_consumed: u64,
    /// Reconcile once the pipeline has consumed this many events (the log at start).
    reconcile_at: Option<u64>,
    /// Reconciliation done.
    reconciled: bool,
}

impl Rollups {
    /// [`SinkStats::rollups_written_through`].
    fn written_through(&self) -> u64 {
        if self.reconciled {
            self.written_consumed
        } else {
            0
        }
    }

    /// The pipeline has rebuilt the state the log held at start and all of it is
    /// written: rows older than this run that were not rewritten are stale.
    fn reconcile_due(&self) -> bool {
        !self.reconciled
            && self.run_start.is_some()
            && self.reconcile_at.is_some_and(|n| self.consumed >= n)
            && self.dirty.is_empty()
            && self.in_flight == 0
    }
}

#[derive(Debug, Default)]
struct Counters {
    rows_written: AtomicU64,
    events_written: AtomicU64,
    batches: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    unmapped: AtomicU64,
    insert_micros: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    config: ClickHouseConfig,
    rollups: Mutex<Rollups>,
    /// Signals the writer: work arrived, or stop.
    work: Condvar,
    /// Signals the log reader: room freed.
    room: Condvar,
    /// Migrations done: writers may insert.
    ready: AtomicBool,
    /// Whether the raw-event shipper runs.
    ships_raw: bool,
    /// Log positions whose raw events are all in `events` (see `ship_events`).
    raw_written_through: AtomicU64,
    stop: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Rollups> {
        self.rollups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn publish_gauges(&self, r: &Rollups) {
        metrics::gauge!("crmpulse_clickhouse_buffered_rows")
            .set((r.dirty.len() + r.in_flight) as f64);
        let lag = if r.dirty.is_empty() && r.in_flight == 0 {
            0
        } else {
            r.accepted_progress.saturating_sub(r.written_progress)
        };
        metrics::gauge!("crmpulse_clickhouse_lag_seconds").set(lag as f64 / 1000.0);
        self.publish_positions(r);
    }

    /// Log positions whose raw events are in ClickHouse, when they are shipped.
    fn raw_through(&self) -> Option<u64> {
        self.ships_raw
            .then(|| self.raw_written_through.load(Ordering::Acquire))
    }

    fn publish_positions(&self, r: &Rollups) {
        let rollups = r.written_through();
        metrics::gauge!("crmpulse_clickhouse_rollups_written_through_events").set(rollups as f64);
        let through = match self.raw_through() {
            Some(raw) => {
                metrics::gauge!("crmpulse_clickhouse_raw_written_through_events").set(raw as f64);
                raw.min(rollups)
            }
            None => rollups,
        };
        metrics::gauge!("crmpulse_clickhouse_written_through_events").set(through as f64);
    }

    /// Runs `op` until it succeeds, backing off after each failure. Gives up only when
    /// the sink is stopping and `deadline` has passed (the log still holds everything).
    fn retry<T>(
        &self,
        what: &str,
        deadline: &Mutex<Option<Instant>>,
        mut op: impl FnMut() -> Result<T, ClientError>,
    ) -> Option<T> {
        let mut attempt = 0u32;
        loop {
            match op() {
                Ok(v) => return Some(v),
                Err(e) => {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("crmpulse_clickhouse_failures_total").increment(1);
                    let wait = self.config.backoff(attempt);
                    tracing::warn!(what, error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "ClickHouse write failed");
                    let give_up = deadline
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .is_some_and(|d| Instant::now() + wait > d);
                    if give_up {
                        return None;
                    }
                    std::thread::sleep(wait);
                    attempt = attempt.saturating_add(1);
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("crmpulse_clickhouse_retries_total").increment(1);
                }
            }
        }
    }
}

/// The running sink: a rollup writer thread and, optionally, a raw-event shipper.
pub struct ClickHouseSink {
    shared: Arc<Shared>,
    /// Set at shutdown: how long writers may still retry.
    deadline: Arc<Mutex<Option<Instant>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ClickHouseSink {
    /// Starts the writer threads. They connect (and migrate, when configured) in the
    /// background, retrying while the server is unreachable; meanwhile batches are
    /// accepted up to `max_buffered_rows`. With `events`, raw events are copied from
    /// the log too (when `raw_events` is on).
    ///
    /// # Errors
    /// Only if a thread cannot be spawned.
    pub fn start(config: ClickHouseConfig, events: Option<EventReader>) -> std::io::Result<Self> {
        let client = Client::new(&config);
        let raw = config.raw_events;
        let shared = Arc::new(Shared {
            config,
            rollups: Mutex::default(),
            work: Condvar::new(),
            room: Condvar::new(),
            ready: AtomicBool::new(false),
            ships_raw: raw && events.is_some(),
            raw_written_through: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let deadline = Arc::new(Mutex::new(None));
        let mut threads = Vec::new();
        {
            let (shared, deadline, client) =
                (Arc::clone(&shared), Arc::clone(&deadline), client.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("crmpulse-clickhouse".into())
                    .spawn(move || write_rollups(&shared, &deadline, &client))?,
            );
        }
        if let (true, Some(reader)) = (raw, events) {
            let (shared, deadline) = (Arc::clone(&shared), Arc::clone(&deadline));
            threads.push(
                std::thread::Builder::new()
                    .name("crmpulse-clickhouse-events".into())
                    .spawn(move || ship_events(&shared, &deadline, &client, reader))?,
            );
        }
        Ok(Self {
            shared,
            deadline,
            threads: Mutex::new(threads),
        })
    }

    /// Folds a batch into the rows' absolute values and marks the changed rows. Never
    /// blocks on ClickHouse; call [`wait_for_room`](Self::wait_for_room) from the source.
    pub fn accept(&self, batch: &MetricBatch) {
        let mut contributions = Vec::new();
        let mut unmapped = 0u64;
        for (fact, diff) in &batch.updates {
            let start = contributions.len();
            if !rows_of(fact, &mut contributions) {
                unmapped += 1;
            }
            for (_, m) in &mut contributions[start..] {
                m[0] *= diff;
                m[1] *= diff;
            }
        }
        if unmapped > 0 {
            self.shared
                .counters
                .unmapped
                .fetch_add(unmapped, Ordering::Relaxed);
            metrics::counter!("crmpulse_clickhouse_unmapped_facts_total").increment(unmapped);
        }
        let mut r = self.shared.lock();
        for (key, delta) in contributions {
            let value = r.rows.entry(key.clone()).or_default();
            value[0] += delta[0];
            value[1] += delta[1];
            r.dirty.insert(key);
        }
        r.accepted_progress = r.accepted_progress.max(batch.progress);
        r.run_start.get_or_insert(batch.progress);
        r.consumed = r.consumed.max(batch.events_consumed);
        if r.dirty.is_empty() && r.in_flight == 0 {
            r.written_progress = r.accepted_progress;
            r.written_consumed = r.consumed;
        }
        let wake = r.dirty.len() >= self.shared.config.batch_rows;
        self.shared.publish_gauges(&r);
        drop(r);
        if wake {
            self.shared.work.notify_all();
        }
    }

    /// Tells the sink that the event log held `events` events when the pipeline started
    /// reading it. Once the pipeline has consumed them and every changed row is written,
    /// the sink zeroes the rows an earlier run left behind and this run did not rewrite:
    /// changes a crashed process never wrote (a retraction, say) cannot linger.
    pub fn reconcile_after(&self, events: u64) {
        let mut r = self.shared.lock();
        if r.reconcile_at.is_none() {
            r.reconcile_at = Some(events);
        }
        drop(r);
        self.shared.work.notify_all();
    }

    /// Blocks while more than `max_buffered_rows` changed rows wait to be written, at
    /// most `timeout`. Returns whether there is room now.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        let max = self.shared.config.max_buffered_rows.max(1);
        let mut r = self.shared.lock();
        let until = Instant::now() + timeout;
        while r.dirty.len() + r.in_flight >= max {
            let now = Instant::now();
            if now >= until || self.shared.stopping() {
                return false;
            }
            self.shared.work.notify_all();
            r = self
                .shared
                .room
                .wait_timeout(r, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Whether the sink has reached ClickHouse (and applied migrations) since it started.
    pub fn connected(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// The sink's counters now.
    pub fn stats(&self) -> SinkStats {
        let r = self.shared.lock();
        let c = &self.shared.counters;
        SinkStats {
            rows_written: c.rows_written.load(Ordering::Relaxed),
            events_written: c.events_written.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            buffered_rows: (r.dirty.len() + r.in_flight) as u64,
            accepted_progress: r.accepted_progress,
            written_progress: r.written_progress,
            rollups_written_through: r.written_through(),
            raw_events_written_through: self.shared.raw_through(),
            unmapped_facts: c.unmapped.load(Ordering::Relaxed),
            insert_micros: c.insert_micros.load(Ordering::Relaxed),
        }
    }

    /// Asks the writers to flush what they hold (retrying for at most `drain`), then
    /// stops them. Whatever is still unwritten after `drain` is rewritten from the log
    /// on the next start. Later calls do nothing.
    pub fn shutdown(&self, drain: Duration) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + drain);
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.work.notify_all();
        self.shared.room.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// The rollup writer: connects and migrates, then flushes changed rows on a timer and
/// whenever `batch_rows` are waiting.
fn write_rollups(shared: &Shared, deadline: &Mutex<Option<Instant>>, client: &Client) {
    let connected = shared.retry("connect", deadline, || {
        if shared.config.migrate_on_start {
            migrate::migrate(client).map_err(|e| match e {
                migrate::MigrateError::Statement { source, .. }
                | migrate::MigrateError::Bootstrap(source) => source,
                changed @ migrate::MigrateError::Changed { .. } => ClientError::Server {
                    status: 0,
                    message: changed.to_string(),
                },
            })?;
        }
        client.query("SELECT 1").map(|_| ())
    });
    if connected.is_none() {
        return;
    }
    shared.ready.store(true, Ordering::Release);
    tracing::info!(database = client.database(), "ClickHouse sink connected");
    let interval = shared.config.flush_interval();
    let batch_rows = shared.config.batch_rows.max(1);
    let mut last_flush = Instant::now();
    loop {
        // Wait for a full batch, the timer, or stop.
        let (rows, version, consumed) = {
            let mut r = shared.lock();
            loop {
                let due = last_flush.elapsed() >= interval;
                if shared.stopping()
                    || r.dirty.len() >= batch_rows
                    || (due && !r.dirty.is_empty())
                    || r.reconcile_due()
                {
                    break;
                }
                if due {
                    last_flush = Instant::now();
                }
                let wait = interval.saturating_sub(last_flush.elapsed());
                r = shared
                    .work
                    .wait_timeout(r, wait.max(Duration::from_millis(1)))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if r.reconcile_due() {
                let (run_start, version) = (r.run_start.unwrap_or(0), r.accepted_progress);
                drop(r);
                if !reconcile(shared, deadline, client, run_start, version) {
                    return;
                }
                let mut r = shared.lock();
                r.reconciled = true;
                shared.publish_positions(&r);
                continue;
            }
            if r.dirty.is_empty() {
                return; // stopping, nothing left
            }
            take_dirty(&mut r)
        };
        last_flush = Instant::now();
        let n = rows.len();
        if !write_rows(shared, deadline, client, rows, version, batch_rows) {
            return; // stopping and out of time; the log rebuilds it on the next start
        }
        let mut r = shared.lock();
        r.in_flight -= n;
        if r.in_flight == 0 {
            (r.written_progress, r.written_consumed) = if r.dirty.is_empty() {
                (r.accepted_progress, r.consumed)
            } else {
                (version, consumed)
            };
        }
        shared.publish_gauges(&r);
        drop(r);
        shared.room.notify_all();
    }
}

/// Writes 0 at `version` into every non-zero row whose newest version predates this run
/// (`run_start`): this run rebuilt every live row from the log and wrote it, so such a
/// row is left over from a process that stopped before writing its last changes.
/// Returns `false` if it gave up (only when stopping).
fn reconcile(
    shared: &Shared,
    deadline: &Mutex<Option<Instant>>,
    client: &Client,
    run_start: u64,
    version: u64,
) -> bool {
    let mut zeroed = 0u64;
    for table in Table::ALL {
        let measures = table.measures();
        let columns = shared.retry("reconcile columns", deadline, || {
            client.query(&format!(
                "SELECT name FROM system.columns WHERE database = '{}' AND table = '{}' FORMAT TabSeparated",
                client.database(),
                table.name()
            ))
        });
        let Some(columns) = columns else { return false };
        let keys: Vec<&str> = columns
            .lines()
            .filter(|c| *c != "version" && !measures.contains(c))
            .collect();
        let nonzero: Vec<String> = measures.iter().map(|m| format!("{m} != 0")).collect();
        let sql = format!(
            "SELECT {} FROM {} FINAL WHERE version < {run_start} AND ({}) FORMAT JSONEachRow",
            keys.join(", "),
            table.name(),
            nonzero.join(" OR ")
        );
        let Some(stale) = shared.retry("reconcile", deadline, || client.query(&sql)) else {
            return false;
        };
        let mut body = String::new();
        for line in stale.lines().filter(|l| l.ends_with('}')) {
            body.push_str(&line[..line.len() - 1]);
            for m in measures {
                body.push_str(&format!(",\"{m}\":0"));
            }
            body.push_str(&format!(",\"version\":{version}}}\n"));
            zeroed += 1;
        }
        if !body.is_empty()
            && shared
                .retry(table.name(), deadline, || {
                    client.insert_json_rows(table.name(), body.clone())
                })
                .is_none()
        {
            return false;
        }
    }
    tracing::info!(
        zeroed,
        run_start,
        "ClickHouse rollups reconciled with the rebuilt state"
    );
    metrics::counter!("crmpulse_clickhouse_reconciled_rows_total").increment(zeroed);
    true
}

/// Takes every dirty row with its current absolute value, at the current progress and
/// input position. Rows back at zero are forgotten once taken: their zero is what gets
/// written.
fn take_dirty(r: &mut Rollups) -> (Vec<(RowKey, Measures)>, u64, u64) {
    let dirty = std::mem::take(&mut r.dirty);
    let mut rows = Vec::with_capacity(dirty.len());
    for key in dirty {
        let value = r.rows.get(&key).copied().unwrap_or_default();
        if value == [0, 0] {
            r.rows.remove(&key);
        }
        rows.push((key, value));
    }
    r.in_flight += rows.len();
    (rows, r.accepted_progress, r.consumed)
}

/// Writes rows grouped by table, `batch_rows` per insert, each insert retried until it
/// succeeds. Returns `false` if it gave up (only when stopping).
fn write_rows(
    shared: &Shared,
    deadline: &Mutex<Option<Instant>>,
    client: &Client,
    mut rows: Vec<(RowKey, Measures)>,
    version: u64,
    batch_rows: usize,
) -> bool {
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut start = 0;
    while start < rows.len() {
        let table: Table = rows[start].0.table;
        let mut end = start;
        let mut body = String::new();
        while end < rows.len() && rows[end].0.table == table && end - start < batch_rows {
            rows[end].0.to_json_line(rows[end].1, version, &mut body);
            end += 1;
        }
        let n = (end - start) as u64;
        let ok = shared.retry(table.name(), deadline, || {
            let started = Instant::now();
            client
                .insert_json_rows(table.name(), body.clone())
                .map(|()| started.elapsed())
        });
        let Some(took) = ok else {
            return false;
        };
        shared
            .counters
            .insert_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        shared.counters.batches.fetch_add(1, Ordering::Relaxed);
        shared.counters.rows_written.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("crmpulse_clickhouse_batches_total").increment(1);
        metrics::counter!("crmpulse_clickhouse_rows_written_total", "table" => table.name())
            .increment(n);
        start = end;
    }
    true
}

/// Most raw events in one insert. ClickHouse parses an HTTP insert into blocks of
/// `max_insert_block_size` rows (1,048,576 by default) and squashes them up to
/// `min_insert_block_size_bytes` (256 MiB); well below both, an insert into one
/// partition is one part, committed whole or not at all, which `ship_events` relies on.
const RAW_INSERT_MAX_ROWS: usize = 100_000;

/// The `events` partition (`toYYYYMM(occurred_at)`, UTC) an event lands in.
fn partition_of(e: &Event) -> Option<(i32, u32)> {
    use chrono::Datelike as _;
    chrono::DateTime::from_timestamp_millis(e.occurred_at_ms).map(|t| (t.year(), t.month()))
}

/// Splits `events` into runs of consecutive events of one partition, in order.
fn partition_runs(events: &[Event]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        let partition = partition_of(events.get(start)?);
        let end = start
            + events[start..]
                .iter()
                .take_while(|e| partition_of(e) == partition)
                .count();
        let run = start..end;
        start = end;
        Some(run)
    })
}

/// The raw-event shipper: resumes after the newest `log_seq` in `events`, then follows
/// the log.
///
/// Invariant: ClickHouse holds a prefix of the log. Each insert is a run of consecutive
/// positions within one partition (one part: atomic), and the next is sent only after it
/// succeeded, so a failure, a give-up at shutdown or a crash leaves no hole below the
/// newest `log_seq`. [`Shared::raw_written_through`] follows the inserts that succeeded.
fn ship_events(
    shared: &Shared,
    deadline: &Mutex<Option<Instant>>,
    client: &Client,
    mut read: EventReader,
) {
    while !shared.ready.load(Ordering::Acquire) {
        if shared.stopping() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let resume = shared.retry("events cursor", deadline, || {
        client.query("SELECT count(), max(log_seq) FROM events FORMAT TabSeparated")
    });
    let Some(resume) = resume else { return };
    let mut cursor = match resume.trim().split_once('\t') {
        Some((count, max)) if count != "0" => max.parse::<u64>().map_or(0, |m| m + 1),
        _ => 0,
    };
    shared.raw_written_through.store(cursor, Ordering::Release);
    shared.publish_positions(&shared.lock());
    let batch = shared.config.batch_rows.clamp(1, RAW_INSERT_MAX_ROWS);
    let idle = shared
        .config
        .flush_interval()
        .min(Duration::from_millis(250));
    while !shared.stopping() {
        let (events, after) = match read(cursor, batch) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "reading the event log for ClickHouse failed");
                std::thread::sleep(idle);
                continue;
            }
        };
        if after == cursor {
            std::thread::sleep(idle);
            continue;
        }
        // Positions of skipped (unreadable) records are not reported by the log;
        // numbering back from `after` keeps them increasing, which is all the resume
        // cursor needs.
        let first = after - events.len() as u64;
        for range in partition_runs(&events) {
            let (start, end) = (range.start, range.end);
            let run = &events[range];
            let mut body = String::with_capacity(run.len() * 300);
            for (i, e) in run.iter().enumerate() {
                event_line(e, first + (start + i) as u64, &mut body);
            }
            // A failed insert is retried whole; if the server did store it before the
            // failure, the repeat collapses (ReplacingMergeTree keyed by the event).
            let ok = shared.retry("events", deadline, || {
                client.insert_json_rows("events", body.clone())
            });
            if ok.is_none() {
                return; // stopping and out of time: the next start resumes here
            }
            let n = run.len() as u64;
            shared
                .counters
                .events_written
                .fetch_add(n, Ordering::Relaxed);
            shared.counters.batches.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("crmpulse_clickhouse_batches_total").increment(1);
            metrics::counter!("crmpulse_clickhouse_events_written_total").increment(n);
            // `first + events.len()` is `after`: the last run covers the read.
            shared
                .raw_written_through
                .store(first + end as u64, Ordering::Release);
            shared.publish_positions(&shared.lock());
        }
        if events.is_empty() {
            // Only unreadable records: passed over.
            shared.raw_written_through.store(after, Ordering::Release);
            shared.publish_positions(&shared.lock());
        }
        cursor = after;
    }
}

/// One `events` row.
fn event_line(e: &Event, log_seq: u64, out: &mut String) {
    let row = serde_json::json!({
        "account_id": e.account_id,
        "event_id": e.event_id,
        "occurred_at": e.occurred_at_ms.div_euclid(1000),
        "occurred_at_ms": e.occurred_at_ms,
        "type": e.type_name(),
        "conversation_id": e.conversation_id().unwrap_or(""),
        "payload": e.to_json(),
        "log_seq": log_seq,
    });
    out.push_str(&row.to_string());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use schemas::event::Priority;
    use schemas::metrics::Fact;

    use super::*;

    fn sink_without_server(max_buffered_rows: usize) -> ClickHouseSink {
        ClickHouseSink::start(
            ClickHouseConfig {
                // Nothing listens on port 9 of loopback: every write fails.
                url: "http://127.0.0.1:9".into(),
                max_buffered_rows,
                retry_initial_ms: 10,
                retry_max_ms: 20,
                ..ClickHouseConfig::default()
            },
            None,
        )
        .unwrap()
    }

    fn ticket(p: Priority) -> Fact {
        Fact::OpenTicket {
            account_id: 1,
            priority: p,
        }
    }

    #[test]
    fn rows_keep_absolute_values_and_dedup_while_the_server_is_down() {
        let sink = sink_without_server(10);
        for progress in 1..=5 {
            sink.accept(&MetricBatch {
                progress,
                updates: vec![(ticket(Priority::High), 1)],
                events_consumed: progress,
            });
        }
        let stats = sink.stats();
        assert_eq!(
            stats.buffered_rows, 1,
            "five changes of one row are one row"
        );
        assert_eq!(stats.accepted_progress, 5);
        assert_eq!(stats.written_progress, 0);
        assert_eq!(stats.lag_ms(), 5);
        assert_eq!(stats.rollups_written_through, 0, "nothing is written");
        assert_eq!(
            stats.raw_events_written_through, None,
            "no raw events shipped"
        );
        assert_eq!(stats.written_through(), 0);
        let r = sink.shared.lock();
        let key = r.rows.keys().next().unwrap().clone();
        assert_eq!(r.rows[&key], [5, 0]);
        drop(r);
        assert!(sink.wait_for_room(Duration::from_millis(1)));
        sink.shutdown(Duration::ZERO);
    }

    #[test]
    fn reconciliation_waits_for_the_rebuild_and_the_writes() {
        let mut r = Rollups {
            reconcile_at: Some(10),
            ..Rollups::default()
        };
        assert!(!r.reconcile_due(), "no batch yet");
        r.run_start = Some(5);
        r.consumed = 9;
        assert!(!r.reconcile_due(), "the log is not rebuilt yet");
        r.consumed = 10;
        r.in_flight = 1;
        assert!(!r.reconcile_due(), "rows still being written");
        r.in_flight = 0;
        assert!(r.reconcile_due());
        r.reconciled = true;
        assert!(!r.reconcile_due(), "once");
    }

    #[test]
    fn the_committed_position_is_the_slower_writer_and_waits_for_reconciliation() {
        let stats = SinkStats {
            rollups_written_through: 70,
            raw_events_written_through: Some(40),
            ..SinkStats::default()
        };
        assert_eq!(stats.written_through(), 40);
        let stats = SinkStats {
            raw_events_written_through: Some(90),
            ..stats
        };
        assert_eq!(stats.written_through(), 70);
        let stats = SinkStats {
            raw_events_written_through: None,
            ..stats
        };
        assert_eq!(stats.written_through(), 70);

        let mut r = Rollups {
            written_consumed: 70,
            ..Rollups::default()
        };
        assert_eq!(
            r.written_through(),
            0,
            "stale rows may remain until reconciled"
        );
        r.reconciled = true;
        assert_eq!(r.written_through(), 70);
    }

    #[test]
    fn raw_inserts_split_where_the_month_changes() {
        let at = |ms: i64| Event {
            event_id: ms.to_string(),
            account_id: 1,
            occurred_at_ms: ms,
            payload: schemas::event::Payload::ConversationReopened {
                conversation_id: "c".into(),
            },
        };
        let nov_30 = 1_795_996_800_000; // 2026-11-30T00:00:00Z
        let dec_1 = nov_30 + 86_400_000;
        assert_eq!(partition_of(&at(dec_1 - 1)), Some((2026, 11)));
        assert_eq!(partition_of(&at(dec_1)), Some((2026, 12)));
        // A late November event after December ones starts a run of its own: runs stay
        // in log order, so what is stored is always a prefix of the log.
        let events = [nov_30, dec_1 - 1, dec_1, dec_1 + 5, nov_30 + 7, dec_1 + 9].map(at);
        let runs: Vec<_> = partition_runs(&events).collect();
        assert_eq!(runs, [0..2, 2..4, 4..5, 5..6]);
        assert_eq!(partition_runs(&[]).count(), 0);
    }

    #[test]
    fn the_bound_applies_backpressure() {
        let sink = sink_without_server(2);
        sink.accept(&MetricBatch {
            progress: 1,
            updates: vec![(ticket(Priority::High), 1), (ticket(Priority::Low), 1)],
            events_consumed: 2,
        });
        assert!(!sink.wait_for_room(Duration::from_millis(20)));
        sink.shutdown(Duration::ZERO);
    }
}
