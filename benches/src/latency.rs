//! Event-to-WebSocket latency: a full embedded stack on loopback; events POSTed to
//! `/api/v1/events` at a steady rate, each opening a conversation; a WebSocket client
//! subscribed to the KPI strip notes when `active_conversations.total` first reflects
//! each event. Run with the configured coalescing and with a short one, since
//! coalescing dominates.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use query_api::auth::Role;
use schemas::Clock;

use crate::embedded::BenchArgs;
use crate::harness::{BenchServer, KpiProbe};
use crmpulse::config::Config;

/// One latency run with `coalesce_ms` of coalescing: p50/p99 from POST to the
/// WebSocket delta that counts the event.
pub(crate) async fn latency(
    args: &BenchArgs,
    config: &Config,
    coalesce_ms: u64,
    clock: Clock,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = config.clone();
    config.live.coalesce_ms = coalesce_ms;
    // One request per event: the per-account ingest limit must not be what is measured.
    config.auth.ingest_requests_per_s = config
        .auth
        .ingest_requests_per_s
        .max(u32::try_from(args.rate.saturating_mul(2)).unwrap_or(u32::MAX));
    let credentials = crmpulse::auth::Credentials::load(&config.auth, Some(dir.path()), clock)?;
    let token = credentials.mint("bench", 1, Role::Admin, vec![], None, None)?;
    let ingest_key = credentials.ingest_key(1).map(|(key, _)| key).ok();
    let server = BenchServer::start(dir.path(), &config, credentials, clock).await?;
    let addr = server.addr;

    let mut probe = KpiProbe::connect(addr, Some(&token)).await?;

    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (rate, seconds) = (args.rate, args.seconds);
    let sender = crate::harness::open_conversations(
        addr,
        ingest_key,
        crate::harness::Openings {
            account_id: 1,
            prefix: format!("bench-{coalesce_ms}"),
            rate,
            count: rate * seconds,
        },
        Arc::clone(&sent),
        clock,
    );

    let total = (rate * seconds) as usize;
    let hist = probe
        .record(
            &sent,
            total,
            Instant::now() + Duration::from_secs(seconds + 10),
        )
        .await?;
    sender.await?;
    server.stop().await;
    println!(
        "latency (coalesce {coalesce_ms} ms, {rate} events/s for {seconds}s, {} of {total} observed): POST → WebSocket delta p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        hist.len(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
    );
    Ok(())
}
