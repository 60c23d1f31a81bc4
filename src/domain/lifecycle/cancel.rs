//! `cancelOrder`, and cancelling the intents of abandoned attempts at their provider.

use super::*;

#[derive(Debug, Clone, Default)]
pub struct CancelInput {
    pub order_id: i64,
    pub reason: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// Cancels a PENDING order that is not paid; pending payment attempts are cancelled too,
/// in the database and then at their provider (after the transaction: no provider call
/// runs inside one).
pub async fn cancel_order(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    input: CancelInput,
) -> AppResult<models::Order> {
    // Admins cancel any order; a merchant its own stores' (lock_visible_order finds no other).
    if caller.role != crate::domain::Role::Merchant {
        caller.require_admin("cancelOrder")?;
    }
    let reason = text("reason", input.reason, 500)?;
    let now = Utc::now();
    let cancelled_at = timestamp("cancelledAt", input.cancelled_at, now)?;
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    let (order, cancelled) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let order = lock_visible_order(conn, caller, input.order_id).await?;
            let (status, payment_status) = state(&order)?;
            if status == OrderStatus::Cancelled {
                return Err(AppError::Conflict(format!("order {} is already cancelled", order.number)));
            }
            if is_paid(payment_status) || !matches!(status, OrderStatus::Pending | OrderStatus::Draft) {
                return Err(AppError::Conflict(format!(
                    "order {} is {status}/{payment_status}: a paid order cannot be cancelled, refund it instead",
                    order.number
                )));
            }
            refuse_while_capturing(conn, &order).await?;
            let cancelled = cancel_pending_attempts(conn, order.id, now).await?;
            let cancelled_payments: Vec<i64> = cancelled.iter().map(|p| p.id).collect();
            // No attempt is under way any more.
            let payment_status =
                if payment_status == PaymentStatus::Processing { PaymentStatus::Unpaid } else { payment_status };
            let order = queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    status: Some(OrderStatus::Cancelled.code()),
                    payment_status: Some(payment_status.code()),
                    cancelled_at: Some(Some(cancelled_at)),
                    cancel_reason: Some(reason.clone()),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::CANCELLED,
                &actor,
                json!({ "reason": reason, "cancelled_at": cancelled_at, "cancelled_payment_ids": cancelled_payments }),
            )
            .await?;
            Ok((order, cancelled))
        })
        .await?;
    cancel_intents(pool, providers, &actor, cancelled).await?;
    Ok(order)
}

/// Cancels at their provider the intents of attempts cancelled in the database, so they
/// cannot be paid any more; each outcome is an event of the order. A failure does not
/// undo the cancellation: money that still arrives is recorded as due back.
pub(super) async fn cancel_intents(
    pool: &DbPool,
    providers: &Providers,
    actor: &str,
    cancelled: Vec<models::Payment>,
) -> AppResult<()> {
    for payment in cancelled {
        let Some(intent) = payment.payment_intent_id.as_deref() else { continue };
        let Ok(provider) = providers.named(&payment.provider) else { continue };
        if provider.name() == "manual" {
            continue;
        }
        let outcome = providers.in_slot(provider.cancel_payment(intent)).await;
        let (event, detail) = match &outcome {
            Ok(()) => (kind::INTENT_CANCELLED, None),
            Err(error) => {
                tracing::warn!(payment = payment.id, %error, "cancelling a payment intent at the provider failed");
                (kind::INTENT_CANCEL_FAILED, Some(error.to_string()))
            }
        };
        if outcome.is_err() {
            // It may have been paid already (a card confirmed just before): ask, and record
            // money that arrived (as due back), so it is not left behind a cancelled attempt.
            let found = providers.in_slot(provider.fetch_payment(intent)).await.ok();
            if let Some(found) = found.filter(|f| f.status == ProviderPaymentStatus::Succeeded)
                // The order let go of this attempt already: nothing else is superseded.
                && let Err(error) = super::reconcile::record_found(pool, provider.name(), &payment, &found, actor).await
            {
                tracing::warn!(payment = payment.id, %error, "recording money found on a cancelled intent failed");
            }
        }
        let mut conn = pool.get().await?;
        events::record(
            &mut conn,
            payment.order_id,
            event,
            actor,
            json!({ "payment_id": payment.id, "provider": payment.provider, "error": detail }),
        )
        .await?;
    }
    Ok(())
}
