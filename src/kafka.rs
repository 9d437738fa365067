//! The Kafka commands that are not a configuration of the stack (`crate::stack` builds
//! `run` with `[kafka]` and `serve`; docs/kafka.md):
//!
//! - `ingest`: the HTTP gateway producing to `crm.events.v1`.
//! - `tail-metrics`: an example consumer of `crm.metrics.v1`.
//! - `kafka-topics`: creates the topics.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ingest::kafka::{KafkaConfig, gateway};
use pipeline::sink::kafka::{MetricsReader, MetricsSinkConfig};
use schemas::Clock;
use schemas::metric_records::{Assembler, MetricRecord};

use crate::auth::Credentials;
use crate::config::Config;

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

/// Serves `app` until SIGINT or SIGTERM, over TLS when `[tls]` names a certificate.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: &Config,
) -> anyhow::Result<()> {
    let tls = config.tls.server_config()?;
    crate::tls::serve(listener, app, tls, crate::shutdown_signal()).await
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
        // Native events and provider webhooks, as `run` serves them in Kafka mode.
        let sources = Arc::new(config.sources.clone());
        let app = gateway::router(gateway.clone(), Arc::clone(&credentials.ingest))
            .merge(ingest::sources::router(
                gateway,
                sources,
                Arc::clone(&credentials.ingest),
            ))
            // Liveness and readiness for probes (no token): the gateway holds no state
            // to load, so it is ready as soon as it serves; a broker that is down shows
            // as 503s on the writes and in `crmpulse_ingest_*`.
            .route(
                "/healthz",
                axum::routing::get(|| async {
                    axum::Json(serde_json::json!({"status": "ok", "role": "ingest"}))
                }),
            )
            .route(
                "/readyz",
                axum::routing::get(|| async {
                    axum::Json(serde_json::json!({"ready": true, "role": "ingest"}))
                }),
            )
            .route(
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
        &kafka.topics.reports,
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
