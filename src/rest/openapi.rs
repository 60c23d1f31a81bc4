//! The OpenAPI 3 document of the REST layer, generated from the handlers' annotations and
//! the response types they serialise. Served at `GET /api/v1/openapi.json`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::http::HttpState;

use super::admin::shape::{RestItem, RestOrder, RestPagination, RestPayment, RestRefund, RestUser};

/// `{"order": ...}`
#[derive(Serialize, ToSchema)]
pub struct OrderResponse {
    pub order: RestOrder,
}

/// `{"orders": [...], "pagination": {...}}`
#[derive(Serialize, ToSchema)]
pub struct OrderListResponse {
    pub orders: Vec<RestOrder>,
    pub pagination: RestPagination,
}

/// Every error: the code of the GraphQL error and a message naming what was wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "BAD_USER_INPUT")]
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code, reason = "documentation only: the codes a client may see")]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    IdempotencyConflict,
    InsufficientBalance,
    ProviderError,
    RateLimited,
    ServiceUnavailable,
    Internal,
}

/// The errors every order mutation may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "documentation only")]
pub enum MutationErrors {
    /// Bad input; the message names the field.
    #[response(status = 400)]
    BadInput(ErrorBody),
    /// No valid API key (or, on the provider path, signature).
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The key's role may not do this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The order's state forbids it, or an Idempotency-Key was reused for another request.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The API key made more requests than its rate allows; retry after `Retry-After` seconds.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    RateLimited(ErrorBody),
    /// The database is unreachable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The errors every order read may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "documentation only")]
pub enum ReadErrors {
    /// Bad input; the message names the field.
    #[response(status = 400)]
    BadInput(ErrorBody),
    /// No valid API key.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The key's role may not do this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The API key made more requests than its rate allows; retry after `Retry-After` seconds.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    RateLimited(ErrorBody),
    /// The database is unreachable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Query parameters of the order list. `0` or absent means "any" for the codes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "documentation only: the handler reads the raw query string")]
pub struct ListParams {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1_000_000, default = 1)]
    page: Option<i64>,
    /// Page size, 1 to 100 (outside that range is a 400, never a clamp).
    #[param(minimum = 1, maximum = 100, default = 20)]
    per_page: Option<i64>,
    /// Order status code: 1 PENDING, 2 COMPLETED, 3 CANCELLED, 4 REFUNDED.
    #[param(minimum = 0, maximum = 4)]
    status: Option<i64>,
    /// Payment method, exact (`card`, `bank_transfer`, ...).
    payment_method: Option<String>,
    /// Payment status code: 1 UNPAID, 2 PROCESSING, 3 PAID, 4 FAILED, 5 PARTIALLY_REFUNDED, 6 REFUNDED.
    #[param(minimum = 0, maximum = 6)]
    payment_status: Option<i64>,
    /// Case-insensitive prefix of the order number.
    number: Option<String>,
    /// Sort field.
    #[param(inline)]
    sort: Option<SortField>,
    /// Sort direction.
    #[param(inline)]
    direction: Option<Direction>,
    /// Only this user's orders.
    #[param(minimum = 0)]
    user_id: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code, reason = "documentation only")]
pub enum SortField {
    Id,
    Number,
    Status,
    TotalCents,
    CreatedAt,
    UpdatedAt,
    PaidAt,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code, reason = "documentation only")]
pub enum Direction {
    Asc,
    Desc,
}

/// Body of `cancel`. Timestamps are unix seconds; `0` or absent means now.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documentation only: the handler reads JSON or form fields")]
pub struct CancelBody {
    #[schema(max_length = 500)]
    reason: Option<String>,
    #[schema(minimum = 0)]
    cancelled_at: Option<i64>,
}

/// Body of `pay`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct PayBody {
    /// A lower-case word (`bank_transfer`); `balance` with `charge_balance`.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    payment_method: Option<String>,
    #[schema(minimum = 0)]
    paid_at: Option<i64>,
    note: Option<String>,
    reference: Option<String>,
    /// Pay from the user's balance.
    charge_balance: Option<bool>,
}

/// Body of `refund`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct RefundBody {
    /// More than 0 and at most what is left to refund.
    #[schema(minimum = 1)]
    amount_cents: i64,
    reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    #[schema(minimum = 0)]
    refund_at: Option<i64>,
    /// Credit the user's balance instead of refunding through the provider.
    credit_balance: Option<bool>,
}

/// Body of a payment callback. `status`: 1 PENDING, 2 SUCCEEDED, 3 FAILED, 4 CANCELLED.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct CallbackBody {
    #[schema(minimum = 1)]
    order_id: i64,
    #[schema(minimum = 1)]
    payment_id: i64,
    #[schema(minimum = 1, maximum = 4)]
    status: i64,
    reference: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    #[schema(minimum = 0)]
    paid_at: Option<i64>,
    /// With status 2: when the money settled (Unix seconds), with `settled_amount_cents`.
    #[schema(minimum = 0)]
    settled_at: Option<i64>,
    /// Net of the provider's fees; at most the payment's amount.
    #[schema(minimum = 0)]
    settled_amount_cents: Option<i64>,
}

/// Body of `reconcile`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct ReconcileBody {
    #[schema(minimum = 1)]
    order_id: i64,
    #[schema(minimum = 1)]
    payment_id: i64,
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        // Seed 001 sends the key alone: `Authorization: <key>`.
        components.add_security_scheme(
            "bare_key",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Authorization",
                    "The API key alone, without a scheme (seed 001's form); Bearer works too",
                ),
            )),
        );
        // The provider's callback carries no key: it is signed with a shared secret.
        components.add_security_scheme(
            "callback_signature",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Billing-Signature",
                    "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\"> with a callback secret; \
                     a signature is accepted once, within its time window",
                ),
            )),
        );
    }
}

/// The document as served: its `servers` entry is this deployment's public URL.
pub fn document_for(public_base_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![
        utoipa::openapi::ServerBuilder::new()
            .url(public_base_url)
            .description(Some("This deployment (PUBLIC_BASE_URL)"))
            .build(),
    ]);
    doc
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Billing API — REST faces", description = "The legacy admin REST API (seed 000), the merchants' payment-request API (seed 001), payments (seed 003) and refund requests (seed 004). Every path runs a GraphQL operation of the same service in process."),
    paths(
        super::admin::orders::list,
        super::admin::orders::detail,
        super::admin::mutations::cancel,
        super::admin::mutations::pay,
        super::admin::mutations::refund,
        super::admin::mutations::admin_callback,
        super::admin::mutations::reconcile,
        super::admin::mutations::provider_callback,
        super::store::handlers::create,
        super::store::handlers::update,
        super::store::handlers::list,
        super::store::handlers::detail,
        super::refunds::handlers::list,
        super::refunds::handlers::create,
        super::refunds::handlers::approve,
        super::refunds::handlers::deny,
        super::refunds::handlers::cancel,
        super::payments::handlers::list,
        super::payments::handlers::detail,
        super::payments::handlers::create,
        super::payments::handlers::update,
    ),
    components(schemas(
        OrderResponse, OrderListResponse, ErrorBody, ErrorCode, RestOrder, RestItem, RestRefund, RestPayment,
        RestUser, RestPagination, CancelBody, PayBody, RefundBody, CallbackBody, ReconcileBody,
        super::store::shape::SeedOrder, super::store::shape::SeedStore, super::store::shape::SeedMerchant,
        super::store::error::StoreErrorBody, super::store::error::FieldError,
        super::refunds::handlers::SeedRefund, super::refunds::handlers::SeedRefundResponse,
        super::refunds::handlers::SeedRefundList, super::refunds::handlers::CreateRefundBody,
        super::refunds::handlers::DecideBody,
        super::payments::shape::SeedPayment, super::payments::shape::SeedAdditional,
        super::payments::shape::SeedAddress, super::payments::handlers::CreatePaymentBody,
        super::payments::handlers::UpdatePaymentBody
    )),
    modifiers(&BearerKey),
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document(State(state): State<HttpState>) -> Json<utoipa::openapi::OpenApi> {
    Json(document_for(&state.app.config().public_base_url))
}
