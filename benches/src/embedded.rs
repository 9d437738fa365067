//! `crmpulse-bench embedded`: the embedded stack's figures (what `crmpulse bench`
//! printed before the benchmarks left the shipped binary): ingest with 1, 8 and 64
//! writers, pipeline throughput, API latency over history, event-to-WebSocket latency,
//! live clients held, the memory run and, with `--clickhouse-url`, the ClickHouse
//! sink. One module per benchmark; this one only holds the flags and the order.

use clap::Args;
use schemas::Clock;

use crate::harness::num_cores;
use crmpulse::config::Config;

/// Arguments of `crmpulse-bench embedded`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to push through the pipeline for the throughput figure.
    #[arg(long, default_value_t = 5_000_000)]
    pub events: u64,
    /// Events per second for the latency figure.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Seconds of steady load for each latency run.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Skip the throughput run.
    #[arg(long)]
    pub skip_throughput: bool,
    /// Skip the latency runs.
    #[arg(long)]
    pub skip_latency: bool,
    /// Skip the API run (memory per conversation, section latency over history).
    #[arg(long)]
    pub skip_api: bool,
    /// Days of simulated history behind the API run.
    #[arg(long, default_value_t = 90)]
    pub api_days: i64,
    /// Requests per section and range in the API run.
    #[arg(long, default_value_t = 200)]
    pub api_requests: usize,
    /// ClickHouse HTTP URL: also measure rollup rows/s written and the sink's lag
    /// while the pipeline replays `--clickhouse-events` at full speed (database
    /// `crmpulse_bench`, recreated).
    #[arg(long)]
    pub clickhouse_url: Option<String>,
    /// Events replayed for the ClickHouse figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub clickhouse_events: u64,
    /// Skip the ingest run (acknowledged events/s and POST latency with 1, 8 and 64
    /// concurrent writers).
    #[arg(long)]
    pub skip_ingest: bool,
    /// Events each ingest writer count POSTs in all, in bodies of 1,000.
    #[arg(long, default_value_t = 400_000)]
    pub ingest_events: u64,
    /// Live WebSocket clients to hold for the memory-per-client figure (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    pub clients: usize,
    /// Skip the memory run (a `crmpulse run` child process: resident memory idle, after
    /// distinct long-range queries, after live subscriptions).
    #[arg(long)]
    pub skip_memory: bool,
    /// Days of simulated history behind the memory run.
    #[arg(long, default_value_t = 30)]
    pub memory_days: i64,
    /// Distinct 400-day queries of the memory run.
    #[arg(long, default_value_t = 300)]
    pub memory_queries: usize,
    /// Live subscriptions of the memory run (16 per connection).
    #[arg(long, default_value_t = 1_000)]
    pub memory_subscriptions: usize,
    /// The `crmpulse` binary the memory run starts (default: the one built next to
    /// this benchmark, `target/<profile>/crmpulse`).
    /// Measure events/s after loading each of these history lengths, in days (e.g.
    /// `30,90,365`); off when empty.
    #[arg(long, value_delimiter = ',')]
    pub history_days: Vec<i64>,
    #[arg(long, env = "CRMPULSE_BIN")]
    pub crmpulse_bin: Option<std::path::PathBuf>,
}

/// Runs the selected benchmarks and prints their figures.
pub fn run(args: &BenchArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    println!(
        "crmpulse-bench embedded on {} cores, {} pipeline workers",
        num_cores(),
        config.pipeline.workers
    );
    // The API run first: its memory figure is the growth of this process's resident
    // memory, which only means something from a clean start (memory an earlier run
    // freed is returned to the system while the history builds, 2026-12-02).
    if !args.skip_api {
        crate::api::api(args, config, clock)?;
    }
    if let Some(url) = &args.clickhouse_url {
        crate::clickhouse::clickhouse(url, args.clickhouse_events, config, clock)?;
    }
    if !args.skip_ingest {
        let runtime = tokio::runtime::Runtime::new()?;
        for writers in [1, 8, 64] {
            runtime.block_on(crate::ingest::ingest(
                args.ingest_events,
                writers,
                config,
                clock,
            ))?;
        }
    }
    if !args.skip_throughput {
        crate::throughput::throughput(args.events, config, clock)?;
    }
    if !args.history_days.is_empty() {
        crate::history::history(&args.history_days, config, clock)?;
    }
    if !args.skip_latency {
        let runtime = tokio::runtime::Runtime::new()?;
        for coalesce_ms in [config.live.coalesce_ms, 50] {
            runtime.block_on(crate::latency::latency(args, config, coalesce_ms, clock))?;
        }
    }
    if args.clients > 0 {
        tokio::runtime::Runtime::new()?.block_on(crate::clients::clients(
            args.clients,
            config,
            clock,
        ))?;
    }
    if !args.skip_memory {
        tokio::runtime::Runtime::new()?.block_on(crate::memory::run(
            &crate::memory::MemoryArgs {
                binary: crate::memory::crmpulse_binary(args.crmpulse_bin.as_deref())?,
                days: args.memory_days,
                queries: args.memory_queries,
                subscriptions: args.memory_subscriptions,
            },
            config,
            clock,
        ))?;
    }
    Ok(())
}
