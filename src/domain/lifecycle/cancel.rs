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
    drop(conn);
    cancel_intents(pool, providers, &actor, cancelled).await;
    Ok(order)
}

/// How long a caller waits for its cancels at the provider; the rest go on in the
/// background, so a slow provider does not turn a committed change into a timeout.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Cancels at their provider the intents of attempts cancelled in the database, so they
/// cannot be paid any more; each outcome is an event of the order. It runs in a task of its
/// own, awaited for at most `CANCEL_WAIT`, and it never fails: what goes wrong is logged,
/// and does not undo the cancellation (money that still arrives is recorded as due back).
/// The caller holds no pooled connection.
pub(super) async fn cancel_intents(pool: &DbPool, providers: &Providers, actor: &str, cancelled: Vec<models::Payment>) {
    if cancelled.is_empty() {
        return;
    }
    let (pool, providers, actor) = (pool.clone(), providers.clone(), actor.to_owned());
    let task = tokio::spawn(async move { cancel_all(&pool, &providers, &actor, cancelled).await });
    match tokio::time::timeout(CANCEL_WAIT, task).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "cancelling payment intents at the provider stopped"),
        Err(_) => tracing::warn!("cancelling payment intents at the provider goes on in the background"),
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
            Ok(()) => (kind::INTENT_CANCELLED, None),
            Err(error) => {
                // It may have been paid already (a card confirmed just before), or the
                // cancel went through without an answer: ask, and record what is there.
                let found = providers.in_slot(provider.fetch_payment(&intent)).await.ok();
                if let Some(found) = found.as_ref().filter(|f| f.status == ProviderPaymentStatus::Succeeded) {
                    // Money that arrived is recorded (as due back), so it is not left behind
                    // a cancelled attempt; what it supersedes is cancelled too.
                    match super::reconcile::record_found(pool, provider.name(), &payment, found, actor).await {
                        Ok((_, superseded)) => work.extend(superseded),
                        Err(error) => {
                            tracing::warn!(payment = payment.id, %error, "recording money found on a cancelled intent failed");
                        }
                    }
                }
                if found.is_some_and(|f| f.status == ProviderPaymentStatus::Cancelled) {
                    // The cancel went through after all (its answer was lost), or the intent
                    // was cancelled before.
                    (kind::INTENT_CANCELLED, None)
                } else {
                    tracing::warn!(payment = payment.id, %error, "cancelling a payment intent at the provider failed");
                    (kind::INTENT_CANCEL_FAILED, Some(error.to_string()))
                }
            }
        };
        if event == kind::INTENT_CANCELLED
            && let Err(error) = end_group(pool, &payment, actor).await
        {
            // The janitor's check of the open members finds the intent cancelled later.
            tracing::warn!(payment = payment.id, %error, "ending the other members of a cancelled group payment failed");
        }
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

/// The failure code of a group member's attempt cancelled because the charge it shared was
/// cancelled (one of the group's orders was paid or cancelled another way).
pub const GROUP_PAYMENT_CANCELLED: &str = "group_payment_cancelled";

/// When `payment` is a member of one charge for several orders whose intent was just
/// cancelled at the provider, the members still open are cancelled (their orders can be
/// paid again at once, not after the janitor's next check); members that ended keep how.
async fn end_group(pool: &DbPool, payment: &models::Payment, actor: &str) -> AppResult<()> {
    let mut conn = pool.get().await?;
    // A group's members are fixed when it is made: read once.
    let Some((_, members)) = crate::db::groups::group_of_payment(&mut conn, payment.id).await? else { return Ok(()) };
    conn.transaction::<_, AppError, _>(async |conn| {
        lock_orders_of(conn, payment.id, payment.order_id).await?;
        let mut open = None;
        for member in &members {
            if let Some(current) = queries::find_payment(conn, member.payment_id).await?.filter(is_open) {
                open = Some(current);
                break;
            }
        }
        let Some(open) = open else { return Ok(()) };
        let outcome = PaymentOutcome {
            failure_code: Some(GROUP_PAYMENT_CANCELLED.to_owned()),
            failure_message: Some(format!(
                "the payment for several orders was cancelled: order {} was paid or cancelled another way",
                payment.order_id
            )),
            ..PaymentOutcome::bare(&open, PaymentAttemptStatus::Cancelled)
        };
        // Applied to every member still open; a cancel supersedes nothing.
        apply_outcome(conn, &outcome, actor, &mut Vec::new()).await.map(|_| ())
    })
    .await
}
