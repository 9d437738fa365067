//! Client plumbing that more than one crmpulse connector needs, kept below `ingest`
//! and `pipeline` so both use one copy: today, reading a Kafka topic to its end
//! ([`kafka`]). `schemas` stays free of client libraries; this crate is where
//! rdkafka-facing helpers shared across stages go.

pub mod kafka;
