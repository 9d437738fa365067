//! `crmpulse demo` as a new user meets it: after the backfill the server is ready, and
//! business impact's cost per conversation is a real amount (the demo account has cost
//! inputs when the configuration sets none), from agent hours and WhatsApp fees.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client_with, free_port, get_json, now_args, token};

const NOW: &str = "2026-11-20T12:00:00Z";

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_is_ready_after_its_backfill_and_costs_are_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(now_args(NOW))
        .args(["demo", "--backfill-days", "1", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // Ready once the backfill in the log has gone through the pipeline.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = match http.get(format!("{base}/readyz")).send().await {
            Ok(res) => res.status().is_success(),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the demo was not ready in 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let admin = client_with(&token(dir.path(), NOW, 1, &["admin"]));
    let body = get_json(
        &admin,
        &format!("{base}/api/dashboard/business-impact?from=2026-11-19&to=2026-11-21"),
    )
    .await;
    let _ = demo.kill();
    let _ = demo.wait();
    let cost = &body["cost_per_conversation"]["current"];
    assert!(cost["conversations"].as_u64().unwrap_or(0) > 0, "{body}");
    assert!(cost["agent_hours"].as_f64().unwrap_or(0.0) > 0.0, "{body}");
    // $18.00 per active agent hour and 5 cents per WhatsApp conversation.
    let hours = cost["agent_hours"].as_f64().unwrap();
    let agent_cost = cost["agent_cost_minor"].as_i64().unwrap();
    // `agent_hours` is shown to a tenth of an hour: 0.05 h is 90 cents.
    assert!(
        (agent_cost as f64 - hours * 1_800.0).abs() <= 90.0,
        "{agent_cost} for {hours} h"
    );
    let fees = cost["channel_fees_minor"].as_i64().unwrap();
    assert!(fees > 0 && fees % 5 == 0, "{body}");
    assert!(
        cost["per_conversation_minor"].as_i64().unwrap() > 0,
        "{body}"
    );
}

/// Starts `crmpulse demo` on `dir` and waits until it is ready.
async fn start_demo(dir: &std::path::Path, port: u16, days: &str) -> common::Killed {
    let demo = common::Killed(
        Command::new(env!("CARGO_BIN_EXE_crmpulse"))
            .args(now_args(NOW))
            .args(["demo", "--backfill-days", days, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the demo was not ready in 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    demo
}

/// A restarted demo continues its world without storing its history again: with a
/// 9-day backfill, 2 days are older than the 7-day lateness horizon, and appending
/// them again made every restart of the 35-day demo write 1.26M `too_late` dead
/// letters (45 MB → 596 MB).
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_demo_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = client_with(&token(dir.path(), NOW, 1, &["admin"]));
    let demo = start_demo(dir.path(), port, "9").await;
    let health = get_json(&admin, &format!("http://127.0.0.1:{port}/healthz")).await;
    let stored = health["log_events"].as_u64().unwrap();
    assert!(stored > 100_000, "{health}");
    drop(demo);

    let demo = start_demo(dir.path(), port, "9").await;
    let base = format!("http://127.0.0.1:{port}");
    let metrics = common::metrics_text(&admin, &base).await;
    let too_late = common::metric(&metrics, "crmpulse_log_too_late_events_total");
    let duplicates = common::metric(&metrics, "crmpulse_log_duplicate_events_total");
    let health = get_json(&admin, &format!("http://127.0.0.1:{port}/healthz")).await;
    drop(demo);
    assert_eq!(
        too_late, 0.0,
        "the restart re-sent history older than the horizon"
    );
    // At most the last simulated minute is sent again (recognised by id).
    assert!(duplicates < 1_000.0, "{duplicates} duplicates");
    let after = health["log_events"].as_u64().unwrap();
    assert!(
        after >= stored && after < stored + 1_000,
        "{stored} → {after}"
    );
}
