//! The partitions of a topic and each one's high watermark, fetched from the brokers
//! (waiting while they are unreachable), and the assignment of every partition from
//! its first offset that a read-to-the-end starts with.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::{ConnectorError, ReadToEnd};

/// How long a metadata or watermark request may take before it is retried.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before retrying a request the brokers did not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The partitions of `topic` and each one's high watermark (the offset the broker
/// says the next message will get; see [`ReadToEnd`] for brokers where it lags).
/// Waits while the brokers are unreachable.
///
/// # Errors
/// [`ConnectorError::MissingTopic`] when the topic does not exist or has no
/// partitions.
pub fn high_watermarks<C: Consumer>(
    consumer: &C,
    topic: &str,
) -> Result<HashMap<i32, i64>, ConnectorError> {
    let partitions = loop {
        match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
            Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    break t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>();
                }
                _ => return Err(ConnectorError::MissingTopic(topic.to_owned())),
            },
            Err(e) => {
                tracing::warn!(topic, error = %e, "metadata unavailable, retrying");
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    };
    let mut marks = HashMap::new();
    for p in partitions {
        let high = loop {
            match consumer.fetch_watermarks(topic, p, METADATA_TIMEOUT) {
                Ok((_, high)) => break high,
                Err(e) => {
                    tracing::warn!(topic, partition = p, error = %e, "watermarks unavailable, retrying");
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
        };
        marks.insert(p, high);
    }
    Ok(marks)
}

/// Assigns every partition of `topic` to `consumer` from its first offset and
/// returns the tracker of its high watermarks as they were just before: feed it
/// what the consumer's polls return to learn when the topic has been read to its
/// end. Waits while the brokers are unreachable.
///
/// # Errors
/// [`ConnectorError::MissingTopic`] when the topic does not exist;
/// [`ConnectorError::Client`] when librdkafka refuses the assignment.
pub fn assign_from_start<C: Consumer>(
    consumer: &C,
    topic: &str,
) -> Result<ReadToEnd, ConnectorError> {
    assign_from(consumer, topic, &HashMap::new(), &HashMap::new())
}

/// [`assign_from_start`] for a reader that goes on at each partition's offset in
/// `next` (a resume from a checkpoint), fetching from `fetch_from` (at or before
/// `next`: the caller skips what lies before `next`; see
/// `ingest::kafka::EventSource::resume` for why); partitions in neither, new since,
/// from their first offset.
///
/// # Errors
/// As [`assign_from_start`].
pub fn assign_from<C: Consumer>(
    consumer: &C,
    topic: &str,
    next: &HashMap<i32, i64>,
    fetch_from: &HashMap<i32, i64>,
) -> Result<ReadToEnd, ConnectorError> {
    let marks = high_watermarks(consumer, topic)?;
    let tracker = ReadToEnd::starting_at(marks, next);
    let mut tpl = TopicPartitionList::new();
    for &p in tracker.partitions() {
        let offset = fetch_from
            .get(&p)
            .or(next.get(&p))
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, p, offset)?;
    }
    consumer.assign(&tpl)?;
    Ok(tracker)
}
