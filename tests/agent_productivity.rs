//! Golden scenario for agent productivity through the real binary (UTC, target 300 s):
//! time in status cut at the range's edges, current status, handled and resolved
//! conversations, the score, and the workload spread.

mod common;

use common::{agent_message, ev, free_port, opened, post_events, start, wait_caught_up};
use serde_json::{Value, json};

/// The servers' clock ("now"): the day after the test day 2026-11-20 (its last status
/// change is at 01:00): time in each status within the day and the current status are those
/// of a finished day.
const NOW: &str = "2026-11-21T12:00:00Z";

fn status(agent: &str, team: &str, s: &str) -> Value {
    json!({"type": "agent_status_changed", "agent_id": agent, "team_id": team, "status": s})
}
fn assigned(c: &str, agent: &str, team: &str) -> Value {
    json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "agent", "agent_id": agent, "team_id": team})
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_productivity_golden_day() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, dir.path(), NOW);
    let client = common::client(port);
    let d = |t: &str| format!("2026-11-20T{t}Z");
    let events = vec![
        // a1: online from 22:00 the day before; busy 02:00, away 03:00, online 03:30,
        // offline 08:00, online again the next day at 01:00 (still now).
        ev("s1", "2026-11-19T22:00:00Z", status("a1", "t1", "online")),
        ev("s2", &d("02:00:00"), status("a1", "t1", "busy")),
        ev("s3", &d("03:00:00"), status("a1", "t1", "away")),
        ev("s4", &d("03:30:00"), status("a1", "t1", "online")),
        ev("s5", &d("08:00:00"), status("a1", "t1", "offline")),
        ev("s6", "2026-11-21T01:00:00Z", status("a1", "t1", "online")),
        // a2: online from 09:00, still now.
        ev("s7", &d("09:00:00"), status("a2", "t2", "online")),
        // c1: a1 replies after 120 s and resolves. c2: a1 replies after 600 s, keeps it.
        ev("c1o", &d("10:00:00"), opened("c1")),
        ev("c1a", &d("10:00:30"), assigned("c1", "a1", "t1")),
        ev("c1m", &d("10:02:00"), agent_message("m1", "c1", "a1")),
        ev(
            "c1r",
            &d("10:30:00"),
            json!({"type": "conversation_resolved", "conversation_id": "c1", "resolved_by": "agent", "agent_id": "a1"}),
        ),
        ev("c2o", &d("11:00:00"), opened("c2")),
        ev("c2a", &d("11:01:00"), assigned("c2", "a1", "t1")),
        ev("c2m", &d("11:10:00"), agent_message("m2", "c2", "a1")),
        // c3: assigned to a2, not answered yet.
        ev("c3o", &d("12:00:00"), opened("c3")),
        ev("c3a", &d("12:01:00"), assigned("c3", "a2", "t2")),
    ];
    let n = events.len() as u64;
    assert_eq!(
        post_events(&client, &base, &Value::from(events))
            .await
            .status(),
        200
    );
    wait_caught_up(&client, &base, n).await;
    let url = format!("{base}/api/dashboard/agent-productivity?from=2026-11-20&to=2026-11-21");
    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let team2: Value = client
        .get(format!("{url}&team_id=t2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let a1 = &body["agents"][0];
    assert_eq!(a1["agent_id"], "a1");
    // online 00:00–02:00 + 03:30–08:00 = 6.5 h; busy 1 h; away 0.5 h; offline 08:00–24:00.
    assert_eq!(
        a1["time_in_status_s"],
        json!({"online": 23_400, "busy": 3_600, "away": 1_800, "offline": 57_600})
    );
    assert_eq!(
        (
            a1["active_s"].clone(),
            a1["idle_s"].clone(),
            a1["utilisation"].clone()
        ),
        (json!(27_000), json!(1_800), json!(0.9375))
    );
    assert_eq!(
        (
            a1["handled"].clone(),
            a1["resolved"].clone(),
            a1["resolution_rate"].clone()
        ),
        (json!(2), json!(1), json!(0.5))
    );
    assert_eq!(
        (a1["frt_avg_s"].clone(), a1["sla_met_rate"].clone()),
        (json!(360.0), json!(0.5))
    );
    // The one agent score: 100 × (0.5 × sla 0.5 + 0.3 × resolution 0.5 + 0.2 × volume
    // 2/2, a1 handled the most) = 60; utilisation is shown beside it, not in it.
    assert_eq!(
        (a1["productivity_score"].clone(), a1["level"].clone()),
        (json!(60), json!("ok"))
    );
    assert_eq!(a1["status_now"]["status"], "online");
    assert_eq!(a1["status_now"]["since"], "2026-11-21T01:00:00.000Z");
    assert_eq!(a1["open_conversations"], 1);

    let a2 = &body["agents"][1];
    assert_eq!(a2["agent_id"], "a2");
    assert_eq!(a2["time_in_status_s"]["online"], 54_000); // 09:00–24:00
    assert_eq!(
        (
            a2["handled"].clone(),
            a2["productivity_score"].clone(),
            a2["level"].clone()
        ),
        // Online all day but no conversation handled: the agent score is about work
        // done for customers, so 0 (utilisation 1.0 is shown beside it).
        (json!(0), json!(0), json!("attention"))
    );
    assert_eq!(a2["open_conversations"], 1);

    // Both available now, one open conversation each: perfectly even.
    assert_eq!(
        body["workload"],
        json!({"agents": 2, "open_conversations": 2, "mean": 1.0, "std_dev": 0.0, "coefficient_of_variation": 0.0})
    );
    // The team filter keeps only a2.
    let ids: Vec<_> = team2["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("a2")]);
}
