//! The WhatsApp Cloud API source against payloads written from Meta's documentation
//! (`tests/fixtures/whatsapp`, see its SHAPES.md): the mapping, and the routes over a
//! real embedded log (verification, signatures, retries, dead letters).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use crmpulse_ingest::EventLog;
use crmpulse_ingest::auth::{IngestAuth, sign};
use crmpulse_ingest::sources::{self, SourcesConfig, WhatsappSource, whatsapp};
use schemas::Event;
use schemas::event::{DeliveryStatus, Direction, Payload, Sender};
use tower::ServiceExt as _;

const PHONE: &str = "106540352242922";
const SECRET: &str = "test_app_secret";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn map(name: &str) -> sources::Mapped {
    whatsapp::map(7, &[PHONE.to_owned()], &fixture(name))
}

fn statuses(events: &[Event]) -> Vec<(String, DeliveryStatus, Option<i64>, i64)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::MessageStatus {
                message_id,
                status,
                error_code,
                ..
            } => Some((
                message_id.clone(),
                *status,
                *error_code,
                e.occurred_at_ms / 1000,
            )),
            _ => None,
        })
        .collect()
}

fn created(events: &[Event]) -> Vec<(String, String, Direction, Sender, i64)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::MessageCreated {
                message_id,
                conversation_id,
                direction,
                sender,
                ..
            } => Some((
                message_id.clone(),
                conversation_id.clone(),
                *direction,
                *sender,
                e.occurred_at_ms / 1000,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn an_inbound_text_is_a_customer_message_in_the_customers_thread() {
    let m = map("messages_text.json");
    assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    assert_eq!(
        created(&m.events),
        vec![(
            "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQTM4RTlCRTY0MDFFNjJGN0QxNQA=".to_owned(),
            format!("wa-{PHONE}-16315551234"),
            Direction::Inbound,
            Sender::Customer,
            1_795_510_805,
        )]
    );
    assert_eq!(m.events[0].account_id, 7);
    assert!(m.events[0].event_id.starts_with("wa-msg-wamid."));
    assert_eq!(m.items, vec!["message:text"]);
}

#[test]
fn a_batch_of_two_entries_maps_every_message_and_counts_the_reaction_apart() {
    let m = map("messages_mixed_batch.json");
    assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    let c = created(&m.events);
    // Kerry: image, button_reply, button (the reaction is not a message); Dana:
    // list_reply, location, unsupported.
    assert_eq!(c.len(), 6, "{c:?}");
    let times: Vec<i64> = c.iter().map(|x| x.4).collect();
    assert_eq!(
        times,
        vec![
            1_795_511_400,
            1_795_511_430,
            1_795_511_460,
            1_795_511_505,
            1_795_511_520,
            1_795_511_550
        ]
    );
    assert_eq!(
        c.iter().filter(|x| x.1.ends_with("-16315555678")).count(),
        3
    );
    assert!(c.iter().all(|x| x.2 == Direction::Inbound));
    assert_eq!(
        m.ignored
            .iter()
            .filter(|k| **k == "message:reaction")
            .count(),
        1
    );
    assert!(m.items.contains(&"message:unsupported"));
    assert_eq!(
        m.items
            .iter()
            .filter(|k| **k == "message:interactive")
            .count(),
        2
    );
}

#[test]
fn a_click_to_whatsapp_referral_is_a_lead_of_the_ad() {
    let m = map("messages_referral.json");
    assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    let leads: Vec<_> = m
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::LeadCreated {
                customer_id,
                campaign_id,
                conversation_id,
                ..
            } => Some((
                customer_id.clone(),
                campaign_id.clone(),
                conversation_id.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        leads,
        vec![(
            "wa-16315555678".to_owned(),
            Some("ad-120226305854810726".to_owned()),
            Some(format!("wa-{PHONE}-16315555678")),
        )]
    );
    assert_eq!(created(&m.events).len(), 1);
}

#[test]
fn statuses_map_to_statuses_and_to_the_business_message_at_each_status() {
    let m = map("statuses_lifecycle.json");
    assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    let s = statuses(&m.events);
    assert_eq!(s.len(), 5);
    let m1 = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI2RDk5MzFDREVBQjIxNTUwMDYA";
    let m1s: Vec<_> = s.iter().filter(|x| x.0 == m1).map(|x| (x.1, x.3)).collect();
    assert_eq!(
        m1s,
        vec![
            (DeliveryStatus::Sent, 1_795_512_000),
            (DeliveryStatus::Delivered, 1_795_512_002),
            (DeliveryStatus::Read, 1_795_512_190),
        ]
    );
    // One outbound creation per status; the fold keeps the earliest (the `sent`).
    let out = created(&m.events);
    assert_eq!(out.len(), 5);
    assert!(
        out.iter()
            .all(|x| x.2 == Direction::Outbound && x.3 == Sender::System)
    );
    assert_eq!(
        out.iter().filter(|x| x.0 == m1).map(|x| x.4).min(),
        Some(1_795_512_000)
    );
    // Pricing and conversation windows are not mapped: no event carries them.
    assert!(m.events.iter().all(|e| !e.to_json().contains("pricing")));
}

#[test]
fn out_of_order_statuses_map_the_same_as_in_order_ones() {
    let m = map("statuses_out_of_order.json");
    assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    let mut s: Vec<_> = statuses(&m.events)
        .into_iter()
        .map(|x| (x.3, x.1))
        .collect();
    s.sort_by_key(|x| x.0);
    assert_eq!(
        s,
        vec![
            (1_795_512_600, DeliveryStatus::Sent),
            (1_795_512_604, DeliveryStatus::Delivered),
            (1_795_512_680, DeliveryStatus::Read),
        ]
    );
    let m = map("statuses_read_without_delivered.json");
    let s: Vec<_> = statuses(&m.events).into_iter().map(|x| x.1).collect();
    assert_eq!(s, vec![DeliveryStatus::Sent, DeliveryStatus::Read]);
}

#[test]
fn failed_statuses_carry_their_error_codes() {
    let m = map("statuses_failed.json");
    assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    let failed: Vec<_> = m
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::MessageStatus {
                status: DeliveryStatus::Failed,
                error_code,
                error_title,
                ..
            } => Some((*error_code, error_title.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (Some(131_047), Some("Re-engagement message".to_owned())),
            (Some(131_026), Some("Message undeliverable".to_owned())),
        ]
    );
}

#[test]
fn webhook_errors_are_counted_and_other_objects_dead_lettered() {
    let m = map("value_errors.json");
    assert!(m.events.is_empty() && m.unmapped.is_empty());
    assert_eq!(m.ignored, vec!["error"]);

    let m = map("not_whatsapp.json");
    assert!(m.events.is_empty());
    assert_eq!(m.unmapped.len(), 1);
    assert_eq!(
        m.unmapped[0].reason,
        "object: expected \"whatsapp_business_account\", got \"page\""
    );

    // A number of another account: the change is dead-lettered, nothing mapped.
    let m = whatsapp::map(7, &["999".to_owned()], &fixture("messages_text.json"));
    assert!(m.events.is_empty());
    assert!(
        m.unmapped[0]
            .reason
            .contains("phone_number_id: 106540352242922 is not a phone number of account 7"),
        "{}",
        m.unmapped[0].reason
    );
}

#[test]
fn a_damaged_item_is_dead_lettered_and_the_rest_of_the_post_kept() {
    let text = String::from_utf8(fixture("statuses_lifecycle.json")).unwrap();
    let damaged = text.replacen("\"1795512002\"", "\"yesterday\"", 1);
    assert_ne!(text, damaged);
    let m = whatsapp::map(7, &[], damaged.as_bytes());
    assert_eq!(m.unmapped.len(), 1);
    assert!(
        m.unmapped[0]
            .reason
            .starts_with("entry[0].changes[0].value.statuses[1].timestamp: expected Unix seconds"),
        "{}",
        m.unmapped[0].reason
    );
    assert_eq!(statuses(&m.events).len(), 4);
    let m = whatsapp::map(7, &[], b"{not json");
    assert!(m.unmapped[0].reason.starts_with("body: not valid JSON"));
}

fn app() -> (tempfile::TempDir, Arc<EventLog>, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EventLog::open(dir.path()).unwrap());
    let config = SourcesConfig {
        whatsapp: vec![WhatsappSource {
            account_id: 7,
            app_secret: SECRET.into(),
            verify_token: "verify-me-please".into(),
            phone_number_ids: vec![PHONE.to_owned()],
        }],
        chatwoot: vec![],
    };
    let router = sources::router(
        Arc::clone(&log),
        Arc::new(config),
        Arc::new(IngestAuth::new(None, vec![], 1000)),
    );
    (dir, log, router)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn post(path: &str, signature: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn verification_echoes_the_challenge_only_for_the_accounts_token() {
    let (_dir, _log, app) = app();
    let get = |q: &str| {
        Request::get(format!("/api/v1/sources/whatsapp/7?{q}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = send(
        &app,
        get("hub.mode=subscribe&hub.verify_token=verify-me-please&hub.challenge=1158201444"),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1158201444"));
    let (status, body) = send(
        &app,
        get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("hub.verify_token"), "{body}");
    assert!(!body.contains("1158201444"));
    let (status, _) = send(
        &app,
        get("hub.mode=unsubscribe&hub.verify_token=verify-me-please&hub.challenge=1"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let res = app
        .clone()
        .oneshot(
            Request::get("/api/v1/sources/whatsapp/8?hub.mode=subscribe&hub.verify_token=verify-me-please&hub.challenge=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_posts_are_refused_and_never_stored() {
    let (_dir, log, app) = app();
    let body = fixture("messages_text.json");
    let path = "/api/v1/sources/whatsapp/7";
    let (status, text) = send(&app, post(path, None, body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("x-hub-signature-256"), "{text}");
    let wrong = sign("not the secret", &body);
    let (status, _) = send(&app, post(path, Some(&wrong), body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The signature of another body does not carry over.
    let other = sign(SECRET, b"{}");
    let (status, _) = send(&app, post(path, Some(&other), body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(log.len(), 0);
    assert!(log.dead_letters().unwrap().is_empty());
}

#[tokio::test]
async fn meta_test_vector_is_accepted_and_a_retry_stores_nothing_twice() {
    let (_dir, log, app) = app();
    let body = fixture("messages_text.json");
    // The vector computed from the raw fixture bytes when it was written (SHAPES.md).
    let vector = "sha256=9e50ef5c07c05f3ec0368f34b4eae5bb22568b0f149d2c73053c5c8492779262";
    let path = "/api/v1/sources/whatsapp/7";
    let (status, text) = send(&app, post(path, Some(vector), body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["accepted"], 1);
    // Meta retries the same notification: a duplicate, stored once.
    let (status, text) = send(&app, post(path, Some(vector), body)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(log.len(), 1);

    // Statuses out of order, then again in another post: every status once.
    let statuses = fixture("statuses_out_of_order.json");
    let sig = sign(SECRET, &statuses);
    let (status, _) = send(&app, post(path, Some(&sig), statuses.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, text) = send(&app, post(path, Some(&sig), statuses)).await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["accepted"], 0);
    assert_eq!(log.len(), 1 + 6);
}

#[tokio::test]
async fn a_signed_post_that_cannot_be_mapped_is_dead_lettered_with_its_reason_and_answered_200() {
    let (_dir, log, app) = app();
    let body = fixture("not_whatsapp.json");
    let sig = sign(SECRET, &body);
    let (status, text) = send(&app, post("/api/v1/sources/whatsapp/7", Some(&sig), body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"dead_lettered\":1"), "{text}");
    let dead = log.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["source"], "whatsapp");
    assert!(dead[0]["raw"].as_str().unwrap().contains("\"page\""));
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("object: expected"),
        "{}",
        dead[0]
    );
    assert_eq!(log.len(), 0);
}
