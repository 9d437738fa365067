//! HTTP ingest: acknowledged events/s and POST latency with concurrent writers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use schemas::Clock;
use serde_json::{Value, json};

use crate::harness::BenchServer;
use crmpulse::config::Config;

/// Events per body in the ingest run.
const INGEST_BODY: usize = 1_000;

/// `writers` concurrent clients POST distinct 1,000-event bodies (as JSON arrays) to a
/// full embedded stack, whose pipeline folds them meanwhile; reports acknowledged
/// events/s and the POST latency. Every answer is checked, and the log must hold
/// every acknowledged event at the end: a figure with loss is an error, not a figure.
/// fsync is on (the log's normal durability).
pub(crate) async fn ingest(
    events: u64,
    writers: usize,
    config: &Config,
    clock: Clock,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = config.clone();
    config.auth.ingest_requests_per_s = u32::MAX;
    let credentials = crmpulse::auth::Credentials::load(&config.auth, Some(dir.path()), clock)?;
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
