//! `createPayment`: starts an attempt at the provider, then records it.

use super::*;

/// Open (PENDING) payment attempts one order may have: each is a real payment intent at
/// the provider, so a client looping on createPayment must not make them without end.
pub const MAX_OPEN_ATTEMPTS: i64 = 5;

/// A card payment is taken at once: it may start only while no other attempt of the order
/// is open, so a double click cannot take the money twice.
fn only_attempt(order: &models::Order, open: i64) -> AppResult<()> {
    if open > 0 {
        return Err(AppError::Conflict(format!(
            "order {} already has an open payment attempt; a card payment starts only when none is open (wait for it, or cancel it)",
            order.number
        )));
    }
    Ok(())
}

/// A reservation waits to be captured or released: another attempt would take the money
/// beside it.
fn none_reserved(order: &models::Order, reserved: i64) -> AppResult<()> {
    if reserved > 0 {
        return Err(AppError::Conflict(format!(
            "order {} has a reserved (AUTHORIZED) payment; capture or cancel it before starting another",
            order.number
        )));
    }
    Ok(())
}

fn too_many_attempts(order: &models::Order, open: i64) -> AppResult<()> {
    if open >= MAX_OPEN_ATTEMPTS {
        return Err(AppError::Conflict(format!(
            "order {} already has {open} open payment attempts (at most {MAX_OPEN_ATTEMPTS}); let one finish or fail first",
            order.number
        )));
    }
    Ok(())
}

/// Starts a payment attempt (PENDING) with the configured provider for a PENDING order that
/// is not paid; the order's payment status becomes PROCESSING.
pub async fn create_payment(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    order_id: i64,
    payment_method: Option<String>,
    mut details: crate::domain::payments::details::PaymentDetailsInput,
) -> AppResult<models::Payment> {
    use crate::domain::payments::card;
    let manual_capture = details.manual_capture;
    let card = details.card.take().map(|c| c.validated("card", Utc::now().date_naive())).transpose()?;
    let mut details = details.validated()?;
    let payment_method = payment_method.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
    if let Some(method) = &payment_method {
        validate_payment_method("paymentMethod", method)?;
    }
    let check = |order: &models::Order| -> AppResult<()> {
        caller.require_admin_or_owner("createPayment", order.user_id)?;
        let (status, payment_status) = state(order)?;
        if status != OrderStatus::Pending || is_paid(payment_status) {
            return Err(AppError::Conflict(format!(
                "order {} is {status}/{payment_status}; a payment can only start for a PENDING order that is not paid",
                order.number
            )));
        }
        Ok(())
    };
    // Check first, so no provider payment is created for an order that cannot take one.
    let (order, open, reserved) = {
        let conn = pool.get().await?;
        let (order, open, reserved) = futures_util::try_join!(
            queries::find_order(&conn, order_id),
            queries::count_pending_payments(&conn, order_id),
            queries::count_authorized_payments(&conn, order_id)
        )?;
        let order =
            visible_to(caller, order).ok_or_else(|| AppError::not_found(format!("order {order_id} not found")))?;
        (order, open, reserved)
    };
    check(&order)?;
    none_reserved(&order, reserved)?;
    too_many_attempts(&order, open)?;
    if card.is_some() || manual_capture {
        only_attempt(&order, open)?;
    }
    let method = payment_method.unwrap_or_else(|| order.payment_method.clone());
    let provider = providers.for_new_payments()?;
    if card.is_some() && !provider.takes_cards() {
        return Err(AppError::bad_input(format!(
            "card: the configured payment provider ({}) takes no card details",
            provider.name()
        )));
    }
    if manual_capture && !provider.takes_manual_capture() {
        return Err(AppError::bad_input(format!(
            "captureMethod: the configured payment provider ({}) cannot reserve an amount to capture later",
            provider.name()
        )));
    }
    let currency = crate::money::Currency::of_stored(&order.currency)?;
    provider.check_amount(order.total_cents, currency).map_err(|reason| {
        AppError::Conflict(format!("order {} cannot be paid with {}: {reason}", order.number, provider.name()))
    })?;
    let idempotency_key = format!("order-{}-attempt-{}", order.id, rand_token());
    let begun = providers
        .in_slot(provider.start_payment(&StartPayment {
            order_id: order.id,
            order_number: &order.number,
            amount_cents: order.total_cents,
            currency: &order.currency,
            payment_method: &method,
            idempotency_key: &idempotency_key,
            card: card.as_ref(),
            manual_capture,
        }))
        .await?;
    let intent_id = begun.intent_id.clone();
    if let Some(card) = &card {
        card::show_on(&mut details, begun.card.clone(), card);
    }
    let provider_name = provider.name();
    let started = (order.total_cents, order.currency.clone());
    let with_card = card.is_some();
    let attempt = Attempt {
        started,
        method: &method,
        provider_name,
        intent_id: &intent_id,
        details: &details,
        with_card,
        manual_capture,
    };
    let recorded = record_attempt(pool, providers, caller, order_id, &check, &attempt).await;
    if let (Err(_), Some(intent)) = (&recorded, intent_id.as_deref()) {
        // The order changed while the provider worked (or the database failed): nothing
        // points at the new intent, so it must not stay payable.
        cancel_unrecorded(providers, provider, intent, &[order_id]).await;
    }
    let payment = recorded?;
    match (&card, intent_id.as_deref()) {
        (Some(_), Some(intent)) => confirm(pool, providers, provider, caller, payment, intent).await,
        _ => Ok(payment),
    }
}

/// Phase three of a card payment, after it was recorded: the provider confirms it (takes the
/// money) under a key of this attempt, so a repeat confirms once; what the provider decided
/// is applied as a reconcile would. A declined card fails the attempt. A card that needs
/// the customer to authenticate (3-D Secure), or a provider that could not be reached, has
/// its intent cancelled and the attempt failed, so the order is free for another payment.
/// An answer that never came leaves the attempt PENDING for the janitor.
pub(super) async fn confirm(
    pool: &DbPool,
    providers: &Providers,
    provider: &dyn PaymentProvider,
    caller: &Caller,
    payment: models::Payment,
    intent: &str,
) -> AppResult<models::Payment> {
    let actor = format!("{} (card)", caller.name);
    // Still PENDING? The order may have been cancelled or paid meanwhile: then no money is
    // taken, and the unconfirmed intent is cancelled (unless a reconcile already found the
    // money taken or reserved on it).
    let now = {
        let mut conn = pool.get().await?;
        let (order_id, payment_id) = (payment.order_id, payment.id);
        conn.transaction::<_, AppError, _>(async move |conn| {
            queries::lock_order(conn, order_id).await?;
            Ok(queries::lock_payment_of_order(conn, order_id, payment_id).await?.map(|p| p.status))
        })
        .await?
    };
    if now != Some(PaymentAttemptStatus::Pending.code()) {
        let holds_money = [PaymentAttemptStatus::Succeeded, PaymentAttemptStatus::Authorized];
        if !now.is_some_and(|status| holds_money.iter().any(|s| s.code() == status)) {
            cancel_intents(pool, providers, &actor, vec![payment.clone()]).await;
        }
        return reread(pool, payment).await;
    }
    let asked = providers.in_slot(confirm_card(provider, intent, payment.id));
    // Whether the intent was cancelled at the provider (nothing can be taken on it any more).
    let released = async || providers.in_slot(provider.cancel_payment(intent)).await.is_ok();
    let given_up = |code: &str, message: &str| ProviderPayment {
        status: ProviderPaymentStatus::Failed,
        raw_status: code.to_owned(),
        reference: None,
        failure_code: Some(code.to_owned()),
        failure_message: Some(message.to_owned()),
        paid_at: None,
        amount_received: None,
        currency: None,
        settled: None,
        capturable: None,
        manual_capture: false,
    };
    let decided = match asked.await {
        Ok(found) if found.raw_status == "requires_action" => released().await.then(|| {
            given_up(
                "authentication_required",
                "the card needs the customer to authenticate (3-D Secure), which a card sent to this API cannot do",
            )
        }),
        Ok(found) if found.status != ProviderPaymentStatus::Pending => Some(found),
        Ok(_) => None,
        Err(error @ (ProviderError::Busy | ProviderError::Unreachable(_))) => {
            tracing::warn!(payment = payment.id, %error, "confirming a card payment: nothing was sent");
            released().await.then(|| {
                given_up("provider_unavailable", "the payment provider could not be reached; nothing was charged")
            })
        }
        Err(error) => {
            tracing::warn!(payment = payment.id, %error, "confirming a card payment gave no answer; the janitor asks again");
            None
        }
    };
    if let Some(found) = decided
        && let Err(error) = apply_found(pool, providers, provider.name(), &payment, &found, &actor).await
    {
        tracing::warn!(payment = payment.id, %error, "applying a card payment's outcome failed; the janitor asks again");
    }
    reread(pool, payment).await
}

/// What phase one of `create_payment` started at the provider.
struct Attempt<'a> {
    /// The amount and currency the provider was asked for.
    started: (i64, String),
    method: &'a str,
    provider_name: &'static str,
    intent_id: &'a Option<String>,
    details: &'a models::PaymentDetails,
    /// A card payment: it must be the order's only open attempt.
    with_card: bool,
    /// A reservation to capture later: it must be the order's only open attempt too.
    manual_capture: bool,
}

/// Phase two of `create_payment`: records the attempt the provider started.
async fn record_attempt(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    order_id: i64,
    check: &(dyn Fn(&models::Order) -> AppResult<()> + Sync),
    attempt: &Attempt<'_>,
) -> AppResult<models::Payment> {
    let Attempt {
        started: (started_cents, started_currency),
        method,
        provider_name,
        intent_id,
        details,
        with_card,
        manual_capture,
    } = attempt;
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let order = lock_visible_order(conn, caller, order_id).await?;
        check(&order)?;
        // The provider was asked for the amount of phase one: an order whose amount changed
        // meanwhile (a merchant's update) must not record an attempt for another amount.
        if order.total_cents != *started_cents || order.currency != *started_currency {
            return Err(AppError::Conflict(format!(
                "order {} changed its amount while the payment was being started; start the payment again",
                order.number
            )));
        }
        // Again under the order's lock: concurrent requests each saw room before.
        let open = queries::count_pending_payments(conn, order.id).await?;
        none_reserved(&order, queries::count_authorized_payments(conn, order.id).await?)?;
        too_many_attempts(&order, open)?;
        if *with_card || *manual_capture {
            only_attempt(&order, open)?;
        }
        let now = Utc::now();
        let payment = queries::insert_payment(
            conn,
            &models::NewPayment {
                order_id: order.id,
                status: PaymentAttemptStatus::Pending.code(),
                provider: provider_name,
                payment_method: method,
                amount_cents: order.total_cents,
                currency: &order.currency,
                reference: None,
                payment_intent_id: intent_id.as_deref(),
                note: None,
                paid_at: None,
                // An attempt the provider can be asked about is checked by the janitor
                // should no callback come.
                next_check_at: intent_id.is_some().then(|| providers.next_check(now, 0)),
                details: (*details).clone(),
            },
        )
        .await?;
        let mut changes = OrderChanges {
            payment_status: Some(PaymentStatus::Processing.code()),
            updated_at: Some(now),
            ..Default::default()
        };
        if intent_id.is_some() {
            changes.payment_intent_id = Some((*intent_id).clone());
        }
        queries::update_order(conn, order.id, &changes).await?;
        events::record(
            conn,
            order.id,
            kind::PAYMENT_STARTED,
            &actor,
            json!({ "payment_id": payment.id, "provider": payment.provider, "payment_method": method,
                    "amount_cents": payment.amount_cents, "payment_intent_id": intent_id }),
        )
        .await?;
        Ok(payment)
    })
    .await
}

pub(super) fn rand_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
