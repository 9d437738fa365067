//! Events/s against history length: the pipeline is loaded with D days of simulated
//! history (not timed), then the next simulated week is pushed in live-sized batches
//! and timed until every result is released. If an event's cost grew with the history
//! of the entity it touches, the figure would fall as D grows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::Pipeline;
use schemas::{Clock, Event};

use crate::harness::{peak_rss_mib, rss_mib};
use crmpulse::config::Config;

const DAY_MS: i64 = 86_400_000;

/// The timed window after the history, in days.
const WINDOW_DAYS: i64 = 7;

/// The batch size of the timed window: what a live source hands the pipeline at a time.
const LIVE_BATCH: usize = 1_000;

/// Runs the measurement once per history length in `days`.
pub(crate) fn history(days: &[i64], config: &Config, clock: Clock) -> anyhow::Result<()> {
    for &d in days {
        run_one(d, config, clock)?;
    }
    Ok(())
}

fn run_one(days: i64, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let end = clock.now_ms();
    let start = end - (days + WINDOW_DAYS) * DAY_MS;
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: 11,
            ..SimulatorConfig::default()
        },
        start,
    );
    let history = sim.advance_to(end - WINDOW_DAYS * DAY_MS);
    let window = sim.advance_to(end);
    let entity_events = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e.type_name(), "agent_status_changed" | "channel_health"))
            .count()
    };

    let released = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&released);
    let runtime = pipeline::PipelineConfig {
        arrangement_sizes: true,
        ..config.pipeline.runtime(clock)
    };
    let mut pipeline = Pipeline::start(&runtime, move |b| {
        sink.store(b.events_consumed, Ordering::Relaxed)
    })?;
    let wait_for = |n: u64| {
        while released.load(Ordering::Relaxed) < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let load = Instant::now();
    let history_len = history.len();
    let history_entity = entity_events(&history);
    let mut it = history.into_iter();
    loop {
        let batch: Vec<_> = it.by_ref().take(crmpulse::stack::READ_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        pipeline.push(batch)?;
    }
    // The history's buffer (16.6M events at 365 days) is not the pipeline's memory.
    drop(it);
    wait_for(pipeline.pushed());
    let load_secs = load.elapsed().as_secs_f64();
    let loaded_rss = rss_mib();

    let window_len = window.len();
    let window_entity = entity_events(&window);
    let timed = Instant::now();
    for batch in window.chunks(LIVE_BATCH) {
        pipeline.push(batch.to_vec())?;
    }
    wait_for(pipeline.pushed());
    let secs = timed.elapsed().as_secs_f64();
    let arranged = pipeline.arranged().by_operator();
    let entities = pipeline.entities();
    pipeline.finish();
    println!(
        "history {days} days ({history_len} events, {history_entity} agent/channel; loaded in {load_secs:.1}s, RSS {loaded_rss:.0} MiB): \
         the next {WINDOW_DAYS} days' {window_len} events ({window_entity} agent/channel) in batches of {LIVE_BATCH} took {secs:.2}s = {:.0} events/s (peak RSS {:.0} MiB)",
        window_len as f64 / secs,
        peak_rss_mib()
    );
    let total: i64 = arranged.iter().map(|(_, n)| n).sum();
    let (live, final_) = entities.unwrap_or_default();
    println!(
        "  entities live {live}, final {final_}; updates held in arrangements: {total} in all, the largest:"
    );
    for (operator, n) in arranged.iter().take(12) {
        println!("    {n:>10}  {operator}");
    }
    Ok(())
}
