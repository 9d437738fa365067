//! The Chatwoot source against bodies shaped as Chatwoot's own serializers build them
//! (`tests/fixtures/chatwoot`, see its SHAPES.md): one conversation's story mapped
//! event by event, and the route over a real embedded log (token, signature,
//! redelivery, dead letters).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use crmpulse_ingest::EventLog;
use crmpulse_ingest::auth::IngestAuth;
use crmpulse_ingest::sources::{self, ChatwootSource, SourcesConfig, chatwoot};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const TOKEN: &str = "cw-token-0123456789abcdefghij";
const SECRET: &str = "test_webhook_secret";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/chatwoot/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The events one fixture maps to, as their native JSON without `account_id`.
fn events(name: &str) -> Vec<Value> {
    let m = chatwoot::map(3, &fixture(name));
    assert!(m.unmapped.is_empty(), "{name}: {:?}", m.unmapped);
    m.events
        .iter()
        .map(|e| {
            assert_eq!(e.account_id, 3);
            let mut v = serde_json::to_value(e).unwrap();
            v.as_object_mut().unwrap().remove("account_id");
            v
        })
        .collect()
}

fn ignored(name: &str) -> Vec<&'static str> {
    let m = chatwoot::map(3, &fixture(name));
    assert!(m.events.is_empty() && m.unmapped.is_empty(), "{name}");
    m.ignored
}

#[test]
fn a_bot_conversation_opens_assigned_to_the_bot() {
    assert_eq!(
        events("conversation_created.json"),
        vec![
            json!({"event_id": "cw-open-42", "occurred_at": "2026-11-24T09:00:00.000Z",
                "type": "conversation_opened", "conversation_id": "cw-42",
                "customer_id": "cw-contact-101", "channel": "whatsapp", "inbox_id": "cw-inbox-5",
                "origin": "inbound"}),
            json!({"event_id": "cw-bot-42-1795510800000", "occurred_at": "2026-11-24T09:00:00.000Z",
                "type": "conversation_assigned", "conversation_id": "cw-42", "assignee": "bot"}),
        ]
    );
}

#[test]
fn messages_map_by_type_and_sender_and_notes_are_not_messages() {
    let msg = |id: &str, at: &str, direction: &str, sender: &str, agent: Option<&str>| {
        let mut v = json!({"event_id": format!("cw-msg-{id}"), "occurred_at": at,
            "type": "message_created", "message_id": format!("cw-msg-{id}"),
            "conversation_id": "cw-42", "direction": direction, "sender": sender,
            "channel": "whatsapp", "auto_reply": false});
        if let Some(a) = agent {
            v["agent_id"] = a.into();
        }
        v
    };
    assert_eq!(
        events("message_created_incoming.json"),
        vec![msg(
            "5001",
            "2026-11-24T09:00:00.211Z",
            "inbound",
            "customer",
            None
        )]
    );
    assert_eq!(
        events("message_created_outgoing_bot.json"),
        vec![msg(
            "5002",
            "2026-11-24T09:00:05.402Z",
            "outbound",
            "bot",
            None
        )]
    );
    assert_eq!(
        events("message_created_outgoing_agent.json"),
        vec![msg(
            "5003",
            "2026-11-24T09:03:00.152Z",
            "outbound",
            "agent",
            Some("cw-agent-7")
        )]
    );
    let mut greeting = msg(
        "5000",
        "2026-11-24T09:00:00.390Z",
        "outbound",
        "system",
        None,
    );
    greeting["auto_reply"] = true.into();
    assert_eq!(events("message_created_template.json"), vec![greeting]);
    assert_eq!(
        ignored("message_created_private_note.json"),
        vec!["message:private"]
    );
    assert_eq!(
        ignored("message_created_activity.json"),
        vec!["message:activity"]
    );
}

#[test]
fn status_transitions_come_from_conversation_updated_at_the_time_of_the_change() {
    // The bot hands over at 09:01:30 (pending → open).
    assert_eq!(
        events("conversation_updated_handoff.json"),
        vec![
            json!({"event_id": "cw-status-42-open-1795510890512", "occurred_at": "2026-11-24T09:01:30.512Z",
            "type": "conversation_escalated", "conversation_id": "cw-42", "reason": "handoff"})
        ]
    );
    // Ana and Support are assigned at 09:02:00.318 (changed_attributes.updated_at),
    // not at the body's later updated_at.
    assert_eq!(
        events("conversation_updated_assignee.json"),
        vec![
            json!({"event_id": "cw-assign-42-1795510920318", "occurred_at": "2026-11-24T09:02:00.318Z",
            "type": "conversation_assigned", "conversation_id": "cw-42", "assignee": "agent",
            "agent_id": "cw-agent-7", "team_id": "cw-team-3"})
        ]
    );
    assert_eq!(
        events("conversation_updated_status_resolved.json"),
        vec![
            json!({"event_id": "cw-status-42-resolved-1795511400407", "occurred_at": "2026-11-24T09:10:00.407Z",
            "type": "conversation_resolved", "conversation_id": "cw-42", "resolved_by": "agent",
            "agent_id": "cw-agent-7"})
        ]
    );
    assert_eq!(
        events("conversation_updated_status_reopened.json"),
        vec![
            json!({"event_id": "cw-status-42-open-1795512300715", "occurred_at": "2026-11-24T09:25:00.715Z",
            "type": "conversation_reopened", "conversation_id": "cw-42"})
        ]
    );
    // conversation_status_changed has no previous status: counted, not mapped, so a
    // resolution is never counted twice.
    for name in [
        "conversation_status_changed_resolved.json",
        "conversation_status_changed_open.json",
    ] {
        assert_eq!(ignored(name), vec!["conversation_status_changed"]);
    }
}

#[test]
fn a_resolution_from_pending_is_the_bots_and_an_unassignment_has_no_event() {
    let mut body: Value =
        serde_json::from_slice(&fixture("conversation_updated_status_resolved.json")).unwrap();
    body["changed_attributes"][0]["status"]["previous_value"] = "pending".into();
    let m = chatwoot::map(3, body.to_string().as_bytes());
    let v = serde_json::to_value(&m.events[0]).unwrap();
    assert_eq!(
        (v["resolved_by"].as_str(), v.get("agent_id")),
        (Some("bot"), None)
    );

    let mut body: Value =
        serde_json::from_slice(&fixture("conversation_updated_assignee.json")).unwrap();
    body["meta"]["assignee"] = Value::Null;
    body["meta"]["team"] = Value::Null;
    let m = chatwoot::map(3, body.to_string().as_bytes());
    assert!(m.events.is_empty());
    assert_eq!(m.ignored, vec!["conversation_updated:unassigned"]);
}

#[test]
fn a_failed_whatsapp_message_carries_the_code_and_title_chatwoot_stored() {
    assert_eq!(
        events("message_updated_failed.json"),
        vec![
            json!({"event_id": "cw-msg-5006-failed", "occurred_at": "2026-11-24T09:30:00.318Z",
            "type": "message_status", "message_id": "cw-msg-5006", "status": "failed",
            "error_code": 131_047, "error_title": "Re-engagement message"})
        ]
    );
    // A message_updated without a failure (an edit, a source_id) has no status.
    let mut body: Value = serde_json::from_slice(&fixture("message_updated_failed.json")).unwrap();
    body["content_attributes"] = json!({});
    let m = chatwoot::map(3, body.to_string().as_bytes());
    assert_eq!(
        (m.events.len(), m.ignored),
        (0, vec!["message_updated:no_status"])
    );
    // A build that sends `status` is read as such.
    body["status"] = "read".into();
    let m = chatwoot::map(3, body.to_string().as_bytes());
    let v = serde_json::to_value(&m.events[0]).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["event_id"].as_str()),
        (Some("read"), Some("cw-msg-5006-read"))
    );
}

#[test]
fn web_widget_conversations_open_assigned_and_unknown_inboxes_are_dead_lettered() {
    let e = events("conversation_created_webwidget_assigned.json");
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0]["channel"], "webchat");
    assert_eq!(
        (&e[1]["assignee"], &e[1]["agent_id"], &e[1]["team_id"]),
        (&json!("agent"), &json!("cw-agent-7"), &json!("cw-team-3"))
    );
    let m = chatwoot::map(3, &fixture("conversation_created_unknown_channel.json"));
    assert!(m.events.is_empty());
    assert_eq!(m.unmapped.len(), 1);
    assert!(
        m.unmapped[0].reason.contains("Channel::Line"),
        "{}",
        m.unmapped[0].reason
    );
    assert_eq!(ignored("contact_created.json"), vec!["contact_created"]);
    let m = chatwoot::map(3, br#"{"id": 1}"#);
    assert_eq!(m.unmapped[0].reason, "event: missing");
    let m = chatwoot::map(3, b"[1, 2]");
    assert!(
        m.unmapped[0]
            .reason
            .starts_with("body: expected a JSON object")
    );
}

fn app(secret: Option<&str>) -> (tempfile::TempDir, Arc<EventLog>, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EventLog::open(dir.path()).unwrap());
    let config = SourcesConfig {
        whatsapp: vec![],
        chatwoot: vec![ChatwootSource {
            account_id: 3,
            token: TOKEN.into(),
            webhook_secret: secret.map(Into::into),
        }],
    };
    let router = sources::router(
        Arc::clone(&log),
        Arc::new(config),
        Arc::new(IngestAuth::new(None, vec![], 1000)),
    );
    (dir, log, router)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn post(token: &str, signed: Option<(&str, &str)>, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post(format!("/api/v1/sources/chatwoot/3?token={token}"))
        .header("content-type", "application/json");
    if let Some((timestamp, signature)) = signed {
        req = req
            .header("x-chatwoot-timestamp", timestamp)
            .header("x-chatwoot-signature", signature);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn the_token_is_required_and_a_redelivery_stores_nothing_twice() {
    let (_dir, log, app) = app(None);
    let body = fixture("conversation_created.json");
    let (status, _) = send(&app, post("guess", None, body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let req = Request::post("/api/v1/sources/chatwoot/3")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(log.len(), 0);

    let (status, v) = send(&app, post(TOKEN, None, body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    let (_, v) = send(&app, post(TOKEN, None, body)).await;
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(log.len(), 2);

    // Ignored events are answered 200 and named, so Chatwoot does not retry them.
    let (status, v) = send(
        &app,
        post(TOKEN, None, fixture("message_created_private_note.json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ignored"], 1, "{v}");
    assert_eq!(log.len(), 2);
}

#[tokio::test]
async fn with_a_secret_the_signature_over_timestamp_and_body_is_required() {
    let (_dir, log, app) = app(Some(SECRET));
    let body = fixture("contact_created.json");
    // The vector computed when the fixture was written (SHAPES.md).
    let vector = "sha256=ecb4b9d9e52a6e315575dcdd98d1517789464888a7b081549ca097f52b8e89a6";
    assert_eq!(chatwoot::sign(SECRET, "1795510800", &body), vector);
    let (status, v) = send(
        &app,
        post(TOKEN, Some(("1795510800", vector)), body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Unsigned, signed over the body alone, or with another timestamp: refused.
    let (status, _) = send(&app, post(TOKEN, None, body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body_only = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let (status, _) = send(
        &app,
        post(TOKEN, Some(("1795510800", &body_only)), body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(&app, post(TOKEN, Some(("1795510801", vector)), body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A signed body that cannot be mapped is dead-lettered with its reason, answered 200.
    let bad = fixture("conversation_created_unknown_channel.json");
    let sig = chatwoot::sign(SECRET, "1795514400", &bad);
    let (status, v) = send(&app, post(TOKEN, Some(("1795514400", &sig)), bad)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["dead_lettered"], 1);
    let dead = log.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["source"], "chatwoot");
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .contains("Channel::Line")
    );
    assert_eq!(log.len(), 0);
}
