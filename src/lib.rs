//! crmpulse as a library: everything the `crmpulse` binary runs, so that tests and
//! benchmarks drive the same code. [`stack`] composes a source, the pipeline and the
//! sinks from configuration (`demo`, `run`, `serve`); the other modules are the
//! commands' parts (configuration, credentials, TLS, Kafka tools, benchmarks).

pub mod auth;
pub mod bench;
pub mod bench_memory;
pub mod config;
pub mod kafka;
pub mod kafka_bench;
pub mod keyring;
#[cfg(test)]
mod secrets_tests;
pub mod stack;
pub mod tls;
