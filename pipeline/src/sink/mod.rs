//! Sinks: where the pipeline's consolidated [`MetricBatch`](schemas::metrics::MetricBatch)es
//! go besides the in-process view store.
//!
//! - [`clickhouse`]: rollup tables (and the raw events) for analysts' SQL.
//! - [`kafka`]: `crm.metrics.v1`, metric deltas and progress records, exactly once.

pub mod clickhouse;
pub mod kafka;
