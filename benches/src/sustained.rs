//! Event-to-WebSocket latency under sustained load over a long history: the figure
//! of issue 15, "event → WebSocket delta p99 at 50k events/s sustained, 90-day
//! history".
//!
//! 1. D days of simulated history of account 1 are written into a fresh event log
//!    (not timed), and a full embedded stack is started on it and waits until it has
//!    caught up (what `/readyz` waits for) and written its first checkpoint.
//! 2. Load: the same simulator goes on past the history, and its events are POSTed to
//!    `/api/v1/events` in bodies of [`BODY`] events, at `--rate` events/s, each event
//!    stamped with its body's planned send time (so the mix is the simulator's:
//!    messages, statuses, assignments, resolutions, tickets, over conversations that
//!    are live at the end of the history and new ones). Bodies are encoded before the
//!    clock starts.
//! 3. Probes: meanwhile, `--probes-per-s` times a second, one event opens a
//!    conversation of account 2; a WebSocket client of account 2, subscribed to the
//!    KPI strip, notes when `active_conversations.total` counts it. Account 2 has no
//!    other traffic, so its KPI strip moves only with the probes, while every probe
//!    waits behind account 1's load in the log, the pipeline and the fan-out.
//!
//! Printed: the load's acknowledged events/s (the target is the rate asked for; a
//! lower figure means the stack could not take it), the probes' p50/p99/max, and
//! the resident memory at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use query_api::auth::Role;
use schemas::Clock;

use crate::harness::{BenchServer, KpiProbe, rss_mib};
use crmpulse::config::Config;

/// Events per POSTed body of the load.
const BODY: usize = 500;
/// Seconds per window of the by-send-time breakdown of the probes' latency.
const WINDOW_SECS: u64 = 5;

/// `crmpulse-bench sustained`.
#[derive(Debug, clap::Args)]
pub struct SustainedArgs {
    /// Days of simulated history before the load.
    #[arg(long, default_value_t = 90)]
    pub history_days: i64,
    /// Events per second of load.
    #[arg(long, default_value_t = 50_000)]
    pub rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Probe events per second (each opens a conversation of account 2).
    #[arg(long, default_value_t = 20)]
    pub probes_per_s: u64,
    /// Coalescing of the live deltas, ms, one run each (comma-separated); the
    /// configured value when absent.
    #[arg(long, value_delimiter = ',')]
    pub coalesce_ms: Vec<u64>,
    /// Where the data dir goes (a temporary directory under it).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs the measurement once per coalescing value, each on a fresh copy of the history.
pub fn run(args: &SustainedArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let coalesce = if args.coalesce_ms.is_empty() {
        vec![config.live.coalesce_ms]
    } else {
        args.coalesce_ms.clone()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    for coalesce_ms in coalesce {
        let tmp = crate::harness::tempdir_under(args.dir.as_deref())?;
        let (events, sim) =
            crate::restart::write_history(tmp.path(), args.history_days, config, clock)?;
        let mut config = config.clone();
        config.live.coalesce_ms = coalesce_ms;
        config.auth.ingest_requests_per_s = u32::MAX;
        runtime.block_on(run_one(args, &config, clock, tmp.path(), events, sim))?;
    }
    Ok(())
}

async fn run_one(
    args: &SustainedArgs,
    config: &Config,
    clock: Clock,
    dir: &std::path::Path,
    history: u64,
    mut sim: ingest::simulator::Simulator,
) -> anyhow::Result<()> {
    let credentials = crmpulse::auth::Credentials::load(&config.auth, Some(dir), clock)?;
    let probe_token = credentials.mint("bench", 2, Role::Admin, vec![], None, None)?;
    let load_key = credentials.ingest_key(1).map(|(key, _)| key).ok();
    let probe_key = credentials.ingest_key(2).map(|(key, _)| key).ok();
    let started = Instant::now();
    let server = BenchServer::start(dir, config, credentials, clock).await?;
    let addr = server.addr;
    let client = reqwest::Client::new();
    let checkpoint = dir.join("checkpoint.bin");
    loop {
        let ready = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready && (config.pipeline.checkpoint_interval_secs == 0 || checkpoint.exists()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = started.elapsed();

    // The load's bodies, stamped with their planned send times, encoded now.
    let bodies_per_s = (args.rate as usize).div_ceil(BODY).max(1) as u64;
    let bodies = (bodies_per_s * args.seconds) as usize;
    let period = Duration::from_nanos(1_000_000_000 / bodies_per_s);
    let load_start_ms = clock.now_ms() + 2_000;
    let mut pending: Vec<schemas::Event> = Vec::new();
    let mut encoded = Vec::with_capacity(bodies);
    for b in 0..bodies {
        while pending.len() < BODY {
            let next = sim.now_ms() + 3_600_000;
            pending.extend(sim.advance_to(next));
        }
        let at = load_start_ms + (b as u64 * period.as_millis() as u64) as i64;
        let body: Vec<schemas::Event> = pending
            .drain(..BODY)
            .map(|mut e| {
                e.occurred_at_ms = at;
                e
            })
            .collect();
        encoded.push(serde_json::to_vec(&body)?);
    }
    let mut probe = KpiProbe::connect(addr, Some(&probe_token)).await?;
    let wait = load_start_ms - clock.now_ms();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let load_started = Instant::now();
    let load = {
        let (client, acknowledged, refused) = (
            client.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&refused),
        );
        let url = format!("http://{addr}/api/v1/events");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut sends = tokio::task::JoinSet::new();
            for body in encoded {
                tick.tick().await;
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(key) = &load_key {
                    request = request.bearer_auth(key);
                }
                let (acknowledged, refused) = (Arc::clone(&acknowledged), Arc::clone(&refused));
                // Sent without waiting for the last answer: the rate is the sender's,
                // not the server's (an open-loop load).
                sends.spawn(async move {
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {
                            acknowledged.fetch_add(BODY as u64, Ordering::Relaxed);
                        }
                        _ => {
                            refused.fetch_add(BODY as u64, Ordering::Relaxed);
                        }
                    }
                });
            }
            while sends.join_next().await.is_some() {}
        })
    };

    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let probes = (args.probes_per_s * args.seconds) as usize;
    let prober = crate::harness::open_conversations(
        addr,
        probe_key,
        crate::harness::Openings {
            account_id: 2,
            prefix: "probe".into(),
            rate: args.probes_per_s,
            count: probes as u64,
        },
        Arc::clone(&sent),
        clock,
    );
    let hist = probe
        .record(
            &sent,
            probes,
            Instant::now() + Duration::from_secs(args.seconds + 30),
        )
        .await?;
    prober.await.context("the prober")?;
    load.await.context("the load")?;
    let load_secs = load_started.elapsed().as_secs_f64();
    let rss = rss_mib();
    server.stop().await;
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    println!(
        "\nsustained load, {} days of history ({history} events; caught up and checkpointed after {:.1} s), coalescing {} ms:",
        args.history_days,
        caught_up.as_secs_f64(),
        config.live.coalesce_ms,
    );
    println!(
        "  load: {acknowledged} events acknowledged ({} refused or failed) in {load_secs:.1} s = {:.0} events/s (asked: {} events/s for {} s)",
        refused.load(Ordering::Relaxed),
        acknowledged as f64 / load_secs,
        args.rate,
        args.seconds,
    );
    println!(
        "  probe → WebSocket delta: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {probes} observed); RSS {rss:.0} MiB",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
        hist.len(),
    );
    // The same probes by when they were sent: a tail that grows with the run's length
    // (state that grows under the load) reads differently from one slow window (a
    // checkpoint, a rehash).
    let mut windows: Vec<Histogram<u64>> = Vec::new();
    for (at, micros) in &probe.samples {
        let k = (at.saturating_duration_since(load_started).as_secs() / WINDOW_SECS) as usize;
        while windows.len() <= k {
            windows.push(Histogram::<u64>::new(3)?);
        }
        windows[k].record(*micros)?;
    }
    for (k, w) in windows.iter().enumerate().filter(|(_, w)| !w.is_empty()) {
        println!(
            "    sent in {:>3}-{:<3} s: p50 {:>6.1} ms, p99 {:>6.1} ms, max {:>6.1} ms ({} probes)",
            k as u64 * WINDOW_SECS,
            (k as u64 + 1) * WINDOW_SECS,
            w.value_at_quantile(0.5) as f64 / 1000.0,
            w.value_at_quantile(0.99) as f64 / 1000.0,
            w.max() as f64 / 1000.0,
            w.len(),
        );
    }
    Ok(())
}
