//! `denyRefundRequest` and `cancelRefundRequest`: a PENDING request ends without money.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::request::reason;
use super::{role_name, status_of};
use crate::db::refund_requests::{self as q, Changes};
use crate::db::{DbPool, models};
use crate::domain::access::{Caller, Role};
use crate::domain::enums::RefundRequestStatus;
use crate::domain::events::{self, kind};
use crate::domain::lifecycle::lock_visible_order;
use crate::error::{AppError, AppResult};

/// The request `id` and its order, both locked (order first, as every path locks them), if
/// the caller may see the order; else NOT_FOUND.
pub(super) async fn lock_visible(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: i64,
) -> AppResult<(models::RefundRequest, models::Order)> {
    let missing = || AppError::not_found(format!("refund request {id} not found"));
    let request = q::find(conn, id).await?.ok_or_else(missing)?;
    let order = lock_visible_order(conn, caller, request.order_id).await.map_err(|e| match e {
        AppError::NotFound(_) => missing(),
        other => other,
    })?;
    let request = q::lock(conn, id).await?.ok_or_else(missing)?;
    Ok((request, order))
}

/// Moves a PENDING request to `to` with a transition and an order event.
#[allow(clippy::too_many_arguments)]
pub(super) async fn finish_pending(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    request: &models::RefundRequest,
    order: &models::Order,
    to: RefundRequestStatus,
    response_reason: Option<String>,
    event: &str,
) -> AppResult<models::RefundRequest> {
    let from = status_of(request)?;
    if from != RefundRequestStatus::Pending {
        return Err(AppError::Conflict(format!(
            "refund request {} is {from}: only a PENDING request can become {to}",
            request.id
        )));
    }
    let role = role_name(caller)?;
    let now = Utc::now();
    let keep_response = to == RefundRequestStatus::Denied;
    let updated = q::update(
        conn,
        request.id,
        &Changes {
            status: Some(to.code()),
            response_reason: keep_response.then(|| response_reason.clone()),
            updated_at: Some(now),
            ..Default::default()
        },
    )
    .await?;
    q::insert_transition(
        conn,
        request.id,
        Some(from.code()),
        to.code(),
        &caller.name,
        role,
        response_reason.as_deref(),
    )
    .await?;
    events::record(
        conn,
        order.id,
        event,
        &caller.name,
        json!({ "refund_request_id": request.id, "status": to.as_str(), "reason": response_reason }),
    )
    .await?;
    Ok(updated)
}

/// Denies a PENDING request, with a response reason. Sellers (their own stores' orders) and
/// admins.
pub async fn deny(pool: &DbPool, caller: &Caller, id: i64, response_reason: &str) -> AppResult<models::RefundRequest> {
    if !matches!(caller.role, Role::Admin | Role::Merchant) {
        return Err(AppError::Forbidden("denying a refund request needs a merchant or admin key".to_owned()));
    }
    let response_reason = reason("responseReason", response_reason)?;
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let (request, order) = lock_visible(conn, caller, id).await?;
        finish_pending(
            conn,
            caller,
            &request,
            &order,
            RefundRequestStatus::Denied,
            Some(response_reason),
            kind::REFUND_REQUEST_DENIED,
        )
        .await
    })
    .await
}

/// Cancels a PENDING request: the requester (a customer key its user's request, a merchant
/// key its own) or an admin.
pub async fn cancel(pool: &DbPool, caller: &Caller, id: i64, why: Option<&str>) -> AppResult<models::RefundRequest> {
    role_name(caller)?;
    let why = why.map(|w| reason("reason", w)).transpose()?;
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let (request, order) = lock_visible(conn, caller, id).await?;
        let allowed = match caller.role {
            Role::Admin => true,
            // The order is the caller's (lock_visible): its own side's request.
            Role::Customer => request.requester_role == "customer",
            Role::Merchant => request.requester_role == "merchant",
            Role::Support | Role::Provider => false,
        };
        if !allowed {
            return Err(AppError::Forbidden(format!("only the requester or an admin may cancel refund request {id}")));
        }
        finish_pending(
            conn,
            caller,
            &request,
            &order,
            RefundRequestStatus::Cancelled,
            why,
            kind::REFUND_REQUEST_CANCELLED,
        )
        .await
    })
    .await
}
