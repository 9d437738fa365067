//! The webhook routes of the sources, the same for the embedded log and Kafka:
//!
//! - `GET  /api/v1/sources/whatsapp/{account_id}`: Meta's verification request;
//! - `POST /api/v1/sources/whatsapp/{account_id}`: notifications, `X-Hub-Signature-256`;
//! - `POST /api/v1/sources/chatwoot/{account_id}?token=...`: Chatwoot's webhooks.
//!
//! A request that does not authenticate is refused (`401` without credentials, `403`
//! with wrong ones), counted in `crmpulse_ingest_auth_failures_total{reason}` and never
//! stored. An authenticated one is always stored: its mapped events and its dead letters
//! are written, durably, before the `200`; nothing in an authenticated body makes the
//! provider retry except the store being down (`503`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use subtle::ConstantTimeEq;

use super::{Mapped, SourcesConfig, Store, Stored, Unmapped, chatwoot, whatsapp};
use crate::auth::{IngestAuth, IngestAuthError};
use crate::http::{MAX_BODY_BYTES, error_body, json_errors, refuse};
use crate::log::{DeadLetter, EventLog};

#[derive(Clone)]
struct SourceState<S> {
    store: S,
    sources: Arc<SourcesConfig>,
    auth: Arc<IngestAuth>,
}

/// The sources' routes over `store`; `auth` supplies the per-account rate limit.
pub fn router<S: Store>(store: S, sources: Arc<SourcesConfig>, auth: Arc<IngestAuth>) -> Router {
    Router::new()
        .route(
            "/api/v1/sources/whatsapp/{account_id}",
            get(whatsapp_verify::<S>).post(whatsapp_notify::<S>),
        )
        .route(
            "/api/v1/sources/chatwoot/{account_id}",
            post(chatwoot_notify::<S>),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(SourceState {
            store,
            sources,
            auth,
        })
}

/// A refusal, boxed: a `Response` is too large to travel in every `Err`.
type Refused = Box<Response>;

fn account_of(raw: &str) -> Result<u64, Refused> {
    raw.parse().map_err(|_| {
        Box::new(error_body(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("account_id: expected a non-negative integer, got {raw:?}"),
        ))
    })
}

fn not_configured(source: &str, account: u64) -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no {source} source is configured for account {account} ([[sources.{source}]])"),
    )
}

fn auth_failure(status: StatusCode, reason: &'static str, message: String) -> Response {
    metrics::counter!("crmpulse_ingest_auth_failures_total", "reason" => reason).increment(1);
    let code = if status == StatusCode::UNAUTHORIZED {
        "unauthorized"
    } else {
        "forbidden"
    };
    error_body(status, code, message)
}

/// Checks `sha256=<hex>` in `header` against the HMAC-SHA256 of `body` under
/// `secret`, in constant time.
fn check_signature(
    headers: &HeaderMap,
    header: &str,
    secret: &str,
    body: &[u8],
) -> Result<(), Refused> {
    let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) else {
        return Err(Box::new(auth_failure(
            StatusCode::UNAUTHORIZED,
            "missing_signature",
            format!("missing signature: send `{header}: sha256=<hex HMAC-SHA256 of the body>`"),
        )));
    };
    match super::digest_of(value) {
        Some(d) if crate::auth::hmac_matches(secret.as_bytes(), &[body], &d) => Ok(()),
        _ => Err(Box::new(auth_failure(
            StatusCode::FORBIDDEN,
            "bad_signature",
            format!("{header}: signature does not match the body"),
        ))),
    }
}

fn admit(auth: &IngestAuth, account: u64) -> Result<(), Refused> {
    auth.admit(account)
        .map_err(|e: IngestAuthError| Box::new(refuse(&e)))
}

/// The account of the path and its configured source, or the refusal.
fn source_of<'a, T>(
    kind: &str,
    raw: &str,
    find: impl FnOnce(u64) -> Option<&'a T>,
) -> Result<(u64, &'a T), Refused> {
    let account = account_of(raw)?;
    let source = find(account).ok_or_else(|| Box::new(not_configured(kind, account)))?;
    Ok((account, source))
}

async fn whatsapp_verify<S: Store>(
    State(state): State<SourceState<S>>,
    Path(account): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let source = match source_of(whatsapp::SOURCE, &account, |a| state.sources.whatsapp(a)) {
        Ok((_, source)) => source,
        Err(r) => return *r,
    };
    let param = |k: &str| params.get(k).map(String::as_str);
    match whatsapp::verify(
        source,
        param("hub.mode"),
        param("hub.verify_token"),
        param("hub.challenge"),
    ) {
        Ok(challenge) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            challenge.to_owned(),
        )
            .into_response(),
        Err(e @ whatsapp::VerifyError::Token) => {
            auth_failure(StatusCode::FORBIDDEN, "bad_verify_token", e.to_string())
        }
        Err(e) => error_body(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
    }
}

async fn whatsapp_notify<S: Store>(
    State(state): State<SourceState<S>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match admit_whatsapp(&state, &account, &headers, &body) {
        Ok((account, source)) => {
            let mapped = whatsapp::map(account, &source.phone_number_ids, &body);
            finish(&state.store, whatsapp::SOURCE, mapped).await
        }
        Err(r) => *r,
    }
}

/// A WhatsApp post's account and source once its signature and rate are checked.
fn admit_whatsapp<'a, S>(
    state: &'a SourceState<S>,
    raw_account: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u64, &'a super::WhatsappSource), Refused> {
    let (account, source) =
        source_of(whatsapp::SOURCE, raw_account, |a| state.sources.whatsapp(a))?;
    check_signature(
        headers,
        "x-hub-signature-256",
        source.app_secret.expose(),
        body,
    )?;
    admit(&state.auth, account)?;
    Ok((account, source))
}

async fn chatwoot_notify<S: Store>(
    State(state): State<SourceState<S>>,
    Path(account): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match admit_chatwoot(&state, &account, params.get("token"), &headers, &body) {
        Ok(account) => {
            finish(
                &state.store,
                chatwoot::SOURCE,
                chatwoot::map(account, &body),
            )
            .await
        }
        Err(r) => *r,
    }
}

/// A Chatwoot post's account once its token, signature (when the webhook has a
/// secret) and rate are checked.
fn admit_chatwoot<S>(
    state: &SourceState<S>,
    raw_account: &str,
    token: Option<&String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<u64, Refused> {
    let (account, source) =
        source_of(chatwoot::SOURCE, raw_account, |a| state.sources.chatwoot(a))?;
    let Some(token) = token else {
        return Err(Box::new(auth_failure(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "missing token: the webhook URL is /api/v1/sources/chatwoot/{account_id}?token=<token>"
                .into(),
        )));
    };
    if !bool::from(token.as_bytes().ct_eq(source.token.expose().as_bytes())) {
        return Err(Box::new(auth_failure(
            StatusCode::FORBIDDEN,
            "bad_token",
            "token: not the account's Chatwoot webhook token".into(),
        )));
    }
    if let Some(secret) = &source.webhook_secret {
        chatwoot::check_signature(headers, secret.expose(), body)
            .map_err(|(status, reason, message)| Box::new(auth_failure(status, reason, message)))?;
    }
    admit(&state.auth, account)?;
    Ok(account)
}

/// Counts what was mapped, stores it, and answers.
async fn finish<S: Store>(store: &S, source: &'static str, mapped: Mapped) -> Response {
    metrics::counter!("crmpulse_source_payloads_total", "source" => source).increment(1);
    for kind in &mapped.items {
        metrics::counter!("crmpulse_source_items_total", "source" => source, "kind" => *kind)
            .increment(1);
    }
    for kind in &mapped.ignored {
        metrics::counter!("crmpulse_source_ignored_total", "source" => source, "kind" => *kind)
            .increment(1);
    }
    for u in &mapped.unmapped {
        tracing::warn!(source, reason = %u.reason, "webhook item dead-lettered");
        metrics::counter!("crmpulse_ingest_rejected_events_total", "reason" => u.kind).increment(1);
    }
    let ignored = mapped.ignored.len() as u64;
    let reasons: Vec<String> = mapped.unmapped.iter().map(|u| u.reason.clone()).collect();
    match store.store(source, mapped.events, mapped.unmapped).await {
        Ok(stored) => {
            metrics::counter!("crmpulse_ingest_accepted_events_total").increment(stored.accepted);
            (
                StatusCode::OK,
                Json(serde_json::json!({
                    "accepted": stored.accepted,
                    "duplicates": stored.duplicates,
                    "dead_lettered": stored.dead_lettered,
                    "ignored": ignored,
                    "reasons": reasons,
                })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(source, error = %e, "webhook: the event store is unavailable");
            metrics::counter!("crmpulse_ingest_unavailable_total").increment(1);
            error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event log is unavailable, retry the request".into(),
            )
        }
    }
}

/// The embedded log as a source's store: one atomic write per payload.
impl Store for Arc<EventLog> {
    async fn store(
        &self,
        source: &'static str,
        events: Vec<schemas::Event>,
        unmapped: Vec<Unmapped>,
    ) -> Result<Stored, String> {
        let log = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let dead: Vec<DeadLetter<'_>> = unmapped
                .iter()
                .map(|u| DeadLetter {
                    source,
                    raw: u.raw.as_bytes(),
                    reason: &u.reason,
                })
                .collect();
            let outcome = log
                .write(source, &events, &dead)
                .map_err(|e| e.to_string())?;
            for _ in &outcome.too_late {
                metrics::counter!("crmpulse_ingest_rejected_events_total", "reason" => crate::log::TOO_LATE)
                    .increment(1);
            }
            Ok(Stored {
                accepted: outcome.accepted,
                duplicates: outcome.duplicates,
                dead_lettered: (unmapped.len() + outcome.too_late.len()) as u64,
            })
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
