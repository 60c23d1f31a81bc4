//! `requestRefund`: a customer, a seller or an admin asks for money back.

use diesel_async::AsyncConnection;
use serde_json::json;

use super::{check_coverable, role_name};
use crate::db::refund_requests::{self as q, NewRequest};
use crate::db::{DbPool, models};
use crate::domain::access::Caller;
use crate::domain::enums::RefundRequestStatus;
use crate::domain::events::{self, kind};
use crate::domain::lifecycle::lock_visible_order;
use crate::domain::users::MAX_AMOUNT_CENTS;
use crate::error::{AppError, AppResult};

/// The request reason: trimmed, 1 to 1000 characters.
pub(super) fn reason(field: &str, value: &str) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 1000 || value.contains('\0') {
        return Err(AppError::bad_input(format!("{field} must be 1 to 1000 characters")));
    }
    Ok(value.to_owned())
}

pub async fn request_refund(
    pool: &DbPool,
    caller: &Caller,
    order_id: i64,
    amount_cents: i64,
    request_reason: &str,
) -> AppResult<models::RefundRequest> {
    let role = role_name(caller)?;
    if !(1..=MAX_AMOUNT_CENTS).contains(&amount_cents) {
        return Err(AppError::bad_input(format!(
            "amountCents must be between 1 and {MAX_AMOUNT_CENTS} (got {amount_cents})"
        )));
    }
    let request_reason = reason("reason", request_reason)?;
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // Another user's or another merchant's order is simply not found.
        let order = lock_visible_order(conn, caller, order_id).await?;
        if let Some(open) = q::open_of_order(conn, order.id).await? {
            return Err(AppError::Conflict(format!(
                "order {} already has an open refund request ({}): decide or cancel it first",
                order.number, open.id
            )));
        }
        check_coverable(&order, amount_cents)?;
        let request = q::insert(
            conn,
            &NewRequest {
                order_id: order.id,
                amount_cents,
                currency: &order.currency,
                requester: &actor,
                requester_role: role,
                request_reason: &request_reason,
            },
        )
        .await
        .map_err(|e| match e {
            // The partial unique index, should a concurrent request slip past the check.
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict(format!("order {} already has an open refund request", order.number))
            }
            other => other.into(),
        })?;
        q::insert_transition(
            conn,
            request.id,
            None,
            RefundRequestStatus::Pending.code(),
            &actor,
            role,
            Some(&request_reason),
        )
        .await?;
        events::record(
            conn,
            order.id,
            kind::REFUND_REQUEST_CREATED,
            &actor,
            json!({ "refund_request_id": request.id, "amount_cents": amount_cents, "reason": request_reason,
                    "status": RefundRequestStatus::Pending.as_str() }),
        )
        .await?;
        Ok(request)
    })
    .await
}
