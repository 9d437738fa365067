//! Pipeline throughput: N simulated events (generated before the clock starts) pushed
//! through the pipeline in log-sized batches until every result is released.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::Pipeline;
use schemas::Clock;

use crate::harness::peak_rss_mib;
use crmpulse::config::Config;

/// Pushes `n` simulated events through the pipeline and prints events/s and peak
/// resident memory.
pub(crate) fn throughput(n: u64, config: &Config, clock: Clock) -> anyhow::Result<()> {
    // Restart the peak-RSS mark (Linux: writing 5 to clear_refs resets VmHWM), so the
    // figure is this run's, not an earlier run's in the same process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let gen_start = Instant::now();
    let now = clock.now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: 7,
            ..SimulatorConfig::default()
        },
        now - 365 * 86_400_000,
    );
    let mut events = Vec::with_capacity(n as usize);
    while (events.len() as u64) < n {
        let until = sim.now_ms() + 86_400_000;
        events.extend(sim.advance_to(until));
    }
    events.truncate(n as usize);
    let conversations = events
        .iter()
        .filter(|e| e.type_name() == "conversation_opened")
        .count();
    let days = (sim.now_ms() - (now - 365 * 86_400_000)) as f64 / 86_400_000.0;
    println!(
        "generated {} events ({conversations} conversations, {days:.0} simulated days) in {:.1}s (not timed below)",
        events.len(),
        gen_start.elapsed().as_secs_f64()
    );

    let released = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&released);
    let mut pipeline = Pipeline::start(&config.pipeline.runtime(clock), move |b| {
        sink.store(b.events_consumed, Ordering::Relaxed)
    })?;
    let start = Instant::now();
    let mut it = events.into_iter();
    loop {
        let batch: Vec<_> = it.by_ref().take(crmpulse::stack::READ_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        pipeline.push(batch)?;
    }
    pipeline.finish();
    let secs = start.elapsed().as_secs_f64();
    let done = released.load(Ordering::Relaxed);
    println!(
        "throughput: {done} events through the full-catalog pipeline in {secs:.2}s = {:.0} events/s (peak RSS {:.0} MiB)",
        done as f64 / secs,
        peak_rss_mib()
    );
    Ok(())
}
