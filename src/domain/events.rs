//! The append-only event trail of an order.

use diesel_async::AsyncPgConnection;
use serde_json::Value;

use crate::db::{models, queries};
use crate::error::AppResult;

/// Kinds of order events (the `kind` column).
pub mod kind {
    pub const CREATED: &str = "created";
    pub const PAYMENT_STARTED: &str = "payment_started";
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
