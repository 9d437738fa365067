//! `crmpulse-bench kafka`: the Kafka figures, measured against the broker in
//! `[kafka]` with fresh topics (named `<topic>.bench-<timestamp>`).
//!
//! - Throughput: N simulated events are produced first (not timed in the figure);
//!   then a pipeline starts on the topic and the clock runs until its metrics sink
//!   has published the batch that reflects all of them: events/s from Kafka through
//!   the full metric catalog into `crm.metrics.v1`.
//! - Restart: on the same topic, a stack with checkpoints reads it whole and writes
//!   its checkpoint at shutdown; the next start goes on from the checkpoint, timed to
//!   caught up (the metrics topic read back, the checkpoint loaded, the live
//!   entities' events replayed, the topic read on from the offsets).
//! - Latency: the whole production path, each hop over the broker: a producer
//!   sends `conversation_opened` events at a steady rate to `crm.events.v1`; the
//!   pipeline publishes to `crm.metrics.v1`; a view store fed only from that topic
//!   (what `crmpulse serve` runs) serves `/api/live`; a WebSocket client subscribed
//!   to the KPI strip notes when `active_conversations.total` first reflects each
//!   event. Producer send → WebSocket delta, p50/p99.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use ingest::kafka::KafkaConfig;
use ingest::simulator::{Simulator, SimulatorConfig};
use query_api::AppState;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::Clock;
use serde_json::json;

use crmpulse::config::Config;
use crmpulse::kafka::section;
use crmpulse::stack::{Source, Stack};

use crate::harness::KpiProbe;

/// Arguments of `crmpulse-bench kafka`.
#[derive(Debug, Args)]
pub struct KafkaBenchArgs {
    /// Events for the throughput figure.
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    /// Events per second for the latency figure.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds of steady load for the latency figure.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Least ms between two WebSocket deltas (the product default is 1000).
    #[arg(long, default_value_t = 50)]
    coalesce_ms: u64,
    /// Run against librdkafka's in-process mock broker instead of `[kafka] brokers`
    /// (memory only: the figures then leave out a real broker's disk and network).
    #[arg(long)]
    mock_broker: bool,
}

/// Topics of their own for one run: a random suffix, not a time stamp, so that runs on
/// a fixed clock (`--now`) do not share topics.
fn fresh_topics(kafka: &KafkaConfig) -> KafkaConfig {
    let stamp = format!("{:016x}", rand::random::<u64>());
    let mut k = kafka.clone();
    for t in [
        &mut k.topics.events,
        &mut k.topics.dead_letters,
        &mut k.topics.metrics,
    ] {
        *t = format!("{t}.bench-{stamp}");
    }
    k
}

/// Runs both figures and prints them.
///
/// # Errors
/// When the broker cannot be reached or a run fails.
pub fn run(args: &KafkaBenchArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let mut kafka = config.kafka.clone().unwrap_or_default();
    let mock = if args.mock_broker {
        let mock = rdkafka::mocking::MockCluster::new(1)?;
        kafka.brokers = mock.bootstrap_servers();
        Some(mock)
    } else {
        section(config)?;
        None
    };
    let create = |k: &KafkaConfig| -> anyhow::Result<()> {
        match &mock {
            Some(mock) => {
                for t in [&k.topics.events, &k.topics.dead_letters, &k.topics.metrics] {
                    mock.create_topic(t, k.partitions, 1)?;
                }
                Ok(())
            }
            None => {
                tokio::runtime::Runtime::new()?
                    .block_on(ingest::kafka::topics::create_topics(k))?;
                Ok(())
            }
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "crmpulse-bench kafka against {}{} ({} partitions, {} pipeline workers)",
        kafka.brokers,
        if mock.is_some() {
            " (librdkafka mock broker)"
        } else {
            ""
        },
        kafka.partitions,
        config.pipeline.workers
    );
    let topics = fresh_topics(&kafka);
    create(&topics)?;
    throughput(args, config, &topics, &runtime, clock)?;
    let topics = fresh_topics(&kafka);
    create(&topics)?;
    latency(args, config, &topics, &runtime, clock)
}

fn throughput(
    args: &KafkaBenchArgs,
    config: &Config,
    kafka: &KafkaConfig,
    runtime: &tokio::runtime::Runtime,
    clock: Clock,
) -> anyhow::Result<()> {
    let now = clock.now_ms();
    let mut sim = Simulator::new(SimulatorConfig::default(), now - 60 * 86_400_000);
    let mut events = Vec::new();
    while (events.len() as u64) < args.events && sim.now_ms() < now {
        events.extend(sim.advance_to(sim.now_ms() + 3_600_000));
    }
    events.truncate(args.events as usize);
    let n = events.len() as u64;
    let gateway = ingest::kafka::gateway::Gateway::new(kafka)?;
    let started = Instant::now();
    runtime.block_on(async {
        for chunk in events.chunks(10_000) {
            gateway.produce(chunk).await?;
        }
        anyhow::Ok(())
    })?;
    let produced = started.elapsed();
    drop(events);

    let started = Instant::now();
    let pipeline = Stack::build(
        &with_topics(config, kafka),
        Source::EventsTopic { checkpoints: None },
        clock,
    )?;
    let store = Arc::clone(&pipeline.store);
    let mut progress = store.subscribe();
    runtime.block_on(async {
        while store.read(|s| s.events_consumed) < n {
            let _ = tokio::time::timeout(Duration::from_secs(1), progress.changed()).await;
        }
    });
    let elapsed = started.elapsed();
    pipeline.shutdown();
    println!(
        "throughput: {n} events produced in {:.1}s ({:.0} events/s, idempotent, acks=all); \
         consumed through the full catalog into {} in {:.1}s: {:.0} events/s",
        produced.as_secs_f64(),
        n as f64 / produced.as_secs_f64(),
        kafka.topics.metrics,
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    restart(config, kafka, clock, n)
}

/// The restart figure (see the module), on the topic [`throughput`] filled.
fn restart(config: &Config, kafka: &KafkaConfig, clock: Clock, n: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = with_topics(config, kafka);
    let source = Source::EventsTopic {
        checkpoints: Some(dir.path().to_owned()),
    };
    let caught_up = |stack: &Stack| {
        while !stack.started() || stack.store.read(|s| s.events_consumed) < stack.source_len() {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let started = Instant::now();
    let first = Stack::build(&config, source.clone(), clock)?;
    caught_up(&first);
    let whole = started.elapsed();
    first.shutdown();
    let size = std::fs::metadata(dir.path().join("checkpoint.bin"))?.len();
    let started = Instant::now();
    let second = Stack::build(&config, source, clock)?;
    caught_up(&second);
    let resumed = started.elapsed();
    let from = second.resumed_from;
    second.shutdown();
    println!(
        "restart: {n} events; the whole topic read (and the metrics topic back) in {:.2}s; \
         from the checkpoint ({:.1} MB, at {from:?} events) in {:.2}s",
        whole.as_secs_f64(),
        size as f64 / 1e6,
        resumed.as_secs_f64()
    );
    Ok(())
}

fn latency(
    args: &KafkaBenchArgs,
    config: &Config,
    kafka: &KafkaConfig,
    runtime: &tokio::runtime::Runtime,
    clock: Clock,
) -> anyhow::Result<()> {
    let config = with_topics(config, kafka);
    let pipeline = Stack::build(&config, Source::EventsTopic { checkpoints: None }, clock)?;
    // What `crmpulse serve` runs: a view store fed only from the metrics topic.
    let serve = Stack::build(&config, Source::MetricsTopic, clock)?;
    let served = Arc::clone(&serve.store);
    let mut live_config = config.clone();
    live_config.live.coalesce_ms = args.coalesce_ms;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut state = AppState::new(Arc::clone(&served));
        state.clock = clock;
        state.live = live_config.live.to_live_config();
        let server =
            tokio::spawn(async move { axum::serve(listener, query_api::router(state)).await });
        let mut probe = KpiProbe::connect(addr, None).await?;
        let producer: FutureProducer = kafka.producer_config(30_000).create()?;
        let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let sender_sent = Arc::clone(&sent);
        let (rate, seconds) = (args.rate, args.seconds);
        let topic = kafka.topics.events.clone();
        let sender = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            let mut deliveries = Vec::new();
            for k in 0..rate * seconds {
                tick.tick().await;
                let now = schemas::event::format_rfc3339_ms(clock.now_ms());
                let event = schemas::Event::from_json(
                    &json!({
                        "event_id": format!("kbench-{k}"), "account_id": 1, "occurred_at": now,
                        "type": "conversation_opened", "conversation_id": format!("kbench-{k}"),
                        "customer_id": "bench", "channel": "whatsapp", "inbox_id": "bench",
                        "origin": "inbound",
                    })
                    .to_string(),
                )
                .expect("a valid event");
                let (key, value) = (event.partition_key(), event.to_proto_bytes());
                sender_sent.lock().expect("sent lock").push(Instant::now());
                let producer = producer.clone();
                let topic = topic.clone();
                deliveries.push(tokio::spawn(async move {
                    let _ = producer
                        .send(
                            FutureRecord::to(&topic).key(&key).payload(&value),
                            Duration::from_secs(5),
                        )
                        .await;
                }));
            }
            for d in deliveries {
                let _ = d.await;
            }
        });
        let total = (rate * seconds) as usize;
        let hist = probe
            .record(
                &sent,
                total,
                Instant::now() + Duration::from_secs(seconds + 20),
            )
            .await?;
        sender.await?;
        server.abort();
        println!(
            "latency (coalesce {} ms, {rate} events/s for {seconds}s, {} of {total} observed): \
             producer → crm.events.v1 → pipeline → crm.metrics.v1 → serve → WebSocket delta \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            args.coalesce_ms,
            hist.len(),
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0,
            hist.max() as f64 / 1000.0,
        );
        anyhow::Ok(())
    });
    serve.shutdown();
    pipeline.shutdown();
    result
}

/// `config` with `kafka` (the benchmark's fresh topics) as its `[kafka]` section.
fn with_topics(config: &Config, kafka: &KafkaConfig) -> Config {
    let mut config = config.clone();
    config.kafka = Some(kafka.clone());
    config
}
