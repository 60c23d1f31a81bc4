//! `POST /api/v1/order`, `PUT /api/v1/store/orders/{id}`, `GET /api/v1/store/orders` and
//! `GET /api/v1/store/orders/{id}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::{StoreError, StoreErrorBody};
use super::shape::{GqlStoreOrder, ORDER_FIELDS, SeedOrder};
use crate::domain::Caller;
use crate::domain::paging::{MAX_PAGE, MAX_PER_PAGE};
use crate::http::auth::authenticate;
use crate::http::{HttpState, idempotency};
use crate::money::Currency;
use crate::rest::exec::{decode_field, run};
use crate::rest::params::QueryParams;

/// The page size of `GET /api/v1/store/orders` when none is asked (the seed's).
pub const DEFAULT_PER_PAGE: i64 = 30;

/// The fields `POST /api/v1/order` takes (the seed's, plus `store_id`, `pay_method` and
/// `draft`); any other is refused.
const CREATE_FIELDS: &[&str] = &[
    "pay_amount",
    "currency",
    "description",
    "customer_id",
    "customer_order_id",
    "success_url",
    "callback_url",
    "cancel_url",
    "user_id",
    "consumer_email",
    "consumer_phone",
    "selected_payment_type",
    "selected_installment_term",
    "store_id",
    "pay_method",
    "draft",
];

const UPDATE_FIELDS: &[&str] = &["pay_amount", "description", "date_payment"];

/// The JSON object of a body; anything else is code 103.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, StoreError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| StoreError::not_json(format!("the body must be a JSON object: {e}")))?;
    let Value::Object(map) = value else {
        return Err(StoreError::not_json("the body must be a JSON object"));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(StoreError::field(unknown, format!("{unknown} is not a field of this request")));
    }
    Ok(map)
}

/// A string field (null or absent: `None`).
fn text(map: &Map<String, Value>, field: &str) -> Result<Option<String>, StoreError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(StoreError::field(field, format!("{field} must be a string or null"))),
    }
}

/// `pay_amount`: a JSON number in major units, converted exactly with the currency's
/// ISO 4217 exponent; a value that does not convert exactly is refused.
fn amount(map: &Map<String, Value>, currency: Currency) -> Result<Option<i64>, StoreError> {
    let number = match map.get("pay_amount") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.clone(),
        Some(_) => return Err(StoreError::field("pay_amount", "pay_amount must be a number")),
    };
    let minor =
        currency.json_to_minor("pay_amount", &number).map_err(|e| StoreError::field("pay_amount", e.to_string()))?;
    if !(1..=crate::domain::users::MAX_AMOUNT_CENTS).contains(&minor) {
        return Err(StoreError::field(
            "pay_amount",
            format!(
                "pay_amount must be more than 0 and at most {} {}",
                currency.to_major(crate::domain::users::MAX_AMOUNT_CENTS),
                currency.code()
            ),
        ));
    }
    Ok(Some(minor))
}

/// Runs a mutation that returns one order, shaped as the seed's order.
async fn order_mutation(
    state: HttpState,
    caller: Caller,
    field: &'static str,
    query: String,
    variables: Value,
) -> idempotency::Outcome {
    let result: Result<String, StoreError> = async {
        let data = run(&state, caller, query, variables).await?;
        let order = SeedOrder::try_from(decode_field::<GqlStoreOrder>(data, field)?)?;
        serde_json::to_string(&order).map_err(|e| StoreError::from(crate::error::AppError::internal(e)))
    }
    .await;
    match result {
        Ok(body) => idempotency::Outcome::http(StatusCode::OK, body),
        Err(error) => {
            let mut outcome = idempotency::Outcome::http(error.status, error.body());
            outcome.retryable &= !error.committed;
            outcome
        }
    }
}

/// Runs the mutation once per Idempotency-Key, when the client sent one.
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
    let act = |caller| order_mutation(state.clone(), caller, field, query, variables);
    crate::rest::once::respond(&state, headers, caller, &["store", path, &canonical], act, |error| {
        StoreError::from(error).into_response()
    })
    .await
}

macro_rules! try_store {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(error) => return StoreError::from(error).into_response(),
        }
    };
}

fn path_uuid(raw: &str) -> Result<Uuid, StoreError> {
    raw.trim().parse::<Uuid>().map_err(|_| StoreError::field("id", format!("id must be an order UUID (got {raw:?})")))
}

/// Creates a payment request (an order of the merchant's store).
#[utoipa::path(
    post, path = "/api/v1/order", operation_id = "createStoreOrder", tag = "store orders (seed 001)",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = CreateOrderBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new order", body = SeedOrder),
        (status = 400, description = "101 missing amount, 102 a bad field (named in errors), 103 not a JSON object", body = StoreErrorBody),
        (status = 401, description = "No valid key", body = StoreErrorBody),
        (status = 403, description = "Not a merchant or admin key", body = StoreErrorBody),
        (status = 404, description = "No such store", body = StoreErrorBody),
        (status = 409, description = "The merchant has no store, or the Idempotency-Key was used for another request", body = StoreErrorBody),
        (status = 429, description = "Too many requests", body = StoreErrorBody),
    ),
    security(("api_key" = []), ("bare_key" = [])),
)]
pub async fn create(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = try_store!(authenticate(&state.app, &headers).await);
    let map = try_store!(object(&body, CREATE_FIELDS));
    let currency_code = try_store!(text(&map, "currency")).unwrap_or_else(|| "JPY".to_owned());
    let currency = try_store!(
        Currency::parse("currency", currency_code.trim()).map_err(|e| StoreError::field("currency", e.to_string()))
    );
    let Some(amount_cents) = try_store!(amount(&map, currency)) else {
        return StoreError::missing_amount().into_response();
    };
    let term = match map.get("selected_installment_term") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(try_store!(n.as_i64().and_then(|t| i32::try_from(t).ok()).ok_or_else(|| {
            StoreError::field(
                "selected_installment_term",
                "selected_installment_term must be one of 3, 5, 6, 10, 12, 15, 18, 20, 24",
            )
        }))),
        Some(Value::String(s)) => Some(try_store!(s.trim().parse::<i32>().map_err(|_| {
            StoreError::field(
                "selected_installment_term",
                "selected_installment_term must be one of 3, 5, 6, 10, 12, 15, 18, 20, 24",
            )
        }))),
        Some(_) => {
            return StoreError::field(
                "selected_installment_term",
                "selected_installment_term must be a number or a string",
            )
            .into_response();
        }
    };
    let payment_type = try_store!(text(&map, "selected_payment_type"));
    if let Some(t) = &payment_type
        && !["ONE_TIME", "INSTALLMENT", "REVOLVING"].contains(&t.as_str())
    {
        return StoreError::field(
            "selected_payment_type",
            format!("selected_payment_type must be ONE_TIME, INSTALLMENT or REVOLVING (got {t:?})"),
        )
        .into_response();
    }
    let pay_method = try_store!(text(&map, "pay_method"));
    if let Some(m) = &pay_method
        && !["CREDIT_CARD", "CASH", "PAYPAY", "FAMIPAY", "LINEPAY", "APPLEPAY"].contains(&m.as_str())
    {
        return StoreError::field(
            "pay_method",
            "pay_method must be CREDIT_CARD, CASH, PAYPAY, FAMIPAY, LINEPAY or APPLEPAY",
        )
        .into_response();
    }
    let store_id = match try_store!(text(&map, "store_id")) {
        Some(raw) => Some(try_store!(
            raw.trim().parse::<Uuid>().map_err(|_| StoreError::field("store_id", "store_id must be a UUID"))
        )),
        None => None,
    };
    let draft = match map.get("draft") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return StoreError::field("draft", "draft must be true or false").into_response(),
    };
    let mut input = json!({
        "amountCents": amount_cents,
        "currency": currency.code(),
        "description": try_store!(text(&map, "description")),
        "customerId": try_store!(text(&map, "customer_id")),
        "customerOrderId": try_store!(text(&map, "customer_order_id")),
        "successUrl": try_store!(text(&map, "success_url")),
        "cancelUrl": try_store!(text(&map, "cancel_url")),
        "callbackUrl": try_store!(text(&map, "callback_url")),
        "userId": try_store!(text(&map, "user_id")),
        "consumerEmail": try_store!(text(&map, "consumer_email")),
        "consumerPhone": try_store!(text(&map, "consumer_phone")),
        "paymentType": payment_type,
        "installmentTerm": term,
        "payMethod": pay_method,
        "draft": draft,
    });
    if let (Some(store), Value::Object(fields)) = (store_id, &mut input) {
        fields.insert("storeId".into(), json!(store));
    }
    let query = format!(
        "mutation StoreCreate($input: CreateMerchantOrderInput!) {{ createMerchantOrder(input: $input) {{ ...StoreOrder }} }} {ORDER_FIELDS}"
    );
    respond(state, &headers, caller, "/api/v1/order", "createMerchantOrder", query, json!({ "input": input })).await
}

/// Changes the amount, description or payment date of an unpaid order.
#[utoipa::path(
    put, path = "/api/v1/store/orders/{id}", operation_id = "updateStoreOrder", tag = "store orders (seed 001)",
    params(("id" = Uuid, Path, description = "The order's id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = UpdateOrderBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The order after the change", body = SeedOrder),
        (status = 400, description = "102 a bad field (named in errors), 103 not a JSON object", body = StoreErrorBody),
        (status = 401, description = "No valid key", body = StoreErrorBody),
        (status = 404, description = "No such order (or not yours)", body = StoreErrorBody),
        (status = 409, description = "The order is paid or a payment is under way", body = StoreErrorBody),
        (status = 429, description = "Too many requests", body = StoreErrorBody),
    ),
    security(("api_key" = []), ("bare_key" = [])),
)]
pub async fn update(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Response {
    let caller = try_store!(authenticate(&state.app, &headers).await);
    let id = try_store!(path_uuid(&raw_id));
    let map = try_store!(object(&body, UPDATE_FIELDS));
    // The amount's currency is the order's: read it first (a merchant sees only its own).
    let currency = {
        let query = "query StoreCurrency($id: UUID!) { orderByPublicId(id: $id) { currency } }".to_owned();
        let data = try_store!(run(&state, caller.clone(), query, json!({ "id": id })).await);
        let order: Option<Value> = try_store!(decode_field(data, "orderByPublicId"));
        let Some(code) = order.as_ref().and_then(|o| o["currency"].as_str()).map(str::to_owned) else {
            return StoreError::from(crate::error::AppError::not_found(format!("order {id} not found")))
                .into_response();
        };
        try_store!(Currency::of_stored(&code))
    };
    let amount = try_store!(amount(&map, currency));
    let date = match try_store!(text(&map, "date_payment")) {
        Some(raw) => Some(try_store!(chrono::DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
            StoreError::field(
                "date_payment",
                format!("date_payment must be an RFC 3339 time such as 2022-08-13T02:14:41.314+00:00 (got {raw:?})"),
            )
        }))),
        None => None,
    };
    let input = json!({
        "amountCents": amount,
        "description": try_store!(text(&map, "description")),
        "paymentDate": date.map(|d| d.with_timezone(&chrono::Utc)),
    });
    let query = format!(
        "mutation StoreUpdate($id: UUID!, $input: UpdateMerchantOrderInput!) {{ updateMerchantOrder(id: $id, input: $input) {{ ...StoreOrder }} }} {ORDER_FIELDS}"
    );
    let path = format!("/api/v1/store/orders/{id}");
    respond(state, &headers, caller, &path, "updateMerchantOrder", query, json!({ "id": id, "input": input })).await
}

/// The caller's store orders, newest first: `page` from 1, `per_page` default 30, at most 100.
#[utoipa::path(
    get, path = "/api/v1/store/orders", operation_id = "listStoreOrders", tag = "store orders (seed 001)",
    params(
        ("page" = Option<i64>, Query, minimum = 1, description = "From 1"),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Default 30"),
        ("store_id" = Option<Uuid>, Query, description = "Only this store's orders"),
    ),
    responses(
        (status = 200, description = "The orders of the page", body = Vec<SeedOrder>),
        (status = 400, description = "102 a bad parameter (named in errors)", body = StoreErrorBody),
        (status = 401, description = "No valid key", body = StoreErrorBody),
        (status = 429, description = "Too many requests", body = StoreErrorBody),
    ),
    security(("api_key" = []), ("bare_key" = [])),
)]
pub async fn list(State(state): State<HttpState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let caller = try_store!(authenticate(&state.app, &headers).await);
    let params = try_store!(QueryParams::parse(raw.as_deref()));
    let page = try_store!(params.int("page", 1, 1..=MAX_PAGE));
    let per_page = try_store!(params.int("per_page", DEFAULT_PER_PAGE, 1..=MAX_PER_PAGE));
    let mut filter = json!({ "hasStore": true });
    if let Some(store) = params.text("store_id") {
        let store =
            try_store!(store.parse::<Uuid>().map_err(|_| StoreError::field("store_id", "store_id must be a UUID")));
        filter["storeId"] = json!(store);
    }
    let query = format!(
        "query StoreList($filter: OrderFilter, $page: Int, $perPage: Int) {{ orders(filter: $filter, page: $page, perPage: $perPage) {{ nodes {{ ...StoreOrder }} }} }} {ORDER_FIELDS}"
    );
    let data =
        try_store!(run(&state, caller, query, json!({ "filter": filter, "page": page, "perPage": per_page })).await);
    let page: Value = try_store!(decode_field(data, "orders"));
    let nodes: Vec<GqlStoreOrder> = try_store!(serde_json::from_value(page["nodes"].clone()).map_err(|e| {
        tracing::error!(error = %e, "GraphQL answer does not match the store shape");
        StoreError::from(crate::error::AppError::internal(e))
    }));
    let orders = try_store!(nodes.into_iter().map(SeedOrder::try_from).collect::<Result<Vec<_>, _>>());
    (StatusCode::OK, axum::Json(orders)).into_response()
}

/// One order by its id.
#[utoipa::path(
    get, path = "/api/v1/store/orders/{id}", operation_id = "getStoreOrder", tag = "store orders (seed 001)",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = SeedOrder),
        (status = 400, description = "102 the id is not a UUID", body = StoreErrorBody),
        (status = 401, description = "No valid key", body = StoreErrorBody),
        (status = 404, description = "No such order (or not yours)", body = StoreErrorBody),
        (status = 429, description = "Too many requests", body = StoreErrorBody),
    ),
    security(("api_key" = []), ("bare_key" = [])),
)]
pub async fn detail(State(state): State<HttpState>, headers: HeaderMap, Path(raw_id): Path<String>) -> Response {
    let caller = try_store!(authenticate(&state.app, &headers).await);
    let id = try_store!(path_uuid(&raw_id));
    let query =
        format!("query StoreDetail($id: UUID!) {{ orderByPublicId(id: $id) {{ ...StoreOrder }} }} {ORDER_FIELDS}");
    let data = try_store!(run(&state, caller, query, json!({ "id": id })).await);
    let order: Option<GqlStoreOrder> = try_store!(decode_field(data, "orderByPublicId"));
    match order {
        Some(order) => (StatusCode::OK, axum::Json(try_store!(SeedOrder::try_from(order)))).into_response(),
        None => StoreError::from(crate::error::AppError::not_found(format!("order {id} not found"))).into_response(),
    }
}

/// The body of `POST /api/v1/order` (seed 001, plus `store_id`, `pay_method`, `draft`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code, reason = "documentation only: the handler reads the JSON itself to name bad fields")]
pub struct CreateOrderBody {
    /// Major units of `currency`; exact (USD 10.23 is 1023 cents; 10.234 is refused).
    #[schema(example = 1000.0)]
    pub pay_amount: f64,
    /// ISO 4217; JPY when absent.
    pub currency: Option<String>,
    pub description: Option<String>,
    pub customer_id: Option<String>,
    pub customer_order_id: Option<String>,
    pub success_url: Option<String>,
    /// A public http(s) URL; private and loopback addresses are refused.
    pub callback_url: Option<String>,
    pub cancel_url: Option<String>,
    /// The buyer's user id (admin keys only).
    pub user_id: Option<String>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    /// ONE_TIME (default), INSTALLMENT or REVOLVING.
    pub selected_payment_type: Option<String>,
    /// 3, 5, 6, 10, 12, 15, 18, 20 or 24 (as a number or a string); INSTALLMENT only.
    #[schema(value_type = Option<String>)]
    pub selected_installment_term: Option<i32>,
    /// The store; a merchant key may leave it out for its first store.
    pub store_id: Option<Uuid>,
    /// CREDIT_CARD (default), CASH, PAYPAY, FAMIPAY, LINEPAY or APPLEPAY.
    pub pay_method: Option<String>,
    /// Save as TEMPORARY_SAVE instead of opening it for payment.
    pub draft: Option<bool>,
}

/// The body of `PUT /api/v1/store/orders/{id}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct UpdateOrderBody {
    #[schema(example = 1000.0)]
    pub pay_amount: Option<f64>,
    pub description: Option<String>,
    /// RFC 3339.
    pub date_payment: Option<String>,
}
