//! `crmpulse bench`: the figures the design asks for, measured on this machine.
//!
//! - Throughput: N simulated events (generated before the clock starts) pushed
//!   through the pipeline in log-sized batches until every result is released.
//! - Latency: a full embedded stack on loopback; events POSTed to
//!   `/api/v1/events` at a steady rate, each opening a conversation; a WebSocket
//!   client subscribed to the KPI strip notes when `active_conversations.total`
//!   first reflects each event. Reported with the default 1 s coalescing and with a
//!   short one, since coalescing dominates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use ingest::simulator::{Simulator, SimulatorConfig};
use pipeline::{Pipeline, PipelineConfig};
use query_api::auth::Role;
use schemas::Clock;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::Config;
use crate::stack::{Source, Stack};

/// Arguments of `crmpulse bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to push through the pipeline for the throughput figure.
    #[arg(long, default_value_t = 5_000_000)]
    events: u64,
    /// Events per second for the latency figure.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds of steady load for each latency run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Skip the throughput run.
    #[arg(long)]
    skip_throughput: bool,
    /// Skip the latency runs.
    #[arg(long)]
    skip_latency: bool,
    /// Skip the API run (memory per conversation, section latency over history).
    #[arg(long)]
    skip_api: bool,
    /// Days of simulated history behind the API run.
    #[arg(long, default_value_t = 90)]
    api_days: i64,
    /// Requests per section and range in the API run.
    #[arg(long, default_value_t = 200)]
    api_requests: usize,
    /// ClickHouse HTTP URL: also measure rollup rows/s written and the sink's lag
    /// while the pipeline replays `--clickhouse-events` at full speed (database
    /// `crmpulse_bench`, recreated).
    #[arg(long)]
    clickhouse_url: Option<String>,
    /// Events replayed for the ClickHouse figure.
    #[arg(long, default_value_t = 1_000_000)]
    clickhouse_events: u64,
    /// Skip the ingest run (acknowledged events/s and POST latency with 1, 8 and 64
    /// concurrent writers).
    #[arg(long)]
    skip_ingest: bool,
    /// Events each ingest writer count POSTs in all, in bodies of 1,000.
    #[arg(long, default_value_t = 400_000)]
    ingest_events: u64,
    /// Live WebSocket clients to hold for the memory-per-client figure (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Skip the memory run (a `crmpulse run` child process: resident memory idle, after
    /// distinct long-range queries, after live subscriptions).
    #[arg(long)]
    skip_memory: bool,
    /// Days of simulated history behind the memory run.
    #[arg(long, default_value_t = 30)]
    memory_days: i64,
    /// Distinct 400-day queries of the memory run.
    #[arg(long, default_value_t = 300)]
    memory_queries: usize,
    /// Live subscriptions of the memory run (16 per connection).
    #[arg(long, default_value_t = 1_000)]
    memory_subscriptions: usize,
}

/// Runs the selected benchmarks and prints their figures.
pub fn run(args: &BenchArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    println!(
        "crmpulse bench on {} cores, {} pipeline workers",
        num_cores(),
        config.pipeline.workers
    );
    // The API run first: its memory figure is the growth of this process's resident
    // memory, which only means something from a clean start (memory an earlier run
    // freed is returned to the system while the history builds, 2026-12-02).
    if !args.skip_api {
        api(args, config, clock)?;
    }
    if let Some(url) = &args.clickhouse_url {
        clickhouse(url, args.clickhouse_events, config, clock)?;
    }
    if !args.skip_ingest {
        let runtime = tokio::runtime::Runtime::new()?;
        for writers in [1, 8, 64] {
            runtime.block_on(ingest(args.ingest_events, writers, config, clock))?;
        }
    }
    if !args.skip_throughput {
        throughput(args.events, config, clock)?;
    }
    if !args.skip_latency {
        let runtime = tokio::runtime::Runtime::new()?;
        for coalesce_ms in [config.live.coalesce_ms, 50] {
            runtime.block_on(latency(args, config, coalesce_ms, clock))?;
        }
    }
    if args.clients > 0 {
        tokio::runtime::Runtime::new()?.block_on(clients(args.clients, config, clock))?;
    }
    if !args.skip_memory {
        tokio::runtime::Runtime::new()?.block_on(crate::bench_memory::run(
            &crate::bench_memory::MemoryArgs {
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

/// Holds `n` live connections, each authenticated with its own token and subscribed
/// to the KPI strip, on a full embedded stack; reports resident memory per connection
/// and how long one new event takes to reach every client as a delta.
///
/// Client and server ends live in this one process, so the memory figure is an upper
/// bound of the server's share (the clients use 4 KiB buffers, like the server).
async fn clients(n: usize, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = config.clone();
    config.auth.max_live_connections = config.auth.max_live_connections.max(n + 16);
    let credentials = crate::auth::Credentials::load(&config.auth, Some(dir.path()), clock)?;
    let ingest_key = credentials.ingest_key(1)?.0;
    let tokens = (0..n)
        .map(|i| credentials.mint(&format!("bench-{i}"), 1, Role::Analyst, vec![], None, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let server = BenchServer::start(dir.path(), &config, credentials, clock).await?;
    let addr = server.addr;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let before = rss_mib();
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    let mut sockets = Vec::with_capacity(n);
    let started = Instant::now();
    for token in &tokens {
        // Only the socket is kept: the snapshot is dropped, so the memory figure is
        // that of the connections.
        let (ws, _snapshot) = subscribe_kpi(addr, Some(token), Some(ws_config)).await?;
        sockets.push(ws);
    }
    let connected = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mib();

    // One new conversation: time until every client has a delta counting it.
    let now = schemas::event::format_rfc3339_ms(clock.now_ms());
    let event = json!({
        "event_id": "bench-fanout", "account_id": 1, "occurred_at": now,
        "type": "conversation_opened", "conversation_id": "bench-fanout",
        "customer_id": "bench", "channel": "whatsapp", "inbox_id": "bench", "origin": "inbound",
    });
    let sent = Instant::now();
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/events"))
        .bearer_auth(&ingest_key)
        .json(&json!([event]))
        .send()
        .await?
        .error_for_status()?;
    let waits = sockets.iter_mut().map(|ws| async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["type"] == "delta" && v["patch"].to_string().contains("active_conversations") {
                return Some(sent.elapsed());
            }
        }
        None
    });
    let arrivals = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(waits),
    )
    .await
    .unwrap_or_default();
    let mut hist = Histogram::<u64>::new(3)?;
    for t in arrivals.iter().flatten() {
        hist.record(t.as_micros() as u64)?;
    }
    println!(
        "clients: {n} live connections (one token each, KPI strip) connected in {:.1}s; resident memory {before:.0} MiB → {after:.0} MiB = {:.1} KiB per connection (client and server ends together); one event reached {} of {n} clients: p50 {:.0} ms, p99 {:.0} ms, last {:.0} ms (coalescing {} ms)",
        connected.as_secs_f64(),
        (after - before) * 1024.0 / n as f64,
        hist.len(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
        config.live.coalesce_ms,
    );
    drop(sockets);
    server.stop().await;
    Ok(())
}

/// A full embedded stack serving on a free loopback port, for the benchmarks that
/// go through HTTP and WebSocket.
struct BenchServer {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Stack>>,
}

impl BenchServer {
    async fn start(
        dir: &std::path::Path,
        config: &Config,
        credentials: crate::auth::Credentials,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let embedded = Stack::build(config, Source::EventLog(dir.to_owned()), clock)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = config.clone();
        let task = tokio::spawn(async move {
            let settings = query_api::Settings::new(config.accounts.clone());
            embedded
                .serve_on(&config, &credentials, settings, listener, async {
                    let _ = stopped.await;
                })
                .await
                .map(|()| embedded)
        });
        Ok(Self { addr, stop, task })
    }

    /// Stops serving and shuts the stack down.
    async fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(Ok(embedded)) = self.task.await {
            embedded.shutdown();
        }
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn throughput(n: u64, config: &Config, clock: Clock) -> anyhow::Result<()> {
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
    let mut pipeline = Pipeline::start(
        &PipelineConfig {
            workers: config.pipeline.workers,
            clock,
            ..PipelineConfig::default()
        },
        move |b| sink.store(b.events_consumed, Ordering::Relaxed),
    )?;
    let start = Instant::now();
    let mut it = events.into_iter();
    loop {
        let batch: Vec<_> = it.by_ref().take(crate::stack::READ_BATCH).collect();
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

/// Replays `n` simulated events through the pipeline at full speed with the ClickHouse
/// sink attached (backpressure included) and prints rollup rows/s written and the
/// sink's lag behind the pipeline.
fn clickhouse(url: &str, n: u64, config: &Config, clock: Clock) -> anyhow::Result<()> {
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
    let mut pipeline = Pipeline::start(
        &PipelineConfig {
            workers: config.pipeline.workers,
            clock,
            ..PipelineConfig::default()
        },
        move |b| fed.accept(&b),
    )?;
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
        let batch: Vec<_> = it.by_ref().take(crate::stack::READ_BATCH).collect();
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

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Builds the view store from `api_days` of simulated history (generated and pushed a
/// day at a time, so the events themselves are never all in memory), reports resident
/// memory per million conversations, then times every section through the router.
fn api(args: &BenchArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    use tower::ServiceExt as _;

    let before = rss_mib();
    let store = Arc::new(query_api::ViewStore::default());
    let sink = Arc::clone(&store);
    let mut pipeline = Pipeline::start(
        &PipelineConfig {
            workers: config.pipeline.workers,
            clock,
            ..PipelineConfig::default()
        },
        move |b| sink.apply(b),
    )?;
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
    println!(
        "api: {} days of history, {events} events, {conversations} conversations, built in {built:.1}s; resident memory {:.0} MiB → {:.0} MiB = {:.0} MiB per million conversations (pipeline state + view store)",
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
    for section in query_api::sections::SECTIONS {
        for (label, query) in [
            ("today", String::new()),
            (
                "90 days",
                format!("?from={from_90}&to={}", today + chrono::Days::new(1)),
            ),
        ] {
            let uri = format!("/api/dashboard/{section}{query}");
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
                "api: {section:<27} {label:<8} p50 {:>6.2} ms  p99 {:>6.2} ms  ({bytes} bytes)",
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

/// A client WebSocket of the benchmarks.
type ClientSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `/api/live` on `addr` (with `ws_config`, or the defaults), authenticates
/// with `token` when the server wants one, subscribes to the KPI strip and waits for
/// its snapshot. Returns the socket and the snapshot's body.
async fn subscribe_kpi(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    ws_config: Option<WebSocketConfig>,
) -> anyhow::Result<(ClientSocket, Value)> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/api/live"),
        ws_config,
        false,
    )
    .await
    .context("connecting the WebSocket")?;
    if let Some(token) = token {
        ws.send(Message::text(
            json!({"op": "auth", "token": token}).to_string(),
        ))
        .await?;
    }
    ws.send(Message::text(
        json!({"op": "subscribe", "id": "kpi", "section": "kpi", "params": {}}).to_string(),
    ))
    .await?;
    while let Some(msg) = ws.next().await {
        let msg: Value = serde_json::from_str(msg?.to_text()?)?;
        if msg["type"] == "snapshot" {
            return Ok((ws, msg["data"].clone()));
        }
        anyhow::ensure!(msg["type"] != "error", "client refused: {msg}");
    }
    anyhow::bail!("the server closed the connection before the snapshot")
}

/// A WebSocket client subscribed to the KPI strip, used by the latency benchmarks: a
/// newly opened conversation is "seen" when `active_conversations.total` counts it.
pub(crate) struct KpiProbe {
    ws: ClientSocket,
    /// The KPI body as the client holds it (snapshot plus applied patches).
    data: Value,
    /// `active_conversations.total` in the snapshot, before any benchmark event.
    base: i64,
}

impl KpiProbe {
    /// Connects to `/api/live` on `addr`, authenticates with `token` when the server
    /// wants one, subscribes to the KPI strip and waits for its snapshot.
    pub(crate) async fn connect(
        addr: std::net::SocketAddr,
        token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let (ws, data) = subscribe_kpi(addr, token, None).await?;
        let base = Self::active_total(&data);
        Ok(Self { ws, data, base })
    }

    fn active_total(data: &Value) -> i64 {
        data["active_conversations"]["total"].as_i64().unwrap_or(-1)
    }

    /// Applies deltas until `total` new conversations show or `deadline` passes, and
    /// records for each the time from its send instant (in `sent`, in send order) to
    /// the delta that first counted it.
    pub(crate) async fn record(
        &mut self,
        sent: &Mutex<Vec<Instant>>,
        total: usize,
        deadline: Instant,
    ) -> anyhow::Result<Histogram<u64>> {
        let mut hist = Histogram::<u64>::new(3)?;
        let mut seen = 0usize;
        while seen < total && Instant::now() < deadline {
            let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), self.ws.next()).await
            else {
                continue;
            };
            let msg: Value = serde_json::from_str(msg?.to_text()?)?;
            if msg["type"] != "delta" {
                continue;
            }
            let patch: json_patch::Patch = serde_json::from_value(msg["patch"].clone())?;
            json_patch::patch(&mut self.data, &patch)?;
            let now_seen = usize::try_from(Self::active_total(&self.data) - self.base)
                .unwrap_or(0)
                .min(total);
            let received = Instant::now();
            let sent = sent.lock().expect("sent lock");
            for at in &sent[seen.min(sent.len())..now_seen.min(sent.len())] {
                hist.record(received.duration_since(*at).as_micros() as u64)?;
            }
            seen = seen.max(now_seen.min(sent.len()));
        }
        Ok(hist)
    }
}

/// Events per body in the ingest run.
const INGEST_BODY: usize = 1_000;

/// `writers` concurrent clients POST distinct 1,000-event bodies (as JSON arrays) to a
/// full embedded stack, whose pipeline folds them meanwhile; reports acknowledged
/// events/s and the POST latency. Every answer is checked, and the log must hold
/// every acknowledged event at the end: a figure with loss is an error, not a figure.
/// fsync is on (the log's normal durability).
async fn ingest(events: u64, writers: usize, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = config.clone();
    config.auth.ingest_requests_per_s = u32::MAX;
    let credentials = crate::auth::Credentials::load(&config.auth, Some(dir.path()), clock)?;
    let key = credentials
        .ingest_key(1)
        .map(|(key, _)| key)
        .context("an ingest key for account 1")?;
    let server = BenchServer::start(dir.path(), &config, credentials, clock).await?;
    let url = format!("http://{}/api/v1/events", server.addr);
    let bodies = (events as usize).div_ceil(INGEST_BODY).max(writers);
    let at = schemas::event::format_rfc3339_ms(clock.now_ms());
    // Bodies are encoded before the clock starts.
    let encoded: Vec<Vec<u8>> = (0..bodies)
        .map(|b| {
            let events: Vec<Value> = (0..INGEST_BODY)
                .map(|i| {
                    let id = format!("ingest-{writers}-{b}-{i}");
                    if i % 2 == 0 {
                        json!({"event_id": id, "account_id": 1, "occurred_at": at,
                            "type": "conversation_opened", "conversation_id": id, "customer_id": "bench",
                            "channel": "whatsapp", "inbox_id": "bench", "origin": "inbound"})
                    } else {
                        json!({"event_id": id, "account_id": 1, "occurred_at": at,
                            "type": "ticket_opened", "ticket_id": id, "priority": "medium"})
                    }
                })
                .collect();
            serde_json::to_vec(&events)
        })
        .collect::<Result<_, _>>()?;
    let encoded = Arc::new(encoded);
    let next = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (encoded, next, client, url, key) = (
                Arc::clone(&encoded),
                Arc::clone(&next),
                client.clone(),
                url.clone(),
                key.clone(),
            );
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let mut acknowledged = 0u64;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = encoded.get(b) else { break };
                    let sent = Instant::now();
                    let res = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    anyhow::ensure!(res.status() == 200, "POST answered {}", res.status());
                    let answer: Value = res.json().await?;
                    hist.record(sent.elapsed().as_micros() as u64)?;
                    acknowledged += answer["accepted"].as_u64().unwrap_or(0);
                }
                anyhow::Ok((acknowledged, hist))
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3)?;
    let mut acknowledged = 0;
    for task in tasks {
        let (a, h) = task.await??;
        acknowledged += a;
        hist.add(h)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let expected = (bodies * INGEST_BODY) as u64;
    let health: Value = client
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await?
        .json()
        .await?;
    server.stop().await;
    anyhow::ensure!(
        acknowledged == expected && health["log_events"] == expected,
        "ingest lost events: {acknowledged} acknowledged, {} stored, {expected} sent",
        health["log_events"]
    );
    println!(
        "ingest ({writers} writers, {bodies} bodies of {INGEST_BODY}, fsync on, pipeline folding): {:.0} acknowledged events/s, POST p50 {:.1} ms, p99 {:.1} ms, nothing lost",
        acknowledged as f64 / elapsed,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}

async fn latency(
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
    let credentials = crate::auth::Credentials::load(&config.auth, Some(dir.path()), clock)?;
    let token = credentials.mint("bench", 1, Role::Admin, vec![], None, None)?;
    let ingest_key = credentials.ingest_key(1).map(|(key, _)| key).ok();
    let server = BenchServer::start(dir.path(), &config, credentials, clock).await?;
    let addr = server.addr;

    let mut probe = KpiProbe::connect(addr, Some(&token)).await?;

    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let sender_sent = Arc::clone(&sent);
    let (rate, seconds) = (args.rate, args.seconds);
    let sender = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/api/v1/events");
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        for k in 0..rate * seconds {
            tick.tick().await;
            let now = schemas::event::format_rfc3339_ms(clock.now_ms());
            let event = json!({
                "event_id": format!("bench-{coalesce_ms}-{k}"), "account_id": 1, "occurred_at": now,
                "type": "conversation_opened", "conversation_id": format!("bench-{k}"),
                "customer_id": "bench", "channel": "whatsapp", "inbox_id": "bench", "origin": "inbound",
            });
            sender_sent.lock().expect("sent lock").push(Instant::now());
            let mut request = client.post(&url).json(&json!([event]));
            if let Some(key) = &ingest_key {
                request = request.bearer_auth(key);
            }
            let _ = request.send().await;
        }
    });

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
