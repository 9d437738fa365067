//! Where the pipeline's metric batches go besides the in-process view store.
//!
//! - [`kafka`]: `crm.metrics.v1`, metric deltas and progress records, exactly once.

pub mod kafka;
