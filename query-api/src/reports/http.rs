//! The reports' routes: the dashboard PDF, schedules (admins) and the history.
//!
//! - `GET /api/reports/dashboard.pdf?sections=…` — the whole dashboard or the named
//!   sections (and `summary`) for the query, as the caller may see them.
//! - `GET|POST /api/reports/schedules`, `GET|PUT|DELETE /api/reports/schedules/{id}`,
//!   `POST /api/reports/schedules/{id}/send` — admins of the account.
//! - `GET /api/reports/runs[?schedule_id=]`, `GET /api/reports/runs/{id}/pdf` — admins.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::book::Record;
use super::schedule::{SUMMARY, Schedule, ScheduleInput};
use super::service::{self, Reports};
use crate::AppState;
use crate::auth::Role;
use crate::error::ApiError;
use crate::sections::{self, Params};

/// `GET /api/reports/dashboard.pdf`: `sections` (comma-separated; `summary` and any
/// dashboard section, in print order; all seven by default) for the query.
pub async fn dashboard_pdf_get(
    State(app): State<AppState>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let principal = app.principal(&headers)?;
    let parts: Vec<String> = match query.remove("sections") {
        None => sections::SECTIONS.iter().map(|s| (*s).to_owned()).collect(),
        Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
    };
    for p in &parts {
        if p != SUMMARY && !sections::SECTIONS.contains(&p.as_str()) {
            return Err(ApiError::bad_request(format!(
                "sections: unknown section {p:?}; known: summary, {}",
                sections::SECTIONS.join(", ")
            )));
        }
    }
    if parts.is_empty() {
        return Err(ApiError::bad_request("sections: name at least one".into()));
    }
    let params = Params::parse_for(&query, principal.as_ref())?;
    let now = app.clock.now_ms();
    let title = if parts.len() == 1 && parts[0] != SUMMARY {
        format!("{} report", human(&parts[0]))
    } else {
        "Dashboard report".to_owned()
    };
    let rendered = service::render(&app, &title, &parts, &params, now, principal.as_ref())?;
    let day = rendered.summary["range"]["from"]
        .as_str()
        .and_then(|f| f.get(..10))
        .unwrap_or("report")
        .to_owned();
    let name = if parts.len() == 1 {
        parts[0].as_str()
    } else {
        "dashboard"
    };
    Ok(pdf_response(
        rendered.pdf,
        &format!("crmpulse-{name}-{day}.pdf"),
    ))
}

fn human(section: &str) -> String {
    let s = section.replace('-', " ");
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn pdf_response(bytes: Vec<u8>, file: &str) -> impl IntoResponse + use<> {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
}

/// The reports of the stack and the account of an admin caller.
fn admin(app: &AppState, headers: &HeaderMap) -> Result<(Arc<Reports>, u64, String), ApiError> {
    let (account, sub) = match app.principal(headers)? {
        Some(p) if p.claims().role == Role::Admin => {
            (p.claims().account_id, p.claims().sub.clone())
        }
        Some(p) => {
            return Err(ApiError::Forbidden(format!(
                "report schedules are managed by admins; this token's role is {}",
                p.claims().role.as_str()
            )));
        }
        None => (1, "anonymous".to_owned()),
    };
    let reports = app.reports.clone().ok_or_else(|| {
        ApiError::Unavailable("scheduled reports are not available in this process".into())
    })?;
    Ok((reports, account, sub))
}

/// Runs blocking book work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)
}

fn parse_input(body: &Value) -> Result<ScheduleInput, ApiError> {
    let input: ScheduleInput = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request(format!("schedule: {e}")))?;
    input.validate().map_err(ApiError::bad_request)?;
    Ok(input)
}

/// `GET /api/reports/schedules`.
pub async fn schedules_get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    let book = Arc::clone(&reports.book);
    blocking(move || book.sync()).await?;
    let schedules: Vec<Schedule> = reports.book.read(|s| {
        s.schedules()
            .filter(|s| s.account_id == account)
            .cloned()
            .collect()
    });
    Ok(Json(json!({
        "delivery": if reports.delivers() { "smtp" } else { "off" },
        "timezone": app.settings.account(account).timezone.name(),
        "schedules": schedules,
    })))
}

/// `POST /api/reports/schedules`: creates a schedule; `201` with it.
pub async fn schedules_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let (reports, account, sub) = admin(&app, &headers)?;
    let input = parse_input(&body)?;
    let now = app.clock.now_ms();
    let schedule = Schedule {
        id: service::new_id(),
        account_id: account,
        input,
        created_by: sub,
        created_at: now,
        updated_at: now,
    };
    let book = Arc::clone(&reports.book);
    let record = Record::ScheduleSaved {
        schedule: schedule.clone(),
    };
    blocking(move || book.append(&record)).await?;
    Ok((StatusCode::CREATED, Json(schedule)))
}

fn find(reports: &Reports, account: u64, id: &str) -> Result<Schedule, ApiError> {
    reports
        .book
        .read(|s| s.schedule(account, id).cloned())
        .ok_or_else(|| ApiError::NotFound(format!("schedule {id:?}: no such schedule")))
}

/// `GET /api/reports/schedules/{id}`.
pub async fn schedule_get(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Schedule>, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    let book = Arc::clone(&reports.book);
    blocking(move || book.sync()).await?;
    find(&reports, account, &id).map(Json)
}

/// `PUT /api/reports/schedules/{id}`: replaces what the admin set (pausing and
/// resuming included). Slots before the change are not sent afterwards.
pub async fn schedule_put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Schedule>, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    let input = parse_input(&body)?;
    let book = Arc::clone(&reports.book);
    blocking(move || book.sync()).await?;
    let mut schedule = find(&reports, account, &id)?;
    schedule.input = input;
    schedule.updated_at = app.clock.now_ms();
    let book = Arc::clone(&reports.book);
    let record = Record::ScheduleSaved {
        schedule: schedule.clone(),
    };
    blocking(move || book.append(&record)).await?;
    Ok(Json(schedule))
}

/// `DELETE /api/reports/schedules/{id}`: `204`; its history stays.
pub async fn schedule_delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    let book = Arc::clone(&reports.book);
    blocking(move || book.sync()).await?;
    find(&reports, account, &id)?;
    let book = Arc::clone(&reports.book);
    blocking(move || {
        book.append(&Record::ScheduleDeleted {
            account_id: account,
            id,
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/reports/schedules/{id}/send`: sends the schedule's report now; `202`
/// with the run's id (its outcome appears in the history).
pub async fn schedule_send(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    let book = Arc::clone(&reports.book);
    blocking(move || book.sync()).await?;
    let schedule = find(&reports, account, &id)?;
    let run_id = reports.send_now(app.clone(), schedule).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))))
}

/// `GET /api/reports/runs[?schedule_id=]`: the history, newest first.
pub async fn runs_get(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    for k in query.keys() {
        if k != "schedule_id" {
            return Err(ApiError::bad_request(format!("{k}: unknown parameter")));
        }
    }
    let book = Arc::clone(&reports.book);
    blocking(move || book.sync()).await?;
    let now = app.clock.now_ms();
    let runs = reports.book.runs(
        account,
        query.get("schedule_id").map(String::as_str),
        reports.history_since(now),
        now,
    );
    Ok(Json(json!({
        "history_days": reports.config.history_days,
        "runs": runs,
    })))
}

/// `GET /api/reports/runs/{id}/pdf`: the PDF that run made, byte for byte.
pub async fn run_pdf_get(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let (reports, account, _) = admin(&app, &headers)?;
    let now = app.clock.now_ms();
    let since = reports.history_since(now);
    let run = reports
        .book
        .runs(account, None, since, now)
        .into_iter()
        .find(|r| r.run_id == id)
        .ok_or_else(|| ApiError::NotFound(format!("run {id:?}: no such run in the history")))?;
    let book = Arc::clone(&reports.book);
    let run_id = id.clone();
    let pdf = blocking(move || book.pdf(account, &run_id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("run {id:?}: no PDF was recorded")))?;
    Ok(pdf_response(
        pdf,
        &format!("crmpulse-report-{}.pdf", run.period.0),
    ))
}
