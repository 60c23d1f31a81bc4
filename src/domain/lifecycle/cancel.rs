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
    cancel_intents(pool, providers, &actor, cancelled).await;
    Ok(order)
}

/// Cancels at their provider the intents of attempts cancelled in the database, so they
/// cannot be paid any more; each outcome is an event of the order. It runs in a task of its
/// own, so a request that times out does not cut it short, and it never fails: what goes
/// wrong is logged, and does not undo the cancellation (money that still arrives is
/// recorded as due back).
pub(super) async fn cancel_intents(pool: &DbPool, providers: &Providers, actor: &str, cancelled: Vec<models::Payment>) {
    if cancelled.is_empty() {
        return;
    }
    let (pool, providers, actor) = (pool.clone(), providers.clone(), actor.to_owned());
    let task = tokio::spawn(async move { cancel_all(&pool, &providers, &actor, cancelled).await });
    if let Err(error) = task.await {
        tracing::error!(%error, "cancelling payment intents at the provider stopped");
    }
}

/// `cancel_intents`' work list: each intent once (a group's members share one). Money found
/// on an intent that could not be cancelled is recorded, and the attempts that success
/// supersedes join the list. Bounded: an attempt leaves the open states once.
async fn cancel_all(pool: &DbPool, providers: &Providers, actor: &str, cancelled: Vec<models::Payment>) {
    let mut work: std::collections::VecDeque<models::Payment> = cancelled.into();
    let mut done = std::collections::HashSet::new();
    while let Some(payment) = work.pop_front() {
        let Some(intent) = payment.payment_intent_id.clone() else { continue };
        let Ok(provider) = providers.named(&payment.provider) else { continue };
        if provider.name() == "manual" || !done.insert(intent.clone()) {
            continue;
        }
        let (event, detail) = match providers.in_slot(provider.cancel_payment(&intent)).await {
            Ok(()) => {
                // One charge for several orders: every member's attempt ends with it.
                if let Err(error) = end_group(pool, &payment, actor).await {
                    tracing::warn!(payment = payment.id, %error, "ending the other members of a cancelled group payment failed");
                }
                (kind::INTENT_CANCELLED, None)
            }
            Err(error) => {
                // It may have been paid already (a card confirmed just before): ask, and
                // record money that arrived (as due back), so it is not left behind a
                // cancelled attempt.
                let found = providers.in_slot(provider.fetch_payment(&intent)).await.ok();
                match found {
                    Some(found) if found.status == ProviderPaymentStatus::Succeeded => {
                        match super::reconcile::record_found(pool, provider.name(), &payment, &found, actor).await {
                            Ok((_, superseded)) => work.extend(superseded),
                            Err(error) => {
                                tracing::warn!(payment = payment.id, %error, "recording money found on a cancelled intent failed");
                            }
                        }
                    }
                    // Cancelled already (by an earlier request): nothing more to do.
                    Some(found) if found.status == ProviderPaymentStatus::Cancelled => {
                        record_cancel(pool, &payment, kind::INTENT_CANCELLED, None, actor).await;
                        continue;
                    }
                    _ => {}
                }
                tracing::warn!(payment = payment.id, %error, "cancelling a payment intent at the provider failed");
                (kind::INTENT_CANCEL_FAILED, Some(error.to_string()))
            }
        };
        record_cancel(pool, &payment, event, detail, actor).await;
    }
}

/// The event of a cancel at the provider, on the attempt's order (a failure is logged).
async fn record_cancel(pool: &DbPool, payment: &models::Payment, event: &str, detail: Option<String>, actor: &str) {
    let data = json!({ "payment_id": payment.id, "provider": payment.provider, "error": detail });
    let recorded = match pool.get().await {
        Ok(mut conn) => events::record(&mut conn, payment.order_id, event, actor, data).await,
        Err(error) => Err(error.into()),
    };
    if let Err(error) = recorded {
        tracing::warn!(payment = payment.id, %error, "recording a cancel at the provider failed");
    }
}

/// When `payment` is a member of one charge for several orders whose intent was just
/// cancelled at the provider, every member's attempt is cancelled (the others' orders can
/// be paid again at once, not after the janitor's next check).
async fn end_group(pool: &DbPool, payment: &models::Payment, actor: &str) -> AppResult<()> {
    let mut conn = pool.get().await?;
    if crate::db::groups::group_of_payment(&mut conn, payment.id).await?.is_none() {
        return Ok(());
    }
    let outcome = PaymentOutcome::bare(payment, PaymentAttemptStatus::Cancelled);
    conn.transaction::<_, AppError, _>(async |conn| {
        lock_orders_of(conn, payment.id, payment.order_id).await?;
        // A cancel supersedes nothing.
        apply_outcome(conn, &outcome, actor, &mut Vec::new()).await
    })
    .await?;
    Ok(())
}
