//! Running the dataflow: worker threads, the input clock, and the output collector.
//!
//! The [`Pipeline`] handle owns the input side. Each [`Pipeline::push`] stamps a batch
//! of events with the next pipeline time (`max(now in ms, previous + 1)`, "now" read
//! from the process's one [`Clock`], given in [`PipelineConfig`]), splits it round-robin
//! over the workers and advances every worker's inputs past it. [`Pipeline::tick`]
//! advances time without events, so that time-based results move even when nothing
//! arrives. Bounded command queues and a cap on batches in flight
//! per worker push back on the source when the dataflow falls behind.
//!
//! The collector thread receives every worker's captured output. A time is complete
//! only when the progress reports of *all* workers say so: the collector accumulates
//! them in one [`MutableAntichain`] (starting from each worker's initial capability)
//! and releases updates at times below its frontier as one consolidated
//! [`MetricBatch`]. Readers therefore never see half of a batch.

use foldhash::{HashMap, HashMapExt as _};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use schemas::metrics::{Fact, MetricBatch};
use schemas::{Clock, Event};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::capture::Event as CaptureEvent;
use timely::progress::frontier::MutableAntichain;

use crate::dataflow::{self, FactEvent, Time};
use crate::finalize::{Finalized, Finalizer, Refused};
use crate::records::{EntityKey, Id, Routed};
use crate::sizes::ArrangedUpdates;

/// Errors starting or running the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Timely could not start its workers.
    #[error("starting dataflow workers: {0}")]
    Start(String),
    /// The workers are gone (a worker panicked).
    #[error("the dataflow workers stopped")]
    Stopped,
}

/// How the pipeline runs (runtime behaviour, not what it computes).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Timely worker threads.
    pub workers: usize,
    /// Batches a worker may have in the dataflow before it stops taking new ones.
    pub max_in_flight: usize,
    /// Where input times come from ([`Pipeline::push`], [`Pipeline::tick`]): the
    /// process's one clock, so that a fixed "now" holds for the pipeline too.
    pub clock: Clock,
    /// The lateness horizon, ms: entities final by it leave the pipeline and events
    /// for them are refused ([`crate::finalize`]). `None`: nothing is ever final.
    pub lateness_horizon_ms: Option<i64>,
    /// Count the updates each arrangement holds ([`crate::sizes`]): a diagnostic of
    /// where the dataflow's memory is. Off by default: with a logger bound, every
    /// worker step flushes it and every logged batch reads the clock (3–4% of the
    /// workers' time in the throughput benchmark).
    pub arrangement_sizes: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_in_flight: 4,
            clock: Clock::system(),
            lateness_horizon_ms: None,
            arrangement_sizes: false,
        }
    }
}

enum Command {
    /// Insert events at `time`, then the order to forget the entities `finalize`,
    /// then advance inputs to `time + 1`.
    Batch {
        time: Time,
        events: Vec<Event>,
        finalize: Vec<Finalized>,
    },
    /// A restart's replay ([`Pipeline::warm`]): insert these records and seed the
    /// customers' first conversations at `time`, then advance inputs to `time + 1`.
    Warm {
        time: Time,
        routed: Routed,
        firsts: Firsts,
    },
    /// Advance inputs to `time`.
    Advance(Time),
}

/// Customers' first conversations, `((account, customer), (opened at, conversation))`,
/// as a restart seeds the customer fold with them.
pub type Firsts = Vec<(EntityKey, (i64, Id))>;

/// What a checkpoint keeps of the pipeline: how many events it had taken, its input
/// time, and the finalizer (which entities are live or final, and the positions a
/// restart replays). Written with [`Pipeline::state`], read back by
/// [`Pipeline::resume`].
#[derive(Debug, Deserialize)]
pub struct PipelineState {
    /// Events pushed (the source position to read on from).
    pub pushed: u64,
    /// The latest input time.
    pub time: Time,
    /// The finalizer.
    pub finalizer: Finalizer,
}

/// [`PipelineState`] borrowed from a running pipeline, to serialize without a copy
/// (the same fields, in the same order).
#[derive(Debug, Serialize)]
pub struct PipelineStateRef<'a> {
    /// Events pushed.
    pub pushed: u64,
    /// The latest input time.
    pub time: Time,
    /// The finalizer.
    pub finalizer: &'a Finalizer,
}

/// Handle to a running pipeline. Dropping it (or [`Pipeline::finish`]) closes the
/// inputs; the collector then delivers everything still pending.
pub struct Pipeline {
    senders: Vec<Sender<Command>>,
    workers: Option<timely::communication::WorkerGuards<()>>,
    collector: Option<JoinHandle<()>>,
    /// Where [`Pipeline::push`] and [`Pipeline::tick`] read the time.
    clock: Clock,
    /// The latest time handed to the workers.
    time: Time,
    /// Events pushed so far.
    pushed: u64,
    /// `(time, events pushed up to and including time)`, for the collector.
    marks: Arc<Mutex<VecDeque<(Time, u64)>>>,
    /// Which entities are final, with the lateness horizon.
    finalizer: Option<Finalizer>,
    /// Events refused since [`Pipeline::take_refused`] was last called.
    refused: Vec<Refused>,
    /// The watermark caps of the next push's events ([`Pipeline::set_watermark_caps`]).
    caps: Vec<Option<i64>>,
    /// Output at times below it is dropped by the collector: it is a restart's replay
    /// of state whose facts the checkpoint already holds ([`Pipeline::warm`]).
    warm_end: Arc<AtomicU64>,
    /// Updates held by each arrangement ([`crate::sizes`]).
    arranged: ArrangedUpdates,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("workers", &self.senders.len())
            .field("time", &self.time)
            .field("pushed", &self.pushed)
            .finish()
    }
}

impl Pipeline {
    /// Starts the workers and the collector. `on_batch` is called from the collector
    /// thread with each complete batch, in progress order.
    ///
    /// # Errors
    /// [`PipelineError::Start`] when timely cannot start.
    pub fn start(
        config: &PipelineConfig,
        on_batch: impl FnMut(MetricBatch) + Send + 'static,
    ) -> Result<Self, PipelineError> {
        let workers = config.workers.max(1);
        let max_in_flight = config.max_in_flight.max(1);
        let (capture_tx, capture_rx) = mpsc::channel::<FactEvent>();
        let mut senders = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = crossbeam_channel::bounded::<Command>(max_in_flight);
            senders.push(tx);
            receivers.push(Some(rx));
        }
        let receivers = Arc::new(Mutex::new(receivers));
        let marks = Arc::new(Mutex::new(VecDeque::new()));

        let capture_tx = Mutex::new(capture_tx);
        let arranged = ArrangedUpdates::default();
        let sizes = config.arrangement_sizes.then(|| arranged.clone());
        let guards = timely::execute(timely::Config::process(workers), move |worker| {
            let rx = receivers.lock().expect("receivers lock")[worker.index()]
                .take()
                .expect("each worker takes its own receiver once");
            let sink = capture_tx.lock().expect("capture lock").clone();
            if let Some(sizes) = &sizes {
                crate::sizes::before_build(worker, sizes.clone());
            }
            let (inputs, probe) = dataflow::build(worker, sink);
            if sizes.is_some() {
                crate::sizes::after_build(worker);
            }
            run_worker(worker, inputs, &probe, &rx, max_in_flight);
        })
        .map_err(PipelineError::Start)?;

        let collector_marks = Arc::clone(&marks);
        let warm_end = Arc::new(AtomicU64::new(0));
        let collector_warm = Arc::clone(&warm_end);
        let collector = std::thread::Builder::new()
            .name("crmpulse-collector".into())
            .spawn(move || {
                collect(
                    workers,
                    &capture_rx,
                    &collector_marks,
                    &collector_warm,
                    on_batch,
                )
            })
            .map_err(|e| PipelineError::Start(e.to_string()))?;

        Ok(Self {
            senders,
            workers: Some(guards),
            collector: Some(collector),
            clock: config.clock,
            time: 0,
            pushed: 0,
            marks,
            finalizer: config.lateness_horizon_ms.map(Finalizer::new),
            refused: Vec::new(),
            caps: Vec::new(),
            warm_end,
            arranged,
        })
    }

    /// Starts a pipeline that goes on from a checkpoint's `state`: it counts the events
    /// from `state.pushed` on and keeps the checkpoint's finalizer, and its customer
    /// fold is seeded with the customers' first conversations. The caller then replays
    /// the events at [`Finalizer::warm_positions`] with [`Pipeline::warm`] (their
    /// output is dropped: the checkpoint's facts hold it) and pushes the events after
    /// `state.pushed` as usual.
    ///
    /// # Errors
    /// [`PipelineError::Start`] when timely cannot start; [`PipelineError::Stopped`]
    /// when the workers are gone.
    pub fn resume(
        config: &PipelineConfig,
        state: PipelineState,
        on_batch: impl FnMut(MetricBatch) + Send + 'static,
    ) -> Result<Self, PipelineError> {
        let mut pipeline = Self::start(config, on_batch)?;
        pipeline.pushed = state.pushed;
        pipeline.time = state.time;
        let firsts: Vec<_> = state.finalizer.firsts().collect();
        pipeline.finalizer = Some(state.finalizer);
        let n = pipeline.senders.len();
        let mut parts: Vec<Vec<_>> = vec![Vec::new(); n];
        for (i, first) in firsts.into_iter().enumerate() {
            parts[i % n].push(first);
        }
        pipeline.send_warm(
            parts
                .into_iter()
                .map(|firsts| (Routed::default(), firsts))
                .collect(),
        )?;
        Ok(pipeline)
    }

    /// What a checkpoint keeps of the pipeline, when it has a finalizer (without a
    /// lateness horizon nothing is ever final, and a restart replays the whole source).
    pub fn state(&self) -> Option<PipelineStateRef<'_>> {
        self.finalizer.as_ref().map(|finalizer| PipelineStateRef {
            pushed: self.pushed,
            time: self.time,
            finalizer,
        })
    }

    /// Replays events of a resumed pipeline's state ([`Pipeline::resume`]): each
    /// event's records go to the folds whose entity is live in the finalizer (and to
    /// the folds that never finalize); the rest were final at the checkpoint. Nothing
    /// is admitted, counted or released: the folds only get back the state they had.
    ///
    /// # Errors
    /// [`PipelineError::Stopped`] when the workers are gone.
    pub fn warm(&mut self, events: Vec<Event>) -> Result<(), PipelineError> {
        let n = self.senders.len();
        let mut parts: Vec<Routed> = (0..n).map(|_| Routed::default()).collect();
        for (i, e) in events.into_iter().enumerate() {
            parts[i % n].push(e);
        }
        if let Some(finalizer) = &self.finalizer {
            for part in &mut parts {
                finalizer.retain_live(part);
            }
        }
        self.send_warm(parts.into_iter().map(|r| (r, Vec::new())).collect())
    }

    fn send_warm(&mut self, parts: Vec<(Routed, Firsts)>) -> Result<(), PipelineError> {
        let time = self.next_time(self.clock_ms());
        self.warm_end.store(time + 1, Ordering::Release);
        self.time = time;
        self.marks
            .lock()
            .expect("marks lock")
            .push_back((time, self.pushed));
        for (tx, (routed, firsts)) in self.senders.iter().zip(parts) {
            tx.send(Command::Warm {
                time,
                routed,
                firsts,
            })
            .map_err(|_| PipelineError::Stopped)?;
        }
        Ok(())
    }

    /// Caps the finalizer's watermarks for the events of the next push: `caps[i]`
    /// (event time, ms; `None`: no cap) for its `i`-th event ([`Finalizer::set_cap`]),
    /// the last one for the sweep after it; an event past the end of `caps` has none.
    /// A source that interleaves ordered streams gives, for each event, the least time
    /// a stream still behind had reached once that event was read.
    pub fn set_watermark_caps(&mut self, caps: Vec<Option<i64>>) {
        self.caps = caps;
    }

    /// The latest pipeline time handed to the workers.
    pub fn time(&self) -> Time {
        self.time
    }

    /// Events pushed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    fn next_time(&self, at_least: Time) -> Time {
        at_least.max(self.time + 1)
    }

    /// Milliseconds since the epoch on the pipeline's clock, as a pipeline time.
    fn clock_ms(&self) -> Time {
        Time::try_from(self.clock.now_ms()).unwrap_or(0)
    }

    /// Pushes a batch at the next time on the clock. Blocks while the workers are
    /// behind. Returns the batch's time.
    ///
    /// # Errors
    /// [`PipelineError::Stopped`] when the workers are gone.
    pub fn push(&mut self, events: Vec<Event>) -> Result<Time, PipelineError> {
        let time = self.next_time(self.clock_ms());
        self.push_at(time, events)
    }

    /// Pushes a batch at an explicit time (raised to keep times increasing).
    ///
    /// # Errors
    /// [`PipelineError::Stopped`] when the workers are gone.
    pub fn push_at(&mut self, time: Time, events: Vec<Event>) -> Result<Time, PipelineError> {
        let time = self.next_time(time);
        let n = self.senders.len();
        let count = events.len() as u64;
        let mut parts: Vec<Vec<Event>> = (0..n)
            .map(|_| Vec::with_capacity(events.len() / n + 1))
            .collect();
        let mut finalize: Vec<Vec<Finalized>> = vec![Vec::new(); n];
        let mut admitted = 0;
        let caps = std::mem::take(&mut self.caps);
        for (i, e) in events.into_iter().enumerate() {
            let position = self.pushed + i as u64;
            let cap = caps.get(i).copied().flatten();
            match self.finalizer.as_mut().map_or(Ok(()), |f| {
                f.set_cap(cap);
                f.admit(&e, position)
            }) {
                Ok(()) => {
                    parts[admitted % n].push(e);
                    admitted += 1;
                }
                Err(reason) => self.refused.push(Refused {
                    position,
                    event: e,
                    reason,
                }),
            }
        }
        if let Some(finalizer) = self.finalizer.as_mut() {
            let refused = count - admitted as u64;
            if refused > 0 {
                metrics::counter!("crmpulse_pipeline_too_late_events_total").increment(refused);
            }
            let finals = finalizer.sweep();
            metrics::counter!("crmpulse_pipeline_finalized_entities_total")
                .increment(finals.len() as u64);
            metrics::gauge!("crmpulse_pipeline_live_entities").set(finalizer.live() as f64);
            for (i, f) in finals.into_iter().enumerate() {
                finalize[i % n].push(f);
            }
        }
        self.pushed += count;
        self.time = time;
        self.marks
            .lock()
            .expect("marks lock")
            .push_back((time, self.pushed));
        for ((tx, events), finalize) in self.senders.iter().zip(parts).zip(finalize) {
            tx.send(Command::Batch {
                time,
                events,
                finalize,
            })
            .map_err(|_| PipelineError::Stopped)?;
        }
        Ok(time)
    }

    /// The events refused since the last call, because an entity they touch is final
    /// ([`crate::finalize`]); they are counted in `pushed` but reach no fold.
    pub fn take_refused(&mut self) -> Vec<Refused> {
        std::mem::take(&mut self.refused)
    }

    /// Updates held by each arrangement of the dataflow, as last logged by the workers
    /// (empty unless [`PipelineConfig::arrangement_sizes`]).
    pub fn arranged(&self) -> ArrangedUpdates {
        self.arranged.clone()
    }

    /// `(live, finalized)` entities, when a lateness horizon is set.
    pub fn entities(&self) -> Option<(usize, usize)> {
        self.finalizer.as_ref().map(|f| (f.live(), f.finalized()))
    }

    /// Advances pipeline time to the clock without events.
    ///
    /// # Errors
    /// [`PipelineError::Stopped`] when the workers are gone.
    pub fn tick(&mut self) -> Result<Time, PipelineError> {
        let now = self.clock_ms();
        if now > self.time {
            self.advance_to(now)?;
        }
        Ok(self.time)
    }

    /// Advances pipeline time to `time` (no-op when not later).
    ///
    /// # Errors
    /// [`PipelineError::Stopped`] when the workers are gone.
    pub fn advance_to(&mut self, time: Time) -> Result<(), PipelineError> {
        if time <= self.time {
            return Ok(());
        }
        self.time = time;
        self.marks
            .lock()
            .expect("marks lock")
            .push_back((time, self.pushed));
        for tx in &self.senders {
            tx.send(Command::Advance(time))
                .map_err(|_| PipelineError::Stopped)?;
        }
        Ok(())
    }

    /// Closes the inputs and waits until every update has been delivered.
    pub fn finish(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.senders.clear();
        if let Some(guards) = self.workers.take() {
            drop(guards.join());
        }
        if let Some(collector) = self.collector.take() {
            let _ = collector.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run_worker(
    worker: &mut timely::worker::Worker,
    mut inputs: dataflow::Inputs,
    probe: &timely::dataflow::ProbeHandle<Time>,
    rx: &Receiver<Command>,
    max_in_flight: usize,
) {
    let mut in_flight: VecDeque<Time> = VecDeque::new();
    loop {
        while in_flight.front().is_some_and(|t| !probe.less_equal(t)) {
            in_flight.pop_front();
        }
        if in_flight.len() >= max_in_flight {
            worker.step();
            continue;
        }
        match rx.try_recv() {
            Ok(Command::Batch {
                time,
                events,
                finalize,
            }) => {
                inputs.advance_to(time);
                let mut routed = Routed::default();
                for e in events {
                    routed.push(e);
                }
                inputs.insert(routed);
                inputs.finalize(finalize);
                inputs.advance_to(time + 1);
                in_flight.push_back(time);
                worker.step();
            }
            Ok(Command::Warm {
                time,
                routed,
                firsts,
            }) => {
                inputs.advance_to(time);
                inputs.insert(routed);
                inputs.seed_firsts(firsts);
                inputs.advance_to(time + 1);
                in_flight.push_back(time);
                worker.step();
            }
            Ok(Command::Advance(time)) => {
                inputs.advance_to(time);
                worker.step();
            }
            Err(TryRecvError::Empty) => {
                worker.step_or_park(Some(Duration::from_millis(2)));
            }
            Err(TryRecvError::Disconnected) => break,
        }
    }
    // Dropping the inputs closes them; timely drains the dataflow after we return.
}

fn collect(
    workers: usize,
    rx: &mpsc::Receiver<FactEvent>,
    marks: &Mutex<VecDeque<(Time, u64)>>,
    warm_end: &AtomicU64,
    mut on_batch: impl FnMut(MetricBatch),
) {
    // Every worker's capture starts holding the minimum time; its reports are changes.
    let mut frontier = MutableAntichain::new();
    frontier.update_iter([(Time::default(), workers as i64)]);
    let mut pending: BTreeMap<Time, HashMap<Fact, i64>> = BTreeMap::new();
    let mut released: Time = 0;
    let mut consumed: u64 = 0;
    let apply = |event: FactEvent,
                 frontier: &mut MutableAntichain<Time>,
                 pending: &mut BTreeMap<Time, HashMap<Fact, i64>>| match event {
        CaptureEvent::Progress(changes) => {
            frontier.update_iter(changes);
        }
        CaptureEvent::Messages(_, updates) => {
            // Set before the replay's commands are sent, so before its output exists.
            let warm_end = warm_end.load(Ordering::Acquire);
            for (fact, time, diff) in updates {
                if time < warm_end {
                    continue;
                }
                *pending.entry(time).or_default().entry(fact).or_default() += diff as i64;
            }
        }
    };
    let mut closed = false;
    while !closed {
        match rx.recv() {
            Ok(event) => apply(event, &mut frontier, &mut pending),
            Err(_) => closed = true,
        }
        // Drain what is already queued before deciding what is complete.
        loop {
            match rx.try_recv() {
                Ok(event) => apply(event, &mut frontier, &mut pending),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let progress = match frontier.frontier().first() {
            Some(t) => *t,
            // All inputs closed and drained: everything seen is complete.
            None => {
                let last_mark = marks.lock().expect("marks lock").back().map(|m| m.0 + 1);
                let last_pending = pending.keys().next_back().map(|t| t + 1);
                released
                    .max(last_mark.unwrap_or(0))
                    .max(last_pending.unwrap_or(0))
            }
        };
        if progress <= released {
            continue;
        }
        released = progress;
        let later = pending.split_off(&progress);
        let complete = std::mem::replace(&mut pending, later);
        let mut merged: HashMap<Fact, i64> = HashMap::new();
        for (_, updates) in complete {
            for (fact, diff) in updates {
                *merged.entry(fact).or_default() += diff;
            }
        }
        {
            let mut marks = marks.lock().expect("marks lock");
            while marks.front().is_some_and(|(t, _)| *t < progress) {
                consumed = marks.pop_front().map_or(consumed, |(_, c)| c);
            }
        }
        metrics::gauge!("crmpulse_pipeline_progress_ms").set(progress as f64);
        metrics::counter!("crmpulse_pipeline_batches_total").increment(1);
        on_batch(MetricBatch {
            progress,
            updates: merged.into_iter().filter(|(_, d)| *d != 0).collect(),
            events_consumed: consumed,
        });
    }
}
