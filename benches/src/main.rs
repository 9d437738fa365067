//! `crmpulse-bench`: the figures of docs/benchmarks.md, measured on this machine
//! against the `crmpulse` library, so they measure exactly the code that ships
//! without the shipped binary carrying the benchmarks.
//!
//! - `crmpulse-bench embedded`: the embedded stack ([`embedded`] runs the benchmarks
//!   below in order; each is one module).
//! - `crmpulse-bench kafka`: the Kafka production path ([`kafka`]).
//! - `crmpulse-bench sources`: the provider webhook routes (WhatsApp Cloud API,
//!   Chatwoot) into the embedded log ([`sources`]).
//! - `crmpulse-bench restart`: restart to caught-up against history length, with and
//!   without a checkpoint ([`restart`]).
//! - `crmpulse-bench sustained`: event-to-WebSocket latency under sustained load over
//!   a long history ([`sustained`]).
//!
//! Figures are printed, never asserted.

mod api;
mod clickhouse;
mod clients;
mod embedded;
mod harness;
mod history;
mod ingest;
mod kafka;
mod latency;
mod memory;
mod restart;
mod sources;
mod sustained;
mod throughput;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use schemas::Clock;

/// The same allocator as the `crmpulse` binary, so the in-process figures (throughput,
/// resident memory) are those of what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// crmpulse's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "crmpulse-bench", version, about)]
struct Cli {
    /// Configuration file (TOML), as `crmpulse --config`; see docs/operations.md.
    #[arg(long, global = true, env = "CRMPULSE_CONFIG")]
    config: Option<PathBuf>,
    /// Start the clock at this instant (RFC 3339) instead of reading the system clock,
    /// as `crmpulse --now`.
    #[arg(long, global = true, env = "CRMPULSE_NOW", value_name = "RFC3339")]
    now: Option<Clock>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest, throughput, API and event-to-WebSocket latency, live clients and memory
    /// of the embedded stack (and the ClickHouse sink with `--clickhouse-url`).
    Embedded(embedded::BenchArgs),
    /// Events/s from Kafka and producer → WebSocket latency (needs `[kafka]`).
    Kafka(kafka::KafkaBenchArgs),
    /// Payloads/s and events/s of the WhatsApp Cloud API and Chatwoot webhook routes:
    /// mapping only, then signed deliveries into a fresh event log on disk, and their
    /// redelivery.
    Sources(sources::SourcesArgs),
    /// Restart to caught-up of the embedded stack against history length: the whole
    /// log replayed, and from a checkpoint.
    Restart(restart::RestartArgs),
    /// Event-to-WebSocket latency while the embedded stack takes a sustained load
    /// (50k events/s by default) over a long history (90 days by default).
    Sustained(sustained::SustainedArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = crmpulse::config::load(cli.config.as_deref())?;
    let clock = cli.now.unwrap_or_default();
    match cli.command {
        Command::Embedded(args) => embedded::run(&args, &config, clock),
        Command::Kafka(args) => kafka::run(&args, &config, clock),
        Command::Sources(args) => sources::run(&args, &config, clock),
        Command::Restart(args) => restart::run(&args, &config, clock),
        Command::Sustained(args) => sustained::run(&args, &config, clock),
    }
}
