//! A day of provider webhooks through `crmpulse run`: the WhatsApp Cloud API posts of
//! one business number (inbound messages, an ad referral, statuses in and out of
//! order, failures, a webhook error, a retry) and the Chatwoot webhooks of two
//! conversations (a bot that hands over on WhatsApp, a web-widget chat), signed as
//! the providers sign them. The dashboard numbers are checked against values worked
//! out by hand from the payloads (`ingest/tests/fixtures/*/SHAPES.md`), below.

mod common;

use common::{free_port, get_json, start_with, wait_caught_up};
use ingest::auth::sign;
use ingest::sources::chatwoot;
use serde_json::{Value, json};

/// The servers' clock: noon of the test day, 2026-11-24 (UTC).
const NOW: &str = "2026-11-24T12:00:00Z";
const APP_SECRET: &str = "day-app-secret";
const CW_TOKEN: &str = "cw-day-token-0123456789abcdef";
const CW_SECRET: &str = "cw-day-webhook-secret";

fn fixture(source: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/ingest/tests/fixtures/{source}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn chatwoot_json(name: &str) -> Value {
    serde_json::from_slice(&fixture("chatwoot", name)).unwrap()
}

/// Conversation 42's story (SHAPES.md), plus what the fixtures leave out: the
/// `message_created` of the follow-up that fails at 09:30, and conversation 43 on the
/// web widget: opened 10:00:00 assigned to Ana, the customer at 10:00:10, Ana's reply
/// at 10:02:10, resolved 10:30:00.
fn chatwoot_day() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        "conversation_created.json",
        "message_created_incoming.json",
        "message_created_template.json",
        "message_created_outgoing_bot.json",
        "conversation_updated_handoff.json",
        "conversation_updated_assignee.json",
        "message_created_outgoing_agent.json",
        "message_created_private_note.json",
        "conversation_updated_status_resolved.json",
        "conversation_status_changed_resolved.json",
        "message_created_activity.json",
        "conversation_updated_status_reopened.json",
        "conversation_status_changed_open.json",
        "contact_created.json",
    ]
    .iter()
    .map(|n| fixture("chatwoot", n))
    .collect();
    let mut follow_up = chatwoot_json("message_created_outgoing_agent.json");
    follow_up["id"] = 5006.into();
    follow_up["created_at"] = "2026-11-24T09:30:00.318Z".into();
    bodies.push(follow_up.to_string().into_bytes());
    bodies.push(fixture("chatwoot", "message_updated_failed.json"));

    let web = chatwoot_json("conversation_created_webwidget_assigned.json");
    bodies.push(fixture(
        "chatwoot",
        "conversation_created_webwidget_assigned.json",
    ));
    let mut incoming = chatwoot_json("message_created_incoming.json");
    incoming["id"] = 6001.into();
    incoming["created_at"] = "2026-11-24T10:00:10.000Z".into();
    incoming["conversation"] = web.clone();
    bodies.push(incoming.to_string().into_bytes());
    let mut reply = chatwoot_json("message_created_outgoing_agent.json");
    reply["id"] = 6002.into();
    reply["created_at"] = "2026-11-24T10:02:10.000Z".into();
    reply["conversation"] = web.clone();
    bodies.push(reply.to_string().into_bytes());
    let mut resolved = chatwoot_json("conversation_updated_status_resolved.json");
    for key in ["id", "inbox_id", "channel", "meta", "created_at"] {
        resolved[key] = web[key].clone();
    }
    resolved["status"] = "resolved".into();
    resolved["updated_at"] = 1_795_516_200.5.into();
    resolved["changed_attributes"] = json!([
        {"status": {"previous_value": "open", "current_value": "resolved"}},
        {"updated_at": {"previous_value": "2026-11-24T10:02:10.000Z", "current_value": "2026-11-24T10:30:00.000Z"}}
    ]);
    bodies.push(resolved.to_string().into_bytes());
    bodies
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_of_whatsapp_and_chatwoot_webhooks_gives_the_dashboard_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[sources.whatsapp]]
account_id = 1
app_secret = "{APP_SECRET}"
verify_token = "day-verify-token"
phone_number_ids = ["106540352242922"]

[[sources.chatwoot]]
account_id = 1
token = "{CW_TOKEN}"
webhook_secret = "{CW_SECRET}"
"#
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start_with(
        port,
        dir.path(),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    );
    let client = common::client(port);
    let http = reqwest::Client::new();

    // Meta verifies the callback URL first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let challenge = loop {
        match http
            .get(format!(
                "{base}/api/v1/sources/whatsapp/1?hub.mode=subscribe&hub.verify_token=day-verify-token&hub.challenge=8675309"
            ))
            .send()
            .await
        {
            Ok(res) => break res.text().await.unwrap(),
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "server did not come up: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(challenge, "8675309");

    let whatsapp = async |body: Vec<u8>| -> Value {
        let res = http
            .post(format!("{base}/api/v1/sources/whatsapp/1"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(APP_SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    };
    for name in [
        "messages_text.json",
        "messages_referral.json",
        "messages_mixed_batch.json",
        "statuses_lifecycle.json",
        "statuses_out_of_order.json",
        "statuses_failed.json",
        "statuses_read_without_delivered.json",
        "value_errors.json",
    ] {
        whatsapp(fixture("whatsapp", name)).await;
    }
    // Meta retries a post it thinks failed: nothing is stored twice.
    let retry = whatsapp(fixture("whatsapp", "statuses_failed.json")).await;
    assert_eq!(
        (retry["accepted"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(4))
    );
    // Another app's object on the same URL is dead-lettered, not stored.
    let other = whatsapp(fixture("whatsapp", "not_whatsapp.json")).await;
    assert_eq!(other["dead_lettered"], 1, "{other}");

    for (i, body) in chatwoot_day().into_iter().enumerate() {
        let timestamp = (1_795_510_800 + i).to_string();
        let res = http
            .post(format!("{base}/api/v1/sources/chatwoot/1?token={CW_TOKEN}"))
            .header("content-type", "application/json")
            .header("x-chatwoot-timestamp", &timestamp)
            .header(
                "x-chatwoot-signature",
                chatwoot::sign(CW_SECRET, &timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "chatwoot body {i}: {}",
            res.text().await.unwrap()
        );
    }

    // Stored, worked out from the payloads:
    // WhatsApp: 8 inbound messages (the reaction is not one) + 1 lead, 12 statuses
    // and, for each, the business message it reports (the fold keeps one per wamid): 33.
    // Chatwoot: conversation 42: opened + bot assignment, 5 messages (incoming,
    // greeting, bot, Ana, the failed follow-up; not the note), escalation, assignment,
    // resolution, reopen, the failure = 12; conversation 43: opened + assignment,
    // 2 messages, resolution = 5.
    wait_caught_up(&client, &base, 33 + 12 + 5).await;

    let day = "from=2026-11-24&to=2026-11-25";
    let wa = get_json(
        &client,
        &format!("{base}/api/dashboard/whatsapp-performance?{day}"),
    )
    .await;
    // Funnel: the 6 WhatsApp-direct messages (A read, B delivered, C read out of order,
    // D read without delivered, two failed) and Chatwoot's 4 WhatsApp outbound in
    // conversation 42 (greeting, bot, Ana, the failed follow-up; 43 is web chat).
    assert_eq!(
        wa["funnel"]["current"],
        json!({"created": 10, "sent": 4, "delivered": 4, "read": 3, "failed": 3, "with_status": 7, "read_rate": 0.75}),
        "{wa}"
    );
    assert_eq!(
        wa["delivery"]["current"],
        json!({"delivered": 4, "with_status": 7, "rate": 0.5714})
    );
    assert_eq!(wa["delivery"]["alert"], true);
    assert_eq!(
        wa["failures"],
        json!([
            {"error_code": 131_047, "error_title": "Re-engagement message", "category": "policy", "count": 2, "previous": 0},
            {"error_code": 131_026, "error_title": "Message undeliverable", "category": "recipient", "count": 1, "previous": 0}
        ])
    );

    let kpi = get_json(&client, &format!("{base}/api/dashboard/kpi?{day}")).await;
    // 42: from the bot's hand-over 09:01:30.512 to Ana at 09:03:00.152: 89 s (floored).
    // 43: from the open 10:00:00 to Ana at 10:02:10: 130 s.
    assert_eq!(
        kpi["first_response"]["current"],
        json!({"count": 2, "avg_s": 109.5, "p50_s": 89, "p90_s": 130}),
        "{kpi}"
    );
    assert_eq!(kpi["first_response"]["sla_status"], "green");
    // 42 was reopened at 09:25 and Ana holds it; 43 is resolved.
    assert_eq!(
        kpi["active_conversations"],
        json!({"total": 1, "unassigned": 0, "bot": 0, "agent": 1})
    );
    // Inbound: 8 WhatsApp + 2 Chatwoot; outbound: 6 WhatsApp + 5 Chatwoot.
    assert_eq!(
        kpi["messages_today"]["current"],
        json!({"inbound": 10, "outbound": 11, "total": 21})
    );

    let eff = get_json(
        &client,
        &format!("{base}/api/dashboard/conversation-effectiveness?{day}"),
    )
    .await;
    assert_eq!(
        eff["resolution"]["opened_in_range"],
        json!({"total": 2, "resolved": 1, "open": 1}),
        "{eff}"
    );
    assert_eq!(
        eff["resolution"]["resolve_events"],
        json!({"total": 2, "by_agent": 2, "by_bot": 0, "by_system": 0})
    );
    assert_eq!(
        eff["sla"]["current"],
        json!({"met": 2, "replied": 2, "breached_unanswered": 0, "compliance": 1.0})
    );
    assert_eq!(
        eff["handled_per_agent"],
        json!([{"agent_id": "cw-agent-7", "conversations": 2, "previous": 0}])
    );

    let biz = get_json(
        &client,
        &format!("{base}/api/dashboard/business-impact?{day}"),
    )
    .await;
    assert_eq!(biz["leads"]["current"], 1, "{biz}");

    child.kill().ok();
    child.wait().ok();
}
