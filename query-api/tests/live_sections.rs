//! `/api/live` serves the WhatsApp performance and automation impact sections like
//! the others: a snapshot, then a delta at the next complete timestamp that patches the
//! snapshot into the new body.

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
