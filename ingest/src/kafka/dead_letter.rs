//! The dead-letter topic `crm.events.dlq.v1`: input that is not a valid event, kept
//! byte for byte with why it was refused and where it came from, so it can be fixed
//! and re-sent. Counted in `crmpulse_kafka_dead_letters_total{reason}`.
//!
//! Headers of every dead letter: `reason` (the validation message, naming the field),
//! `reason_kind` (a short class such as `missing_field`), `source` (`kafka` or
//! `http`), and for Kafka input `source.topic`, `source.partition`, `source.offset`.
//! The key is the source message's key, when it had one.

use std::collections::HashSet;
use std::time::Duration;

use connectors::kafka::assign_from_start;
use futures_util::FutureExt as _;
use rdkafka::Message as _;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::{KafkaConfig, KafkaError};

/// Where a dead letter came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A message of a Kafka topic.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// An item of a provider's webhook (`whatsapp`, `chatwoot`).
    Source {
        /// The source's name.
        source: &'static str,
    },
    /// Item `index` of an HTTP ingest request.
    Http {
        /// 0-based position in the body.
        index: usize,
    },
}

/// One refused input.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// The original bytes.
    pub payload: &'a [u8],
    /// The original key, if any.
    pub key: Option<&'a [u8]>,
    /// Why it was refused (`field: problem`).
    pub reason: &'a str,
    /// A short class of the reason, for the metric label.
    pub reason_kind: &'static str,
    /// Where it came from.
    pub origin: Origin,
}

/// A producer to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish()
    }
}

impl DeadLetters {
    /// A dead-letter producer sharing `producer` (idempotent, `acks=all`).
    pub fn new(producer: FutureProducer, config: &KafkaConfig) -> Self {
        Self {
            producer,
            topic: config.topics.dead_letters.clone(),
        }
    }

    fn record<'a>(&'a self, letter: &'a DeadLetter<'a>) -> FutureRecord<'a, [u8], [u8]> {
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(letter.reason),
            })
            .insert(Header {
                key: "reason_kind",
                value: Some(letter.reason_kind),
            });
        match &letter.origin {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => {
                headers = headers
                    .insert(Header {
                        key: "source",
                        value: Some("kafka"),
                    })
                    .insert(Header {
                        key: "source.topic",
                        value: Some(topic.as_str()),
                    })
                    .insert(Header {
                        key: "source.partition",
                        value: Some(&partition.to_string()),
                    })
                    .insert(Header {
                        key: "source.offset",
                        value: Some(&offset.to_string()),
                    });
            }
            Origin::Source { source } => {
                headers = headers.insert(Header {
                    key: "source",
                    value: Some(*source),
                });
            }
            Origin::Http { index } => {
                headers = headers
                    .insert(Header {
                        key: "source",
                        value: Some("http"),
                    })
                    .insert(Header {
                        key: "source.index",
                        value: Some(&index.to_string()),
                    });
            }
        }
        let mut record = FutureRecord::to(&self.topic)
            .payload(letter.payload)
            .headers(headers);
        if let Some(key) = letter.key {
            record = record.key(key);
        }
        record
    }

    /// Sends dead letters and waits until the broker has them all.
    ///
    /// # Errors
    /// [`KafkaError::Delivery`] when one could not be delivered.
    pub async fn send(&self, letters: &[DeadLetter<'_>]) -> Result<(), KafkaError> {
        let mut pending = Vec::with_capacity(letters.len());
        for letter in letters {
            pending.push(self.enqueue(letter)?);
        }
        for delivery in pending {
            self.check(delivery.await)?;
        }
        Ok(())
    }

    /// Like [`Self::send`], from a thread that is not async: blocks until delivered.
    ///
    /// # Errors
    /// [`KafkaError::Delivery`] when one could not be delivered.
    pub fn send_blocking(&self, letters: &[DeadLetter<'_>]) -> Result<(), KafkaError> {
        let mut pending = Vec::with_capacity(letters.len());
        for letter in letters {
            pending.push(self.enqueue(letter)?);
        }
        self.producer.flush(Timeout::Never)?;
        for delivery in pending {
            // Flushed: every delivery report has arrived.
            let result = delivery
                .now_or_never()
                .expect("a flushed producer has reported every delivery");
            self.check(result)?;
        }
        Ok(())
    }

    fn enqueue(
        &self,
        letter: &DeadLetter<'_>,
    ) -> Result<rdkafka::producer::DeliveryFuture, KafkaError> {
        metrics::counter!("crmpulse_kafka_dead_letters_total", "reason" => letter.reason_kind)
            .increment(1);
        loop {
            match self.producer.send_result(self.record(letter)) {
                Ok(delivery) => return Ok(delivery),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    _,
                )) => {
                    // The local queue is full: let deliveries drain, then retry.
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn check<E>(
        &self,
        result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
    ) -> Result<(), KafkaError> {
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(KafkaError::Delivery {
                topic: self.topic.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(KafkaError::Delivery {
                topic: self.topic.clone(),
                reason: "the producer was dropped".into(),
            }),
        }
    }
}

/// The `(partition, offset)`s of `source_topic` messages already in the dead-letter
/// topic, read from its start to its end: a restarted pipeline, which reads its input
/// from the start again, skips them instead of dead-lettering them twice.
///
/// # Errors
/// [`KafkaError`] when the topic is missing or cannot be read.
pub fn already_dead_lettered(
    config: &KafkaConfig,
    source_topic: &str,
) -> Result<HashSet<(i32, i64)>, KafkaError> {
    let consumer: BaseConsumer = config.reader_config("dlq-readback").create()?;
    let topic = &config.topics.dead_letters;
    let mut progress = assign_from_start(&consumer, topic)?;
    let mut seen = HashSet::new();
    // Read on until the topic's end as it was now (tansu's lagging mark included:
    // see `connectors::kafka::ReadToEnd`).
    while !progress.caught_up() {
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            progress.nothing_more();
            continue;
        };
        let m = match result {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic, error = %e, "reading dead letters, retrying");
                continue;
            }
        };
        progress.message(m.partition(), m.offset());
        let Some(headers) = m.headers() else { continue };
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        if header("source.topic") != Some(source_topic) {
            continue;
        }
        if let (Some(Ok(p)), Some(Ok(o))) = (
            header("source.partition").map(str::parse::<i32>),
            header("source.offset").map(str::parse::<i64>),
        ) {
            seen.insert((p, o));
        }
    }
    Ok(seen)
}
