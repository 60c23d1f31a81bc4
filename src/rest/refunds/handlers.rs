//! `GET /api/v2/refunds`, `POST /api/v2/refunds` and the decision paths.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::domain::Caller;
use crate::domain::paging::MAX_PER_PAGE;
use crate::http::auth::authenticate;
use crate::http::{HttpState, idempotency};
use crate::money::Currency;
use crate::rest::ApiError;
use crate::rest::body::{object, text, try_api};
use crate::rest::exec::{decode_field, run};
use crate::rest::openapi::ErrorBody;
use crate::rest::params::QueryParams;

const FIELDS: &str = "fragment SeedRefund on RefundRequest {
    id orderId amountCents currency status valid requester requestReason responseReason
    createdAt updatedAt confirmedAt issuedAt
}";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlRequest {
    id: String,
    order_id: String,
    amount_cents: i64,
    currency: String,
    status: String,
    valid: bool,
    requester: String,
    request_reason: String,
    response_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    issued_at: Option<DateTime<Utc>>,
}

/// A refund request as seed 004 shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedRefund {
    pub id: i64,
    pub order_id: i64,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    /// The key name of who asked (`staff` for another key, to keys bound to a user or merchant).
    pub requester: String,
    pub request_reason: String,
    pub response_reason: Option<String>,
    pub confirmed_at: Option<String>,
    pub issued_at: Option<String>,
    /// Major units of the order's currency.
    #[schema(value_type = f64, example = 500.0)]
    pub amount: Value,
    /// PENDING, PROCESSING, ISSUED, DENIED or CANCELLED.
    #[schema(example = "PENDING")]
    pub status: String,
    pub valid: bool,
}

/// `{"data": ...}`
#[derive(Serialize, ToSchema)]
pub struct SeedRefundResponse {
    pub data: SeedRefund,
}

/// `{"data": [...]}`
#[derive(Serialize, ToSchema)]
pub struct SeedRefundList {
    pub data: Vec<SeedRefund>,
}

fn number(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::new("INTERNAL", "internal error"))
}

fn shape(r: GqlRequest) -> Result<SeedRefund, ApiError> {
    let amount = Currency::of_stored(&r.currency)?.to_major_json(r.amount_cents)?;
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(SeedRefund {
        id: number(&r.id)?,
        order_id: number(&r.order_id)?,
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        requester: r.requester,
        request_reason: r.request_reason,
        response_reason: r.response_reason,
        confirmed_at: r.confirmed_at.map(time),
        issued_at: r.issued_at.map(time),
        amount,
        status: r.status,
        valid: r.valid,
    })
}

fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_input(format!("id must be a positive integer (got {raw:?})")))
}

/// Runs a mutation returning one request, shaped `{"data": ...}`.
async fn mutation(
    state: HttpState,
    caller: Caller,
    field: &'static str,
    query: String,
    variables: Value,
) -> idempotency::Outcome {
    let result: Result<String, ApiError> = async {
        let data = run(&state, caller, query, variables).await?;
        let data = shape(decode_field::<GqlRequest>(data, field)?)?;
        serde_json::to_string(&SeedRefundResponse { data }).map_err(|_| ApiError::new("INTERNAL", "internal error"))
    }
    .await;
    crate::rest::once::outcome(result).await
}

async fn respond(
    state: HttpState,
    headers: &HeaderMap,
    caller: Caller,
    path: &str,
    field: &'static str,
    query: String,
    variables: Value,
) -> Response {
    let canonical = idempotency::canonical_json(&variables);
    let act = |caller| mutation(state.clone(), caller, field, query, variables);
    crate::rest::once::respond(&state, headers, caller, &["refunds", path, &canonical], act, |error| {
        ApiError::from(error).into_response()
    })
    .await
}

/// Refund requests of the orders you may see, newest first: `page` from 0, `size` default 20.
#[utoipa::path(
    get, path = "/api/v2/refunds", operation_id = "listRefundRequests", tag = "refund requests (seed 004)",
    params(
        ("page" = Option<i64>, Query, minimum = 0, description = "From 0"),
        ("size" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Default 20"),
        ("orderId" = Option<i64>, Query, description = "Only this order's (it must be yours)"),
        ("status" = Option<String>, Query, description = "PENDING, PROCESSING, ISSUED, DENIED or CANCELLED"),
        ("valid" = Option<bool>, Query),
    ),
    responses(
        (status = 200, description = "The page", body = SeedRefundList),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "orderId is not an order of yours", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn list(State(state): State<HttpState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let params = try_api!(QueryParams::parse(raw.as_deref()));
    let page = try_api!(params.int("page", 0, 0..=crate::domain::paging::MAX_PAGE - 1));
    let size = try_api!(params.int("size", 20, 1..=MAX_PER_PAGE));
    let mut filter = Map::new();
    if params.text("orderId").is_some() {
        let order_id = try_api!(params.int("orderId", 0, 1..=i64::MAX));
        // The seed: the requested orderId must belong to you (else 404, not an empty list).
        let query = "query RefundOrder($id: ID!) { order(id: $id) { id } }".to_owned();
        let data = try_api!(run(&state, caller.clone(), query, json!({ "id": order_id.to_string() })).await);
        let order: Option<Value> = try_api!(decode_field(data, "order"));
        if order.is_none() {
            return ApiError::new("NOT_FOUND", format!("order {order_id} not found")).into_response();
        }
        filter.insert("orderId".into(), json!(order_id.to_string()));
    }
    if let Some(status) = params.text("status") {
        let status = if status == "REQUESTED" { "PENDING" } else { status };
        let allowed = ["PENDING", "PROCESSING", "ISSUED", "DENIED", "CANCELLED"];
        if !allowed.contains(&status) {
            return ApiError::bad_input(format!("status must be one of {} (got {status:?})", allowed.join(", ")))
                .into_response();
        }
        filter.insert("status".into(), json!(status));
    }
    if let Some(valid) = params.text("valid") {
        let valid = match valid {
            "true" => true,
            "false" => false,
            other => {
                return ApiError::bad_input(format!("valid must be true or false (got {other:?})")).into_response();
            }
        };
        filter.insert("valid".into(), json!(valid));
    }
    let query = format!(
        "query SeedRefunds($filter: RefundRequestFilter, $page: Int, $perPage: Int) {{ refundRequests(filter: $filter, page: $page, perPage: $perPage) {{ nodes {{ ...SeedRefund }} }} }} {FIELDS}"
    );
    let data =
        try_api!(run(&state, caller, query, json!({ "filter": filter, "page": page + 1, "perPage": size })).await);
    let page: Value = try_api!(decode_field(data, "refundRequests"));
    let nodes: Vec<GqlRequest> = try_api!(
        serde_json::from_value(page["nodes"].clone()).map_err(|_| ApiError::new("INTERNAL", "internal error"))
    );
    let data = try_api!(nodes.into_iter().map(shape).collect::<Result<Vec<_>, _>>());
    (StatusCode::OK, axum::Json(SeedRefundList { data })).into_response()
}

/// Asks for a refund: `orderId`, `reason`, `amount` in major units of the order's currency
/// (exact; more decimal places than it has are a 400). Customer and seller keys (and admins).
#[utoipa::path(
    post, path = "/api/v2/refunds", operation_id = "createRefundRequest", tag = "refund requests (seed 004)",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = CreateRefundBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new request", body = SeedRefundResponse),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "A key that may not ask", body = ErrorBody),
        (status = 404, description = "The order is not yours", body = ErrorBody),
        (status = 409, description = "Not refundable, too much, or an open request exists", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn create(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let map = try_api!(object(&body, &["orderId", "reason", "amount"]));
    let order_id = match map.get("orderId") {
        Some(Value::Number(n)) => try_api!(
            n.as_i64().filter(|v| *v > 0).ok_or_else(|| ApiError::bad_input("orderId must be a positive integer"))
        ),
        Some(Value::String(s)) => try_api!(
            s.trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| ApiError::bad_input("orderId must be a positive integer"))
        ),
        _ => return ApiError::bad_input("orderId is required: the order to refund").into_response(),
    };
    let Some(reason) = try_api!(text(&map, "reason")) else {
        return ApiError::bad_input("reason is required").into_response();
    };
    let amount = match map.get("amount") {
        Some(Value::Number(n)) => n.clone(),
        Some(_) => return ApiError::bad_input("amount must be a number").into_response(),
        None => return ApiError::bad_input("amount is required").into_response(),
    };
    // The currency is the order's: read it first (an order that is not yours is 404).
    let query = "query RefundCurrency($id: ID!) { order(id: $id) { currency } }".to_owned();
    let data = try_api!(run(&state, caller.clone(), query, json!({ "id": order_id.to_string() })).await);
    let order: Option<Value> = try_api!(decode_field(data, "order"));
    let Some(code) = order.as_ref().and_then(|o| o["currency"].as_str()).map(str::to_owned) else {
        return ApiError::new("NOT_FOUND", format!("order {order_id} not found")).into_response();
    };
    let currency = try_api!(Currency::of_stored(&code));
    let cents = try_api!(currency.json_to_minor("amount", &amount));
    let query = format!(
        "mutation SeedRequest($input: RequestRefundInput!) {{ requestRefund(input: $input) {{ ...SeedRefund }} }} {FIELDS}"
    );
    let variables = json!({ "input": { "orderId": order_id.to_string(), "amountCents": cents, "reason": reason } });
    respond(state, &headers, caller, "/api/v2/refunds", "requestRefund", query, variables).await
}

/// Approves a PENDING request and issues its refund (`creditBalance`: to the buyer's
/// balance). Seller and admin keys.
#[utoipa::path(
    post, path = "/api/v2/refunds/{id}/approve", operation_id = "approveRefundRequest", tag = "refund requests (seed 004)",
    params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = DecideBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The request (ISSUED once the money went back)", body = SeedRefundResponse),
        (status = 202, description = "OUTCOME_PENDING: the provider gave no definite answer; the request stays PROCESSING", body = ErrorBody),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "A key that may not decide", body = ErrorBody),
        (status = 404, description = "No such request (or not yours)", body = ErrorBody),
        (status = 409, description = "Not PENDING, or the order can no longer cover it", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The provider refused; approve again to retry", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn approve(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    decide(state, headers, raw, body, Decision::Approve).await
}

/// Denies a PENDING request; `responseReason` is required. Seller and admin keys.
#[utoipa::path(
    post, path = "/api/v2/refunds/{id}/deny", operation_id = "denyRefundRequest", tag = "refund requests (seed 004)",
    params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = DecideBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The request, DENIED", body = SeedRefundResponse),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "A key that may not decide", body = ErrorBody),
        (status = 404, description = "No such request (or not yours)", body = ErrorBody),
        (status = 409, description = "Not PENDING", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn deny(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    decide(state, headers, raw, body, Decision::Deny).await
}

/// Cancels a PENDING request: its requester's side or an admin.
#[utoipa::path(
    post, path = "/api/v2/refunds/{id}/cancel", operation_id = "cancelRefundRequest", tag = "refund requests (seed 004)",
    params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = DecideBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The request, CANCELLED", body = SeedRefundResponse),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not the requester or an admin", body = ErrorBody),
        (status = 404, description = "No such request (or not yours)", body = ErrorBody),
        (status = 409, description = "Not PENDING", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn cancel(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    decide(state, headers, raw, body, Decision::Cancel).await
}

#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Deny,
    Cancel,
}

async fn decide(state: HttpState, headers: HeaderMap, raw: String, body: Bytes, decision: Decision) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let id = try_api!(path_id(&raw));
    let (field, query, variables, path) = match decision {
        Decision::Approve => {
            let map = try_api!(object(&body, &["responseReason", "creditBalance"]));
            let credit = match map.get("creditBalance") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return ApiError::bad_input("creditBalance must be true or false").into_response(),
            };
            (
                "approveRefundRequest",
                format!(
                    "mutation SeedApprove($id: ID!, $r: String, $c: Boolean) {{ approveRefundRequest(id: $id, responseReason: $r, creditBalance: $c) {{ ...SeedRefund }} }} {FIELDS}"
                ),
                json!({ "id": id.to_string(), "r": try_api!(text(&map, "responseReason")), "c": credit }),
                format!("/api/v2/refunds/{id}/approve"),
            )
        }
        Decision::Deny => {
            let map = try_api!(object(&body, &["responseReason"]));
            let Some(reason) = try_api!(text(&map, "responseReason")) else {
                return ApiError::bad_input("responseReason is required to deny").into_response();
            };
            (
                "denyRefundRequest",
                format!(
                    "mutation SeedDeny($id: ID!, $r: String!) {{ denyRefundRequest(id: $id, responseReason: $r) {{ ...SeedRefund }} }} {FIELDS}"
                ),
                json!({ "id": id.to_string(), "r": reason }),
                format!("/api/v2/refunds/{id}/deny"),
            )
        }
        Decision::Cancel => {
            let map = try_api!(object(&body, &["reason"]));
            (
                "cancelRefundRequest",
                format!(
                    "mutation SeedCancel($id: ID!, $r: String) {{ cancelRefundRequest(id: $id, reason: $r) {{ ...SeedRefund }} }} {FIELDS}"
                ),
                json!({ "id": id.to_string(), "r": try_api!(text(&map, "reason")) }),
                format!("/api/v2/refunds/{id}/cancel"),
            )
        }
    };
    respond(state, &headers, caller, &path, field, query, variables).await
}

/// Body of `POST /api/v2/refunds`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, reason = "documentation only: the handler reads the JSON itself to name bad fields")]
pub struct CreateRefundBody {
    #[serde(rename = "orderId")]
    pub order_id: i64,
    pub reason: String,
    /// Major units of the order's currency.
    #[schema(example = 500.0)]
    pub amount: f64,
}

/// Body of the decision paths (every field optional; deny needs `responseReason`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct DecideBody {
    #[serde(rename = "responseReason")]
    pub response_reason: Option<String>,
    /// approve only: refund to the buyer's balance instead of the provider.
    #[serde(rename = "creditBalance")]
    pub credit_balance: Option<bool>,
    /// cancel only.
    pub reason: Option<String>,
}
