//! `capturePayment` and `cancelPayment`: taking what an authorised attempt reserved, or
//! letting go of an open attempt (and of its reservation).
//!
//! Both check under the order's and the payment's locks, call the provider outside any
//! transaction, and then apply what the provider answered through `apply_found`, the path
//! of callbacks and reconciles. The provider decides races: of a capture and a cancel (or
//! two captures of different amounts) sent at once, it carries out one and refuses the
//! other, and the refused request records what the provider now reports.

use super::*;

/// Who may act on the payment: admins, merchants for their stores' orders (visibility
/// already narrowed what they find), and, for a cancel, the customer whose order it is.
fn allowed(caller: &Caller, action: &str, order: &models::Order, customers_too: bool) -> AppResult<()> {
    match caller.role {
        crate::domain::Role::Merchant => Ok(()),
        crate::domain::Role::Customer if customers_too => caller.require_admin_or_owner(action, order.user_id),
        _ => caller.require_admin(action),
    }
}

/// The payment `payment_id` and its order, locked, if the caller may see them (for a
/// payment of several orders, all of them are locked first, in id order, and must all be
/// visible), and whether it pays several orders.
async fn lock_visible_payment(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    payment_id: i64,
) -> AppResult<(models::Order, models::Payment, bool)> {
    let missing = || AppError::not_found(format!("payment {payment_id} not found"));
    let payment = crate::domain::payments::get_payment_in(conn, caller, payment_id).await?.ok_or_else(missing)?;
    let orders = crate::db::groups::orders_to_lock(conn, payment.id, payment.order_id).await?;
    let mut own = None;
    for id in &orders {
        let order = match lock_visible_order(conn, caller, *id).await {
            Err(AppError::NotFound(_)) => return Err(missing()),
            other => other?,
        };
        if order.id == payment.order_id {
            own = Some(order);
        }
    }
    let order = own.ok_or_else(missing)?;
    let payment = queries::lock_payment_of_order(conn, order.id, payment.id).await?.ok_or_else(missing)?;
    Ok((order, payment, orders.len() > 1))
}

fn attempt_of(payment: &models::Payment) -> AppResult<PaymentAttemptStatus> {
    decode(payment.status, PaymentAttemptStatus::from_code, "payment attempt status")
}

/// After the provider refused a request: what it reports now, recorded; the payment as it
/// is then.
async fn learn(
    pool: &DbPool,
    providers: &Providers,
    provider: &dyn PaymentProvider,
    payment: models::Payment,
    intent: &str,
    actor: &str,
) -> AppResult<models::Payment> {
    let found = providers.in_slot(provider.fetch_payment(intent)).await?;
    apply_found(pool, providers, provider.name(), &payment, &found, actor).await?;
    reread(pool, payment).await
}

/// Captures `amount_cents` (default: all) of an AUTHORIZED payment. At most what is
/// reserved; the rest of the reservation is released. The order is paid when the provider
/// confirms the capture.
pub async fn capture_payment(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    payment_id: i64,
    amount_cents: Option<i64>,
) -> AppResult<models::Payment> {
    let (payment, amount) = {
        let mut conn = pool.get().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let (order, payment, grouped) = lock_visible_payment(conn, caller, payment_id).await?;
            allowed(caller, "capturePayment", &order, false)?;
            if grouped {
                return Err(AppError::Conflict(format!(
                    "payment {payment_id} is one charge for several orders (payOrders), which is never reserved to capture later"
                )));
            }
            let attempt = attempt_of(&payment)?;
            if attempt != PaymentAttemptStatus::Authorized {
                return Err(AppError::Conflict(format!(
                    "payment {payment_id} is {attempt}; only an AUTHORIZED payment (created with captureMethod MANUAL and reserved by the provider) can be captured"
                )));
            }
            let (status, payment_status) = state(&order)?;
            if status != OrderStatus::Pending || is_paid(payment_status) {
                return Err(AppError::Conflict(format!(
                    "order {} is {status}/{payment_status}; only a PENDING order that is not paid can be captured for",
                    order.number
                )));
            }
            let amount = amount_cents.unwrap_or(payment.amount_cents);
            if !(1..=payment.amount_cents).contains(&amount) {
                return Err(AppError::bad_input(format!(
                    "amountCents must be between 1 and the {} reserved (got {amount})",
                    payment.amount_cents
                )));
            }
            let provider = providers.named(&payment.provider)?;
            let currency = crate::money::Currency::of_stored(&payment.currency)?;
            provider.check_amount(amount, currency).map_err(|reason| AppError::bad_input(format!("amountCents: {reason}")))?;
            // One capture per reservation: a repeat of the claimed one goes on (the
            // provider carries it out once), another amount waits for its outcome.
            match crate::db::groups::capture_claim(conn, payment.id).await? {
                Some(claimed) if claimed != amount => {
                    return Err(AppError::Conflict(format!(
                        "a capture of {claimed} of payment {payment_id} is under way; it cannot also be captured for {amount}"
                    )));
                }
                _ => {
                    crate::db::groups::claim_capture(conn, payment.id, amount, &caller.name).await?;
                }
            }
            Ok((payment, amount))
        })
        .await?
    };
    let provider = providers.named(&payment.provider)?;
    let intent = payment
        .payment_intent_id
        .clone()
        .ok_or_else(|| AppError::Conflict(format!("payment {payment_id} has no provider payment to capture")))?;
    let actor = format!("{} (capture)", caller.name);
    // One key per amount: a repeat of the same capture is carried out once; a capture of
    // another amount is a different request, which the provider refuses once one went through.
    let key = format!("payment-{payment_id}-capture-{amount}");
    let answer = providers.in_slot(provider.capture_payment(&intent, amount, &key)).await;
    match answer {
        Ok(mut found) => {
            if found.status == ProviderPaymentStatus::Succeeded && found.amount_received.is_none() {
                // The provider carried out this request: it took what was asked.
                found.amount_received = Some(amount);
            }
            apply_found(pool, providers, provider.name(), &payment, &found, &actor).await?;
            let now = reread(pool, payment).await?;
            if now.status != PaymentAttemptStatus::Succeeded.code() {
                return Err(AppError::Conflict(format!(
                    "the provider did not capture payment {payment_id}: it reports {}",
                    found.raw_status
                )));
            }
            Ok(now)
        }
        Err(ProviderError::Rejected(reason)) => {
            // Captured or released already (another request won), or expired: record what
            // the provider reports, then say so. This request took nothing: it lets go of
            // its hold on the claim first (another request may still hold it).
            release_claim(pool, payment_id).await;
            let now = learn(pool, providers, provider, payment, &intent, &actor).await?;
            Err(AppError::Conflict(format!(
                "the provider refused to capture payment {payment_id} ({reason}); it is now {}",
                decode(now.status, PaymentAttemptStatus::from_code, "payment attempt status")?
            )))
        }
        Err(error @ ProviderError::Ambiguous(_)) => {
            // The capture may have happened: the janitor asks soon.
            let mut conn = pool.get().await?;
            queries::reschedule_payment(&mut conn, payment_id, Utc::now(), Some(&error.to_string())).await?;
            Err(error.into())
        }
        Err(error) => {
            // Nothing was sent (no slot, no connection): this request takes nothing.
            release_claim(pool, payment_id).await;
            Err(error.into())
        }
    }
}

/// This request lets go of its hold on the capture claim. A failure is logged, not
/// answered: the claim then stays until the janitor finds it stale.
async fn release_claim(pool: &DbPool, payment_id: i64) {
    let released = async {
        let mut conn = pool.get().await?;
        crate::db::groups::release_capture_claim(&mut conn, payment_id).await?;
        Ok::<_, AppError>(())
    };
    if let Err(error) = released.await {
        tracing::warn!(payment = payment_id, %error, "releasing a capture claim failed; the janitor clears it later");
    }
}

/// Cancels an open attempt: a PENDING one stops, an AUTHORIZED one releases its
/// reservation at the provider. An attempt of a payment for several orders cancels that
/// payment, for all of them. The order's payment becomes UNPAID unless another attempt
/// is open.
pub async fn cancel_payment(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    payment_id: i64,
) -> AppResult<models::Payment> {
    let actor = format!("{} (cancel)", caller.name);
    let outcome = |payment: &models::Payment| PaymentOutcome::bare(payment, PaymentAttemptStatus::Cancelled);
    let (payment, done) = {
        let mut conn = pool.get().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let (order, payment, _) = lock_visible_payment(conn, caller, payment_id).await?;
            allowed(caller, "cancelPayment", &order, true)?;
            refuse_while_capturing(conn, &order).await?;
            let attempt = attempt_of(&payment)?;
            if !PaymentAttemptStatus::OPEN.contains(&attempt) {
                return Err(AppError::Conflict(format!(
                    "payment {payment_id} is {attempt}; only a PENDING or AUTHORIZED payment can be cancelled (refund a paid one)"
                )));
            }
            let at_provider = payment.payment_intent_id.is_some() && payment.provider != "manual";
            if !at_provider {
                // Nothing to release anywhere else: cancelled here and now.
                apply_outcome(conn, &outcome(&payment), &actor, &mut Vec::new()).await?;
            }
            Ok((payment, !at_provider))
        })
        .await?
    };
    if done {
        return reread(pool, payment).await;
    }
    let provider = providers.named(&payment.provider)?;
    let intent = payment.payment_intent_id.clone().unwrap_or_default();
    let answer = providers.in_slot(provider.cancel_payment(&intent)).await;
    match answer {
        Ok(()) => {
            let mut conn = pool.get().await?;
            let cancelled = outcome(&payment);
            conn.transaction::<_, AppError, _>(async |conn| {
                apply_outcome(conn, &cancelled, &actor, &mut Vec::new()).await
            })
            .await?;
            reread(pool, payment).await
        }
        Err(ProviderError::Rejected(reason)) => {
            // Taken or ended already: record what the provider reports, then say so.
            let now = learn(pool, providers, provider, payment, &intent, &actor).await?;
            if now.status == PaymentAttemptStatus::Cancelled.code() {
                return Ok(now);
            }
            Err(AppError::Conflict(format!(
                "the provider refused to cancel payment {payment_id} ({reason}); it is now {}",
                attempt_of(&now)?
            )))
        }
        Err(error @ ProviderError::Ambiguous(_)) => {
            // The cancel may have happened: the janitor asks soon.
            let mut conn = pool.get().await?;
            queries::reschedule_payment(&mut conn, payment_id, Utc::now(), Some(&error.to_string())).await?;
            Err(error.into())
        }
        Err(error) => Err(error.into()),
    }
}
