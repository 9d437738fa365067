//! `/api/live`: WebSocket subscriptions with a snapshot, then coalesced deltas (see
//! `docs/websocket.md`).
//!
//! Each connection keeps, per subscription, the last body it sent. On every coalescing
//! tick after the store's progress moved, it recomputes the body at the store's
//! current complete timestamp and sends the RFC 6902 difference. Nothing is ever
//! queued per client: a slow client just gets fewer, larger deltas, each computed from
//! the newest state; a client whose socket takes longer than the send timeout is
//! disconnected. The loop is generic over `Sink`/`Stream` of text frames, so tests
//! drive it with channels.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};

use crate::AppState;
use crate::sections::{self, Params};

/// Tuning of live connections.
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// Minimum interval between two deltas to one client.
    pub coalesce: Duration,
    /// A frame not accepted by the socket within this time closes the connection.
    pub send_timeout: Duration,
    /// Interval of `progress` heartbeats when nothing else was sent.
    pub heartbeat: Duration,
    /// Most subscriptions one connection may hold.
    pub max_subscriptions: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            coalesce: Duration::from_millis(1000),
            send_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(5),
            max_subscriptions: 16,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Subscribe {
        id: String,
        section: String,
        #[serde(default)]
        params: HashMap<String, String>,
    },
    Unsubscribe {
        id: String,
    },
}

struct Subscription {
    section: String,
    params: Params,
    last: Value,
}

/// `GET /api/live`: upgrades with small socket buffers (a few KiB instead of the
/// ~128 KiB per connection tungstenite defaults to).
pub async fn live_connect(State(app): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket: WebSocket| async move {
            let (sink, stream) = socket.split();
            let sink = sink.with(|text: String| async move {
                Ok::<_, axum::Error>(Message::Text(text.into()))
            });
            // Text frames are requests; a close frame or an error ends the stream.
            let stream = stream
                .take_while(|m| {
                    std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_))))
                })
                .map(|m| match m {
                    Ok(Message::Text(t)) => t.to_string(),
                    _ => String::new(),
                });
            serve(app, Box::pin(sink), Box::pin(stream)).await;
        })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Serves one live connection until the client goes away or stalls.
pub async fn serve<S, R>(app: AppState, mut sink: S, mut stream: R)
where
    S: Sink<String> + Unpin,
    R: Stream<Item = String> + Unpin,
{
    let config = app.live;
    let mut subs: HashMap<String, Subscription> = HashMap::new();
    let mut progress = app.store.subscribe();
    let mut tick = tokio::time::interval(config.coalesce);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut last_sent = Instant::now();
    metrics::gauge!("crmpulse_api_live_connections").increment(1.0);

    loop {
        let mut out: Vec<String> = Vec::new();
        tokio::select! {
            msg = stream.next() => {
                let Some(text) = msg else { break };
                if text.is_empty() {
                    continue;
                }
                handle_client(&app, &config, &text, &mut subs, &mut out);
            }
            changed = progress.changed() => {
                if changed.is_err() {
                    break;
                }
                dirty = true;
            }
            _ = tick.tick() => {
                if dirty {
                    dirty = false;
                    let at = app.store.progress();
                    for (id, sub) in &mut subs {
                        match sections::compute(&app, &sub.section, &sub.params, now_ms()) {
                            Ok(body) => {
                                let patch = json_patch::diff(&sub.last, &body);
                                if !patch.0.is_empty() {
                                    out.push(json!({"type": "delta", "id": id, "progress": at, "patch": patch}).to_string());
                                    sub.last = body;
                                }
                            }
                            Err(e) => out.push(json!({"type": "error", "id": id, "message": e.to_string()}).to_string()),
                        }
                    }
                }
                if out.is_empty() && last_sent.elapsed() >= config.heartbeat {
                    out.push(json!({"type": "progress", "progress": app.store.progress()}).to_string());
                }
            }
        }
        let mut failed = false;
        for frame in out {
            metrics::counter!("crmpulse_api_live_frames_total").increment(1);
            match tokio::time::timeout(config.send_timeout, sink.send(frame)).await {
                Ok(Ok(())) => last_sent = Instant::now(),
                Ok(Err(_)) => {
                    failed = true;
                    break;
                }
                Err(_) => {
                    metrics::counter!("crmpulse_api_live_stalled_total").increment(1);
                    tracing::info!("closing a live connection that stopped reading");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    metrics::gauge!("crmpulse_api_live_connections").decrement(1.0);
}

fn handle_client(
    app: &AppState,
    config: &LiveConfig,
    text: &str,
    subs: &mut HashMap<String, Subscription>,
    out: &mut Vec<String>,
) {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            out.push(json!({"type": "error", "message": format!("message: {e}")}).to_string());
            return;
        }
    };
    match msg {
        ClientMessage::Subscribe {
            id,
            section,
            params,
        } => {
            if !subs.contains_key(&id) && subs.len() >= config.max_subscriptions {
                out.push(
                    json!({"type": "error", "id": id, "message": format!("subscribe: at most {} subscriptions per connection", config.max_subscriptions)})
                        .to_string(),
                );
                return;
            }
            let result = Params::parse(&params)
                .and_then(|p| sections::compute(app, &section, &p, now_ms()).map(|body| (p, body)));
            match result {
                Ok((params, body)) => {
                    out.push(
                        json!({"type": "snapshot", "id": id, "progress": app.store.progress(), "data": body})
                            .to_string(),
                    );
                    subs.insert(
                        id,
                        Subscription {
                            section,
                            params,
                            last: body,
                        },
                    );
                }
                Err(e) => out
                    .push(json!({"type": "error", "id": id, "message": e.to_string()}).to_string()),
            }
        }
        ClientMessage::Unsubscribe { id } => {
            subs.remove(&id);
        }
    }
}
