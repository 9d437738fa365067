//! The crmpulse query API: the view store and everything served over HTTP.
//!
//! It depends on `schemas` only (never on `pipeline`): it is fed [`MetricBatch`]es,
//! in process by the pipeline or, in `serve` mode, from `crm.metrics.v1`.
//!
//! - [`store`]: facts at the latest complete timestamp.
//! - [`sections`]: dashboard section bodies, shared by REST and WebSocket.
//! - [`live`]: `/api/live` subscriptions.
//! - [`range`], [`settings`]: time ranges in the account's zone, per-account settings.
//!
//! [`MetricBatch`]: schemas::metrics::MetricBatch

pub mod error;
pub mod live;
pub mod openapi;
pub mod range;
pub mod sections;
pub mod settings;
pub mod store;
pub mod ui;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::ApiError;
pub use live::LiveConfig;
pub use settings::{AccountSettings, AccountsConfig, Settings};
pub use store::ViewStore;

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Facts at the latest complete timestamp.
    pub store: Arc<ViewStore>,
    /// Per-account settings.
    pub settings: Settings,
    /// Live connection tuning.
    pub live: LiveConfig,
    /// Number of events in the source log, when there is one (for `/healthz`).
    pub log_len: Option<watch::Receiver<u64>>,
    /// Prometheus exposition, when a recorder is installed.
    pub prometheus: Option<PrometheusHandle>,
}

impl AppState {
    /// A state over `store` with default settings and no log.
    pub fn new(store: Arc<ViewStore>) -> Self {
        Self {
            store,
            settings: Settings::default(),
            live: LiveConfig::default(),
            log_len: None,
            prometheus: None,
        }
    }
}

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// The API router (without ingest routes, which the binary merges in).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/dashboard/{section}", get(dashboard_get))
        .route("/api/live", get(live::live_connect))
        .route("/api/openapi.json", get(openapi_get))
        .route("/healthz", get(health_get))
        .route("/metrics", get(metrics_get))
        .fallback(ui::asset_get)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

async fn dashboard_get(
    State(app): State<AppState>,
    Path(section): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = sections::Params::parse(&query)?;
    let now = chrono::Utc::now().timestamp_millis();
    sections::compute(&app, &section, &params, now).map(Json)
}

async fn openapi_get() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi as _;
    Json(openapi::ApiDoc::openapi())
}

async fn health_get(State(app): State<AppState>) -> Json<serde_json::Value> {
    let (progress, consumed) = app.store.read(|s| (s.progress, s.events_consumed));
    let log_events = app.log_len.as_ref().map(|rx| *rx.borrow());
    Json(serde_json::json!({
        "status": "ok",
        "progress": progress,
        "events_consumed": consumed,
        "log_events": log_events,
        "caught_up": log_events.is_none_or(|n| consumed >= n),
    }))
}

async fn metrics_get(State(app): State<AppState>) -> impl IntoResponse {
    let body = app
        .prometheus
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
