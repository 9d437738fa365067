//! Kafka as crmpulse's production event log: the `[kafka]` configuration, topic
//! creation, the pipeline's event source with its dead-letter topic, and the
//! stateless HTTP ingest gateway. Topics, keys and delivery semantics are documented
//! in `docs/kafka.md`.
//!
//! - [`config`]: `[kafka]`, shared by every client.
//! - [`topics`]: explicit topic creation.
//! - [`source`]: reads `crm.events.v1` from the start; malformed messages go to
//!   [`dead_letter`].
//!
//! Reading a topic to its end (partitions, high watermarks, tansu's lagging mark) is
//! `connectors::kafka`'s, shared with the metrics sink's read-back.
//! - [`gateway`]: `POST /api/v1/events` producing to `crm.events.v1`.
//! - [`journal`]: `crm.reports.v1`, the report schedules' shared journal.

pub mod config;
pub mod dead_letter;
pub mod gateway;
pub mod journal;
pub mod source;
pub mod topics;

use rdkafka::types::RDKafkaErrorCode;

pub use config::{KafkaConfig, TopicsConfig};
pub use dead_letter::{DeadLetter, DeadLetters};
pub use source::{EventSource, SourcePosition};

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
    /// A checkpoint's source position is not of this topic (it was recreated, or the
    /// checkpoint is of another deployment's): the message it says it read last is
    /// not there.
    #[error("the checkpoint's position is not in {topic}: {reason}")]
    NotThisTopic {
        /// The topic.
        topic: String,
        /// What differs.
        reason: String,
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

impl From<connectors::kafka::ConnectorError> for KafkaError {
    fn from(e: connectors::kafka::ConnectorError) -> Self {
        match e {
            connectors::kafka::ConnectorError::Client(e) => Self::Client(e),
            connectors::kafka::ConnectorError::MissingTopic(topic) => Self::MissingTopic(topic),
        }
    }
}
