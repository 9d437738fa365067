//! Reading `crm.metrics.v1`: every partition from its first record, up to the end of
//! the topic as it was at open ([`MetricsReader::caught_up`]). Turning the records
//! back into complete batches is `schemas::metric_records::Assembler`'s (pure logic,
//! shared with every consumer).

use std::time::Duration;

use connectors::kafka::{ReadToEnd, assign_from_start};
use rdkafka::consumer::BaseConsumer;
use rdkafka::{ClientConfig, Message as _};
use schemas::metric_records::{MetricRecord, RecordError};

use super::SinkError;

/// A reader of every partition of the metrics topic, from the start.
pub struct MetricsReader {
    consumer: BaseConsumer,
    topic: String,
    /// How far the read is from the end of the topic as it was at open.
    progress: ReadToEnd,
}

impl std::fmt::Debug for MetricsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsReader")
            .field("topic", &self.topic)
            .field("partitions", &self.progress.partitions())
            .field("behind", self.progress.behind())
            .finish()
    }
}

/// One record read, with where it was.
#[derive(Debug)]
pub struct ReadRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The decoded record.
    pub record: Result<MetricRecord, RecordError>,
}

impl MetricsReader {
    /// Assigns every partition of `topic` from its first offset. `consumer` is a
    /// consumer configuration (brokers, security, a group id; nothing is committed).
    /// Waits while the brokers are unreachable.
    ///
    /// # Errors
    /// [`SinkError::MissingTopic`] when the topic does not exist.
    pub fn open(consumer: &ClientConfig, topic: &str) -> Result<Self, SinkError> {
        let mut consumer_config = consumer.clone();
        consumer_config
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        let consumer: BaseConsumer = consumer_config.create()?;
        let progress = assign_from_start(&consumer, topic)?;
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            progress,
        })
    }

    /// The topic's partitions, sorted.
    pub fn partitions(&self) -> &[i32] {
        self.progress.partitions()
    }

    /// True once everything that was in the topic at [`Self::open`] has been read:
    /// every partition up to its high watermark at open, and then one poll that found
    /// nothing more.
    ///
    /// The second condition is for brokers whose high watermark lags (tansu 0.6; the
    /// rule is [`ReadToEnd`]'s): the sink's read-back must see the last batch's
    /// records beyond the mark, or it would publish their deltas a second time.
    pub fn caught_up(&self) -> bool {
        self.progress.caught_up()
    }

    /// The next record, waiting up to `timeout`. Broker errors are logged and
    /// waited out.
    pub fn poll(&mut self, timeout: Duration) -> Option<ReadRecord> {
        let Some(result) = self.consumer.poll(timeout) else {
            self.progress.nothing_more();
            return None;
        };
        match result {
            Ok(m) => {
                let (partition, offset) = (m.partition(), m.offset());
                self.progress.message(partition, offset);
                Some(ReadRecord {
                    partition,
                    offset,
                    record: MetricRecord::decode(m.payload().unwrap_or_default()),
                })
            }
            Err(e) => {
                tracing::warn!(topic = self.topic, error = %e, "metrics consumer error, continuing");
                None
            }
        }
    }
}
