//! Diesel models: a read struct and, where rows are inserted, a `New*` struct beside it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value as Json;

use uuid::Uuid;

use super::schema::{
    api_keys, balance_ledger, merchant_endpoints, merchant_secrets, merchants, order_events, order_items, orders,
    payment_requests, payments, refund_request_transitions, refund_requests, refunds, stores, users, webhook_attempts,
    webhook_deliveries,
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub balance_cents: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub balance_cents: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = balance_ledger, check_for_backend(diesel::pg::Pg))]
pub struct LedgerEntry {
    pub id: i64,
    pub user_id: i64,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub kind: String,
    pub order_id: Option<i64>,
    pub refund_id: Option<i64>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = balance_ledger)]
pub struct NewLedgerEntry<'a> {
    pub user_id: i64,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub kind: &'a str,
    pub order_id: Option<i64>,
    pub refund_id: Option<i64>,
    pub note: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub struct Order {
    pub id: i64,
    pub number: String,
    /// The buyer; a store's payment request may have none yet.
    pub user_id: Option<i64>,
    pub status: i16,
    pub payment_status: i16,
    pub payment_intent_id: Option<String>,
    pub payment_reference: Option<String>,
    pub payment_failure_code: Option<String>,
    pub payment_failure_message: Option<String>,
    pub total_cents: i64,
    pub currency: String,
    pub payment_method: String,
    pub plan_id: Option<i64>,
    pub plan_snapshot: Json,
    pub metadata: Json,
    pub cancel_reason: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub refunded_cents: i64,
    pub refund_pending_cents: i64,
    pub refunded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The public id (seed 001's `id`).
    pub public_id: Uuid,
    /// Set for a store's payment request, with the store's merchant.
    pub store_id: Option<Uuid>,
    pub merchant_id: Option<Uuid>,
    /// The sequence number of the order's last event.
    pub event_seq: i64,
}

/// A change to an order; `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = orders)]
pub struct OrderChanges {
    pub status: Option<i16>,
    pub total_cents: Option<i64>,
    pub payment_status: Option<i16>,
    pub payment_intent_id: Option<Option<String>>,
    pub payment_reference: Option<Option<String>>,
    pub payment_failure_code: Option<Option<String>>,
    pub payment_failure_message: Option<Option<String>>,
    pub payment_method: Option<String>,
    pub cancel_reason: Option<Option<String>>,
    pub paid_at: Option<Option<DateTime<Utc>>>,
    pub cancelled_at: Option<Option<DateTime<Utc>>>,
    pub refunded_cents: Option<i64>,
    pub refund_pending_cents: Option<i64>,
    pub refunded_at: Option<Option<DateTime<Utc>>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
pub struct NewOrder<'a> {
    pub id: i64,
    pub number: &'a str,
    pub user_id: Option<i64>,
    pub status: i16,
    pub store_id: Option<Uuid>,
    pub merchant_id: Option<Uuid>,
    pub total_cents: i64,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub plan_id: Option<i64>,
    pub plan_snapshot: &'a Json,
    pub metadata: &'a Json,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = order_items, check_for_backend(diesel::pg::Pg))]
pub struct OrderItem {
    pub id: i64,
    pub order_id: i64,
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub total_cents: i64,
    pub metadata: Json,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = order_items)]
pub struct NewOrderItem<'a> {
    pub order_id: i64,
    pub name: &'a str,
    pub sku: Option<&'a str>,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub total_cents: i64,
    pub metadata: &'a Json,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub status: i16,
    pub provider: String,
    pub payment_method: String,
    pub amount_cents: i64,
    pub currency: String,
    pub reference: Option<String>,
    pub payment_intent_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub note: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How many times the janitor asked the provider about this attempt.
    pub checks: i32,
    /// When the janitor asks next, while the attempt is PENDING.
    pub next_check_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// What the customer must complete (`THREE_DS` or `OTP`), while or after waiting for it.
    pub authentication: Option<String>,
    pub authentication_expires_at: Option<DateTime<Utc>>,
    /// Six characters, unique, without look-alikes (generated by the database from `id`).
    pub human_id: String,
    pub description: Option<String>,
    pub billing_address: Option<serde_json::Value>,
    pub metadata: serde_json::Value,
    /// Seed 002's flag; an inactive payment keeps its state and money.
    pub active: bool,
    /// Seed 002's scheduling date: stored and shown, never acted on.
    pub payment_date: Option<DateTime<Utc>>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i16>,
    pub card_exp_year: Option<i16>,
    /// When the provider reported the money settled, and how much.
    pub settled_at: Option<DateTime<Utc>>,
    pub settled_cents: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = payments)]
pub struct NewPayment<'a> {
    pub order_id: i64,
    pub status: i16,
    pub provider: &'a str,
    pub payment_method: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub reference: Option<&'a str>,
    pub payment_intent_id: Option<&'a str>,
    pub note: Option<&'a str>,
    pub paid_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    #[diesel(embed)]
    pub details: PaymentDetails,
}

/// What a client may say about a payment beyond its amount (seed 002), and the card's
/// shown parts; `None` leaves the column's default.
#[derive(Debug, Default, Clone, Insertable)]
#[diesel(table_name = payments)]
pub struct PaymentDetails {
    pub description: Option<String>,
    pub billing_address: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
    pub active: Option<bool>,
    pub payment_date: Option<DateTime<Utc>>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i16>,
    pub card_exp_year: Option<i16>,
}

/// A change to a payment attempt; `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = payments)]
pub struct PaymentChanges {
    pub status: Option<i16>,
    pub reference: Option<Option<String>>,
    pub payment_intent_id: Option<Option<String>>,
    pub failure_code: Option<Option<String>>,
    pub failure_message: Option<Option<String>>,
    pub paid_at: Option<Option<DateTime<Utc>>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<Option<DateTime<Utc>>>,
    pub last_error: Option<Option<String>>,
    pub authentication: Option<Option<String>>,
    pub authentication_expires_at: Option<Option<DateTime<Utc>>>,
    pub payment_method: Option<String>,
    pub active: Option<bool>,
    pub billing_address: Option<Option<serde_json::Value>>,
    pub payment_date: Option<Option<DateTime<Utc>>>,
    pub settled_at: Option<Option<DateTime<Utc>>>,
    pub settled_cents: Option<Option<i64>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = refunds, check_for_backend(diesel::pg::Pg))]
pub struct Refund {
    pub id: i64,
    pub order_id: i64,
    pub payment_id: Option<i64>,
    pub status: i16,
    pub amount_cents: i64,
    pub currency: String,
    pub reason: Option<String>,
    pub metadata: Json,
    pub credit_balance: bool,
    pub provider_refund_id: Option<String>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The client's Idempotency-Key (scoped to its API key) that asked for this refund.
    pub request_key: Option<String>,
    /// How many times the janitor asked the provider about this refund.
    pub checks: i32,
    /// When the janitor asks next, while the refund is PENDING.
    pub next_check_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Returns money of a duplicate payment, not the order's own (see migration 4).
    pub due_back: bool,
    /// The part of an authorisation that was not captured: no money moved (migration 12).
    pub released: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refunds)]
pub struct NewRefund<'a> {
    pub order_id: i64,
    pub payment_id: Option<i64>,
    pub status: i16,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub reason: Option<&'a str>,
    pub metadata: &'a Json,
    pub credit_balance: bool,
    pub request_key: Option<&'a str>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub due_back: bool,
    pub released: bool,
    /// Set only for a refund recorded as done when it is created (a release).
    pub refunded_at: Option<DateTime<Utc>>,
}

/// A change to a refund.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = refunds)]
pub struct RefundChanges {
    pub status: Option<i16>,
    pub provider_refund_id: Option<Option<String>>,
    pub refunded_at: Option<Option<DateTime<Utc>>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<Option<DateTime<Utc>>>,
    pub last_error: Option<Option<String>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = order_events, check_for_backend(diesel::pg::Pg))]
pub struct OrderEvent {
    pub id: i64,
    pub order_id: i64,
    pub kind: String,
    pub actor: String,
    pub data: Json,
    pub created_at: DateTime<Utc>,
    /// 1, 2, 3, … within the order.
    pub seq: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = order_events)]
pub struct NewOrderEvent<'a> {
    pub order_id: i64,
    pub seq: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub data: &'a Json,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub user_id: Option<i64>,
    pub key_prefix: String,
    pub key_hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub merchant_id: Option<Uuid>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub user_id: Option<i64>,
    pub merchant_id: Option<Uuid>,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = merchants, check_for_backend(diesel::pg::Pg))]
pub struct Merchant {
    pub id: Uuid,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = stores, check_for_backend(diesel::pg::Pg))]
pub struct Store {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub store_name: String,
    pub office_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = merchant_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct MerchantEndpoint {
    pub id: i64,
    pub merchant_id: Uuid,
    pub url: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = merchant_secrets, check_for_backend(diesel::pg::Pg))]
pub struct MerchantSecret {
    pub id: i64,
    pub merchant_id: Uuid,
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a merchant said about a payment request (one row per store order).
#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = payment_requests, primary_key(order_id), check_for_backend(diesel::pg::Pg))]
pub struct PaymentRequest {
    pub order_id: i64,
    pub customer_ref: Option<String>,
    pub customer_order_ref: Option<String>,
    pub description: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub callback_url: Option<String>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    pub payment_type: String,
    pub installment_term: Option<i16>,
    pub payment_date: Option<DateTime<Utc>>,
    pub announced_status: Option<String>,
    pub created_by: String,
    pub updated_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: String,
    pub merchant_id: Uuid,
    pub order_id: i64,
    pub order_seq: i64,
    pub event_type: String,
    pub endpoint_id: Option<i64>,
    pub url: String,
    pub body: String,
    pub state: i16,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub given_up_at: Option<DateTime<Utc>>,
    /// How many times the row was claimed; a claim holds while this is its number.
    pub claims: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct NewWebhookDelivery<'a> {
    pub webhook_id: &'a str,
    pub merchant_id: Uuid,
    pub order_id: i64,
    pub order_seq: i64,
    pub event_type: &'a str,
    pub endpoint_id: Option<i64>,
    pub url: &'a str,
    pub body: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_attempts, check_for_backend(diesel::pg::Pg))]
pub struct WebhookAttempt {
    pub id: i64,
    pub delivery_id: i64,
    pub attempt: i32,
    pub url: String,
    pub response_status: Option<i32>,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct NewWebhookAttempt<'a> {
    pub delivery_id: i64,
    pub attempt: i32,
    pub url: &'a str,
    pub response_status: Option<i32>,
    pub response_excerpt: Option<&'a str>,
    pub error: Option<&'a str>,
    pub latency_ms: i32,
}

/// A refund request (seed 004).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = refund_requests, check_for_backend(diesel::pg::Pg))]
pub struct RefundRequest {
    pub id: i64,
    pub order_id: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub status: i16,
    pub requester: String,
    pub requester_role: String,
    pub request_reason: String,
    pub response_reason: Option<String>,
    pub refund_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
}

/// One transition of a refund request.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = refund_request_transitions, check_for_backend(diesel::pg::Pg))]
pub struct RefundRequestTransition {
    pub id: i64,
    pub request_id: i64,
    pub from_status: Option<i16>,
    pub to_status: i16,
    pub actor: String,
    pub role: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}
