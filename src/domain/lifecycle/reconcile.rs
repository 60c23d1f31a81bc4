//! `reconcilePayment`: asks the provider and applies its answer like a callback.

use super::*;

/// The provider's settlement of `payment`, when it can be recorded: in the payment's own
/// currency (an account settling in another currency reports another amount) and within
/// what was charged (`charged`: the amount, or a group's sum). Anything else is left out, so it cannot undo the success it came with.
fn usable_settlement(payment: &models::Payment, charged: i64, found: &ProviderPayment) -> Option<(DateTime<Utc>, i64)> {
    let (at, net, currency) = found.settled.clone()?;
    if found.status != ProviderPaymentStatus::Succeeded {
        return None;
    }
    let paid = payment.paid_at.or(found.paid_at);
    if currency != payment.currency || !(0..=charged).contains(&net) || paid.is_some_and(|p| at < p) {
        tracing::warn!(payment = payment.id, net, %currency, "a settlement the payment cannot hold is not recorded");
        return None;
    }
    Some((at, net))
}

fn outcome_from_provider(payment: &models::Payment, found: &ProviderPayment) -> PaymentOutcome {
    let authorized = payment.status == PaymentAttemptStatus::Authorized.code();
    let failure_code = match found.status {
        // An authorisation cancelled by nobody here ran out at the provider (Stripe gives
        // no reason on some paths).
        ProviderPaymentStatus::Cancelled if authorized => {
            found.failure_code.clone().or_else(|| Some(crate::providers::AUTHORIZATION_EXPIRED.to_owned()))
        }
        _ => found.failure_code.clone(),
    };
    PaymentOutcome {
        order_id: payment.order_id,
        payment_id: payment.id,
        // What was taken, when the provider says (else all of it, or the capture claimed).
        captured_cents: if found.status == ProviderPaymentStatus::Succeeded { found.amount_received } else { None },
        status: match found.status {
            ProviderPaymentStatus::Authorized => PaymentAttemptStatus::Authorized,
            ProviderPaymentStatus::Pending => PaymentAttemptStatus::Pending,
            ProviderPaymentStatus::Succeeded => PaymentAttemptStatus::Succeeded,
            ProviderPaymentStatus::Failed => PaymentAttemptStatus::Failed,
            ProviderPaymentStatus::Cancelled => PaymentAttemptStatus::Cancelled,
        },
        reference: found.reference.clone(),
        failure_code,
        failure_message: found.failure_message.clone(),
        paid_at: found.paid_at,
        authentication: None,
        settlement: None,
    }
}

/// Asks the attempt's provider for the truth and applies it exactly as a callback would.
/// Manual attempts have nothing to ask: the order comes back unchanged.
pub async fn reconcile_payment(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    order_id: i64,
    payment_id: i64,
) -> AppResult<models::Order> {
    caller.require_admin("reconcilePayment")?;
    let (order, payment) = {
        let mut conn = pool.get().await?;
        let order = queries::find_order(&conn, order_id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("order {order_id} not found")))?;
        let payment = queries::find_payment_of_order(&mut conn, order_id, payment_id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("payment {payment_id} not found on order {order_id}")))?;
        (order, payment)
    };
    let provider: &dyn PaymentProvider = providers.named(&payment.provider)?;
    if provider.name() != "stripe" {
        return Ok(order);
    }
    let intent = payment.payment_intent_id.as_deref().ok_or_else(|| {
        AppError::Provider(format!("payment {payment_id} has no provider payment intent to reconcile"))
    })?;
    let found = {
        let _slot = providers.slot().await?;
        let found = provider.fetch_payment(intent).await?;
        // A card attempt recorded but never confirmed (the process stopped in between, or
        // the confirm never reached the provider): confirm it now, under the attempt's own
        // key, so it is taken once and the order is not left waiting on it.
        if found.raw_status == "requires_confirmation"
            && payment.card_last4.is_some()
            && payment.status == PaymentAttemptStatus::Pending.code()
        {
            confirm_card(provider, intent, payment.id).await?
        } else {
            found
        }
    };
    if found.status == ProviderPaymentStatus::Authorized && payment.status == PaymentAttemptStatus::Authorized.code() {
        // Still reserved at the provider long after a capture was claimed: the request that
        // held the claim stopped without an answer, and no capture is under way any more.
        let stale =
            Utc::now() - chrono::Duration::from_std(providers.longest_check() * 2).unwrap_or(Duration::hours(1));
        let mut conn = pool.get().await?;
        crate::db::groups::clear_stale_capture_claim(&mut conn, payment.id, stale).await?;
    }
    let actor = format!("{} (reconcile)", caller.name);
    apply_found(pool, providers, provider.name(), &payment, &found, &actor).await
}

/// [`record_found`], then the intents of attempts a success superseded are cancelled at
/// their provider.
pub(super) async fn apply_found(
    pool: &DbPool,
    providers: &Providers,
    provider: &str,
    payment: &models::Payment,
    found: &ProviderPayment,
    actor: &str,
) -> AppResult<models::Order> {
    let (order, superseded) = record_found(pool, provider, payment, found, actor).await?;
    super::cancel_intents(pool, providers, actor, superseded).await;
    Ok(order)
}

/// Applies what the provider reports about `payment` exactly as a callback would, and
/// records that the provider was asked. A success is believed only for the money the
/// attempt expects: the amount and currency the provider received must match it. Returns
/// the order and the attempts a success superseded (their intents are still live).
pub(super) async fn record_found(
    pool: &DbPool,
    provider: &str,
    payment: &models::Payment,
    found: &ProviderPayment,
    actor: &str,
) -> AppResult<(models::Order, Vec<models::Payment>)> {
    let payment_id = payment.id;
    // What the provider was asked to take: the payment's amount, or for one charge paying
    // several orders, the sum of their shares.
    let mut conn = pool.get().await?;
    let charged = crate::db::groups::group_of_payment(&mut conn, payment_id)
        .await?
        .map_or(payment.amount_cents, |(g, _)| g.amount_cents);
    if found.status == ProviderPaymentStatus::Authorized && found.capturable.is_some_and(|reserved| reserved != charged)
    {
        return Err(AppError::Provider(format!(
            "the provider reserved {} for payment {payment_id}, which expects {} {}: not applied; check it at the provider",
            found.capturable.unwrap_or_default(),
            charged,
            payment.currency
        )));
    }
    if found.status == ProviderPaymentStatus::Succeeded {
        // A capture may take part of an authorisation; anything else takes the whole amount.
        let amount_ok = found.amount_received.is_none_or(|received| {
            received == charged || (found.manual_capture && (1..payment.amount_cents).contains(&received))
        });
        let currency_ok = found.currency.as_deref().is_none_or(|currency| currency == payment.currency);
        if !amount_ok || !currency_ok {
            return Err(AppError::Provider(format!(
                "the provider reports {} {} received for payment {payment_id}, which expects {} {}: not applied; check it at the provider",
                found.amount_received.map_or_else(|| "?".to_owned(), |a| a.to_string()),
                found.currency.as_deref().unwrap_or("?"),
                charged,
                payment.currency
            )));
        }
    }
    let outcome = PaymentOutcome {
        settlement: usable_settlement(payment, charged, found),
        ..outcome_from_provider(payment, found)
    };
    let mut superseded = Vec::new();
    let order = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (order, changed) = apply_outcome(conn, &outcome, actor, &mut superseded).await?;
            if changed {
                events::record(
                    conn,
                    order.id,
                    kind::RECONCILED,
                    actor,
                    json!({ "payment_id": payment_id, "provider": provider, "provider_status": found.raw_status }),
                )
                .await?;
            }
            Ok(order)
        })
        .await?;
    Ok((order, superseded))
}
