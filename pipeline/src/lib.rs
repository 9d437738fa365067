//! The crmpulse pipeline: a timely/differential-dataflow job that incrementally
//! maintains every dashboard metric.
//!
//! - [`records`]: events routed to the entities they affect.
//! - [`metrics`]: one pure fold per entity family, and the facts it contributes.
//! - [`dataflow`]: the differential graph running those folds incrementally.
//! - [`entities`]: the per-entity fold operator that can forget a final entity.
//! - [`finalize`]: which entities are final, and the events refused for them.
//! - [`runtime`]: workers, the input clock, and the collector that releases output
//!   only at complete timestamps.
//! - [`sizes`]: the updates each arrangement holds, by operator.
//! - [`sink`]: outputs besides the view store: ClickHouse rollups and `crm.metrics.v1`.
//! - [`reference`]: a batch recomputation of the same facts, used by property tests
//!   and by `crmpulse bench --verify`.

pub mod dataflow;
pub mod entities;
pub mod finalize;
pub mod metrics;
pub mod records;
pub mod reference;
pub mod runtime;
pub mod sink;
pub mod sizes;

pub use finalize::Refused;
pub use runtime::{Pipeline, PipelineConfig, PipelineError, PipelineState, PipelineStateRef};
