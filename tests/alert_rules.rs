//! The alert rules in `infra/prometheus/crmpulse-rules.yml` and the Grafana dashboard
//! `infra/grafana/dashboards/crmpulse.json` read only metrics that a running
//! `crmpulse` exports: every `crmpulse_*` name in their expressions is on `/metrics` of
//! an embedded `run` with ClickHouse after a little traffic (the Kafka-only ones are
//! checked by `tests/kafka/modes.rs` and `tests/kafka/topics.rs`). `promtool check rules` and `promtool test rules`
//! (scripts/test) check the rules themselves.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{clickhouse_url, ev, free_port, opened, post_events, unique_database, wait_caught_up};
use serde_json::{Value, json};

const NOW: &str = "2026-11-20T12:00:00Z";

/// Metrics only the Kafka mode exports.
pub const KAFKA_ONLY: &[&str] = &[
    "crmpulse_kafka_dead_letters_total",
    "crmpulse_kafka_source_lag_messages",
    "crmpulse_kafka_source_events_total",
];

/// Every `crmpulse_*` metric name the rules and the dashboard's queries read.
fn rule_metrics() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("infra/prometheus/crmpulse-rules.yml")).unwrap();
    let mut exprs: Vec<String> = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .map(str::to_owned)
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("infra/grafana/dashboards/crmpulse.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let mut names = BTreeSet::new();
    for line in &exprs {
        let mut rest = line.as_str();
        while let Some(i) = rest.find("crmpulse_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            names.insert(name);
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_alert_rules_and_the_grafana_dashboard_read_is_exported() {
    let wanted = rule_metrics();
    assert!(wanted.len() >= 10, "{wanted:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        format!(
            "[clickhouse]\nurl = {:?}\ndatabase = {:?}\nflush_interval_ms = 200\n\n[reports]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nretry_attempts = 1\n",
            clickhouse_url(),
            unique_database("crmpulse_rules"),
            free_port(),
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = common::start_with(
        port,
        &dir.path().join("data"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    );
    let client = common::client(port);

    // Traffic that makes the labelled series appear: an event accepted, one refused,
    // one redelivered, dashboard reads, a live connection, a report that fails to send.
    let res = post_events(
        &client,
        &base,
        &json!([ev("e1", "2026-11-20T10:00:00Z", opened("c1")),
            {"event_id": "bad", "account_id": 1, "occurred_at": "2026-11-20T10:00:00Z", "type": "conversation_opened"}]),
    )
    .await;
    assert!(res.status().is_client_error() || res.status().is_success());
    wait_caught_up(&client, &base, 1).await;
    post_events(
        &client,
        &base,
        &json!([ev("e1", "2026-11-20T10:00:00Z", opened("c1"))]),
    )
    .await;
    client
        .get(format!("{base}/api/dashboard/kpi"))
        .send()
        .await
        .unwrap();
    let (_ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/live"))
        .await
        .unwrap();
    let schedule: Value = client
        .post(format!("{base}/api/reports/schedules"))
        .json(
            &json!({"name": "r", "cadence": "daily", "local_time": "09:00",
            "recipients": ["a@crmpulse.test"], "sections": ["kpi"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    client
        .post(format!(
            "{base}/api/reports/schedules/{}/send",
            schedule["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();

    // The process gauges are sampled every 5 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let text = common::metrics_text(&client, &base).await;
        let exported: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| !KAFKA_ONLY.contains(&w.as_str()))
            // Set only under a cgroup v2 memory limit (a container); not on this host.
            .filter(|w| {
                w.as_str() != "crmpulse_memory_limit_bytes"
                    || std::fs::read_to_string("/sys/fs/cgroup/memory.max")
                        .is_ok_and(|s| s.trim().parse::<u64>().is_ok())
            })
            .filter(|w| !exported.contains(w.as_str()))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        missing.is_empty(),
        "the alert rules or the Grafana dashboard read metrics nobody exports: {missing:?}"
    );
}
