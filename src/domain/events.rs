//! The append-only event trail of an order.

use diesel_async::AsyncPgConnection;
use serde_json::Value;

use crate::db::{models, queries};
use crate::error::{AppError, AppResult};

/// Kinds of order events (the `kind` column).
pub mod kind {
    pub const CREATED: &str = "created";
    pub const PAYMENT_STARTED: &str = "payment_started";
    pub const PAYMENT_PROCESSING: &str = "payment_processing";
    pub const PAID: &str = "paid";
    pub const PAYMENT_FAILED: &str = "payment_failed";
    pub const PAYMENT_CANCELLED: &str = "payment_cancelled";
    /// A cancelled attempt's intent was cancelled at its provider (it cannot be paid now).
    pub const INTENT_CANCELLED: &str = "intent_cancelled";
    /// Cancelling an intent at its provider failed: it may still be paid (money then
    /// arrives as due back).
    pub const INTENT_CANCEL_FAILED: &str = "intent_cancel_failed";
    pub const CANCELLED: &str = "cancelled";
    pub const REFUNDED: &str = "refunded";
    /// A refund through a provider reserved its amount and is being sent.
    pub const REFUND_REQUESTED: &str = "refund_requested";
    /// The provider gave no definite answer about a refund (or reports it pending): it
    /// stays PENDING with its reservation until the provider says what happened.
    pub const REFUND_OUTCOME_UNKNOWN: &str = "refund_outcome_unknown";
    pub const REFUND_FAILED: &str = "refund_failed";
    pub const REFUND_DUE: &str = "refund_due";
    /// Money due back (a duplicate payment) went back to the payer.
    pub const DUE_BACK_REFUNDED: &str = "due_back_refunded";
    pub const RECONCILED: &str = "reconciled";
    pub const CALLBACK_IGNORED: &str = "callback_ignored";
    /// A refund request was asked for, approved, denied, cancelled, or issued (seed 004).
    pub const REFUND_REQUEST_CREATED: &str = "refund_request_created";
    pub const REFUND_REQUEST_APPROVED: &str = "refund_request_approved";
    pub const REFUND_REQUEST_DENIED: &str = "refund_request_denied";
    pub const REFUND_REQUEST_CANCELLED: &str = "refund_request_cancelled";
    pub const REFUND_REQUEST_ISSUED: &str = "refund_request_issued";
    /// An approved request's refund was refused for good; the request is PENDING again.
    pub const REFUND_REQUEST_REOPENED: &str = "refund_request_reopened";
    /// A merchant changed the amount, description or payment date of a payment request.
    pub const PAYMENT_REQUEST_UPDATED: &str = "payment_request_updated";
    /// The provider reported a payment's money settled.
    pub const PAYMENT_SETTLED: &str = "payment_settled";
    /// The provider reserved an attempt's amount (manual capture): it waits to be captured.
    pub const PAYMENT_AUTHORIZED: &str = "payment_authorized";
    /// Part of an authorisation was not captured: it was released, no money moved.
    pub const AUTHORIZATION_RELEASED: &str = "authorization_released";
    /// `updatePayment` changed a payment's client fields (seed 002).
    pub const PAYMENT_UPDATED: &str = "payment_updated";
    /// A DRAFT order was opened for payment.
    pub const SUBMITTED: &str = "submitted";
    /// A payment attempt now waits for the customer to authenticate (3-D Secure, OTP).
    pub const AUTHENTICATION_REQUIRED: &str = "authentication_required";
    /// A merchant's webhook delivery was given up after its retries, or its endpoint
    /// answered 410 Gone.
    pub const WEBHOOK_GIVEN_UP: &str = "webhook_given_up";
    /// A merchant's webhook endpoint was disabled (410 Gone, or failing for days).
    pub const WEBHOOK_ENDPOINT_DISABLED: &str = "webhook_endpoint_disabled";
}

/// Appends an event to the order's trail with the order's next sequence number, and, for
/// a store's order whose seed status this change moved, writes the merchant's webhook
/// deliveries to the outbox. Called in the transaction of the change it records, so the
/// event and its deliveries commit (or roll back) with it; outside a transaction it opens
/// one of its own.
pub async fn record(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    kind: &str,
    actor: &str,
    data: Value,
) -> AppResult<models::OrderEvent> {
    use diesel_async::{AsyncConnection, TransactionManager};
    let depth = <AsyncPgConnection as AsyncConnection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .flatten();
    if depth.is_some() {
        record_in_transaction(conn, order_id, kind, actor, &data).await
    } else {
        conn.transaction::<_, AppError, _>(async |conn| record_in_transaction(conn, order_id, kind, actor, &data).await)
            .await
    }
}

async fn record_in_transaction(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    kind: &str,
    actor: &str,
    data: &Value,
) -> AppResult<models::OrderEvent> {
    let order = queries::next_event_seq(conn, order_id).await?;
    let event =
        queries::insert_event(conn, &models::NewOrderEvent { order_id, seq: order.event_seq, kind, actor, data })
            .await?;
    if order.store_id.is_some() {
        super::webhooks::outbox::announce(conn, &order, &event).await?;
        if kind.starts_with("refund_request_") {
            super::webhooks::outbox::announce_refund_request(conn, &order, &event).await?;
        }
    }
    Ok(event)
}

/// The actor name of the payment provider, the one actor a customer sees by name.
pub const PROVIDER_ACTOR: &str = "payment-provider";

/// The actor name of the background worker that resolves unknown outcomes.
pub const JANITOR_ACTOR: &str = "janitor";

/// Details a customer may read: amounts, ids and outcomes. Staff notes, references,
/// provider identifiers and raw provider messages stay with staff.
const CUSTOMER_VISIBLE: &[&str] = &[
    "active",
    "amount_cents",
    "billing_address_changed",
    "cancelled_at",
    "cancelled_payment_ids",
    "captured_cents",
    "charged_balance",
    "credit_balance",
    "due_back",
    "failure_code",
    "group_amount_cents",
    "group_id",
    "group_order_ids",
    "payment_date",
    "payment_id",
    "payment_method",
    "provider",
    "reason",
    "refund_id",
    "refund_request_id",
    "refunded_cents",
    "reserved_cents",
    "status",
    "superseded_payment_ids",
];

/// An event as `caller` may see it: a key bound to one user sees its own name, the
/// provider's, and `staff` for every other key (never its name), and only the details of
/// [`CUSTOMER_VISIBLE`].
pub fn as_seen_by(caller: &super::Caller, mut event: models::OrderEvent) -> models::OrderEvent {
    if !caller.is_confined() {
        return event;
    }
    event.actor = caller.shown_name(&event.actor);
    if let Value::Object(data) = &mut event.data {
        data.retain(|key, _| CUSTOMER_VISIBLE.contains(&key.as_str()));
    }
    event
}
