//! The API's one error type. Its body is `{"error": {"code", "message"}}`; 5xx bodies
//! stay generic and the details go to the log. [`json_errors`] gives the same body to
//! every error of an API path that no handler answered (axum's rejections, the
//! fallback).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message names the parameter.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials: a missing, malformed, wrongly signed or expired token.
    #[error("{message}")]
    Unauthorized {
        /// `unauthorized`, or `token_expired` when only the expiry is wrong.
        code: &'static str,
        /// What is wrong with the credentials.
        message: String,
    },
    /// Valid credentials that may not see this; the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// Too many requests for one token; retry after the given seconds.
    #[error("rate limit reached: retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds until a request is admitted again.
        retry_after_s: u64,
    },
    /// A feature this deployment has not configured; the message says what to set.
    #[error("{0}")]
    Unavailable(String),
    /// Something failed on our side; the cause is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A `400` with a message naming the parameter at fault.
    pub fn bad_request(message: String) -> Self {
        ApiError::BadRequest(message)
    }

    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The machine-readable code (`bad_request`, `unauthorized`, `forbidden`, …).
    pub fn code(&self) -> &'static str {
        self.status_code().1
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let (_, code) = self.status_code();
        serde_json::json!({"error": {"code": code, "message": self.to_string()}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let (status, _) = self.status_code();
        let mut response = (status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized { .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"crmpulse\""),
                );
            }
            ApiError::RateLimited { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            _ => {}
        }
        response
    }
}

/// Whether `path` is an API path, whose every error is the JSON body (the dashboard's
/// files and shell live outside it).
pub fn is_api_path(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || path == "/metrics"
        || path == "/healthz"
        || path == "/readyz"
}

/// The code of an error status, as the JSON body names it.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::UPGRADE_REQUIRED => "upgrade_required",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Middleware: an error response of an API path that is not JSON yet (axum's own
/// rejections: an unknown method, a query string or an upgrade that does not parse, a
/// body over the limit) becomes `{"error": {"code", "message"}}` with the same status
/// and headers (`Allow` on a `405` stays). The rejection's text becomes the message;
/// 5xx say only "internal error".
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !is_api_path(req.uri().path()) {
        return next.run(req).await;
    }
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
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4 * 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let message = match status {
        s if s.is_server_error() => "internal error".to_owned(),
        StatusCode::NOT_FOUND => format!("{what}: no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            // axum may set `Allow` only after this layer: name the methods when known.
            match parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .filter(|a| !a.is_empty())
            {
                Some(allow) => format!("{what}: method not allowed (allowed: {allow})"),
                None => format!("{what}: method not allowed (the Allow header lists the methods)"),
            }
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("{what}: the request body is larger than this route accepts")
        }
        _ => match text {
            Some(t) => format!("{what}: {t}"),
            None => format!("{what}: {}", status.canonical_reason().unwrap_or("refused")),
        },
    };
    let body = serde_json::json!({"error": {"code": code_of(status), "message": message}});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}
