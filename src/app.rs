//! Composition of the embedded stack: event log → pipeline → view store → API, plus
//! the demo simulator. The binary's `main` only parses arguments and calls in here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono_tz::Tz;
use ingest::EventLog;
use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::sink::clickhouse::ClickHouseSink;
use pipeline::{Pipeline, PipelineConfig};
use query_api::{AppState, ViewStore};
use schemas::Clock;
use serde::{Deserialize, Serialize};

use crate::auth::Credentials;
use crate::config::Config;

/// Events read from the log per pipeline batch.
/// Events read from the log per pipeline batch. Only a backlog (a rebuild, a replay)
/// fills it: live traffic arrives in smaller batches. Each batch is one timestamp of
/// the dataflow, so bigger batches amortise the per-timestamp work (5M events:
/// 459k events/s at 20,000, 549–600k at 50,000; docs/benchmarks.md).
pub(crate) const READ_BATCH: usize = 50_000;
/// Pipeline clock tick while idle.
const TICK: Duration = Duration::from_millis(250);

/// What the demo simulator persists so that a restart continues the same world.
#[derive(Debug, Serialize, Deserialize)]
struct DemoState {
    seed: u64,
    account_id: u64,
    start_ms: i64,
}

/// The running embedded stack (without the HTTP server).
pub struct Embedded {
    /// The durable log.
    pub log: Arc<EventLog>,
    /// The view store.
    pub store: Arc<ViewStore>,
    /// The ClickHouse sink, when `[clickhouse] url` is set.
    pub clickhouse: Option<Arc<ClickHouseSink>>,
    /// The process's one clock: pipeline time, the API's "now", the simulator's.
    pub clock: Clock,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Embedded {
    /// Opens the log in `data_dir` and starts the pipeline reading it from the start,
    /// with input times from `clock`.
    pub fn start(data_dir: &Path, config: &Config, clock: Clock) -> anyhow::Result<Self> {
        let log = Arc::new(EventLog::open(data_dir).context("opening the event log")?);
        let store = Arc::new(ViewStore::default());
        let stop = Arc::new(AtomicBool::new(false));
        let clickhouse = if config.clickhouse.enabled() {
            let reader_log = Arc::clone(&log);
            let reader: pipeline::sink::clickhouse::EventReader =
                Box::new(move |from, max| reader_log.read(from, max).map_err(|e| e.to_string()));
            Some(Arc::new(
                ClickHouseSink::start(config.clickhouse.clone(), Some(reader))
                    .context("starting the ClickHouse sink")?,
            ))
        } else {
            None
        };
        let sink = Arc::clone(&store);
        let ch_sink = clickhouse.clone();
        let mut pipeline = Pipeline::start(
            &PipelineConfig {
                workers: config.pipeline.workers,
                clock,
                ..PipelineConfig::default()
            },
            move |batch| {
                // Rows are folded in before the view store takes the batch; the sink
                // never blocks here (backpressure is applied to the log reader).
                if let Some(ch) = &ch_sink {
                    ch.accept(&batch);
                }
                sink.apply(batch)
            },
        )?;
        let driver_log = Arc::clone(&log);
        let driver_stop = Arc::clone(&stop);
        let driver_ch = clickhouse.clone();
        let driver = std::thread::Builder::new()
            .name("crmpulse-log-reader".into())
            .spawn(move || {
                if let Err(e) = drive(
                    &driver_log,
                    &mut pipeline,
                    &driver_stop,
                    driver_ch.as_deref(),
                ) {
                    tracing::error!(error = %e, "pipeline driver stopped");
                }
                pipeline.finish();
            })?;
        Ok(Self {
            log,
            store,
            clickhouse,
            clock,
            stop,
            threads: vec![driver],
        })
    }

    /// Starts the demo simulator: backfills `days` of history on an empty log, then
    /// produces live traffic. On a log it already wrote, it continues the same seeded
    /// world; events it had stored are recognised by id and skipped.
    pub fn start_simulator(&mut self, days: u32, seed: u64, timezone: Tz) -> anyhow::Result<()> {
        let state = match self.log.meta("demo")? {
            Some(bytes) => {
                serde_json::from_slice::<DemoState>(&bytes).context("reading demo state")?
            }
            None => {
                let state = DemoState {
                    seed,
                    account_id: 1,
                    start_ms: self.clock.now_ms() - i64::from(days) * 86_400_000,
                };
                self.log.set_meta("demo", &serde_json::to_vec(&state)?)?;
                state
            }
        };
        let log = Arc::clone(&self.log);
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
                        ..SimulatorConfig::default()
                    },
                    state.start_ms,
                );
                let started = Instant::now();
                let mut total = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let now = clock.now_ms();
                    // Catch up an hour of simulated time per append, then follow the clock.
                    let until = (sim.now_ms() + 3_600_000).min(now);
                    let events = sim.advance_to(until);
                    if !events.is_empty() {
                        match log.append(&events) {
                            Ok(out) => total += out.accepted,
                            Err(e) => tracing::error!(error = %e, "simulator append failed"),
                        }
                    }
                    if until >= now {
                        if total > 0 && started.elapsed() > Duration::ZERO {
                            tracing::debug!(events = total, "simulator caught up");
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            })?;
        self.threads.push(handle);
        Ok(())
    }

    /// Stops the reader and simulator threads; the pipeline drains.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(ch) = &self.clickhouse {
            ch.shutdown(CLICKHOUSE_DRAIN);
            // What is not written yet is still in the log: the next start writes it.
            let s = ch.stats();
            tracing::info!(
                written_through = s.written_through(),
                log_events = self.log.len(),
                buffered_rows = s.buffered_rows,
                "ClickHouse sink stopped"
            );
        }
    }
}

/// How long a stopping ClickHouse sink may still try to write what it holds (the rest
/// is rewritten from the log on the next start).
const CLICKHOUSE_DRAIN: Duration = Duration::from_secs(5);

/// Feeds the pipeline from the log, in order, forever; ticks the clock while idle.
/// With a ClickHouse sink, waits while the sink's buffer is full (backpressure).
fn drive(
    log: &EventLog,
    pipeline: &mut Pipeline,
    stop: &AtomicBool,
    clickhouse: Option<&ClickHouseSink>,
) -> anyhow::Result<()> {
    let mut next: u64 = 0;
    let mut last_tick = Instant::now();
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
        let (events, after) = log.read(next, READ_BATCH)?;
        if after == next {
            if let Some(ch) = clickhouse {
                // The log as it was at start is in the pipeline: the sink may now
                // clear rows an earlier run left behind (first call only counts).
                ch.reconcile_after(pipeline.pushed());
            }
            if last_tick.elapsed() >= TICK {
                pipeline.tick()?;
                last_tick = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        next = after;
        metrics::counter!("crmpulse_pipeline_events_total").increment(events.len() as u64);
        pipeline.push(events)?;
        last_tick = Instant::now();
    }
    Ok(())
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

/// Binds `listen` and serves the API over an embedded stack until Ctrl-C. With a
/// configuration file, account settings are reloaded when it changes.
pub async fn serve(
    embedded: &Embedded,
    config: &Config,
    credentials: &Credentials,
    listen: SocketAddr,
    config_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let settings = query_api::Settings::new(config.accounts.clone());
    if let Some(path) = config_path {
        tokio::spawn(watch_config(path, settings.clone()));
    }
    serve_on(embedded, config, credentials, settings, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// How often the configuration file is checked for changes.
const CONFIG_POLL: Duration = Duration::from_secs(1);

/// Reloads account settings whenever the configuration file changes. Settings are
/// applied at query time (the facts are zone- and target-free), so the next response
/// reflects them with nothing recomputed. A file that fails to load is reported and
/// the settings in force are kept.
pub(crate) async fn watch_config(path: PathBuf, settings: query_api::Settings) {
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
                settings.replace(config.accounts);
                tracing::info!(path = %path.display(), "account settings reloaded");
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "configuration not reloaded, keeping the settings in force");
            }
        }
    }
}

/// Serves the API over an embedded stack on `listener` until `shutdown` resolves.
pub async fn serve_on(
    embedded: &Embedded,
    config: &Config,
    credentials: &Credentials,
    settings: query_api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut state = AppState::new(Arc::clone(&embedded.store));
    state.clock = embedded.clock;
    state.settings = settings;
    state.live = config.live.to_live_config();
    state.bodies = config.api.body_cache();
    state.log_len = Some(embedded.log.subscribe());
    state.clickhouse = embedded.clickhouse.clone().map(|ch| {
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
    let app = query_api::router(state).merge(ingest::http::router(
        Arc::clone(&embedded.log),
        Arc::clone(&credentials.ingest),
    ));
    let tls = config.tls.server_config()?;
    crate::tls::serve(listener, app, tls, shutdown).await
}
