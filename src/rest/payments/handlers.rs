//! `GET /api/payments`, `GET /api/payments/{payment_id}`, `POST /api/payments` and
//! `PUT /api/payments/{payment_id}`. The path id is the payment's six-character human id.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::shape::{GqlPayment, PAYMENT_FIELDS, SeedPayment, service_method, shape};
use crate::domain::Caller;
use crate::domain::payments::state::Seed003Status;
use crate::http::auth::authenticate;
use crate::http::{HttpState, idempotency};
use crate::money::Currency;
use crate::rest::ApiError;
use crate::rest::body::{object, text, try_api};
use crate::rest::exec::{decode_field, run};
use crate::rest::openapi::ErrorBody;
use crate::rest::params::QueryParams;

/// Page size when none is asked (seed 002's).
pub const DEFAULT_SIZE: i64 = 10;

/// The largest amount bound a list takes, in minor units (amounts are exact JSON numbers).
const MAX_AMOUNT_MINOR: u64 = 1_000_000_000_000_000;

/// A payment's six-character id as a client wrote it; anything else is a 400 naming
/// `payment_id`.
fn human_id(raw: &str) -> Result<&str, ApiError> {
    let human = raw.trim();
    if human.len() != 6 || !human.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_input(
            "payment_id must be a payment's six-character id (letters and digits, such as 7KQ2MX)",
        ));
    }
    Ok(human)
}

/// An ISO 8601 date-time; without an offset it is UTC (the seed writes
/// `2020-01-01T00:00:00`), and a bare date is its midnight, UTC.
fn datetime(name: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let in_range = |t: DateTime<Utc>| (1..=9999).contains(&chrono::Datelike::year(&t));
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .or_else(|_| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        });
    parsed.ok().filter(|t| in_range(*t)).ok_or_else(|| {
        ApiError::bad_input(format!(
            "{name} must be an ISO 8601 date-time between the years 1 and 9999, such as 2020-01-01T00:00:00 (UTC when no offset is given)"
        ))
    })
}

/// Payments you may see, newest first unless `sort` says otherwise.
#[utoipa::path(
    get, path = "/api/payments", operation_id = "listPayments", tag = "payments (seed 003)",
    params(
        ("payment_id" = Option<String>, Query, description = "Exactly this payment (its six-character id)"),
        ("payment_method" = Option<String>, Query, description = "credit_card, mbway, or another method word"),
        ("status" = Option<String>, Query, description = "success, error, settled or pending (pending: under way, or reserved and not captured)"),
        ("amount_gte" = Option<f64>, Query, description = "Major units of `currency` (required with it)"),
        ("amount_lte" = Option<f64>, Query, description = "Major units of `currency` (required with it)"),
        ("currency" = Option<String>, Query, description = "ISO 4217; required with an amount bound"),
        ("created_at_gte" = Option<String>, Query, description = "ISO 8601; UTC without an offset"),
        ("created_at_lte" = Option<String>, Query, description = "ISO 8601; UTC without an offset"),
        ("settled_at_gte" = Option<String>, Query, description = "ISO 8601; UTC without an offset"),
        ("settled_at_lte" = Option<String>, Query, description = "ISO 8601; UTC without an offset"),
        ("sort" = Option<String>, Query, description = "created_at, amount, paid_at or settled_at; a leading - for descending (default -created_at)"),
        ("page" = Option<i64>, Query, minimum = 0, description = "From 0"),
        ("size" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Default 10"),
    ),
    responses(
        (status = 200, description = "The page, as a JSON array", body = [SeedPayment]),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn list(State(state): State<HttpState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let params = try_api!(QueryParams::parse(raw.as_deref()));
    let (filter, sort, direction, page, size) = try_api!(list_params(&params));
    let query = format!(
        "query SeedPayments($filter: PaymentFilter, $sort: PaymentSortField, $direction: SortDirection, $page: Int, $perPage: Int) {{ payments(filter: $filter, sort: $sort, direction: $direction, page: $page, perPage: $perPage) {{ nodes {{ ...SeedPayment }} }} }} {PAYMENT_FIELDS}"
    );
    let variables =
        json!({ "filter": filter, "sort": sort, "direction": direction, "page": page + 1, "perPage": size });
    let data = try_api!(run(&state, caller, query, variables).await);
    let page: Value = try_api!(decode_field(data, "payments"));
    let nodes: Vec<GqlPayment> = try_api!(
        serde_json::from_value(page["nodes"].clone()).map_err(|_| ApiError::new("INTERNAL", "internal error"))
    );
    let data = try_api!(nodes.into_iter().map(shape).collect::<Result<Vec<_>, _>>());
    (StatusCode::OK, axum::Json(data)).into_response()
}

type ListParams = (Map<String, Value>, &'static str, &'static str, i64, i64);

/// The parameters `GET /api/payments` takes.
const LIST_PARAMS: &[&str] = &[
    "payment_id",
    "payment_method",
    "status",
    "amount_gte",
    "amount_lte",
    "currency",
    "created_at_gte",
    "created_at_lte",
    "settled_at_gte",
    "settled_at_lte",
    "sort",
    "page",
    "size",
];

fn list_params(params: &QueryParams) -> Result<ListParams, ApiError> {
    if let Some(unknown) = params.unknown(LIST_PARAMS) {
        return Err(ApiError::bad_input(format!(
            "{} is not a parameter of this list (it takes {})",
            crate::rest::body::shown_key(unknown),
            LIST_PARAMS.join(", ")
        )));
    }
    let page = params.int("page", 0, 0..=crate::domain::paging::MAX_PAGE - 1)?;
    let size = params.int("size", DEFAULT_SIZE, 1..=crate::domain::paging::MAX_PER_PAGE)?;
    let mut filter = Map::new();
    if let Some(id) = params.text("payment_id") {
        filter.insert("humanId".into(), json!(human_id(id)?));
    }
    if let Some(method) = params.text("payment_method") {
        filter.insert("paymentMethod".into(), json!(service_method(method)));
    }
    if let Some(word) = params.text("status") {
        let status = Seed003Status::parse(word).ok_or_else(|| {
            ApiError::bad_input(format!(
                "status must be one of success, error, settled or pending (got {:?})",
                crate::rest::body::shown_key(word)
            ))
        })?;
        let (statuses, settled, arrived) = status.selects();
        if !statuses.is_empty() {
            filter.insert("statusIn".into(), json!(statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
        }
        filter.insert("settled".into(), json!(settled));
        if let Some(arrived) = arrived {
            filter.insert("moneyArrived".into(), json!(arrived));
        }
    }
    let currency = params.text("currency").map(|c| Currency::parse("currency", c)).transpose()?;
    for (name, key) in [("amount_gte", "amountGte"), ("amount_lte", "amountLte")] {
        if let Some(raw) = params.text(name) {
            let currency = currency.ok_or_else(|| {
                ApiError::bad_input(format!(
                    "{name} is in major units of one currency: give currency too (an ISO 4217 code such as USD)"
                ))
            })?;
            let minor = currency.to_minor(name, raw)?;
            if minor.unsigned_abs() > MAX_AMOUNT_MINOR {
                return Err(ApiError::bad_input(format!("{name} is larger than any amount the service holds")));
            }
            filter.insert(key.into(), json!(minor));
        }
    }
    if let Some(currency) = currency {
        filter.insert("currency".into(), json!(currency.code()));
    }
    for (name, key) in [
        ("created_at_gte", "createdAtGte"),
        ("created_at_lte", "createdAtLte"),
        ("settled_at_gte", "settledAtGte"),
        ("settled_at_lte", "settledAtLte"),
    ] {
        if let Some(raw) = params.text(name) {
            filter.insert(key.into(), json!(datetime(name, raw)?.to_rfc3339()));
        }
    }
    let sort = params.text("sort").unwrap_or("-created_at");
    let (descending, field) = match sort.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, sort),
    };
    let field = match field {
        "created_at" => "CREATED_AT",
        "amount" => "AMOUNT",
        "paid_at" => "PAID_AT",
        "settled_at" => "SETTLED_AT",
        _ => {
            return Err(ApiError::bad_input(format!(
                "sort must be created_at, amount, paid_at or settled_at, with a leading - for descending (got {:?})",
                crate::rest::body::shown_key(sort)
            )));
        }
    };
    Ok((filter, field, if descending { "DESC" } else { "ASC" }, page, size))
}

/// The payment with this human id, if you may see it.
async fn find(state: &HttpState, caller: &Caller, raw: &str) -> Result<GqlPayment, ApiError> {
    let human = human_id(raw)?;
    let not_found = || ApiError::new("NOT_FOUND", format!("payment {human} not found"));
    let query = format!(
        "query SeedPayment($h: String) {{ payments(filter: {{ humanId: $h }}, perPage: 1) {{ nodes {{ ...SeedPayment }} }} }} {PAYMENT_FIELDS}"
    );
    let data = run(state, caller.clone(), query, json!({ "h": human })).await?;
    let page: Value = decode_field(data, "payments")?;
    let mut nodes: Vec<GqlPayment> =
        serde_json::from_value(page["nodes"].clone()).map_err(|_| ApiError::new("INTERNAL", "internal error"))?;
    nodes.pop().ok_or_else(not_found)
}

/// One payment by its six-character id; another user's is 404.
#[utoipa::path(
    get, path = "/api/payments/{payment_id}", operation_id = "getPayment", tag = "payments (seed 003)",
    params(("payment_id" = String, Path, description = "The six-character payment id")),
    responses(
        (status = 200, description = "The payment", body = SeedPayment),
        (status = 400, description = "payment_id is not a six-character id", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such payment (or not yours)", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn detail(State(state): State<HttpState>, headers: HeaderMap, Path(raw): Path<String>) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let payment = try_api!(find(&state, &caller, &raw).await);
    (StatusCode::OK, axum::Json(try_api!(shape(payment)))).into_response()
}

/// A billing address: seed 002's object (our address parts) or seed 003's string (one line).
fn address(value: &Value) -> Result<Value, ApiError> {
    const PARTS: [(&str, &str); 7] = [
        ("name", "name"),
        ("line1", "line1"),
        ("line2", "line2"),
        ("city", "city"),
        ("state", "state"),
        ("postal_code", "postalCode"),
        ("country", "country"),
    ];
    match value {
        Value::String(line) => Ok(json!({ "line1": line })),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, part) in map {
                let Some((_, name)) = PARTS.iter().find(|(seed, _)| seed == key) else {
                    return Err(ApiError::bad_input(format!(
                        "billing_address.{} is not a part of an address (name, line1, line2, city, state, postal_code, country)",
                        crate::rest::body::shown_key(key)
                    )));
                };
                match part {
                    Value::String(_) | Value::Null => out.insert((*name).to_owned(), part.clone()),
                    _ => return Err(ApiError::bad_input(format!("billing_address.{key} must be a string"))),
                };
            }
            Ok(Value::Object(out))
        }
        _ => Err(ApiError::bad_input("billing_address must be an object (or one line of text)")),
    }
}

/// A payment date: a Unix timestamp in seconds (seed 002) or an ISO 8601 string.
fn payment_date(value: &Value) -> Result<Value, ApiError> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
            .map(|t| json!(t.to_rfc3339()))
            .ok_or_else(|| ApiError::bad_input("payment_date must be a Unix timestamp in whole seconds")),
        Value::String(s) => Ok(json!(datetime("payment_date", s)?.to_rfc3339())),
        _ => Err(ApiError::bad_input("payment_date must be a Unix timestamp or an ISO 8601 date-time")),
    }
}

/// Card fields of `additional_params` (seed 003), as the GraphQL `CardInput`. Errors name
/// the field and never repeat the value.
fn card(params: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    // Expiry alone (as this face shows a card) is not a card; a number or a code is.
    let has_card = ["number", "cvv"].iter().any(|k| params.get(*k).is_some_and(|v| !v.is_null()));
    if !has_card {
        return Ok(None);
    }
    let string = |key: &str| -> Result<String, ApiError> {
        match params.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if key != "number" && key != "cvv" => Ok(n.to_string()),
            Some(_) => Err(ApiError::bad_input(format!("additional_params.{key} must be a string"))),
            None => Err(ApiError::bad_input(format!("additional_params.{key} is required with a card"))),
        }
    };
    let int = |key: &str| -> Result<i64, ApiError> {
        string(key)?
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::bad_input(format!("additional_params.{key} must be a number such as 05 or 2028")))
    };
    let name = match params.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_input("additional_params.name must be a string")),
    };
    Ok(Some(json!({
        "number": string("number")?,
        "cvc": string("cvv")?,
        "expMonth": int("expiration_month")?,
        "expYear": int("expiration_year")?,
        "name": name,
    })))
}

const CREATE_FIELDS: &[&str] = &[
    "order_id",
    "subject",
    "amount",
    "currency",
    "payment_method",
    "description",
    "billing_address",
    "metadata",
    "active",
    "payment_date",
    "additional_params",
];

const ADDITIONAL_FIELDS: &[&str] =
    &["payment", "amount", "method", "number", "name", "expiration_month", "expiration_year", "cvv", "brand", "last4"];

/// Starts a payment of an order (`order_id`, or seed 002's `subject`). `amount`, if given,
/// must be the order's total in major units. A card in `additional_params` goes to the
/// provider only; the answer shows its brand and last four digits.
#[utoipa::path(
    post, path = "/api/payments", operation_id = "createPayment", tag = "payments (seed 003)",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = CreatePaymentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new payment", body = SeedPayment),
        (status = 400, description = "A bad field, named (never echoing card data)", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "A key that may not pay this order", body = ErrorBody),
        (status = 404, description = "No such order (or not yours)", body = ErrorBody),
        (status = 409, description = "The order cannot take a payment now", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The provider refused or failed", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn create(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let map = try_api!(object(&body, CREATE_FIELDS));
    let order_id = match (map.get("order_id"), map.get("subject")) {
        (Some(v), None) | (None, Some(v)) => match v {
            Value::Number(n) => n.as_i64().filter(|v| *v > 0),
            Value::String(s) => s.trim().parse::<i64>().ok().filter(|v| *v > 0),
            _ => None,
        },
        _ => None,
    };
    let Some(order_id) = order_id else {
        return ApiError::bad_input("order_id (or subject) is required: the id of the order to pay").into_response();
    };
    let additional = match map.get("additional_params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return ApiError::bad_input("additional_params must be an object").into_response(),
    };
    if let Some(unknown) = additional.keys().find(|k| !ADDITIONAL_FIELDS.contains(&k.as_str())) {
        return ApiError::bad_input(format!(
            "additional_params.{} is not a field of this request",
            crate::rest::body::shown_key(unknown)
        ))
        .into_response();
    }
    let card = try_api!(card(&additional));
    let method = try_api!(text(&map, "payment_method")).map(|m| service_method(&m).to_owned());
    if card.is_some() && method.as_deref().is_some_and(|m| m != "card") {
        return ApiError::bad_input("additional_params holds a card, so payment_method must be credit_card")
            .into_response();
    }
    // The order's total and currency: the amount given must be it (a payment pays the order).
    let query = "query SeedPayOrder($id: ID!) { order(id: $id) { totalCents currency } }".to_owned();
    let data = try_api!(run(&state, caller.clone(), query, json!({ "id": order_id.to_string() })).await);
    let order: Option<Value> = try_api!(decode_field(data, "order"));
    let Some(order) = order else {
        return ApiError::new("NOT_FOUND", format!("order {order_id} not found")).into_response();
    };
    let code = order["currency"].as_str().unwrap_or_default().to_owned();
    let currency = try_api!(Currency::of_stored(&code));
    let total = order["totalCents"].as_i64().unwrap_or_default();
    if let Some(given) = try_api!(text(&map, "currency"))
        && given != code
    {
        return ApiError::bad_input(format!("currency must be the order's ({code})")).into_response();
    }
    for (field, value) in [("amount", map.get("amount")), ("additional_params.amount", additional.get("amount"))] {
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                let cents = try_api!(currency.json_to_minor(field, n));
                if cents != total {
                    return ApiError::bad_input(format!(
                        "{field} must be the order's total, {} {code}: a payment pays its whole order",
                        currency.to_major(total)
                    ))
                    .into_response();
                }
            }
            Some(_) => return ApiError::bad_input(format!("{field} must be a number")).into_response(),
        }
    }
    let mut input = Map::new();
    input.insert("orderId".into(), json!(order_id.to_string()));
    if let Some(method) = method.or_else(|| card.as_ref().map(|_| "card".to_owned())) {
        input.insert("paymentMethod".into(), json!(method));
    }
    if let Some(description) = try_api!(text(&map, "description")) {
        input.insert("description".into(), json!(description));
    }
    if let Some(value) = map.get("billing_address").filter(|v| !v.is_null()) {
        input.insert("billingAddress".into(), try_api!(address(value)));
    }
    if let Some(metadata) = map.get("metadata").filter(|v| !v.is_null()) {
        input.insert("metadata".into(), metadata.clone());
    }
    match map.get("active") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => {
            input.insert("active".into(), json!(b));
        }
        Some(_) => return ApiError::bad_input("active must be true or false").into_response(),
    }
    if let Some(value) = map.get("payment_date").filter(|v| !v.is_null()) {
        input.insert("paymentDate".into(), try_api!(payment_date(value)));
    }
    // What makes two creates "the same" for Idempotency-Key: everything but the card's
    // number and security code (its last four digits and expiry stand for it).
    let mut same = input.clone();
    if let Some(card) = &card {
        let number = card["number"].as_str().unwrap_or_default();
        let last4 = number.get(number.len().saturating_sub(4)..).unwrap_or_default();
        same.insert("card".into(), json!({ "last4": last4, "expMonth": card["expMonth"], "expYear": card["expYear"] }));
        input.insert("card".into(), card.clone());
    }
    let query = format!(
        "mutation SeedCreatePayment($input: CreatePaymentInput!) {{ createPayment(input: $input) {{ ...SeedPayment }} }} {PAYMENT_FIELDS}"
    );
    let canonical = idempotency::canonical_json(&Value::Object(same));
    let variables = json!({ "input": input });
    respond(state, &headers, caller, &["payments", "create", &canonical], "createPayment", query, variables).await
}

const UPDATE_FIELDS: &[&str] =
    &["active", "payment_method", "billing_address", "payment_date", "amount", "additional_params"];

/// Changes `active`, `payment_method` (manual payments), `billing_address` or
/// `payment_date` while the payment has not succeeded (afterwards 409). Seed 003 sends the
/// whole payment back: an unchanged `amount` and `additional_params` are accepted; a
/// different amount or a card is a 400 (neither can change).
#[utoipa::path(
    put, path = "/api/payments/{payment_id}", operation_id = "updatePayment", tag = "payments (seed 003)",
    params(("payment_id" = String, Path, description = "The six-character payment id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a repeated request")),
    request_body(content = UpdatePaymentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The payment", body = SeedPayment),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "A key that may not change it", body = ErrorBody),
        (status = 404, description = "No such payment (or not yours)", body = ErrorBody),
        (status = 409, description = "The payment succeeded; it can no longer change", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn update(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    let caller = try_api!(authenticate(&state.app, &headers).await);
    let map = try_api!(object(&body, UPDATE_FIELDS));
    let payment = try_api!(find(&state, &caller, &raw).await);
    let currency = try_api!(Currency::of_stored(&payment.currency));
    let payment_id = payment.id.clone();
    let current = try_api!(shape(payment));
    if let Some(amount) = map.get("amount").filter(|v| !v.is_null()) {
        let Value::Number(n) = amount else {
            return ApiError::bad_input("amount must be a number").into_response();
        };
        let given = try_api!(currency.json_to_minor("amount", n));
        let now = try_api!(current.amount.as_number().map(|m| currency.json_to_minor("amount", m)).transpose());
        if Some(given) != now {
            return ApiError::bad_input("amount cannot change: a payment pays its order's total").into_response();
        }
    }
    match map.get("additional_params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(additional)) => {
            if let Some(unknown) = additional.keys().find(|k| !ADDITIONAL_FIELDS.contains(&k.as_str())) {
                return ApiError::bad_input(format!(
                    "additional_params.{} is not a field of this request",
                    crate::rest::body::shown_key(unknown)
                ))
                .into_response();
            }
            if try_api!(card(additional)).is_some() {
                return ApiError::bad_input("additional_params: a payment's card cannot change; start a new payment")
                    .into_response();
            }
        }
        Some(_) => return ApiError::bad_input("additional_params must be an object").into_response(),
    }
    let mut input = Map::new();
    input.insert("id".into(), json!(payment_id));
    match map.get("active") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => {
            input.insert("active".into(), json!(b));
        }
        Some(_) => return ApiError::bad_input("active must be true or false").into_response(),
    }
    if let Some(method) = try_api!(text(&map, "payment_method")) {
        input.insert("paymentMethod".into(), json!(service_method(&method)));
    }
    if let Some(value) = map.get("billing_address") {
        let value = if value.is_null() { Value::Null } else { try_api!(address(value)) };
        input.insert("billingAddress".into(), value);
    }
    if let Some(value) = map.get("payment_date") {
        input.insert("paymentDate".into(), try_api!(payment_date(value)));
    }
    let query = format!(
        "mutation SeedUpdatePayment($input: UpdatePaymentInput!) {{ updatePayment(input: $input) {{ ...SeedPayment }} }} {PAYMENT_FIELDS}"
    );
    let canonical = idempotency::canonical_json(&Value::Object(input.clone()));
    let variables = json!({ "input": input });
    let path = format!("/api/payments/{}", current.payment_id);
    respond(state, &headers, caller, &["payments", &path, &canonical], "updatePayment", query, variables).await
}

async fn respond(
    state: HttpState,
    headers: &HeaderMap,
    caller: Caller,
    fingerprint: &[&str],
    field: &'static str,
    query: String,
    variables: Value,
) -> Response {
    let act = |caller| {
        let state = state.clone();
        async move {
            let result: Result<String, ApiError> = async {
                let data = run(&state, caller, query, variables).await?;
                let payment = shape(decode_field::<GqlPayment>(data, field)?)?;
                serde_json::to_string(&payment).map_err(|_| ApiError::new("INTERNAL", "internal error"))
            }
            .await;
            crate::rest::once::outcome(result).await
        }
    };
    crate::rest::once::respond(&state, headers, caller, fingerprint, act, |error| ApiError::from(error).into_response())
        .await
}

/// Body of `POST /api/payments`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, reason = "documentation only: the handler reads the JSON itself to name bad fields")]
pub struct CreatePaymentBody {
    /// The order to pay (or `subject`, seed 002's name for it).
    pub order_id: i64,
    /// Major units; if given, the order's total.
    #[schema(example = 50.0)]
    pub amount: Option<f64>,
    /// `credit_card`, `mbway`, or another method word; default the order's.
    pub payment_method: Option<String>,
    pub description: Option<String>,
    /// An address object (name, line1, line2, city, state, postal_code, country) or one line.
    #[schema(value_type = Option<Object>)]
    pub billing_address: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub active: Option<bool>,
    /// A Unix timestamp or ISO 8601: stored and shown, never acted on.
    #[schema(value_type = Option<String>)]
    pub payment_date: Option<Value>,
    /// Seed 003's card: number, name, expiration_month, expiration_year, cvv. Sent to the
    /// provider only (a provider that takes cards); never stored or shown back.
    #[schema(value_type = Option<Object>)]
    pub additional_params: Option<Value>,
}

/// Body of `PUT /api/payments/{payment_id}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct UpdatePaymentBody {
    pub active: Option<bool>,
    pub payment_method: Option<String>,
    /// An address object or one line; null clears it.
    #[schema(value_type = Option<Object>)]
    pub billing_address: Option<Value>,
    /// A Unix timestamp or ISO 8601; null clears it.
    #[schema(value_type = Option<String>)]
    pub payment_date: Option<Value>,
    /// Accepted when unchanged (seed 003 sends the whole payment back).
    pub amount: Option<f64>,
    #[schema(value_type = Option<Object>)]
    pub additional_params: Option<Value>,
}
