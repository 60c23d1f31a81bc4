//! Payment outcomes: provider callbacks, reconcile answers and authentication deadlines all
//! take `apply_outcome`.

use super::*;

/// A payment outcome reported by a callback or found by a reconcile.
#[derive(Debug, Clone)]
pub struct PaymentOutcome {
    pub order_id: i64,
    pub payment_id: i64,
    pub status: PaymentAttemptStatus,
    pub reference: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    /// With status PENDING: the attempt now waits for the customer to authenticate, until
    /// the deadline (then it fails with `authentication_timeout`).
    pub authentication: Option<(Authentication, DateTime<Utc>)>,
    /// With status SUCCEEDED: the money settled at this time, for this many minor units
    /// (at most the payment's amount; net of the provider's fees).
    pub settlement: Option<(DateTime<Utc>, i64)>,
}

/// Applies a provider's callback. Admin keys (admin REST path, GraphQL) and the signed
/// provider callback may call it.
pub async fn process_callback(pool: &DbPool, caller: &Caller, outcome: PaymentOutcome) -> AppResult<models::Order> {
    caller.require_admin_or_provider("processPaymentCallback")?;
    if outcome.failure_code.as_deref().map(str::trim) == Some(DUPLICATE_PAYMENT) {
        // Only the service marks money as due back; a caller cannot forge it.
        return Err(AppError::bad_input(format!("failureCode {DUPLICATE_PAYMENT} is reserved for the service")));
    }
    let now = Utc::now();
    let outcome = PaymentOutcome {
        reference: text("reference", outcome.reference, 200)?,
        failure_code: text("failureCode", outcome.failure_code, 100)?,
        failure_message: text("failureMessage", outcome.failure_message, 1000)?,
        paid_at: outcome.paid_at.map(|at| timestamp("paidAt", Some(at), now)).transpose()?,
        settlement: match outcome.settlement {
            Some(_) if outcome.status != PaymentAttemptStatus::Succeeded => {
                return Err(AppError::bad_input("settlement is only for status SUCCEEDED"));
            }
            Some((at, cents)) => {
                if cents < 0 {
                    return Err(AppError::bad_input("settledAmountCents must not be negative"));
                }
                Some((timestamp("settledAt", Some(at), now)?, cents))
            }
            None => None,
        },
        ..outcome
    };
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        apply_outcome(conn, &outcome, &actor).await.map(|(order, _)| order)
    })
    .await
}

/// The failure code of an attempt whose money arrived after another attempt paid its order.
pub const DUPLICATE_PAYMENT: &str = "duplicate_payment";

/// Whether an attempt holds money that is due back: it was paid after its order had been
/// paid by another attempt (recorded CANCELLED with `duplicate_payment`).
pub fn is_due_back(payment: &models::Payment) -> bool {
    payment.status == PaymentAttemptStatus::Cancelled.code()
        && payment.failure_code.as_deref() == Some(DUPLICATE_PAYMENT)
}

/// The one code path of callbacks and reconciles: the attempt's status, then settlement.
/// Returns the order and whether it changed.
pub(super) async fn apply_outcome(
    conn: &mut AsyncPgConnection,
    outcome: &PaymentOutcome,
    actor: &str,
) -> AppResult<(models::Order, bool)> {
    let (order, changed) = apply_status(conn, outcome, actor).await?;
    match outcome.settlement {
        Some((at, cents)) if outcome.status == PaymentAttemptStatus::Succeeded => {
            let settled = apply_settlement(conn, &order, outcome.payment_id, (at, cents), actor).await?;
            let settled_now = settled.is_some();
            Ok((settled.unwrap_or(order), changed || settled_now))
        }
        _ => Ok((order, changed)),
    }
}

/// Records that a payment's money settled. Only money that arrived (and was dated) settles;
/// the first report is kept (settlement happens once), so repeats change nothing. More than
/// the payment's amount is refused, and the whole outcome with it.
async fn apply_settlement(
    conn: &mut AsyncPgConnection,
    order: &models::Order,
    payment_id: i64,
    (at, cents): (DateTime<Utc>, i64),
    actor: &str,
) -> AppResult<Option<models::Order>> {
    let Some(payment) = queries::lock_payment_of_order(conn, order.id, payment_id).await? else {
        return Ok(None);
    };
    let arrived = crate::domain::payments::state::money_arrived(&payment)?;
    if !arrived || payment.paid_at.is_none() || payment.settled_at.is_some() {
        return Ok(None);
    }
    if payment.paid_at.is_some_and(|paid| at < paid) {
        return Err(AppError::bad_input(format!("settledAt must not be before payment {} was taken", payment.id)));
    }
    if cents > payment.amount_cents {
        return Err(AppError::bad_input(format!(
            "settledAmountCents {cents} is more than payment {} took ({})",
            payment.id, payment.amount_cents
        )));
    }
    let now = Utc::now();
    queries::update_payment(
        conn,
        payment.id,
        &PaymentChanges {
            settled_at: Some(Some(at)),
            settled_cents: Some(Some(cents)),
            updated_at: Some(now),
            ..Default::default()
        },
    )
    .await?;
    let order =
        queries::update_order(conn, order.id, &OrderChanges { updated_at: Some(now), ..Default::default() }).await?;
    events::record(
        conn,
        order.id,
        kind::PAYMENT_SETTLED,
        actor,
        json!({ "payment_id": payment.id, "settled_at": at, "settled_cents": cents }),
    )
    .await?;
    Ok(Some(order))
}

/// The attempt's status part of an outcome.
async fn apply_status(
    conn: &mut AsyncPgConnection,
    outcome: &PaymentOutcome,
    actor: &str,
) -> AppResult<(models::Order, bool)> {
    let order = queries::lock_order(conn, outcome.order_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("order {} not found", outcome.order_id)))?;
    let payment = queries::lock_payment_of_order(conn, order.id, outcome.payment_id).await?.ok_or_else(|| {
        AppError::not_found(format!("payment {} not found on order {}", outcome.payment_id, outcome.order_id))
    })?;
    let attempt = decode(payment.status, PaymentAttemptStatus::from_code, "payment attempt status")?;
    let (status, payment_status) = state(&order)?;
    let now = Utc::now();

    if let (Some((kind, deadline)), PaymentAttemptStatus::Pending, PaymentAttemptStatus::Pending) =
        (outcome.authentication, attempt, outcome.status)
    {
        if payment.authentication.is_some() || status != OrderStatus::Pending {
            // Already waiting (a repeated callback), or the order moved on: nothing changes.
            return Ok((order, false));
        }
        queries::update_payment(
            conn,
            payment.id,
            &PaymentChanges {
                authentication: Some(Some(kind.as_str().to_owned())),
                authentication_expires_at: Some(Some(deadline)),
                updated_at: Some(now),
                ..Default::default()
            },
        )
        .await?;
        let order =
            queries::update_order(conn, order.id, &OrderChanges { updated_at: Some(now), ..Default::default() })
                .await?;
        events::record(
            conn,
            order.id,
            kind::AUTHENTICATION_REQUIRED,
            actor,
            json!({ "payment_id": payment.id, "authentication": kind.as_str(), "expires_at": deadline }),
        )
        .await?;
        return Ok((order, true));
    }
    if attempt == outcome.status {
        // A repeated callback with the same outcome changes nothing.
        return Ok((order, false));
    }
    if is_due_back(&payment) && outcome.status == PaymentAttemptStatus::Succeeded {
        // The duplicate's money was recorded once; repeats of its success add nothing.
        return Ok((order, false));
    }
    if attempt == PaymentAttemptStatus::Succeeded || is_due_back(&payment) {
        // Money that arrived stays arrived: a late FAILED or PENDING (out-of-order
        // webhooks) must not make a duplicate payment's money no longer due back.
        events::record(
            conn,
            order.id,
            kind::CALLBACK_IGNORED,
            actor,
            json!({ "payment_id": payment.id, "status": outcome.status,
                    "reason": "the payment's money already arrived; later outcomes are ignored" }),
        )
        .await?;
        return Ok((order, false));
    }

    let order = match outcome.status {
        PaymentAttemptStatus::Succeeded => {
            let paid_at = outcome.paid_at.unwrap_or(now);
            let reference = outcome.reference.clone().or(payment.reference.clone());
            if is_paid(payment_status) {
                // Another attempt already paid this order: the money came twice. Recorded
                // once: a repeated callback or reconcile of it changes nothing more.
                if payment.failure_code.as_deref() == Some(DUPLICATE_PAYMENT) {
                    return Ok((order, false));
                }
                queries::update_payment(
                    conn,
                    payment.id,
                    &PaymentChanges {
                        status: Some(PaymentAttemptStatus::Cancelled.code()),
                        reference: Some(reference.clone()),
                        failure_code: Some(Some(DUPLICATE_PAYMENT.to_owned())),
                        failure_message: Some(Some(
                            "the order was already paid by another attempt; this amount is due back".to_owned(),
                        )),
                        updated_at: Some(now),
                        ..Default::default()
                    },
                )
                .await?;
                events::record(
                    conn,
                    order.id,
                    kind::REFUND_DUE,
                    actor,
                    json!({ "payment_id": payment.id, "amount_cents": payment.amount_cents, "reference": reference,
                            "reason": "duplicate payment: the order was already paid" }),
                )
                .await?;
                return Ok((order, true));
            }
            queries::update_payment(
                conn,
                payment.id,
                &PaymentChanges {
                    status: Some(PaymentAttemptStatus::Succeeded.code()),
                    reference: Some(reference.clone()),
                    failure_code: Some(None),
                    failure_message: Some(None),
                    paid_at: Some(Some(paid_at)),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            let others: Vec<i64> = cancel_pending_attempts(conn, order.id, now).await?.iter().map(|p| p.id).collect();
            let cancelled = status == OrderStatus::Cancelled;
            let order = queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    // Money for a cancelled order is recorded, the order stays cancelled.
                    status: Some(if cancelled { OrderStatus::Cancelled } else { OrderStatus::Completed }.code()),
                    payment_status: Some(PaymentStatus::Paid.code()),
                    payment_reference: Some(reference.clone()),
                    payment_intent_id: payment.payment_intent_id.clone().map(Some),
                    payment_failure_code: Some(None),
                    payment_failure_message: Some(None),
                    paid_at: Some(Some(paid_at)),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::PAID,
                actor,
                json!({ "payment_id": payment.id, "provider": payment.provider, "reference": reference,
                        "amount_cents": payment.amount_cents, "superseded_payment_ids": others }),
            )
            .await?;
            if cancelled {
                events::record(
                    conn,
                    order.id,
                    kind::REFUND_DUE,
                    actor,
                    json!({ "payment_id": payment.id, "amount_cents": payment.amount_cents,
                            "reason": "payment succeeded after the order was cancelled" }),
                )
                .await?;
            }
            order
        }
        PaymentAttemptStatus::Failed => {
            let code = outcome.failure_code.clone().unwrap_or_else(|| "payment_failed".to_owned());
            let message = outcome.failure_message.clone();
            queries::update_payment(
                conn,
                payment.id,
                &PaymentChanges {
                    status: Some(PaymentAttemptStatus::Failed.code()),
                    failure_code: Some(Some(code.clone())),
                    failure_message: Some(message.clone()),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            // A late failure of an old attempt does not fail an order whose newer attempt is
            // still pending: the order's payment goes on.
            let still_pending = queries::count_pending_payments(conn, order.id).await? > 0;
            let order = if status == OrderStatus::Pending && !is_paid(payment_status) && !still_pending {
                queries::update_order(
                    conn,
                    order.id,
                    &OrderChanges {
                        payment_status: Some(PaymentStatus::Failed.code()),
                        payment_failure_code: Some(Some(code.clone())),
                        payment_failure_message: Some(message.clone()),
                        updated_at: Some(now),
                        ..Default::default()
                    },
                )
                .await?
            } else {
                order
            };
            events::record(
                conn,
                order.id,
                kind::PAYMENT_FAILED,
                actor,
                json!({ "payment_id": payment.id, "failure_code": code, "failure_message": message,
                        "other_attempt_pending": still_pending }),
            )
            .await?;
            order
        }
        PaymentAttemptStatus::Pending | PaymentAttemptStatus::Cancelled => {
            let to = outcome.status;
            queries::update_payment(
                conn,
                payment.id,
                // A failure's code does not outlive it.
                &PaymentChanges {
                    status: Some(to.code()),
                    failure_code: Some(None),
                    failure_message: Some(None),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            let new_payment_status = match (to, payment_status) {
                (PaymentAttemptStatus::Pending, PaymentStatus::Unpaid | PaymentStatus::Failed) => {
                    Some(PaymentStatus::Processing)
                }
                (PaymentAttemptStatus::Cancelled, PaymentStatus::Processing) => Some(PaymentStatus::Unpaid),
                _ => None,
            }
            .filter(|_| status == OrderStatus::Pending);
            let order = match new_payment_status {
                Some(new) => {
                    queries::update_order(
                        conn,
                        order.id,
                        &OrderChanges { payment_status: Some(new.code()), updated_at: Some(now), ..Default::default() },
                    )
                    .await?
                }
                None => order,
            };
            let event =
                if to == PaymentAttemptStatus::Pending { kind::PAYMENT_PROCESSING } else { kind::PAYMENT_CANCELLED };
            events::record(conn, order.id, event, actor, json!({ "payment_id": payment.id })).await?;
            order
        }
    };
    Ok((order, true))
}

/// Most attempts one sweep fails for an authentication that ran out.
const EXPIRY_BATCH: i64 = 100;

/// Fails the attempts whose customer did not authenticate before the deadline
/// (`authentication_timeout`), each like a provider's failure callback: the order's payment
/// becomes FAILED (seed 001: TIMEOUT_3DS or OTP_TIMEOUT) unless another attempt is pending.
/// Returns how many it failed. The janitor runs it on every tick.
pub async fn expire_authentications(pool: &DbPool) -> AppResult<usize> {
    let mut conn = pool.get().await?;
    let due = queries::authentications_due(&mut conn, Utc::now(), EXPIRY_BATCH).await?;
    let mut failed = 0;
    for payment in due {
        let outcome = PaymentOutcome {
            order_id: payment.order_id,
            payment_id: payment.id,
            status: PaymentAttemptStatus::Failed,
            reference: None,
            failure_code: Some(crate::domain::merchants::status::AUTHENTICATION_TIMEOUT.to_owned()),
            failure_message: Some("the customer did not authenticate in time".to_owned()),
            paid_at: None,
            authentication: None,
            settlement: None,
        };
        let changed = conn
            .transaction::<_, AppError, _>(async |conn| {
                // Under the row locks, order first (as every other path takes them): only an
                // attempt still waiting is failed.
                queries::lock_order(conn, payment.order_id).await?;
                let current = queries::lock_payment_of_order(conn, payment.order_id, payment.id).await?;
                if current.is_none_or(|p| {
                    p.status != PaymentAttemptStatus::Pending.code()
                        || p.authentication_expires_at.is_none_or(|d| d > Utc::now())
                }) {
                    return Ok(false);
                }
                apply_outcome(conn, &outcome, super::events::JANITOR_ACTOR).await.map(|(_, changed)| changed)
            })
            .await;
        match changed {
            Ok(changed) => failed += usize::from(changed),
            // One attempt's trouble (a lock timeout, say) does not stop the others; it is
            // due again on the next tick.
            Err(error) => error.log(),
        }
    }
    Ok(failed)
}
