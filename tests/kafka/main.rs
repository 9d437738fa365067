//! Kafka end to end, driving the real `crmpulse` binary against a Kafka-protocol
//! broker: tansu on loopback for the data-path tests (started by `scripts/test`,
//! address in `CRMPULSE_KAFKA_BROKERS`; they are `#[ignore]`d, and `scripts/test` runs
//! them with `--ignored`; without the variable they run against a MockCluster), and
//! rdkafka's MockCluster for injected broker faults.
//!
//! Every test uses its own topic names, so tests share one broker safely. The oracle
//! is always `pipeline::reference::facts`: a batch recomputation of all valid events.

mod checkpoints;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod modes;
mod reports;
mod topics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ingest::kafka::KafkaConfig;
use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::sink::kafka::MetricsReader;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use schemas::Event;
use schemas::metric_records::{Assembler, MetricRecord};
use schemas::metrics::{Fact, MetricBatch};

/// The broker a test runs against.
pub enum Broker {
    /// A real broker (tansu, started by `scripts/test`), from `CRMPULSE_KAFKA_BROKERS`.
    Real(String),
    /// rdkafka's in-process mock, when no real broker is named.
    Mock(MockCluster<'static, DefaultProducerContext>),
}

impl Broker {
    /// `CRMPULSE_KAFKA_BROKERS` when set, else a fresh MockCluster.
    pub fn from_env() -> Self {
        match std::env::var("CRMPULSE_KAFKA_BROKERS") {
            Ok(b) if !b.is_empty() => Broker::Real(b),
            _ => Broker::Mock(MockCluster::new(1).unwrap()),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Real(b) => b.clone(),
            Broker::Mock(m) => m.bootstrap_servers(),
        }
    }
}

/// A temp dir with a configuration naming topics unique to one test.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub kafka: KafkaConfig,
}

/// The clock of every process these tests start (`--now`), of their tokens and of
/// their simulated traffic, which ends here: a weekday afternoon, so that the daytime
/// windows below have passed and no result depends on the machine's date or hour.
pub const NOW: &str = "2026-11-26T14:01:00Z";

/// [`NOW`] in ms since the epoch.
pub fn now_ms() -> i64 {
    chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis()
}

/// The `[auth] hs256_secret` every process of a test shares, as replicas must.
pub const SECRET: &str = "kafka-tests-secret-0123456789abcdef";

/// An admin token of account 1 under [`SECRET`].
pub fn admin_token() -> String {
    use query_api::auth::{Claims, Role, Signer};
    let claims = Claims::new(
        "test",
        1,
        Role::Admin,
        vec![],
        None,
        Duration::from_secs(3600),
        &schemas::Clock::starting_at(now_ms()),
    );
    Signer::hs256(SECRET.as_bytes())
        .unwrap()
        .sign(&claims)
        .unwrap()
}

/// Account 1's ingest key under [`SECRET`].
pub fn ingest_key() -> String {
    ingest::auth::IngestAuth::derived_key(SECRET.as_bytes(), 1)
}

pub fn setup(brokers: &str, partitions: i32) -> Setup {
    setup_with(brokers, partitions, "")
}

/// [`setup`] with more lines for the configuration's `[pipeline]` section.
pub fn setup_with(brokers: &str, partitions: i32, pipeline: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    // Unique per run without reading the clock (tests pin or fake it).
    let suffix = format!("{}-{}", std::process::id(), rand::random::<u64>());
    let mut kafka = KafkaConfig {
        brokers: brokers.to_owned(),
        group_id: format!("crmpulse-test-{suffix}"),
        partitions,
        ..KafkaConfig::default()
    };
    kafka.topics.events = format!("crm.events.v1.{suffix}");
    kafka.topics.dead_letters = format!("crm.events.dlq.v1.{suffix}");
    kafka.topics.metrics = format!("crm.metrics.v1.{suffix}");
    kafka.topics.reports = format!("crm.reports.v1.{suffix}");
    let config_path = dir.path().join("crmpulse.toml");
    let toml = format!(
        "[pipeline]\nworkers = 2\n{pipeline}\n[auth]\nhs256_secret = {SECRET:?}\n\n[kafka]\nbrokers = {:?}\ngroup_id = {:?}\npartitions = {}\n\n[kafka.topics]\nevents = {:?}\ndead_letters = {:?}\nmetrics = {:?}\nreports = {:?}\n",
        kafka.brokers,
        kafka.group_id,
        partitions,
        kafka.topics.events,
        kafka.topics.dead_letters,
        kafka.topics.metrics,
        kafka.topics.reports
    );
    std::fs::write(&config_path, toml).unwrap();
    Setup {
        dir,
        config_path,
        kafka,
    }
}

impl Setup {
    /// Runs `crmpulse <args> --config FILE --now NOW`, logging to `name.log` in the
    /// temp dir.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Child {
        self.spawn_at(name, NOW, args)
    }

    /// [`Self::spawn`] with the process's clock started at `now` instead of [`NOW`].
    pub fn spawn_at(&self, name: &str, now: &str, args: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        // `run` keeps its checkpoints in the data dir: the test's, never the cwd.
        let data_dir = self.dir.path().join("data");
        let data_dir_args: &[&std::ffi::OsStr] =
            if args.first() == Some(&"run") && !args.contains(&"--data-dir") {
                &["--data-dir".as_ref(), data_dir.as_os_str()]
            } else {
                &[]
            };
        Command::new(env!("CARGO_BIN_EXE_crmpulse"))
            .arg("--config")
            .arg(&self.config_path)
            .args(["--now", now])
            .args(args)
            .args(data_dir_args)
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// The log of a process started with [`Self::spawn`].
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Creates the topics: with `crmpulse kafka-topics` on a real broker, through the
    /// mock's own API on a MockCluster.
    pub fn create_topics(&self, broker: &Broker) {
        if let Broker::Mock(mock) = broker {
            for topic in [
                &self.kafka.topics.events,
                &self.kafka.topics.dead_letters,
                &self.kafka.topics.metrics,
            ] {
                mock.create_topic(topic, self.kafka.partitions, 1).unwrap();
            }
            mock.create_topic(&self.kafka.topics.reports, 1, 1).unwrap();
            return;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
            .arg("--config")
            .arg(&self.config_path)
            .arg("kafka-topics")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kafka-topics failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("{}: created", self.kafka.topics.metrics)),
            "{stdout}"
        );
    }

    /// Produces events (protobuf, keyed like the gateway) and waits for the broker.
    pub fn produce(&self, events: &[Event]) {
        let raw: Vec<(Vec<u8>, Vec<u8>)> = events
            .iter()
            .map(|e| (e.partition_key().into_bytes(), e.to_proto_bytes()))
            .collect();
        self.produce_raw(&raw);
    }

    /// Produces `(key, value)` messages to the events topic as they are.
    pub fn produce_raw(&self, messages: &[(Vec<u8>, Vec<u8>)]) {
        let producer: BaseProducer = self.kafka.producer_config(60_000).create().unwrap();
        for (key, value) in messages {
            loop {
                match producer.send(
                    BaseRecord::to(&self.kafka.topics.events)
                        .key(key.as_slice())
                        .payload(value.as_slice()),
                ) {
                    Ok(()) => break,
                    Err(_) => {
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// Everything the metrics topic holds now.
    pub fn read_metrics(&self) -> MetricsView {
        read_metrics(&self.kafka)
    }

    /// Waits until the metrics topic says `events` events are reflected.
    pub fn wait_for_events(&self, events: u64, timeout: Duration) -> MetricsView {
        self.wait_for_events_logged(events, timeout, "run")
    }

    /// [`Self::wait_for_events`], showing the log of the process `name` on a timeout.
    pub fn wait_for_events_logged(
        &self,
        events: u64,
        timeout: Duration,
        name: &str,
    ) -> MetricsView {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.read_metrics();
            if view.events_consumed >= events {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "metrics reflect {} of {events} events; run log:\n{}",
                view.events_consumed,
                self.log(name)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// What a consumer of the metrics topic sees.
#[derive(Debug, Default)]
pub struct MetricsView {
    /// The sum of every delta record (including any not yet covered by progress).
    pub sum: HashMap<Fact, i64>,
    /// The batches a consumer applies, in order.
    pub batches: Vec<MetricBatch>,
    /// `events_consumed` of the last complete batch.
    pub events_consumed: u64,
}

impl MetricsView {
    /// The state after applying every complete batch.
    pub fn applied(&self) -> HashMap<Fact, i64> {
        let mut state = HashMap::new();
        for b in &self.batches {
            for (f, d) in &b.updates {
                *state.entry(f.clone()).or_default() += d;
            }
        }
        state.retain(|_, d| *d != 0);
        state
    }
}

pub fn read_metrics(kafka: &KafkaConfig) -> MetricsView {
    let mut reader =
        MetricsReader::open(&kafka.reader_config("test-reader"), &kafka.topics.metrics).unwrap();
    let mut assembler = Assembler::new(reader.partitions().len());
    let mut view = MetricsView::default();
    while !reader.caught_up() {
        let Some(read) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        let record = read.record.expect("every metric record decodes");
        if let MetricRecord::Deltas { updates, .. } = &record {
            for (f, d) in updates {
                *view.sum.entry(f.clone()).or_default() += d;
            }
        }
        if let Some(batch) = assembler.push(read.partition, record) {
            view.events_consumed = batch.events_consumed;
            view.batches.push(batch);
        }
    }
    view.sum.retain(|_, d| *d != 0);
    view
}

/// The last `hours` of simulated traffic for account 1 before [`NOW`].
pub fn simulated(hours: i64, seed: u64) -> Vec<Event> {
    let now = now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed,
            conversations_per_day: 600.0,
            ..SimulatorConfig::default()
        },
        now - hours * 3_600_000,
    );
    sim.advance_to(now)
}

/// `hours` of simulated traffic from 08:00 UTC of the latest day whose window has
/// passed by [`NOW`]. A fixed time of day keeps the volume steady (the night before the
/// wall clock was quiet when CI ran late, before the clock was pinned).
pub fn simulated_daytime(hours: i64, seed: u64) -> Vec<Event> {
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let now = now_ms();
    let start = (now - (8 + hours) * HOUR_MS).div_euclid(DAY_MS) * DAY_MS + 8 * HOUR_MS;
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed,
            conversations_per_day: 600.0,
            ..SimulatorConfig::default()
        },
        start,
    );
    sim.advance_to(start + hours * HOUR_MS)
}

/// The oracle: a batch recomputation of `events`.
pub fn reference(events: &[Event]) -> HashMap<Fact, i64> {
    let mut facts = pipeline::reference::facts(events);
    facts.retain(|_, d| *d != 0);
    facts
}

/// Kills a child the hard way and reaps it.
pub fn kill_9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Stops a child (SIGKILL is fine: nothing in these tests depends on a clean stop).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        kill_9(&mut self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs an HTTP future to completion (the tests are synchronous: the Kafka clients
/// they use block).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// GETs `url` as JSON, retrying while the server starts.
pub fn get_json(url: &str, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let got = block_on(async {
            let res = reqwest::Client::new()
                .get(url)
                .bearer_auth(admin_token())
                .send()
                .await
                .ok()?;
            if !res.status().is_success() {
                return None;
            }
            res.json::<serde_json::Value>().await.ok()
        });
        if let Some(v) = got {
            return v;
        }
        assert!(Instant::now() < deadline, "no answer from {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// POSTs an NDJSON body, retrying while the server starts; returns status and body.
pub fn post_ndjson(url: &str, body: &str, timeout: Duration) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = block_on(async {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(ingest_key())
                .header("content-type", "application/x-ndjson")
                .body(body.to_owned())
                .send()
                .await
                .ok()?;
            let status = res.status().as_u16();
            Some((status, res.json::<serde_json::Value>().await.ok()?))
        });
        if let Some(v) = got {
            return v;
        }
        assert!(Instant::now() < deadline, "no answer from {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fact map's differences from `expected`, for readable failures.
pub fn differences(
    got: &HashMap<Fact, i64>,
    expected: &HashMap<Fact, i64>,
) -> Vec<(Fact, i64, i64)> {
    let mut out = Vec::new();
    for (f, e) in expected {
        let g = got.get(f).copied().unwrap_or(0);
        if g != *e {
            out.push((f.clone(), g, *e));
        }
    }
    for (f, g) in got {
        if !expected.contains_key(f) {
            out.push((f.clone(), *g, 0));
        }
    }
    out.sort();
    out.truncate(10);
    out
}
