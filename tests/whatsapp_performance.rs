//! Golden scenario for WhatsApp performance through the real binary (UTC): the funnel
//! with statuses out of order (`read` without `delivered`, a late `sent` after `read`),
//! failures by error code, a broadcast's success, channel health now with a late older
//! report, the previous day, and the channel filter.

mod common;

use common::{ev, free_port, get_json, post_events, start, wait_caught_up};
use serde_json::{Value, json};

/// The servers' clock ("now"): the day after the test day 2026-11-20: the day and the
/// previous one are complete.
const NOW: &str = "2026-11-21T12:00:00Z";

fn out(m: &str, broadcast: Option<&str>) -> Value {
    let mut v = json!({"type": "message_created", "message_id": m, "conversation_id": "c1",
        "direction": "outbound", "sender": "agent", "agent_id": "a1", "channel": "whatsapp"});
    if let Some(b) = broadcast {
        v["broadcast_id"] = b.into();
    }
    v
}
fn status(m: &str, s: &str) -> Value {
    json!({"type": "message_status", "message_id": m, "status": s})
}
fn failed(m: &str, code: i64, title: &str) -> Value {
    json!({"type": "message_status", "message_id": m, "status": "failed", "error_code": code, "error_title": title})
}
fn health(ch: &str, state: &str, quality: &str, queue: u64, rate: f64) -> Value {
    json!({"type": "channel_health", "channel_id": ch, "state": state, "quality": quality,
        "queue_depth": queue, "sent_per_minute": rate})
}

#[tokio::test(flavor = "multi_thread")]
async fn whatsapp_performance_golden_day() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, dir.path(), NOW);
    let client = common::client(port);
    let d = |t: &str| format!("2026-11-20T{t}Z");
    let y = |t: &str| format!("2026-11-19T{t}Z");
    let first = vec![
        // m1 read; m2 read without delivered (its late `sent` comes in the second batch).
        ev("m1", &d("09:00:00"), out("m1", None)),
        ev("m1s", &d("09:00:01"), status("m1", "sent")),
        ev("m1d", &d("09:00:02"), status("m1", "delivered")),
        ev("m1r", &d("09:05:00"), status("m1", "read")),
        ev("m2", &d("09:10:00"), out("m2", None)),
        ev("m2r", &d("09:11:00"), status("m2", "read")),
        // m3 delivered; m4 sent then failed; m5, m6 failed; m7 no status yet.
        ev("m3", &d("10:00:00"), out("m3", None)),
        ev("m3s", &d("10:00:01"), status("m3", "sent")),
        ev("m3d", &d("10:00:05"), status("m3", "delivered")),
        ev("m4", &d("10:30:00"), out("m4", None)),
        ev("m4s", &d("10:30:01"), status("m4", "sent")),
        ev(
            "m4f",
            &d("10:31:00"),
            failed("m4", 131_047, "Re-engagement message"),
        ),
        ev("m5", &d("11:00:00"), out("m5", None)),
        ev(
            "m5f",
            &d("11:00:09"),
            failed("m5", 131_026, "Message undeliverable"),
        ),
        ev("m6", &d("11:30:00"), out("m6", None)),
        ev(
            "m6f",
            &d("11:30:09"),
            failed("m6", 131_026, "Message undeliverable"),
        ),
        ev("m7", &d("12:00:00"), out("m7", None)),
        // Not in the funnel: inbound, and another channel.
        ev(
            "m8",
            &d("12:00:00"),
            json!({"type": "message_created", "message_id": "m8", "conversation_id": "c1",
            "direction": "inbound", "sender": "customer", "channel": "whatsapp"}),
        ),
        ev(
            "m9",
            &d("12:00:00"),
            json!({"type": "message_created", "message_id": "m9", "conversation_id": "c2",
            "direction": "outbound", "sender": "agent", "channel": "webchat"}),
        ),
        ev("m9s", &d("12:00:01"), status("m9", "sent")),
        // Broadcast b1: 4 recipients, 3 sampled messages: delivered, read, failed.
        ev(
            "b1",
            &d("14:00:00"),
            json!({"type": "broadcast_sent", "broadcast_id": "b1", "campaign_id": "spring", "recipients": 4}),
        ),
        ev("m10", &d("14:00:00"), out("m10", Some("b1"))),
        ev("m10d", &d("14:00:03"), status("m10", "delivered")),
        ev("m11", &d("14:00:00"), out("m11", Some("b1"))),
        ev("m11r", &d("14:20:00"), status("m11", "read")),
        ev("m12", &d("14:00:00"), out("m12", Some("b1"))),
        ev(
            "m12f",
            &d("14:00:04"),
            failed("m12", 131_049, "Meta chose not to deliver"),
        ),
        // Yesterday: p1 delivered, p2 failed, broadcast b0 (10 recipients) with p3 delivered.
        ev("p1", &y("10:00:00"), out("p1", None)),
        ev("p1d", &y("10:00:05"), status("p1", "delivered")),
        ev("p2", &y("11:00:00"), out("p2", None)),
        ev(
            "p2f",
            &y("11:00:05"),
            failed("p2", 131_047, "Re-engagement message"),
        ),
        ev(
            "b0",
            &y("15:00:00"),
            json!({"type": "broadcast_sent", "broadcast_id": "b0", "recipients": 10}),
        ),
        ev("p3", &y("15:00:00"), out("p3", Some("b0"))),
        ev("p3d", &y("15:00:05"), status("p3", "delivered")),
        // Channel health: wa-1 reports twice, wa-2 once.
        ev(
            "h1",
            &d("13:00:00"),
            health("wa-1", "connected", "green", 5, 12.5),
        ),
        ev(
            "h2",
            &d("15:00:00"),
            health("wa-1", "degraded", "yellow", 40, 3.25),
        ),
        ev(
            "h3",
            &d("14:30:00"),
            health("wa-2", "connected", "green", 2, 1.0),
        ),
    ];
    // Arriving last but older in event time: they change nothing.
    let late = vec![
        ev("m2s", &d("09:20:00"), status("m2", "sent")),
        ev(
            "h0",
            &d("08:00:00"),
            health("wa-1", "connected", "green", 0, 0.0),
        ),
    ];
    let n = (first.len() + late.len()) as u64;
    assert_eq!(
        post_events(&client, &base, &Value::from(first))
            .await
            .status(),
        200
    );
    assert_eq!(
        post_events(&client, &base, &Value::from(late))
            .await
            .status(),
        200
    );
    wait_caught_up(&client, &base, n).await;
    let get = |q: &str| {
        let url =
            format!("{base}/api/dashboard/whatsapp-performance?from=2026-11-20&to=2026-11-21{q}");
        let client = client.clone();
        async move { get_json(&client, &url).await }
    };
    let body = get("").await;
    let webchat = get("&channel=webchat").await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(body["section"], "whatsapp-performance");
    assert_eq!(
        body["funnel"],
        json!({
            "current": {"created": 10, "sent": 6, "delivered": 5, "read": 3, "failed": 4, "with_status": 9, "read_rate": 0.6},
            "previous": {"created": 3, "sent": 2, "delivered": 2, "read": 0, "failed": 1, "with_status": 3, "read_rate": 0.0},
        })
    );
    assert_eq!(
        body["delivery"],
        json!({
            "current": {"delivered": 5, "with_status": 9, "rate": 0.5556},
            "previous": {"delivered": 2, "with_status": 3, "rate": 0.6667},
            "alert_below": 0.9, "alert": true,
        })
    );
    assert_eq!(
        body["failures"],
        json!([
            {"error_code": 131_026, "error_title": "Message undeliverable", "category": "recipient", "count": 2, "previous": 0},
            {"error_code": 131_047, "error_title": "Re-engagement message", "category": "policy", "count": 1, "previous": 1},
            {"error_code": 131_049, "error_title": "Meta chose not to deliver", "category": "policy", "count": 1, "previous": 0},
        ])
    );
    assert_eq!(
        body["broadcasts"],
        json!({
            "rows": [{"broadcast_id": "b1", "campaign_id": "spring", "sent_at": "2026-11-20T14:00:00.000Z",
                      "recipients": 4, "messages": 3, "delivered": 2, "read": 1, "failed": 1, "success_rate": 0.5}],
            "current": {"broadcasts": 1, "recipients": 4, "delivered": 2, "success_rate": 0.5},
            "previous": {"broadcasts": 1, "recipients": 10, "delivered": 1, "success_rate": 0.1},
        })
    );
    let now = &body["channels_now"];
    assert_eq!(
        (
            &now["queue_depth"],
            &now["sent_per_minute"],
            &now["unhealthy"]
        ),
        (&json!(42), &json!(4.25), &json!(1))
    );
    let channels: Vec<Value> = now["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["age_s"].as_i64().unwrap() >= 0);
            json!([
                c["channel_id"],
                c["state"],
                c["quality"],
                c["queue_depth"],
                c["sent_per_minute"],
                c["reported_at"]
            ])
        })
        .collect();
    assert_eq!(
        channels,
        vec![
            json!([
                "wa-1",
                "degraded",
                "yellow",
                40,
                3.25,
                "2026-11-20T15:00:00.000Z"
            ]),
            json!([
                "wa-2",
                "connected",
                "green",
                2,
                1.0,
                "2026-11-20T14:30:00.000Z"
            ]),
        ]
    );
    // Messages are all WhatsApp: another channel sees none; channel health is not filtered.
    assert_eq!(webchat["funnel"]["current"]["created"], 0);
    assert_eq!(webchat["broadcasts"]["rows"], json!([]));
    assert_eq!(webchat["channels_now"]["queue_depth"], 42);
}
