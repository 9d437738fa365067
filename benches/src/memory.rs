//! The memory run (issue 14; part of `crmpulse-bench embedded`): how much a server grows under what clients
//! can ask for, measured on a real `crmpulse run` child process (its resident memory
//! alone, read from `/proc/PID/status`; the clients live in the benchmark process).
//!
//! For each of two live scenarios a fresh server folds the same simulated history and
//! is measured idle, after distinct 400-day queries (every section, a point per day
//! for the series, each query string distinct, plus hourly ones that the points limit
//! refuses), then after live subscriptions held open (16 per connection):
//!
//! - shared views: every connection subscribes to the same 16 views (what many people
//!   with the dashboard open ask for): subscribers share one body per view.
//! - distinct views: every subscription is a different 400-day view, the worst case
//!   for sharing.
//!
//! The figures are printed, never asserted (docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use ingest::simulator::{Simulator, SimulatorConfig};
use query_api::auth::Role;
use schemas::Clock;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crmpulse::config::Config;

/// Parameters of the memory run.
#[derive(Debug, Clone)]
pub struct MemoryArgs {
    /// The `crmpulse` binary the measured server runs ([`crmpulse_binary`]).
    pub binary: PathBuf,
    /// Days of simulated history the server folds.
    pub days: i64,
    /// Distinct 400-day queries.
    pub queries: usize,
    /// Live subscriptions held.
    pub subscriptions: usize,
}

/// Subscriptions per connection (the server's default cap).
const PER_CONNECTION: usize = 16;

/// The target of issue 14: growth above the idle server.
const TARGET_MIB: f64 = 256.0;

/// Runs both scenarios and prints their figures.
///
/// # Errors
/// When the history cannot be written, the server does not start, or a request or
/// subscription is refused.
pub async fn run(args: &MemoryArgs, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let events = write_history(&data, args.days, clock)?;
    for distinct in [false, true] {
        scenario(args, config, clock, &data, events, distinct).await?;
    }
    Ok(())
}

/// The `crmpulse` binary to measure: `explicit` when given, else the one next to this
/// benchmark's executable (`target/release/crmpulse` beside
/// `target/release/crmpulse-bench` after `cargo build --release --workspace`).
///
/// # Errors
/// When no binary is given and none was built next to this one.
pub fn crmpulse_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe().context("locating the benchmark's executable")?;
    let sibling = exe.with_file_name("crmpulse");
    anyhow::ensure!(
        sibling.is_file(),
        "the memory run measures a `crmpulse run` process, and {} does not exist: build it \
         (`cargo build --release --workspace`) or pass --crmpulse-bin",
        sibling.display()
    );
    Ok(sibling)
}

/// Simulated history of `days` up to now, written to the event log in `data`.
fn write_history(data: &std::path::Path, days: i64, clock: Clock) -> anyhow::Result<u64> {
    let log = ingest::EventLog::open(data).context("opening the benchmark's event log")?;
    let now = clock.now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: 14,
            ..SimulatorConfig::default()
        },
        now - days * 86_400_000,
    );
    let started = Instant::now();
    while sim.now_ms() < now {
        let day = sim.advance_to((sim.now_ms() + 86_400_000).min(now));
        for chunk in day.chunks(ingest::replay::REPLAY_BATCH) {
            log.append(chunk)?;
        }
    }
    let events = log.len();
    println!(
        "memory: {days} days of simulated history, {events} events, written in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(events)
}

/// A `crmpulse run` child on a free loopback port.
struct Server {
    child: Child,
    base: String,
    addr: std::net::SocketAddr,
}

impl Server {
    fn start(
        binary: &Path,
        data: &std::path::Path,
        config: &Config,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let now = schemas::event::format_rfc3339_ms(clock.now_ms());
        let child = Command::new(binary)
            .args([
                "--now",
                &now,
                "run",
                "--listen",
                &addr.to_string(),
                "--data-dir",
            ])
            .arg(data)
            .env_remove("CRMPULSE_CONFIG")
            .env(
                "CRMPULSE__PIPELINE__WORKERS",
                config.pipeline.workers.to_string(),
            )
            // The benchmark's clients are few tokens asking a lot: no rate limit.
            .env("CRMPULSE__AUTH__REQUESTS_PER_S", "1000000")
            .env("CRMPULSE__AUTH__BURST", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the crmpulse run child {}", binary.display()))?;
        Ok(Self {
            child,
            base: format!("http://{addr}"),
            addr,
        })
    }

    /// Resident memory of the server process.
    fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }

    async fn wait_caught_up(&self, events: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the server did not fold the history within 10 minutes"
            );
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && let Ok(h) = r.json::<Value>().await
                && h["events_consumed"].as_u64().unwrap_or(0) >= events
            {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(section, query string)` of the `i`-th distinct 400-day view: every section in
/// turn, the range ending `i / 7` days earlier each round; a point per day for the
/// series sections.
fn long_view(i: usize, today: chrono::NaiveDate) -> (&'static str, String) {
    let sections = query_api::sections::SECTIONS;
    let section = sections[i % sections.len()];
    let to = today + chrono::Days::new(1) - chrono::Days::new((i / sections.len()) as u64);
    let from = to - chrono::Days::new(400);
    let series = matches!(section, "conversation-effectiveness" | "customer-load");
    let granularity = if series { "&granularity=day" } else { "" };
    (section, format!("from={from}&to={to}{granularity}"))
}

/// The 16 views every connection of the shared scenario subscribes to: each section
/// over 400 and over 90 days, and two "today" views.
fn shared_views(today: chrono::NaiveDate) -> Vec<(&'static str, String)> {
    let to = today + chrono::Days::new(1);
    let mut views: Vec<(&'static str, String)> = Vec::new();
    for section in query_api::sections::SECTIONS {
        let series = matches!(*section, "conversation-effectiveness" | "customer-load");
        for days in [400, 90] {
            let from = to - chrono::Days::new(days);
            let granularity = if series && days == 400 {
                "&granularity=day"
            } else {
                ""
            };
            views.push((section, format!("from={from}&to={to}{granularity}")));
        }
    }
    views.push(("kpi", String::new()));
    views.push(("customer-load", String::new()));
    views
}

fn params(query: &str) -> Value {
    let map: serde_json::Map<String, Value> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    Value::Object(map)
}

async fn scenario(
    args: &MemoryArgs,
    config: &Config,
    clock: Clock,
    data: &std::path::Path,
    events: u64,
    distinct: bool,
) -> anyhow::Result<()> {
    let credentials = crmpulse::auth::Credentials::load(
        &crmpulse::config::AuthSection::default(),
        Some(data),
        clock,
    )?;
    let connections = args.subscriptions.div_ceil(PER_CONNECTION);
    let tokens = (0..=connections)
        .map(|i| credentials.mint(&format!("mem-{i}"), 1, Role::Admin, vec![], None, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let server = Server::start(&args.binary, data, config, clock)?;
    let folded = server.wait_caught_up(events).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.rss_mib();
    let today = chrono::DateTime::from_timestamp_millis(clock.now_ms())
        .unwrap_or_default()
        .date_naive();

    // Distinct long-range queries, 8 at a time.
    let client = reqwest::Client::new();
    let admin = &tokens[connections];
    let started = Instant::now();
    let answers = futures_util::stream::iter(0..args.queries)
        .map(|i| {
            let (section, query) = long_view(i, today);
            let request = client
                .get(format!("{}/api/dashboard/{section}?{query}", server.base))
                .bearer_auth(admin);
            async move {
                let response = request.send().await?;
                let status = response.status();
                let bytes = response.bytes().await?.len();
                anyhow::ensure!(status.is_success(), "{section}?{query}: {status}");
                Ok::<_, anyhow::Error>(bytes)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut body_bytes = 0;
    for a in answers {
        body_bytes += a?;
    }
    // Hourly over 400 days: refused by the points limit, never computed.
    let (refused, mut refused_status) = (20, None);
    for i in 0..refused {
        let to = today + chrono::Days::new(1) - chrono::Days::new(i);
        let from = to - chrono::Days::new(400);
        let response = client
            .get(format!(
                "{}/api/dashboard/conversation-effectiveness?from={from}&to={to}&granularity=hour",
                server.base
            ))
            .bearer_auth(admin)
            .send()
            .await?;
        refused_status = Some(response.status());
    }
    let queried_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_queries = server.rss_mib();

    // Live subscriptions.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    let shared = shared_views(today);
    let mut readers = Vec::new();
    let started = Instant::now();
    let mut held = 0;
    for (c, token) in tokens.iter().take(connections).enumerate() {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
            format!("ws://{}/api/live", server.addr),
            Some(ws_config),
            false,
        )
        .await
        .context("connecting a live client")?;
        ws.send(Message::text(
            json!({"op": "auth", "token": token}).to_string(),
        ))
        .await?;
        let n = PER_CONNECTION.min(args.subscriptions - held);
        for (k, view) in shared.iter().take(n).enumerate() {
            let (section, query) = if distinct {
                long_view(c * PER_CONNECTION + k, today)
            } else {
                view.clone()
            };
            ws.send(Message::text(
                json!({"op": "subscribe", "id": format!("s{k}"), "section": section, "params": params(&query)})
                    .to_string(),
            ))
            .await?;
        }
        let mut snapshots = 0;
        while snapshots < n {
            let msg = ws
                .next()
                .await
                .context("the server closed a live client")??;
            let Ok(text) = msg.to_text() else { continue };
            let frame: Value = serde_json::from_str(text)?;
            anyhow::ensure!(frame["type"] != "error", "subscription refused: {frame}");
            if frame["type"] == "snapshot" {
                snapshots += 1;
            }
        }
        held += n;
        // Keep reading, as a dashboard does, so the server never waits on this client.
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    let subscribed_in = started.elapsed();
    // Several coalescing ticks: every connection moves to the newest shared bodies.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_live = server.rss_mib();
    let views = if distinct {
        format!("{held} distinct 400-day views")
    } else {
        format!("the same {} views on every connection", shared.len())
    };
    println!(
        "memory ({}): server folded the history in {:.1}s; resident memory idle {idle:.0} MiB; after {} distinct 400-day queries ({:.1} MiB of bodies sent; {refused} hourly ones refused with {}) in {:.1}s: {after_queries:.0} MiB (+{:.0}); after {held} live subscriptions on {connections} connections ({views}) in {:.1}s: {after_live:.0} MiB (+{:.0} above idle, {}; target ≤ {TARGET_MIB:.0} MiB)",
        if distinct {
            "distinct views"
        } else {
            "shared views"
        },
        folded.as_secs_f64(),
        args.queries,
        body_bytes as f64 / (1024.0 * 1024.0),
        refused_status.map_or_else(|| "-".to_owned(), |s| s.as_u16().to_string()),
        queried_in.as_secs_f64(),
        after_queries - idle,
        subscribed_in.as_secs_f64(),
        after_live - idle,
        if after_live - idle <= TARGET_MIB {
            "within the target"
        } else {
            "over the target"
        },
    );
    for r in readers {
        r.abort();
    }
    drop(server);
    Ok(())
}
