//! Every sink of `crmpulse run` with `[kafka]` (and of `serve`) receives data: the
//! metrics topic, ClickHouse's rollups, the HTTP API and `/metrics` (issue #15: the
//! Kafka mode once composed its own stack and started no ClickHouse sink).
//!
//! ClickHouse is the private server `scripts/test` starts (`CRMPULSE_CLICKHOUSE_URL`,
//! default `http://127.0.0.1:8123`), each run in a database of its own.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{self, clickhouse_url, metric, unique_database};
use crate::{Broker, Guard, admin_token, block_on, free_port, get_json, now_ms, setup};

/// One number from ClickHouse.
fn clickhouse_number(url: &str, database: &str, sql: &str) -> i64 {
    block_on(crate::common::clickhouse_number(url, database, sql))
}

/// `/metrics` of the server on `port`, as an admin.
fn metrics_text(port: u16) -> String {
    block_on(common::metrics_text(
        &common::client_with(&admin_token()),
        &format!("http://127.0.0.1:{port}"),
    ))
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
    // The Kafka-only metric of the alert rules (tests/alert_rules.rs checks the rest;
    // `crmpulse_kafka_dead_letters_total` is checked where dead letters are made).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = metrics_text(port);
        let missing: Vec<_> = [
            "crmpulse_kafka_source_lag_messages ",
            "crmpulse_kafka_source_events_total ",
        ]
        .into_iter()
        .filter(|m| !now.contains(m))
        .collect();
        // Everything was consumed: once measured after that (every 5 s), nothing is
        // left past the position.
        if missing.is_empty() && metric(&now, "crmpulse_kafka_source_lag_messages") == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing:?} missing or lag not 0 in {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let counted = metric(&text, "crmpulse_pipeline_events_total");
    assert_eq!(counted, events.len() as f64, "{text}");

    // `serve`, fed only from the metrics topic, gives the same numbers.
    let serve_port = free_port();
    let _serve = Guard(s.spawn(
        "serve",
        &["serve", "--listen", &format!("127.0.0.1:{serve_port}")],
    ));
    let served = get_json(&load_url(serve_port), Duration::from_secs(60));
    // Both are ready: `run` read the events topic to its start contents, `serve` the
    // metrics topic.
    for p in [port, serve_port] {
        let ready = get_json(
            &format!("http://127.0.0.1:{p}/readyz"),
            Duration::from_secs(10),
        );
        assert_eq!(ready["ready"], true, "{ready}");
    }
    assert_eq!(served["opened"]["total"], opened.len() as u64, "{served}");
    assert_eq!(served["opened"], load["opened"]);
}

/// A provider webhook's fixture body (`ingest/tests/fixtures/<source>/<name>`).
fn source_fixture(source: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/ingest/tests/fixtures/{source}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// POSTs a webhook body with `headers`; the status and JSON answer.
fn post_webhook(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, serde_json::Value) {
    block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut req = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            match req.send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    return (status, res.json().await.unwrap_or_default());
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "gateway did not come up: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn provider_webhooks_through_the_gateway_reach_the_events_topic_like_native_events() {
    const PHONE: &str = "106540352242922";
    const APP_SECRET: &str = "kafka-app-secret";
    const CW_TOKEN: &str = "kafka-chatwoot-token-0123456789";
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 2);
    let mut toml = std::fs::read_to_string(&s.config_path).unwrap();
    toml.push_str(&format!(
        "\n[[sources.whatsapp]]\naccount_id = 1\napp_secret = {APP_SECRET:?}\nverify_token = \"kafka-verify\"\nphone_number_ids = [{PHONE:?}]\n\n[[sources.chatwoot]]\naccount_id = 1\ntoken = {CW_TOKEN:?}\n"
    ));
    std::fs::write(&s.config_path, toml).unwrap();
    s.create_topics(&broker);

    // The standalone gateway (`crmpulse ingest`) serves the provider routes too.
    let port = free_port();
    let _gateway = Guard(s.spawn(
        "ingest",
        &["ingest", "--listen", &format!("127.0.0.1:{port}")],
    ));
    // Its probes answer without a token (the gateway has nothing to load).
    let ready = get_json(
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(30),
    );
    assert_eq!(ready, serde_json::json!({"ready": true, "role": "ingest"}));
    let whatsapp = format!("http://127.0.0.1:{port}/api/v1/sources/whatsapp/1");
    let signed = |body: &[u8]| vec![("x-hub-signature-256", ingest::auth::sign(APP_SECRET, body))];
    let mut events = Vec::new();
    let mut records = 0;
    for name in [
        "messages_text.json",
        "statuses_lifecycle.json",
        "statuses_failed.json",
    ] {
        let body = source_fixture("whatsapp", name);
        let mapped = ingest::sources::whatsapp::map(1, &[PHONE.to_owned()], &body);
        let (status, res) = post_webhook(&whatsapp, &signed(&body), body);
        assert_eq!(status, 200, "{name}: {res}");
        assert_eq!(res["accepted"], mapped.events.len() as u64, "{name}: {res}");
        records += mapped.events.len() as u64;
        events.extend(mapped.events);
    }
    // Meta's retry: produced again, counted once by the pipeline.
    let retry = source_fixture("whatsapp", "statuses_failed.json");
    let (status, _) = post_webhook(&whatsapp, &signed(&retry), retry.clone());
    assert_eq!(status, 200);
    records += ingest::sources::whatsapp::map(1, &[PHONE.to_owned()], &retry)
        .events
        .len() as u64;
    // Unsigned: refused, nothing produced.
    let (status, _) = post_webhook(
        &whatsapp,
        &[],
        source_fixture("whatsapp", "messages_text.json"),
    );
    assert_eq!(status, 401);
    // Another app's object: a dead letter naming the source.
    let other = source_fixture("whatsapp", "not_whatsapp.json");
    let (status, res) = post_webhook(&whatsapp, &signed(&other), other.clone());
    assert_eq!(
        (status, res["dead_lettered"].as_u64()),
        (200, Some(1)),
        "{res}"
    );

    let body = source_fixture("chatwoot", "conversation_created.json");
    let mapped = ingest::sources::chatwoot::map(1, &body);
    let (status, res) = post_webhook(
        &format!("http://127.0.0.1:{port}/api/v1/sources/chatwoot/1?token={CW_TOKEN}"),
        &[],
        body,
    );
    assert_eq!(status, 200, "{res}");
    records += mapped.events.len() as u64;
    events.extend(mapped.events);

    let run_port = free_port();
    let _run = Guard(s.spawn(
        "run",
        &["run", "--listen", &format!("127.0.0.1:{run_port}")],
    ));
    let view = s.wait_for_events(records, Duration::from_secs(180));
    assert_eq!(view.applied(), crate::reference(&events));

    use rdkafka::Message as _;
    use rdkafka::consumer::Consumer as _;
    use rdkafka::message::Headers as _;
    let consumer: rdkafka::consumer::BaseConsumer =
        s.kafka.reader_config("test-dlq").create().unwrap();
    consumer.subscribe(&[&s.kafka.topics.dead_letters]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let letter = loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            break m.detach();
        }
        assert!(Instant::now() < deadline, "no dead letter");
    };
    let header = |key: &str| {
        letter.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == key)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    assert_eq!(header("source").as_deref(), Some("whatsapp"));
    assert!(header("reason").is_some_and(|r| r.starts_with("object: expected")));
    let raw = String::from_utf8_lossy(letter.payload().unwrap_or_default()).into_owned();
    assert!(raw.contains("\"page\""), "{raw}");
}
