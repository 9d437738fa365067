//! The OpenAPI document served at `/api/openapi.json`, generated from the response
//! types themselves (utoipa), so it cannot drift from what the API sends: every
//! field's description is its `///` comment.

use serde::Serialize;
use utoipa::OpenApi;

use crate::sections::{
    agent_productivity, automation_impact, business_impact, conversation_effectiveness,
    customer_load, kpi, whatsapp_performance,
};

/// Query parameters shared by every dashboard section.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SectionQuery {
    /// Account to read: must be the token's account, which is the default.
    account_id: Option<u64>,
    /// Range start: RFC 3339 instant, or `YYYY-MM-DD` for local midnight in the
    /// account's zone. Default: local midnight today.
    from: Option<String>,
    /// Range end, exclusive: RFC 3339 instant or `YYYY-MM-DD`. Default: the next local
    /// midnight after a date `from`, or `from` + 24 h.
    to: Option<String>,
    /// Channel filter: whatsapp, webchat, email, instagram, messenger, sms.
    channel: Option<String>,
    /// Inbox filter.
    inbox_id: Option<String>,
    /// Agent filter.
    agent_id: Option<String>,
    /// Team filter.
    team_id: Option<String>,
    /// Trend slot size, `hour`, `day` or `week` (sections with a trend).
    granularity: Option<String>,
}

/// An error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Details of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `token_expired`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `rate_limited` or `internal` (ingest adds
    /// `payload_too_large` and `unsupported_media_type`).
    pub code: String,
    /// For 4xx, names the parameter at fault (`from: expected …`); generic for 5xx.
    pub message: String,
}

macro_rules! section_path {
    ($fn:ident, $path:literal, $body:ty, $summary:literal) => {
        #[utoipa::path(
            get,
            path = $path,
            summary = $summary,
            params(SectionQuery),
            responses(
                (status = 200, description = "The section at one complete timestamp", body = $body),
                (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
                (status = 401, description = "No valid token (`unauthorized`) or an expired one (`token_expired`)", body = ErrorBody),
                (status = 403, description = "Another account, or a filter outside the token's role", body = ErrorBody),
                (status = 429, description = "Past the token's rate limit; see `Retry-After`", body = ErrorBody),
            ),
            security(("bearer" = [])),
            tag = "dashboard"
        )]
        #[allow(dead_code)]
        fn $fn() {}
    };
}

section_path!(kpi_get, "/api/dashboard/kpi", kpi::Kpi, "KPI strip");
section_path!(
    conversation_effectiveness_get,
    "/api/dashboard/conversation-effectiveness",
    conversation_effectiveness::ConversationEffectiveness,
    "Conversation effectiveness"
);
section_path!(
    customer_load_get,
    "/api/dashboard/customer-load",
    customer_load::CustomerLoad,
    "Customer load"
);
section_path!(
    agent_productivity_get,
    "/api/dashboard/agent-productivity",
    agent_productivity::AgentProductivity,
    "Agent productivity"
);
section_path!(
    whatsapp_performance_get,
    "/api/dashboard/whatsapp-performance",
    whatsapp_performance::WhatsappPerformance,
    "WhatsApp performance"
);
section_path!(
    automation_impact_get,
    "/api/dashboard/automation-impact",
    automation_impact::AutomationImpact,
    "Automation impact"
);
section_path!(
    business_impact_get,
    "/api/dashboard/business-impact",
    business_impact::BusinessImpact,
    "Business impact"
);

/// The caller's token claims (`GET /api/me`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// Who the token was issued to.
    pub sub: String,
    /// The one account the token reads.
    pub account_id: u64,
    /// `admin`, `supervisor`, `agent` or `analyst`.
    pub role: String,
    /// Teams of a supervisor or agent.
    pub team_ids: Vec<String>,
    /// The agent's own id (agent role).
    pub agent_id: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

#[utoipa::path(
    get,
    path = "/api/me",
    summary = "The caller's token claims",
    responses(
        (status = 200, description = "The claims of the bearer token", body = Me),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "auth"
)]
#[allow(dead_code)]
fn me_get() {}

/// The query of a report: a section's, and for the dashboard PDF the parts.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DashboardPdfQuery {
    /// Comma-separated `summary` and section names, in print order; default: the seven
    /// sections.
    sections: Option<String>,
}

/// `GET /api/reports/schedules`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    /// `smtp` when `[reports] smtp_url` is set, `off` when nothing is sent.
    pub delivery: String,
    /// The account's IANA time zone, in which `local_time` is read.
    pub timezone: String,
    /// The account's schedules.
    pub schedules: Vec<crate::reports::schedule::Schedule>,
}

/// `GET /api/reports/runs`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    /// How long runs are kept.
    pub history_days: u64,
    /// Runs, newest first.
    pub runs: Vec<crate::reports::book::Run>,
}

/// `POST /api/reports/schedules/{id}/send`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SendNow {
    /// The run started; its outcome appears in the history.
    pub run_id: String,
}

macro_rules! report_pdf_path {
    ($fn:ident, $path:literal, $summary:literal, $($params:ident),*) => {
        #[utoipa::path(
            get,
            path = $path,
            summary = $summary,
            params($($params),*),
            responses(
                (status = 200, description = "An A4 PDF attachment", content_type = "application/pdf", body = Vec<u8>),
                (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
                (status = 401, description = "No valid token", body = ErrorBody),
                (status = 403, description = "Another account, or a filter outside the token's role", body = ErrorBody),
            ),
            security(("bearer" = [])),
            tag = "reports"
        )]
        #[allow(dead_code)]
        fn $fn() {}
    };
}

#[utoipa::path(
    get,
    path = "/api/reports/summary",
    summary = "Executive summary",
    description = "Figures against the previous period, the largest changes, SLA, WhatsApp delivery and top error codes, best and lowest agents, and highlight sentences, each naming the section fields it was made from (docs/api.md).",
    params(SectionQuery),
    responses(
        (status = 200, description = "The summary, computed from the sections' bodies of one snapshot", body = Object),
        (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Another account, or a filter outside the token's role", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "reports"
)]
#[allow(dead_code)]
fn summary_get() {}

report_pdf_path!(
    summary_pdf_get,
    "/api/reports/summary.pdf",
    "Executive summary as a PDF",
    SectionQuery
);
report_pdf_path!(
    dashboard_pdf_get,
    "/api/reports/dashboard.pdf",
    "The dashboard, or some sections, as a PDF",
    SectionQuery,
    DashboardPdfQuery
);

#[utoipa::path(get, path = "/api/reports/schedules", summary = "The account's report schedules",
    responses((status = 200, description = "Schedules and whether mail is delivered", body = ScheduleList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn schedules_get() {}

#[utoipa::path(post, path = "/api/reports/schedules", summary = "Create a report schedule",
    request_body = crate::reports::schedule::ScheduleInput,
    responses((status = 201, description = "The schedule", body = crate::reports::schedule::Schedule),
        (status = 400, description = "A field is invalid; the message names it", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn schedules_post() {}

#[utoipa::path(get, path = "/api/reports/schedules/{id}", summary = "One report schedule",
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 200, description = "The schedule", body = crate::reports::schedule::Schedule),
        (status = 404, description = "No such schedule in the account", body = ErrorBody),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn schedule_get() {}

#[utoipa::path(put, path = "/api/reports/schedules/{id}", summary = "Replace a report schedule (edit, pause, resume)",
    params(("id" = String, Path, description = "The schedule's id")),
    request_body = crate::reports::schedule::ScheduleInput,
    responses((status = 200, description = "The schedule", body = crate::reports::schedule::Schedule),
        (status = 400, description = "A field is invalid; the message names it", body = ErrorBody),
        (status = 404, description = "No such schedule in the account", body = ErrorBody),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn schedule_put() {}

#[utoipa::path(delete, path = "/api/reports/schedules/{id}", summary = "Delete a report schedule (its history stays)",
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such schedule in the account", body = ErrorBody),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn schedule_delete() {}

#[utoipa::path(post, path = "/api/reports/schedules/{id}/send", summary = "Send a schedule's report now",
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 202, description = "The run started", body = SendNow),
        (status = 404, description = "No such schedule in the account", body = ErrorBody),
        (status = 503, description = "Mail delivery is off (`[reports] smtp_url`)", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn schedule_send() {}

#[utoipa::path(get, path = "/api/reports/runs", summary = "The history of report runs",
    params(("schedule_id" = Option<String>, Query, description = "Only this schedule's runs")),
    responses((status = 200, description = "Runs, newest first", body = RunList),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn runs_get() {}

#[utoipa::path(get, path = "/api/reports/runs/{id}/pdf", summary = "The PDF a run made, byte for byte",
    params(("id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        (status = 404, description = "No such run in the history, or no PDF", body = ErrorBody),
        (status = 403, description = "Not an admin of the account", body = ErrorBody)),
    security(("bearer" = [])), tag = "reports")]
#[allow(dead_code)]
fn run_pdf_get() {}

/// Declares the bearer scheme every dashboard path names.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A dashboard token from `crmpulse token` (docs/security.md). The body is scoped to its account and role.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "crmpulse",
        description = "Live CRM analytics. Every dashboard body is computed at one complete pipeline timestamp (`progress`). See docs/api.md and docs/metrics.md."
    ),
    paths(
        kpi_get,
        conversation_effectiveness_get,
        whatsapp_performance_get,
        customer_load_get,
        agent_productivity_get,
        automation_impact_get,
        business_impact_get,
        summary_get,
        summary_pdf_get,
        dashboard_pdf_get,
        schedules_get,
        schedules_post,
        schedule_get,
        schedule_put,
        schedule_delete,
        schedule_send,
        runs_get,
        run_pdf_get,
        me_get
    ),
    components(schemas(ErrorBody, ErrorDetail, Me, ScheduleList, RunList, SendNow)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn walk(name: &str, schema: &Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (field, prop) in props {
                // A field whose type is another schema is described there.
                let by_ref = prop.get("$ref").is_some()
                    || ["oneOf", "allOf"].iter().any(|k| {
                        prop.get(*k)
                            .and_then(Value::as_array)
                            .is_some_and(|parts| parts.iter().any(|p| p.get("$ref").is_some()))
                    });
                if prop.get("description").is_none() && !by_ref {
                    missing.push(format!("{name}.{field}"));
                }
            }
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                walk(name, part, missing);
            }
        }
    }

    #[test]
    fn every_section_is_documented_and_every_field_described() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for section in crate::sections::SECTIONS {
            let path = format!("/api/dashboard/{section}");
            assert!(
                doc["paths"].get(&path).is_some(),
                "{path} is missing from the OpenAPI document"
            );
        }
        for path in [
            "/api/reports/summary",
            "/api/reports/summary.pdf",
            "/api/reports/dashboard.pdf",
            "/api/reports/schedules",
            "/api/reports/schedules/{id}",
            "/api/reports/schedules/{id}/send",
            "/api/reports/runs",
            "/api/reports/runs/{id}/pdf",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is missing");
        }
        let mut missing = Vec::new();
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            walk(name, schema, &mut missing);
        }
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }
}
