//! Seed 003's payment as this face shows it (snake_case, major units), from the GraphQL
//! `Payment`. The seed echoes card numbers and security codes; this face never does: its
//! `additional_params` carry the card's brand, last four digits and expiry only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::PaymentAttemptStatus;
use crate::domain::payments::state::Seed003Status;
use crate::money::Currency;
use crate::rest::ApiError;

pub const PAYMENT_FIELDS: &str = "fragment SeedPayment on Payment {
    id humanId orderId status state paymentMethod amountCents currency amountReservedCents
    amountCapturedCents amountRefundedCents settledAt settledAmountCents description
    billingAddress { name line1 line2 city state postalCode country } metadata active paymentDate
    failureCode failureMessage card { brand last4 expMonth expYear } createdAt paidAt moneyDueBack
}";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlAddress {
    name: Option<String>,
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlCard {
    brand: Option<String>,
    last4: String,
    exp_month: Option<i32>,
    exp_year: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlPayment {
    pub id: String,
    human_id: String,
    order_id: String,
    status: String,
    state: String,
    payment_method: String,
    amount_cents: i64,
    pub currency: String,
    amount_reserved_cents: i64,
    amount_captured_cents: i64,
    amount_refunded_cents: i64,
    settled_at: Option<DateTime<Utc>>,
    settled_amount_cents: Option<i64>,
    description: Option<String>,
    billing_address: Option<GqlAddress>,
    metadata: Value,
    active: bool,
    payment_date: Option<DateTime<Utc>>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    card: Option<GqlCard>,
    created_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    money_due_back: bool,
}

/// A billing address.
#[derive(Serialize, ToSchema)]
pub struct SeedAddress {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// What seed 003 calls `additional_params`, without what it must never show: the card's
/// brand, last four digits and expiry only (no number, no security code).
#[derive(Serialize, ToSchema)]
pub struct SeedAdditional {
    /// The payment's `payment_id`.
    pub payment: String,
    /// Major units.
    #[schema(value_type = f64, example = 50.0)]
    pub amount: Value,
    pub method: String,
    pub brand: Option<String>,
    /// The card's last four digits.
    pub last4: Option<String>,
    /// Two digits, as the seed writes it.
    #[schema(example = "05")]
    pub expiration_month: Option<String>,
    #[schema(example = "2028")]
    pub expiration_year: Option<String>,
}

/// A payment as seed 003 shows it, with seed 002's fields beside.
#[derive(Serialize, ToSchema)]
pub struct SeedPayment {
    /// The six-character human id (seed 002's `human_id`); the path id of this face.
    #[schema(example = "7KQ2MX")]
    pub payment_id: String,
    pub human_id: String,
    /// The order paid (seed 002's `subject`).
    pub subject: i64,
    /// Major units of `currency`.
    #[schema(value_type = f64, example = 50.0)]
    pub amount: Value,
    /// ISO 4217.
    pub currency: String,
    /// `credit_card` for card payments; otherwise the service's method word (`mbway`,
    /// `bank_transfer`, `balance`, ...).
    pub payment_method: String,
    /// `success`, `error`, `settled`, or `pending` (ours: undecided, or reserved and not captured).
    #[schema(example = "success")]
    pub status: String,
    /// Seed 002's state (docs/decisions.md).
    #[schema(example = "captured")]
    pub current_state: String,
    /// ISO 8601, UTC.
    pub settled_at: Option<String>,
    #[schema(value_type = Option<f64>)]
    pub settled_amount: Value,
    #[schema(value_type = f64)]
    pub amount_reserved: Value,
    /// Seed 002's `amount_paid`: what was captured.
    #[schema(value_type = f64)]
    pub amount_paid: Value,
    #[schema(value_type = f64)]
    pub amount_refunded: Value,
    pub description: Option<String>,
    pub billing_address: Option<SeedAddress>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub active: bool,
    /// ISO 8601; stored and shown, never acted on.
    pub payment_date: Option<String>,
    /// The provider's failure code, when it failed.
    pub status_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub additional_params: SeedAdditional,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn internal() -> ApiError {
    ApiError::new("INTERNAL", "internal error")
}

/// The method word of this face: the service's `card` is the seed's `credit_card`.
pub fn seed_method(method: &str) -> String {
    if method == "card" { "credit_card".to_owned() } else { method.to_owned() }
}

/// The service's method word for the seed's.
pub fn service_method(method: &str) -> &str {
    if method == "credit_card" { "card" } else { method }
}

pub fn shape(p: GqlPayment) -> Result<SeedPayment, ApiError> {
    let currency = Currency::of_stored(&p.currency)?;
    let major = |minor: i64| currency.to_major_json(minor).map_err(ApiError::from);
    let attempt = match p.status.as_str() {
        "PENDING" => PaymentAttemptStatus::Pending,
        "SUCCEEDED" => PaymentAttemptStatus::Succeeded,
        "FAILED" => PaymentAttemptStatus::Failed,
        "CANCELLED" => PaymentAttemptStatus::Cancelled,
        "AUTHORIZED" => PaymentAttemptStatus::Authorized,
        _ => return Err(internal()),
    };
    let status = Seed003Status::of(attempt, p.settled_at.is_some(), p.money_due_back);
    let method = seed_method(&p.payment_method);
    let (brand, last4, month, year) = match p.card {
        Some(c) => (c.brand, Some(c.last4), c.exp_month.map(|m| format!("{m:02}")), c.exp_year.map(|y| y.to_string())),
        None => (None, None, None, None),
    };
    Ok(SeedPayment {
        payment_id: p.human_id.clone(),
        human_id: p.human_id.clone(),
        subject: p.order_id.parse().map_err(|_| internal())?,
        amount: major(p.amount_cents)?,
        currency: p.currency.clone(),
        payment_method: method.clone(),
        status: status.as_str().to_owned(),
        current_state: p.state.to_ascii_lowercase(),
        settled_at: p.settled_at.map(time),
        settled_amount: p.settled_amount_cents.map(major).transpose()?.unwrap_or(Value::Null),
        amount_reserved: major(p.amount_reserved_cents)?,
        amount_paid: major(p.amount_captured_cents)?,
        amount_refunded: major(p.amount_refunded_cents)?,
        description: p.description,
        billing_address: p.billing_address.map(|a| SeedAddress {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            state: a.state,
            postal_code: a.postal_code,
            country: a.country,
        }),
        metadata: p.metadata,
        active: p.active,
        payment_date: p.payment_date.map(time),
        status_code: p.failure_code,
        error_message: p.failure_message,
        created_at: time(p.created_at),
        paid_at: p.paid_at.map(time),
        additional_params: SeedAdditional {
            payment: p.human_id,
            amount: major(p.amount_cents)?,
            method,
            brand,
            last4,
            expiration_month: month,
            expiration_year: year,
        },
    })
}
