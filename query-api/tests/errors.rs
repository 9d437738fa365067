//! Errors as documented (docs/api.md, docs/websocket.md): every `/api/` error is the
//! JSON body `{"error": {"code", "message"}}`, whatever refused the request (an
//! unknown path, a method, a malformed query string, a missing upgrade); every
//! WebSocket error frame carries a `code`; a message over 64 KiB is answered with close
//! code 1009 and a reason.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use crmpulse_query_api::auth::{Auth, Claims, Limits, Role, Signer, Verifier};
use crmpulse_query_api::{AppState, LiveConfig, ViewStore, router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

const SECRET: &[u8] = b"errors-test-secret-0123456789abcdef";

/// "Now" for these tests, whatever the machine's date.
fn clock() -> schemas::Clock {
    schemas::Clock::starting_at_rfc3339("2026-11-24T12:00:00Z").unwrap()
}

fn state() -> AppState {
    let mut state = AppState::new(Arc::new(ViewStore::default()));
    state.clock = clock();
    state.auth = Some(Arc::new(Auth::new(
        Verifier::hs256(SECRET).unwrap().with_clock(clock()),
        Limits::default(),
    )));
    state
}

fn admin() -> String {
    let claims = Claims::new(
        "ada",
        1,
        Role::Admin,
        vec![],
        None,
        Duration::from_secs(600),
        &clock(),
    );
    Signer::hs256(SECRET).unwrap().sign(&claims).unwrap()
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"not json": String::from_utf8_lossy(&bytes)}));
    (status, ctype, body)
}

#[tokio::test]
async fn every_api_error_is_the_documented_json_body() {
    let app = router(state());
    let bearer = format!("Bearer {}", admin());
    let get = |uri: &str| {
        Request::get(uri)
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap()
    };
    let cases = [
        (get("/api/nope"), StatusCode::NOT_FOUND, "not_found"),
        (get("/api/v2/events"), StatusCode::NOT_FOUND, "not_found"),
        (get("/api/dashboard"), StatusCode::NOT_FOUND, "not_found"),
        (
            get("/api/dashboard/nope"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Request::post("/api/me")
                .header("authorization", &bearer)
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::delete("/api/dashboard/kpi")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::post("/metrics").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        // A query string that does not decode.
        (
            get("/api/dashboard/kpi?from=%FF%FE"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        // `/api/live` without the WebSocket upgrade.
        (get("/api/live"), StatusCode::BAD_REQUEST, "bad_request"),
    ];
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (got, ctype, body) = call(&app, req).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(ctype.starts_with("application/json"), "{what}: {ctype}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: {body}"
        );
    }
    // The 405 still says which methods are allowed.
    let res = app
        .clone()
        .oneshot(Request::post("/api/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET,HEAD");
    // Outside `/api/` the dashboard's files and shell are served as before.
    let (status, ctype, _) = call(&app, get("/")).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    assert!(!ctype.starts_with("application/json"), "{ctype}");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live socket on a real server, authenticated as an admin.
async fn live_socket(state: AppState) -> Ws {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/live"))
        .await
        .unwrap();
    ws.send(json!({"op": "auth", "token": admin()}).to_string().into())
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["type"], "authenticated");
    ws
}

async fn next_message(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .expect("the socket is open")
        .expect("a readable message")
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = next_message(ws).await;
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "progress" {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn every_websocket_error_frame_carries_its_code() {
    let mut state = state();
    state.live = LiveConfig {
        max_subscriptions: 1,
        ..LiveConfig::default()
    };
    let mut ws = live_socket(state).await;
    let sub = |id: &str, section: &str, params: Value| {
        Message::from(
            json!({"op": "subscribe", "id": id, "section": section, "params": params}).to_string(),
        )
    };
    let cases = [
        (Message::from("not json"), None, "bad_request"),
        (Message::from("{\"op\":\"dance\"}"), None, "bad_request"),
        (
            sub("s1", "kpi", json!({"to": "x"})),
            Some("s1"),
            "bad_request",
        ),
        (sub("s2", "nope", json!({})), Some("s2"), "not_found"),
        (
            sub("s3", "kpi", json!({"account_id": "2"})),
            Some("s3"),
            "forbidden",
        ),
    ];
    for (message, id, code) in cases {
        let what = format!("{message:?}");
        ws.send(message).await.unwrap();
        let err = next(&mut ws).await;
        assert_eq!(err["type"], "error", "{what}: {err}");
        assert_eq!(err["code"], code, "{what}: {err}");
        assert_eq!(err["id"].as_str(), id, "{what}: {err}");
        assert!(err["message"].is_string(), "{what}: {err}");
    }
    // The connection's subscription cap.
    ws.send(sub("a", "kpi", json!({}))).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "snapshot");
    ws.send(sub("b", "kpi", json!({}))).await.unwrap();
    let err = next(&mut ws).await;
    assert_eq!(
        (
            err["type"].as_str(),
            err["id"].as_str(),
            err["code"].as_str()
        ),
        (Some("error"), Some("b"), Some("too_many_subscriptions")),
        "{err}"
    );
}

#[tokio::test]
async fn a_message_over_64_kib_is_answered_with_close_1009() {
    for authenticated in [true, false] {
        let mut ws = if authenticated {
            live_socket(state()).await
        } else {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, router(state())).await.unwrap() });
            tokio_tungstenite::connect_async(format!("ws://{addr}/api/live"))
                .await
                .unwrap()
                .0
        };
        let big = format!(
            "{{\"op\":\"subscribe\",\"id\":\"{}\",\"section\":\"kpi\"}}",
            "x".repeat(70 * 1024)
        );
        ws.send(Message::from(big)).await.unwrap();
        let close = loop {
            match next_message(&mut ws).await {
                Message::Close(frame) => break frame.expect("a close code"),
                Message::Text(t) => {
                    assert!(authenticated, "nothing but the close before auth: {t}");
                }
                _ => {}
            }
        };
        assert_eq!(u16::from(close.code), 1009, "{close:?}");
        assert!(close.reason.contains("64 KiB"), "{close:?}");
    }
}
