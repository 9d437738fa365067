//! The ClickHouse sink (issue #5): rollup tables of the metric facts at 15-minute
//! grain, and the raw events, for analysts' plain SQL. See `docs/clickhouse.md`.
//!
//! - [`config`]: the `[clickhouse]` section.
//! - [`client`]: the HTTP interface (statements, JSONEachRow inserts).
//! - [`migrate`]: versioned migrations from `infra/clickhouse/`.
//! - [`rollup`]: which rows a fact contributes to.
//! - [`sink`]: absolute rows, batching, retries, backpressure, metrics.

pub mod client;
pub mod config;
pub mod migrate;
pub mod rollup;
pub mod sink;

pub use client::{Client, ClientError};
pub use config::ClickHouseConfig;
pub use migrate::{MigrateError, MigrateReport, migrate};
pub use sink::{ClickHouseSink, EventReader, SinkStats};
