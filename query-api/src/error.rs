//! The API's one error type. Its body is `{"error": {"code", "message"}}`; 5xx bodies
//! stay generic and the details go to the log.

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
