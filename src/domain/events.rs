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
    pub const CANCELLED: &str = "cancelled";
    pub const REFUNDED: &str = "refunded";
    pub const REFUND_FAILED: &str = "refund_failed";
    pub const REFUND_DUE: &str = "refund_due";
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
