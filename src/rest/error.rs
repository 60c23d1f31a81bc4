//! REST error bodies: HTTP status + `{"code": "...", "message": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{AppError, http_status_for_code};

/// An error as the REST layer answers it.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// `Retry-After` seconds, for a rate-limited request.
    pub retry_after: Option<u64>,
    /// The operation changed something before this error (a read after a mutation failed):
    /// the answer must not be forgotten for idempotent replay, even when it is a 5xx.
    pub committed: bool,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), retry_after: None, committed: false }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new("BAD_USER_INPUT", message)
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        error.log();
        Self {
            code: error.code().to_owned(),
            message: error.to_string(),
            retry_after: error.retry_after(),
            committed: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(http_status_for_code(&self.code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(json!({ "code": self.code, "message": self.message }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
