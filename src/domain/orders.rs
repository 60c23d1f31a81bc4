//! Orders: reads, lists and creation, plus starting a payment attempt.

use chrono::Utc;
use diesel_async::AsyncConnection;
use serde_json::{Value, json};

use super::access::Caller;
use super::cursor::{ListShape, Window};
use super::enums::{OrderStatus, PaymentStatus};
use super::events::{self, kind};
use super::paging::{Page, Total};
use super::users::MAX_AMOUNT_CENTS;
use crate::db::queries::{self, OrderListQuery};
use crate::db::{DbPool, models};
use crate::error::{AppError, AppResult};

pub use crate::db::queries::OrderSortColumn as OrderSortField;

/// Sort direction of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    Asc,
    #[default]
    Desc,
}

/// Filters of the order list; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub payment_method: Option<String>,
    /// Case-insensitive prefix of the order number.
    pub number: Option<String>,
    pub user_id: Option<i64>,
    pub merchant_id: Option<uuid::Uuid>,
    pub store_id: Option<uuid::Uuid>,
    pub has_store: Option<bool>,
}

/// The order if `caller` may see it, else `None`: another user's order looks absent to a
/// customer. Every read of an order by id or number goes through this rule.
pub fn visible_to(caller: &Caller, order: Option<models::Order>) -> Option<models::Order> {
    order.filter(|o| caller.can_see_order(o))
}

pub async fn get_order_by_number(pool: &DbPool, caller: &Caller, number: &str) -> AppResult<Option<models::Order>> {
    if number.contains('\0') {
        return Err(AppError::bad_input("number must not contain NUL characters"));
    }
    let mut conn = pool.get().await?;
    let order = queries::find_order_by_number(&mut conn, number.trim()).await?;
    Ok(visible_to(caller, order))
}

pub async fn list_orders(
    pool: &DbPool,
    caller: &Caller,
    filter: OrderFilter,
    sort: OrderSortField,
    direction: SortDirection,
    window: Window,
) -> AppResult<Page<models::Order>> {
    for (field, text) in [("number", &filter.number), ("paymentMethod", &filter.payment_method)] {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(AppError::bad_input(format!("{field} must not contain NUL characters")));
        }
    }
    let mut user_id = filter.user_id;
    if let Some(own) = caller.confined_to() {
        // A customer asking for someone else's orders simply finds none.
        if user_id.is_some_and(|asked| asked != own) {
            return Ok(Page::empty(&window));
        }
        user_id = Some(own);
    }
    let mut merchant_id = filter.merchant_id;
    if let Some(own) = caller.confined_to_merchant() {
        // A merchant asking for another merchant's orders simply finds none.
        if merchant_id.is_some_and(|asked| asked != own) {
            return Ok(Page::empty(&window));
        }
        merchant_id = Some(own);
    }
    let mut query = OrderListQuery {
        merchant_id,
        store_id: filter.store_id,
        has_store: filter.has_store,
        status: filter.status.map(OrderStatus::code),
        payment_status: filter.payment_status.map(PaymentStatus::code),
        payment_method: filter.payment_method.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()),
        number_prefix: filter.number.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        user_id,
        sort,
        descending: direction == SortDirection::Desc,
        // One row more than the page says whether a further page exists.
        limit: window.size() + 1,
        offset: 0,
        keyset: None,
        reversed: false,
    };
    let shape = ListShape::new(sort_name(sort), query.descending, queries::order_key_kind(sort), &fingerprint(&query));
    let plan = window.plan(&shape)?;
    (query.offset, query.keyset, query.reversed) = (plan.offset, plan.bound.clone(), plan.reversed);
    // The count starts first and overlaps the page, its nested lists and their resolution.
    let total_count = if plan.request.count_total {
        let (pool, query) = (pool.clone(), query.clone());
        Total::spawn(async move {
            let mut conn = pool.get().await?;
            Ok(queries::count_orders(&mut conn, &query).await?)
        })
    } else {
        Total::NotAsked
    };
    let mut conn = pool.get().await?;
    let nodes = queries::list_orders(&mut conn, &query).await?;
    drop(conn);
    Ok(window.finish(nodes, &plan, total_count, &shape, |o| (queries::order_sort_key(o, sort), o.id)))
}

/// A sort field's name, as cursors carry it.
fn sort_name(sort: OrderSortField) -> &'static str {
    match sort {
        OrderSortField::Id => "ID",
        OrderSortField::Number => "NUMBER",
        OrderSortField::Status => "STATUS",
        OrderSortField::TotalCents => "TOTAL_CENTS",
        OrderSortField::CreatedAt => "CREATED_AT",
        OrderSortField::UpdatedAt => "UPDATED_AT",
        OrderSortField::PaidAt => "PAID_AT",
    }
}

/// Which rows the list holds: every filter, after the caller's confinement.
fn fingerprint(q: &OrderListQuery) -> String {
    format!(
        "orders|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        q.status,
        q.payment_status,
        q.payment_method,
        q.number_prefix,
        q.user_id,
        q.merchant_id,
        q.store_id,
        q.has_store
    )
}

/// One line of `createOrder`.
#[derive(Debug, Clone)]
pub struct NewItemInput {
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub metadata: Option<Value>,
}

/// Input of `createOrder`.
#[derive(Debug, Clone)]
pub struct NewOrderInput {
    pub user_id: i64,
    pub currency: String,
    pub payment_method: String,
    pub items: Vec<NewItemInput>,
    pub plan_id: Option<i64>,
    pub plan_snapshot: Option<Value>,
    pub metadata: Option<Value>,
}

pub const MAX_ITEMS: usize = 100;

/// Validates a payment method name: a lower-case word such as `card` or `bank_transfer`.
pub fn validate_payment_method(field: &str, method: &str) -> AppResult<()> {
    let ok = !method.is_empty()
        && method.len() <= 32
        && method.starts_with(|c: char| c.is_ascii_lowercase())
        && method.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        // The value is not repeated: a client may have put something secret in the wrong field.
        Err(AppError::bad_input(format!(
            "{field} must be a lower-case word of at most 32 characters such as card or bank_transfer"
        )))
    }
}

struct ValidItem {
    name: String,
    sku: Option<String>,
    quantity: i32,
    unit_price_cents: i64,
    total_cents: i64,
    metadata: Value,
}

fn validate_item(index: usize, item: NewItemInput) -> AppResult<ValidItem> {
    let at = |field: &str| format!("items[{index}].{field}");
    let name = item.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_input(format!("{} must be 1 to 200 characters", at("name"))));
    }
    let sku = item.sku.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if sku.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(AppError::bad_input(format!("{} must be at most 100 characters", at("sku"))));
    }
    let quantity = i32::try_from(item.quantity).ok().filter(|q| (1..=1_000_000).contains(q)).ok_or_else(|| {
        AppError::bad_input(format!("{} must be between 1 and 1000000 (got {})", at("quantity"), item.quantity))
    })?;
    if !(1..=MAX_AMOUNT_CENTS).contains(&item.unit_price_cents) {
        return Err(AppError::bad_input(format!(
            "{} must be between 1 and {MAX_AMOUNT_CENTS} (got {})",
            at("unitPriceCents"),
            item.unit_price_cents
        )));
    }
    let total_cents = item
        .unit_price_cents
        .checked_mul(i64::from(quantity))
        .filter(|t| *t <= MAX_AMOUNT_CENTS)
        .ok_or_else(|| AppError::bad_input(format!("{} exceeds {MAX_AMOUNT_CENTS}", at("total"))))?;
    Ok(ValidItem {
        name,
        sku,
        quantity,
        unit_price_cents: item.unit_price_cents,
        total_cents,
        metadata: super::json::object(&at("metadata"), item.metadata)?,
    })
}

/// The human-facing order number: date of creation and the zero-padded id.
pub fn order_number(id: i64, at: chrono::DateTime<Utc>) -> String {
    format!("ORD-{}-{id:06}", at.format("%Y%m%d"))
}

pub async fn create_order(pool: &DbPool, caller: &Caller, input: NewOrderInput) -> AppResult<models::Order> {
    caller.require_admin_or_owner("createOrder", Some(input.user_id))?;
    let currency = crate::money::Currency::parse("currency", input.currency.trim())?.code().to_owned();
    let payment_method = input.payment_method.trim().to_owned();
    validate_payment_method("paymentMethod", &payment_method)?;
    if input.items.is_empty() || input.items.len() > MAX_ITEMS {
        return Err(AppError::bad_input(format!("items must hold 1 to {MAX_ITEMS} items")));
    }
    if input.plan_id.is_some_and(|p| p <= 0) {
        return Err(AppError::bad_input("planId must be a positive id"));
    }
    let items =
        input.items.into_iter().enumerate().map(|(i, item)| validate_item(i, item)).collect::<AppResult<Vec<_>>>()?;
    let total_cents = items
        .iter()
        .try_fold(0i64, |sum, item| sum.checked_add(item.total_cents))
        .filter(|t| *t <= MAX_AMOUNT_CENTS)
        .ok_or_else(|| AppError::bad_input(format!("the order total exceeds {MAX_AMOUNT_CENTS}")))?;
    let plan_snapshot = super::json::object("planSnapshot", input.plan_snapshot)?;
    let metadata = super::json::object("metadata", input.metadata)?;
    let user_id = input.user_id;
    let actor = caller.name.clone();

    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        if queries::find_user(conn, user_id).await?.is_none() {
            return Err(AppError::not_found(format!("user {user_id} not found")));
        }
        let id = queries::next_order_id(conn).await?;
        let number = order_number(id, Utc::now());
        let order = queries::insert_order(
            conn,
            &models::NewOrder {
                id,
                number: &number,
                user_id: Some(user_id),
                status: OrderStatus::Pending.code(),
                store_id: None,
                merchant_id: None,
                total_cents,
                currency: &currency,
                payment_method: &payment_method,
                plan_id: input.plan_id,
                plan_snapshot: &plan_snapshot,
                metadata: &metadata,
            },
        )
        .await?;
        let rows: Vec<models::NewOrderItem<'_>> = items
            .iter()
            .map(|item| models::NewOrderItem {
                order_id: order.id,
                name: &item.name,
                sku: item.sku.as_deref(),
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
                total_cents: item.total_cents,
                metadata: &item.metadata,
            })
            .collect();
        queries::insert_order_items(conn, &rows).await?;
        events::record(
            conn,
            order.id,
            kind::CREATED,
            &actor,
            json!({ "total_cents": total_cents, "currency": currency, "items": rows.len() }),
        )
        .await?;
        Ok(order)
    })
    .await
}
