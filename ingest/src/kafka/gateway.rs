//! `crmpulse ingest`: `POST /api/v1/events` as a stateless gateway to
//! `crm.events.v1`.
//!
//! The body is parsed and validated exactly as by the embedded ingest
//! ([`crate::http::parse_body`]). Valid events are produced as protobuf `Event`s, key
//! `account_id:conversation_id` ([`schemas::Event::partition_key`]), by an idempotent
//! producer with `acks=all`; rejected items go to the dead-letter topic. The response
//! is sent only after the broker has acknowledged every message, so a 2xx means the
//! events are durable; a 503 means some may not be, and the client retries the whole
//! request (duplicates are harmless: the pipeline ignores a second copy of an
//! `event_id`, which is also why the gateway reports `duplicates: 0`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::Event;

use super::dead_letter::{DeadLetter, Origin};
use super::{DeadLetters, KafkaConfig, KafkaError};
use crate::auth::IngestAuth;
use crate::http::{
    IngestResponse, MAX_BODY_BYTES, authenticate, body_text, error_body, parse_body_for,
};

/// How long a request waits for the broker before answering 503.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway's producers.
#[derive(Clone)]
pub struct Gateway {
    producer: FutureProducer,
    dead_letters: DeadLetters,
    topic: String,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Gateway {
    /// An idempotent, `acks=all` producer to the events and dead-letter topics.
    ///
    /// # Errors
    /// [`KafkaError::Client`] when librdkafka refuses the configuration.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer: FutureProducer = config
            .producer_config(DELIVERY_TIMEOUT.as_millis() as u64)
            .create()?;
        Ok(Self {
            dead_letters: DeadLetters::new(producer.clone(), config),
            producer,
            topic: config.topics.events.clone(),
        })
    }

    /// Produces `events` and waits until the broker has every one.
    ///
    /// # Errors
    /// [`KafkaError::Delivery`] when one was not acknowledged in time.
    pub async fn produce(&self, events: &[Event]) -> Result<(), KafkaError> {
        let encoded: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| (e.partition_key(), e.to_proto_bytes()))
            .collect();
        let sends = encoded.iter().map(|(key, value)| {
            self.producer.send(
                FutureRecord::to(&self.topic).key(key).payload(value),
                DELIVERY_TIMEOUT,
            )
        });
        for result in futures_util::future::join_all(sends).await {
            if let Err((e, _)) = result {
                return Err(KafkaError::Delivery {
                    topic: self.topic.clone(),
                    reason: e.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The gateway's routes: `POST /api/v1/events` and
/// `POST /api/v1/webhooks/{account_id}/events`, authenticated as by the embedded ingest.
pub fn router(gateway: Gateway, auth: Arc<IngestAuth>) -> Router {
    Router::new()
        .route("/api/v1/events", post(events_create))
        .route("/api/v1/webhooks/{account_id}/events", post(webhook_create))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::http::json_errors))
        .with_state((gateway, auth))
}

async fn events_create(
    State((gateway, auth)): State<(Gateway, Arc<IngestAuth>)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    produce(gateway, &auth, None, headers, body).await
}

async fn webhook_create(
    State((gateway, auth)): State<(Gateway, Arc<IngestAuth>)>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    produce(gateway, &auth, Some(&account_id), headers, body).await
}

async fn produce(
    gateway: Gateway,
    auth: &IngestAuth,
    path_account: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = match authenticate(auth, path_account, &headers, &body) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let text = match body_text(&headers, &body) {
        Ok(text) => text,
        Err(response) => return *response,
    };
    let (events, rejected) = match parse_body_for(&text, account) {
        Ok(parsed) => parsed,
        Err(message) => return error_body(StatusCode::BAD_REQUEST, "bad_request", message),
    };
    let letters: Vec<DeadLetter<'_>> = rejected
        .iter()
        .map(|(r, raw)| DeadLetter {
            payload: raw.as_bytes(),
            key: None,
            reason: &r.error,
            reason_kind: r.kind,
            origin: Origin::Http { index: r.index },
        })
        .collect();
    let (produced, dead_lettered) = futures_util::future::join(
        gateway.produce(&events),
        gateway.dead_letters.send(&letters),
    )
    .await;
    if let Err(e) = produced.and(dead_lettered) {
        tracing::error!(error = %e, "ingest gateway: broker did not acknowledge");
        metrics::counter!("crmpulse_ingest_unavailable_total").increment(1);
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the event log is unavailable, retry the request".into(),
        );
    }
    metrics::counter!("crmpulse_ingest_accepted_events_total").increment(events.len() as u64);
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let response = IngestResponse {
        accepted: events.len() as u64,
        duplicates: 0,
        rejected: rejected.into_iter().map(|(r, _)| r).collect(),
    };
    (status, Json(response)).into_response()
}

/// The events topic as a webhook source's store: the mapped events are produced and
/// the unmapped items dead-lettered, both acknowledged before the provider is answered.
/// Duplicates are the pipeline's to skip (the derived ids repeat), so none are counted
/// here.
impl crate::sources::Store for Gateway {
    async fn store(
        &self,
        source: &'static str,
        events: Vec<Event>,
        unmapped: Vec<crate::sources::Unmapped>,
    ) -> Result<crate::sources::Stored, String> {
        let letters: Vec<DeadLetter<'_>> = unmapped
            .iter()
            .map(|u| DeadLetter {
                payload: u.raw.as_bytes(),
                key: None,
                reason: &u.reason,
                reason_kind: u.kind,
                origin: Origin::Source { source },
            })
            .collect();
        let (produced, dead_lettered) =
            futures_util::future::join(self.produce(&events), self.dead_letters.send(&letters))
                .await;
        produced.and(dead_lettered).map_err(|e| e.to_string())?;
        Ok(crate::sources::Stored {
            accepted: events.len() as u64,
            duplicates: 0,
            dead_lettered: unmapped.len() as u64,
        })
    }
}
