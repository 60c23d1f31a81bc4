//! The append-only event trail of an order.

use diesel_async::AsyncPgConnection;
use serde_json::Value;

use crate::db::{models, queries};
use crate::error::AppResult;

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
}

pub async fn record(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    kind: &str,
    actor: &str,
    data: Value,
) -> AppResult<models::OrderEvent> {
    Ok(queries::insert_event(conn, &models::NewOrderEvent { order_id, kind, actor, data: &data }).await?)
}

/// The actor name of the payment provider, the one actor a customer sees by name.
pub const PROVIDER_ACTOR: &str = "payment-provider";

/// The actor name of the background worker that resolves unknown outcomes.
pub const JANITOR_ACTOR: &str = "janitor";

/// Details a customer may read: amounts, ids and outcomes. Staff notes, references,
/// provider identifiers and raw provider messages stay with staff.
const CUSTOMER_VISIBLE: &[&str] = &[
    "amount_cents",
    "cancelled_at",
    "cancelled_payment_ids",
    "charged_balance",
    "credit_balance",
    "failure_code",
    "payment_id",
    "payment_method",
    "provider",
    "reason",
    "refund_id",
    "refunded_cents",
    "status",
    "superseded_payment_ids",
];

/// An event as `caller` may see it: a key bound to one user sees its own name, the
/// provider's, and `staff` for every other key (never its name), and only the details of
/// [`CUSTOMER_VISIBLE`].
pub fn as_seen_by(caller: &super::Caller, mut event: models::OrderEvent) -> models::OrderEvent {
    if caller.user_id.is_none() {
        return event;
    }
    if event.actor != PROVIDER_ACTOR && event.actor != caller.name {
        event.actor = "staff".to_owned();
    }
    if let Value::Object(data) = &mut event.data {
        data.retain(|key, _| CUSTOMER_VISIBLE.contains(&key.as_str()));
    }
    event
}
