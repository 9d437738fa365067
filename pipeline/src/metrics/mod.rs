//! Metric families, one module per entity fold. Each module exposes a pure `fold`
//! over one entity's events and the [`schemas::metrics::Fact`]s it contributes; the
//! dataflow ([`crate::dataflow`]) runs them incrementally, tests run them directly.

pub mod agents;
pub mod automation;
pub mod broadcasts;
pub mod channel_health;
pub mod customers;
pub mod leads;
pub mod messages;
pub mod response_time;
pub mod tickets;
