//! `GET /api/v1/admin/orders` and `GET /api/v1/admin/orders/:id`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ApiError;
use super::exec::{decode_field, run};
use super::openapi::{OrderListResponse, OrderResponse};
use super::params::QueryParams;
use super::shape::{GqlOrder, GqlPageInfo, ORDER_FIELDS, RestOrder, RestPagination};
use crate::domain::paging::{DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE};
use crate::domain::{OrderStatus, PaymentStatus};
use crate::http::HttpState;
use crate::http::auth::authenticate;

const SORTS: &[(&str, &str)] = &[
    ("id", "ID"),
    ("number", "NUMBER"),
    ("status", "STATUS"),
    ("total_cents", "TOTAL_CENTS"),
    ("created_at", "CREATED_AT"),
    ("updated_at", "UPDATED_AT"),
    ("paid_at", "PAID_AT"),
];

/// Builds the variables of the `orders` operation from the legacy query parameters.
fn list_variables(params: &QueryParams) -> Result<Value, ApiError> {
    let page = params.int("page", 1, 1..=MAX_PAGE)?;
    let per_page = params.int("per_page", DEFAULT_PER_PAGE, 1..=MAX_PER_PAGE)?;
    let sort_names: Vec<&str> = SORTS.iter().map(|(rest, _)| *rest).collect();
    let sort = params.choice("sort", "created_at", &sort_names)?;
    let sort = SORTS.iter().find(|(rest, _)| *rest == sort).map_or("CREATED_AT", |(_, gql)| *gql);
    let direction = params.choice("direction", "desc", &["asc", "desc"])?.to_ascii_uppercase();

    let mut filter = Map::new();
    let status = params.int("status", 0, 0..=i64::from(OrderStatus::max_code()))?;
    if let Some(status) = OrderStatus::from_code(status) {
        filter.insert("status".into(), json!(status.as_str()));
    }
    let payment_status = params.int("payment_status", 0, 0..=i64::from(PaymentStatus::max_code()))?;
    if let Some(payment_status) = PaymentStatus::from_code(payment_status) {
        filter.insert("paymentStatus".into(), json!(payment_status.as_str()));
    }
    if let Some(method) = params.text("payment_method") {
        filter.insert("paymentMethod".into(), json!(method));
    }
    if let Some(number) = params.text("number") {
        filter.insert("number".into(), json!(number));
    }
    let user_id = params.int("user_id", 0, 0..=i64::MAX)?;
    if user_id > 0 {
        filter.insert("userId".into(), json!(user_id.to_string()));
    }
    Ok(json!({
        "filter": filter,
        "sort": sort,
        "direction": direction,
        "page": page,
        "perPage": per_page,
    }))
}

/// A filtered, sorted page of orders.
#[utoipa::path(
    get, path = "/api/v1/admin/orders", operation_id = "listOrders", tag = "orders",
    params(super::openapi::ListParams),
    responses(
        (status = 200, description = "A page of orders", body = super::openapi::OrderListResponse),
        super::openapi::ReadErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<OrderListResponse>, ApiError> {
    let caller = authenticate(&state.app, &headers).await?;
    let params = QueryParams::parse(raw.as_deref())?;
    let variables = list_variables(&params)?;
    let query = format!(
        "query AdminListOrders($filter: OrderFilter, $sort: OrderSortField!, $direction: SortDirection!, $page: Int!, $perPage: Int!) {{
           orders(filter: $filter, sort: $sort, direction: $direction, page: $page, perPage: $perPage) {{
             nodes {{ ...LegacyOrder }}
             pageInfo {{ page perPage totalCount hasNextPage hasPreviousPage }}
           }}
         }}
         {ORDER_FIELDS}"
    );
    let data = run(&state, caller, query, variables).await?;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct GqlPage {
        nodes: Vec<GqlOrder>,
        page_info: GqlPageInfo,
    }
    let page: GqlPage = decode_field(data, "orders")?;
    let orders = page.nodes.into_iter().map(RestOrder::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(OrderListResponse { orders, pagination: RestPagination::from(page.page_info) }))
}

/// Parses the `:id` path segment.
pub fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_input(format!("id must be a positive integer (got {raw:?})")))
}

/// One order with its items, refunds, payments and user.
#[utoipa::path(
    get, path = "/api/v1/admin/orders/{id}", operation_id = "getOrder", tag = "orders",
    params(("id" = i64, Path, description = "Order id", minimum = 1)),
    responses(
        (status = 200, description = "The order", body = super::openapi::OrderResponse),
        (status = 404, description = "No such order (or not yours)", body = super::openapi::ErrorBody),
        super::openapi::ReadErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn detail(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    let caller = authenticate(&state.app, &headers).await?;
    let id = path_id(&raw_id)?;
    let query = format!("query AdminGetOrder($id: ID!) {{ order(id: $id) {{ ...LegacyOrder }} }} {ORDER_FIELDS}");
    let data = run(&state, caller, query, json!({ "id": id.to_string() })).await?;
    let Some(order) = decode_field::<Option<GqlOrder>>(data, "order")? else {
        return Err(ApiError::new("NOT_FOUND", format!("order {id} not found")));
    };
    Ok(Json(OrderResponse { order: RestOrder::try_from(order)? }))
}
