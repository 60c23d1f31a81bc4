//! State changes of an order: start a payment, cancel, mark paid, apply a payment outcome
//! (callbacks and reconcile share it). Refunds are in `refunds`.
//!
//! Every change runs in one transaction that first locks the order row, so concurrent
//! requests on one order serialise; balances are locked after the order (always in that
//! order, so two requests never wait on each other crosswise). Provider calls happen
//! outside transactions: refunds reserve their amount first (`refund_pending_cents`), call
//! the provider, then settle.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::access::Caller;
use super::enums::{OrderStatus, PaymentAttemptStatus, PaymentStatus, decode};
use super::events::{self, kind};
use super::ledger::{self, Entry};
use super::orders::{validate_payment_method, visible_to};
use super::users::ledger_kind;
use crate::db::models::{self, OrderChanges, PaymentChanges};
use crate::db::{DbPool, queries};
use crate::domain::merchants::status::Authentication;
use crate::error::{AppError, AppResult};
use crate::providers::{
    PaymentProvider, ProviderError, ProviderPayment, ProviderPaymentStatus, Providers, StartPayment,
};

impl From<ProviderError> for AppError {
    fn from(error: ProviderError) -> Self {
        tracing::warn!(%error, "payment provider error");
        AppError::Provider(error.to_string())
    }
}

/// Timestamps given by clients may be at most this far ahead of the server clock.
const CLOCK_SKEW: Duration = Duration::minutes(5);

pub(super) fn timestamp(field: &str, given: Option<DateTime<Utc>>, now: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    match given {
        None => Ok(now),
        Some(at) if at > now + CLOCK_SKEW => {
            Err(AppError::bad_input(format!("{field} must not be in the future (got {})", at.to_rfc3339())))
        }
        Some(at) if at.timestamp() < 946_684_800 => {
            Err(AppError::bad_input(format!("{field} must be after 2000-01-01 (got {})", at.to_rfc3339())))
        }
        Some(at) => Ok(at),
    }
}

/// Trims optional text; blank is absent; longer than `max` characters is refused.
pub(super) fn text(field: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(AppError::bad_input(format!("{field} must be at most {max} characters")));
    }
    Ok(value)
}

pub(super) fn state(order: &models::Order) -> AppResult<(OrderStatus, PaymentStatus)> {
    Ok((
        decode(order.status, OrderStatus::from_code, "order status")?,
        decode(order.payment_status, PaymentStatus::from_code, "payment status")?,
    ))
}

fn is_paid(payment_status: PaymentStatus) -> bool {
    matches!(payment_status, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded)
}

/// Cancels the order's PENDING attempts (the order was cancelled, or paid another way);
/// returns them as they are now.
async fn cancel_pending_attempts(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    now: DateTime<Utc>,
) -> AppResult<Vec<models::Payment>> {
    Ok(queries::set_payments_status_where(
        conn,
        order_id,
        PaymentAttemptStatus::Pending.code(),
        PaymentAttemptStatus::Cancelled.code(),
        now,
    )
    .await?)
}

/// Locks an order the caller may see; others are NOT_FOUND.
pub(super) async fn lock_visible_order(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: i64,
) -> AppResult<models::Order> {
    visible_to(caller, queries::lock_order(conn, id).await?)
        .ok_or_else(|| AppError::not_found(format!("order {id} not found")))
}

// ---------------------------------------------------------------- start a payment

/// Open (PENDING) payment attempts one order may have: each is a real payment intent at
/// the provider, so a client looping on createPayment must not make them without end.
pub const MAX_OPEN_ATTEMPTS: i64 = 5;

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
) -> AppResult<models::Payment> {
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
    let (order, open) = {
        let conn = pool.get().await?;
        let (order, open) = futures_util::try_join!(
            queries::find_order(&conn, order_id),
            queries::count_pending_payments(&conn, order_id)
        )?;
        let order =
            visible_to(caller, order).ok_or_else(|| AppError::not_found(format!("order {order_id} not found")))?;
        (order, open)
    };
    check(&order)?;
    too_many_attempts(&order, open)?;
    let method = payment_method.unwrap_or_else(|| order.payment_method.clone());
    let provider = providers.for_new_payments()?;
    let currency = crate::money::Currency::of_stored(&order.currency)?;
    provider.check_amount(order.total_cents, currency).map_err(|reason| {
        AppError::Conflict(format!("order {} cannot be paid with {}: {reason}", order.number, provider.name()))
    })?;
    let idempotency_key = format!("order-{}-attempt-{}", order.id, rand_token());
    let slot = providers.slot().await?;
    let intent_id = provider
        .start_payment(&StartPayment {
            order_id: order.id,
            order_number: &order.number,
            amount_cents: order.total_cents,
            currency: &order.currency,
            payment_method: &method,
            idempotency_key: &idempotency_key,
        })
        .await?;
    drop(slot);
    let provider_name = provider.name();
    let started = (order.total_cents, order.currency.clone());
    let recorded =
        record_attempt(pool, providers, caller, order_id, &check, &started, &method, provider_name, &intent_id).await;
    if let (Err(_), Some(intent)) = (&recorded, intent_id.as_deref()) {
        // The order changed while the provider worked (or the database failed): nothing
        // points at the new intent, so it must not stay payable.
        let cancelled = match providers.slot().await {
            Ok(_slot) => provider.cancel_payment(intent).await,
            Err(busy) => Err(busy),
        };
        if let Err(error) = cancelled {
            tracing::warn!(order = order_id, %error, "cancelling an unrecorded payment intent failed");
        }
    }
    recorded
}

/// Phase two of `create_payment`: records the attempt the provider started.
#[expect(clippy::too_many_arguments, reason = "one call site; the values of phase one")]
async fn record_attempt(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    order_id: i64,
    check: &(dyn Fn(&models::Order) -> AppResult<()> + Sync),
    (started_cents, started_currency): &(i64, String),
    method: &str,
    provider_name: &str,
    intent_id: &Option<String>,
) -> AppResult<models::Payment> {
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
        too_many_attempts(&order, queries::count_pending_payments(conn, order.id).await?)?;
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
            },
        )
        .await?;
        let mut changes = OrderChanges {
            payment_status: Some(PaymentStatus::Processing.code()),
            updated_at: Some(now),
            ..Default::default()
        };
        if intent_id.is_some() {
            changes.payment_intent_id = Some(intent_id.clone());
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

fn rand_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

// ---------------------------------------------------------------- cancel

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
async fn cancel_intents(
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
        let outcome = match providers.slot().await {
            Ok(_slot) => provider.cancel_payment(intent).await,
            Err(busy) => Err(busy),
        };
        let (event, detail) = match &outcome {
            Ok(()) => (kind::INTENT_CANCELLED, None),
            Err(error) => {
                tracing::warn!(payment = payment.id, %error, "cancelling a payment intent at the provider failed");
                (kind::INTENT_CANCEL_FAILED, Some(error.to_string()))
            }
        };
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

// ---------------------------------------------------------------- mark paid

#[derive(Debug, Clone, Default)]
pub struct MarkPaidInput {
    pub order_id: i64,
    pub payment_method: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub reference: Option<String>,
    pub charge_balance: bool,
}

/// Records a succeeded manual payment for a PENDING order; with `charge_balance` the
/// user's balance pays (too little balance is INSUFFICIENT_BALANCE and nothing changes).
pub async fn mark_order_paid(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    input: MarkPaidInput,
) -> AppResult<models::Order> {
    caller.require_admin("markOrderPaid")?;
    let method = text("paymentMethod", input.payment_method, 32)?;
    if let Some(method) = &method {
        validate_payment_method("paymentMethod", method)?;
    }
    if input.charge_balance && method.as_deref().is_some_and(|m| m != "balance") {
        return Err(AppError::bad_input("paymentMethod must be balance (or absent) when chargeBalance is true"));
    }
    let note = text("note", input.note, 500)?;
    let reference = text("reference", input.reference, 200)?;
    let now = Utc::now();
    let paid_at = timestamp("paidAt", input.paid_at, now)?;
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    let (order, superseded) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let order = lock_visible_order(conn, caller, input.order_id).await?;
            let (status, payment_status) = state(&order)?;
            if is_paid(payment_status) {
                return Err(AppError::Conflict(format!("order {} is already paid ({payment_status})", order.number)));
            }
            if status != OrderStatus::Pending {
                return Err(AppError::Conflict(format!(
                    "order {} is {status}; only PENDING orders can be marked paid",
                    order.number
                )));
            }
            let (provider, method) = if input.charge_balance {
                ("balance", "balance".to_owned())
            } else {
                ("manual", method.unwrap_or_else(|| order.payment_method.clone()))
            };
            if input.charge_balance {
                let buyer = order.user_id.ok_or_else(|| {
                    AppError::Conflict(format!(
                        "order {} has no buyer yet: there is no balance to charge",
                        order.number
                    ))
                })?;
                ledger::change_balance(
                    conn,
                    buyer,
                    -order.total_cents,
                    Entry {
                        kind: ledger_kind::ORDER_CHARGE,
                        order_id: Some(order.id),
                        refund_id: None,
                        note: Some(&order.number),
                    },
                )
                .await?;
            }
            let superseded_attempts = cancel_pending_attempts(conn, order.id, now).await?;
            let superseded: Vec<i64> = superseded_attempts.iter().map(|p| p.id).collect();
            let payment = queries::insert_payment(
                conn,
                &models::NewPayment {
                    order_id: order.id,
                    status: PaymentAttemptStatus::Succeeded.code(),
                    provider,
                    payment_method: &method,
                    amount_cents: order.total_cents,
                    currency: &order.currency,
                    reference: reference.as_deref(),
                    payment_intent_id: None,
                    note: note.as_deref(),
                    paid_at: Some(paid_at),
                    next_check_at: None,
                },
            )
            .await?;
            let order = queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    status: Some(OrderStatus::Completed.code()),
                    payment_status: Some(PaymentStatus::Paid.code()),
                    payment_method: Some(method.clone()),
                    payment_reference: Some(reference.clone()),
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
            &actor,
            json!({ "payment_id": payment.id, "provider": provider, "payment_method": method, "reference": reference,
                    "note": note, "charged_balance": input.charge_balance, "amount_cents": order.total_cents,
                    "superseded_payment_ids": superseded }),
        )
        .await?;
            Ok((order, superseded_attempts))
        })
        .await?;
    // Attempts superseded by this payment must not be payable any more either.
    cancel_intents(pool, providers, &actor, superseded).await?;
    Ok(order)
}

// ---------------------------------------------------------------- payment outcomes

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
const DUPLICATE_PAYMENT: &str = "duplicate_payment";

/// Whether an attempt holds money that is due back: it was paid after its order had been
/// paid by another attempt (recorded CANCELLED with `duplicate_payment`).
pub fn is_due_back(payment: &models::Payment) -> bool {
    payment.status == PaymentAttemptStatus::Cancelled.code()
        && payment.failure_code.as_deref() == Some(DUPLICATE_PAYMENT)
}

/// The one code path of callbacks and reconciles. Returns the order and whether it changed.
async fn apply_outcome(
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

// ---------------------------------------------------------------- reconcile

fn outcome_from_provider(order_id: i64, payment_id: i64, found: &ProviderPayment) -> PaymentOutcome {
    PaymentOutcome {
        order_id,
        payment_id,
        status: match found.status {
            ProviderPaymentStatus::Pending => PaymentAttemptStatus::Pending,
            ProviderPaymentStatus::Succeeded => PaymentAttemptStatus::Succeeded,
            ProviderPaymentStatus::Failed => PaymentAttemptStatus::Failed,
            ProviderPaymentStatus::Cancelled => PaymentAttemptStatus::Cancelled,
        },
        reference: found.reference.clone(),
        failure_code: found.failure_code.clone(),
        failure_message: found.failure_message.clone(),
        paid_at: found.paid_at,
        authentication: None,
    }
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
        provider.fetch_payment(intent).await?
    };
    // A success is believed only for the money the attempt expects: the amount and the
    // currency the provider received must match it.
    if found.status == ProviderPaymentStatus::Succeeded {
        let amount_ok = found.amount_received.is_none_or(|received| received == payment.amount_cents);
        let currency_ok = found.currency.as_deref().is_none_or(|currency| currency == payment.currency);
        if !amount_ok || !currency_ok {
            return Err(AppError::Provider(format!(
                "the provider reports {} {} received for payment {payment_id}, which expects {} {}: not applied; check it at the provider",
                found.amount_received.map_or_else(|| "?".to_owned(), |a| a.to_string()),
                found.currency.as_deref().unwrap_or("?"),
                payment.amount_cents,
                payment.currency
            )));
        }
    }
    let outcome = outcome_from_provider(order_id, payment_id, &found);
    let actor = format!("{} (reconcile)", caller.name);
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let (order, changed) = apply_outcome(conn, &outcome, &actor).await?;
        if changed {
            events::record(
                conn,
                order.id,
                kind::RECONCILED,
                &actor,
                json!({ "payment_id": payment_id, "provider": provider.name(), "provider_status": found.raw_status }),
            )
            .await?;
        }
        Ok(order)
    })
    .await
}
