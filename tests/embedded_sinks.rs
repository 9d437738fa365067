//! Every sink of the embedded `crmpulse run` with `[clickhouse]` receives data: the
//! view store (numbers over HTTP), ClickHouse's rollups and raw events, and the live
//! WebSocket fan-out (a delta after a new event). Issue #15: one composition for every
//! mode; the Kafka modes have their own test in `tests/kafka/modes.rs`.
//!
//! ClickHouse is the private server `scripts/test` starts (`CRMPULSE_CLICKHOUSE_URL`,
//! default `http://127.0.0.1:8123`); the test works in a database of its own.

mod common;

use std::time::{Duration, Instant};

use common::{
    Killed, clickhouse_number, clickhouse_url, client, creds, ev, free_port, get_json, opened,
    post_events, start_with, unique_database,
};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The server's clock.
const NOW: &str = "2026-11-26T14:00:00Z";

/// Waits for the next frame of type `kind` (skipping the others).
async fn next_frame<S>(ws: &mut S, kind: &str) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within 30 s"))
            .expect("the socket is open")
            .unwrap();
        let Ok(text) = msg.to_text() else { continue };
        let frame: Value = serde_json::from_str(text).unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_run_feeds_the_api_clickhouse_and_the_live_feed() {
    let url = clickhouse_url();
    let database = unique_database("crmpulse_embedded");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        format!(
            "[clickhouse]\nurl = {url:?}\ndatabase = {database:?}\nflush_interval_ms = 200\nretry_initial_ms = 100\nretry_max_ms = 1000\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Killed(start_with(
        port,
        &dir.path().join("data"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    ));
    let http = client(port);

    let conversations: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    let batch: Vec<Value> = conversations
        .iter()
        .enumerate()
        .map(|(i, c)| {
            ev(
                &format!("e{i}"),
                &format!("2026-11-26T1{i}:00:00Z"),
                opened(c),
            )
        })
        .map(|mut e| {
            // `opened` names one customer; give every conversation its own.
            e["customer_id"] = json!(format!("u-{}", e["conversation_id"].as_str().unwrap()));
            e
        })
        .filter(|e| e["occurred_at"].as_str().unwrap() < NOW)
        .collect();
    let posted = batch.len();
    assert!(posted >= 4);
    let res = post_events(&http, &base, &Value::Array(batch)).await;
    assert!(res.status().is_success(), "{}", res.status());
    common::wait_caught_up(&http, &base, posted as u64).await;

    // Numbers over HTTP.
    let load_url = format!("{base}/api/dashboard/customer-load?from=2026-11-25&to=2026-11-27");
    let load = get_json(&http, &load_url).await;
    assert_eq!(load["opened"]["total"], posted as u64, "{load}");

    // ClickHouse: rollups and raw events, once the sink says everything is written.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health = get_json(&http, &format!("{base}/healthz")).await;
        if health["clickhouse"]["written_through"] == posted as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ClickHouse not written through: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rollup = clickhouse_number(
        &url,
        &database,
        "SELECT sum(conversations) FROM conversations_opened_15m FINAL WHERE account_id = 1",
    )
    .await;
    assert_eq!(rollup, posted as i64);
    let raw = clickhouse_number(
        &url,
        &database,
        "SELECT count() FROM events FINAL WHERE account_id = 1",
    )
    .await;
    assert_eq!(raw, posted as i64);

    // The live feed: a snapshot, then a delta carrying the next conversation.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/live"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": creds(port).token}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"op": "subscribe", "id": "load", "section": "customer-load",
            "params": {"from": "2026-11-25", "to": "2026-11-27"}})
        .to_string(),
    ))
    .await
    .unwrap();
    let snapshot = next_frame(&mut ws, "snapshot").await;
    assert_eq!(
        snapshot["data"]["opened"]["total"], posted as u64,
        "{snapshot}"
    );
    let mut body = snapshot["data"].clone();
    let mut one_more = ev("late", "2026-11-26T13:30:00Z", opened("c-live"));
    one_more["customer_id"] = json!("u-live");
    let res = post_events(&http, &base, &json!([one_more])).await;
    assert!(res.status().is_success(), "{}", res.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delta = next_frame(&mut ws, "delta").await;
        assert_eq!(delta["id"], "load");
        let patch: json_patch::Patch = serde_json::from_value(delta["patch"].clone()).unwrap();
        json_patch::patch(&mut body, &patch).unwrap();
        if body["opened"]["total"] == posted as u64 + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no delta with the new conversation: {body}"
        );
    }
}
