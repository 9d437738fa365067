//! Kafka helpers shared by every crmpulse client that reads a topic from its start:
//!
//! - [`catch_up`]: [`ReadToEnd`], the pure rule for "everything that was in the topic
//!   when the reader opened has been read" (with tansu 0.6's lagging end offset).
//! - [`watermarks`]: the partitions of a topic and their high watermarks, and
//!   [`assign_from_start`], which assigns them all from the first offset and returns
//!   the tracker.

pub mod catch_up;
pub mod watermarks;

pub use catch_up::ReadToEnd;
pub use watermarks::{assign_from, assign_from_start, high_watermarks};

/// Errors of the shared Kafka helpers.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// librdkafka refused a configuration or failed a request.
    #[error("kafka client error")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The topic does not exist or has no partitions.
    #[error("topic {0} does not exist or has no partitions")]
    MissingTopic(String),
}
