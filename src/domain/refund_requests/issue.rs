//! `approveRefundRequest`: PENDING → PROCESSING under the order's lock (the amount checked
//! again), then the refund is issued through `refunds::refund_order` with the request's own
//! key, and the request becomes ISSUED in the transaction that marks the refund succeeded.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::decide::lock_visible;
use super::{check_coverable, role_name, status_of};
use crate::db::refund_requests::{self as q, Changes};
use crate::db::{DbPool, models};
use crate::domain::access::{Caller, Role};
use crate::domain::enums::RefundRequestStatus;
use crate::domain::events::{self, kind};
use crate::domain::refunds::{self, RefundInput};
use crate::error::{AppError, AppResult};
use crate::providers::Providers;

/// Approves a PENDING request and issues its refund (through the provider, or to the
/// buyer's balance with `credit_balance`). On a PROCESSING request it issues again what a
/// definite provider failure left undone; a refund whose outcome is unknown is continued,
/// never sent twice. Sellers (their own stores' orders) and admins.
pub async fn approve(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    id: i64,
    response_reason: Option<&str>,
    credit_balance: bool,
) -> AppResult<models::RefundRequest> {
    if !matches!(caller.role, Role::Admin | Role::Merchant) {
        return Err(AppError::Forbidden("approving a refund request needs a merchant or admin key".to_owned()));
    }
    let role = role_name(caller)?;
    let response_reason = response_reason.map(|r| super::request::reason("responseReason", r)).transpose()?;
    let mut conn = pool.get().await?;
    let request = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (request, order) = lock_visible(conn, caller, id).await?;
            match status_of(&request)? {
                RefundRequestStatus::Pending => {}
                RefundRequestStatus::Processing => return Ok(request),
                other => {
                    return Err(AppError::Conflict(format!(
                        "refund request {id} is {other}: only a PENDING request can be approved"
                    )));
                }
            }
            // Again under the order's lock: a direct refund may have taken the money since.
            check_coverable(&order, request.amount_cents)?;
            let now = Utc::now();
            let approved = q::update(
                conn,
                id,
                &Changes {
                    status: Some(RefundRequestStatus::Processing.code()),
                    response_reason: Some(response_reason.clone()),
                    updated_at: Some(now),
                    confirmed_at: Some(Some(now)),
                    ..Default::default()
                },
            )
            .await?;
            q::insert_transition(
                conn,
                id,
                Some(RefundRequestStatus::Pending.code()),
                RefundRequestStatus::Processing.code(),
                &caller.name,
                role,
                response_reason.as_deref(),
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::REFUND_REQUEST_APPROVED,
                &caller.name,
                json!({ "refund_request_id": id, "amount_cents": request.amount_cents, "status": "PROCESSING" }),
            )
            .await?;
            Ok(approved)
        })
        .await?;
    drop(conn);

    // The refund runs as the approver, with the request's key: a retry of this approval,
    // or the janitor, reaches the same refund.
    let issuer = Caller {
        key_id: caller.key_id,
        name: caller.name.clone(),
        role: Role::Admin,
        user_id: None,
        merchant_id: None,
        request_key: Some(request.refund_key.clone()),
    };
    let issued = refunds::refund_order(
        pool,
        providers,
        &issuer,
        RefundInput {
            order_id: request.order_id,
            amount_cents: request.amount_cents,
            reason: Some(format!("refund request {id}: {}", request.request_reason).chars().take(500).collect()),
            credit_balance,
            ..Default::default()
        },
    )
    .await;
    match issued {
        Ok(_) => {}
        Err(AppError::Conflict(why)) => {
            // Definitely not issued (the order can no longer cover it): the request is
            // PENDING again, and shows as not valid.
            reopen(pool, caller, role, id, &why).await?;
            return Err(AppError::Conflict(why));
        }
        // A provider's own words (and its ids) stay with staff.
        Err(AppError::Provider(_)) if caller.role == Role::Merchant => {
            return Err(AppError::Provider(
                "the payment provider refused the refund; the request is PENDING again: approve it later or deny it"
                    .to_owned(),
            ));
        }
        // Unknown (OUTCOME_PENDING): the request stays PROCESSING until the refund settles;
        // a definite refusal put it back to PENDING already.
        Err(other) => return Err(other),
    }
    let mut conn = pool.get().await?;
    q::find(&mut conn, id).await?.ok_or_else(|| AppError::internal(anyhow::anyhow!("refund request {id} vanished")))
}

async fn reopen(pool: &DbPool, caller: &Caller, role: &str, id: i64, why: &str) -> AppResult<()> {
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let (request, order) = lock_visible(conn, caller, id).await?;
        if status_of(&request)? != RefundRequestStatus::Processing {
            return Ok(());
        }
        // Under the order's lock: a refund of this request that another approval started
        // meanwhile (live or succeeded) keeps it PROCESSING; that refund decides.
        if crate::db::queries::refund_of_request(conn, &request.refund_key).await?.is_some() {
            return Ok(());
        }
        q::update(
            conn,
            id,
            &Changes {
                status: Some(RefundRequestStatus::Pending.code()),
                updated_at: Some(Utc::now()),
                confirmed_at: Some(None),
                ..Default::default()
            },
        )
        .await?;
        let note = format!("could not be issued: {why}");
        let note: String = note.chars().take(1000).collect();
        q::insert_transition(
            conn,
            id,
            Some(RefundRequestStatus::Processing.code()),
            RefundRequestStatus::Pending.code(),
            &caller.name,
            role,
            Some(&note),
        )
        .await?;
        events::record(
            conn,
            order.id,
            kind::REFUND_REQUEST_REOPENED,
            &caller.name,
            json!({ "refund_request_id": id, "reason": note }),
        )
        .await?;
        Ok(())
    })
    .await
}

/// Called in the transaction that marks `refund` succeeded (the order locked): the request
/// it issues, if any, becomes ISSUED.
pub async fn on_refund_succeeded(conn: &mut AsyncPgConnection, refund: &models::Refund, actor: &str) -> AppResult<()> {
    let Some(key) = refund.request_key.as_deref().filter(|k| k.starts_with("refund-request/")) else {
        return Ok(());
    };
    let Some(request) = q::find_by_refund_key(conn, key).await? else {
        return Ok(());
    };
    let from = status_of(&request)?;
    if !matches!(from, RefundRequestStatus::Processing | RefundRequestStatus::Pending) {
        // Money that went back for a request ended meanwhile is still recorded on the order
        // (the refund itself); the request keeps its end.
        return Ok(());
    }
    let now = Utc::now();
    q::update(
        conn,
        request.id,
        &Changes {
            status: Some(RefundRequestStatus::Issued.code()),
            updated_at: Some(now),
            confirmed_at: Some(Some(request.confirmed_at.unwrap_or(now))),
            issued_at: Some(Some(now)),
            ..Default::default()
        },
    )
    .await?;
    // The refund settled it, whoever asked the provider last: the system's transition.
    q::insert_transition(
        conn,
        request.id,
        Some(from.code()),
        RefundRequestStatus::Issued.code(),
        actor,
        "system",
        None,
    )
    .await?;
    events::record(
        conn,
        request.order_id,
        kind::REFUND_REQUEST_ISSUED,
        actor,
        json!({ "refund_request_id": request.id, "refund_id": refund.id, "amount_cents": refund.amount_cents }),
    )
    .await?;
    Ok(())
}

/// Called in the transaction that marks `refund` FAILED (a definite refusal, the order
/// locked): the request it was issuing is PENDING again, to be approved again, denied or
/// cancelled.
pub async fn on_refund_failed(conn: &mut AsyncPgConnection, refund: &models::Refund, actor: &str) -> AppResult<()> {
    let Some(key) = refund.request_key.as_deref().filter(|k| k.starts_with("refund-request/")) else {
        return Ok(());
    };
    let Some(request) = q::find_by_refund_key(conn, key).await? else {
        return Ok(());
    };
    if status_of(&request)? != RefundRequestStatus::Processing {
        return Ok(());
    }
    q::update(
        conn,
        request.id,
        &Changes {
            status: Some(RefundRequestStatus::Pending.code()),
            updated_at: Some(Utc::now()),
            confirmed_at: Some(None),
            ..Default::default()
        },
    )
    .await?;
    // The provider's own words stay in the refund's last error and its staff-only event
    // data; the history, which the requester reads, says only what happened.
    let note = format!("the payment provider refused refund {}", refund.id);
    q::insert_transition(
        conn,
        request.id,
        Some(RefundRequestStatus::Processing.code()),
        RefundRequestStatus::Pending.code(),
        actor,
        "system",
        Some(&note),
    )
    .await?;
    events::record(
        conn,
        request.order_id,
        kind::REFUND_REQUEST_REOPENED,
        actor,
        json!({ "refund_request_id": request.id, "refund_id": refund.id }),
    )
    .await?;
    Ok(())
}
