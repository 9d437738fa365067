//! Getting events into crmpulse.
//!
//! - [`log`]: the embedded durable, deduplicating event log (redb).
//! - [`http`]: `POST /api/v1/events` (JSON array or NDJSON), per-event validation.
//! - [`auth`]: per-account ingest keys and webhook signatures.
//! - [`kafka`]: Kafka as the production event log: source, dead letters, gateway.
//! - [`sources`]: provider webhooks (WhatsApp Cloud API, Chatwoot) mapped to events.
//! - [`replay`]: bulk load of NDJSON files.
//! - [`simulator`]: a seeded, realistic CRM workload for demos, tests and benchmarks.

pub mod auth;
pub mod http;
pub mod kafka;
pub mod log;
pub mod replay;
pub mod simulator;
pub mod sources;

pub use log::{AppendOutcome, DeadLetter, EventLog, LogError};
