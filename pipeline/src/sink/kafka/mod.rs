//! The `crm.metrics.v1` sink: the pipeline's metric batches as protobuf deltas plus
//! progress records, exactly once across crashes, without transactions.
//!
//! How exactly-once works without `read_committed`:
//!
//! 1. On start, [`MetricsSink::open`] reads the whole metrics topic back and sums its
//!    deltas: `published`, what every consumer will have once it has read the topic.
//!    It includes deltas of a batch that a crash cut in half.
//! 2. The pipeline rebuilds its state from the start of `crm.events.v1`. While it
//!    catches up, the sink only accumulates the batches (`state`) and publishes
//!    nothing.
//! 3. When the pipeline has consumed every event that was in the topic at start
//!    ([`CatchUp::set_target`]), the sink publishes `state - published` once, then
//!    every later batch as it is. The topic's sum is then exactly the pipeline's state.
//!
//! Each step is idempotent: a crash anywhere only means the next start publishes a
//! different difference. Because the pipeline's state is a pure function of the set
//! of events, the final sum equals a batch recomputation of all events, whatever
//! the crashes. Records of one partition are produced in order by an idempotent
//! producer (`acks=all`, retried forever), and the progress record of a batch
//! follows its deltas on every partition. The invariant needs one pipeline process
//! writing to the topic at a time.

pub mod reader;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use schemas::metric_records::{MetricRecord, RecordError};
use schemas::metrics::{Fact, MetricBatch};

pub use reader::{MetricsReader, ReadRecord};

/// Errors of the metrics sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// librdkafka refused a configuration or failed a request.
    #[error("kafka client error")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The metrics topic does not exist.
    #[error("topic {0} does not exist or has no partitions")]
    MissingTopic(String),
    /// A record could not be delivered; the sink must be restarted (it then
    /// publishes the difference, so nothing is lost or doubled).
    #[error("delivering to {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// A record in the topic does not decode.
    #[error("reading back {topic} at partition {partition} offset {offset}")]
    Corrupt {
        /// The topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Why.
        #[source]
        source: RecordError,
    },
}

impl From<connectors::kafka::ConnectorError> for SinkError {
    fn from(e: connectors::kafka::ConnectorError) -> Self {
        match e {
            connectors::kafka::ConnectorError::Client(e) => Self::Kafka(e),
            connectors::kafka::ConnectorError::MissingTopic(topic) => Self::MissingTopic(topic),
        }
    }
}

/// How the sink connects and writes.
#[derive(Debug, Clone)]
pub struct MetricsSinkConfig {
    /// The metrics topic.
    pub topic: String,
    /// Producer configuration (brokers, security; the sink sets the delivery
    /// guarantees itself).
    pub producer: ClientConfig,
    /// Consumer configuration for reading the topic back (brokers, security, group id).
    pub reader: ClientConfig,
    /// Most facts in one Kafka record; larger batches are split.
    pub max_facts_per_record: usize,
    /// Least time between two progress records when nothing changed.
    pub idle_progress_every: Duration,
}

impl MetricsSinkConfig {
    /// Defaults for `topic` with the given client configurations.
    pub fn new(topic: &str, producer: ClientConfig, reader: ClientConfig) -> Self {
        Self {
            topic: topic.to_owned(),
            producer,
            reader,
            max_facts_per_record: 1_000,
            idle_progress_every: Duration::from_secs(1),
        }
    }
}

/// Tells the sink when the pipeline has caught up with the events topic.
#[derive(Debug, Clone)]
pub struct CatchUp(Arc<AtomicU64>);

impl CatchUp {
    /// The pipeline has caught up once it reports `events` consumed events.
    pub fn set_target(&self, events: u64) {
        self.0.store(events, Ordering::Release);
    }
}

/// Collects delivery failures reported by librdkafka's background thread.
#[derive(Debug, Default, Clone)]
struct Deliveries(Arc<Mutex<Option<String>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

enum Phase {
    /// Rebuilding: batches accumulate in `state`; `published` is the topic's sum.
    CatchingUp {
        state: HashMap<Fact, i64>,
        published: HashMap<Fact, i64>,
    },
    /// In step with the topic: every batch is published as it is.
    Live,
}

/// The `crm.metrics.v1` sink. Call [`MetricsSink::publish`] with every batch, in
/// order.
pub struct MetricsSink {
    producer: BaseProducer<Deliveries>,
    deliveries: Deliveries,
    config: MetricsSinkConfig,
    partitions: Vec<i32>,
    phase: Phase,
    target: Arc<AtomicU64>,
    /// Highest progress in the topic (read back or published).
    last_progress: u64,
    last_publish: Instant,
}

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSink")
            .field("topic", &self.config.topic)
            .field("partitions", &self.partitions)
            .field("last_progress", &self.last_progress)
            .finish()
    }
}

impl MetricsSink {
    /// Reads the topic back (step 1 above) and returns the sink with the handle that
    /// ends its catch-up.
    ///
    /// # Errors
    /// [`SinkError`] when the topic is missing or holds a record that does not decode.
    pub fn open(config: MetricsSinkConfig) -> Result<(Self, CatchUp), SinkError> {
        let started = Instant::now();
        let mut reader = MetricsReader::open(&config.reader, &config.topic)?;
        let mut published: HashMap<Fact, i64> = HashMap::new();
        let mut last_progress = 0;
        let mut records = 0u64;
        while !reader.caught_up() {
            let Some(read) = reader.poll(Duration::from_millis(500)) else {
                continue;
            };
            records += 1;
            let record = read.record.map_err(|source| SinkError::Corrupt {
                topic: config.topic.clone(),
                partition: read.partition,
                offset: read.offset,
                source,
            })?;
            match record {
                MetricRecord::Deltas { progress, updates } => {
                    last_progress = last_progress.max(progress);
                    for (fact, diff) in updates {
                        *published.entry(fact).or_default() += diff;
                    }
                }
                MetricRecord::Progress { progress, .. } => {
                    last_progress = last_progress.max(progress);
                }
            }
        }
        published.retain(|_, d| *d != 0);
        tracing::info!(
            topic = config.topic,
            records,
            facts = published.len(),
            last_progress,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "metrics topic read back"
        );
        let deliveries = Deliveries::default();
        let mut producer_config = config.producer.clone();
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Retry forever: a broker outage pauses the pipeline, it never drops output.
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5");
        let producer = producer_config.create_with_context(deliveries.clone())?;
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let sink = Self {
            producer,
            deliveries,
            partitions: reader.partitions().to_vec(),
            config,
            phase: Phase::CatchingUp {
                state: HashMap::new(),
                published,
            },
            target: Arc::clone(&target),
            last_progress,
            last_publish: Instant::now(),
        };
        Ok((sink, CatchUp(target)))
    }

    /// True once the sink publishes batches as they come.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live)
    }

    /// Takes the next batch of the pipeline: accumulates it while catching up,
    /// publishes the difference when caught up, then every batch. Blocks until the
    /// broker has acknowledged what it published (waiting out outages).
    ///
    /// # Errors
    /// [`SinkError::Delivery`] when librdkafka gives a record up; restart the
    /// pipeline (the next start publishes the difference).
    pub fn publish(&mut self, batch: &MetricBatch) -> Result<(), SinkError> {
        match &mut self.phase {
            Phase::CatchingUp { state, published } => {
                for (fact, diff) in &batch.updates {
                    *state.entry(fact.clone()).or_default() += diff;
                }
                if batch.events_consumed < self.target.load(Ordering::Acquire) {
                    return Ok(());
                }
                let mut difference: HashMap<Fact, i64> = std::mem::take(state);
                for (fact, diff) in std::mem::take(published) {
                    *difference.entry(fact).or_default() -= diff;
                }
                let updates: Vec<(Fact, i64)> =
                    difference.into_iter().filter(|(_, d)| *d != 0).collect();
                tracing::info!(
                    topic = self.config.topic,
                    facts = updates.len(),
                    events = batch.events_consumed,
                    "caught up with the events topic; publishing the difference"
                );
                self.phase = Phase::Live;
                self.write(batch.progress, batch.events_consumed, &updates)
            }
            Phase::Live => {
                if batch.updates.is_empty()
                    && self.last_publish.elapsed() < self.config.idle_progress_every
                {
                    return Ok(());
                }
                self.write(batch.progress, batch.events_consumed, &batch.updates)
            }
        }
    }

    fn write(
        &mut self,
        progress: u64,
        events_consumed: u64,
        updates: &[(Fact, i64)],
    ) -> Result<(), SinkError> {
        // Progress only moves forward in the topic, even across restarts.
        let progress = progress.max(self.last_progress + 1);
        let n = self.partitions.len() as u64;
        let mut by_partition: HashMap<i32, Vec<(Fact, i64)>> = HashMap::new();
        for (fact, diff) in updates {
            let p = self.partitions[(fact.account_id() % n) as usize];
            by_partition
                .entry(p)
                .or_default()
                .push((fact.clone(), *diff));
        }
        for (partition, updates) in by_partition {
            for chunk in updates.chunks(self.config.max_facts_per_record.max(1)) {
                let record = MetricRecord::Deltas {
                    progress,
                    updates: chunk.to_vec(),
                };
                self.send(partition, &record.encode())?;
            }
        }
        let marker = MetricRecord::Progress {
            progress,
            events_consumed,
        }
        .encode();
        for p in self.partitions.clone() {
            self.send(p, &marker)?;
        }
        self.producer.flush(Timeout::Never)?;
        if let Some(reason) = self
            .deliveries
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(SinkError::Delivery {
                topic: self.config.topic.clone(),
                reason,
            });
        }
        self.last_progress = progress;
        self.last_publish = Instant::now();
        metrics::counter!("crmpulse_kafka_metric_deltas_total").increment(updates.len() as u64);
        metrics::gauge!("crmpulse_kafka_metrics_progress_ms").set(progress as f64);
        Ok(())
    }

    fn send(&self, partition: i32, payload: &[u8]) -> Result<(), SinkError> {
        loop {
            let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&self.config.topic)
                .partition(partition)
                .payload(payload);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    _,
                )) => {
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
}
