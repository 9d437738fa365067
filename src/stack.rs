//! The one composition of crmpulse: a source, the pipeline and the sinks, built from
//! configuration. `demo`, `run` (embedded or Kafka) and `serve` are configurations of
//! it (docs/architecture.md, "One stack"):
//!
//! | [`Source`] | pipeline | sinks |
//! |---|---|---|
//! | [`Source::EventLog`] (`demo`, `run`) | yes | view store; ClickHouse with `[clickhouse] url` (rollups and raw events) |
//! | [`Source::EventsTopic`] (`run` with `[kafka]`) | yes | view store; `crm.metrics.v1` deltas; ClickHouse with `[clickhouse] url` (rollups only) |
//! | [`Source::MetricsTopic`] (`serve`) | no | view store, fed from `crm.metrics.v1` |
//!
//! The API (REST, `/metrics`, and the WebSocket fan-out over the view store) is served
//! by [`Stack::serve_on`] in every mode. Invariants kept here, once for every mode:
//! the ClickHouse sink sees every released batch before the view store does, and its
//! full buffer pauses the source (backpressure); every event handed to the pipeline
//! is counted in `crmpulse_pipeline_events_total`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono_tz::Tz;
use ingest::kafka::{EventSource, KafkaConfig, gateway};
use ingest::simulator::{Simulator, SimulatorConfig};
use ingest::{DeadLetter, EventLog};
use pipeline::Pipeline;
use pipeline::sink::clickhouse::{ClickHouseSink, EventReader};
use pipeline::sink::kafka::{CatchUp, MetricsReader, MetricsSink};
use query_api::reports::book::Journal;
use query_api::{AccountsConfig, AppState, ViewStore};
use schemas::metric_records::Assembler;
use schemas::metrics::MetricBatch;
use schemas::{Clock, Event};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::auth::Credentials;
use crate::checkpoint::{self, Checkpointer, HeldEvent, SourceMark};
use crate::config::Config;

/// Events read from the log per pipeline batch. Only a backlog (a rebuild, a replay)
/// fills it: live traffic arrives in smaller batches. Each batch is one timestamp of
/// the dataflow, so bigger batches amortise the per-timestamp work (5M events:
/// 459k events/s at 20,000, 549–600k at 50,000; docs/benchmarks.md).
pub const READ_BATCH: usize = 50_000;
/// Events taken from Kafka per pipeline batch. Kept at 20,000, as the Kafka path's
/// crash tests have run it (docs/benchmarks.md).
const KAFKA_READ_BATCH: usize = 20_000;
/// How long one Kafka poll waits for a first message.
const KAFKA_POLL: Duration = Duration::from_millis(50);
/// Pipeline clock tick while idle.
const TICK: Duration = Duration::from_millis(250);
/// How long a checkpoint waits for the view store to release every event pushed:
/// while running (a busy pipeline tries again at the next interval), and at shutdown.
const CHECKPOINT_DRAIN: Duration = Duration::from_secs(1);
/// Events a start's replay read beyond its checkpoint (or from an empty one) after
/// which it writes one at once.
const REPLAYED_EVENTS: u64 = 100_000;
/// Threads reading a restart's warm-up events from the log, and the positions each
/// reads at a time.
const WARM_READERS: usize = 2;
const WARM_CHUNK: usize = 20_000;
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);
/// How long a stopping ClickHouse sink may still try to write what it holds (the rest
/// is rewritten from the source on the next start).
const CLICKHOUSE_DRAIN: Duration = Duration::from_secs(5);

/// Where the stack's data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The durable embedded event log in this directory (`demo`, `run`).
    EventLog(PathBuf),
    /// `crm.events.v1` of the `[kafka]` section (`run` with `[kafka]`); the pipeline's
    /// deltas go to `crm.metrics.v1`. With `checkpoints`, checkpoints are written to
    /// and resumed from that directory (the data dir).
    EventsTopic {
        /// Where checkpoints go; `None`: none, every start reads the topic from the start.
        checkpoints: Option<PathBuf>,
    },
    /// Only `crm.metrics.v1` of the `[kafka]` section, with no pipeline (`serve`).
    MetricsTopic,
}

impl Source {
    /// What `crmpulse run` reads: the events topic when `[kafka]` is configured, else
    /// the event log in `data_dir`.
    pub fn for_run(config: &Config, data_dir: &Path) -> Self {
        if config.kafka.is_some() {
            Source::EventsTopic {
                checkpoints: Some(data_dir.to_owned()),
            }
        } else {
            Source::EventLog(data_dir.to_owned())
        }
    }
}

/// What the demo simulator persists so that a restart continues the same world.
#[derive(Debug, Serialize, Deserialize)]
struct DemoState {
    seed: u64,
    account_id: u64,
    start_ms: i64,
    /// Whether the world has a night crew; absent (false) in data dirs of demos made
    /// before it existed, which go on as they began.
    #[serde(default)]
    night_crew: bool,
}

/// Where `POST /api/v1/events` writes.
enum Ingest {
    /// Into the embedded log.
    Log,
    /// To the events topic, through the gateway.
    Topic(KafkaConfig),
    /// Nowhere: `serve` takes no events.
    None,
}

/// The running stack, without the HTTP server ([`Stack::serve_on`] adds it).
pub struct Stack {
    /// The view store every API read and live subscription is answered from.
    pub store: Arc<ViewStore>,
    /// The durable log, in embedded mode.
    pub log: Option<Arc<EventLog>>,
    /// The ClickHouse sink, when `[clickhouse] url` is set and a pipeline runs.
    pub clickhouse: Option<Arc<ClickHouseSink>>,
    /// The process's one clock: pipeline time, the API's "now", the simulator's.
    pub clock: Clock,
    /// The position (events) of the checkpoint this start went on from, `None` when
    /// it read its source from the start.
    pub resumed_from: Option<u64>,
    /// The number `/healthz` compares `events_consumed` with: the log's length
    /// (embedded) or the events handed to the pipeline (Kafka).
    source_len: Option<watch::Receiver<u64>>,
    /// Set once the source has been read up to what it held at start (`/readyz`).
    started: Arc<AtomicBool>,
    /// Set once the demo simulator has written its backfill (`/readyz`); `Some` only
    /// in `demo`, whose account also gets cost inputs ([`demo_costs`]).
    backfilled: Option<Arc<AtomicBool>>,
    ingest: Ingest,
    /// Where report schedules, claims and runs are kept: `reports.redb` in the data
    /// dir (embedded) or `crm.reports.v1` (Kafka).
    reports: Arc<dyn Journal>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("embedded", &self.log.is_some())
            .field("clickhouse", &self.clickhouse.is_some())
            .finish_non_exhaustive()
    }
}

/// The `[kafka]` section, or an error saying it is needed.
fn kafka_section(config: &Config) -> anyhow::Result<&KafkaConfig> {
    crate::kafka::section(config)
}

impl Stack {
    /// Builds and starts the stack reading `source`, with input times from `clock`.
    /// With [`Source::MetricsTopic`], returns once the view store holds everything the
    /// metrics topic held (the bootstrap).
    ///
    /// # Errors
    /// When the log cannot be opened, `[kafka]` is missing for a Kafka source, a topic
    /// is missing, or the pipeline cannot start.
    pub fn build(config: &Config, source: Source, clock: Clock) -> anyhow::Result<Self> {
        // The recorder first: counters incremented before it exists are lost.
        let _ = query_api::install_metrics();
        // Failure counters exist from the start at 0, so an alert's `increase()` sees
        // the first failure (a series that appears at 1 has no increase).
        for name in [
            "crmpulse_log_failed_commits_total",
            "crmpulse_api_live_stalled_total",
            "crmpulse_reports_scheduler_errors_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        if config.clickhouse.enabled() {
            metrics::counter!("crmpulse_clickhouse_failures_total").increment(0);
        }
        let store = Arc::new(ViewStore::default());
        let stop = Arc::new(AtomicBool::new(false));
        let reports: Arc<dyn Journal> = match &source {
            Source::EventLog(dir) => Arc::new(
                query_api::reports::book::RedbJournal::open(dir)
                    .map_err(anyhow::Error::msg)
                    .context("opening the reports journal")?,
            ),
            Source::EventsTopic { .. } | Source::MetricsTopic => Arc::new(ReportsJournal(
                ingest::kafka::journal::ReportsTopic::open(kafka_section(config)?).context(
                    "opening the reports topic (create it with `crmpulse kafka-topics`)",
                )?,
            )),
        };
        let mut stack = Self {
            store,
            log: None,
            clickhouse: None,
            clock,
            resumed_from: None,
            source_len: None,
            started: Arc::new(AtomicBool::new(false)),
            backfilled: None,
            ingest: Ingest::None,
            reports,
            stop,
            threads: Vec::new(),
        };
        match source {
            Source::EventLog(dir) => {
                let log = Arc::new(
                    EventLog::open_with(&dir, config.pipeline.log_options(stack.clock))
                        .context("opening the event log")?,
                );
                let reader_log = Arc::clone(&log);
                let reader: EventReader = Box::new(move |from, max| {
                    reader_log.read(from, max).map_err(|e| e.to_string())
                });
                stack.clickhouse = clickhouse_sink(config, Some(reader))?;
                stack.source_len = Some(log.subscribe());
                stack.ingest = Ingest::Log;
                stack.log = Some(Arc::clone(&log));
                let log_id = log.id()?;
                let this_log = SourceMark::Log { id: log_id };
                let log_len = log.len();
                let checkpoints =
                    checkpoint_settings(config, stack.clock).map(|h| (dir.as_path(), h));
                let loaded = checkpoints.and_then(|(dir, horizon)| {
                    checkpoint::load(dir, Some(horizon), |source, events| {
                        anyhow::ensure!(
                            *source == this_log,
                            "not this log ({}): a restored or recreated events.redb",
                            this_log.describe()
                        );
                        anyhow::ensure!(
                            events <= log_len,
                            "it covers {events} events and the log holds {log_len}: not this log"
                        );
                        Ok(())
                    })
                });
                let next = loaded.as_ref().map_or(0, |l| l.state.pushed);
                let input = Input::Log {
                    log,
                    next,
                    at_end: false,
                    id: log_id,
                };
                let sinks = stack.sinks(None);
                stack.start_from(config, input, sinks, None, loaded, checkpoints)?;
            }
            Source::EventsTopic { checkpoints } => {
                let kafka = kafka_section(config)?.clone();
                // Raw events are copied from the embedded log only; from Kafka the
                // sink writes the rollups (docs/clickhouse.md, "Kafka mode").
                stack.clickhouse = clickhouse_sink(config, None)?;
                let (sink, catch_up) = MetricsSink::open(crate::kafka::sink_config(&kafka))
                    .context("reading back the metrics topic")?;
                if let Some(dir) = &checkpoints {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("creating the data dir {} for checkpoints", dir.display())
                    })?;
                }
                // A checkpoint whose position is in this topic: the source goes on
                // from it, checked against the messages it says were read last.
                let checkpoints = checkpoints
                    .as_deref()
                    .zip(checkpoint_settings(config, stack.clock));
                let mut resumed = None;
                let loaded = checkpoints.and_then(|(dir, horizon)| {
                    checkpoint::load(dir, Some(horizon), |source, _| {
                        let SourceMark::Topic(position) = source else {
                            anyhow::bail!("a checkpoint of the embedded log, not of a topic");
                        };
                        resumed = Some(EventSource::resume(&kafka, position)?);
                        Ok(())
                    })
                });
                let events = match (resumed, &loaded) {
                    (Some(source), Some(_)) => source,
                    // Checked, then not loaded (its state did not decode): from the start.
                    _ => EventSource::open(&kafka).context("opening the events topic")?,
                }
                .with_lateness_horizon(
                    config.pipeline.log_options(stack.clock).lateness_horizon_ms,
                );
                let (pushed_tx, pushed_rx) = watch::channel(0u64);
                stack.source_len = Some(pushed_rx);
                stack.ingest = Ingest::Topic(kafka);
                let held = checkpoints.is_some().then(Vec::new);
                let input = Input::Topic {
                    events: Box::new(events),
                    pushed_tx,
                    held,
                };
                let sinks = stack.sinks(Some(sink));
                stack.start_from(config, input, sinks, Some(catch_up), loaded, checkpoints)?;
            }
            Source::MetricsTopic => {
                let kafka = kafka_section(config)?;
                // Returns once the topic's start contents are in the view store.
                let follower = follow_metrics(kafka, Arc::clone(&stack.store), &stack.stop)?;
                stack.started.store(true, Ordering::Release);
                stack.threads.push(follower);
            }
        }
        Ok(stack)
    }

    /// The sinks every released batch goes to: ClickHouse (when configured), the
    /// metrics topic (Kafka mode), the view store.
    fn sinks(&self, metrics: Option<MetricsSink>) -> Arc<Sinks> {
        Arc::new(Sinks {
            clickhouse: self.clickhouse.clone(),
            metrics: metrics.map(std::sync::Mutex::new),
            store: Arc::clone(&self.store),
        })
    }

    /// Starts the pipeline on `input`, from `loaded` when a checkpoint applies: its
    /// facts go to the sinks (the ClickHouse sink rewrites every row once; the metrics
    /// sink counts them into what it compares with the topic) while the driver replays
    /// the live entities, and the driver reads the source on from the checkpoint once
    /// they are in. With `checkpoints` (the dir and the horizon of
    /// [`checkpoint_settings`]), the driver writes checkpoints there.
    fn start_from(
        &mut self,
        config: &Config,
        mut input: Input,
        sinks: Arc<Sinks>,
        catch_up: Option<CatchUp>,
        loaded: Option<checkpoint::Loaded>,
        checkpoints: Option<(&Path, i64)>,
    ) -> anyhow::Result<()> {
        self.resumed_from = loaded.as_ref().map(|l| l.state.pushed);
        let checkpoints = checkpoints.map(|(dir, _)| Checkpoints {
            writer: Checkpointer::new(
                dir,
                Duration::from_secs(config.pipeline.checkpoint_interval_secs),
                config.pipeline.checkpoint_catch_up_events,
                self.resumed_from.unwrap_or(0),
            ),
            store: Arc::clone(&self.store),
        });
        let (loaded_tx, loaded_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let (resume, facts) = match loaded {
            Some(l) => {
                if let Input::Topic { held, .. } = &mut input {
                    *held = Some(l.held);
                }
                (Some((l.state, loaded_rx)), Some(l.facts))
            }
            None => (None, None),
        };
        self.start_pipeline(
            config,
            input,
            Arc::clone(&sinks),
            catch_up,
            resume,
            checkpoints,
        )?;
        if let Some(facts) = facts {
            facts.release(|batch| sinks.release(batch))?;
            let _ = loaded_tx.send(());
        }
        Ok(())
    }

    /// Starts the pipeline fed by `input`, releasing every batch to `sinks`. With
    /// `resume` (a checkpoint whose facts are going to the sinks), the pipeline goes
    /// on from it: the driver first replays the events the checkpoint's live entities
    /// need. With `checkpoints`, the driver writes them.
    fn start_pipeline(
        &mut self,
        config: &Config,
        input: Input,
        sinks: Arc<Sinks>,
        catch_up: Option<CatchUp>,
        resume: Option<(pipeline::PipelineState, std::sync::mpsc::Receiver<()>)>,
        checkpoints: Option<Checkpoints>,
    ) -> anyhow::Result<()> {
        let runtime = config.pipeline.runtime(self.clock);
        let (resume, warm, loaded) = match resume {
            Some((state, loaded)) => {
                let warm = state.finalizer.warm_positions();
                (Some(state), warm, Some(loaded))
            }
            None => (None, Vec::new(), None),
        };
        let on_batch = move |batch: MetricBatch| sinks.release(batch);
        let mut pipeline = match resume {
            Some(state) => Pipeline::resume(&runtime, state, on_batch)?,
            None => Pipeline::start(&runtime, on_batch)?,
        };
        let stop = Arc::clone(&self.stop);
        let started = Arc::clone(&self.started);
        let clickhouse = self.clickhouse.clone();
        let name = match input {
            Input::Log { .. } => "crmpulse-log-reader",
            Input::Topic { .. } => "crmpulse-kafka-source",
        };
        let driver = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut input = input;
                let mut checkpoints = checkpoints;
                let result = input.warm(&mut pipeline, &warm, loaded).and_then(|()| {
                    drive(
                        &mut input,
                        &mut pipeline,
                        &stop,
                        &started,
                        clickhouse.as_deref(),
                        catch_up.as_ref(),
                        checkpoints.as_mut(),
                    )
                });
                if let Err(e) = result {
                    tracing::error!(error = %e, "pipeline driver stopped");
                } else if let Some(c) = checkpoints.as_mut()
                    && pipeline.pushed() > c.writer.covered()
                {
                    // At shutdown: the next start goes on from here.
                    c.write(&pipeline, &mut input, SHUTDOWN_DRAIN);
                }
                pipeline.finish();
            })?;
        self.threads.push(driver);
        Ok(())
    }

    /// Starts the demo simulator: backfills `days` of history on an empty log, then
    /// produces live traffic. On a log it already wrote, it continues the same seeded
    /// world: it regenerates the world up to the simulated time it had stored
    /// ([`DEMO_SIMULATED_TO`]) without appending it again, then appends from there.
    /// (Appending it all again cost a restart of the 35-day demo 1.26M `too_late`
    /// dead letters and 550 MB: everything older than the lateness horizon.)
    ///
    /// # Errors
    /// Without an embedded log (the demo writes into it), or when its state is unreadable.
    pub fn start_simulator(&mut self, days: u32, seed: u64, timezone: Tz) -> anyhow::Result<()> {
        let log = Arc::clone(
            self.log
                .as_ref()
                .context("the simulator writes into the embedded event log")?,
        );
        let state = match log.meta("demo")? {
            Some(bytes) => {
                serde_json::from_slice::<DemoState>(&bytes).context("reading demo state")?
            }
            None => {
                let state = DemoState {
                    seed,
                    account_id: 1,
                    start_ms: self.clock.now_ms() - i64::from(days) * 86_400_000,
                    night_crew: true,
                };
                log.set_meta("demo", &serde_json::to_vec(&state)?)?;
                state
            }
        };
        let resume = meta_word(&log, DEMO_SIMULATED_TO)?.map(i64::from_le_bytes);
        let backfilled = Arc::new(AtomicBool::new(false));
        self.backfilled = Some(Arc::clone(&backfilled));
        let stop = Arc::clone(&self.stop);
        let clock = self.clock;
        let handle = std::thread::Builder::new()
            .name("crmpulse-simulator".into())
            .spawn(move || {
                let mut sim = Simulator::new(
                    SimulatorConfig {
                        seed: state.seed,
                        account_id: state.account_id,
                        timezone,
                        night_crew: state.night_crew,
                        ..SimulatorConfig::default()
                    },
                    state.start_ms,
                );
                // What the log holds already: the same world, regenerated, not stored.
                if let Some(to) = resume {
                    while sim.now_ms() < to && !stop.load(Ordering::Relaxed) {
                        drop(sim.advance_to((sim.now_ms() + 3_600_000).min(to)));
                    }
                }
                let mut stored_to = resume.unwrap_or(i64::MIN);
                while !stop.load(Ordering::Relaxed) {
                    let now = clock.now_ms();
                    // Catch up an hour of simulated time per append, then follow the clock.
                    let until = (sim.now_ms() + 3_600_000).min(now);
                    let events = sim.advance_to(until);
                    if !events.is_empty()
                        && let Err(e) = log.append(&events)
                    {
                        tracing::error!(error = %e, "simulator append failed");
                    }
                    // Remember how far the log holds the world: every simulated day
                    // while backfilling, every minute live. A crash repeats at most
                    // that much, which the log recognises (duplicates by id).
                    if until.saturating_sub(stored_to) >= 86_400_000
                        || (until >= now && until.saturating_sub(stored_to) >= 60_000)
                    {
                        match log.set_meta(DEMO_SIMULATED_TO, &until.to_le_bytes()) {
                            Ok(()) => stored_to = until,
                            Err(e) => tracing::error!(error = %e, "storing the demo's progress"),
                        }
                    }
                    if until >= now {
                        // History up to the clock is in the log.
                        backfilled.store(true, Ordering::Release);
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            })?;
        self.threads.push(handle);
        Ok(())
    }

    /// The number `/healthz` compares the view store's `events_consumed` with: the
    /// log's length (embedded) or the events handed to the pipeline (Kafka); 0 for
    /// `serve`.
    pub fn source_len(&self) -> u64 {
        self.source_len.as_ref().map_or(0, |r| *r.borrow())
    }

    /// Whether the source has been read up to what it held at start (and, after a
    /// restart from a checkpoint, the live entities replayed): what `/readyz` waits
    /// for, without the demo's backfill.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Stops the source, simulator and follower threads (the pipeline drains), then
    /// gives the ClickHouse sink [`CLICKHOUSE_DRAIN`] to write what it holds.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(ch) = &self.clickhouse {
            ch.shutdown(CLICKHOUSE_DRAIN);
            // What is not written yet is still in the source: the next start writes it.
            let s = ch.stats();
            tracing::info!(
                written_through = s.written_through(),
                buffered_rows = s.buffered_rows,
                "ClickHouse sink stopped"
            );
        }
    }

    /// Binds `listen` and serves the API over the stack until SIGINT or SIGTERM. With a
    /// configuration file, account settings are reloaded when it changes.
    ///
    /// # Errors
    /// When `listen` cannot be bound or the server fails.
    pub async fn serve(
        &self,
        config: &Config,
        credentials: &Credentials,
        listen: SocketAddr,
        config_path: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let overlay: fn(AccountsConfig) -> AccountsConfig = if self.backfilled.is_some() {
            demo_costs
        } else {
            std::convert::identity
        };
        let settings = query_api::Settings::new(overlay(config.accounts.clone()));
        if let Some(path) = config_path {
            tokio::spawn(watch_config(path, settings.clone(), overlay));
        }
        self.serve_on(
            config,
            credentials,
            settings,
            listener,
            crate::shutdown_signal(),
        )
        .await
    }

    /// Serves the API (REST, `/metrics`, `/api/live`, and `POST /api/v1/events` where
    /// the source takes events) on `listener` until `shutdown` resolves, over TLS when
    /// `[tls]` names a certificate.
    ///
    /// # Errors
    /// An invalid `[auth]`, `[tls]` or `[kafka]` section, or a failing server.
    pub async fn serve_on(
        &self,
        config: &Config,
        credentials: &Credentials,
        settings: query_api::Settings,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut state = AppState::new(Arc::clone(&self.store));
        state.clock = self.clock;
        state.settings = settings;
        state.live = config.live.to_live_config();
        state.bodies = config.api.body_cache();
        state.log_len = self.source_len.clone();
        state.started = std::iter::once(Arc::clone(&self.started))
            .chain(self.backfilled.clone())
            .collect();
        state.clickhouse = self.clickhouse.clone().map(|ch| {
            Arc::new(move || {
                let s = ch.stats();
                query_api::ClickHouseHealth {
                    connected: ch.connected(),
                    written_through: s.written_through(),
                    rollups_written_through: s.rollups_written_through,
                    raw_events_written_through: s.raw_events_written_through,
                    buffered_rows: s.buffered_rows,
                }
            }) as Arc<dyn Fn() -> query_api::ClickHouseHealth + Send + Sync>
        });
        state.prometheus = Some(query_api::install_metrics());
        secure(&mut state, credentials, config)?;
        let reports = Arc::new(
            query_api::Reports::new(Arc::clone(&self.reports), config.reports.clone())
                .map_err(anyhow::Error::msg)
                .context("starting the report scheduler")?,
        );
        state.reports = Some(Arc::clone(&reports));
        tokio::spawn(reports.schedule(state.clone()));
        tokio::spawn(process_gauges());
        let api = query_api::router(state);
        let ingest_auth = Arc::clone(&credentials.ingest);
        let sources = Arc::new(config.sources.clone());
        // Native events and provider webhooks write through the same store: the
        // embedded log, or the Kafka events topic.
        let app = match (&self.ingest, &self.log) {
            (Ingest::Log, Some(log)) => api
                .merge(ingest::http::router(
                    Arc::clone(log),
                    Arc::clone(&ingest_auth),
                ))
                .merge(ingest::sources::router(
                    Arc::clone(log),
                    sources,
                    ingest_auth,
                )),
            (Ingest::Topic(kafka), _) => {
                let gateway = gateway::Gateway::new(kafka)?;
                api.merge(gateway::router(gateway.clone(), Arc::clone(&ingest_auth)))
                    .merge(ingest::sources::router(gateway, sources, ingest_auth))
            }
            _ => api,
        };
        let tls = config.tls.server_config()?;
        crate::tls::serve(listener, app, tls, shutdown).await
    }
}

/// Every 5 s: `crmpulse_process_resident_memory_bytes` (from `/proc/self/status`) and,
/// when the process runs under a cgroup memory limit, `crmpulse_memory_limit_bytes`
/// (cgroup v2 `memory.max`), so an alert can compare the two.
async fn process_gauges() {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Some(rss) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        {
            metrics::gauge!("crmpulse_process_resident_memory_bytes").set(rss * 1024.0);
        }
        if let Some(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            metrics::gauge!("crmpulse_memory_limit_bytes").set(limit);
        }
    }
}

/// The demo account's cost inputs, so that business impact's cost per conversation is
/// not $0.00 in the demo: when the configuration gives account 1 neither an agent hour
/// cost nor a channel fee, $18.00 per active agent hour and 5 cents per WhatsApp
/// conversation (in the configured currency). Configured costs are kept as they are.
pub fn demo_costs(mut accounts: AccountsConfig) -> AccountsConfig {
    let mut one = accounts
        .accounts
        .get("1")
        .unwrap_or(&accounts.defaults)
        .clone();
    if one.agent_hourly_cost_minor == 0 && one.conversation_fee_minor.is_empty() {
        one.agent_hourly_cost_minor = 1_800;
        one.conversation_fee_minor.insert("whatsapp".to_owned(), 5);
        accounts.accounts.insert("1".to_owned(), one);
    }
    accounts
}

/// `crm.reports.v1` as the reports' journal.
struct ReportsJournal(ingest::kafka::journal::ReportsTopic);

impl Journal for ReportsJournal {
    fn append(&self, record: &[u8]) -> Result<u64, String> {
        self.0.append(record)
    }

    fn read(&self, from: u64, max: usize, wait: Duration) -> Result<Vec<(u64, Vec<u8>)>, String> {
        self.0.read(from, max, wait)
    }

    fn fetch(&self, position: u64) -> Result<Option<Vec<u8>>, String> {
        self.0.fetch(position)
    }
}

/// The ClickHouse sink when `[clickhouse] url` is set; `events` re-reads raw events
/// by source position (embedded log only).
fn clickhouse_sink(
    config: &Config,
    events: Option<EventReader>,
) -> anyhow::Result<Option<Arc<ClickHouseSink>>> {
    if !config.clickhouse.enabled() {
        return Ok(None);
    }
    let sink = ClickHouseSink::start(config.clickhouse.clone(), events)
        .context("starting the ClickHouse sink")?;
    Ok(Some(Arc::new(sink)))
}

/// The log's meta key: the simulated time (ms, little-endian) up to which the demo
/// simulator's events are in the log.
pub const DEMO_SIMULATED_TO: &str = "demo_simulated_to";

/// The log's meta key: log positions below it whose refusal by the pipeline is
/// already in the dead letters.
const REFUSED_THROUGH: &str = "pipeline_refused_through";

/// A log meta value of 8 bytes (the little-endian numbers above), if stored.
fn meta_word(log: &EventLog, name: &str) -> anyhow::Result<Option<[u8; 8]>> {
    Ok(log
        .meta(name)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()))
}

/// The lateness horizon, when checkpoints are on: `[pipeline] checkpoint_interval_secs`
/// above 0 and a horizon (without one nothing is ever final, and a checkpoint would
/// hold every event).
fn checkpoint_settings(config: &Config, clock: Clock) -> Option<i64> {
    let horizon = config.pipeline.log_options(clock).lateness_horizon_ms;
    (config.pipeline.checkpoint_interval_secs > 0)
        .then_some(horizon)
        .flatten()
}

/// Where the pipeline's batches go, in this order: the ClickHouse sink (it folds the
/// rows in and never blocks here: backpressure is applied to the source), the
/// metrics topic, the view store. A checkpoint's facts take the same way.
struct Sinks {
    clickhouse: Option<Arc<ClickHouseSink>>,
    metrics: Option<std::sync::Mutex<MetricsSink>>,
    store: Arc<ViewStore>,
}

impl Sinks {
    fn release(&self, batch: MetricBatch) {
        if let Some(ch) = &self.clickhouse {
            ch.accept(&batch);
        }
        if let Some(sink) = &self.metrics {
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = sink.publish(&batch) {
                // The next start publishes the difference: nothing is lost or doubled.
                tracing::error!(error = %e, "metrics sink failed; exiting for a restart");
                std::process::exit(2);
            }
        }
        self.store.apply(batch);
    }
}

/// The checkpoints of a stack: the writer and the view store it reads.
struct Checkpoints {
    writer: Checkpointer,
    store: Arc<ViewStore>,
}

impl Checkpoints {
    /// Writes one at `input`'s position (see [`Checkpointer::write`]); a failure is
    /// logged and counted, the stack goes on (the previous checkpoint stays).
    fn write(&mut self, pipeline: &Pipeline, input: &mut Input, drain: Duration) {
        let Some(state) = pipeline.state() else {
            return;
        };
        let (source, held) = input.mark(|| state.finalizer.warm_positions());
        if let Err(e) = self
            .writer
            .write(pipeline, &self.store, drain, &source, held)
        {
            tracing::error!(error = %format!("{e:#}"), "checkpoint not written");
        }
    }
}

/// The pipeline's source, as the driver reads it.
enum Input {
    /// The embedded log from position `next`; `at_end` once a read found nothing new;
    /// `id` the log's identity.
    Log {
        log: Arc<EventLog>,
        next: u64,
        at_end: bool,
        id: u128,
    },
    /// The events topic; `pushed_tx` follows the events handed to the pipeline. With
    /// checkpoints, `held` keeps the payload of every event pushed that a checkpoint
    /// may need, sorted by position (pruned to the live ones at each checkpoint).
    Topic {
        events: Box<EventSource>,
        pushed_tx: watch::Sender<u64>,
        held: Option<Vec<HeldEvent>>,
    },
}

impl Input {
    /// Replays the events at `positions` into a pipeline resumed from a checkpoint
    /// ([`Pipeline::warm`]): the state its live entities had.
    /// Then waits for `loaded` (the checkpoint's facts in the view store) before the
    /// source is read on.
    fn warm(
        &self,
        pipeline: &mut Pipeline,
        positions: &[u64],
        loaded: Option<std::sync::mpsc::Receiver<()>>,
    ) -> anyhow::Result<()> {
        let log = match self {
            Input::Log { log, .. } => log,
            Input::Topic { held, .. } => {
                if loaded.is_none() {
                    return Ok(());
                }
                // The checkpoint kept the events themselves.
                let held = held.as_deref().unwrap_or_default();
                let started = Instant::now();
                for chunk in held.chunks(WARM_CHUNK) {
                    let events = chunk
                        .iter()
                        .map(|h| {
                            Event::from_proto_bytes(&h.payload).with_context(|| {
                                format!(
                                    "a checkpoint's event at position {} does not decode",
                                    h.position
                                )
                            })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    pipeline.warm(events)?;
                }
                tracing::info!(
                    events = held.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "live entities replayed from the checkpoint"
                );
                return Self::wait_loaded(loaded);
            }
        };
        if !positions.is_empty() {
            let started = Instant::now();
            // Most of the warm-up is decompressing the log's blocks: readers on every
            // core while the workers fold. The folds are order-independent, so the
            // chunks go in as they are read.
            let chunks: Vec<&[u64]> = positions.chunks(WARM_CHUNK).collect();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let (tx, rx) = std::sync::mpsc::sync_channel(WARM_READERS);
            let (next, chunks) = (&next, &chunks);
            std::thread::scope(move |scope| -> anyhow::Result<()> {
                for _ in 0..WARM_READERS {
                    let tx = tx.clone();
                    scope.spawn(move || {
                        while let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                            if tx.send(log.read_positions(chunk)).is_err() {
                                break;
                            }
                        }
                    });
                }
                drop(tx);
                // Returning early drops `rx`, which stops the readers.
                for events in rx {
                    pipeline.warm(events?)?;
                }
                Ok(())
            })?;
            tracing::info!(
                events = positions.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "live entities replayed from the log"
            );
        }
        Self::wait_loaded(loaded)
    }

    fn wait_loaded(loaded: Option<std::sync::mpsc::Receiver<()>>) -> anyhow::Result<()> {
        if let Some(loaded) = loaded {
            loaded
                .recv()
                .context("the checkpoint's facts did not load")?;
        }
        Ok(())
    }

    /// The source's position for a checkpoint, and the events it keeps: none for the
    /// log (read back by position); for the topic, those at the `warm` positions, the
    /// others dropped (an entity final now stays final).
    fn mark(&mut self, warm: impl FnOnce() -> Vec<u64>) -> (SourceMark, &[HeldEvent]) {
        match self {
            Input::Log { id, .. } => (SourceMark::Log { id: *id }, &[]),
            Input::Topic { events, held, .. } => {
                let held = held.get_or_insert_with(Vec::new);
                let warm = warm();
                held.retain(|h| warm.binary_search(&h.position).is_ok());
                (SourceMark::Topic(events.position()), held.as_slice())
            }
        }
    }

    /// The next events, at most a batch; empty when nothing new arrived (a Kafka poll
    /// has then waited [`KAFKA_POLL`]).
    fn next_batch(&mut self) -> anyhow::Result<Vec<Event>> {
        match self {
            Input::Log {
                log, next, at_end, ..
            } => {
                let (events, after) = log.read(*next, READ_BATCH)?;
                if after == *next {
                    *at_end = true;
                    // Nothing new: do not spin on the log.
                    std::thread::sleep(Duration::from_millis(5));
                }
                *next = after;
                Ok(events)
            }
            Input::Topic { events, .. } => Ok(events.poll_batch(KAFKA_READ_BATCH, KAFKA_POLL)?),
        }
    }

    /// The caps on the pipeline's watermarks for the events of the last batch: for the
    /// topic, [`EventSource::watermark_caps`]; none for the log.
    fn watermark_caps(&self) -> Vec<Option<i64>> {
        match self {
            Input::Log { .. } => Vec::new(),
            Input::Topic { events, .. } => events.watermark_caps().to_vec(),
        }
    }

    /// Whether everything the source held when the stack started has been read.
    fn caught_up(&self) -> bool {
        match self {
            Input::Log { at_end, .. } => *at_end,
            Input::Topic { events, .. } => events.caught_up(),
        }
    }

    /// How far the pipeline is behind its source: events stored in the log and not yet
    /// handed to it (embedded), or messages in the events topic past the consumer's
    /// position (Kafka, refreshed every few seconds).
    fn lag(&mut self, pushed: u64) -> Option<u64> {
        match self {
            Input::Log { log, .. } => Some(log.len().saturating_sub(pushed)),
            Input::Topic { events, .. } => {
                let lag = events.lag();
                if let Some(lag) = lag {
                    metrics::gauge!("crmpulse_kafka_source_lag_messages").set(lag as f64);
                }
                lag
            }
        }
    }

    /// Dead-letters the events the pipeline refused because an entity they touch is
    /// final, each once (a restart replays the source and refuses the same events
    /// again): from the log, which remembers how far it has dead-lettered them; from
    /// the events topic, to `crm.events.dlq.v1`, recognised by their source offsets.
    /// `batch_start` is the position of the batch's first event.
    fn refused(&mut self, refused: Vec<pipeline::Refused>, batch_start: u64) -> anyhow::Result<()> {
        if refused.is_empty() {
            return Ok(());
        }
        match self {
            Input::Log { log, .. } => {
                let through = meta_word(log, REFUSED_THROUGH)?.map_or(0, u64::from_le_bytes);
                let new: Vec<_> = refused.iter().filter(|r| r.position >= through).collect();
                let Some(last) = new.last().map(|r| r.position) else {
                    return Ok(());
                };
                let raws = new
                    .iter()
                    .map(|r| serde_json::to_vec(&r.event))
                    .collect::<Result<Vec<_>, _>>()?;
                let letters: Vec<DeadLetter<'_>> = new
                    .iter()
                    .zip(&raws)
                    .map(|(r, raw)| DeadLetter {
                        source: "pipeline",
                        raw,
                        reason: &r.reason,
                    })
                    .collect();
                log.write("pipeline", &[], &letters)?;
                log.set_meta(REFUSED_THROUGH, &(last + 1).to_le_bytes())?;
            }
            Input::Topic { events, .. } => {
                let letters: Vec<(usize, &str)> = refused
                    .iter()
                    .map(|r| ((r.position - batch_start) as usize, r.reason.as_str()))
                    .collect();
                events.dead_letter_refused(&letters)?;
            }
        }
        Ok(())
    }

    /// Called after the pipeline took a batch, whose first event had `batch_start`.
    fn pushed(&mut self, batch_start: u64, pushed: u64) {
        if let Input::Topic {
            pushed_tx,
            events,
            held,
        } = self
        {
            if let Some(held) = held {
                held.extend(events.returned_payloads().zip(batch_start..).map(
                    |(payload, position)| HeldEvent {
                        position,
                        payload: payload.to_vec(),
                    },
                ));
            }
            pushed_tx.send_replace(pushed);
        }
    }
}

/// Feeds the pipeline from `input`, in order, until `stop`; ticks the clock while idle.
/// With a ClickHouse sink, waits while the sink's buffer is full (backpressure, in
/// every mode). Once the source's start contents are in the pipeline, tells the
/// ClickHouse sink (it may clear rows an earlier run left behind) and the metrics
/// sink's catch-up, and sets `started` (readiness).
fn drive(
    input: &mut Input,
    pipeline: &mut Pipeline,
    stop: &AtomicBool,
    started: &AtomicBool,
    clickhouse: Option<&ClickHouseSink>,
    catch_up: Option<&CatchUp>,
    mut checkpoints: Option<&mut Checkpoints>,
) -> anyhow::Result<()> {
    let mut last_tick = Instant::now();
    let mut announced = false;
    while !stop.load(Ordering::Relaxed) {
        if let Some(ch) = clickhouse
            && !ch.wait_for_room(Duration::from_millis(100))
        {
            // Keep the clock ticking so the dashboard's time-based numbers advance.
            if last_tick.elapsed() >= TICK {
                pipeline.tick()?;
                last_tick = Instant::now();
            }
            continue;
        }
        let events = input.next_batch()?;
        if events.is_empty() {
            if last_tick.elapsed() >= TICK {
                pipeline.tick()?;
                last_tick = Instant::now();
            }
        } else {
            metrics::counter!("crmpulse_pipeline_events_total").increment(events.len() as u64);
            let batch_start = pipeline.pushed();
            pipeline.set_watermark_caps(input.watermark_caps());
            pipeline.push(events)?;
            input.refused(pipeline.take_refused(), batch_start)?;
            input.pushed(batch_start, pipeline.pushed());
            last_tick = Instant::now();
        }
        if let Some(lag) = input.lag(pipeline.pushed()) {
            metrics::gauge!("crmpulse_pipeline_lag_events").set(lag as f64);
        }
        if !announced && input.caught_up() {
            announced = true;
            tracing::info!(
                events = pipeline.pushed(),
                "source read up to what it held at start"
            );
            if let Some(ch) = clickhouse {
                ch.reconcile_after(pipeline.pushed());
            }
            if let Some(c) = catch_up {
                c.set_target(pipeline.pushed());
            }
            started.store(true, Ordering::Release);
            // What the start replayed is not replayed again by the next start (a few
            // events after a checkpoint wait for the interval).
            if let Some(c) = checkpoints.as_deref_mut()
                && pipeline.pushed() >= c.writer.covered() + REPLAYED_EVENTS
            {
                c.write(pipeline, input, SHUTDOWN_DRAIN);
            }
        }
        if let Some(c) = checkpoints.as_deref_mut()
            && announced
            && c.writer.due(pipeline.pushed())
        {
            c.write(pipeline, input, CHECKPOINT_DRAIN);
        }
    }
    Ok(())
}

/// Feeds `store` from the metrics topic: reads everything the topic holds before
/// returning (the bootstrap), then keeps following it on a thread until `stop`.
///
/// # Errors
/// When the metrics topic is missing.
fn follow_metrics(
    kafka: &KafkaConfig,
    store: Arc<ViewStore>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    let group = format!("serve-{}", std::process::id());
    let mut reader = MetricsReader::open(&kafka.reader_config(&group), &kafka.topics.metrics)
        .context("opening the metrics topic")?;
    let mut assembler = Assembler::new(reader.partitions().len());
    let started = Instant::now();
    let step = move |reader: &mut MetricsReader, assembler: &mut Assembler| {
        let Some(read) = reader.poll(Duration::from_millis(200)) else {
            return;
        };
        match read.record {
            Ok(record) => {
                if let Some(batch) = assembler.push(read.partition, record) {
                    store.apply(batch);
                }
            }
            Err(e) => {
                metrics::counter!("crmpulse_serve_bad_metric_records_total").increment(1);
                tracing::error!(partition = read.partition, offset = read.offset, error = %e, "skipping a metric record that does not decode");
            }
        }
    };
    while !reader.caught_up() {
        step(&mut reader, &mut assembler);
    }
    tracing::info!(
        progress = assembler.released(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "view store bootstrapped from the metrics topic"
    );
    let stop = Arc::clone(stop);
    Ok(std::thread::Builder::new()
        .name("crmpulse-metrics-follower".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                step(&mut reader, &mut assembler);
            }
        })?)
}

/// Puts the dashboard's authentication and CORS origins into `state`, and starts the
/// task that keeps the rate limiter's memory bounded (inside a Tokio runtime).
///
/// # Errors
/// An invalid CORS origin.
pub fn secure(
    state: &mut AppState,
    credentials: &Credentials,
    config: &Config,
) -> anyhow::Result<()> {
    state.auth = credentials.dashboard.clone();
    state.cors_origins = config.auth.cors_origins()?;
    if let Some(watch) = credentials.key_watch() {
        tokio::spawn(watch.run());
    }
    if let Some(auth) = state.auth.clone() {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                auth.forget_idle();
            }
        });
    }
    Ok(())
}

/// How often the configuration file is checked for changes.
const CONFIG_POLL: Duration = Duration::from_secs(1);

/// Reloads account settings whenever the configuration file changes. Settings are
/// applied at query time (the facts are zone- and target-free), so the next response
/// reflects them with nothing recomputed. A file that fails to load is reported and
/// the settings in force are kept.
pub async fn watch_config(
    path: PathBuf,
    settings: query_api::Settings,
    overlay: fn(AccountsConfig) -> AccountsConfig,
) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(CONFIG_POLL).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match crate::config::load(Some(&path)) {
            Ok(config) => {
                settings.replace(overlay(config.accounts));
                tracing::info!(path = %path.display(), "account settings reloaded");
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "configuration not reloaded, keeping the settings in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_account_gets_costs_unless_it_has_its_own() {
        let none = demo_costs(AccountsConfig::default());
        let one = &none.accounts["1"];
        assert_eq!(one.agent_hourly_cost_minor, 1_800);
        assert_eq!(one.conversation_fee_minor["whatsapp"], 5);
        // The other accounts keep the defaults.
        assert_eq!(none.defaults.agent_hourly_cost_minor, 0);

        // Account 1's own settings (a zone) are kept, with the costs added.
        let mut zoned = AccountsConfig::default();
        zoned.accounts.insert(
            "1".to_owned(),
            query_api::AccountSettings {
                timezone: chrono_tz::Asia::Kolkata,
                ..Default::default()
            },
        );
        let zoned = demo_costs(zoned);
        assert_eq!(zoned.accounts["1"].timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(zoned.accounts["1"].agent_hourly_cost_minor, 1_800);

        // Configured costs, here in the defaults, win.
        let mut priced = AccountsConfig::default();
        priced.defaults.agent_hourly_cost_minor = 900;
        let priced = demo_costs(priced);
        assert!(!priced.accounts.contains_key("1"));
        assert_eq!(priced.defaults.agent_hourly_cost_minor, 900);
    }
}
