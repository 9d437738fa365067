//! API latency over history: memory per million conversations, then every section
//! timed through the router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::Pipeline;
use schemas::Clock;

use crate::embedded::BenchArgs;
use crate::harness::rss_mib;
use crmpulse::config::Config;

/// Builds the view store from `api_days` of simulated history (generated and pushed a
/// day at a time, so the events themselves are never all in memory), reports resident
/// memory per million conversations, then times every section through the router.
pub(crate) fn api(args: &BenchArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    use tower::ServiceExt as _;

    let before = rss_mib();
    let store = Arc::new(query_api::ViewStore::default());
    let sink = Arc::clone(&store);
    let mut pipeline = Pipeline::start(&config.pipeline.runtime(clock), move |b| sink.apply(b))?;
    let now = clock.now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: 11,
            ..SimulatorConfig::default()
        },
        now - args.api_days * 86_400_000,
    );
    let (mut events, mut conversations) = (0u64, 0u64);
    let start = Instant::now();
    while sim.now_ms() < now {
        let day = sim.advance_to((sim.now_ms() + 86_400_000).min(now));
        events += day.len() as u64;
        conversations += day
            .iter()
            .filter(|e| e.type_name() == "conversation_opened")
            .count() as u64;
        for chunk in day.chunks(20_000) {
            pipeline.push(chunk.to_vec())?;
        }
    }
    // Let the clock pass the last batch so everything is released, then keep the store.
    pipeline.advance_to(pipeline.time() + 1)?;
    while store.read(|s| s.events_consumed) < events {
        std::thread::sleep(Duration::from_millis(20));
    }
    let built = start.elapsed().as_secs_f64();
    let after = rss_mib();
    let (live, finalized) = pipeline.entities().unwrap_or((0, 0));
    println!(
        "api: {} days of history, {events} events, {conversations} conversations, built in {built:.1}s; resident memory {:.0} MiB → {:.0} MiB = {:.0} MiB per million conversations (pipeline state + view store); entities live {live}, final {finalized}",
        args.api_days,
        before,
        after,
        (after - before) / conversations.max(1) as f64 * 1e6
    );

    let mut state = query_api::AppState::new(Arc::clone(&store));
    state.clock = clock;
    state.settings = query_api::Settings::new(config.accounts.clone());
    // Cold figures: every request computes its body (shared bodies would answer all
    // but the first request of each view from memory).
    state.bodies = None;
    let app = query_api::router(state);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let today = chrono::DateTime::from_timestamp_millis(clock.now_ms())
        .unwrap_or_default()
        .date_naive();
    let from_90 = today - chrono::Days::new(args.api_days as u64 - 1);
    // Every section, then the executive summary built from five of them, as JSON and
    // rendered as a PDF, then the whole dashboard (every section and the summary) as
    // one PDF by the same renderer the scheduled reports use.
    let paths: Vec<String> = query_api::sections::SECTIONS
        .iter()
        .map(|s| format!("/api/dashboard/{s}"))
        .chain([
            "/api/reports/summary".into(),
            "/api/reports/summary.pdf".into(),
            "/api/reports/dashboard.pdf?sections=summary,kpi,conversation-effectiveness,whatsapp-performance,customer-load,agent-productivity,automation-impact,business-impact".into(),
        ])
        .collect();
    for path in &paths {
        let name = path.rsplit('/').next().unwrap_or(path);
        let name = name.split('?').next().unwrap_or(name);
        let sep = if path.contains('?') { '&' } else { '?' };
        for (label, query) in [
            ("today", String::new()),
            (
                "90 days",
                format!("{sep}from={from_90}&to={}", today + chrono::Days::new(1)),
            ),
        ] {
            let uri = format!("{path}{query}");
            let mut hist = Histogram::<u64>::new(3)?;
            let mut bytes = 0;
            for _ in 0..args.api_requests {
                let request = axum::http::Request::get(&uri).body(axum::body::Body::empty())?;
                let t = Instant::now();
                let response = runtime.block_on(app.clone().oneshot(request))?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "{uri}: {}",
                    response.status()
                );
                let body =
                    runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX))?;
                hist.record(t.elapsed().as_micros() as u64)?;
                bytes = body.len();
            }
            println!(
                "api: {name:<27} {label:<8} p50 {:>6.2} ms  p99 {:>6.2} ms  ({bytes} bytes)",
                hist.value_at_quantile(0.5) as f64 / 1000.0,
                hist.value_at_quantile(0.99) as f64 / 1000.0,
            );
        }
    }
    // What live subscribers of one view cost with shared bodies: the first computes,
    // the others are answered from the shared body.
    let mut shared = query_api::AppState::new(Arc::clone(&store));
    shared.clock = clock;
    shared.settings = query_api::Settings::new(config.accounts.clone());
    let shared_app = query_api::router(shared);
    let uri = format!(
        "/api/dashboard/conversation-effectiveness?from={from_90}&to={}",
        today + chrono::Days::new(1)
    );
    let subscribers = 100u32;
    let t = Instant::now();
    for _ in 0..subscribers {
        let request = axum::http::Request::get(&uri).body(axum::body::Body::empty())?;
        let response = runtime.block_on(shared_app.clone().oneshot(request))?;
        runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX))?;
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "api: shared bodies: {subscribers} requests for conversation-effectiveness over {} days at one state in {ms:.1} ms ({:.2} ms each; one computed, the rest shared)",
        args.api_days,
        ms / f64::from(subscribers),
    );
    pipeline.finish();
    Ok(())
}
