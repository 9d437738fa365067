//! Every sink of `crmpulse run` with `[kafka]` (and of `serve`) receives data: the
//! metrics topic, ClickHouse's rollups, the HTTP API and `/metrics` (issue #15: the
//! Kafka mode once composed its own stack and started no ClickHouse sink).
//!
//! ClickHouse is the private server `scripts/test` starts (`CRMPULSE_CLICKHOUSE_URL`,
//! default `http://127.0.0.1:8123`), each run in a database of its own.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{clickhouse_url, unique_database};
use crate::{Broker, Guard, admin_token, block_on, free_port, get_json, now_ms, setup};

/// One number from ClickHouse.
fn clickhouse_number(url: &str, database: &str, sql: &str) -> i64 {
    block_on(crate::common::clickhouse_number(url, database, sql))
}

/// `/metrics` of the server on `port`, as an admin.
fn metrics_text(port: u16) -> String {
    block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// The sum of the samples of metric `name` (every label set).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn kafka_run_feeds_clickhouse_the_metrics_topic_and_the_api_and_serve_agrees() {
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 2);
    let url = clickhouse_url();
    let database = unique_database("crmpulse_kafka");
    let mut toml = std::fs::read_to_string(&s.config_path).unwrap();
    toml.push_str(&format!(
        "\n[clickhouse]\nurl = {url:?}\ndatabase = {database:?}\nflush_interval_ms = 200\nretry_initial_ms = 100\nretry_max_ms = 1000\n"
    ));
    std::fs::write(&s.config_path, toml).unwrap();
    s.create_topics(&broker);
    let events = crate::simulated_daytime(3, 21);
    let opened: HashSet<String> = events
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap())
        .filter(|e| e["type"] == "conversation_opened")
        .map(|e| e["conversation_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(opened.len() > 10, "{} conversations", opened.len());
    s.produce(&events);

    let port = free_port();
    let data_dir = s.dir.path().join("data");
    let _run = Guard(s.spawn(
        "run",
        &[
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    ));

    // The metrics topic: every event reflected.
    let view = s.wait_for_events(events.len() as u64, Duration::from_secs(180));
    assert_eq!(view.applied(), crate::reference(&events));

    // ClickHouse: the sink's committed position reaches every event, then the rollups
    // hold every conversation opened.
    let health_url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health = get_json(&health_url, Duration::from_secs(60));
        if health["clickhouse"]["written_through"].as_u64() >= Some(events.len() as u64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ClickHouse sink not written through {} events: {health}\nrun log:\n{}",
            events.len(),
            s.log("run")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let in_clickhouse = clickhouse_number(
        &url,
        &database,
        "SELECT sum(conversations) FROM conversations_opened_15m FINAL WHERE account_id = 1",
    );
    assert_eq!(in_clickhouse, opened.len() as i64);

    // The API's numbers.
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let range = format!(
        "from={}&to={}",
        day(now_ms() - 2 * 86_400_000),
        day(now_ms() + 86_400_000)
    );
    let load_url =
        |port: u16| format!("http://127.0.0.1:{port}/api/dashboard/customer-load?{range}");
    let load = get_json(&load_url(port), Duration::from_secs(10));
    assert_eq!(load["opened"]["total"], opened.len() as u64, "{load}");
    let health = get_json(&health_url, Duration::from_secs(10));
    assert_eq!(health["events_consumed"], events.len() as u64, "{health}");

    // `/metrics`: the events the pipeline took in.
    let text = metrics_text(port);
    let counted = metric(&text, "crmpulse_pipeline_events_total");
    assert_eq!(counted, events.len() as f64, "{text}");

    // `serve`, fed only from the metrics topic, gives the same numbers.
    let serve_port = free_port();
    let _serve = Guard(s.spawn(
        "serve",
        &["serve", "--listen", &format!("127.0.0.1:{serve_port}")],
    ));
    let served = get_json(&load_url(serve_port), Duration::from_secs(60));
    assert_eq!(served["opened"]["total"], opened.len() as u64, "{served}");
    assert_eq!(served["opened"], load["opened"]);
}
