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
    /// With status SUCCEEDED of an AUTHORIZED attempt: how much of the reservation was
    /// captured (none: all of it). The rest is released.
    pub captured_cents: Option<i64>,
}

impl PaymentOutcome {
    /// `status` for `payment`, with nothing else reported.
    pub(super) fn bare(payment: &models::Payment, status: PaymentAttemptStatus) -> Self {
        Self {
            order_id: payment.order_id,
            payment_id: payment.id,
            status,
            reference: None,
            failure_code: None,
            failure_message: None,
            paid_at: None,
            authentication: None,
            settlement: None,
            captured_cents: None,
        }
    }
}

/// Applies a provider's callback. Admin keys (admin REST path, GraphQL) and the signed
/// provider callback may call it.
pub async fn process_callback(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    outcome: PaymentOutcome,
) -> AppResult<models::Order> {
    caller.require_admin_or_provider("processPaymentCallback")?;
    if outcome.failure_code.as_deref().map(str::trim) == Some(DUPLICATE_PAYMENT) {
        // Only the service marks money as due back; a caller cannot forge it.
        return Err(AppError::bad_input(format!("failureCode {DUPLICATE_PAYMENT} is reserved for the service")));
    }
    if outcome.status == PaymentAttemptStatus::Authorized {
        // A reservation is read from the provider (reconcile), which can then capture it; a
        // callback cannot make an attempt capturable.
        return Err(AppError::bad_input(
            "status AUTHORIZED is not reported by callback: reconcilePayment reads a reservation from the provider",
        ));
    }
    let now = Utc::now();
    let outcome = PaymentOutcome {
        captured_cents: None,
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
    let mut superseded = Vec::new();
    let order = conn
        .transaction::<_, AppError, _>(async |conn| {
        // Under the orders' locks (a group's all, in id order), so a reconcile cannot make
        // the attempt AUTHORIZED between this check and the outcome.
        lock_orders_of(conn, outcome.payment_id, outcome.order_id).await?;
        let current = queries::find_payment(conn, outcome.payment_id).await?;
        if current.is_some_and(|p| p.status == PaymentAttemptStatus::Authorized.code()) {
            // Only the provider knows what a capture took: a reservation ends through
            // capturePayment, cancelPayment or a reconcile, never a callback.
            return Err(AppError::Conflict(format!(
                "payment {} is AUTHORIZED: it ends by capturePayment, cancelPayment or reconcilePayment, not by callback",
                outcome.payment_id
            )));
        }
        apply_outcome(conn, &outcome, &actor, &mut superseded).await.map(|(order, _)| order)
    })
    .await?;
    drop(conn);
    super::cancel_intents(pool, providers, &actor, superseded).await;
    Ok(order)
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
/// Returns the order and whether it changed. The outcome of a charge for several orders
/// is every member's ([`super::group_outcomes`]).
/// Attempts a success cancels here are added to `superseded`: the caller cancels their
/// intents at the provider once the transaction committed (`cancel_intents`).
pub(super) async fn apply_outcome(
    conn: &mut AsyncPgConnection,
    outcome: &PaymentOutcome,
    actor: &str,
    superseded: &mut Vec<models::Payment>,
) -> AppResult<(models::Order, bool)> {
    match crate::db::groups::group_of_payment(conn, outcome.payment_id).await? {
        Some(group) => super::group_outcomes::apply_to_group(conn, outcome, group, actor, superseded).await,
        None => apply_one(conn, outcome, actor, superseded).await,
    }
}

/// `apply_outcome` for one attempt: its status, then settlement.
pub(super) async fn apply_one(
    conn: &mut AsyncPgConnection,
    outcome: &PaymentOutcome,
    actor: &str,
    superseded: &mut Vec<models::Payment>,
) -> AppResult<(models::Order, bool)> {
    let (order, changed) = apply_status(conn, outcome, actor, superseded).await?;
    match outcome.settlement {
        Some((at, cents)) if outcome.status == PaymentAttemptStatus::Succeeded => {
            let settled = apply_settlement(conn, &order, outcome.payment_id, (at, cents), actor).await?;
            let settled_now = settled.is_some();
            Ok((settled.unwrap_or(order), changed || settled_now))
        }
        _ => Ok((order, changed)),
    }
}

/// Changes a payment in a way that leaves its order's state alone: the payment, the
/// order's `updated_at`, and one event on the order.
async fn change_payment(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    payment_id: i64,
    changes: &PaymentChanges,
    event: (&str, serde_json::Value),
    actor: &str,
) -> AppResult<models::Order> {
    queries::update_payment(conn, payment_id, changes).await?;
    let order = queries::update_order(
        conn,
        order_id,
        &OrderChanges { updated_at: changes.updated_at.or(Some(Utc::now())), ..Default::default() },
    )
    .await?;
    events::record(conn, order.id, event.0, actor, event.1).await?;
    Ok(order)
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
    let changes = PaymentChanges {
        settled_at: Some(Some(at)),
        settled_cents: Some(Some(cents)),
        updated_at: Some(now),
        ..Default::default()
    };
    let event = json!({ "payment_id": payment.id, "settled_at": at, "settled_cents": cents });
    let order = change_payment(conn, order.id, payment.id, &changes, (kind::PAYMENT_SETTLED, event), actor).await?;
    Ok(Some(order))
}

/// The attempt's status part of an outcome.
async fn apply_status(
    conn: &mut AsyncPgConnection,
    outcome: &PaymentOutcome,
    actor: &str,
    superseded: &mut Vec<models::Payment>,
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
        let changes = PaymentChanges {
            authentication: Some(Some(kind.as_str().to_owned())),
            authentication_expires_at: Some(Some(deadline)),
            updated_at: Some(now),
            ..Default::default()
        };
        let event = json!({ "payment_id": payment.id, "authentication": kind.as_str(), "expires_at": deadline });
        let order =
            change_payment(conn, order.id, payment.id, &changes, (kind::AUTHENTICATION_REQUIRED, event), actor).await?;
        return Ok((order, true));
    }
    if attempt == outcome.status {
        // A repeated callback with the same outcome changes nothing.
        return Ok((order, false));
    }
    if outcome.status == PaymentAttemptStatus::Authorized {
        return authorize(conn, order, &payment, attempt, actor).await;
    }
    if attempt == PaymentAttemptStatus::Authorized && outcome.status == PaymentAttemptStatus::Pending {
        // The provider reserved the amount; "still processing" says nothing newer.
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
        // Handled above.
        PaymentAttemptStatus::Authorized => return Ok((order, false)),
        PaymentAttemptStatus::Succeeded => {
            let paid_at = outcome.paid_at.unwrap_or(now);
            // A capture takes all of an authorisation or part of it; the rest is released.
            // What the provider says it took; else the capture claimed; else all of it.
            let claimed = crate::db::groups::capture_claim(conn, payment.id).await?;
            let captured = outcome.captured_cents.or(claimed).unwrap_or(payment.amount_cents);
            if !(1..=payment.amount_cents).contains(&captured) {
                return Err(AppError::Provider(format!(
                    "the provider reports {captured} captured of payment {}, which reserved {}: not applied; check it at the provider",
                    payment.id, payment.amount_cents
                )));
            }
            let released = payment.amount_cents - captured;
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
            let cancelled_here = cancel_pending_attempts(conn, order.id, now).await?;
            let others: Vec<i64> = cancelled_here.iter().map(|p| p.id).collect();
            superseded.extend(cancelled_here);
            let cancelled = status == OrderStatus::Cancelled;
            let order = queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    // Money for a cancelled order is recorded, the order stays cancelled.
                    status: Some(if cancelled { OrderStatus::Cancelled } else { OrderStatus::Completed }.code()),
                    // What was not captured counts as given back (it never left the customer),
                    // so refunds stay within what was taken.
                    payment_status: Some(
                        if released > 0 { PaymentStatus::PartiallyRefunded } else { PaymentStatus::Paid }.code(),
                    ),
                    refunded_cents: (released > 0).then_some(released),
                    payment_reference: Some(reference.clone()),
                    payment_intent_id: payment.payment_intent_id.clone().map(Some),
                    ..paid_changes(paid_at, now)
                },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::PAID,
                actor,
                json!({ "payment_id": payment.id, "provider": payment.provider, "reference": reference,
                        "amount_cents": payment.amount_cents, "captured_cents": captured,
                        "superseded_payment_ids": others }),
            )
            .await?;
            if released > 0 {
                release(conn, &order, &payment, released, actor, now).await?;
            }
            if cancelled {
                events::record(
                    conn,
                    order.id,
                    kind::REFUND_DUE,
                    actor,
                    json!({ "payment_id": payment.id, "amount_cents": captured,
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
                // A failure's code does not outlive it; a cancellation may say why (an
                // authorisation that expired).
                &PaymentChanges {
                    status: Some(to.code()),
                    failure_code: Some(outcome.failure_code.clone().filter(|_| to == PaymentAttemptStatus::Cancelled)),
                    failure_message: Some(
                        outcome.failure_message.clone().filter(|_| to == PaymentAttemptStatus::Cancelled),
                    ),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            // The order's payment is under way while any attempt is open.
            let still_open = queries::count_pending_payments(conn, order.id).await? > 0;
            let new_payment_status = match (to, payment_status) {
                (PaymentAttemptStatus::Pending, PaymentStatus::Unpaid | PaymentStatus::Failed) => {
                    Some(PaymentStatus::Processing)
                }
                (PaymentAttemptStatus::Cancelled, PaymentStatus::Processing) if !still_open => {
                    Some(PaymentStatus::Unpaid)
                }
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
            let data = match &outcome.failure_code {
                Some(code) if to == PaymentAttemptStatus::Cancelled => {
                    json!({ "payment_id": payment.id, "failure_code": code })
                }
                _ => json!({ "payment_id": payment.id }),
            };
            events::record(conn, order.id, event, actor, data).await?;
            order
        }
    };
    Ok((order, true))
}

/// A PENDING attempt whose amount the provider reserved becomes AUTHORIZED; the order's
/// payment stays PROCESSING until the capture. Only a PENDING attempt of a PENDING order:
/// anything else already moved on (a cancelled attempt's intent is cancelled at the
/// provider by the path that cancelled it).
async fn authorize(
    conn: &mut AsyncPgConnection,
    order: models::Order,
    payment: &models::Payment,
    attempt: PaymentAttemptStatus,
    actor: &str,
) -> AppResult<(models::Order, bool)> {
    let (status, _) = state(&order)?;
    if attempt != PaymentAttemptStatus::Pending || status != OrderStatus::Pending || payment.payment_intent_id.is_none()
    {
        return Ok((order, false));
    }
    let changes = PaymentChanges {
        status: Some(PaymentAttemptStatus::Authorized.code()),
        authentication: Some(None),
        authentication_expires_at: Some(None),
        updated_at: Some(Utc::now()),
        ..Default::default()
    };
    let event =
        json!({ "payment_id": payment.id, "reserved_cents": payment.amount_cents, "currency": payment.currency });
    let order = change_payment(conn, order.id, payment.id, &changes, (kind::PAYMENT_AUTHORIZED, event), actor).await?;
    Ok((order, true))
}

/// Records the part of an authorisation that was not captured as a refund that moved no
/// money (`released`); the caller already counted it in the order's refunded_cents.
async fn release(
    conn: &mut AsyncPgConnection,
    order: &models::Order,
    payment: &models::Payment,
    amount_cents: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let refund = queries::insert_refund(
        conn,
        &models::NewRefund {
            order_id: order.id,
            payment_id: Some(payment.id),
            status: crate::domain::RefundStatus::Succeeded.code(),
            amount_cents,
            currency: &payment.currency,
            reason: Some("released: the part of the authorisation that was not captured"),
            metadata: &json!({}),
            credit_balance: false,
            request_key: None,
            next_check_at: None,
            due_back: false,
            released: true,
            refunded_at: Some(now),
        },
    )
    .await?;
    events::record(
        conn,
        order.id,
        kind::AUTHORIZATION_RELEASED,
        actor,
        json!({ "payment_id": payment.id, "refund_id": refund.id, "amount_cents": amount_cents,
                "reason": "captured less than was reserved; the rest was never taken" }),
    )
    .await?;
    Ok(())
}
