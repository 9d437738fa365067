//! Live clients held: memory per WebSocket connection and fan-out time of one event.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use query_api::auth::Role;
use schemas::Clock;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::harness::{BenchServer, rss_mib, subscribe_kpi};
use crmpulse::config::Config;

/// Holds `n` live connections, each authenticated with its own token and subscribed
/// to the KPI strip, on a full embedded stack; reports resident memory per connection
/// and how long one new event takes to reach every client as a delta.
///
/// Client and server ends live in this one process, so the memory figure is an upper
/// bound of the server's share (the clients use 4 KiB buffers, like the server).
pub(crate) async fn clients(n: usize, config: &Config, clock: Clock) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = config.clone();
    config.auth.max_live_connections = config.auth.max_live_connections.max(n + 16);
    let credentials = crmpulse::auth::Credentials::load(&config.auth, Some(dir.path()), clock)?;
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
