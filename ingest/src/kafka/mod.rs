//! Kafka as crmpulse's production event log: the `[kafka]` configuration, topic
//! creation, the pipeline's event source with its dead-letter topic, and the
//! stateless HTTP ingest gateway. Topics, keys and delivery semantics are documented
//! in `docs/kafka.md`.
//!
//! - [`config`]: `[kafka]`, shared by every client.
//! - [`topics`]: explicit topic creation.
//! - [`source`]: reads `crm.events.v1` from the start; malformed messages go to
//!   [`dead_letter`].
//! - [`gateway`]: `POST /api/v1/events` producing to `crm.events.v1`.

pub mod config;
pub mod dead_letter;
pub mod gateway;
pub mod source;
pub mod topics;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;

pub use config::{KafkaConfig, TopicsConfig};
pub use dead_letter::{DeadLetter, DeadLetters};
pub use source::EventSource;

/// Errors of crmpulse's Kafka clients.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka refused a configuration or failed a request.
    #[error("kafka client error")]
    Client(#[from] rdkafka::error::KafkaError),
    /// A topic does not exist (create it with `crmpulse kafka-topics`).
    #[error("topic {0} does not exist or has no partitions")]
    MissingTopic(String),
    /// The broker refused to create a topic.
    #[error("creating topic {name}: {code}")]
    CreateTopic {
        /// The topic.
        name: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// A message could not be delivered.
    #[error("delivering to {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
}

/// How long a metadata or watermark request may take before it is retried.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The partitions of `topic` and each one's high watermark (the offset the next
/// message will get). Waits while the brokers are unreachable.
///
/// # Errors
/// [`KafkaError::MissingTopic`] when the topic does not exist.
pub fn high_watermarks<C: Consumer>(
    consumer: &C,
    topic: &str,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let partitions = loop {
        match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
            Ok(md) => {
                let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                    return Err(KafkaError::MissingTopic(topic.into()));
                };
                if t.error().is_some() || t.partitions().is_empty() {
                    return Err(KafkaError::MissingTopic(topic.into()));
                }
                break t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>();
            }
            Err(e) => {
                tracing::warn!(topic, error = %e, "metadata unavailable, retrying");
                std::thread::sleep(Duration::from_millis(500));
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
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        };
        marks.insert(p, high);
    }
    Ok(marks)
}
