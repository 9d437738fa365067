//! `[kafka]`: where the brokers are, what the topics are called and how clients
//! authenticate. One struct shared by every Kafka client of crmpulse (the pipeline's
//! source and sinks, the ingest gateway, `serve`, `tail-metrics`), so they always agree
//! on topic names and security settings.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Longest time a consumer's fetch waits at the broker for new data, in ms.
pub const FETCH_WAIT_MS: u32 = 20;

/// Kafka connection and topics.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port..]` (librdkafka `bootstrap.servers`).
    pub brokers: String,
    /// Consumer group id the pipeline's consumer names itself with (broker-side
    /// visibility). It commits no offsets: the pipeline rebuilds its state from the
    /// start of the events topic on every start, see docs/kafka.md.
    pub group_id: String,
    /// Topic names.
    pub topics: TopicsConfig,
    /// Partitions of each topic that `crmpulse kafka-topics` creates. The metric
    /// topic's partition of a fact is `account_id % partitions`.
    pub partitions: i32,
    /// Replication factor of the topics that `crmpulse kafka-topics` creates.
    pub replication_factor: i32,
    /// Extra librdkafka properties for every client, passed through as they are:
    /// security (`security.protocol`, `sasl.mechanisms`, `sasl.username`,
    /// `sasl.password`, `ssl.ca.location`, ..) and tuning. They override crmpulse's
    /// own settings, except the delivery guarantees the producers rely on.
    pub properties: BTreeMap<String, String>,
}

/// Whether a librdkafka property holds a secret (`sasl.password`,
/// `ssl.key.password`, `ssl.keystore.password`, `sasl.oauthbearer.client.secret`,
/// `ssl.key.pem`, `sasl.oauthbearer.config`, ..). Errs on the side of hiding: any
/// name mentioning a password, secret, key material, token or credentials.
fn is_secret(property: &str) -> bool {
    let property = property.to_ascii_lowercase();
    [
        "password",
        "secret",
        "key.pem",
        "token",
        "oauthbearer.config",
        "jaas",
        "credential",
    ]
    .iter()
    .any(|s| property.contains(s))
}

impl std::fmt::Debug for KafkaConfig {
    /// Secret properties print as `[redacted]`, so the configuration can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret(k) {
                        "[redacted]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("properties", &properties)
            .finish()
    }
}

/// `[kafka.topics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Input events: protobuf `crmpulse.v1.Event`, key `account_id:conversation_id`.
    pub events: String,
    /// Rejected input: the original bytes, with the reason and source in headers.
    pub dead_letters: String,
    /// Output: protobuf `crmpulse.v1.MetricRecord` (metric deltas and progress).
    pub metrics: String,
    /// Report schedules, slot claims and runs (JSON records, one partition): the
    /// journal every scheduler of the deployment shares (docs/reports.md).
    pub reports: String,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            events: "crm.events.v1".into(),
            dead_letters: "crm.events.dlq.v1".into(),
            metrics: "crm.metrics.v1".into(),
            reports: "crm.reports.v1".into(),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "crmpulse-pipeline".into(),
            topics: TopicsConfig::default(),
            partitions: 4,
            replication_factor: 1,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The librdkafka configuration every client starts from: the brokers, then the
    /// pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// A producer configuration that never loses or duplicates a message it was
    /// handed: idempotent, `acks=all`, in order. `timeout_ms` bounds how long a
    /// message may wait for the broker (0 = forever).
    pub fn producer_config(&self, timeout_ms: u64) -> ClientConfig {
        let mut c = self.client_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("message.timeout.ms", timeout_ms.to_string())
            .set("linger.ms", "5");
        c
    }

    /// A consumer configuration for reading partitions it assigns itself, from the
    /// offsets it chooses, without committing anything. A fetch waits at most
    /// [`FETCH_WAIT_MS`] for data (librdkafka's default of 500 ms would sit in the
    /// latency of every hop) unless `fetch.wait.max.ms` is set in the properties.
    pub fn reader_config(&self, group_suffix: &str) -> ClientConfig {
        let mut c = self.client_config();
        if !self.properties.contains_key("fetch.wait.max.ms") {
            c.set("fetch.wait.max.ms", FETCH_WAIT_MS.to_string());
        }
        c.set("group.id", format!("{}-{group_suffix}", self.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_properties_reach_librdkafka_but_not_over_the_delivery_guarantees() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("security.protocol".into(), "SASL_SSL".into());
        config.properties.insert("acks".into(), "1".into());
        let c = config.producer_config(0);
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }

    #[test]
    fn debug_output_hides_secret_properties() {
        let mut config = KafkaConfig::default();
        for (k, v) in [
            ("sasl.password", "hunter2-very-secret"),
            ("ssl.key.password", "hunter2-key-pass"),
            ("ssl.keystore.password", "hunter2-keystore"),
            ("sasl.oauthbearer.client.secret", "hunter2-oauth"),
            ("sasl.oauthbearer.config", "principal=x secret=hunter2-cfg"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY----- hunter2-pem"),
        ] {
            config.properties.insert(k.into(), v.into());
        }
        config
            .properties
            .insert("sasl.username".into(), "crmpulse".into());
        for printed in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(
                printed.contains("crmpulse") && printed.contains("[redacted]"),
                "{printed}"
            );
        }
        // librdkafka's own configuration prints none of them either.
        let printed = format!("{:?}", config.producer_config(0));
        assert!(!printed.contains("hunter2-very-secret"), "{printed}");
    }
}
