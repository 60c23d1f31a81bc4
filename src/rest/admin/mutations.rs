//! The POST paths of the legacy API. Each reads its body (JSON or form), runs one GraphQL
//! mutation in process and answers `{"order": ...}` in the legacy shape.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiError;
use super::body::Fields;
use super::exec::{decode_field, run};
use super::openapi::{
    CallbackBody, CancelBody, ErrorBody, MutationErrors, OrderResponse, PayBody, ReconcileBody, RefundBody,
};
use super::orders::path_id;
use super::shape::{GqlOrder, ORDER_FIELDS, RestOrder};
use crate::domain::{Caller, PaymentAttemptStatus, replay};
use crate::http::auth::authenticate;
use crate::http::signature;
use crate::http::{HttpState, idempotency};
use crate::rest::body::try_api;

/// Runs `mutation { <field>(input: $input) { ...LegacyOrder } }` and shapes `{"order": ...}`.
async fn order_mutation(
    state: HttpState,
    caller: Caller,
    field: &'static str,
    input_type: &'static str,
    input: Value,
) -> idempotency::Outcome {
    let query = format!(
        "mutation Legacy($input: {input_type}!) {{ {field}(input: $input) {{ ...LegacyOrder }} }} {ORDER_FIELDS}"
    );
    let result = async {
        let data = run(&state, caller, query, json!({ "input": input })).await?;
        let order = RestOrder::try_from(decode_field::<GqlOrder>(data, field)?)?;
        serde_json::to_string(&OrderResponse { order }).map_err(|e| {
            tracing::error!(error = %e, "serialising an order");
            ApiError::new("INTERNAL", "internal error")
        })
    }
    .await;
    crate::rest::once::outcome(result).await
}

/// Runs the mutation once per Idempotency-Key (when the client sent one).
async fn respond(
    state: HttpState,
    headers: &HeaderMap,
    caller: Caller,
    path: &str,
    field: &'static str,
    input_type: &'static str,
    input: Value,
) -> Response {
    // The parsed input, not the raw bytes: JSON and form bodies saying the same are the same.
    // Key order does not matter either.
    let canonical = idempotency::canonical_json(&input);
    let act = |caller| order_mutation(state.clone(), caller, field, input_type, input);
    crate::rest::once::respond(&state, headers, caller, &["rest", path, &canonical], act, |error| {
        ApiError::from(error).into_response()
    })
    .await
}

/// The caller, the order id of the path and the body of an order POST.
async fn order_request(
    state: &HttpState,
    headers: &HeaderMap,
    raw_id: &str,
    body: &[u8],
) -> Result<(Caller, i64, Fields), ApiError> {
    let caller = authenticate(&state.app, headers).await?;
    let id = path_id(raw_id)?;
    Ok((caller, id, Fields::parse(headers, body)?))
}

/// Cancels a PENDING order that is not paid.
#[utoipa::path(
    post, path = "/api/v1/admin/orders/{id}/cancel", operation_id = "cancelOrder", tag = "orders",
    params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content((CancelBody = "application/json"), (CancelBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The order after the change", body = OrderResponse),
        (status = 404, description = "No such order or payment", body = ErrorBody),
        MutationErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn cancel(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Response {
    let (caller, id, fields) = try_api!(order_request(&state, &headers, &raw_id, &body).await);
    let input = json!({
        "id": id.to_string(),
        "reason": try_api!(fields.string("reason")),
        "cancelledAt": try_api!(fields.unix_time("cancelled_at")),
    });
    respond(state, &headers, caller, &format!("/orders/{id}/cancel"), "cancelOrder", "CancelOrderInput", input).await
}

/// Marks an order paid by hand, optionally from the user's balance.
#[utoipa::path(
    post, path = "/api/v1/admin/orders/{id}/pay", operation_id = "markOrderPaid", tag = "orders",
    params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content((PayBody = "application/json"), (PayBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The order after the change", body = OrderResponse),
        (status = 404, description = "No such order or payment", body = ErrorBody),
        (status = 422, description = "The balance cannot cover the order", body = ErrorBody),
        MutationErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn pay(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Response {
    let (caller, id, fields) = try_api!(order_request(&state, &headers, &raw_id, &body).await);
    let input = json!({
        "id": id.to_string(),
        "paymentMethod": try_api!(fields.string("payment_method")),
        "paidAt": try_api!(fields.unix_time("paid_at")),
        "note": try_api!(fields.string("note")),
        "reference": try_api!(fields.string("reference")),
        "chargeBalance": try_api!(fields.bool("charge_balance")),
    });
    respond(state, &headers, caller, &format!("/orders/{id}/pay"), "markOrderPaid", "MarkOrderPaidInput", input).await
}

/// Refunds part or all of a paid order.
#[utoipa::path(
    post, path = "/api/v1/admin/orders/{id}/refund", operation_id = "refundOrder", tag = "orders",
    params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content((RefundBody = "application/json"), (RefundBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The order after the change", body = OrderResponse),
        (status = 404, description = "No such order or payment", body = ErrorBody),
        (status = 202, description = "OUTCOME_PENDING: the payment provider gave no definite answer; the refund stays PENDING with its amount reserved. Retry with the same Idempotency-Key to continue the same refund", body = ErrorBody),
        (status = 502, description = "The payment provider definitely did not refund; nothing changed", body = ErrorBody),
        MutationErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn refund(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Response {
    let (caller, id, fields) = try_api!(order_request(&state, &headers, &raw_id, &body).await);
    let amount = match try_api!(fields.int("amount_cents")) {
        Some(amount) if amount > 0 => amount,
        Some(_) => return ApiError::bad_input("amount_cents must be a positive integer").into_response(),
        None => return ApiError::bad_input("amount_cents is required").into_response(),
    };
    let input = json!({
        "id": id.to_string(),
        "amountCents": amount,
        "reason": try_api!(fields.string("reason")),
        "metadata": try_api!(fields.object("metadata")),
        "refundAt": try_api!(fields.unix_time("refund_at")),
        "creditBalance": try_api!(fields.bool("credit_balance")),
    });
    respond(state, &headers, caller, &format!("/orders/{id}/refund"), "refundOrder", "RefundOrderInput", input).await
}

fn callback_input(fields: &Fields) -> Result<Value, ApiError> {
    let status = match fields.int("status")? {
        Some(code) => PaymentAttemptStatus::from_code(code).ok_or_else(|| {
            ApiError::bad_input(format!(
                "status must be one of 1 (PENDING), 2 (SUCCEEDED), 3 (FAILED), 4 (CANCELLED) (got {code})"
            ))
        })?,
        None => return Err(ApiError::bad_input("status is required")),
    };
    let settled_at = fields.unix_time("settled_at")?;
    Ok(json!({
        "orderId": fields.id("order_id")?.to_string(),
        "paymentId": fields.id("payment_id")?.to_string(),
        "status": status.as_str(),
        "reference": fields.string("reference")?,
        "failureCode": fields.string("failure_code")?,
        "failureMessage": fields.string("failure_message")?,
        "paidAt": fields.unix_time("paid_at")?,
        "settledAt": settled_at,
        // A client that sends zeros for what it does not know sends no settlement.
        "settledAmountCents": fields.int("settled_amount_cents")?.filter(|c| settled_at.is_some() || *c != 0),
    }))
}

/// An admin reports a payment outcome.
#[utoipa::path(
    post, path = "/api/v1/admin/orders/payments/callback", operation_id = "recordPaymentCallback", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content((CallbackBody = "application/json"), (CallbackBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The order after the change", body = OrderResponse),
        (status = 404, description = "No such order or payment", body = ErrorBody),
        MutationErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn admin_callback(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let fields = try_api!(Fields::parse(&headers, &body));
    let input = try_api!(callback_input(&fields));
    respond(state, &headers, caller, "/payments/callback", "processPaymentCallback", "PaymentCallbackInput", input)
        .await
}

/// The payment provider reports an outcome; signed, no API key.
#[utoipa::path(
    post, path = "/api/v1/payments/callback", operation_id = "providerPaymentCallback", tag = "orders",
    security(("callback_signature" = [])),
    params(("X-Billing-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content((CallbackBody = "application/json"), (CallbackBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The order after the change", body = OrderResponse),
        (status = 404, description = "No such order or payment", body = ErrorBody),
        MutationErrors,
    ),
)]
pub async fn provider_callback(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let verified = try_api!(signature::verify(&state.app.config().callback_secrets(), header, &body, now));
    let fields = try_api!(Fields::parse(&headers, &body));
    let input = try_api!(callback_input(&fields));
    // A signature is accepted once: a captured callback replayed within its window is refused.
    if !try_api!(replay::claim(state.app.pool(), &verified.replay_key).await) {
        return ApiError::new(
            "CONFLICT",
            "this signed callback was already accepted: sign each delivery with a fresh timestamp".to_owned(),
        )
        .into_response();
    }
    let pool = state.app.pool().clone();
    let response = respond(
        state,
        &headers,
        Caller::provider(),
        "/payments/callback",
        "processPaymentCallback",
        "PaymentCallbackInput",
        input,
    )
    .await;
    if response.status().is_server_error() {
        // Not taken: the sender's retry of this delivery must be.
        if let Err(error) = replay::release(&pool, &verified.replay_key).await {
            error.log();
        }
    }
    response
}

/// Asks the provider for a payment's state and applies it like a callback.
#[utoipa::path(
    post, path = "/api/v1/admin/orders/payments/reconcile", operation_id = "reconcilePayment", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content((ReconcileBody = "application/json"), (ReconcileBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The order after the change", body = OrderResponse),
        (status = 404, description = "No such order or payment", body = ErrorBody),
        (status = 502, description = "The payment provider could not be reached; nothing changed", body = ErrorBody),
        MutationErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn reconcile(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let fields = try_api!(Fields::parse(&headers, &body));
    let input = json!({
        "orderId": try_api!(fields.id("order_id")).to_string(),
        "paymentId": try_api!(fields.id("payment_id")).to_string(),
    });
    respond(state, &headers, caller, "/payments/reconcile", "reconcilePayment", "ReconcilePaymentInput", input).await
}
