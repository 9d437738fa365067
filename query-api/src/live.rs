//! `/api/live`: WebSocket subscriptions with a snapshot, then coalesced deltas (see
//! `docs/websocket.md`).
//!
//! Each connection keeps, per subscription, the last body it sent. On every coalescing
//! tick after the store's progress moved, it recomputes the body at the store's
//! current complete timestamp and sends the RFC 6902 difference.
//!
//! Memory no client can inflate: the body a subscription keeps is the shared body
//! ([`sections::compute_shared`]), so subscribers of one view at one state hold one
//! body between them, not a copy each. Coalescing ticks fall on one process-wide grid
//! (multiples of the coalescing interval), so every connection recomputes at the same
//! moment, sees the same state and moves to the same body; a body whose only change is
//! `progress` is adopted too (the client's copy then differs in `progress` only, which
//! the next delta sets). What one connection can ask for is capped: at most
//! [`LiveConfig::max_subscriptions`] subscriptions, ids of at most [`MAX_ID_BYTES`],
//! parameter values of at most [`MAX_PARAM_BYTES`], and bodies of at most
//! [`sections::MAX_POINTS`] points per series, each refused with an error frame
//! naming the limit. Nothing is ever
//! queued per client: a slow client just gets fewer, larger deltas, each computed from
//! the newest state; a client whose socket takes longer than the send timeout is
//! disconnected. The loop is generic over `Sink`/`Stream` of text frames, so tests
//! drive it with channels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};

use crate::AppState;
use crate::auth::{LiveSlot, Principal};
use crate::bodies::Body;
use crate::sections::{self, Params};

/// Close code for a connection without valid credentials (missing, invalid or
/// expired token); clients should sign in again rather than reconnect.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code for a message before authentication that is not an `auth` or
/// `subscribe` request (not JSON, an unknown `op`): nothing is answered before
/// authentication but the close.
pub const CLOSE_BAD_MESSAGE: u16 = 4400;
/// Close code when the server or the token is at its connection cap.
pub const CLOSE_TRY_LATER: u16 = 1013;
/// Close code for a message (or frame) over [`MAX_MESSAGE_BYTES`] (RFC 6455 "message
/// too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Largest message a client may send; a larger one ends the connection with
/// [`CLOSE_TOO_BIG`].
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How long a connection may stay open without authenticating.
pub const AUTH_DEADLINE: Duration = Duration::from_secs(10);
/// Longest subscription `id`: ids are kept for the subscription's life and repeated
/// in every frame.
pub const MAX_ID_BYTES: usize = 128;
/// Longest value of one subscription parameter (ids and dates are far shorter).
pub const MAX_PARAM_BYTES: usize = 256;

/// Why the server ended a connection, sent as the close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// WebSocket close code.
    pub code: u16,
    /// Human-readable reason (at most 123 bytes on the wire).
    pub reason: String,
}

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
    Auth {
        token: String,
    },
}

struct Subscription {
    section: String,
    params: Params,
    /// The shared body the client's copy equals, but for its top-level `progress`
    /// (which is `sent_progress`): never a private copy.
    last: Arc<Body>,
    /// The top-level `progress` of the client's copy.
    sent_progress: Option<Value>,
}

impl Subscription {
    /// The delta frame that turns the client's copy into `body`, if anything but
    /// `progress` changed; the subscription then holds `body` either way.
    fn advance(&mut self, id: &str, at: u64, body: Arc<Body>) -> Option<String> {
        if Body::same(&self.last, &body) {
            return None;
        }
        // A body whose only change is `progress` is not news: the heartbeat carries
        // progress, so an idle client receives nothing else (docs/websocket.md). It is
        // still adopted, so that this connection holds the body everyone else holds.
        if only_progress_moved(&self.last, &body) {
            self.last = body;
            return None;
        }
        let mut patch = json_patch::diff(&self.last, &body);
        let progress = body.get("progress");
        if self.last.get("progress") == progress && self.sent_progress.as_ref() != progress {
            // The diff does not touch `progress` (`last` already had the new one, by
            // adoption), but the client's copy has an older one.
            if let Some(value) = progress
                && let Ok(op) = serde_json::from_value(
                    json!({"op": "replace", "path": "/progress", "value": value}),
                )
            {
                patch.0.push(op);
            }
        }
        self.sent_progress = progress.cloned();
        self.last = body;
        Some(json!({"type": "delta", "id": id, "progress": at, "patch": patch}).to_string())
    }
}

/// A snapshot frame, serialized straight from the shared body (no copy of it).
#[derive(Serialize)]
struct SnapshotFrame<'a> {
    r#type: &'static str,
    id: &'a str,
    progress: u64,
    data: &'a Value,
}

/// The first coalescing tick at or after `not_before`: a multiple of `period` since a
/// process-wide origin, so that every connection ticks at the same moments.
fn grid_tick(period: Duration, not_before: Instant) -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    let origin = Instant::from_std(*ORIGIN.get_or_init(std::time::Instant::now));
    let period_ns = period.as_nanos().max(1);
    let wait = if not_before >= origin {
        let into = (not_before - origin).as_nanos() % period_ns;
        (period_ns - into) % period_ns
    } else {
        // A runtime whose clock is behind the origin (a paused test clock): the grid
        // extends backwards.
        (origin - not_before).as_nanos() % period_ns
    };
    not_before + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
}

/// The tick after one handled now: the next grid point at least 9/10 of `period`
/// away. A tick handled late (a busy loop, a slow send) thus returns to the grid
/// instead of drifting off it, and two ticks are never much closer than `period`.
fn next_tick(period: Duration) -> Instant {
    grid_tick(period, Instant::now() + period.mul_f64(0.9))
}

/// `GET /api/live`: upgrades with small socket buffers (a few KiB instead of the
/// ~128 KiB per connection tungstenite defaults to). A client that can set headers
/// may authenticate with `Authorization: Bearer` here (a bad token is refused with
/// `401` before the upgrade); browsers send `{"op":"auth"}` as their first message.
pub async fn live_connect(
    State(app): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let token = match (&app.auth, crate::auth::bearer(&headers)) {
        (Some(auth), Some(token)) => match auth.verify(token) {
            Ok(_) => Some(token.to_owned()),
            Err(e) => return crate::ApiError::from(e).into_response(),
        },
        _ => None,
    };
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket: WebSocket| async move {
            let (sink, stream) = socket.split();
            let mut sink = sink.with(|text: String| {
                std::future::ready(Ok::<_, axum::Error>(Message::Text(text.into())))
            });
            // Text frames are requests; a close frame or an error ends the stream. A
            // message over the size limit is a read error too: remembered, so that the
            // client is told with 1009 instead of losing the connection silently.
            let too_big = Arc::new(AtomicBool::new(false));
            let saw_too_big = Arc::clone(&too_big);
            let stream = stream
                .take_while(move |m| {
                    if let Err(e) = m
                        && is_too_big(e)
                    {
                        saw_too_big.store(true, Ordering::Relaxed);
                    }
                    std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_))))
                })
                .map(|m| match m {
                    Ok(Message::Text(t)) => t.to_string(),
                    _ => String::new(),
                });
            let close = serve_as(app, token, &mut sink, Box::pin(stream))
                .await
                .or_else(|| {
                    too_big.load(Ordering::Relaxed).then(|| {
                        metrics::counter!("crmpulse_api_live_refused_total", "code" => "message_too_big")
                            .increment(1);
                        Close {
                            code: CLOSE_TOO_BIG,
                            reason: format!(
                                "message too big: at most {} KiB per message",
                                MAX_MESSAGE_BYTES / 1024
                            ),
                        }
                    })
                });
            if let Some(close) = close {
                let _ = sink
                    .get_mut()
                    .send(Message::Close(Some(CloseFrame {
                        code: close.code,
                        reason: close.reason.into(),
                    })))
                    .await;
            }
        })
}

/// Whether a read error is tungstenite's "message or frame over the size limit".
fn is_too_big(e: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    std::error::Error::source(e)
        .and_then(|inner| inner.downcast_ref::<WsError>())
        .is_some_and(|inner| matches!(inner, WsError::Capacity(_)))
}

/// Serves one live connection until the client goes away or stalls.
///
/// Returns the close frame to send when the server ends the connection on purpose
/// (authentication, connection caps); `None` when the client left or stalled.
pub async fn serve<S, R>(app: AppState, sink: S, stream: R) -> Option<Close>
where
    S: Sink<String> + Unpin,
    R: Stream<Item = String> + Unpin,
{
    serve_as(app, None, sink, stream).await
}

/// Per-connection authentication state.
struct Session {
    /// Who is connected; `None` before the `auth` message (or with auth off).
    principal: Option<Principal>,
    /// The token the principal was verified from, checked again whenever the server's
    /// keys or revocations change ([`crate::auth::Auth::generation`]).
    token: Option<String>,
    /// The keys-and-revocations generation `token` was last checked at.
    generation: u64,
    /// The connection slot held for the principal.
    _slot: Option<LiveSlot>,
}

impl Session {
    /// Whether frames may be sent: only to a holder of a valid token (or to anyone
    /// with authentication off). Before that, the only thing sent is the close.
    fn authenticated(&self, app: &AppState) -> bool {
        app.auth.is_none() || self.principal.is_some()
    }
}

/// `before` and `after` differ at most in their top-level `progress`.
fn only_progress_moved(before: &serde_json::Value, after: &serde_json::Value) -> bool {
    match (before.as_object(), after.as_object()) {
        (Some(b), Some(a)) => {
            b.len() == a.len()
                && a.iter()
                    .all(|(k, v)| k == "progress" || b.get(k).is_some_and(|old| old == v))
        }
        _ => before == after,
    }
}

/// [`serve`] for a connection that authenticated at the upgrade (with `token`), or
/// that must send `{"op":"auth"}` first when the server has authentication on.
pub async fn serve_as<S, R>(
    app: AppState,
    token: Option<String>,
    mut sink: S,
    mut stream: R,
) -> Option<Close>
where
    S: Sink<String> + Unpin,
    R: Stream<Item = String> + Unpin,
{
    let config = app.live;
    let mut subs: HashMap<String, Subscription> = HashMap::new();
    let mut progress = app.store.subscribe();
    let mut tick =
        tokio::time::interval_at(grid_tick(config.coalesce, Instant::now()), config.coalesce);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut last_sent = Instant::now();
    let opened = Instant::now();
    let mut session = Session {
        principal: None,
        token: None,
        generation: 0,
        _slot: None,
    };
    metrics::gauge!("crmpulse_api_live_connections").increment(1.0);
    let mut closing: Option<Close> = None;
    if let (Some(token), Some(auth)) = (token, &app.auth) {
        let mut out = Vec::new();
        let verified = auth.verify(&token);
        closing = authenticate(&app, &mut session, verified, token, &mut out);
        for frame in out {
            let _ = tokio::time::timeout(config.send_timeout, sink.send(frame)).await;
        }
    }

    while closing.is_none() {
        let mut out: Vec<String> = Vec::new();
        tokio::select! {
            msg = stream.next() => {
                let Some(text) = msg else { break };
                if text.is_empty() {
                    continue;
                }
                closing = handle_client(&app, &config, &text, &mut session, &mut subs, &mut out);
            }
            changed = progress.changed() => {
                if changed.is_err() {
                    break;
                }
                dirty = true;
            }
            _ = tick.tick() => {
                tick.reset_at(next_tick(config.coalesce));
                if let Some(auth) = &app.auth {
                    match &session.principal {
                        None if opened.elapsed() >= AUTH_DEADLINE => {
                            closing = Some(refuse(&session, &mut out, "unauthorized", "no auth message within 10 s"));
                        }
                        Some(p) if p.claims().exp <= app.clock.now_s() => {
                            subs.clear();
                            closing = Some(refuse(&session, &mut out, "token_expired", "token expired"));
                        }
                        // A key was retired or a user revoked since the token was checked.
                        Some(_) if auth.generation() != session.generation => {
                            session.generation = auth.generation();
                            if let Some(Err(e)) = session.token.as_deref().map(|t| auth.verify(t)) {
                                subs.clear();
                                closing = Some(refuse(&session, &mut out, e.code(), &e.to_string()));
                            }
                        }
                        _ => {}
                    }
                }
                if dirty {
                    dirty = false;
                    let at = app.store.progress();
                    for (id, sub) in &mut subs {
                        match sections::compute_shared(&app, &sub.section, &sub.params, app.clock.now_ms(), session.principal.as_ref()) {
                            Ok(body) => out.extend(sub.advance(id, at, body)),
                            Err(e) => out.push(json!({"type": "error", "id": id, "code": e.code(), "message": e.to_string()}).to_string()),
                        }
                    }
                }
                if out.is_empty() && closing.is_none() && session.authenticated(&app) && last_sent.elapsed() >= config.heartbeat {
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
            closing = None;
            break;
        }
    }
    metrics::gauge!("crmpulse_api_live_connections").decrement(1.0);
    closing
}

/// The close for `code` with `message` as its reason, after an error frame saying the
/// same when the connection is authenticated (before that, nothing but the close is
/// sent: docs/security.md).
fn refuse(session: &Session, out: &mut Vec<String>, code: &str, message: &str) -> Close {
    metrics::counter!("crmpulse_api_live_refused_total", "code" => code.to_owned()).increment(1);
    if session.principal.is_some() {
        out.push(json!({"type": "error", "code": code, "message": message}).to_string());
    }
    // A close reason holds at most 123 bytes.
    let mut reason = String::new();
    for c in message.chars() {
        if reason.len() + c.len_utf8() > 120 {
            break;
        }
        reason.push(c);
    }
    Close {
        code: match code {
            "try_later" => CLOSE_TRY_LATER,
            "bad_request" => CLOSE_BAD_MESSAGE,
            _ => CLOSE_UNAUTHORIZED,
        },
        reason,
    }
}

/// Makes `verified` the connection's principal (one per connection), holding a
/// connection slot for it.
fn authenticate(
    app: &AppState,
    session: &mut Session,
    verified: Result<Principal, crate::auth::TokenError>,
    token: String,
    out: &mut Vec<String>,
) -> Option<Close> {
    let Some(auth) = &app.auth else {
        out.push(json!({"type": "authenticated", "sub": "anonymous", "role": "admin"}).to_string());
        return None;
    };
    let principal = match verified {
        Ok(p) => p,
        Err(e) => return Some(refuse(session, out, e.code(), &e.to_string())),
    };
    if let Some(current) = &session.principal {
        // A refreshed token for the same holder extends the connection.
        let (a, b) = (current.claims(), principal.claims());
        if (a.account_id, &a.sub, a.role) != (b.account_id, &b.sub, b.role) {
            return Some(refuse(
                session,
                out,
                "unauthorized",
                "auth: a connection keeps one identity",
            ));
        }
    } else {
        match auth.hold_live(&principal) {
            Ok(slot) => session._slot = Some(slot),
            Err(message) => return Some(refuse(session, out, "try_later", &message)),
        }
    }
    session.token = Some(token);
    session.generation = auth.generation();
    let c = principal.claims();
    out.push(
        json!({"type": "authenticated", "sub": c.sub, "role": c.role, "account_id": c.account_id, "exp": c.exp})
            .to_string(),
    );
    session.principal = Some(principal);
    None
}

/// The error frame refusing a subscription past one of the connection's limits
/// (their count, the length of the id or of a parameter), naming the limit.
fn subscribe_limits(
    config: &LiveConfig,
    subs: &HashMap<String, Subscription>,
    id: &str,
    params: &HashMap<String, String>,
) -> Option<String> {
    let (code, message) = if id.len() > MAX_ID_BYTES {
        (
            "bad_request",
            format!("id: at most {MAX_ID_BYTES} bytes, got {}", id.len()),
        )
    } else if let Some((name, value)) = params.iter().find(|(_, v)| v.len() > MAX_PARAM_BYTES) {
        (
            "bad_request",
            format!(
                "{}: at most {MAX_PARAM_BYTES} bytes, got {}",
                name.chars().take(32).collect::<String>(),
                value.len()
            ),
        )
    } else if !subs.contains_key(id) && subs.len() >= config.max_subscriptions {
        (
            "too_many_subscriptions",
            format!(
                "subscribe: at most {} subscriptions per connection; unsubscribe one first",
                config.max_subscriptions
            ),
        )
    } else {
        return None;
    };
    // An id past its limit is not echoed back.
    let id = (id.len() <= MAX_ID_BYTES).then_some(id);
    Some(json!({"type": "error", "id": id, "code": code, "message": message}).to_string())
}

fn handle_client(
    app: &AppState,
    config: &LiveConfig,
    text: &str,
    session: &mut Session,
    subs: &mut HashMap<String, Subscription>,
    out: &mut Vec<String>,
) -> Option<Close> {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        // Before authentication, not even a parse error is answered: only the close.
        Err(e) if !session.authenticated(app) => {
            return Some(refuse(
                session,
                out,
                "bad_request",
                &format!("message: {e}"),
            ));
        }
        Err(e) => {
            out.push(
                json!({"type": "error", "code": "bad_request", "message": format!("message: {e}")})
                    .to_string(),
            );
            return None;
        }
    };
    if let ClientMessage::Auth { token } = msg {
        let verified = match &app.auth {
            Some(auth) => auth.verify(&token),
            None => Err(crate::auth::TokenError::Missing),
        };
        return authenticate(app, session, verified, token, out);
    }
    if let Some(auth) = &app.auth {
        let Some(principal) = &session.principal else {
            return Some(refuse(
                session,
                out,
                "unauthorized",
                "send {\"op\":\"auth\",\"token\":…} before anything else",
            ));
        };
        if let Err(e) = auth.admit(principal) {
            out.push(
                json!({"type": "error", "code": "rate_limited", "message": e.to_string()})
                    .to_string(),
            );
            return None;
        }
    }
    match msg {
        ClientMessage::Subscribe {
            id,
            section,
            params,
        } => {
            if let Some(refusal) = subscribe_limits(config, subs, &id, &params) {
                out.push(refusal);
                return None;
            }
            let principal = session.principal.as_ref();
            let result = Params::parse_for(&params, principal).and_then(|p| {
                sections::compute_shared(app, &section, &p, app.clock.now_ms(), principal)
                    .map(|body| (p, body))
            });
            match result {
                Ok((params, body)) => {
                    let frame = SnapshotFrame {
                        r#type: "snapshot",
                        id: &id,
                        progress: app.store.progress(),
                        data: &body,
                    };
                    out.push(serde_json::to_string(&frame).unwrap_or_default());
                    subs.insert(
                        id,
                        Subscription {
                            section,
                            params,
                            sent_progress: body.get("progress").cloned(),
                            last: body,
                        },
                    );
                }
                Err(e) => out.push(
                    json!({"type": "error", "id": id, "code": e.code(), "message": e.to_string()})
                        .to_string(),
                ),
            }
        }
        ClientMessage::Unsubscribe { id } => {
            subs.remove(&id);
        }
        // Answered before the authentication gate above.
        ClientMessage::Auth { .. } => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn connections_opened_at_different_moments_tick_together() {
        let period = Duration::from_millis(1000);
        let now = Instant::now();
        let first = grid_tick(period, now);
        assert!(first >= now && first < now + period);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = grid_tick(period, Instant::now());
        // The same grid: the same tick, or the one after it.
        assert!(
            second == first || second == first + period,
            "{first:?} {second:?}"
        );
        // A grid point is its own tick; a tick handled on time is followed by the next
        // point, one handled late returns to the grid.
        assert_eq!(grid_tick(period, first), first);
        assert_eq!(
            grid_tick(period, first + period.mul_f64(0.9)),
            first + period
        );
        assert_eq!(
            grid_tick(period, first + period.mul_f64(1.4)),
            first + 2 * period
        );
    }
}
