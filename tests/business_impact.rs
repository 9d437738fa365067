//! Golden scenario for business impact through the real binary (UTC), with cost
//! inputs from the configuration file: leads, tickets resolved, a campaign, repeat
//! customers, cost per conversation and revenue per currency.

mod common;

use common::{ev, free_port, post_events, start_with, wait_caught_up};
use serde_json::{Value, json};

/// The servers' clock ("now"): the day after the test day 2026-11-20: the day and the
/// previous one are complete.
const NOW: &str = "2026-11-21T12:00:00Z";

fn open(c: &str, customer: &str, channel: &str, campaign: Option<&str>) -> Value {
    let mut v = json!({"type": "conversation_opened", "conversation_id": c, "customer_id": customer,
        "channel": channel, "inbox_id": "i1", "origin": if campaign.is_some() { "campaign" } else { "inbound" }});
    if let Some(c) = campaign {
        v["campaign_id"] = c.into();
    }
    v
}
fn status(agent: &str, s: &str) -> Value {
    json!({"type": "agent_status_changed", "agent_id": agent, "status": s})
}
fn lead(l: &str, campaign: Option<&str>) -> Value {
    let mut v = json!({"type": "lead_created", "lead_id": l, "customer_id": "u1"});
    if let Some(c) = campaign {
        v["campaign_id"] = c.into();
    }
    v
}
fn deal(l: &str, amount: i64, currency: &str) -> Value {
    json!({"type": "deal_won", "lead_id": l, "amount_minor": amount, "currency": currency})
}

#[tokio::test(flavor = "multi_thread")]
async fn business_impact_golden_day() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        "[accounts.defaults]\nagent_hourly_cost_minor = 1200\ncost_currency = \"USD\"\n\
         [accounts.defaults.conversation_fee_minor]\nwhatsapp = 50\nsms = 10\n",
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
    let d = |t: &str| format!("2026-11-20T{t}Z");
    let y = |t: &str| format!("2026-11-19T{t}Z");
    let events = vec![
        ev(
            "c1",
            &d("09:00:00"),
            open("c1", "u1", "whatsapp", Some("spring")),
        ),
        ev("c2", &d("13:00:00"), open("c2", "u1", "whatsapp", None)),
        ev("c3", &d("10:00:00"), open("c3", "u2", "sms", None)),
        ev(
            "c4",
            &d("11:00:00"),
            open("c4", "u3", "whatsapp", Some("spring")),
        ),
        // a1 active 08:00–12:00, a2 busy 09:00–10:00 then away: 5 active hours.
        ev("s1", &d("08:00:00"), status("a1", "online")),
        ev("s2", &d("12:00:00"), status("a1", "offline")),
        ev("s3", &d("09:00:00"), status("a2", "busy")),
        ev("s4", &d("10:00:00"), status("a2", "away")),
        ev("s5", &d("10:30:00"), status("a2", "offline")),
        ev("l1", &d("09:30:00"), lead("l1", Some("spring"))),
        ev("l2", &d("10:30:00"), lead("l2", None)),
        ev("l3", &y("10:00:00"), lead("l3", Some("spring"))),
        ev("w1", &d("15:00:00"), deal("l1", 5_000, "USD")),
        ev("w2", &d("16:00:00"), deal("l1", 1_000, "USD")),
        ev("w3", &d("17:00:00"), deal("l2", 200_000, "INR")),
        ev("w4", &y("18:00:00"), deal("l3", 700, "USD")),
        ev(
            "t1o",
            &d("09:00:00"),
            json!({"type": "ticket_opened", "ticket_id": "t1", "priority": "low"}),
        ),
        ev(
            "t1r",
            &d("12:00:00"),
            json!({"type": "ticket_resolved", "ticket_id": "t1"}),
        ),
        ev(
            "t2o",
            &y("09:00:00"),
            json!({"type": "ticket_opened", "ticket_id": "t2", "priority": "high"}),
        ),
        ev(
            "t2r",
            &d("13:00:00"),
            json!({"type": "ticket_resolved", "ticket_id": "t2"}),
        ),
        ev(
            "t3o",
            &y("09:00:00"),
            json!({"type": "ticket_opened", "ticket_id": "t3", "priority": "high"}),
        ),
        ev(
            "t3r",
            &y("11:00:00"),
            json!({"type": "ticket_resolved", "ticket_id": "t3"}),
        ),
    ];
    let n = events.len() as u64;
    assert_eq!(
        post_events(&client, &base, &Value::from(events))
            .await
            .status(),
        200
    );
    wait_caught_up(&client, &base, n).await;
    let url = format!("{base}/api/dashboard/business-impact?from=2026-11-20&to=2026-11-21");
    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(body["leads"], json!({"current": 2, "previous": 1}));
    assert_eq!(
        body["tickets_resolved"],
        json!({"current": 2, "previous": 1})
    );
    assert_eq!(
        body["campaigns"],
        json!([{
            "campaign_id": "spring", "recipients": null, "conversations": 2, "leads": 1, "deals_won": 2,
            "revenue": [{"currency": "USD", "amount_minor": 6_000, "deals": 2}], "conversion": null,
        }])
    );
    // u1 opened two conversations, u2 and u3 one each.
    assert_eq!(
        body["repeat_customers"]["current"],
        json!({"customers": 3, "repeat": 1, "rate": 0.3333})
    );
    // 5 h × 1200 + fees 3 × 50 (WhatsApp) + 10 (SMS) = 6160 over 4 conversations.
    assert_eq!(
        body["cost_per_conversation"],
        json!({
            "currency": "USD",
            "current": {"agent_hours": 5.0, "agent_cost_minor": 6_000, "channel_fees_minor": 160, "conversations": 4, "per_conversation_minor": 1_540},
            "previous": {"agent_hours": 0.0, "agent_cost_minor": 0, "channel_fees_minor": 0, "conversations": 0, "per_conversation_minor": null},
        })
    );
    assert_eq!(
        body["revenue"],
        json!({
            "current": [{"currency": "INR", "amount_minor": 200_000, "deals": 1}, {"currency": "USD", "amount_minor": 6_000, "deals": 2}],
            "previous": [{"currency": "USD", "amount_minor": 700, "deals": 1}],
        })
    );
}
