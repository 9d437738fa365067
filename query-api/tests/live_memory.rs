//! Memory no live client can inflate (issue 14): subscribers of one view share one
//! body, connections that subscribed at different states converge to the same body,
//! and what one connection may ask for is capped with an error frame naming the limit.
//!
//! The connections are driven through [`live::serve`] with channels; "now" is a fixed
//! instant and the tokio clock is paused, so nothing depends on the machine's date or
//! speed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use crmpulse_query_api::bodies::BodyCache;
use crmpulse_query_api::{AppState, LiveConfig, ViewStore, live, sections};
use schemas::event::Channel;
use schemas::metrics::{Fact, Holder, MetricBatch};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn frt(bucket: &str, seconds: u32) -> Fact {
    Fact::FirstResponse {
        account_id: 1,
        bucket: ms(bucket),
        seconds,
        channel: Channel::Whatsapp,
        inbox_id: "i1".into(),
        agent_id: Some("a1".into()),
        team_id: Some("t1".into()),
    }
}

/// A store with a little of everything, at progress 1,000; "now" is 2026-11-24 noon.
/// The body cache keeps nothing (0 bytes): what is shared below is shared by the
/// subscribers themselves, not by the cache.
fn app() -> AppState {
    let store = Arc::new(ViewStore::default());
    store.apply(MetricBatch {
        progress: 1_000,
        events_consumed: 10,
        updates: vec![
            (
                Fact::ActiveConversation {
                    account_id: 1,
                    holder: Holder::Bot,
                    agent_id: None,
                    channel: Channel::Whatsapp,
                    inbox_id: "i1".into(),
                },
                3,
            ),
            (frt("2026-11-24T09:00:00Z", 60), 1),
            (frt("2026-03-10T09:00:00Z", 120), 2),
        ],
    });
    let mut app = AppState::new(store);
    app.clock = schemas::Clock::starting_at(ms("2026-11-24T12:00:00Z"));
    app.bodies = Some(Arc::new(BodyCache::new(0)));
    app.live = LiveConfig {
        coalesce: Duration::from_millis(100),
        ..LiveConfig::default()
    };
    app
}

/// Three views, two of them over 400 days (a point per day).
fn views() -> Vec<(&'static str, &'static str, Value)> {
    let long = json!({"from": "2025-10-21", "to": "2026-11-25", "granularity": "day"});
    vec![
        ("k", "kpi", json!({})),
        ("ce", "conversation-effectiveness", long.clone()),
        ("cl", "customer-load", long),
    ]
}

struct Client {
    to_server: mpsc::UnboundedSender<String>,
    from_server: mpsc::UnboundedReceiver<String>,
    /// The client's copy of each subscription's body (snapshot plus patches).
    data: HashMap<String, Value>,
}

impl Client {
    fn connect(app: &AppState) -> Self {
        let (to_server, requests) = mpsc::unbounded_channel::<String>();
        let (frames, from_server) = mpsc::unbounded_channel::<String>();
        let sink = Box::pin(futures_util::sink::unfold(
            frames,
            |frames, frame: String| async move {
                frames.send(frame).map_err(|_| ())?;
                Ok::<_, ()>(frames)
            },
        ));
        let stream = UnboundedReceiverStream::new(requests);
        tokio::spawn(live::serve(app.clone(), sink, stream));
        Self {
            to_server,
            from_server,
            data: HashMap::new(),
        }
    }

    fn send(&self, message: Value) {
        self.to_server.send(message.to_string()).unwrap();
    }

    fn subscribe(&self, id: &str, section: &str, params: Value) {
        self.send(json!({"op": "subscribe", "id": id, "section": section, "params": params}));
    }

    /// The next frame other than a heartbeat, applied to the client's copies.
    async fn next(&mut self) -> Value {
        loop {
            let text = tokio::time::timeout(Duration::from_secs(30), self.from_server.recv())
                .await
                .expect("a frame within 30 s")
                .expect("the connection is open");
            let frame: Value = serde_json::from_str(&text).unwrap();
            let id = frame["id"].as_str().unwrap_or_default().to_owned();
            match frame["type"].as_str() {
                Some("progress") => continue,
                Some("snapshot") => {
                    self.data.insert(id, frame["data"].clone());
                }
                Some("delta") => {
                    let patch: json_patch::Patch =
                        serde_json::from_value(frame["patch"].clone()).unwrap();
                    json_patch::patch(self.data.get_mut(&id).unwrap(), &patch).unwrap();
                }
                _ => {}
            }
            return frame;
        }
    }

    /// Frames until every subscription in `ids` had one of `kind`.
    async fn wait_for(&mut self, kind: &str, ids: &[&str]) {
        let mut missing: Vec<&str> = ids.to_vec();
        while !missing.is_empty() {
            let frame = self.next().await;
            assert_ne!(frame["type"], "error", "{frame}");
            if frame["type"] == kind {
                missing.retain(|id| frame["id"] != *id);
            }
        }
    }
}

fn alive(app: &AppState) -> (usize, u64) {
    app.bodies.as_ref().unwrap().alive()
}

/// The body a REST request would get now.
fn rest_body(app: &AppState, section: &str, params: &Value) -> Value {
    let query: HashMap<String, String> = serde_json::from_value(params.clone()).unwrap();
    let params = sections::Params::parse(&query).unwrap();
    sections::compute(app, section, &params, app.clock.now_ms()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn subscribers_of_one_view_share_one_body() {
    let app = app();
    let ids: Vec<&str> = views().iter().map(|(id, ..)| *id).collect();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = Client::connect(&app);
        for (id, section, params) in views() {
            client.subscribe(id, section, params);
        }
        client.wait_for("snapshot", &ids).await;
        clients.push(client);
    }
    let (bodies, bytes) = alive(&app);
    // 60 subscriptions, 3 views: 3 bodies, not 60 copies.
    assert_eq!(bodies, 3, "{bytes} bytes");
    let one_of_each: u64 = views()
        .iter()
        .map(|(_, section, params)| {
            crmpulse_query_api::bodies::weigh(&rest_body(&app, section, params)) as u64
        })
        .sum();
    // One of each (a copy's buffers may be tighter than the served body's).
    assert!(
        bytes <= one_of_each * 3 / 2 && bytes >= one_of_each / 2,
        "{bytes} bytes held, one of each view is {one_of_each}"
    );
}

#[tokio::test(start_paused = true)]
async fn connections_that_subscribed_at_different_states_converge_to_one_body() {
    let app = app();
    let ids: Vec<&str> = views().iter().map(|(id, ..)| *id).collect();
    let mut clients = Vec::new();
    // Each connection subscribes at its own state: progress moves in between.
    for i in 0..10u64 {
        let mut client = Client::connect(&app);
        for (id, section, params) in views() {
            client.subscribe(id, section, params);
        }
        client.wait_for("snapshot", &ids).await;
        clients.push(client);
        app.store.apply(MetricBatch {
            progress: 2_000 + i * 250,
            events_consumed: 10,
            updates: vec![],
        });
    }
    // A few coalescing ticks: only progress moved, so nobody receives a delta, but
    // every connection moves to the newest body.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alive(&app).0, 3);

    // A real change at the same progress: every client's copy becomes the REST body,
    // `progress` included (their copies still had the progress of their snapshot).
    app.store.apply(MetricBatch {
        progress: 2_000 + 9 * 250,
        events_consumed: 11,
        updates: vec![(frt("2026-11-24T10:00:00Z", 600), 1)],
    });
    for client in &mut clients {
        client.wait_for("delta", &ids).await;
        for (id, section, params) in views() {
            assert_eq!(client.data[id], rest_body(&app, section, &params), "{id}");
        }
    }
    assert_eq!(alive(&app).0, 3);
}

async fn expect_error(client: &mut Client, id: Option<&str>, code: &str, says: &str) {
    let frame = client.next().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["id"].as_str(), id, "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    let message = frame["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_past_its_limits_gets_an_error_frame_naming_the_limit() {
    let mut app = app();
    app.live.max_subscriptions = 2;
    let mut client = Client::connect(&app);
    client.subscribe("a", "kpi", json!({}));
    client.subscribe("b", "kpi", json!({"channel": "whatsapp"}));
    client.wait_for("snapshot", &["a", "b"]).await;
    client.subscribe("c", "kpi", json!({}));
    expect_error(
        &mut client,
        Some("c"),
        "too_many_subscriptions",
        "at most 2 subscriptions per connection",
    )
    .await;
    // Replacing a subscription is not a new one.
    client.subscribe("b", "kpi", json!({}));
    client.wait_for("snapshot", &["b"]).await;

    client.send(json!({"op": "unsubscribe", "id": "b"}));
    client.subscribe(&"x".repeat(200), "kpi", json!({}));
    expect_error(
        &mut client,
        None,
        "bad_request",
        "id: at most 128 bytes, got 200",
    )
    .await;
    client.subscribe("long", "kpi", json!({"inbox_id": "i".repeat(300)}));
    expect_error(
        &mut client,
        Some("long"),
        "bad_request",
        "inbox_id: at most 256 bytes, got 300",
    )
    .await;
    // Points per body: hours over 400 days are about 9,600 points.
    client.subscribe(
        "hourly",
        "conversation-effectiveness",
        json!({"from": "2025-10-21", "to": "2026-11-25", "granularity": "hour"}),
    );
    expect_error(
        &mut client,
        Some("hourly"),
        "bad_request",
        "points, at most 1000; use granularity=day",
    )
    .await;
    // The refusals left the connection and its subscription running.
    client.subscribe("b", "kpi", json!({}));
    client.wait_for("snapshot", &["b"]).await;
}
