//! The pipeline's event source: every partition of `crm.events.v1`, read from the
//! start on every start.
//!
//! Why from the start: the pipeline's state is a pure function of the set of events
//! (duplicates ignored), so rebuilding it from the topic needs no checkpoint and can
//! never disagree with the input; the metric sink then publishes only the difference
//! from what `crm.metrics.v1` already holds (see `pipeline::sink::kafka`). The source
//! records each partition's high watermark when it starts; [`EventSource::caught_up`]
//! says when everything that was in the topic then has been handed out.
//!
//! Malformed messages are dead-lettered (once: those already in the dead-letter topic
//! from an earlier run are recognised by their source offset) and never stop the
//! source; the valid messages around them are all delivered.

use std::collections::HashSet;
use std::time::Duration;

use connectors::kafka::{ReadToEnd, assign_from_start};
use rdkafka::Message as _;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;
use schemas::Event;

use super::dead_letter::{DeadLetter, Origin, already_dead_lettered};
use super::{DeadLetters, KafkaConfig, KafkaError};

/// A message that did not decode, kept until it is dead-lettered.
struct Malformed {
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    reason: String,
    reason_kind: &'static str,
    partition: i32,
    offset: i64,
}

/// Reads `crm.events.v1` from the start, dead-lettering what does not decode.
pub struct EventSource {
    consumer: BaseConsumer,
    dead_letters: DeadLetters,
    topic: String,
    /// How far the read is from the end of the topic as it was at open.
    progress: ReadToEnd,
    /// Source offsets already in the dead-letter topic.
    dead_lettered: HashSet<(i32, i64)>,
    /// Messages read so far.
    read: u64,
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource")
            .field("topic", &self.topic)
            .field("behind", self.progress.behind())
            .field("read", &self.read)
            .finish()
    }
}

impl EventSource {
    /// Assigns every partition of the events topic from its first offset. Waits while
    /// the brokers are unreachable.
    ///
    /// # Errors
    /// [`KafkaError`] when a topic is missing or the configuration is refused.
    pub fn open(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let topic = config.topics.events.clone();
        let mut consumer_config = config.reader_config("source");
        // Named by the configured group id; partitions are assigned, nothing is committed.
        consumer_config.set("group.id", &config.group_id);
        let consumer: BaseConsumer = consumer_config.create()?;
        let progress = assign_from_start(&consumer, &topic)?;
        let dead_lettered = already_dead_lettered(config, &topic)?;
        let producer: FutureProducer = config.producer_config(0).create()?;
        tracing::info!(
            topic,
            partitions = progress.partitions().len(),
            messages = progress.messages_at_open(),
            dead_lettered = dead_lettered.len(),
            "event source opened"
        );
        Ok(Self {
            consumer,
            dead_letters: DeadLetters::new(producer, config),
            topic,
            progress,
            dead_lettered,
            read: 0,
        })
    }

    /// True once every message that was in the topic at [`Self::open`] has been
    /// returned by [`Self::poll_batch`]: every partition up to its high watermark at
    /// open, and then one call that found nothing more.
    ///
    /// The second condition is for brokers whose high watermark lags (tansu 0.6);
    /// the rule is [`ReadToEnd`]'s, shared with `pipeline::sink::kafka::MetricsReader`.
    pub fn caught_up(&self) -> bool {
        self.progress.caught_up()
    }

    /// Messages read so far (valid or not).
    pub fn read(&self) -> u64 {
        self.read
    }

    /// Waits up to `timeout` for a message, then takes what else is ready, up to
    /// `max` messages. Returns the valid events; invalid ones are dead-lettered
    /// before this returns. Broker errors are logged and waited out (librdkafka
    /// reconnects by itself).
    ///
    /// # Errors
    /// [`KafkaError::Delivery`] when a dead letter could not be written.
    pub fn poll_batch(&mut self, max: usize, timeout: Duration) -> Result<Vec<Event>, KafkaError> {
        let mut events = Vec::new();
        let mut bad: Vec<Malformed> = Vec::new();
        let mut wait = timeout;
        while events.len() + bad.len() < max {
            let Some(result) = self.consumer.poll(wait) else {
                if wait == timeout {
                    // A whole `timeout` without a message: the partitions read past
                    // their start marks hold nothing more (for now).
                    self.progress.nothing_more();
                }
                break;
            };
            wait = Duration::ZERO;
            let m = match result {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(topic = self.topic, error = %e, "consumer error, continuing");
                    metrics::counter!("crmpulse_kafka_consumer_errors_total").increment(1);
                    break;
                }
            };
            self.read += 1;
            let (partition, offset) = (m.partition(), m.offset());
            self.progress.message(partition, offset);
            let payload = m.payload().unwrap_or_default();
            match Event::from_proto_bytes(payload) {
                Ok(e) => events.push(e),
                Err(err) => {
                    if self.dead_lettered.contains(&(partition, offset)) {
                        continue;
                    }
                    bad.push(Malformed {
                        payload: payload.to_vec(),
                        key: m.key().map(<[u8]>::to_vec),
                        reason: err.to_string(),
                        reason_kind: err.kind(),
                        partition,
                        offset,
                    });
                }
            }
        }
        if !bad.is_empty() {
            let letters: Vec<DeadLetter<'_>> = bad
                .iter()
                .map(|b| DeadLetter {
                    payload: &b.payload,
                    key: b.key.as_deref(),
                    reason: &b.reason,
                    reason_kind: b.reason_kind,
                    origin: Origin::Kafka {
                        topic: self.topic.clone(),
                        partition: b.partition,
                        offset: b.offset,
                    },
                })
                .collect();
            self.dead_letters.send_blocking(&letters)?;
            for b in &bad {
                self.dead_lettered.insert((b.partition, b.offset));
            }
            tracing::warn!(
                topic = self.topic,
                count = bad.len(),
                "malformed events dead-lettered"
            );
        }
        metrics::counter!("crmpulse_kafka_source_events_total").increment(events.len() as u64);
        Ok(events)
    }
}
