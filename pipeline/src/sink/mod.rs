//! Sinks: where the pipeline's consolidated [`MetricBatch`](schemas::metrics::MetricBatch)es
//! go besides the in-process view store.
//!
//! - [`clickhouse`]: rollup tables (and the raw events) for analysts' SQL.
//!
//! A Kafka sink for `crm.metrics.v1` sits beside it as `sink/kafka/`.

pub mod clickhouse;
