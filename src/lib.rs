//! crmpulse as a library: everything the `crmpulse` binary runs, so that tests and
//! the benchmarks (the `crmpulse-bench` binary of `benches/`) drive the same code.
//! [`stack`] composes a source, the pipeline and the sinks from configuration (`demo`,
//! `run`, `serve`); the other modules are the commands' parts (configuration,
//! credentials, TLS, Kafka tools).

pub mod auth;
pub mod check;
pub mod config;
pub mod kafka;
pub mod keyring;
#[cfg(test)]
mod secrets_tests;
pub mod stack;
pub mod tls;
