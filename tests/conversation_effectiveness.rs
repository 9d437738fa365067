//! Golden scenario for the conversation-effectiveness section, through the real
//! binary: every number below is computed by hand in the comments (target 300 s, UTC).

mod common;

use common::{agent_message, ev, free_port, opened, post_events, resolved, start, wait_caught_up};
use serde_json::{Value, json};

/// The servers' clock ("now"): the day after the test day 2026-11-20: every SLA deadline of
/// the day has passed, so what is breached and what is still waiting is fixed.
const NOW: &str = "2026-11-21T12:00:00Z";

fn assigned(c: &str, agent: &str, team: &str) -> Value {
    json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "agent", "agent_id": agent, "team_id": team})
}
fn bot(c: &str) -> Value {
    json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "bot"})
}

fn scenario() -> Vec<Value> {
    let d = |t: &str| format!("2026-11-20T{t}Z");
    let mut n = 0;
    let mut e = |at: String, body: Value| {
        n += 1;
        ev(&format!("ce{n}"), &at, body)
    };
    vec![
        // c1: a1 replies after 120 s (met), resolves.
        e(d("10:00:00"), opened("c1")),
        e(d("10:00:30"), assigned("c1", "a1", "t1")),
        e(d("10:02:00"), agent_message("m1", "c1", "a1")),
        e(d("10:20:00"), agent_message("m1b", "c1", "a1")),
        e(d("10:30:00"), resolved("c1", "agent", Some("a1"))),
        // c2: bot first, hands over at 11:05, a2 replies at 11:15: 600 s (breached), resolves.
        e(d("11:00:00"), opened("c2")),
        e(d("11:00:01"), bot("c2")),
        e(
            d("11:05:00"),
            json!({"type": "conversation_escalated", "conversation_id": "c2"}),
        ),
        e(d("11:06:00"), assigned("c2", "a2", "t2")),
        e(d("11:15:00"), agent_message("m2", "c2", "a2")),
        e(d("11:20:00"), resolved("c2", "agent", Some("a2"))),
        // c3: never answered: deadline 12:05 passed → breached, still waiting.
        e(d("12:00:00"), opened("c3")),
        // c4: the bot resolves it alone: nobody owes a human reply.
        e(d("13:00:00"), opened("c4")),
        e(d("13:00:01"), bot("c4")),
        e(d("13:02:00"), resolved("c4", "bot", None)),
        // c5: a1 replies after 180 s (met), still open.
        e(d("14:00:00"), opened("c5")),
        e(d("14:01:00"), assigned("c5", "a1", "t1")),
        e(d("14:03:00"), agent_message("m5", "c5", "a1")),
        // c6: opened the day before at 23:50, a1 replies at 00:01: 660 s, counted today.
        e("2026-11-19T23:50:00Z".into(), opened("c6")),
        e(d("00:01:00"), agent_message("m6", "c6", "a1")),
        // c7: closed by the system before its deadline: not a breach.
        e(d("15:00:00"), opened("c7")),
        e(d("15:03:00"), resolved("c7", "system", None)),
        // c8: closed by the system after its deadline, unanswered: a breach.
        e(d("16:00:00"), opened("c8")),
        e(d("16:30:00"), resolved("c8", "system", None)),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn conversation_effectiveness_golden_day() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, dir.path(), NOW);
    let client = common::client(port);
    let events = scenario();
    let res = post_events(&client, &base, &Value::from(events.clone())).await;
    assert_eq!(res.status(), 200);
    wait_caught_up(&client, &base, events.len() as u64).await;

    let url =
        format!("{base}/api/dashboard/conversation-effectiveness?from=2026-11-20&to=2026-11-21");
    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let by_team: Value = client
        .get(format!("{url}&team_id=t1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_agent: Value = client
        .get(format!("{url}&agent_id=a1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    // Replies today: c1 120 (met), c2 600, c5 180 (met), c6 660 → 2 met of 4;
    // unanswered past deadline today: c3, c8 → compliance 2 / 6.
    assert_eq!(
        body["sla"]["current"],
        json!({"met": 2, "replied": 4, "breached_unanswered": 2, "compliance": 0.3333})
    );
    assert_eq!(
        body["sla"]["previous"],
        json!({"met": 0, "replied": 0, "breached_unanswered": 0, "compliance": null})
    );
    assert_eq!(
        body["sla"]["waiting_now"],
        json!({"within_target": 0, "past_target": 1})
    );
    // a1 wrote in c1, c5, c6; a2 in c2.
    assert_eq!(
        body["handled_per_agent"],
        json!([
            {"agent_id": "a1", "conversations": 3, "previous": 0},
            {"agent_id": "a2", "conversations": 1, "previous": 0},
        ])
    );
    // Opened today: c1–c5, c7, c8; resolved now: c1, c2, c4, c7, c8.
    assert_eq!(
        body["resolution"]["opened_in_range"],
        json!({"total": 7, "resolved": 5, "open": 2})
    );
    assert_eq!(
        body["resolution"]["resolve_events"],
        json!({"total": 5, "by_agent": 2, "by_bot": 1, "by_system": 2})
    );
    // Team t1: only c1's resolution happened under a t1 assignment (c2 was t2's, the
    // bot's and the system's closes had no agent assignment). It counted all five.
    assert_eq!(
        by_team["resolution"]["resolve_events"],
        json!({"total": 1, "by_agent": 1, "by_bot": 0, "by_system": 0})
    );
    // Under one agent's filter, nobody's unanswered queue is that agent's: c3 is not
    // shown as a1's (it was the whole account's waiting count).
    assert_eq!(
        by_agent["sla"]["waiting_now"],
        json!({"within_target": 0, "past_target": 0})
    );
    assert_eq!(by_agent["sla"]["current"]["breached_unanswered"], 0);
    // a1: sla 2/3, resolution 1/3, volume 1 → 100 × (0.5·0.6667 + 0.3·0.3333 + 0.2) = 63.
    // a2: sla 0, resolution 1, volume 1/3 → 100 × (0.3 + 0.0667) = 37.
    let agents = &body["agent_ranking"]["agents"];
    assert_eq!(
        agents[0],
        json!({"rank": 1, "agent_id": "a1", "score": 63, "level": "ok", "handled": 3, "resolved": 1,
        "resolution_rate": 0.3333, "frt_avg_s": 320.0, "sla_met_rate": 0.6667})
    );
    assert_eq!(
        agents[1],
        json!({"rank": 2, "agent_id": "a2", "score": 37, "level": "attention", "handled": 1, "resolved": 1,
        "resolution_rate": 1.0, "frt_avg_s": 600.0, "sla_met_rate": 0.0})
    );
    // Hourly trend: 24 local hours; 00:00 holds c6's 660 s, 10:00 c1's 120 s.
    let points = body["frt_trend"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(
        points[0],
        json!({"start": "2026-11-20T00:00:00.000Z", "count": 1, "avg_s": 660.0, "p50_s": 660, "p90_s": 660})
    );
    assert_eq!(points[10]["count"], 1);
    assert_eq!(points[10]["p50_s"], 120);
    assert_eq!(
        points[12],
        json!({"start": "2026-11-20T12:00:00.000Z", "count": 0, "avg_s": null, "p50_s": null, "p90_s": null})
    );
}
