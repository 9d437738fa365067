//! Creating crmpulse's topics explicitly (`crmpulse kafka-topics`), rather than
//! relying on broker-side auto-creation, so partitions and retention are chosen.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaConfig, KafkaError};

/// Creates the events, dead-letter and metrics topics with `config.partitions`
/// partitions and unlimited retention (the pipeline rebuilds from the events topic and
/// the metrics topic is the consumers' source of truth). Topics that exist already
/// are left as they are. Returns the names created.
///
/// # Errors
/// [`KafkaError::Client`] when the brokers cannot be reached or refuse a topic.
pub async fn create_topics(config: &KafkaConfig) -> Result<Vec<String>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let names = [
        &config.topics.events,
        &config.topics.dead_letters,
        &config.topics.metrics,
    ];
    let mut topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            )
            .set("retention.ms", "-1")
        })
        .collect();
    // The reports journal has one partition: its order decides which claim of a slot
    // wins. It is kept (schedules live in it); runs past the history are ignored.
    topics.push(
        NewTopic::new(
            &config.topics.reports,
            1,
            TopicReplication::Fixed(config.replication_factor),
        )
        .set("retention.ms", "-1"),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(KafkaError::CreateTopic { name, code }),
        }
    }
    Ok(created)
}
