//! Reshapes GraphQL answers into the legacy REST shapes of `000_*.txt`: snake_case keys,
//! integer status codes, unix-second timestamps, numeric ids, `null` for unset pointers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::ApiError;
use crate::domain::{OrderStatus, PaymentAttemptStatus, PaymentStatus, RefundStatus};

/// The selection every REST order response is built from.
pub const ORDER_FIELDS: &str = "fragment LegacyOrder on Order {
  id number userId status paymentStatus paymentIntentId paymentReference
  paymentFailureCode paymentFailureMessage totalCents currency paymentMethod planId
  planSnapshot metadata paidAt cancelledAt refundedCents refundedAt createdAt updatedAt
  items { id name sku quantity unitPriceCents totalCents metadata createdAt }
  refunds { id orderId paymentId status amountCents currency reason metadata creditBalance released refundedAt createdAt }
  payments { id orderId status provider paymentMethod amountCents currency reference paymentIntentId
             failureCode failureMessage paidAt createdAt updatedAt }
  user { id email name balanceCents createdAt }
}";

type Time = DateTime<Utc>;

fn id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError::new("INTERNAL", "internal error"))
}

fn opt_id(text: Option<&String>) -> Result<Option<u64>, ApiError> {
    text.map(|t| id(t)).transpose()
}

fn unix(time: Option<Time>) -> Option<i64> {
    time.map(|t| t.timestamp())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlOrder {
    id: String,
    number: String,
    user_id: Option<String>,
    status: OrderStatus,
    payment_status: PaymentStatus,
    payment_intent_id: Option<String>,
    payment_reference: Option<String>,
    payment_failure_code: Option<String>,
    payment_failure_message: Option<String>,
    total_cents: i64,
    currency: String,
    payment_method: String,
    plan_id: Option<String>,
    plan_snapshot: Value,
    metadata: Value,
    paid_at: Option<Time>,
    cancelled_at: Option<Time>,
    refunded_cents: i64,
    refunded_at: Option<Time>,
    created_at: Time,
    updated_at: Time,
    items: Vec<GqlItem>,
    refunds: Vec<GqlRefund>,
    payments: Vec<GqlPayment>,
    user: Option<GqlUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlItem {
    id: String,
    name: String,
    sku: Option<String>,
    quantity: i32,
    unit_price_cents: i64,
    total_cents: i64,
    metadata: Value,
    created_at: Time,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlRefund {
    id: String,
    order_id: String,
    payment_id: Option<String>,
    status: RefundStatus,
    amount_cents: i64,
    currency: String,
    reason: Option<String>,
    metadata: Value,
    credit_balance: bool,
    released: bool,
    refunded_at: Option<Time>,
    created_at: Time,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlPayment {
    id: String,
    order_id: String,
    status: PaymentAttemptStatus,
    provider: String,
    payment_method: String,
    amount_cents: i64,
    currency: String,
    reference: Option<String>,
    payment_intent_id: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    paid_at: Option<Time>,
    created_at: Time,
    updated_at: Time,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlUser {
    id: String,
    email: String,
    name: String,
    balance_cents: i64,
    created_at: Time,
}

/// `AdminOrderDetail` of the seed.
#[derive(Serialize, ToSchema)]
pub struct RestOrder {
    id: u64,
    number: String,
    /// Null for a merchant's payment request that has no buyer yet (seed 001).
    user_id: Option<u64>,
    status: i16,
    payment_status: i16,
    payment_intent_id: Option<String>,
    payment_reference: Option<String>,
    payment_failure_code: Option<String>,
    payment_failure_message: Option<String>,
    total_cents: i64,
    currency: String,
    payment_method: String,
    plan_id: Option<u64>,
    #[schema(value_type = Object)]
    plan_snapshot: Value,
    #[schema(value_type = Object)]
    metadata: Value,
    paid_at: Option<i64>,
    cancelled_at: Option<i64>,
    refunded_cents: i64,
    refunded_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    items: Vec<RestItem>,
    refunds: Vec<RestRefund>,
    payments: Vec<RestPayment>,
    /// Null for a merchant's payment request that has no buyer yet (seed 001).
    user: Option<RestUser>,
}

#[derive(Serialize, ToSchema)]
pub struct RestItem {
    id: u64,
    name: String,
    sku: Option<String>,
    quantity: i32,
    unit_price_cents: i64,
    total_cents: i64,
    #[schema(value_type = Object)]
    metadata: Value,
    created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RestRefund {
    id: u64,
    order_id: u64,
    payment_id: Option<u64>,
    status: i16,
    amount_cents: i64,
    currency: String,
    reason: Option<String>,
    #[schema(value_type = Object)]
    metadata: Value,
    credit_balance: bool,
    /// The part of a reservation a partial capture did not take: recorded as refunded,
    /// though no money moved (it never left the customer).
    released: bool,
    refunded_at: Option<i64>,
    created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RestPayment {
    id: u64,
    order_id: u64,
    status: i16,
    provider: String,
    payment_method: String,
    amount_cents: i64,
    currency: String,
    reference: Option<String>,
    payment_intent_id: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    paid_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// `OrderUserSummary` of the seed (empty there; we fill in the user's public fields).
#[derive(Serialize, ToSchema)]
pub struct RestUser {
    id: u64,
    email: String,
    name: String,
    balance_cents: i64,
    created_at: i64,
}

impl TryFrom<GqlOrder> for RestOrder {
    type Error = ApiError;

    fn try_from(o: GqlOrder) -> Result<Self, ApiError> {
        Ok(Self {
            id: id(&o.id)?,
            number: o.number,
            user_id: opt_id(o.user_id.as_ref())?,
            status: o.status.code(),
            payment_status: o.payment_status.code(),
            payment_intent_id: o.payment_intent_id,
            payment_reference: o.payment_reference,
            payment_failure_code: o.payment_failure_code,
            payment_failure_message: o.payment_failure_message,
            total_cents: o.total_cents,
            currency: o.currency,
            payment_method: o.payment_method,
            plan_id: opt_id(o.plan_id.as_ref())?,
            plan_snapshot: o.plan_snapshot,
            metadata: o.metadata,
            paid_at: unix(o.paid_at),
            cancelled_at: unix(o.cancelled_at),
            refunded_cents: o.refunded_cents,
            refunded_at: unix(o.refunded_at),
            created_at: o.created_at.timestamp(),
            updated_at: o.updated_at.timestamp(),
            items: o
                .items
                .into_iter()
                .map(|i| {
                    Ok(RestItem {
                        id: id(&i.id)?,
                        name: i.name,
                        sku: i.sku,
                        quantity: i.quantity,
                        unit_price_cents: i.unit_price_cents,
                        total_cents: i.total_cents,
                        metadata: i.metadata,
                        created_at: i.created_at.timestamp(),
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            refunds: o
                .refunds
                .into_iter()
                .map(|r| {
                    Ok(RestRefund {
                        id: id(&r.id)?,
                        order_id: id(&r.order_id)?,
                        payment_id: opt_id(r.payment_id.as_ref())?,
                        status: r.status.code(),
                        amount_cents: r.amount_cents,
                        currency: r.currency,
                        reason: r.reason,
                        metadata: r.metadata,
                        credit_balance: r.credit_balance,
                        released: r.released,
                        refunded_at: unix(r.refunded_at),
                        created_at: r.created_at.timestamp(),
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            payments: o
                .payments
                .into_iter()
                .map(|p| {
                    Ok(RestPayment {
                        id: id(&p.id)?,
                        order_id: id(&p.order_id)?,
                        status: p.status.code(),
                        provider: p.provider,
                        payment_method: p.payment_method,
                        amount_cents: p.amount_cents,
                        currency: p.currency,
                        reference: p.reference,
                        payment_intent_id: p.payment_intent_id,
                        failure_code: p.failure_code,
                        failure_message: p.failure_message,
                        paid_at: unix(p.paid_at),
                        created_at: p.created_at.timestamp(),
                        updated_at: p.updated_at.timestamp(),
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            user: match o.user {
                Some(user) => Some(RestUser {
                    id: id(&user.id)?,
                    email: user.email,
                    name: user.name,
                    balance_cents: user.balance_cents,
                    created_at: user.created_at.timestamp(),
                }),
                None => None,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlPageInfo {
    pub page: i64,
    pub per_page: i64,
    pub total_count: i64,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// `PaginationMeta` of the seed.
#[derive(Serialize, ToSchema)]
pub struct RestPagination {
    page: i64,
    per_page: i64,
    total_count: i64,
    has_next: bool,
    has_prev: bool,
}

impl From<GqlPageInfo> for RestPagination {
    fn from(p: GqlPageInfo) -> Self {
        Self {
            page: p.page,
            per_page: p.per_page,
            total_count: p.total_count,
            has_next: p.has_next_page,
            has_prev: p.has_previous_page,
        }
    }
}
