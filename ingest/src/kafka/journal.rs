//! `crm.reports.v1`: the report schedules' journal shared by every process of a Kafka
//! deployment (the pipeline's `run` and every `serve` replica).
//!
//! One partition, so every reader sees the records in the same order: that order is
//! what decides which scheduler's claim of a slot wins (see the query API's
//! `reports::book`). A tailer thread follows the partition into memory; a record's
//! position is its offset.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{KafkaConfig, KafkaError};

/// How long an append waits for the broker's acknowledgement.
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Hands each delivery's offset (or error) back to the appending thread.
struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<mpsc::SyncSender<Result<i64, String>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, tx: Self::DeliveryOpaque) {
        let _ = tx.send(match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.to_string()),
        });
    }
}

/// What the tailer has read and not yet handed out.
#[derive(Default)]
struct Tail {
    records: VecDeque<(u64, Vec<u8>)>,
    /// Set when the tailer's consumer fails for good.
    failed: Option<String>,
}

/// The reports topic as an ordered journal.
pub struct ReportsTopic {
    topic: String,
    producer: BaseProducer<Deliveries>,
    tail: Arc<(Mutex<Tail>, Condvar)>,
    config: KafkaConfig,
}

impl std::fmt::Debug for ReportsTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportsTopic")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl ReportsTopic {
    /// Opens `[kafka.topics] reports` and reads it to its end before returning.
    ///
    /// # Errors
    /// When the topic is missing (create it with `crmpulse kafka-topics`) or a client
    /// cannot be made.
    pub fn open(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let topic = config.topics.reports.clone();
        let producer: BaseProducer<Deliveries> = config
            .producer_config(APPEND_TIMEOUT.as_millis() as u64)
            .set("linger.ms", "0")
            .create_with_context(Deliveries)?;
        let consumer: BaseConsumer = config
            .reader_config(&format!("reports-{}", std::process::id()))
            .create()?;
        let mut end =
            connectors::kafka::assign_from_start(&consumer, &topic).map_err(|e| match e {
                connectors::kafka::ConnectorError::MissingTopic(t) => KafkaError::MissingTopic(t),
                connectors::kafka::ConnectorError::Client(e) => KafkaError::Client(e),
            })?;
        let tail: Arc<(Mutex<Tail>, Condvar)> = Arc::default();
        // Read what the topic holds now, so the book opens complete.
        while !end.caught_up() {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    end.message(m.partition(), m.offset());
                    push(&tail, &m);
                }
                Some(Err(e)) => tracing::warn!(topic, error = %e, "reading the reports topic"),
                None => end.nothing_more(),
            }
        }
        let follower = Arc::clone(&tail);
        let name = topic.clone();
        std::thread::Builder::new()
            .name("crmpulse-reports-tail".into())
            .spawn(move || {
                loop {
                    match consumer.poll(Duration::from_millis(200)) {
                        Some(Ok(m)) => push(&follower, &m),
                        Some(Err(e)) => {
                            tracing::warn!(topic = name, error = %e, "reading the reports topic");
                        }
                        None => {}
                    }
                }
            })
            .map_err(|e| KafkaError::MissingTopic(format!("{topic}: {e}")))?;
        Ok(Self {
            topic,
            producer,
            tail,
            config: config.clone(),
        })
    }

    /// Appends `record` to partition 0 and returns its offset once acknowledged.
    ///
    /// # Errors
    /// When the broker does not acknowledge it within [`APPEND_TIMEOUT`].
    pub fn append(&self, record: &[u8]) -> Result<u64, String> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.producer
            .send(
                BaseRecord::<(), [u8], _>::with_opaque_to(&self.topic, Box::new(tx))
                    .partition(0)
                    .payload(record),
            )
            .map_err(|(e, _)| e.to_string())?;
        let deadline = Instant::now() + APPEND_TIMEOUT + Duration::from_secs(1);
        loop {
            self.producer.poll(Duration::from_millis(20));
            match rx.try_recv() {
                Ok(result) => {
                    return result.and_then(|o| {
                        u64::try_from(o)
                            .map_err(|_| format!("no offset in the acknowledgement ({o})"))
                    });
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {}
                Err(_) => return Err("the reports topic did not acknowledge the record".into()),
            }
        }
    }

    /// The records read at offsets `>= from` (those before are dropped), at most
    /// `max`, waiting up to `wait` for one.
    ///
    /// # Errors
    /// When the tailer has stopped.
    pub fn read(
        &self,
        from: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let (lock, ready) = &*self.tail;
        let deadline = Instant::now() + wait;
        let mut tail = lock.lock().map_err(|e| e.to_string())?;
        loop {
            while tail.records.front().is_some_and(|(p, _)| *p < from) {
                tail.records.pop_front();
            }
            if let Some(e) = &tail.failed {
                return Err(e.clone());
            }
            if !tail.records.is_empty() {
                return Ok(tail.records.iter().take(max).cloned().collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            tail = ready.wait_timeout(tail, left).map_err(|e| e.to_string())?.0;
        }
    }

    /// The record at `offset`, read with a consumer of its own.
    ///
    /// # Errors
    /// When the record cannot be read within 10 s.
    pub fn fetch(&self, offset: u64) -> Result<Option<Vec<u8>>, String> {
        let consumer: BaseConsumer = self
            .config
            .reader_config(&format!("reports-fetch-{}", std::process::id()))
            .create()
            .map_err(|e| e.to_string())?;
        let mut tpl = TopicPartitionList::new();
        let at = i64::try_from(offset).map_err(|e| e.to_string())?;
        tpl.add_partition_offset(&self.topic, 0, Offset::Offset(at))
            .map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if m.offset() == at => return Ok(m.payload().map(<[u8]>::to_vec)),
                Some(Ok(m)) if m.offset() > at => return Ok(None),
                Some(Err(e)) => return Err(e.to_string()),
                _ => {}
            }
        }
        Err(format!(
            "offset {offset} of {} was not read within 10 s",
            self.topic
        ))
    }
}

fn push(tail: &Arc<(Mutex<Tail>, Condvar)>, m: &rdkafka::message::BorrowedMessage<'_>) {
    let (lock, ready) = &**tail;
    let Ok(offset) = u64::try_from(m.offset()) else {
        return;
    };
    if let Ok(mut t) = lock.lock() {
        t.records
            .push_back((offset, m.payload().map(<[u8]>::to_vec).unwrap_or_default()));
        ready.notify_all();
    }
}
