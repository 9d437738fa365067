//! The API over a view store with known facts: REST bodies hold the hand-computed
//! values, errors name the parameter, and `/api/live` sends a snapshot then deltas.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::DateTime;
use crmpulse_query_api::{AppState, LiveConfig, ViewStore, live, router};
use futures_util::{SinkExt, StreamExt};
use schemas::event::{Channel, Direction, Priority};
use schemas::metrics::{Fact, Holder, MetricBatch};
use serde_json::{Value, json};
use tower::ServiceExt;

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

/// "Now" for these tests: noon of the facts' day ("today" below), whatever the machine's date.
fn app_state(store: Arc<ViewStore>) -> AppState {
    let mut state = AppState::new(store);
    state.clock = schemas::Clock::starting_at(ms("2026-11-24T12:00:00Z"));
    state
}

fn frt(bucket: &str, seconds: u32, agent: &str) -> Fact {
    Fact::FirstResponse {
        account_id: 1,
        bucket: ms(bucket),
        seconds,
        channel: Channel::Whatsapp,
        inbox_id: "i1".into(),
        agent_id: Some(agent.into()),
        team_id: Some("t1".into()),
    }
}

fn store() -> Arc<ViewStore> {
    let store = Arc::new(ViewStore::default());
    let active = |holder| Fact::ActiveConversation {
        account_id: 1,
        holder,
        agent_id: None,
        channel: Channel::Whatsapp,
        inbox_id: "i1".into(),
    };
    store.apply(MetricBatch {
        progress: 1_000,
        events_consumed: 42,
        updates: vec![
            (active(Holder::Bot), 3),
            (active(Holder::Agent), 2),
            (active(Holder::Unassigned), 1),
            // Today (2026-11-24 UTC): 60, 120, 120, 600 s  → avg 225, p50 120, p90 600.
            (frt("2026-11-24T09:00:00Z", 60, "a1"), 1),
            (frt("2026-11-24T10:00:00Z", 120, "a1"), 2),
            (frt("2026-11-24T23:45:00Z", 600, "a2"), 1),
            // Yesterday: one of 30 s. Tomorrow: not in range.
            (frt("2026-11-23T12:00:00Z", 30, "a1"), 1),
            (frt("2026-11-25T00:00:00Z", 999, "a1"), 1),
            (
                Fact::WhatsappOutcome {
                    account_id: 1,
                    bucket: ms("2026-11-24T09:00:00Z"),
                    delivered: true,
                },
                17,
            ),
            (
                Fact::WhatsappOutcome {
                    account_id: 1,
                    bucket: ms("2026-11-24T09:15:00Z"),
                    delivered: false,
                },
                3,
            ),
            (
                Fact::OpenTicket {
                    account_id: 1,
                    priority: Priority::Urgent,
                },
                2,
            ),
            (
                Fact::OpenTicket {
                    account_id: 1,
                    priority: Priority::Low,
                },
                1,
            ),
            (
                Fact::Message {
                    account_id: 1,
                    bucket: ms("2026-11-24T09:00:00Z"),
                    direction: Direction::Inbound,
                    channel: Channel::Whatsapp,
                },
                5,
            ),
            // Another account's facts never show.
            (
                Fact::OpenTicket {
                    account_id: 2,
                    priority: Priority::High,
                },
                9,
            ),
        ],
    });
    store
}

async fn get(app: axum::Router, uri: &str) -> (StatusCode, Value) {
    let res = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn kpi_body_holds_the_hand_computed_values() {
    let app = router(app_state(store()));
    let (status, body) = get(app, "/api/dashboard/kpi?from=2026-11-24&to=2026-11-25").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["range"],
        json!({"from": "2026-11-24T00:00:00.000Z", "to": "2026-11-25T00:00:00.000Z"})
    );
    assert_eq!(body["previous_range"]["from"], "2026-11-23T00:00:00.000Z");
    assert_eq!(body["progress"], 1000);
    assert_eq!(
        body["active_conversations"],
        json!({"total": 6, "unassigned": 1, "bot": 3, "agent": 2})
    );
    assert_eq!(
        body["first_response"]["current"],
        json!({"count": 4, "avg_s": 225.0, "p50_s": 120, "p90_s": 600})
    );
    assert_eq!(
        body["first_response"]["previous"],
        json!({"count": 1, "avg_s": 30.0, "p50_s": 30, "p90_s": 30})
    );
    // p90 600 s against the default 300 s target: beyond 1× but within 2× → yellow.
    assert_eq!(body["first_response"]["sla_status"], "yellow");
    assert_eq!(
        body["whatsapp_delivery"]["current"],
        json!({"delivered": 17, "with_status": 20, "rate": 0.85})
    );
    assert_eq!(body["whatsapp_delivery"]["alert"], true);
    assert_eq!(body["whatsapp_delivery"]["previous"]["rate"], Value::Null);
    assert_eq!(
        body["open_tickets"],
        json!({"total": 3, "low": 1, "medium": 0, "high": 0, "urgent": 2})
    );
}

#[tokio::test]
async fn filters_narrow_first_response() {
    let app = router(app_state(store()));
    let (_, body) = get(
        app.clone(),
        "/api/dashboard/kpi?from=2026-11-24&agent_id=a2",
    )
    .await;
    assert_eq!(
        body["first_response"]["current"],
        json!({"count": 1, "avg_s": 600.0, "p50_s": 600, "p90_s": 600})
    );
    let (_, body) = get(app, "/api/dashboard/kpi?from=2026-11-24&channel=email").await;
    assert_eq!(body["first_response"]["current"]["count"], 0);
    assert_eq!(body["active_conversations"]["total"], 0);
}

#[tokio::test]
async fn bad_requests_name_the_parameter() {
    let app = router(app_state(store()));
    let (status, body) = get(app.clone(), "/api/dashboard/kpi?from=last-week").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("from: expected")
    );
    let (status, body) = get(app.clone(), "/api/dashboard/kpi?chanel=whatsapp").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "chanel: unknown parameter");
    let (status, body) = get(app, "/api/dashboard/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

#[tokio::test]
async fn live_sends_snapshot_then_delta_with_progress() {
    let store = store();
    let mut state = app_state(Arc::clone(&store));
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
    let sub =
        json!({"op": "subscribe", "id": "k", "section": "kpi", "params": {"from": "2026-11-24"}});
    ws.send(sub.to_string().into()).await.unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["progress"], 1000);
    let mut data = snapshot["data"].clone();
    assert_eq!(data["active_conversations"]["total"], 6);

    store.apply(MetricBatch {
        progress: 2_000,
        events_consumed: 43,
        updates: vec![(
            Fact::ActiveConversation {
                account_id: 1,
                holder: Holder::Bot,
                agent_id: None,
                channel: Channel::Sms,
                inbox_id: "i9".into(),
            },
            1,
        )],
    });
    let delta = loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "delta" {
            break m;
        }
    };
    assert_eq!(delta["progress"], 2000);
    let patch: json_patch::Patch = serde_json::from_value(delta["patch"].clone()).unwrap();
    json_patch::patch(&mut data, &patch).unwrap();
    assert_eq!(
        data["active_conversations"],
        json!({"total": 7, "unassigned": 1, "bot": 4, "agent": 2})
    );
    assert_eq!(data["progress"], 2000);

    ws.send(
        json!({"op": "subscribe", "id": "bad", "section": "kpi", "params": {"to": "x"}})
            .to_string()
            .into(),
    )
    .await
    .unwrap();
    let err = loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "error" {
            break m;
        }
    };
    assert_eq!(err["id"], "bad");
    assert!(err["message"].as_str().unwrap().starts_with("to: expected"));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_disconnected() {
    let mut state = app_state(store());
    state.live = LiveConfig {
        send_timeout: Duration::from_secs(10),
        ..LiveConfig::default()
    };
    // A sink that never accepts a frame, and a client that subscribes then says nothing.
    let sink = futures_util::sink::unfold((), |(), _frame: String| {
        std::future::pending::<Result<(), ()>>()
    });
    let sub = json!({"op": "subscribe", "id": "k", "section": "kpi", "params": {}}).to_string();
    let stream = futures_util::stream::iter([sub]).chain(futures_util::stream::pending());
    let served = tokio::time::timeout(
        Duration::from_secs(60),
        live::serve(state, Box::pin(sink), Box::pin(stream)),
    )
    .await;
    assert!(served.is_ok(), "serve must return once a send times out");
}
