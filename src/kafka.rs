//! Composition of the Kafka modes (docs/kafka.md):
//!
//! - `run` with `[kafka]`: `crm.events.v1` → pipeline → `crm.metrics.v1` and the
//!   in-process view store → API + UI (+ the ingest gateway on the same port).
//! - `serve`: API + UI over a view store fed only from `crm.metrics.v1`.
//! - `ingest`: the HTTP gateway producing to `crm.events.v1`.
//! - `tail-metrics`: an example consumer of `crm.metrics.v1`.
//! - `kafka-topics`: creates the topics.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ingest::kafka::{EventSource, KafkaConfig, gateway};
use pipeline::sink::kafka::{Assembler, MetricsReader, MetricsSink, MetricsSinkConfig};
use pipeline::{Pipeline, PipelineConfig};
use query_api::{AppState, ViewStore};
use schemas::Clock;
use schemas::metric_records::MetricRecord;
use tokio::sync::watch;

use crate::auth::Credentials;
use crate::config::Config;

/// Events taken from Kafka per pipeline batch. Kept at 20,000, as the Kafka path's
/// crash tests have run it (the embedded log reads 50,000; docs/benchmarks.md).
const READ_BATCH: usize = 20_000;
/// Pipeline clock tick while idle.
const TICK: Duration = Duration::from_millis(250);

/// The `[kafka]` section, or an error saying it is needed.
pub fn section(config: &Config) -> anyhow::Result<&KafkaConfig> {
    config
        .kafka
        .as_ref()
        .context("this command needs a [kafka] section in the configuration (see docs/kafka.md)")
}

/// The metric sink's configuration for `kafka`.
pub fn sink_config(kafka: &KafkaConfig) -> MetricsSinkConfig {
    MetricsSinkConfig::new(
        &kafka.topics.metrics,
        kafka.client_config(),
        kafka.reader_config("metrics-readback"),
    )
}

/// A running Kafka pipeline: source thread, dataflow, metrics sink.
pub struct KafkaPipeline {
    stop: Arc<AtomicBool>,
    driver: std::thread::JoinHandle<()>,
}

impl KafkaPipeline {
    /// Reads the metrics topic back, then starts the source → pipeline → sink path;
    /// every released batch is also applied to `store`. `pushed` follows the number
    /// of events handed to the pipeline; input times come from `clock`.
    ///
    /// # Errors
    /// When a topic is missing or the pipeline cannot start.
    pub fn start(
        kafka: &KafkaConfig,
        config: &Config,
        store: Arc<ViewStore>,
        pushed: watch::Sender<u64>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let (mut sink, catch_up) =
            MetricsSink::open(sink_config(kafka)).context("reading back the metrics topic")?;
        let mut pipeline = Pipeline::start(
            &PipelineConfig {
                workers: config.pipeline.workers,
                clock,
                ..PipelineConfig::default()
            },
            move |batch| {
                if let Err(e) = sink.publish(&batch) {
                    // The next start publishes the difference: nothing is lost or doubled.
                    tracing::error!(error = %e, "metrics sink failed; exiting for a restart");
                    std::process::exit(2);
                }
                store.apply(batch);
            },
        )?;
        let mut source = EventSource::open(kafka).context("opening the events topic")?;
        let stop = Arc::new(AtomicBool::new(false));
        let driver_stop = Arc::clone(&stop);
        let driver = std::thread::Builder::new()
            .name("crmpulse-kafka-source".into())
            .spawn(move || {
                let mut announced = false;
                let mut last_tick = Instant::now();
                let result = (|| -> anyhow::Result<()> {
                    while !driver_stop.load(Ordering::Relaxed) {
                        let events = source.poll_batch(READ_BATCH, Duration::from_millis(50))?;
                        if events.is_empty() {
                            if last_tick.elapsed() >= TICK {
                                pipeline.tick()?;
                                last_tick = Instant::now();
                            }
                        } else {
                            pipeline.push(events)?;
                            pushed.send_replace(pipeline.pushed());
                            last_tick = Instant::now();
                        }
                        if !announced && source.caught_up() {
                            announced = true;
                            tracing::info!(
                                events = pipeline.pushed(),
                                read = source.read(),
                                "events topic read up to its start mark"
                            );
                            catch_up.set_target(pipeline.pushed());
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    tracing::error!(error = %e, "kafka source stopped");
                }
                pipeline.finish();
            })?;
        Ok(Self { stop, driver })
    }

    /// Stops reading; the pipeline drains what it has.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.driver.join();
    }
}

/// `crmpulse run` with `[kafka]`: the pipeline between the events and metrics topics,
/// with the API, UI and ingest gateway on `listen`. Returns on Ctrl-C.
///
/// # Errors
/// When a topic is missing, the listener cannot bind, or the pipeline stops.
pub fn run(
    listen: SocketAddr,
    config: &Config,
    config_path: Option<PathBuf>,
    data_dir: &std::path::Path,
    clock: Clock,
) -> anyhow::Result<()> {
    let kafka = section(config)?.clone();
    let credentials = Credentials::load(&config.auth, Some(data_dir), clock)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let store = Arc::new(ViewStore::default());
    let (pushed_tx, pushed_rx) = watch::channel(0u64);
    let pipeline = KafkaPipeline::start(&kafka, config, Arc::clone(&store), pushed_tx, clock)?;
    let gateway = gateway::Gateway::new(&kafka)?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let settings = query_api::Settings::new(config.accounts.clone());
        if let Some(path) = config_path {
            tokio::spawn(crate::app::watch_config(path, settings.clone()));
        }
        let mut state = AppState::new(Arc::clone(&store));
        state.clock = clock;
        state.settings = settings;
        state.live = config.live.to_live_config();
        state.bodies = config.api.body_cache();
        state.log_len = Some(pushed_rx);
        state.prometheus = Some(query_api::install_metrics());
        crate::app::secure(&mut state, &credentials, config)?;
        let app = query_api::router(state)
            .merge(gateway::router(gateway, Arc::clone(&credentials.ingest)));
        serve_http(listener, app, config).await
    });
    pipeline.shutdown();
    result
}

/// Serves `app` until Ctrl-C, over TLS when `[tls]` names a certificate.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: &Config,
) -> anyhow::Result<()> {
    let tls = config.tls.server_config()?;
    crate::tls::serve(listener, app, tls, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Feeds `store` from the metrics topic: reads everything the topic holds before
/// returning (the bootstrap), then keeps following it on a thread.
///
/// # Errors
/// When the metrics topic is missing.
pub fn follow_metrics(kafka: &KafkaConfig, store: Arc<ViewStore>) -> anyhow::Result<()> {
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
    std::thread::Builder::new()
        .name("crmpulse-metrics-follower".into())
        .spawn(move || {
            loop {
                step(&mut reader, &mut assembler);
            }
        })?;
    Ok(())
}

/// `crmpulse serve`: API + UI over the metrics topic.
///
/// # Errors
/// When the metrics topic is missing or the listener cannot bind.
pub fn serve(
    listen: SocketAddr,
    config: &Config,
    config_path: Option<PathBuf>,
    clock: Clock,
) -> anyhow::Result<()> {
    let kafka = section(config)?;
    let credentials = Credentials::load(&config.auth, None, clock)?;
    let store = Arc::new(ViewStore::default());
    follow_metrics(kafka, Arc::clone(&store))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let settings = query_api::Settings::new(config.accounts.clone());
        if let Some(path) = config_path {
            tokio::spawn(crate::app::watch_config(path, settings.clone()));
        }
        let mut state = AppState::new(store);
        state.clock = clock;
        state.settings = settings;
        state.live = config.live.to_live_config();
        state.bodies = config.api.body_cache();
        state.prometheus = Some(query_api::install_metrics());
        crate::app::secure(&mut state, &credentials, config)?;
        serve_http(listener, query_api::router(state), config).await
    })
}

/// `crmpulse ingest`: the gateway alone.
///
/// # Errors
/// When librdkafka refuses the configuration or the listener cannot bind.
pub fn ingest(listen: SocketAddr, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let kafka = section(config)?;
    let credentials = Credentials::load(&config.auth, None, clock)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let gateway = gateway::Gateway::new(kafka)?;
        let prometheus = query_api::install_metrics();
        let admin = credentials.dashboard.clone();
        // Server metrics take an admin dashboard token, as on the API.
        let app = gateway::router(gateway, Arc::clone(&credentials.ingest)).route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let p = prometheus.clone();
                let admin = admin.clone();
                async move {
                    use axum::response::IntoResponse as _;
                    if let Some(Err(e)) = admin.map(|a| a.authorize_server_metrics(&headers)) {
                        return e.into_response();
                    }
                    p.render().into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        serve_http(listener, app, config).await
    })
}

/// `crmpulse kafka-topics`: creates the topics.
///
/// # Errors
/// When the brokers cannot be reached or refuse a topic.
pub fn create_topics(config: &Config) -> anyhow::Result<()> {
    let kafka = section(config)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let created = runtime.block_on(ingest::kafka::topics::create_topics(kafka))?;
    for name in [
        &kafka.topics.events,
        &kafka.topics.dead_letters,
        &kafka.topics.metrics,
    ] {
        let what = if created.contains(name) {
            "created"
        } else {
            "exists"
        };
        println!("{name}: {what}");
    }
    Ok(())
}

/// `crmpulse tail-metrics`: prints `crm.metrics.v1` as JSON lines, either every
/// record (`batches = false`) or the complete batches a consumer applies.
///
/// # Errors
/// When the metrics topic is missing or standard output is closed.
pub fn tail_metrics(config: &Config, batches: bool, until_end: bool) -> anyhow::Result<()> {
    let kafka = section(config)?;
    let group = format!("tail-{}", std::process::id());
    let mut reader = MetricsReader::open(&kafka.reader_config(&group), &kafka.topics.metrics)
        .context("opening the metrics topic")?;
    let mut assembler = Assembler::new(reader.partitions().len());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let delta = |fact: &schemas::metrics::Fact, diff: i64| serde_json::json!({"kind": fact.kind(), "fact": fact, "diff": diff});
    loop {
        if until_end && reader.caught_up() {
            break;
        }
        let Some(read) = reader.poll(Duration::from_millis(500)) else {
            out.flush()?;
            continue;
        };
        let record = match read.record {
            Ok(r) => r,
            Err(e) => {
                eprintln!("partition {} offset {}: {e}", read.partition, read.offset);
                continue;
            }
        };
        let line = if batches {
            match assembler.push(read.partition, record) {
                Some(b) => serde_json::json!({
                    "progress": b.progress,
                    "events_consumed": b.events_consumed,
                    "deltas": b.updates.iter().map(|(f, d)| delta(f, *d)).collect::<Vec<_>>(),
                }),
                None => continue,
            }
        } else {
            match &record {
                MetricRecord::Deltas { progress, updates } => serde_json::json!({
                    "partition": read.partition,
                    "offset": read.offset,
                    "deltas_for": progress,
                    "deltas": updates.iter().map(|(f, d)| delta(f, *d)).collect::<Vec<_>>(),
                }),
                MetricRecord::Progress {
                    progress,
                    events_consumed,
                } => serde_json::json!({
                    "partition": read.partition,
                    "offset": read.offset,
                    "progress": progress,
                    "events_consumed": events_consumed,
                }),
            }
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
