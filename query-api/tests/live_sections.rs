//! `/api/live` serves the WhatsApp performance and automation impact sections like
//! the others: a snapshot, then a delta at the next complete timestamp that patches the
//! snapshot into the new body. Local days in odd-offset zones and on DST days cut
//! exactly, also where the view store's day rollups are read.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use crmpulse_query_api::{AppState, LiveConfig, ViewStore, router};
use futures_util::{SinkExt, StreamExt};
use schemas::event::{Channel, ChannelState, DeliveryStatus, Quality, ResolvedBy};
use schemas::metrics::{Fact, MetricBatch};
use serde_json::{Value, json};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["type"] == kind {
            return v;
        }
    }
}

fn wa(status: Option<DeliveryStatus>) -> Fact {
    Fact::WhatsappMessage {
        account_id: 1,
        bucket: ms("2026-11-24T09:00:00Z"),
        status,
        failed: false,
        error_code: None,
        error_title: None,
    }
}

fn health(queue_depth: u64) -> Fact {
    Fact::ChannelHealth {
        account_id: 1,
        channel_id: "wa-1".into(),
        state: ChannelState::Connected,
        quality: Quality::Green,
        queue_depth,
        sent_per_minute_milli: 2_500,
        at_ms: 900,
    }
}

fn bot_only() -> Fact {
    Fact::AutomationConversation {
        account_id: 1,
        bucket: ms("2026-11-24T10:00:00Z"),
        channel: Channel::Whatsapp,
        inbox_id: "i1".into(),
        bot: true,
        escalated: false,
        human: false,
        resolved_by: Some(ResolvedBy::Bot),
        auto_reply: false,
        intent: Some("billing".into()),
        csat: None,
        handling_s: None,
    }
}

#[tokio::test]
async fn whatsapp_and_automation_sections_stream_snapshot_then_deltas() {
    let store = Arc::new(ViewStore::default());
    store.apply(MetricBatch {
        progress: 1_000,
        events_consumed: 2,
        updates: vec![(wa(Some(DeliveryStatus::Sent)), 1), (health(7), 1)],
    });
    let mut state = AppState::new(Arc::clone(&store));
    // "Now" is the day after the facts, whatever the machine's date.
    state.clock = schemas::Clock::starting_at(ms("2026-11-25T09:00:00Z"));
    state.live = LiveConfig {
        coalesce: Duration::from_millis(20),
        ..LiveConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/live"))
        .await
        .unwrap();

    let params = json!({"from": "2026-11-24"});
    for (id, section) in [("w", "whatsapp-performance"), ("a", "automation-impact")] {
        let sub = json!({"op": "subscribe", "id": id, "section": section, "params": params});
        ws.send(sub.to_string().into()).await.unwrap();
    }
    let mut wa_body = next_of(&mut ws, "snapshot").await;
    let mut auto_body = next_of(&mut ws, "snapshot").await;
    assert_eq!(wa_body["id"], "w");
    wa_body = wa_body["data"].take();
    auto_body = auto_body["data"].take();
    assert_eq!(wa_body["funnel"]["current"]["sent"], 1);
    assert_eq!(wa_body["channels_now"]["queue_depth"], 7);
    assert_eq!(auto_body["conversations"]["current"]["total"], 0);

    // The message is delivered, the queue drains, the bot resolves a conversation.
    store.apply(MetricBatch {
        progress: 2_000,
        events_consumed: 5,
        updates: vec![
            (wa(Some(DeliveryStatus::Sent)), -1),
            (wa(Some(DeliveryStatus::Delivered)), 1),
            (health(7), -1),
            (health(0), 1),
            (bot_only(), 1),
        ],
    });
    for _ in 0..2 {
        let delta = next_of(&mut ws, "delta").await;
        assert_eq!(delta["progress"], 2000);
        let patch: json_patch::Patch = serde_json::from_value(delta["patch"].clone()).unwrap();
        let body = if delta["id"] == "w" {
            &mut wa_body
        } else {
            &mut auto_body
        };
        json_patch::patch(body, &patch).unwrap();
    }
    assert_eq!(
        wa_body["funnel"]["current"],
        json!({"created": 1, "sent": 1, "delivered": 1, "read": 0, "failed": 0, "with_status": 1, "read_rate": 0.0})
    );
    assert_eq!(wa_body["channels_now"]["queue_depth"], 0);
    assert_eq!(
        auto_body["conversations"]["current"],
        json!({"total": 1, "bot_only": 1, "with_humans": 0, "other": 0, "bot_only_share": 1.0})
    );
    assert_eq!(auto_body["top_intents"][0]["intent"], "billing");
}

fn created_at(t: &str) -> (Fact, i64) {
    let mut f = wa(Some(DeliveryStatus::Delivered));
    if let Fact::WhatsappMessage { bucket, .. } = &mut f {
        *bucket = ms(t);
    }
    (f, 1)
}

fn funnel_created(store: &Arc<ViewStore>, tz: chrono_tz::Tz, from: &str, to: &str) -> (i64, i64) {
    use crmpulse_query_api::{AccountSettings, AccountsConfig, Settings};
    let mut app = AppState::new(Arc::clone(store));
    app.settings = Settings::new(AccountsConfig {
        defaults: AccountSettings {
            timezone: tz,
            ..AccountSettings::default()
        },
        ..AccountsConfig::default()
    });
    let query: std::collections::HashMap<String, String> = [("from", from), ("to", to)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let params = crmpulse_query_api::sections::Params::parse(&query).unwrap();
    let body =
        crmpulse_query_api::sections::compute(&app, "whatsapp-performance", &params, 0).unwrap();
    (
        body["funnel"]["current"]["created"].as_i64().unwrap(),
        body["funnel"]["previous"]["created"].as_i64().unwrap(),
    )
}

/// Local days in +05:45 and on a 23-hour DST day cut exactly, including ranges whose
/// inner UTC days are read from the store's day rollups.
#[test]
fn local_days_in_kathmandu_and_on_a_dst_day_are_exact() {
    let store = Arc::new(ViewStore::default());
    store.apply(MetricBatch {
        progress: 1,
        events_consumed: 1,
        updates: vec![
            // Kathmandu 2026-11-20 starts at 2026-11-19T18:15Z; 2026-11-24 at 11-23T18:15Z.
            created_at("2026-11-19T18:00:00Z"),
            created_at("2026-11-19T18:15:00Z"),
            created_at("2026-11-21T12:00:00Z"),
            created_at("2026-11-22T00:00:00Z"),
            created_at("2026-11-23T18:00:00Z"),
            created_at("2026-11-23T18:15:00Z"),
            // Berlin 2026-03-29 (CET → CEST) is [03-28T23:00Z, 03-29T22:00Z).
            created_at("2026-03-28T22:45:00Z"),
            created_at("2026-03-28T23:00:00Z"),
            created_at("2026-03-29T21:45:00Z"),
            created_at("2026-03-29T22:00:00Z"),
        ],
    });
    let kathmandu = chrono_tz::Asia::Kathmandu;
    // Four local days: previous period is the four days before, holding 11-19T18:00Z.
    assert_eq!(
        funnel_created(&store, kathmandu, "2026-11-20", "2026-11-24"),
        (4, 1)
    );
    assert_eq!(
        funnel_created(&store, kathmandu, "2026-11-24", "2026-11-25"),
        (1, 1)
    );
    let berlin = chrono_tz::Europe::Berlin;
    // The 23-hour day holds two; its previous period (23 h before) holds 03-28T22:45Z.
    assert_eq!(
        funnel_created(&store, berlin, "2026-03-29", "2026-03-30"),
        (2, 1)
    );
    assert_eq!(
        funnel_created(&store, chrono_tz::Asia::Kolkata, "2026-03-29", "2026-03-31"),
        (4, 0)
    );
}

/// The pipeline clock ticks (progress moves every 250 ms) while no event arrives: an
/// idle client gets the documented heartbeat and nothing else. Before, every section
/// sent a delta of its `progress` on every tick, several messages a second.
#[tokio::test]
async fn an_idle_client_receives_only_heartbeats() {
    let store = Arc::new(ViewStore::default());
    store.apply(MetricBatch {
        progress: 1_000,
        events_consumed: 1,
        updates: vec![(wa(Some(DeliveryStatus::Sent)), 1)],
    });
    let mut state = AppState::new(Arc::clone(&store));
    state.clock = schemas::Clock::starting_at(ms("2026-11-25T09:00:00Z"));
    state.live = LiveConfig {
        coalesce: Duration::from_millis(20),
        heartbeat: Duration::from_millis(400),
        ..LiveConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/live"))
        .await
        .unwrap();
    for section in crmpulse_query_api::sections::SECTIONS {
        let sub = json!({"op": "subscribe", "id": section, "section": section,
            "params": {"from": "2026-11-24"}});
        ws.send(sub.to_string().into()).await.unwrap();
    }
    for _ in crmpulse_query_api::sections::SECTIONS {
        next_of(&mut ws, "snapshot").await;
    }

    let ticking = Arc::clone(&store);
    let ticker = tokio::spawn(async move {
        for i in 1..=60 {
            ticking.apply(MetricBatch {
                progress: 1_000 + i * 250,
                events_consumed: 1,
                updates: vec![],
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut kinds = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_millis(1_300);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        kinds.push(v["type"].as_str().unwrap().to_owned());
    }
    ticker.await.unwrap();
    assert!(
        kinds.iter().all(|k| k == "progress"),
        "only heartbeats, got {kinds:?}"
    );
    // 1.3 s at one heartbeat per 0.4 s of silence.
    assert!((1..=4).contains(&kinds.len()), "{kinds:?}");
}
