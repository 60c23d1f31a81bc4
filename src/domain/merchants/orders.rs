//! A merchant's payment requests (seed 001): orders of a store, created for an amount, with
//! the merchant's own references, return URLs and payment terms.
//!
//! - An amount-only request becomes an order with one line of that amount, so the total is
//!   still the sum of its items.
//! - The currency defaults to JPY (the seed's default).
//! - `draft: true` saves it as DRAFT (the seed's TEMPORARY_SAVE); `submitMerchantOrder`
//!   opens it for payment.
//! - Amount, description and payment date can change while it is unpaid (DRAFT, or PENDING
//!   with no payment under way); otherwise CONFLICT.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde_json::json;
use uuid::Uuid;

use super::status::PayMethod;
use crate::db::merchants::{self as mq, PaymentRequestChanges};
use crate::db::models::{self, OrderChanges};
use crate::db::{DbPool, queries};
use crate::domain::access::{Caller, Role};
use crate::domain::enums::{OrderStatus, PaymentStatus, decode};
use crate::domain::events::{self, kind};
use crate::domain::orders::order_number;
use crate::domain::users::MAX_AMOUNT_CENTS;
use crate::domain::webhooks::target;
use crate::error::{AppError, AppResult};

/// How the buyer pays it off (seed 001's `selected_payment_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaymentType {
    #[default]
    OneTime,
    Installment,
    Revolving,
}

impl PaymentType {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentType::OneTime => "ONE_TIME",
            PaymentType::Installment => "INSTALLMENT",
            PaymentType::Revolving => "REVOLVING",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ONE_TIME" => Some(PaymentType::OneTime),
            "INSTALLMENT" => Some(PaymentType::Installment),
            "REVOLVING" => Some(PaymentType::Revolving),
            _ => None,
        }
    }
}

/// The installment terms seed 001 allows (number of payments).
pub const INSTALLMENT_TERMS: &[i32] = &[3, 5, 6, 10, 12, 15, 18, 20, 24];

/// Input of `createMerchantOrder`.
#[derive(Debug, Clone, Default)]
pub struct NewMerchantOrder {
    pub store_id: Option<Uuid>,
    pub amount_cents: i64,
    pub currency: Option<String>,
    pub description: Option<String>,
    pub customer_id: Option<String>,
    pub customer_order_id: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub callback_url: Option<String>,
    pub user_id: Option<i64>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    pub payment_type: Option<PaymentType>,
    pub installment_term: Option<i32>,
    pub pay_method: Option<PayMethod>,
    pub payment_date: Option<DateTime<Utc>>,
    pub draft: bool,
}

/// Input of `updateMerchantOrder`; `None` leaves a value alone.
#[derive(Debug, Clone, Default)]
pub struct MerchantOrderChanges {
    pub amount_cents: Option<i64>,
    pub description: Option<String>,
    pub payment_date: Option<DateTime<Utc>>,
}

/// Free text from a merchant: trimmed, empty means absent, at most `max` characters, no
/// control characters.
fn text(field: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(AppError::bad_input(format!(
            "{field} must be at most {max} characters without control characters"
        )));
    }
    Ok(Some(value))
}

/// A page the buyer is sent back to: an absolute http(s) URL.
fn return_url(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    let Some(value) = text(field, value, 2000)? else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&value)
        .map_err(|_| AppError::bad_input(format!("{field} must be an absolute http or https URL (got {value:?})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(AppError::bad_input(format!("{field} must be an absolute http or https URL (got {value:?})")));
    }
    Ok(Some(value))
}

fn email(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    let value = text(field, value, 320)?;
    if let Some(email) = &value {
        let ok = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }) && !email.chars().any(char::is_whitespace);
        if !ok {
            return Err(AppError::bad_input(format!("{field} must be an email address such as buyer@example.com")));
        }
    }
    Ok(value)
}

fn phone(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    let value = text(field, value, 40)?;
    if let Some(phone) = &value {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if digits < 4 || !phone.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) {
            return Err(AppError::bad_input(format!(
                "{field} must be a phone number of digits, spaces, +, - and parentheses such as 0964-11-1111"
            )));
        }
    }
    Ok(value)
}

fn amount(field: &str, cents: i64) -> AppResult<i64> {
    if (1..=MAX_AMOUNT_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err(AppError::bad_input(format!("{field} must be between 1 and {MAX_AMOUNT_CENTS} minor units (got {cents})")))
    }
}

/// Checks payment type and installment term together: a term is required for INSTALLMENT
/// and refused otherwise.
fn terms(payment_type: Option<PaymentType>, term: Option<i32>) -> AppResult<(PaymentType, Option<i16>)> {
    let payment_type = payment_type.unwrap_or_default();
    match (payment_type, term) {
        (PaymentType::Installment, None) => Err(AppError::bad_input(format!(
            "installmentTerm is required for INSTALLMENT payments: one of {INSTALLMENT_TERMS:?}"
        ))),
        (PaymentType::Installment, Some(term)) if INSTALLMENT_TERMS.contains(&term) => {
            Ok((payment_type, i16::try_from(term).ok()))
        }
        (PaymentType::Installment, Some(term)) => {
            Err(AppError::bad_input(format!("installmentTerm must be one of {INSTALLMENT_TERMS:?} (got {term})")))
        }
        (_, Some(_)) => Err(AppError::bad_input(format!(
            "installmentTerm is only for INSTALLMENT payments; this one is {}",
            payment_type.as_str()
        ))),
        (_, None) => Ok((payment_type, None)),
    }
}

/// Name of the one line of an amount-only request.
const DEFAULT_LINE: &str = "Payment request";

/// The store an order goes to: the one named (which must be the caller's merchant's), or a
/// merchant key's first store.
async fn store_for(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    store_id: Option<Uuid>,
) -> AppResult<models::Store> {
    let missing = |id: Uuid| AppError::not_found(format!("store {id} not found"));
    match (caller.role, store_id) {
        (Role::Admin, Some(id)) => mq::find_store(conn, id).await?.ok_or_else(|| missing(id)),
        (Role::Admin, None) => Err(AppError::bad_input("storeId is required for an admin key")),
        (Role::Merchant, Some(id)) => mq::find_store(conn, id)
            .await?
            .filter(|s| Some(s.merchant_id) == caller.merchant_id)
            .ok_or_else(|| missing(id)),
        (Role::Merchant, None) => {
            let own = caller.merchant_id.unwrap_or_else(Uuid::nil);
            mq::first_store_of(conn, own).await?.ok_or_else(|| {
                AppError::Conflict("this merchant has no store yet: an admin creates one first".to_owned())
            })
        }
        _ => Err(AppError::Forbidden(format!(
            "createMerchantOrder requires a merchant or admin key; this key has role {}",
            caller.role.as_str()
        ))),
    }
}

pub async fn create(
    pool: &DbPool,
    caller: &Caller,
    allow_private_targets: bool,
    input: NewMerchantOrder,
) -> AppResult<models::Order> {
    if !matches!(caller.role, Role::Admin | Role::Merchant) {
        return Err(AppError::Forbidden(format!(
            "createMerchantOrder requires a merchant or admin key; this key has role {}",
            caller.role.as_str()
        )));
    }
    let amount_cents = amount("amountCents", input.amount_cents)?;
    let currency = match input.currency.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => crate::money::Currency::parse("currency", code)?,
        None => crate::money::Currency::parse("currency", "JPY")?,
    };
    let description = text("description", input.description, 1000)?;
    let customer_ref = text("customerId", input.customer_id, 200)?;
    let customer_order_ref = text("customerOrderId", input.customer_order_id, 200)?;
    let success_url = return_url("successUrl", input.success_url)?;
    let cancel_url = return_url("cancelUrl", input.cancel_url)?;
    let callback_url = match text("callbackUrl", input.callback_url, 2000)? {
        Some(url) => Some(target::check_url("callbackUrl", &url, allow_private_targets).await?.to_string()),
        None => None,
    };
    let consumer_email = email("consumerEmail", input.consumer_email)?;
    let consumer_phone = phone("consumerPhone", input.consumer_phone)?;
    let (payment_type, installment_term) = terms(input.payment_type, input.installment_term)?;
    if input.user_id.is_some() && caller.role == Role::Merchant {
        return Err(AppError::bad_input(
            "userId cannot be set by a merchant key: a buyer is attached to the order when they pay",
        ));
    }
    if input.user_id.is_some_and(|u| u <= 0) {
        return Err(AppError::bad_input("userId must be a positive id"));
    }
    let payment_method = input.pay_method.unwrap_or(PayMethod::CreditCard).method();
    let status = if input.draft { OrderStatus::Draft } else { OrderStatus::Pending };
    let actor = caller.name.clone();
    let line = description.clone().unwrap_or_else(|| DEFAULT_LINE.to_owned());
    let line: String = line.chars().take(200).collect();

    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let store = store_for(conn, caller, input.store_id).await?;
        if let Some(user_id) = input.user_id
            && queries::find_user(conn, user_id).await?.is_none()
        {
            return Err(AppError::not_found(format!("user {user_id} not found")));
        }
        let id = queries::next_order_id(conn).await?;
        let number = order_number(id, Utc::now());
        let empty = json!({});
        let order = queries::insert_order(
            conn,
            &models::NewOrder {
                id,
                number: &number,
                user_id: input.user_id,
                status: status.code(),
                store_id: Some(store.id),
                merchant_id: Some(store.merchant_id),
                total_cents: amount_cents,
                currency: currency.code(),
                payment_method,
                plan_id: None,
                plan_snapshot: &empty,
                metadata: &empty,
            },
        )
        .await?;
        queries::insert_order_items(
            conn,
            &[models::NewOrderItem {
                order_id: order.id,
                name: &line,
                sku: None,
                quantity: 1,
                unit_price_cents: amount_cents,
                total_cents: amount_cents,
                metadata: &empty,
            }],
        )
        .await?;
        mq::insert_payment_request(
            conn,
            &models::PaymentRequest {
                order_id: order.id,
                customer_ref,
                customer_order_ref,
                description,
                success_url,
                cancel_url,
                callback_url,
                consumer_email,
                consumer_phone,
                payment_type: payment_type.as_str().to_owned(),
                installment_term,
                payment_date: input.payment_date,
                announced_status: None,
                created_by: actor.clone(),
                updated_by: None,
                created_at: order.created_at,
                updated_at: None,
            },
        )
        .await?;
        events::record(
            conn,
            order.id,
            kind::CREATED,
            &actor,
            json!({ "total_cents": amount_cents, "currency": currency.code(), "items": 1, "store_id": store.id, "status": status.as_str() }),
        )
        .await?;
        let order = queries::find_order(conn, order.id).await?.unwrap_or(order);
        Ok(order)
    })
    .await
}

/// The store order with public id `id`, locked, if `caller` may see it.
async fn lock_visible(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
) -> AppResult<models::Order> {
    mq::lock_order_by_public_id(conn, id)
        .await?
        .filter(|o| o.store_id.is_some() && caller.can_see_order(o))
        .ok_or_else(|| AppError::not_found(format!("order {id} not found")))
}

fn require_manager(caller: &Caller, action: &str) -> AppResult<()> {
    match caller.role {
        Role::Admin | Role::Merchant => Ok(()),
        _ => Err(AppError::Forbidden(format!(
            "{action} requires a merchant or admin key; this key has role {}",
            caller.role.as_str()
        ))),
    }
}

pub async fn update(
    pool: &DbPool,
    caller: &Caller,
    id: Uuid,
    changes: MerchantOrderChanges,
) -> AppResult<models::Order> {
    require_manager(caller, "updateMerchantOrder")?;
    let amount_cents = changes.amount_cents.map(|a| amount("amountCents", a)).transpose()?;
    let description = match changes.description {
        Some(d) => Some(text("description", Some(d), 1000)?),
        None => None,
    };
    if amount_cents.is_none() && description.is_none() && changes.payment_date.is_none() {
        return Err(AppError::bad_input("nothing to change: give amountCents, description or paymentDate"));
    }
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let order = lock_visible(conn, caller, id).await?;
        let status = decode(order.status, OrderStatus::from_code, "order status")?;
        let payment = decode(order.payment_status, PaymentStatus::from_code, "payment status")?;
        let unpaid = status == OrderStatus::Draft
            || (status == OrderStatus::Pending && matches!(payment, PaymentStatus::Unpaid | PaymentStatus::Failed));
        if !unpaid {
            return Err(AppError::Conflict(format!(
                "order {id} is {status}/{payment}: a payment request can change only while it is unpaid and no payment is under way"
            )));
        }
        let now = Utc::now();
        // The same amount again (the seed's PUT always sends pay_amount) is no change.
        let amount_cents = amount_cents.filter(|c| *c != order.total_cents);
        if let Some(cents) = amount_cents {
            // Once a payment was attempted the amount is fixed: the provider may still take
            // the attempt's amount (a late 3-D Secure, say). A trigger refuses it as well.
            let attempts = queries::payments_for_orders(conn, &[order.id]).await?;
            if !attempts.is_empty() {
                return Err(AppError::Conflict(format!(
                    "order {id} already had a payment attempt: its amount is fixed; cancel it and create a new request"
                )));
            }
            let items = queries::items_for_orders(conn, &[order.id]).await?;
            let [item] = items.as_slice() else {
                return Err(AppError::Conflict(format!(
                    "order {id} has {} lines: only a one-line payment request can change its amount",
                    items.len()
                )));
            };
            queries::set_single_item_price(conn, item.id, cents).await?;
            queries::update_order(
                conn,
                order.id,
                &OrderChanges { total_cents: Some(cents), updated_at: Some(now), ..Default::default() },
            )
            .await?;
        } else {
            queries::update_order(conn, order.id, &OrderChanges { updated_at: Some(now), ..Default::default() }).await?;
        }
        mq::update_payment_request(
            conn,
            order.id,
            &PaymentRequestChanges {
                description: description.clone(),
                payment_date: changes.payment_date.map(Some),
                updated_by: Some(Some(actor.clone())),
                updated_at: Some(Some(now)),
                ..Default::default()
            },
        )
        .await?;
        let mut data = serde_json::Map::new();
        if let Some(cents) = amount_cents {
            data.insert("amount_cents".into(), json!(cents));
            data.insert("previous_amount_cents".into(), json!(order.total_cents));
        }
        if description.is_some() {
            data.insert("description_changed".into(), json!(true));
        }
        if let Some(date) = changes.payment_date {
            data.insert("payment_date".into(), json!(date));
        }
        events::record(conn, order.id, kind::PAYMENT_REQUEST_UPDATED, &actor, data.into()).await?;
        Ok(queries::find_order(conn, order.id).await?.unwrap_or(order))
    })
    .await
}

/// Opens a DRAFT order for payment (PENDING, the seed's WAITING_FOR_PAYMENT).
pub async fn submit(pool: &DbPool, caller: &Caller, id: Uuid) -> AppResult<models::Order> {
    require_manager(caller, "submitMerchantOrder")?;
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let order = lock_visible(conn, caller, id).await?;
        let status = decode(order.status, OrderStatus::from_code, "order status")?;
        if status != OrderStatus::Draft {
            return Err(AppError::Conflict(format!("order {id} is {status}: only a DRAFT order can be submitted")));
        }
        let order = queries::update_order(
            conn,
            order.id,
            &OrderChanges {
                status: Some(OrderStatus::Pending.code()),
                updated_at: Some(Utc::now()),
                ..Default::default()
            },
        )
        .await?;
        events::record(conn, order.id, kind::SUBMITTED, &actor, json!({ "status": OrderStatus::Pending.as_str() }))
            .await?;
        Ok(queries::find_order(conn, order.id).await?.unwrap_or(order))
    })
    .await
}

/// The order with public id `id`, if `caller` may see it.
pub async fn get(pool: &DbPool, caller: &Caller, id: Uuid) -> AppResult<Option<models::Order>> {
    let mut conn = pool.get().await?;
    Ok(mq::find_order_by_public_id(&mut conn, id).await?.filter(|o| caller.can_see_order(o)))
}
