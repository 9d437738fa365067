//! The ClickHouse sink at full replay rate: rollup rows/s written and the sink's lag.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::Pipeline;
use schemas::Clock;

use crmpulse::config::Config;

/// Replays `n` simulated events through the pipeline at full speed with the ClickHouse
/// sink attached (backpressure included) and prints rollup rows/s written and the
/// sink's lag behind the pipeline.
pub(crate) fn clickhouse(url: &str, n: u64, config: &Config, clock: Clock) -> anyhow::Result<()> {
    use pipeline::sink::clickhouse::{ClickHouseConfig, ClickHouseSink, Client};

    let ch_config = ClickHouseConfig {
        url: url.to_owned(),
        database: "crmpulse_bench".into(),
        raw_events: false,
        ..config.clickhouse.clone()
    };
    Client::new(&ch_config)
        .query_server("DROP DATABASE IF EXISTS crmpulse_bench")
        .context("dropping the bench database")?;
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

    let sink = Arc::new(ClickHouseSink::start(ch_config, None)?);
    // Let the sink connect and migrate before the clock starts.
    let connecting = Instant::now();
    while !sink.connected() {
        anyhow::ensure!(
            connecting.elapsed() < Duration::from_secs(30),
            "ClickHouse at {url} did not answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let fed = Arc::clone(&sink);
    let mut pipeline = Pipeline::start(&config.pipeline.runtime(clock), move |b| fed.accept(&b))?;
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (sink, sampling) = (Arc::clone(&sink), Arc::clone(&sampling));
        std::thread::spawn(move || {
            let mut lags = Histogram::<u64>::new(3).expect("valid histogram");
            while sampling.load(Ordering::Relaxed) {
                let _ = lags.record(sink.stats().lag_ms());
                std::thread::sleep(Duration::from_millis(50));
            }
            lags
        })
    };
    let start = Instant::now();
    let mut it = events.into_iter();
    loop {
        let batch: Vec<_> = it.by_ref().take(crmpulse::stack::READ_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        while !sink.wait_for_room(Duration::from_millis(100)) {}
        pipeline.push(batch)?;
    }
    pipeline.finish();
    let pipeline_secs = start.elapsed().as_secs_f64();
    let behind_at_end = sink.stats().buffered_rows;
    loop {
        let s = sink.stats();
        if s.buffered_rows == 0 && s.written_progress >= s.accepted_progress {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let total_secs = start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let lags = sampler.join().expect("sampler thread");
    let s = sink.stats();
    sink.shutdown(Duration::from_secs(5));
    println!(
        "clickhouse: {n} events replayed in {pipeline_secs:.2}s ({:.0} events/s with the sink attached); \
         {} rollup rows written in {} inserts, {:.0} rows/s; caught up {:.2}s after the pipeline \
         ({behind_at_end} rows behind at its end); lag p50 {} ms, p99 {} ms, max {} ms; {} failures; \
         inside INSERTs {:.1}s = {:.0} rows/s",
        n as f64 / pipeline_secs,
        s.rows_written,
        s.batches,
        s.rows_written as f64 / total_secs,
        total_secs - pipeline_secs,
        lags.value_at_quantile(0.5),
        lags.value_at_quantile(0.99),
        lags.max(),
        s.failures,
        s.insert_micros as f64 / 1e6,
        s.rows_written as f64 / (s.insert_micros.max(1) as f64 / 1e6),
    );
    Ok(())
}
