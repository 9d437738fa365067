//! The contracts shared between crmpulse stages.
//!
//! - [`event`]: the input event contract, its validated Rust form, the canonical JSON
//!   form and the protobuf wire form ([`proto`]), with checked conversions between them.
//! - [`metrics`]: what the pipeline emits and the view store consumes, so that
//!   `query-api` never depends on `pipeline` internals.
//! - [`metric_records`]: the wire form of `crm.metrics.v1` (metric deltas and progress).
//! - [`time`]: bucket arithmetic both sides agree on.
//! - [`clock`]: the one source of "now" of a process (fixed by tests).
//! - [`secret`]: configuration secrets that never print.
//! - [`sharded`]: a hash map that grows a shard at a time (the large per-entity maps).

pub mod clock;
pub mod event;
pub mod metric_records;
pub mod metrics;
pub mod secret;
pub mod sharded;
pub mod time;

/// Protobuf types generated from `proto/crmpulse/v1/{events,metrics}.proto` by prost.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/crmpulse.v1.rs"));
}

pub use clock::Clock;
pub use event::{Event, EventError, Payload};
pub use secret::Secret;
