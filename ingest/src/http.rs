//! `POST /api/v1/events`: the HTTP front door for events.
//!
//! Takes a JSON array or NDJSON. Each event is validated on its own: valid events are
//! appended to the durable log even when others in the same body are rejected, and
//! every rejected one is answered with its position and reason, dead-lettered with its
//! original text, and counted in `crmpulse_ingest_rejected_events_total{reason}`.
//!
//! Requests authenticate with the account's ingest key ([`crate::auth`]); events of
//! any other account in the body are rejected the same way.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use schemas::Event;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::auth::{IngestAuth, IngestAuthError};
use crate::log::{DeadLetter, EventLog};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One rejected event in an ingest response.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// 0-based position in the array, or 0-based line number in NDJSON.
    pub index: usize,
    /// The event's id, when it had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `field: problem`.
    pub error: String,
    /// The reason's kind, for metrics and dead-letter headers.
    #[serde(skip)]
    pub kind: &'static str,
}

/// Body of every ingest response.
#[derive(Debug, Serialize, Default)]
pub struct IngestResponse {
    /// Events newly stored.
    pub accepted: u64,
    /// Events already stored (same `event_id`): accepted, changed nothing.
    pub duplicates: u64,
    /// Events refused, with reasons.
    pub rejected: Vec<Rejected>,
}

/// What the embedded ingest handlers need.
#[derive(Debug, Clone)]
struct IngestState {
    log: Arc<EventLog>,
    auth: Arc<IngestAuth>,
}

/// The ingest routes, to be merged into the application router:
/// `POST /api/v1/events` (bearer ingest key) and `POST /api/v1/webhooks/{account_id}/events`
/// (HMAC-SHA256 signature of the body).
pub fn router(log: Arc<EventLog>, auth: Arc<IngestAuth>) -> Router {
    Router::new()
        .route("/api/v1/events", post(events_create))
        .route("/api/v1/webhooks/{account_id}/events", post(webhook_create))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(IngestState { log, auth })
}

/// Middleware of the ingest routes: an error response that is not JSON yet (axum's
/// rejections: a method the route does not take, a body over [`MAX_BODY_BYTES`])
/// becomes the `{"error": {"code", "message"}}` body every ingest error has, with the
/// same status and headers (`Allow` on a `405` stays). The query API applies the same
/// rule to its own routes (`query_api::error::json_errors`).
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!(
                "{what}: the body is larger than {} MiB; send fewer events per request",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = res
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("POST");
            (
                "method_not_allowed",
                format!("{what}: method not allowed (allowed: {allow})"),
            )
        }
        StatusCode::NOT_FOUND => ("not_found", format!("{what}: no such route")),
        s if s.is_server_error() => ("internal", "internal error".to_owned()),
        s => (
            "bad_request",
            format!("{what}: {}", s.canonical_reason().unwrap_or("refused")),
        ),
    };
    let mut json = error_body(status, code, message);
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// The response refusing ingest credentials: `401`, or `429` past the rate limit.
pub(crate) fn refuse(e: &IngestAuthError) -> Response {
    match e {
        IngestAuthError::RateLimited(s) => {
            let mut r = error_body(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*s));
            r
        }
        _ => error_body(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
    }
}

/// The account a request may write, from its bearer key or (with `path_account`, on
/// the webhook route) its body signature; `None` when authentication is off.
pub(crate) fn authenticate(
    auth: &IngestAuth,
    path_account: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<u64>, Box<Response>> {
    let result = match path_account {
        None => auth.authenticate_bearer(headers),
        Some(raw) => {
            let account: u64 = raw.parse().map_err(|_| {
                Box::new(error_body(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("account_id: expected a non-negative integer, got {raw:?}"),
                ))
            })?;
            auth.authenticate_signature(account, headers, body)
        }
    };
    result.map_err(|e| Box::new(refuse(&e)))
}

/// Splits a body into `(index, raw text)` items. An array body yields its elements; any
/// other body is NDJSON (blank lines skipped, numbering kept).
fn split_body(body: &str) -> Result<Vec<(usize, &str)>, String> {
    if body.trim_start().starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(body).map_err(|e| format!("body: not a valid JSON array: {e}"))?;
        Ok(items.into_iter().map(RawValue::get).enumerate().collect())
    } else {
        Ok(body
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect())
    }
}

/// A body split into valid events and rejections (each with its original text).
pub type ParsedBody<'a> = (Vec<Event>, Vec<(Rejected, &'a str)>);

/// Validates every item of a body; returns the valid events and the rejections.
///
/// # Errors
/// A message when the body as a whole is unreadable (a malformed JSON array).
pub fn parse_body(body: &str) -> Result<ParsedBody<'_>, String> {
    parse_body_for(body, None)
}

/// [`parse_body`] for credentials of one account: an event of another account is
/// rejected (`account_id: ...`) like any invalid event.
///
/// # Errors
/// A message when the body as a whole is unreadable (a malformed JSON array).
pub fn parse_body_for(body: &str, account: Option<u64>) -> Result<ParsedBody<'_>, String> {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    for (index, raw) in split_body(body)? {
        let (error, kind) = match Event::from_json(raw) {
            Ok(e) if account.is_none_or(|a| a == e.account_id) => {
                events.push(e);
                continue;
            }
            Ok(e) => (
                format!(
                    "account_id: {} is not the account of these ingest credentials ({})",
                    e.account_id,
                    account.unwrap_or_default()
                ),
                "account_mismatch",
            ),
            Err(err) => (err.to_string(), err.kind()),
        };
        let event_id = serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v.get("event_id")?.as_str().map(str::to_owned));
        metrics::counter!("crmpulse_ingest_rejected_events_total", "reason" => kind).increment(1);
        rejected.push((
            Rejected {
                index,
                event_id,
                error,
                kind,
            },
            raw,
        ));
    }
    Ok((events, rejected))
}

pub(crate) fn error_body(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// A `Content-Type` value as a media type (RFC 9110 §8.3.1): type, subtype and
/// parameter names are case-insensitive, parameters may be quoted. `mime` parses it;
/// the whitespace RFC 9110 allows before a parameter's `;` (`OWS ";"`), which `mime`
/// refuses, is dropped first.
fn media_type(value: &str) -> Option<mime::Mime> {
    let mut normalized = String::with_capacity(value.len());
    let (mut quoted, mut escaped) = (false, false);
    for c in value.trim().chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => normalized.truncate(normalized.trim_end_matches([' ', '\t']).len()),
            _ => {}
        }
        normalized.push(c);
    }
    normalized.parse().ok()
}

/// Whether a request's `Content-Type` is one ingest reads: `application/json`,
/// `application/x-ndjson` or `application/ndjson`, in any case, with no charset or
/// UTF-8. No header at all is taken as JSON.
fn accepted_media_type(value: Option<&str>) -> bool {
    let Some(value) = value else { return true };
    let Some(m) = media_type(value) else {
        return false;
    };
    m.type_() == mime::APPLICATION
        && matches!(m.subtype().as_str(), "json" | "x-ndjson" | "ndjson")
        && m.get_param(mime::CHARSET)
            .is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"))
}

/// The body of an ingest request as text, or the error response for a wrong content
/// type or bytes that are not UTF-8. Shared with the Kafka gateway.
pub(crate) fn body_text(headers: &HeaderMap, body: &Bytes) -> Result<String, Box<Response>> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    if !accepted_media_type(ctype) {
        return Err(Box::new(error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content-type {:?}: expected application/json or application/x-ndjson (charset UTF-8)",
                ctype.unwrap_or_default()
            ),
        )));
    }
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(Box::new(error_body(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "body: not valid UTF-8".into(),
        ))),
    }
}

async fn events_create(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest(state, None, headers, body).await
}

async fn webhook_create(
    State(state): State<IngestState>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest(state, Some(account_id), headers, body).await
}

async fn ingest(
    state: IngestState,
    path_account: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = match authenticate(&state.auth, path_account.as_deref(), &headers, &body) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let text = match body_text(&headers, &body) {
        Ok(text) => text,
        Err(response) => return *response,
    };
    let log = state.log;
    let result = tokio::task::spawn_blocking(move || {
        let (events, rejected) = match parse_body_for(&text, account) {
            Ok(parsed) => parsed,
            Err(message) => return Ok(Err(message)),
        };
        let mut response = IngestResponse::default();
        // The valid events and the dead letters of one request are one atomic write.
        let dead: Vec<DeadLetter<'_>> = rejected
            .iter()
            .map(|(r, raw)| DeadLetter {
                source: "http",
                raw: raw.as_bytes(),
                reason: &r.error,
            })
            .collect();
        let outcome = log.write("http", &events, &dead)?;
        let mut rejected: Vec<Rejected> = rejected.into_iter().map(|(r, _)| r).collect();
        if !outcome.too_late.is_empty() {
            // The valid events are the request's items but the rejected ones, in order
            // (split again: this path is rare, and the items' numbering is split_body's).
            let refused: std::collections::HashSet<usize> =
                rejected.iter().map(|r| r.index).collect();
            let positions: Vec<usize> = split_body(&text)
                .unwrap_or_default()
                .into_iter()
                .map(|(i, _)| i)
                .filter(|i| !refused.contains(i))
                .collect();
            for &p in &outcome.too_late {
                let event = &events[p];
                metrics::counter!("crmpulse_ingest_rejected_events_total", "reason" => crate::log::TOO_LATE)
                    .increment(1);
                rejected.push(Rejected {
                    index: positions.get(p).copied().unwrap_or(p),
                    event_id: Some(event.event_id.clone()),
                    error: format!(
                        "occurred_at: more than the lateness horizon before the account's latest event time; stored as a dead letter ({})",
                        crate::log::TOO_LATE
                    ),
                    kind: crate::log::TOO_LATE,
                });
            }
            rejected.sort_by_key(|r| r.index);
        }
        response.rejected = rejected;
        response.accepted = outcome.accepted;
        response.duplicates = outcome.duplicates;
        Ok::<_, crate::log::LogError>(Ok(response))
    })
    .await;
    match result {
        Ok(Ok(Ok(response))) => {
            metrics::counter!("crmpulse_ingest_accepted_events_total").increment(response.accepted);
            let status = if response.rejected.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (status, Json(response)).into_response()
        }
        Ok(Ok(Err(message))) => error_body(StatusCode::BAD_REQUEST, "bad_request", message),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "ingest append failed");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest task failed");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event_id":"e1","account_id":1,"occurred_at":"2026-11-24T10:00:00Z","type":"ticket_resolved","ticket_id":"t1"}"#;
    const BAD: &str = r#"{"event_id":"e2","account_id":1,"occurred_at":"2026-11-24T10:00:00Z","type":"ticket_opened","ticket_id":"t2","priority":"meh"}"#;

    #[test]
    fn array_and_ndjson_keep_valid_items_and_name_bad_fields() {
        for body in [format!("[{GOOD},{BAD}]"), format!("{GOOD}\n\n{BAD}\n")] {
            let (events, rejected) = parse_body(&body).unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].event_id, "e1");
            assert_eq!(rejected.len(), 1);
            let (r, raw) = &rejected[0];
            assert_eq!(r.event_id.as_deref(), Some("e2"));
            assert!(
                r.error.starts_with("priority: unknown value \"meh\""),
                "{}",
                r.error
            );
            assert_eq!(*raw, BAD);
        }
        // NDJSON numbering counts blank lines, so the index is the line number.
        let body = format!("{GOOD}\n\n{BAD}\n");
        let (_, rejected) = parse_body(&body).unwrap();
        assert_eq!(rejected[0].0.index, 2);
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The ingest router over a fresh log in a temporary directory (kept alive by the
    /// returned guard), accepting the keys derived from [`SECRET`].
    fn test_app() -> (tempfile::TempDir, Arc<EventLog>, axum::Router) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(dir.path()).unwrap());
        let app = router(
            Arc::clone(&log),
            Arc::new(IngestAuth::new(Some(SECRET.to_vec()), vec![], 1000)),
        );
        (dir, log, app)
    }

    fn post(
        path: &str,
        auth: (&str, String),
        body: Vec<u8>,
    ) -> axum::http::Request<axum::body::Body> {
        axum::http::Request::post(path)
            .header("content-type", "application/x-ndjson")
            .header(auth.0, auth.1)
            .body(axum::body::Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn the_router_stores_valid_events_and_refuses_oversized_bodies() {
        use tower::ServiceExt as _;
        let (_dir, log, app) = test_app();
        let key = (
            "authorization",
            format!("Bearer {}", IngestAuth::derived_key(SECRET, 1)),
        );
        let res = app
            .clone()
            .oneshot(post(
                "/api/v1/events",
                key.clone(),
                format!("{GOOD}\n{BAD}").into_bytes(),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(log.len(), 1);
        assert_eq!(log.dead_letters().unwrap().len(), 1);
        let res = app
            .oneshot(post("/api/v1/events", key, vec![b' '; MAX_BODY_BYTES + 1]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn credentials_write_their_own_account_only() {
        use tower::ServiceExt as _;
        let (_dir, log, app) = test_app();
        let other = GOOD
            .replace("\"e1\"", "\"e3\"")
            .replace("\"account_id\":1", "\"account_id\":2");
        let body = format!("{GOOD}\n{other}").into_bytes();
        // No key, a wrong key: nothing stored.
        for auth in [
            ("x-nothing", String::new()),
            ("authorization", "Bearer cpi_1_0000".to_owned()),
        ] {
            let res = app
                .clone()
                .oneshot(post("/api/v1/events", auth, body.clone()))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(log.len(), 0);
        // Account 1's key: its event is kept, account 2's is rejected with a reason.
        let key = (
            "authorization",
            format!("Bearer {}", IngestAuth::derived_key(SECRET, 1)),
        );
        let res = app
            .clone()
            .oneshot(post("/api/v1/events", key, body.clone()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["accepted"], 1);
        assert_eq!(v["rejected"][0]["event_id"], "e3");
        assert!(
            v["rejected"][0]["error"]
                .as_str()
                .unwrap()
                .starts_with("account_id: 2")
        );
        assert_eq!(log.len(), 1);
        // The webhook route: a signed body for account 2 is accepted; the same
        // signature on account 1's route is not.
        let secret = IngestAuth::derived_webhook_secret(SECRET, 2);
        let sig = (
            "x-hub-signature-256",
            crate::auth::sign(&secret, other.as_bytes()),
        );
        let res = app
            .clone()
            .oneshot(post(
                "/api/v1/webhooks/1/events",
                sig.clone(),
                other.clone().into_bytes(),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = app
            .oneshot(post("/api/v1/webhooks/2/events", sig, other.into_bytes()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(log.len(), 2);
    }

    #[tokio::test]
    async fn media_types_are_case_insensitive_and_parsed_with_their_parameters() {
        use tower::ServiceExt as _;
        let (_dir, log, app) = test_app();
        let key = format!("Bearer {}", IngestAuth::derived_key(SECRET, 1));
        let cases = [
            ("APPLICATION/JSON", StatusCode::OK),
            ("application/json; charset=UTF-8", StatusCode::OK),
            ("Application/Json;Charset=\"utf-8\"", StatusCode::OK),
            ("application/json ; charset=utf-8", StatusCode::OK),
            ("Application/X-NDJSON", StatusCode::OK),
            ("application/ndjson", StatusCode::OK),
            ("text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ("application/jsonx", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ("application/json-seq", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (
                "application/json; charset=latin1",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            ("application", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ];
        for (i, (ctype, want)) in cases.into_iter().enumerate() {
            let body = GOOD.replace("\"e1\"", &format!("\"ct{i}\""));
            let res = app
                .clone()
                .oneshot(
                    axum::http::Request::post("/api/v1/events")
                        .header("content-type", ctype)
                        .header("authorization", &key)
                        .body(axum::body::Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_eq!(status, want, "{ctype}: {}", String::from_utf8_lossy(&bytes));
            if want != StatusCode::OK {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(v["error"]["code"], "unsupported_media_type", "{ctype}");
            }
        }
        assert_eq!(log.len(), 6);
    }

    #[tokio::test]
    async fn every_error_of_the_ingest_routes_is_the_json_error_body() {
        use tower::ServiceExt as _;
        let (_dir, log, app) = test_app();
        let key = format!("Bearer {}", IngestAuth::derived_key(SECRET, 1));
        let too_big = |path: &str| {
            axum::http::Request::post(path)
                .header("content-type", "application/json")
                .header("authorization", &key)
                .body(axum::body::Body::from(vec![b' '; MAX_BODY_BYTES + 1]))
                .unwrap()
        };
        let cases = [
            (
                too_big("/api/v1/events"),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                too_big("/api/v1/webhooks/1/events"),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                axum::http::Request::get("/api/v1/events")
                    .body(axum::body::Body::empty())
                    .unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
            (
                axum::http::Request::put("/api/v1/webhooks/1/events")
                    .body(axum::body::Body::empty())
                    .unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
        ];
        for (req, status, code) in cases {
            let what = format!("{} {}", req.method(), req.uri());
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), status, "{what}");
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"),
                "{what}"
            );
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{what}: {}", String::from_utf8_lossy(&bytes)));
            assert_eq!(v["error"]["code"], code, "{what}: {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().len() > 3,
                "{what}: {v}"
            );
        }
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn a_broken_array_is_a_body_error() {
        assert!(
            parse_body("[{\"a\":1},")
                .unwrap_err()
                .starts_with("body: not a valid JSON array")
        );
    }
}
