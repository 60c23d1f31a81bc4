//! Seed 001's error body: `{"code": "...", "message": "...", "errors": ...}`.
//!
//! | code | HTTP | meaning |
//! |---|---|---|
//! | `101` | 400 | `pay_amount` is missing |
//! | `102` | 400 | a field or parameter is not valid; `errors` names it: `[{"field", "message"}]` |
//! | `103` | 400 | the body is not a JSON object |
//! | `401` | 401 | no valid API key |
//! | `403` | 403 | the key's role may not do this |
//! | `404` | 404 | no such order (or not yours) |
//! | `409` | 409 | the order's state does not allow it, or an Idempotency-Key was reused for another request |
//! | `429` | 429 | too many requests (`Retry-After` says when to retry) |
//! | `500` | 500 | internal error |
//! | `503` | 503 | temporarily unavailable |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::http_status_for_code;
use crate::rest::ApiError;

/// An error of the seed 001 face.
#[derive(Debug)]
pub struct StoreError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The wrong fields, for code 102 (boxed: errors travel in `Result`s).
    pub errors: Option<Box<Value>>,
    pub retry_after: Option<u64>,
    pub committed: bool,
}

/// The error body of seed 001.
#[derive(Serialize, ToSchema)]
pub struct StoreErrorBody {
    /// `101`, `102`, `103`, `401`, `403`, `404`, `409`, `429`, `500` or `503`.
    #[schema(example = "101")]
    pub code: String,
    #[schema(example = "Missing amount")]
    pub message: String,
    /// For `102`: the fields that were wrong, `[{"field": "...", "message": "..."}]`; else null.
    #[schema(value_type = Option<Vec<FieldError>>)]
    pub errors: Value,
}

/// One wrong field.
#[derive(Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl StoreError {
    pub fn missing_amount() -> Self {
        Self::field_code("101", "pay_amount", "Missing amount")
    }

    /// A wrong field (code 102), named in `errors`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::field_code("102", field, &message)
    }

    fn field_code(code: &'static str, field: &str, message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.to_owned(),
            errors: Some(Box::new(json!([{ "field": field, "message": message }]))),
            retry_after: None,
            committed: false,
        }
    }

    pub fn not_json(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "103",
            message: message.into(),
            errors: None,
            retry_after: None,
            committed: false,
        }
    }

    pub fn body(&self) -> String {
        json!({ "code": self.code, "message": self.message, "errors": self.errors.as_deref() }).to_string()
    }
}

/// GraphQL input names as this face spells them, so messages name the field the client
/// sent.
const FIELD_NAMES: &[(&str, &str)] = &[
    ("amountCents", "pay_amount"),
    ("installmentTerm", "selected_installment_term"),
    ("paymentType", "selected_payment_type"),
    ("customerOrderId", "customer_order_id"),
    ("customerId", "customer_id"),
    ("successUrl", "success_url"),
    ("cancelUrl", "cancel_url"),
    ("callbackUrl", "callback_url"),
    ("consumerEmail", "consumer_email"),
    ("consumerPhone", "consumer_phone"),
    ("storeId", "store_id"),
    ("paymentDate", "date_payment"),
    ("userId", "user_id"),
];

/// Rewrites the GraphQL field names in `message` to this face's.
fn rename_fields(message: &str) -> (String, Option<&'static str>) {
    let mut out = message.to_owned();
    let mut first = None;
    for (gql, rest) in FIELD_NAMES {
        if out.contains(gql) {
            out = out.replace(gql, rest);
            first.get_or_insert(*rest);
        }
    }
    (out, first)
}

impl From<ApiError> for StoreError {
    fn from(error: ApiError) -> Self {
        let status =
            StatusCode::from_u16(http_status_for_code(&error.code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (message, renamed) = rename_fields(&error.message);
        // Messages start with the field or parameter they are about.
        let leading = message
            .split([' ', '.', ':'])
            .next()
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map(str::to_owned);
        let field = renamed.map(str::to_owned).or(leading);
        let (code, errors) = match status.as_u16() {
            400 => ("102", field.map(|f| Box::new(json!([{ "field": f, "message": message }])))),
            401 => ("401", None),
            403 => ("403", None),
            404 => ("404", None),
            409 | 422 => ("409", None),
            429 => ("429", None),
            503 => ("503", None),
            _ => ("500", None),
        };
        let status = if status.as_u16() == 422 { StatusCode::CONFLICT } else { status };
        Self { status, code, message, errors, retry_after: error.retry_after, committed: error.committed }
    }
}

impl From<crate::error::AppError> for StoreError {
    fn from(error: crate::error::AppError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        let body: Value = json!({ "code": self.code, "message": self.message, "errors": self.errors.as_deref() });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
