//! Golden scenario for automation impact through the real binary (UTC): bot-only and
//! human conversations, an escalation, a drop-off, auto replies, intents, a revised
//! CSAT score, time saved, the previous day, and the inbox filter.

mod common;

use common::{ev, free_port, get_json, post_events, start, wait_caught_up};
use serde_json::{Value, json};

/// The servers' clock ("now"): the day after the test day 2026-11-20: the day and the
/// previous one are complete.
const NOW: &str = "2026-11-21T12:00:00Z";

fn open(c: &str, inbox: &str) -> Value {
    json!({"type": "conversation_opened", "conversation_id": c, "customer_id": "u1",
        "channel": "whatsapp", "inbox_id": inbox, "origin": "inbound"})
}
fn bot(c: &str) -> Value {
    json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "bot"})
}
fn agent(c: &str) -> Value {
    json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "agent", "agent_id": "a1"})
}
fn auto_reply(m: &str, c: &str) -> Value {
    json!({"type": "message_created", "message_id": m, "conversation_id": c, "direction": "outbound",
        "sender": "bot", "channel": "whatsapp", "auto_reply": true})
}
fn agent_msg(m: &str, c: &str) -> Value {
    json!({"type": "message_created", "message_id": m, "conversation_id": c, "direction": "outbound",
        "sender": "agent", "agent_id": "a1", "channel": "whatsapp"})
}
fn intent(c: &str, i: &str) -> Value {
    json!({"type": "intent_detected", "conversation_id": c, "intent": i, "confidence": 0.9})
}
fn escalated(c: &str) -> Value {
    json!({"type": "conversation_escalated", "conversation_id": c})
}
fn resolved(c: &str, by: &str) -> Value {
    json!({"type": "conversation_resolved", "conversation_id": c, "resolved_by": by})
}
fn csat(c: &str, score: u8) -> Value {
    json!({"type": "csat_submitted", "conversation_id": c, "score": score})
}

#[tokio::test(flavor = "multi_thread")]
async fn automation_impact_golden_day() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, dir.path(), NOW);
    let client = common::client(port);
    let d = |t: &str| format!("2026-11-20T{t}Z");
    let y = |t: &str| format!("2026-11-19T{t}Z");
    let events = vec![
        // c1: the bot answers with an auto reply and resolves it; CSAT 5.
        ev("c1o", &d("09:00:00"), open("c1", "i1")),
        ev("c1b", &d("09:00:01"), bot("c1")),
        ev("c1m", &d("09:00:02"), auto_reply("m1", "c1")),
        ev("c1i", &d("09:00:05"), intent("c1", "billing")),
        ev("c1r", &d("09:05:00"), resolved("c1", "bot")),
        ev("c1c", &d("09:06:00"), csat("c1", 5)),
        // c2: auto reply, escalated at 10:02, an agent resolves at 10:32 (1800 s); CSAT 3.
        ev("c2o", &d("10:00:00"), open("c2", "i1")),
        ev("c2b", &d("10:00:01"), bot("c2")),
        ev("c2m", &d("10:00:02"), auto_reply("m2", "c2")),
        ev("c2i", &d("10:00:05"), intent("c2", "billing")),
        ev("c2e", &d("10:02:00"), escalated("c2")),
        ev("c2a", &d("10:03:00"), agent("c2")),
        ev("c2h", &d("10:05:00"), agent_msg("m3", "c2")),
        ev("c2r", &d("10:32:00"), resolved("c2", "agent")),
        ev("c2c", &d("10:40:00"), csat("c2", 3)),
        // c3: the customer drops off; the system closes it.
        ev("c3o", &d("11:00:00"), open("c3", "i1")),
        ev("c3b", &d("11:00:01"), bot("c3")),
        ev("c3i", &d("11:00:05"), intent("c3", "order_status")),
        ev("c3r", &d("11:30:00"), resolved("c3", "system")),
        // c4: no bot; an agent handles it from the open (1200 s); CSAT 4. Inbox i2.
        ev("c4o", &d("12:00:00"), open("c4", "i2")),
        ev("c4a", &d("12:01:00"), agent("c4")),
        ev("c4h", &d("12:02:00"), agent_msg("m4", "c4")),
        ev("c4r", &d("12:20:00"), resolved("c4", "agent")),
        ev("c4c", &d("12:30:00"), csat("c4", 4)),
        // c5: bot-only; CSAT 2 revised to 4.
        ev("c5o", &d("13:00:00"), open("c5", "i1")),
        ev("c5b", &d("13:00:01"), bot("c5")),
        ev("c5i", &d("13:00:05"), intent("c5", "order_status")),
        ev("c5r", &d("13:10:00"), resolved("c5", "bot")),
        ev("c5c2", &d("13:20:00"), csat("c5", 4)),
        ev("c5c1", &d("13:15:00"), csat("c5", 2)),
        // c6: auto reply, still open.
        ev("c6o", &d("14:00:00"), open("c6", "i1")),
        ev("c6b", &d("14:00:01"), bot("c6")),
        ev("c6m", &d("14:00:02"), auto_reply("m6", "c6")),
        // Yesterday: y1 bot-only, y2 escalated and handled for 600 s.
        ev("y1o", &y("10:00:00"), open("y1", "i1")),
        ev("y1b", &y("10:00:01"), bot("y1")),
        ev("y1r", &y("10:05:00"), resolved("y1", "bot")),
        ev("y2o", &y("11:00:00"), open("y2", "i1")),
        ev("y2b", &y("11:00:01"), bot("y2")),
        ev("y2e", &y("11:01:00"), escalated("y2")),
        ev("y2h", &y("11:02:00"), agent_msg("m7", "y2")),
        ev("y2r", &y("11:11:00"), resolved("y2", "agent")),
    ];
    let n = events.len() as u64;
    assert_eq!(
        post_events(&client, &base, &Value::from(events))
            .await
            .status(),
        200
    );
    wait_caught_up(&client, &base, n).await;
    let get = |q: &str| {
        let url =
            format!("{base}/api/dashboard/automation-impact?from=2026-11-20&to=2026-11-21{q}");
        let client = client.clone();
        async move { get_json(&client, &url).await }
    };
    let body = get("").await;
    let inbox2 = get("&inbox_id=i2").await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(body["section"], "automation-impact");
    assert_eq!(
        body["conversations"],
        json!({
            "current": {"total": 6, "bot_only": 2, "with_humans": 2, "other": 2, "bot_only_share": 0.3333},
            "previous": {"total": 2, "bot_only": 1, "with_humans": 1, "other": 0, "bot_only_share": 0.5},
        })
    );
    assert_eq!(
        body["escalation"],
        json!({"current": {"count": 1, "of": 5, "rate": 0.2}, "previous": {"count": 1, "of": 2, "rate": 0.5}})
    );
    assert_eq!(
        body["drop_off"],
        json!({"current": {"count": 1, "of": 5, "rate": 0.2}, "previous": {"count": 0, "of": 2, "rate": 0.0}})
    );
    assert_eq!(
        body["auto_reply_success"],
        json!({"current": {"count": 1, "of": 3, "rate": 0.3333}, "previous": {"count": 0, "of": 0, "rate": null}})
    );
    assert_eq!(
        body["top_intents"],
        json!([
            {"intent": "billing", "conversations": 2, "previous_conversations": 0,
             "bot_resolution": {"count": 1, "of": 2, "rate": 0.5}, "escalation": {"count": 1, "of": 2, "rate": 0.5}},
            {"intent": "order_status", "conversations": 2, "previous_conversations": 0,
             "bot_resolution": {"count": 1, "of": 2, "rate": 0.5}, "escalation": {"count": 0, "of": 2, "rate": 0.0}},
        ])
    );
    assert_eq!(
        body["time_saved"],
        json!({
            "current": {"bot_only_resolutions": 2, "human_conversations": 2, "avg_human_handling_s": 1500.0, "saved_s": 3000},
            "previous": {"bot_only_resolutions": 1, "human_conversations": 1, "avg_human_handling_s": 600.0, "saved_s": 600},
        })
    );
    assert_eq!(
        body["csat"],
        json!({
            "current": {
                "bot_only": {"responses": 2, "average": 4.5, "satisfaction": 1.0},
                "with_humans": {"responses": 2, "average": 3.5, "satisfaction": 0.5},
            },
            "previous": {
                "bot_only": {"responses": 0, "average": null, "satisfaction": null},
                "with_humans": {"responses": 0, "average": null, "satisfaction": null},
            },
        })
    );
    assert_eq!(
        inbox2["conversations"]["current"],
        json!({"total": 1, "bot_only": 0, "with_humans": 1, "other": 0, "bot_only_share": 0.0})
    );
    assert_eq!(inbox2["escalation"]["current"]["of"], 0);
}
