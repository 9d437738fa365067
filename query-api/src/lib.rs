//! The crmpulse query API: the view store and everything served over HTTP.
//!
//! It depends on `schemas` only (never on `pipeline`): it is fed [`MetricBatch`]es,
//! in process by the pipeline or, in `serve` mode, from `crm.metrics.v1`.
//!
//! - [`store`]: facts at the latest complete timestamp.
//! - [`sections`]: dashboard section bodies, shared by REST and WebSocket.
//! - [`live`]: `/api/live` subscriptions.
//! - [`range`], [`settings`]: time ranges in the account's zone, per-account settings.
//! - [`auth`]: bearer tokens, roles, and what each role may see.
//!
//! [`MetricBatch`]: schemas::metrics::MetricBatch

pub mod auth;
pub mod bodies;
pub mod error;
pub mod live;
pub mod openapi;
pub mod range;
pub mod reports;
pub mod sections;
pub mod settings;
pub mod store;
pub mod ui;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::ApiError;
pub use live::LiveConfig;
pub use reports::{Reports, ReportsConfig};
pub use settings::{AccountSettings, AccountsConfig, Settings};
pub use store::ViewStore;

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Facts at the latest complete timestamp.
    pub store: Arc<ViewStore>,
    /// Per-account settings.
    pub settings: Settings,
    /// "Now" for every answer: the default range (today), SLA deadlines, what is
    /// waiting, the forecast. The process's one clock (fixed by tests).
    pub clock: schemas::Clock,
    /// Live connection tuning.
    pub live: LiveConfig,
    /// Number of events in the source log, when there is one (for `/healthz`).
    pub log_len: Option<watch::Receiver<u64>>,
    /// What must have happened before `/readyz` says ready, each flag set once: the
    /// source read up to what it held when the process started, and in the demo the
    /// simulator's backfill written. Empty: nothing to wait for.
    pub started: Vec<Arc<std::sync::atomic::AtomicBool>>,
    /// The ClickHouse sink's state now, when one is attached (for `/healthz`).
    pub clickhouse: Option<Arc<dyn Fn() -> ClickHouseHealth + Send + Sync>>,
    /// Prometheus exposition, when a recorder is installed.
    pub prometheus: Option<PrometheusHandle>,
    /// Token verification and limits. `None` serves everything to anyone, as account
    /// `account_id` (default 1) says: only for embedding and tests, never what the
    /// binary runs unless `[auth] mode = "off"`.
    pub auth: Option<Arc<auth::Auth>>,
    /// Origins allowed to call the API from a browser (CORS); empty: CORS is off and
    /// browsers allow same-origin calls only.
    pub cors_origins: Vec<HeaderValue>,
    /// Section bodies shared by every request and live subscriber asking for the same
    /// view of the same state; `None` computes every body afresh.
    pub bodies: Option<Arc<bodies::BodyCache>>,
    /// Report schedules, their history and the scheduler's mailer; `None` answers the
    /// schedule routes with `503`.
    pub reports: Option<Arc<reports::Reports>>,
}

impl AppState {
    /// A state over `store` with default settings, the system clock and no log.
    pub fn new(store: Arc<ViewStore>) -> Self {
        Self {
            store,
            settings: Settings::default(),
            clock: schemas::Clock::system(),
            live: LiveConfig::default(),
            log_len: None,
            started: Vec::new(),
            clickhouse: None,
            prometheus: None,
            auth: None,
            cors_origins: Vec::new(),
            bodies: Some(Arc::default()),
            reports: None,
        }
    }

    /// The principal of a request, when authentication is on.
    ///
    /// # Errors
    /// `401` for a missing or invalid token, `429` past the token's rate limit.
    pub fn principal(&self, headers: &HeaderMap) -> Result<Option<auth::Principal>, ApiError> {
        self.auth
            .as_ref()
            .map(|a| a.authenticate(headers))
            .transpose()
    }
}

/// What `/healthz` reports about the ClickHouse sink (`clickhouse`), so that an operator
/// or a test waits for "everything up to N is in ClickHouse" instead of for a while.
/// Positions count source events, as `events_consumed` and `log_events` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ClickHouseHealth {
    /// The sink has reached the server (and applied migrations) since it started.
    pub connected: bool,
    /// Source events whose rows, rollups and raw events alike, are all in ClickHouse:
    /// the smaller of the two positions below. It moves only when inserts succeed.
    pub written_through: u64,
    /// Source events whose rollup rows are all written (0 until the state the log held
    /// at start is rewritten and stale rows of an earlier run are cleared).
    pub rollups_written_through: u64,
    /// Log positions whose raw events are all in `events`; `None` with `raw_events` off.
    pub raw_events_written_through: Option<u64>,
    /// Changed rollup rows waiting to be written.
    pub buffered_rows: u64,
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
///
/// Every response carries security headers (a same-origin content security policy,
/// no framing, no referrer, `nosniff`); API responses are not cached. Every error of
/// an API path (`/api/…`, `/metrics`, `/healthz`) is `{"error": {"code", "message"}}`
/// ([`error::json_errors`]). CORS is added
/// only for the origins in [`AppState::cors_origins`].
pub fn router(state: AppState) -> Router {
    let cors = (!state.cors_origins.is_empty()).then(|| {
        tower_http::cors::CorsLayer::new()
            .allow_origin(state.cors_origins.clone())
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
    });
    let api = Router::new()
        .route("/api/dashboard/{section}", get(dashboard_get))
        .route("/api/reports/summary", get(summary_get))
        .route("/api/reports/summary.pdf", get(summary_pdf_get))
        .route(
            "/api/reports/dashboard.pdf",
            get(reports::http::dashboard_pdf_get),
        )
        .route(
            "/api/reports/schedules",
            get(reports::http::schedules_get).post(reports::http::schedules_post),
        )
        .route(
            "/api/reports/schedules/{id}",
            get(reports::http::schedule_get)
                .put(reports::http::schedule_put)
                .delete(reports::http::schedule_delete),
        )
        .route(
            "/api/reports/schedules/{id}/send",
            post(reports::http::schedule_send),
        )
        .route("/api/reports/runs", get(reports::http::runs_get))
        .route(
            "/api/reports/runs/{id}/pdf",
            get(reports::http::run_pdf_get),
        )
        .route("/api/me", get(me_get))
        .route("/api/live", get(live::live_connect))
        .route("/api/openapi.json", get(openapi_get))
        .route("/healthz", get(health_get))
        .route("/readyz", get(ready_get))
        .route("/metrics", get(metrics_get))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let router = api
        .route_layer(axum::middleware::from_fn(time_requests))
        .fallback(ui::asset_get)
        // Every error of an API path is the JSON body, whoever answered it: a handler,
        // the fallback (an unknown path) or one of axum's rejections.
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Times every API request into `crmpulse_api_request_duration_seconds{route, status}`
/// (`route` is the matched route, e.g. `/api/dashboard/{section}`, so the label set
/// stays small). A WebSocket upgrade is timed up to the upgrade.
async fn time_requests(
    path: axum::extract::MatchedPath,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = path.as_str().to_owned();
    let res = next.run(req).await;
    let status = match res.status().as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!("crmpulse_api_request_duration_seconds", "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    res
}

/// The dashboard loads only its own scripts; ECharts sets inline styles and draws
/// PNG downloads from `data:`/`blob:` URLs.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

async fn dashboard_get(
    State(app): State<AppState>,
    Path(section): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = app.principal(&headers)?;
    let params = sections::Params::parse_for(&query, principal.as_ref())?;
    let now = app.clock.now_ms();
    sections::compute_for(&app, &section, &params, now, principal.as_ref()).map(Json)
}

/// `GET /api/reports/summary`: the executive summary of the same query (`reports`).
async fn summary_get(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = app.principal(&headers)?;
    let params = sections::Params::parse_for(&query, principal.as_ref())?;
    let now = app.clock.now_ms();
    reports::summary(&app, &params, now, principal.as_ref()).map(Json)
}

/// `GET /api/reports/summary.pdf`: the same summary as a PDF attachment, made by the
/// one report renderer (`reports::service::render`).
async fn summary_pdf_get(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let principal = app.principal(&headers)?;
    let params = sections::Params::parse_for(&query, principal.as_ref())?;
    let now = app.clock.now_ms();
    let rendered = reports::service::render(
        &app,
        "Executive summary",
        &[reports::schedule::SUMMARY.to_owned()],
        &params,
        now,
        principal.as_ref(),
    )?;
    let day = rendered.summary["range"]["from"]
        .as_str()
        .and_then(|f| f.get(..10))
        .unwrap_or("summary")
        .to_owned();
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"crmpulse-summary-{day}.pdf\""),
            ),
        ],
        rendered.pdf,
    ))
}

/// `GET /api/me`: the claims of the caller's token (what the UI shows and which
/// filters it offers). With authentication off: an anonymous admin of account 1.
async fn me_get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = match app.principal(&headers)? {
        Some(p) => {
            let c = p.claims();
            serde_json::json!({
                "sub": c.sub, "account_id": c.account_id, "role": c.role,
                "team_ids": c.team_ids, "agent_id": c.agent_id, "exp": c.exp,
            })
        }
        // No token expires: `exp` is 2100-01-01 so clients need no special case.
        None => serde_json::json!({
            "sub": "anonymous", "account_id": 1, "role": "admin",
            "team_ids": [], "agent_id": null, "exp": 4_102_444_800u64,
        }),
    };
    Ok(Json(body))
}

async fn openapi_get() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi as _;
    Json(openapi::ApiDoc::openapi())
}

/// Events the view store has taken, events in the source (when there is a log to
/// compare with), and whether the first has reached the second: what `/healthz` and
/// `/readyz` both report.
fn source_position(app: &AppState) -> (u64, Option<u64>, bool) {
    let consumed = app.store.read(|s| s.events_consumed);
    let log_events = app.log_len.as_ref().map(|rx| *rx.borrow());
    (
        consumed,
        log_events,
        log_events.is_none_or(|n| consumed >= n),
    )
}

async fn health_get(State(app): State<AppState>) -> Json<serde_json::Value> {
    let progress = app.store.read(|s| s.progress);
    let (consumed, log_events, caught_up) = source_position(&app);
    Json(serde_json::json!({
        "status": "ok",
        "progress": progress,
        "events_consumed": consumed,
        "log_events": log_events,
        "caught_up": caught_up,
        "clickhouse": app.clickhouse.as_ref().map(|health| health()),
    }))
}

/// Readiness, for load balancers and orchestrators (`/healthz` is liveness): `200`
/// once the source has been read up to what it held at start (and the demo's backfill
/// written) and the view store has taken every event handed to the pipeline, `503`
/// before (both with the same body, so a probe's log says which condition is
/// missing). Needs no token.
async fn ready_get(State(app): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let (consumed, log_events, caught_up) = source_position(&app);
    let started = app
        .started
        .iter()
        .all(|s| s.load(std::sync::atomic::Ordering::Acquire));
    let ready = started && caught_up;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "source_read": started,
            "caught_up": caught_up,
            "events_consumed": consumed,
            "log_events": log_events,
        })),
    )
}

async fn metrics_get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(auth) = &app.auth {
        auth.authorize_server_metrics(&headers)?;
    }
    let body = app
        .prometheus
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn readyz(state: AppState) -> (StatusCode, serde_json::Value) {
        let res = router(state)
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn readyz_waits_for_the_start_contents_and_for_the_views() {
        let started = Arc::new(AtomicBool::new(false));
        let (len_tx, len_rx) = watch::channel(0u64);
        let mut state = AppState::new(Arc::new(ViewStore::default()));
        state.started = vec![Arc::clone(&started)];
        state.log_len = Some(len_rx);

        // The source is still being read: not ready, whatever the views hold.
        let (status, body) = readyz(state.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["ready"], false);
        assert_eq!(body["source_read"], false);

        // Read, but the log holds events the views have not taken yet.
        started.store(true, std::sync::atomic::Ordering::Release);
        len_tx.send_replace(3);
        let (status, body) = readyz(state.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["source_read"], true);
        assert_eq!(body["caught_up"], false);
        assert_eq!(body["log_events"], 3);

        len_tx.send_replace(0);
        let (status, body) = readyz(state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["ready"], true);
    }
}
