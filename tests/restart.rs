//! The real binary, end to end: events POSTed to `crmpulse run` show up in the KPI
//! strip with the expected values; a malformed event is refused with its reason while
//! the valid ones in the same body are kept; after `kill -9` and a restart on the same
//! data dir the numbers for a past range are identical.

mod common;

use common::{agent_message, ev, free_port, opened, post_events, start, wait_caught_up};
use serde_json::{Value, json};

/// The servers' clock ("now"): the day after the events (2026-11-20), for both starts.
const NOW: &str = "2026-11-21T12:00:00Z";

fn events() -> Vec<Value> {
    let open = opened;
    let agent_msg = |m: &str, c: &str| agent_message(m, c, "a1");
    let status = |m: &str, s: &str| json!({"type": "message_status", "message_id": m, "status": s});
    vec![
        ev("e1", "2026-11-20T10:00:00Z", open("c1")),
        ev(
            "e2",
            "2026-11-20T10:00:30Z",
            json!({"type": "conversation_assigned", "conversation_id": "c1", "assignee": "agent", "agent_id": "a1"}),
        ),
        ev("e3", "2026-11-20T10:02:00Z", agent_msg("m1", "c1")),
        ev("e4", "2026-11-20T11:00:00Z", open("c2")),
        ev(
            "e5",
            "2026-11-20T11:00:01Z",
            json!({"type": "conversation_assigned", "conversation_id": "c2", "assignee": "bot"}),
        ),
        ev(
            "e6",
            "2026-11-20T11:05:00Z",
            json!({"type": "conversation_escalated", "conversation_id": "c2"}),
        ),
        ev("e7", "2026-11-20T11:15:00Z", agent_msg("m2", "c2")),
        ev(
            "e8",
            "2026-11-20T11:20:00Z",
            json!({"type": "conversation_resolved", "conversation_id": "c2", "resolved_by": "agent"}),
        ),
        // Statuses out of order: read before sent; m2 fails.
        ev("e9", "2026-11-20T10:02:05Z", status("m1", "read")),
        ev("e10", "2026-11-20T10:02:01Z", status("m1", "sent")),
        ev("e11", "2026-11-20T11:15:02Z", status("m2", "failed")),
        ev(
            "e12",
            "2026-11-20T12:00:00Z",
            json!({"type": "ticket_opened", "ticket_id": "t1", "priority": "high"}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_values_survive_kill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, dir.path(), NOW);
    let client = common::client(port);

    // Wait for the server, then send a body with one malformed event in the middle.
    let mut body = events();
    body.insert(
        3,
        ev(
            "bad",
            "2026-11-20T10:00:00Z",
            json!({"type": "conversation_opened", "conversation_id": "c9"}),
        ),
    );
    let res = post_events(&client, &base, &Value::from(body)).await;
    assert_eq!(res.status(), 422);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["accepted"], 12);
    assert_eq!(
        out["rejected"],
        json!([{"index": 3, "event_id": "bad", "error": "customer_id: missing required field"}])
    );

    // A retry of the same body is all duplicates.
    let out: Value = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(common::creds(port).ingest_key)
        .json(&events())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (out["accepted"].as_u64(), out["duplicates"].as_u64()),
        (Some(0), Some(12))
    );

    wait_caught_up(&client, &base, 12).await;
    let url = format!("{base}/api/dashboard/kpi?from=2026-11-20&to=2026-11-21");
    let before: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        before["active_conversations"],
        json!({"total": 1, "unassigned": 0, "bot": 0, "agent": 1})
    );
    // c1: 120 s from open; c2: 600 s from the bot's hand-over at 11:05.
    assert_eq!(
        before["first_response"]["current"],
        json!({"count": 2, "avg_s": 360.0, "p50_s": 120, "p90_s": 600})
    );
    assert_eq!(
        before["whatsapp_delivery"]["current"],
        json!({"delivered": 1, "with_status": 2, "rate": 0.5})
    );
    assert_eq!(before["open_tickets"]["high"], 1);

    child.kill().unwrap(); // SIGKILL: no clean shutdown.
    child.wait().unwrap();
    let mut child = start(port, dir.path(), NOW);
    wait_caught_up(&client, &base, 12).await;
    let mut after: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let mut before = before;
    for body in [&mut before, &mut after] {
        body.as_object_mut().unwrap().remove("progress");
        body.as_object_mut().unwrap().remove("messages_today");
    }
    assert_eq!(before, after);
}
