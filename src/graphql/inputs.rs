//! GraphQL input types.

use async_graphql::{ID, InputObject};

use super::scalars::{JsonValue, Money};
use chrono::{DateTime, Utc};

use super::types::{OrderStatus, PaymentAttemptStatus, PaymentStatus, parse_id};
use crate::domain::lifecycle::{CancelInput, MarkPaidInput, PaymentOutcome};
use crate::domain::orders::{NewItemInput, NewOrderInput, OrderFilter as DomainFilter};
use crate::domain::refunds::RefundInput;
use crate::domain::users::NewUserInput;
use crate::error::AppResult;

/// Filters of the order list; every field is optional and they combine with AND.
#[derive(InputObject, Default)]
pub struct OrderFilter {
    /// Only orders with this status.
    pub status: Option<OrderStatus>,
    /// Only orders with this payment status.
    pub payment_status: Option<PaymentStatus>,
    /// Only orders with this payment method (exact, e.g. `card`).
    pub payment_method: Option<String>,
    /// Case-insensitive prefix of the order number, e.g. `ord-2026`.
    pub number: Option<String>,
    /// Only orders of this user.
    pub user_id: Option<ID>,
    /// Only orders of this merchant's stores (a merchant key sees only its own anyway).
    pub merchant_id: Option<uuid::Uuid>,
    /// Only orders of this store.
    pub store_id: Option<uuid::Uuid>,
    /// Only stores' payment requests (`true`) or only orders without a store (`false`).
    pub has_store: Option<bool>,
}

impl OrderFilter {
    pub fn into_domain(self) -> AppResult<DomainFilter> {
        Ok(DomainFilter {
            status: self.status.map(Into::into),
            payment_status: self.payment_status.map(Into::into),
            payment_method: self.payment_method,
            number: self.number,
            user_id: self.user_id.as_ref().map(|id| parse_id("filter.userId", id)).transpose()?,
            merchant_id: self.merchant_id,
            store_id: self.store_id,
            has_store: self.has_store,
        })
    }
}

/// A new user.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// E-mail address, unique (case-insensitive).
    pub email: String,
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Opening balance in minor units (recorded in the ledger).
    #[graphql(default)]
    pub balance_cents: Money,
}

impl From<CreateUserInput> for NewUserInput {
    fn from(i: CreateUserInput) -> Self {
        Self { email: i.email, name: i.name, balance_cents: i.balance_cents.0 }
    }
}

/// One line of a new order.
#[derive(InputObject)]
pub struct OrderItemInput {
    /// What is bought, 1 to 200 characters.
    pub name: String,
    /// Stock-keeping unit.
    pub sku: Option<String>,
    /// How many, 1 to 1,000,000.
    pub quantity: i32,
    /// Price of one, in minor units, at least 1.
    pub unit_price_cents: Money,
    /// Free-form client data (a JSON object).
    pub metadata: Option<JsonValue>,
}

/// A new order; its total is the sum of its items.
#[derive(InputObject)]
pub struct CreateOrderInput {
    /// The user who owns the order.
    pub user_id: ID,
    /// ISO-4217 currency code, upper case.
    pub currency: String,
    /// How the order is to be paid: a lower-case word such as `card`.
    pub payment_method: String,
    /// At least one item, at most 100.
    pub items: Vec<OrderItemInput>,
    /// Subscription plan the order is for.
    pub plan_id: Option<ID>,
    /// The plan as it is now (a JSON object).
    pub plan_snapshot: Option<JsonValue>,
    /// Free-form client data (a JSON object).
    pub metadata: Option<JsonValue>,
}

impl CreateOrderInput {
    pub fn into_domain(self) -> AppResult<NewOrderInput> {
        Ok(NewOrderInput {
            user_id: parse_id("input.userId", &self.user_id)?,
            currency: self.currency,
            payment_method: self.payment_method,
            items: self
                .items
                .into_iter()
                .map(|i| NewItemInput {
                    name: i.name,
                    sku: i.sku,
                    quantity: i.quantity.into(),
                    unit_price_cents: i.unit_price_cents.0,
                    metadata: i.metadata.map(|m| m.0),
                })
                .collect(),
            plan_id: self.plan_id.as_ref().map(|id| parse_id("input.planId", id)).transpose()?,
            plan_snapshot: self.plan_snapshot.map(|m| m.0),
            metadata: self.metadata.map(|m| m.0),
        })
    }
}

/// Starts a payment attempt for an order.
#[derive(InputObject)]
pub struct CreatePaymentInput {
    /// The order to pay.
    pub order_id: ID,
    /// How it is paid; defaults to the order's payment method.
    pub payment_method: Option<String>,
    /// Shown on the payment, at most 500 characters.
    pub description: Option<String>,
    pub billing_address: Option<BillingAddressInput>,
    /// Free-form client data (a JSON object, at most 8 KiB).
    pub metadata: Option<JsonValue>,
    /// Seed 002's flag (default true); stored and shown, it does not stop an outcome.
    pub active: Option<bool>,
    /// When the client means the payment to happen; stored and shown, never acted on.
    pub payment_date: Option<DateTime<Utc>>,
    /// A card to pay with now, with a provider that takes cards (stripe): it goes to the
    /// provider only; the payment shows its brand, last four digits and expiry.
    pub card: Option<CardInput>,
    /// `MANUAL`: the provider only reserves the amount (the attempt becomes AUTHORIZED);
    /// `capturePayment` takes it and `cancelPayment` releases it. Default `AUTOMATIC`.
    pub capture_method: Option<CaptureMethod>,
}

/// When a payment's money is taken.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CaptureMethod {
    /// As soon as the provider can (the default).
    Automatic,
    /// Reserved first, taken by `capturePayment`.
    Manual,
}

/// A card. Sent to the provider and dropped: never stored, logged or shown back.
#[derive(InputObject, Clone)]
pub struct CardInput {
    /// 13 to 19 digits (spaces and dashes are ignored).
    pub number: String,
    pub exp_month: i32,
    /// Four digits (two are taken as 20xx).
    pub exp_year: i32,
    /// Three or four digits.
    pub cvc: String,
    /// The name on the card.
    pub name: Option<String>,
}

impl CardInput {
    pub fn into_domain(self) -> crate::domain::payments::card::CardInput {
        crate::domain::payments::card::CardInput {
            number: self.number,
            exp_month: i64::from(self.exp_month),
            exp_year: i64::from(self.exp_year),
            cvc: self.cvc,
            name: self.name,
        }
    }
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput(redacted)")
    }
}

impl CreatePaymentInput {
    pub fn details(&self) -> crate::domain::payments::details::PaymentDetailsInput {
        crate::domain::payments::details::PaymentDetailsInput {
            description: self.description.clone(),
            billing_address: self.billing_address.clone().map(Into::into),
            metadata: self.metadata.clone().map(|m| m.0),
            active: self.active,
            payment_date: self.payment_date,
            card: self.card.clone().map(CardInput::into_domain),
            manual_capture: self.capture_method == Some(CaptureMethod::Manual),
        }
    }
}

/// A billing address; every part optional, at most 200 characters each.
#[derive(InputObject, Clone)]
pub struct BillingAddressInput {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 (`PT`, `US`).
    pub country: Option<String>,
}

impl From<BillingAddressInput> for crate::domain::payments::details::BillingAddress {
    fn from(a: BillingAddressInput) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            state: a.state,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// Changes what seed 002 lets a client change on a payment, while it has not succeeded
/// (afterwards `CONFLICT`). Absent fields stay; `null` clears the billing address or the
/// payment date.
#[derive(InputObject)]
pub struct UpdatePaymentInput {
    pub id: ID,
    pub active: Option<bool>,
    /// Only on a manual payment: a provider's attempt keeps the method it was started with.
    pub payment_method: Option<String>,
    pub billing_address: async_graphql::MaybeUndefined<BillingAddressInput>,
    /// Stored and shown; the service does not start charges on it.
    pub payment_date: async_graphql::MaybeUndefined<DateTime<Utc>>,
}

impl UpdatePaymentInput {
    pub fn into_domain(self) -> crate::error::AppResult<crate::domain::payments::update::PaymentUpdate> {
        use async_graphql::MaybeUndefined as M;
        Ok(crate::domain::payments::update::PaymentUpdate {
            payment_id: super::types::parse_id("input.id", &self.id)?,
            active: self.active,
            payment_method: self.payment_method,
            billing_address: match self.billing_address {
                M::Undefined => None,
                M::Null => Some(None),
                M::Value(a) => Some(Some(a.into())),
            },
            payment_date: match self.payment_date {
                M::Undefined => None,
                M::Null => Some(None),
                M::Value(d) => Some(Some(d)),
            },
        })
    }
}

/// Cancels an order.
#[derive(InputObject)]
pub struct CancelOrderInput {
    /// The order.
    pub id: ID,
    /// Why (kept on the order and in its events), at most 500 characters.
    pub reason: Option<String>,
    /// When it was cancelled; defaults to now, never in the future.
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl CancelOrderInput {
    pub fn into_domain(self) -> AppResult<CancelInput> {
        Ok(CancelInput {
            order_id: parse_id("input.id", &self.id)?,
            reason: self.reason,
            cancelled_at: self.cancelled_at,
        })
    }
}

/// Marks an order paid by hand.
#[derive(InputObject)]
pub struct MarkOrderPaidInput {
    /// The order.
    pub id: ID,
    /// How it was paid; defaults to the order's method (`balance` with `chargeBalance`).
    pub payment_method: Option<String>,
    /// When it was paid; defaults to now, never in the future.
    pub paid_at: Option<DateTime<Utc>>,
    /// A note kept on the payment, at most 500 characters.
    pub note: Option<String>,
    /// The payment's reference (bank transfer id, receipt number), at most 200 characters.
    pub reference: Option<String>,
    /// Pay from the user's balance through the ledger.
    #[graphql(default)]
    pub charge_balance: bool,
}

impl MarkOrderPaidInput {
    pub fn into_domain(self) -> AppResult<MarkPaidInput> {
        Ok(MarkPaidInput {
            order_id: parse_id("input.id", &self.id)?,
            payment_method: self.payment_method,
            paid_at: self.paid_at,
            note: self.note,
            reference: self.reference,
            charge_balance: self.charge_balance,
        })
    }
}

/// Gives back the money of a duplicate payment.
#[derive(InputObject)]
pub struct RefundDuePaymentInput {
    /// The payment attempt whose money is due back (`Payment.moneyDueBack`).
    pub payment_id: ID,
    /// Why; at most 500 characters.
    pub reason: Option<String>,
}

/// Refunds an order.
#[derive(InputObject)]
pub struct RefundOrderInput {
    /// The order.
    pub id: ID,
    /// How much, in minor units: more than 0 and at most what is left to refund.
    pub amount_cents: Money,
    /// Why, at most 500 characters.
    pub reason: Option<String>,
    /// Free-form client data (a JSON object).
    pub metadata: Option<JsonValue>,
    /// When it was refunded; defaults to now, never in the future.
    pub refund_at: Option<DateTime<Utc>>,
    /// Credit the user's balance instead of refunding through the payment provider.
    #[graphql(default)]
    pub credit_balance: bool,
}

impl RefundOrderInput {
    pub fn into_domain(self) -> AppResult<RefundInput> {
        Ok(RefundInput {
            order_id: parse_id("input.id", &self.id)?,
            amount_cents: self.amount_cents.0,
            reason: self.reason,
            metadata: self.metadata.map(|m| m.0),
            refund_at: self.refund_at,
            credit_balance: self.credit_balance,
        })
    }
}

/// A payment outcome reported by the provider.
#[derive(InputObject)]
pub struct PaymentCallbackInput {
    /// The order.
    pub order_id: ID,
    /// The payment attempt; it must belong to the order.
    pub payment_id: ID,
    /// The attempt's new status.
    pub status: PaymentAttemptStatus,
    /// The provider's reference of the payment.
    pub reference: Option<String>,
    /// Why it failed (provider code).
    pub failure_code: Option<String>,
    /// Why it failed (human text).
    pub failure_message: Option<String>,
    /// When the money was taken; defaults to now.
    pub paid_at: Option<DateTime<Utc>>,
    /// With status PENDING: the attempt now waits for the customer to authenticate (3-D
    /// Secure or a one-time password) for at most `AUTHENTICATION_TIMEOUT_SECS`.
    pub authentication: Option<super::merchants::AuthenticationKind>,
    /// With status SUCCEEDED: when the money settled (with `settledAmountCents`). The first
    /// report is kept.
    pub settled_at: Option<DateTime<Utc>>,
    /// How much settled, net of the provider's fees: at most the payment's amount.
    pub settled_amount_cents: Option<Money>,
}

impl PaymentCallbackInput {
    pub fn into_domain(self, authentication_timeout: std::time::Duration) -> AppResult<PaymentOutcome> {
        let authentication = match (self.authentication, self.status) {
            (None, _) => None,
            (Some(kind), PaymentAttemptStatus::Pending) => {
                let wait = chrono::Duration::from_std(authentication_timeout).unwrap_or(chrono::Duration::minutes(30));
                Some((kind.into(), Utc::now() + wait))
            }
            (Some(_), _) => {
                return Err(crate::error::AppError::bad_input(
                    "input.authentication is only for status PENDING (an attempt waiting for the customer)",
                ));
            }
        };
        let settlement = match (self.settled_at, self.settled_amount_cents) {
            (Some(at), Some(cents)) => Some((at, cents.0)),
            (None, None) => None,
            _ => {
                return Err(crate::error::AppError::bad_input(
                    "input.settledAt and input.settledAmountCents come together",
                ));
            }
        };
        Ok(PaymentOutcome {
            settlement,
            authentication,
            order_id: parse_id("input.orderId", &self.order_id)?,
            payment_id: parse_id("input.paymentId", &self.payment_id)?,
            status: self.status.into(),
            reference: self.reference,
            failure_code: self.failure_code,
            failure_message: self.failure_message,
            paid_at: self.paid_at,
            captured_cents: None,
        })
    }
}

/// Which payment to reconcile with its provider.
#[derive(InputObject)]
pub struct ReconcilePaymentInput {
    /// The order.
    pub order_id: ID,
    /// The payment attempt; it must belong to the order.
    pub payment_id: ID,
}
