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
