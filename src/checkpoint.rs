//! Checkpoints of a stack with a pipeline: the view store's facts, the pipeline's
//! finalizer and the source position they belong to, in one file written atomically,
//! so that a restart loads them and replays only what the dataflow holds live instead
//! of the whole source (docs/architecture.md, "Checkpoints").
//!
//! The source is the embedded log (the position is a number of events, and the live
//! entities' events are read back from the log by position) or the events topic (the
//! position is the next offset of each partition with the lateness watermarks, and
//! the live entities' events are kept in the checkpoint itself, [`HeldEvent`]).
//!
//! The file, `checkpoint.bin` in the data dir:
//!
//! ```text
//! "CRMPCKPT" | version: u32 LE | crc32 of the frames: u32 LE | length of frame 1: u64 LE
//!   | frame 1: zstd( postcard: Header, PipelineState, Vec<HeldEvent> )
//!   | frame 2: zstd( postcard: Some((fact, multiplicity)) per fact, None, the number of facts )
//! ```
//!
//! Two frames, so that a start decompresses only the pipeline's part before the
//! warm-up can begin; the facts are decompressed and loaded meanwhile.
//!
//! Invariants:
//! - **One position.** Everything in a checkpoint is the state after exactly the first
//!   `Header::events` events the pipeline took: it is taken between two batches, only
//!   when the view store has released every event pushed ([`Checkpointer::write`]
//!   checks it under the store's lock). The log only grows (dense sequence numbers
//!   that never change); the topic's position is the one after exactly those events.
//! - **All or nothing.** It is written to `checkpoint.bin.tmp`, fsynced, and renamed
//!   over the previous one (then the directory is fsynced): a `kill -9` at any point
//!   leaves the previous checkpoint or the new one, never a mix. A damaged file fails
//!   its CRC or its decoding and is ignored: the restart replays the whole log.
//! - **Same rules, same source.** A checkpoint written with another lateness horizon,
//!   for another log (the log's random identity, [`ingest::EventLog::id`], differs:
//!   a restored or recreated `events.redb`) or ahead of the log it is found beside,
//!   for another kind of source, or for a topic whose last messages read are not
//!   there any more ([`ingest::kafka::EventSource::resume`]: another topic, or one
//!   recreated), is ignored the same way, and removed (so that it cannot be taken
//!   later for a source that has grown past it with other events).

use std::fs::File;
use std::io::{BufWriter, Read as _, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ingest::kafka::SourcePosition;
use pipeline::{Pipeline, PipelineState};
use query_api::ViewStore;
use schemas::metrics::{Fact, MetricBatch};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"CRMPCKPT";
/// Bumped whenever what a checkpoint holds changes meaning or shape (postcard is
/// positional: a change of `Fact`, the finalizer or the records needs a new version).
const VERSION: u32 = 5;
/// Bytes before the frames: magic, version, CRC, frame 1's length.
const PREFIX: usize = 24;
const FILE: &str = "checkpoint.bin";
/// Facts applied to the view store per batch when a checkpoint is loaded.
const LOAD_CHUNK: usize = 100_000;
/// New events after which a checkpoint is due before the interval, by default
/// ([`Checkpointer::due`], `[pipeline] checkpoint_catch_up_events`).
pub const CATCH_UP_EVENTS: u64 = 1_000_000;
/// The least time between two checkpoints taken before the interval.
const MIN_SPACING: Duration = Duration::from_secs(30);

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    /// Events of the log it covers: the first `events` positions.
    events: u64,
    /// The view store's progress (pipeline time) at it.
    progress: u64,
    /// The lateness horizon it was taken with, ms.
    horizon_ms: i64,
    /// The source it was taken from, and where.
    source: SourceMark,
}

/// The source a checkpoint is of, and its position there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceMark {
    /// The embedded log with this identity; the position is the events covered.
    Log {
        /// [`ingest::EventLog::id`].
        id: u128,
    },
    /// The events topic, at this position.
    Topic(SourcePosition),
}

impl SourceMark {
    /// The source, in words for a log line.
    pub fn describe(&self) -> String {
        match self {
            SourceMark::Log { id } => format!("the embedded log {id:032x}"),
            SourceMark::Topic(p) => format!("the events topic {}", p.topic),
        }
    }
}

/// An event a checkpoint of the events topic keeps because a live entity (or a fold
/// that never finalizes) needs it on a restart: its pipeline position and its
/// payload as read from the topic (protobuf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEvent {
    /// The event's position in the pipeline's input (the finalizer's numbering).
    pub position: u64,
    /// The message's payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A checkpoint read back: the pipeline's part decoded, the facts still to decode
/// ([`Facts::release`]), so that the pipeline's warm-up and loading the facts can run
/// at the same time.
#[derive(Debug)]
pub struct Loaded {
    /// The pipeline's part; `state.pushed` is the events it covers.
    pub state: PipelineState,
    /// The source and the position it covers.
    pub source: SourceMark,
    /// The live entities' events (a checkpoint of the events topic; empty for the log,
    /// which is read back by position).
    pub held: Vec<HeldEvent>,
    /// The view store's facts.
    pub facts: Facts,
}

/// A checkpoint's facts: the file, checked (CRC), with the facts' frame at `offset`
/// not decompressed yet.
pub struct Facts {
    body: Vec<u8>,
    offset: usize,
    events: u64,
    progress: u64,
}

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts")
            .field("events", &self.events)
            .field("compressed_bytes", &(self.body.len() - self.offset))
            .finish_non_exhaustive()
    }
}

impl Facts {
    /// Decodes the facts and hands them to `apply` in batches at the checkpoint's
    /// position (the ClickHouse sink, then the view store). Returns how many.
    ///
    /// # Errors
    /// When they do not decode: the checksum matched, so this is a bug, not damage;
    /// the stack must not start on half of them (delete `checkpoint.bin` to replay
    /// the log).
    pub fn release(self, mut apply: impl FnMut(MetricBatch)) -> anyhow::Result<u64> {
        let started = Instant::now();
        let body = zstd::stream::decode_all(&self.body[self.offset..]).context(
            "checkpoint facts do not decompress (delete checkpoint.bin to replay the log)",
        )?;
        drop(self.body);
        let mut rest = &body[..];
        let mut count = 0u64;
        let mut batch = Vec::with_capacity(LOAD_CHUNK);
        loop {
            let (fact, next): (Option<(Fact, i64)>, _) = postcard::take_from_bytes(rest).context(
                "checkpoint facts do not decode (delete checkpoint.bin to replay the log)",
            )?;
            rest = next;
            let end = fact.is_none();
            if let Some(f) = fact {
                batch.push(f);
                count += 1;
            }
            // One batch even without facts, so the store knows the position.
            if batch.len() == LOAD_CHUNK || end {
                apply(MetricBatch {
                    progress: self.progress,
                    updates: std::mem::replace(&mut batch, Vec::with_capacity(LOAD_CHUNK)),
                    events_consumed: self.events,
                });
            }
            if end {
                break;
            }
        }
        let (written, rest): (u64, _) =
            postcard::take_from_bytes(rest).context("checkpoint fact count")?;
        anyhow::ensure!(
            written == count && rest.is_empty(),
            "checkpoint: {count} facts read, the file says {written}"
        );
        tracing::info!(
            facts = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpoint facts loaded"
        );
        Ok(count)
    }
}

/// A writer that feeds every byte through a CRC-32 and counts them.
struct Crc<W> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Loads the checkpoint in `dir`, if there is one that applies: the same lateness
/// horizon, and `check(source, events)` accepts its source and position (the same
/// log and not ahead of it; the same topic with the messages it read). Anything else
/// (none, damaged, another horizon, another source, another version) is logged and
/// gives `None`: the caller replays its source from the start.
pub fn load(
    dir: &Path,
    horizon_ms: Option<i64>,
    check: impl FnOnce(&SourceMark, u64) -> anyhow::Result<()>,
) -> Option<Loaded> {
    let path = dir.join(FILE);
    if !path.exists() {
        return None;
    }
    let started = Instant::now();
    match read(&path, horizon_ms, check) {
        Ok(loaded) => {
            metrics::gauge!("crmpulse_checkpoint_loaded_events").set(loaded.state.pushed as f64);
            tracing::info!(
                events = loaded.state.pushed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "checkpoint loaded"
            );
            Some(loaded)
        }
        Err(e) => {
            metrics::counter!("crmpulse_checkpoint_ignored_total").increment(1);
            tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "checkpoint not used; replaying the whole source");
            // Derived data, and not this log's: removed, so that it cannot be taken
            // later for a log that has grown past it with other events.
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the checkpoint not used");
            }
            None
        }
    }
}

fn read(
    path: &Path,
    horizon_ms: Option<i64>,
    check: impl FnOnce(&SourceMark, u64) -> anyhow::Result<()>,
) -> anyhow::Result<Loaded> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    anyhow::ensure!(
        bytes.len() >= PREFIX && &bytes[..8] == MAGIC,
        "not a crmpulse checkpoint"
    );
    let version = u32::from_le_bytes(bytes[8..12].try_into()?);
    anyhow::ensure!(
        version == VERSION,
        "checkpoint version {version}, this build reads {VERSION}"
    );
    let crc = u32::from_le_bytes(bytes[12..16].try_into()?);
    anyhow::ensure!(
        crc32fast::hash(&bytes[PREFIX..]) == crc,
        "checksum mismatch: the file is damaged"
    );
    let first = usize::try_from(u64::from_le_bytes(bytes[16..PREFIX].try_into()?))?;
    anyhow::ensure!(
        first <= bytes.len() - PREFIX,
        "checksum matched but frame 1 overruns the file"
    );
    let body = zstd::stream::decode_all(&bytes[PREFIX..PREFIX + first])
        .context("decompressing the pipeline's part")?;
    let (header, rest): (Header, _) = postcard::take_from_bytes(&body).context("header")?;
    anyhow::ensure!(
        Some(header.horizon_ms) == horizon_ms,
        "taken with a lateness horizon of {} h, configured {}",
        header.horizon_ms / 3_600_000,
        horizon_ms.map_or("none".to_owned(), |h| format!("{} h", h / 3_600_000)),
    );
    check(&header.source, header.events)
        .with_context(|| format!("taken from {}", header.source.describe()))?;
    let (state, rest): (PipelineState, _) =
        postcard::take_from_bytes(rest).context("pipeline state")?;
    let (held, rest): (Vec<HeldEvent>, _) =
        postcard::take_from_bytes(rest).context("held events")?;
    anyhow::ensure!(rest.is_empty(), "bytes after the held events");
    anyhow::ensure!(
        state.pushed == header.events,
        "pipeline state at {} events, facts at {}",
        state.pushed,
        header.events
    );
    Ok(Loaded {
        state,
        source: header.source,
        held,
        facts: Facts {
            body: bytes,
            offset: PREFIX + first,
            events: header.events,
            progress: header.progress,
        },
    })
}

/// Writes checkpoints of a running stack: every `interval` once new events have been
/// pushed, and when asked ([`Checkpointer::write`]).
///
/// A write has two parts. The capture, on the caller's thread (the pipeline's
/// driver, so ingestion waits for it): the pipeline's state and the view store's facts
/// serialized into memory, at one position. Then the file, on a thread of its own
/// while ingestion goes on: both parts compressed, written, fsynced and renamed into
/// place. One file write runs at a time; the next capture waits for the last one.
#[derive(Debug)]
pub struct Checkpointer {
    dir: PathBuf,
    interval: Duration,
    /// New events that make one due before the interval; 0 for never.
    catch_up_events: u64,
    /// When the last one was captured (or the stack started).
    last_at: Instant,
    /// Events the last capture covers.
    last_events: u64,
    /// Events the last checkpoint on disk covers.
    written_events: u64,
    /// How long the last capture paused the caller (the spacing rule of
    /// [`Checkpointer::due`] keeps captures to a tenth of ingestion's time).
    last_took: Duration,
    /// The file write in progress, if any.
    in_flight: Option<std::thread::JoinHandle<FileWrite>>,
    /// The serialized pipeline part and facts of the last write, for the next capture
    /// to serialize into: kept when that write covered `catch_up_events` or more new
    /// events, so the next one is due within [`MIN_SPACING`] or so (about the
    /// checkpoint's uncompressed size: 55 MB at 90 days); otherwise its thread frees
    /// them, the next write being an interval away.
    buffers: (Vec<u8>, Vec<u8>),
}

/// What a file write's thread hands back: the events it covers (`Err` when it
/// failed), and the two buffers it wrote from (empty when they are not kept).
type FileWrite = (Result<u64, ()>, Vec<u8>, Vec<u8>);

/// What a file write reports.
#[derive(Debug)]
struct Written {
    events: u64,
    size: u64,
    /// The two parts' serialized bytes, before compression.
    raw: usize,
    /// The capture (its two parts, side by side), each part, and the file write.
    paused: Duration,
    state_took: Duration,
    facts_took: Duration,
    file_took: Duration,
}

impl Checkpointer {
    /// Checkpoints into `dir` every `interval`, and after `catch_up_events` new events
    /// (0: only every `interval`); `events` is what the position the stack starts from
    /// already covers (a loaded checkpoint's, or 0).
    pub fn new(dir: &Path, interval: Duration, catch_up_events: u64, events: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            interval,
            catch_up_events,
            last_at: Instant::now(),
            last_events: events,
            written_events: events,
            last_took: Duration::ZERO,
            in_flight: None,
            buffers: Default::default(),
        }
    }

    /// Events the last checkpoint covers (or the start position).
    pub fn covered(&self) -> u64 {
        self.last_events
    }

    /// Whether one is due: new events since the last, and the interval passed; or,
    /// sooner, `catch_up_events` new events (a backlog or the demo's backfill, which
    /// a crash would make the next start replay), but never more often than every
    /// [`MIN_SPACING`] nor than ten times the last write took, so that writing costs
    /// ingestion at most a tenth of its time.
    pub fn due(&self, pushed: u64) -> bool {
        let new = pushed.saturating_sub(self.last_events);
        let elapsed = self.last_at.elapsed();
        new > 0
            && (elapsed >= self.interval
                || (self.catch_up_events > 0
                    && new >= self.catch_up_events
                    && elapsed >= MIN_SPACING.max(self.last_took * 10)))
    }

    /// Writes a checkpoint of `pipeline` and `store` at `source`'s position (with the
    /// `held` events a topic's checkpoint keeps), once the store has released every
    /// event pushed (waiting up to `drain`): captures it here and hands the file to a
    /// thread of its own (see [`Checkpointer`]; [`Checkpointer::finish`] waits for it).
    /// Returns whether it captured one; a pipeline without a lateness horizon has no
    /// checkpoint. Call it between two batches.
    ///
    /// # Errors
    /// Errors of the capture; the previous checkpoint is then still in place. (A
    /// file write that fails is logged and counted by its thread.)
    pub fn write(
        &mut self,
        pipeline: &Pipeline,
        store: &ViewStore,
        drain: Duration,
        source: &SourceMark,
        held: &[HeldEvent],
    ) -> anyhow::Result<bool> {
        let Some(state) = pipeline.state() else {
            return Ok(false);
        };
        let pushed = state.pushed;
        let deadline = Instant::now() + drain;
        while store.read(|s| s.events_consumed) < pushed {
            if Instant::now() >= deadline {
                // Still busy: the next call tries again.
                self.last_at = Instant::now();
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // One file at a time: the last one lands before this one is captured.
        self.finish();
        let started = Instant::now();
        // The last write's buffers: their pages are mapped already (fresh ones cost
        // half of a capture in page faults and copies as they grow).
        let (part, facts) = std::mem::take(&mut self.buffers);
        let captured = capture(&state, store, source, held, part, facts);
        let paused = started.elapsed();
        self.last_at = Instant::now();
        let (part, facts, state_took, facts_took) = captured.map_err(|e| {
            metrics::counter!("crmpulse_checkpoint_failures_total").increment(1);
            e.context("capturing a checkpoint")
        })?;
        let keep_buffers = self.catch_up_events > 0
            && pushed.saturating_sub(self.last_events) >= self.catch_up_events;
        self.last_events = pushed;
        self.last_took = paused;
        let dir = self.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("crmpulse-checkpoint".into())
            .spawn(move || {
                let file_started = Instant::now();
                let outcome = report(write_file(&dir, &part, &facts).map(|size| Written {
                    events: pushed,
                    size,
                    raw: part.len() + facts.len(),
                    paused,
                    state_took,
                    facts_took,
                    file_took: file_started.elapsed(),
                }));
                if keep_buffers {
                    (outcome, part, facts)
                } else {
                    (outcome, Vec::new(), Vec::new())
                }
            });
        match spawned {
            Ok(handle) => self.in_flight = Some(handle),
            Err(e) => {
                self.last_events = self.written_events;
                metrics::counter!("crmpulse_checkpoint_failures_total").increment(1);
                return Err(anyhow::Error::from(e).context("starting a checkpoint write"));
            }
        }
        Ok(true)
    }

    /// Waits for the file write in progress, if any (it logs and counts its own
    /// outcome): at shutdown, so the checkpoint is on disk when the process exits.
    pub fn finish(&mut self) {
        let Some(handle) = self.in_flight.take() else {
            return;
        };
        let outcome = match handle.join() {
            Ok((outcome, part, facts)) => {
                self.buffers = (part, facts);
                outcome
            }
            Err(_) => {
                tracing::error!("the checkpoint writer panicked");
                Err(())
            }
        };
        match outcome {
            Ok(events) => self.written_events = events,
            // The capture after the last one on disk is lost: the next is due by the
            // same rule as if it had never been taken.
            Err(()) => self.last_events = self.written_events,
        }
    }
}

/// Serializes a checkpoint at `state`'s position into `part` (the header, the
/// pipeline's state and the held events) and `facts` (the view store's facts, each
/// with its multiplicity, then `None` and their count), cleared first; returns them
/// with the time each part took. The two parts are serialized side by side, the facts
/// on a thread of their own: both only read, the dataflow's workers are idle (the
/// store has released every event pushed), and the pause is the longer of the two
/// instead of their sum.
fn capture(
    state: &pipeline::PipelineStateRef<'_>,
    store: &ViewStore,
    source: &SourceMark,
    held: &[HeldEvent],
    mut part: Vec<u8>,
    facts: Vec<u8>,
) -> anyhow::Result<(Vec<u8>, Vec<u8>, Duration, Duration)> {
    part.clear();
    let header_at = store.read(|s| (s.progress, s.events_consumed));
    anyhow::ensure!(
        header_at.1 == state.pushed,
        "the view store is not at the pipeline's position"
    );
    let header = Header {
        events: state.pushed,
        progress: header_at.0,
        horizon_ms: state.finalizer.horizon_ms(),
        source: source.clone(),
    };
    let (part, facts) = std::thread::scope(|scope| {
        let facts = std::thread::Builder::new()
            .name("crmpulse-checkpoint-facts".into())
            .spawn_scoped(scope, || capture_facts(store, facts, header_at));
        let started = Instant::now();
        let part = (|| -> anyhow::Result<Vec<u8>> {
            part = postcard::to_extend(&header, part)?;
            part = postcard::to_extend(state, part)?;
            Ok(postcard::to_extend(held, part)?)
        })()
        .map(|part| (part, started.elapsed()));
        let facts = match facts {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the facts' serializer panicked"))),
            Err(e) => Err(anyhow::Error::from(e).context("starting the facts' serializer")),
        };
        (part, facts)
    });
    let ((part, state_took), (facts, facts_took)) = (part?, facts?);
    Ok((part, facts, state_took, facts_took))
}

/// The view store's facts part of a checkpoint at `expected` (progress, events
/// consumed), into `facts` (cleared first), with the time it took.
fn capture_facts(
    store: &ViewStore,
    mut facts: Vec<u8>,
    expected: (u64, u64),
) -> anyhow::Result<(Vec<u8>, Duration)> {
    let started = Instant::now();
    facts.clear();
    // Facts are serialized into one buffer (postcard's writer writes byte by byte: fed
    // to zstd directly it cost 2.8 µs per fact, 10× the rest).
    let mut written = 0u64;
    let mut failed: Option<anyhow::Error> = None;
    let at = store.for_each_fact(|fact, n| {
        if failed.is_some() {
            return;
        }
        match postcard::to_extend(&Some((fact, n)), std::mem::take(&mut facts)) {
            Ok(b) => {
                facts = b;
                written += 1;
            }
            Err(e) => failed = Some(e.into()),
        }
    });
    anyhow::ensure!(at == expected, "the view store moved while it was written");
    if let Some(e) = failed {
        return Err(e);
    }
    facts = postcard::to_extend(&None::<(Fact, i64)>, facts)?;
    facts = postcard::to_extend(&written, facts)?;
    Ok((facts, started.elapsed()))
}

/// Logs and counts a file write's outcome, on its thread, as it ends; returns the
/// events it covers, or `Err` when it failed.
fn report(outcome: anyhow::Result<Written>) -> Result<u64, ()> {
    match outcome {
        Ok(w) => {
            metrics::counter!("crmpulse_checkpoints_total").increment(1);
            metrics::gauge!("crmpulse_checkpoint_events").set(w.events as f64);
            metrics::gauge!("crmpulse_checkpoint_bytes").set(w.size as f64);
            metrics::gauge!("crmpulse_checkpoint_write_seconds")
                .set((w.paused + w.file_took).as_secs_f64());
            metrics::gauge!("crmpulse_checkpoint_pause_seconds").set(w.paused.as_secs_f64());
            tracing::info!(
                events = w.events,
                bytes = w.size,
                raw_bytes = w.raw,
                paused_ms = w.paused.as_millis() as u64,
                pipeline_part_ms = w.state_took.as_millis() as u64,
                facts_ms = w.facts_took.as_millis() as u64,
                file_ms = w.file_took.as_millis() as u64,
                "checkpoint written"
            );
            Ok(w.events)
        }
        Err(e) => {
            metrics::counter!("crmpulse_checkpoint_failures_total").increment(1);
            tracing::error!(error = %format!("{e:#}"), "checkpoint not written");
            Err(())
        }
    }
}

/// The checkpoint written at shutdown is on disk once the driver drops its
/// checkpointer.
impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Writes a checkpoint file from its two serialized parts: each compressed as one
/// zstd frame, CRC-32 over both, into a tmp file, fsynced, renamed into place, and the
/// directory fsynced. Returns the file's size. On error the tmp file is removed and
/// the previous checkpoint is still in place.
fn write_file(dir: &Path, part: &[u8], facts: &[u8]) -> anyhow::Result<u64> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let result = (|| -> anyhow::Result<u64> {
        let mut file = File::create(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&VERSION.to_le_bytes())?;
        file.write_all(&[0; PREFIX - 12])?;
        let mut crc = Crc {
            inner: BufWriter::with_capacity(1 << 20, file.try_clone()?),
            crc: crc32fast::Hasher::new(),
            written: 0,
        };
        let mut z = zstd::stream::Encoder::new(&mut crc, 3)?;
        z.write_all(part)?;
        z.finish()?;
        let first = crc.written;
        let mut z = zstd::stream::Encoder::new(&mut crc, 3)?;
        z.write_all(facts)?;
        z.finish()?;
        crc.flush()?;
        let Crc {
            inner, crc: sum, ..
        } = crc;
        drop(inner);
        let sum = sum.finalize();
        file.seek(SeekFrom::Start(12))?;
        file.write_all(&sum.to_le_bytes())?;
        file.write_all(&first.to_le_bytes())?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        drop(file);
        std::fs::rename(&tmp, dir.join(FILE))?;
        File::open(dir)?.sync_all()?;
        Ok(size)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.context("writing a checkpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpointer whose last capture was `ago`, covering 0 events.
    fn last_captured(ago: Duration, catch_up_events: u64) -> Checkpointer {
        let mut c = Checkpointer::new(Path::new("."), Duration::from_secs(300), catch_up_events, 0);
        c.last_at = Instant::now() - ago;
        c
    }

    #[test]
    fn a_checkpoint_is_due_after_the_interval_or_sooner_after_the_catch_up_events() {
        let c = last_captured(Duration::from_secs(31), 1_000_000);
        assert!(!c.due(0), "nothing new");
        assert!(
            !c.due(999_999),
            "fewer than the catch-up events, inside the interval"
        );
        assert!(c.due(1_000_000));
        let c = last_captured(Duration::from_secs(5), 1_000_000);
        assert!(!c.due(5_000_000), "never more often than every 30 s");
        let c = last_captured(Duration::from_secs(31), 5_000_000);
        assert!(!c.due(1_000_000), "the threshold is the configured one");
        assert!(c.due(5_000_000));
        // 0: only the interval.
        let c = last_captured(Duration::from_secs(299), 0);
        assert!(!c.due(50_000_000));
        let c = last_captured(Duration::from_secs(301), 0);
        assert!(c.due(1));
    }
}
