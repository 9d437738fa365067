//! Account settings change at run time: rewriting the configuration file changes the
//! account's timezone (and so its day boundaries) and its SLA target in the next
//! responses, with no restart and nothing recomputed in the pipeline.

mod common;

use std::time::{Duration, Instant};

use common::{agent_message, ev, free_port, opened, post_events, start_with, wait_caught_up};
use serde_json::Value;

/// The servers' clock ("now"): the day after the event (2026-11-20), in either zone.
const NOW: &str = "2026-11-21T12:00:00Z";

#[tokio::test(flavor = "multi_thread")]
async fn timezone_and_sla_target_apply_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        "[accounts.defaults]\ntimezone = \"UTC\"\nsla_first_response_s = 300\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start_with(
        port,
        &dir.path().join("data"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    );
    let client = common::client(port);

    // One conversation answered after 400 s, at 10:06:40 UTC on 2026-11-20.
    let events = Value::from(vec![
        ev("s1", "2026-11-20T10:00:00Z", opened("c1")),
        ev(
            "s2",
            "2026-11-20T10:06:40Z",
            agent_message("m1", "c1", "a1"),
        ),
    ]);
    assert_eq!(post_events(&client, &base, &events).await.status(), 200);
    wait_caught_up(&client, &base, 2).await;

    let url = format!("{base}/api/dashboard/kpi?from=2026-11-20");
    let get = || async {
        client
            .get(&url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = get().await;
    assert_eq!(before["timezone"], "UTC");
    assert_eq!(before["range"]["from"], "2026-11-20T00:00:00.000Z");
    assert_eq!(before["first_response"]["current"]["p90_s"], 400);
    assert_eq!(before["first_response"]["sla_status"], "yellow"); // 300 < 400 ≤ 600

    std::fs::write(
        &config,
        "[accounts.defaults]\ntimezone = \"Asia/Kolkata\"\nsla_first_response_s = 500\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let body = get().await;
        if body["timezone"] == "Asia/Kolkata" {
            break body;
        }
        assert!(Instant::now() < deadline, "settings were not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // The local day 2026-11-20 in Kolkata starts at 18:30 UTC the day before.
    assert_eq!(after["range"]["from"], "2026-11-19T18:30:00.000Z");
    assert_eq!(after["first_response"]["sla_target_s"], 500);
    assert_eq!(after["first_response"]["sla_status"], "green");
}
