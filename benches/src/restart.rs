//! Restart to caught-up against history length: D days of simulated traffic are
//! written into a fresh event log (not timed), then the embedded stack is started on
//! it three times, as `crmpulse run` starts it ([`Stack::build`]):
//!
//! 1. with checkpoints off: the whole log replayed (what every start cost before
//!    checkpoints);
//! 2. with checkpoints on and none yet: the same replay, then the first checkpoint
//!    (its write is timed from the stack's own log line, and its size printed);
//! 3. again: the checkpoint loaded and only the live entities' events replayed.
//!
//! "Caught up" is what `/readyz` waits for: the log read to what it held at start.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crmpulse::config::Config;
use crmpulse::stack::{Source, Stack};
use ingest::EventLog;
use ingest::simulator::{Simulator, SimulatorConfig};
use schemas::Clock;

use crate::harness::rss_mib;

const DAY_MS: i64 = 86_400_000;

/// `crmpulse-bench restart`.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// Days of simulated history, one measurement each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "35")]
    pub days: Vec<i64>,
    /// Where the data dirs go (a temporary directory under it per run).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs the measurement once per history length.
pub fn run(args: &RestartArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    for &days in &args.days {
        let tmp = crate::harness::tempdir_under(args.dir.as_deref())?;
        run_one(days, tmp.path(), config, clock)?;
    }
    Ok(())
}

/// Writes `days` of simulated history of account 1 ending at the clock's now into a
/// fresh event log in `dir`; returns the log's length and the simulator, which can go
/// on past the history.
pub(crate) fn write_history(
    dir: &Path,
    days: i64,
    config: &Config,
    clock: Clock,
) -> anyhow::Result<(u64, Simulator)> {
    let log = EventLog::open_with(dir, config.pipeline.log_options(clock))?;
    let end = clock.now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: 11,
            ..SimulatorConfig::default()
        },
        end - days * DAY_MS,
    );
    while sim.now_ms() < end {
        let events = sim.advance_to((sim.now_ms() + DAY_MS / 4).min(end));
        for chunk in events.chunks(50_000) {
            log.append(chunk)?;
        }
    }
    Ok((log.len(), sim))
}

/// Starts the stack on `dir` and waits until it has caught up; returns the time it
/// took and the stack.
fn start(dir: &Path, config: &Config, clock: Clock) -> anyhow::Result<(Duration, Stack)> {
    let started = Instant::now();
    let stack = Stack::build(config, Source::EventLog(dir.to_owned()), clock)?;
    while !stack.started() {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((started.elapsed(), stack))
}

fn run_one(days: i64, dir: &Path, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let (events, _) = write_history(dir, days, config, clock)?;
    let log_bytes = std::fs::metadata(dir.join("events.redb"))?.len();
    println!(
        "\nrestart, {days} days of history: {events} events, log {:.1} MB",
        log_bytes as f64 / 1e6
    );

    let mut off = config.clone();
    off.pipeline.checkpoint_interval_secs = 0;
    let (full, stack) = start(dir, &off, clock)?;
    let full_rss = rss_mib();
    stack.shutdown();
    println!(
        "  whole log replayed (no checkpoint):      {:>7.2} s  ({:.0} events/s, RSS {full_rss:.0} MiB)",
        full.as_secs_f64(),
        events as f64 / full.as_secs_f64()
    );

    // A long interval: the only checkpoint is the one after the start's replay.
    let mut on = config.clone();
    on.pipeline.checkpoint_interval_secs = 3_600;
    let checkpoint = dir.join("checkpoint.bin");
    let (first, stack) = start(dir, &on, clock)?;
    let written = Instant::now();
    while !checkpoint.exists() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let write_wait = written.elapsed();
    stack.shutdown();
    println!(
        "  first start with checkpoints:            {:>7.2} s  (then the checkpoint, {:.1} MB, done {:.2} s after)",
        first.as_secs_f64(),
        std::fs::metadata(&checkpoint)?.len() as f64 / 1e6,
        write_wait.as_secs_f64()
    );

    let (restart, stack) = start(dir, &on, clock)?;
    let restart_rss = rss_mib();
    let resumed = stack.resumed_from;
    stack.shutdown();
    println!(
        "  restart from the checkpoint:             {:>7.2} s  (resumed at {}, RSS {restart_rss:.0} MiB, not isolated: same process)",
        restart.as_secs_f64(),
        resumed.map_or("- (not used!)".to_owned(), |p| p.to_string()),
    );
    Ok(())
}
