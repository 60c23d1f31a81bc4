//! Refunds: reserve, ask the provider, settle; and resolve the ones whose outcome the
//! provider left unknown.
//!
//! A refund through a provider runs in three steps. Under the order's lock it reserves its
//! amount (`refund_pending_cents`) and is recorded PENDING. With no transaction open and
//! no pooled connection held, the provider is asked, with the refund's own idempotency key
//! `refund-<id>`. Under the order's lock again, the answer settles it:
//!
//! - the provider refunded: SUCCEEDED, the reservation becomes `refunded_cents`;
//! - the provider definitely did nothing (a 4xx refusal, a connection never made, or a
//!   refund it reports failed): FAILED, the reservation is released;
//! - anything else (a timeout, a reset, 429, 5xx, or Stripe's `pending`): the refund stays
//!   PENDING with its reservation, and the caller is told `OUTCOME_PENDING`.
//!
//! Every later look at a PENDING refund (a client retrying with the same Idempotency-Key,
//! the janitor) first asks the provider for the refund by the id it was sent with, and only
//! when the provider holds none sends it again, with the same key: a refund is never sent
//! as a new one while an earlier send may have worked.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};

use super::access::Caller;
use super::enums::{OrderStatus, PaymentStatus, RefundStatus};
use super::events::{self, kind};
use super::ledger::{self, Entry};
use super::lifecycle::{lock_visible_order, state, text, timestamp};
use super::users::{MAX_AMOUNT_CENTS, ledger_kind};
use crate::db::models::{self, OrderChanges, RefundChanges};
use crate::db::{DbPool, queries};
use crate::error::{AppError, AppResult};
use crate::providers::{ProviderError, ProviderRefund, ProviderRefundStatus, Providers, RefundRequest};

#[derive(Debug, Clone, Default)]
pub struct RefundInput {
    pub order_id: i64,
    pub amount_cents: i64,
    pub reason: Option<String>,
    pub metadata: Option<Value>,
    pub refund_at: Option<DateTime<Utc>>,
    pub credit_balance: bool,
}

/// What phase one of a refund decided.
enum RefundStep {
    /// Settled already (balance credit, manual payment, or a retry of a settled refund).
    Done(models::Order),
    /// Reserved; the provider must be asked. `fresh`: never sent before.
    AskProvider { refund: models::Refund, provider: String, payment_intent_id: Option<String>, fresh: bool },
}

/// The idempotency key a refund is sent to its provider with: the same on every send.
pub fn provider_key(refund_id: i64) -> String {
    format!("refund-{refund_id}")
}

/// Refunds part or all of a paid order. Concurrent refunds can never together exceed the
/// paid amount: each one reserves its amount under the order lock. A request carrying an
/// Idempotency-Key that already made a refund continues that refund instead.
pub async fn refund_order(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    input: RefundInput,
) -> AppResult<models::Order> {
    caller.require_admin("refundOrder")?;
    if !(1..=MAX_AMOUNT_CENTS).contains(&input.amount_cents) {
        return Err(AppError::bad_input(format!(
            "amountCents must be a positive amount of at most {MAX_AMOUNT_CENTS} (got {})",
            input.amount_cents
        )));
    }
    let reason = text("reason", input.reason, 500)?;
    let metadata = super::json::object("metadata", input.metadata)?;
    let now = Utc::now();
    let refund_at = timestamp("refundAt", input.refund_at, now)?;
    let actor = caller.name.clone();
    let amount = input.amount_cents;
    let order_id = input.order_id;

    let mut conn = pool.get().await?;
    let step = conn
        .transaction::<_, AppError, _>(async |conn| {
            let order = lock_visible_order(conn, caller, order_id).await?;
            if let Some(key) = caller.request_key.as_deref()
                && let Some(refund) = queries::refund_of_request(conn, key).await?
            {
                // The key names one refund: the same request continues it; anything else
                // is another request under a key already used.
                if refund.order_id != order.id || refund.amount_cents != amount || refund.due_back {
                    return Err(AppError::IdempotencyConflict(format!(
                        "this Idempotency-Key already made refund {} of {} on another request; use a new key for a new refund",
                        refund.id, refund.amount_cents
                    )));
                }
                return continue_refund(conn, providers, order, refund).await;
            }
            let (_, payment_status) = state(&order)?;
            if !matches!(payment_status, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded) {
                return Err(AppError::Conflict(format!(
                    "order {} is {payment_status}; only PAID or PARTIALLY_REFUNDED orders can be refunded",
                    order.number
                )));
            }
            let refundable = order.total_cents - order.refunded_cents - order.refund_pending_cents;
            if amount > refundable {
                return Err(AppError::Conflict(format!(
                    "amountCents {amount} exceeds the {refundable} that can still be refunded on order {}",
                    order.number
                )));
            }
            let payment = queries::succeeded_payment(conn, order.id).await?.ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("paid order {} has no succeeded payment", order.id))
            })?;
            // Money that came from the balance goes back to the balance.
            let credit_balance = input.credit_balance || payment.provider == "balance";
            let through_provider = !credit_balance && payment.provider == "stripe";
            let refund = queries::insert_refund(
                conn,
                &models::NewRefund {
                    order_id: order.id,
                    payment_id: Some(payment.id),
                    status: RefundStatus::Pending.code(),
                    amount_cents: amount,
                    currency: &order.currency,
                    reason: reason.as_deref(),
                    metadata: &metadata,
                    credit_balance,
                    request_key: caller.request_key.as_deref(),
                    // Should this process die before the provider answers, the janitor
                    // asks the provider then.
                    next_check_at: through_provider.then(|| providers.next_check(now, 0)),
                    due_back: false,
                    released: false,
                    refunded_at: None,
                },
            )
            .await?;
            if !through_provider {
                let order = settle_refund(conn, order, &refund, refund_at, None, false, &actor).await?;
                return Ok(RefundStep::Done(order));
            }
            queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    refund_pending_cents: Some(order.refund_pending_cents + amount),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::REFUND_REQUESTED,
                &actor,
                json!({ "refund_id": refund.id, "amount_cents": amount, "provider": payment.provider }),
            )
            .await?;
            Ok(RefundStep::AskProvider {
                refund,
                provider: payment.provider,
                payment_intent_id: payment.payment_intent_id,
                fresh: true,
            })
        })
        .await?;
    drop(conn);
    finish(pool, providers, step, &actor).await
}

/// Phase two and three of a refund whose phase one is done: asks the provider (holding no
/// connection) and settles its answer.
async fn finish(pool: &DbPool, providers: &Providers, step: RefundStep, actor: &str) -> AppResult<models::Order> {
    match step {
        RefundStep::Done(order) => Ok(order),
        RefundStep::AskProvider { refund, provider, payment_intent_id, fresh } => {
            let answer = ask_provider(providers, &refund, &provider, payment_intent_id.as_deref(), fresh).await;
            let (order, refund) = settle_answer(pool, providers, refund.id, answer, actor).await?;
            outcome_for_caller(order, &refund)
        }
    }
}

/// A retry of a request that already made `refund`: settled ones answer as they are; a
/// PENDING one is asked about again (its check is moved on, so the janitor leaves it be).
async fn continue_refund(
    conn: &mut AsyncPgConnection,
    providers: &Providers,
    order: models::Order,
    refund: models::Refund,
) -> AppResult<RefundStep> {
    if refund.status != RefundStatus::Pending.code() {
        return Ok(RefundStep::Done(order));
    }
    let payment = match refund.payment_id {
        Some(id) => queries::find_payment(conn, id).await?,
        None => None,
    }
    .ok_or_else(|| AppError::internal(anyhow::anyhow!("pending refund {} has no payment", refund.id)))?;
    let now = Utc::now();
    let refund = queries::update_refund(
        conn,
        refund.id,
        &RefundChanges { next_check_at: Some(Some(providers.next_check(now, 0))), ..Default::default() },
    )
    .await?;
    Ok(RefundStep::AskProvider {
        refund,
        provider: payment.provider,
        payment_intent_id: payment.payment_intent_id,
        fresh: false,
    })
}

/// What the provider said about a refund, classified.
#[derive(Debug)]
pub enum Answer {
    /// The money went back.
    Refunded(Option<String>),
    /// The provider definitely did not refund (and will not).
    Refused(String),
    /// Not known yet: accepted but unsettled (with its provider id), or no definite answer.
    Unknown { provider_refund_id: Option<String>, detail: String },
}

/// Asks the provider about `refund`. A refund never sent before is sent; one that may have
/// been sent is first looked up, and sent again (with the same key) only when the provider
/// holds none. Holds no connection.
async fn ask_provider(
    providers: &Providers,
    refund: &models::Refund,
    provider: &str,
    payment_intent_id: Option<&str>,
    fresh: bool,
) -> Answer {
    let key = provider_key(refund.id);
    let request = RefundRequest {
        refund_id: refund.id,
        payment_intent_id,
        amount_cents: refund.amount_cents,
        idempotency_key: &key,
    };
    let provider = match providers.named(provider) {
        Ok(provider) => provider,
        // Configuration, not the refund: it may have been sent by a process that had it.
        Err(error) if !fresh => return Answer::Unknown { provider_refund_id: None, detail: error.to_string() },
        Err(error) => return Answer::Refused(error.to_string()),
    };
    let slot = match providers.slot().await {
        Ok(slot) => slot,
        Err(error) if fresh => return Answer::Refused(error.to_string()),
        Err(error) => return Answer::Unknown { provider_refund_id: None, detail: error.to_string() },
    };
    if !fresh {
        match provider.find_refund(&request).await {
            Ok(Some(found)) => return classify(Ok(found)),
            Ok(None) => {}
            // Nothing learnt: leave it for the next check.
            Err(error) => return Answer::Unknown { provider_refund_id: None, detail: error.to_string() },
        }
    }
    let sent = provider.refund(&request).await;
    drop(slot);
    match sent {
        // A connection never made, or no slot: nothing was sent this time. For a refund
        // sent before, the earlier send was just looked up and not found, so this too is
        // definite.
        Err(ProviderError::Unreachable(detail)) if fresh => Answer::Refused(detail),
        Err(ProviderError::Unreachable(detail)) => Answer::Unknown { provider_refund_id: None, detail },
        other => classify(other),
    }
}

fn classify(answer: Result<ProviderRefund, ProviderError>) -> Answer {
    match answer {
        Ok(ProviderRefund { id, status: ProviderRefundStatus::Succeeded, .. }) => Answer::Refunded(id),
        Ok(ProviderRefund { id, status: ProviderRefundStatus::Failed, raw_status }) => {
            Answer::Refused(format!("the provider reports refund {} {raw_status}", id.unwrap_or_default()))
        }
        Ok(ProviderRefund { id, status: ProviderRefundStatus::Pending, raw_status }) => {
            Answer::Unknown { provider_refund_id: id, detail: format!("the provider reports the refund {raw_status}") }
        }
        Err(ProviderError::Ambiguous(detail)) => Answer::Unknown { provider_refund_id: None, detail },
        Err(error @ (ProviderError::Rejected(_) | ProviderError::NotConfigured(_) | ProviderError::Busy)) => {
            Answer::Refused(error.to_string())
        }
        Err(ProviderError::Unreachable(detail)) => Answer::Refused(detail),
    }
}

/// Applies the provider's answer to refund `refund_id` under its order's lock. A refund
/// settled meanwhile (by another request or the janitor) is left as it is.
async fn settle_answer(
    pool: &DbPool,
    providers: &Providers,
    refund_id: i64,
    answer: Answer,
    actor: &str,
) -> AppResult<(models::Order, models::Refund)> {
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let vanished = || AppError::internal(anyhow::anyhow!("refund {refund_id} vanished"));
        // The order's lock first, as every change to its money takes it; then the refund.
        let order_id = queries::find_refund(conn, refund_id).await?.ok_or_else(vanished)?.order_id;
        let order = queries::lock_order(conn, order_id)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("order {order_id} vanished")))?;
        let current = queries::lock_refund(conn, refund_id).await?.ok_or_else(vanished)?;
        if current.status != RefundStatus::Pending.code() {
            return Ok((order, current));
        }
        let now = Utc::now();
        match answer {
            Answer::Refunded(provider_refund_id) if current.due_back => {
                let refund = settle_due_back(conn, &current, provider_refund_id, actor).await?;
                Ok((order, refund))
            }
            Answer::Refunded(provider_refund_id) => {
                let order = settle_refund(conn, order, &current, now, provider_refund_id, true, actor).await?;
                let refund = queries::lock_refund(conn, refund_id).await?.unwrap_or(current);
                Ok((order, refund))
            }
            Answer::Refused(detail) => {
                let refund = queries::update_refund(
                    conn,
                    current.id,
                    &RefundChanges {
                        status: Some(RefundStatus::Failed.code()),
                        updated_at: Some(now),
                        next_check_at: Some(None),
                        last_error: Some(Some(truncate(&detail))),
                        ..Default::default()
                    },
                )
                .await?;
                // A refund request this refund was issuing is PENDING again (seed 004).
                super::refund_requests::on_refund_failed(conn, &refund, actor).await?;
                // Money due back was never reserved against the order's own.
                let order = if current.due_back {
                    order
                } else {
                    queries::update_order(
                        conn,
                        order.id,
                        &OrderChanges {
                            refund_pending_cents: Some(order.refund_pending_cents - current.amount_cents),
                            updated_at: Some(now),
                            ..Default::default()
                        },
                    )
                    .await?
                };
                events::record(
                    conn,
                    order.id,
                    kind::REFUND_FAILED,
                    actor,
                    json!({ "refund_id": current.id, "amount_cents": current.amount_cents, "error": detail,
                            "due_back": current.due_back }),
                )
                .await?;
                Ok((order, refund))
            }
            Answer::Unknown { provider_refund_id, detail } => {
                let first_time = current.last_error.is_none();
                let refund = queries::update_refund(
                    conn,
                    current.id,
                    &RefundChanges {
                        provider_refund_id: provider_refund_id.clone().or(current.provider_refund_id.clone()).map(Some),
                        updated_at: Some(now),
                        next_check_at: Some(Some(providers.next_check(now, current.checks))),
                        last_error: Some(Some(truncate(&detail))),
                        ..Default::default()
                    },
                )
                .await?;
                // One event when the outcome first turns out unknown; later checks that
                // learn nothing new add none.
                if first_time {
                    events::record(
                        conn,
                        order.id,
                        kind::REFUND_OUTCOME_UNKNOWN,
                        actor,
                        json!({ "refund_id": current.id, "amount_cents": current.amount_cents,
                                "provider_refund_id": provider_refund_id, "error": detail,
                                "due_back": current.due_back }),
                    )
                    .await?;
                }
                Ok((order, refund))
            }
        }
    })
    .await
}

fn truncate(detail: &str) -> String {
    detail.chars().take(500).collect()
}

/// What the caller of `refundOrder` is told about a refund it made or continued.
fn outcome_for_caller(order: models::Order, refund: &models::Refund) -> AppResult<models::Order> {
    match RefundStatus::from_code(i64::from(refund.status)) {
        Some(RefundStatus::Succeeded) => Ok(order),
        Some(RefundStatus::Pending) => Err(AppError::OutcomePending(format!(
            "refund {} of {} on order {} was sent to the payment provider, which has not confirmed it yet: it stays PENDING with its amount reserved until the provider answers; {}",
            refund.id,
            refund.amount_cents,
            order.number,
            if refund.request_key.is_some() {
                "retry with the same Idempotency-Key, or read the order, to learn the outcome"
            } else {
                "read the order to learn the outcome (sending the refund again without an Idempotency-Key makes another refund)"
            }
        ))),
        _ => Err(AppError::Provider(format!(
            "the payment provider did not refund {} on order {}: {}; nothing was refunded and the amount is refundable again",
            refund.amount_cents,
            order.number,
            refund.last_error.as_deref().unwrap_or("refused")
        ))),
    }
}

/// Asks the provider about one PENDING refund the janitor claimed, and settles what it
/// learns. Returns whether the refund is resolved.
pub async fn resolve_refund(pool: &DbPool, providers: &Providers, refund: &models::Refund) -> AppResult<bool> {
    let payment = {
        let mut conn = pool.get().await?;
        match refund.payment_id {
            Some(id) => queries::find_payment(&mut conn, id).await?,
            None => None,
        }
    };
    let Some(payment) = payment else {
        return Err(AppError::internal(anyhow::anyhow!("pending refund {} has no payment", refund.id)));
    };
    let answer = ask_provider(providers, refund, &payment.provider, payment.payment_intent_id.as_deref(), false).await;
    let (_, refund) = settle_answer(pool, providers, refund.id, answer, super::events::JANITOR_ACTOR).await?;
    Ok(refund.status != RefundStatus::Pending.code())
}

/// Gives back the money of a duplicate payment (an attempt that was paid after its order
/// had been paid by another): the whole attempt's amount, through its provider, with the
/// same unknown-outcome rules as any refund. The order's own refunded amount is untouched.
pub async fn refund_due_payment(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    payment_id: i64,
    reason: Option<String>,
) -> AppResult<models::Order> {
    caller.require_admin("refundDuePayment")?;
    let reason = text("reason", reason, 500)?;
    let actor = caller.name.clone();
    let now = Utc::now();
    let mut conn = pool.get().await?;
    let not_found = || AppError::not_found(format!("payment {payment_id} not found"));
    let order_id = queries::find_payment(&mut conn, payment_id).await?.ok_or_else(not_found)?.order_id;
    let step = conn
        .transaction::<_, AppError, _>(async |conn| {
            let order = lock_visible_order(conn, caller, order_id).await?;
            let payment = queries::find_payment(conn, payment_id).await?.ok_or_else(not_found)?;
            if let Some(key) = caller.request_key.as_deref()
                && let Some(refund) = queries::refund_of_request(conn, key).await?
            {
                if !(refund.due_back && refund.payment_id == Some(payment_id)) {
                    return Err(AppError::IdempotencyConflict(format!(
                        "this Idempotency-Key already made refund {} on another request; use a new key for a new refund",
                        refund.id
                    )));
                }
                return continue_refund(conn, providers, order, refund).await;
            }
            if !super::lifecycle::is_due_back(&payment) {
                return Err(AppError::Conflict(format!(
                    "payment {payment_id} holds no money due back: only an attempt paid after its order was paid by another (failure code duplicate_payment) can be refunded this way"
                )));
            }
            if let Some(live) = queries::live_due_back_refund(conn, payment_id).await? {
                return Err(AppError::Conflict(format!(
                    "payment {payment_id} is already being given back or was given back (refund {})",
                    live.id
                )));
            }
            let through_provider = payment.provider == "stripe";
            let refund = queries::insert_refund(
                conn,
                &models::NewRefund {
                    order_id: order.id,
                    payment_id: Some(payment.id),
                    status: RefundStatus::Pending.code(),
                    amount_cents: payment.amount_cents,
                    currency: &payment.currency,
                    reason: reason.as_deref(),
                    metadata: &json!({}),
                    credit_balance: false,
                    request_key: caller.request_key.as_deref(),
                    next_check_at: through_provider.then(|| providers.next_check(now, 0)),
                    due_back: true,
                    released: false,
                    refunded_at: None,
                },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::REFUND_REQUESTED,
                &actor,
                json!({ "refund_id": refund.id, "payment_id": payment.id, "amount_cents": refund.amount_cents,
                        "provider": payment.provider, "due_back": true }),
            )
            .await?;
            if !through_provider {
                // Recorded outside the service (manual): given back at once.
                settle_due_back(conn, &refund, None, &actor).await?;
                return Ok(RefundStep::Done(order));
            }
            Ok(RefundStep::AskProvider {
                refund,
                provider: payment.provider,
                payment_intent_id: payment.payment_intent_id,
                fresh: true,
            })
        })
        .await?;
    drop(conn);
    finish(pool, providers, step, &actor).await
}

/// Records a refund as SUCCEEDED at `refunded_at`, keeping the provider's refund id it
/// already had when the answer names none.
async fn mark_succeeded(
    conn: &mut AsyncPgConnection,
    refund: &models::Refund,
    provider_refund_id: Option<String>,
    refunded_at: DateTime<Utc>,
) -> AppResult<models::Refund> {
    Ok(queries::update_refund(
        conn,
        refund.id,
        &RefundChanges {
            status: Some(RefundStatus::Succeeded.code()),
            provider_refund_id: Some(provider_refund_id.or(refund.provider_refund_id.clone())),
            refunded_at: Some(Some(refunded_at)),
            updated_at: Some(Utc::now()),
            next_check_at: Some(None),
            ..Default::default()
        },
    )
    .await?)
}

/// Marks a due-back refund succeeded; the order's amounts are not the ones it returns.
async fn settle_due_back(
    conn: &mut AsyncPgConnection,
    refund: &models::Refund,
    provider_refund_id: Option<String>,
    actor: &str,
) -> AppResult<models::Refund> {
    let settled = mark_succeeded(conn, refund, provider_refund_id.clone(), Utc::now()).await?;
    events::record(
        conn,
        refund.order_id,
        kind::DUE_BACK_REFUNDED,
        actor,
        json!({ "refund_id": refund.id, "payment_id": refund.payment_id, "amount_cents": refund.amount_cents,
                "provider_refund_id": provider_refund_id }),
    )
    .await?;
    Ok(settled)
}

/// Marks a refund succeeded and moves its amount into `refunded_cents` (out of the
/// reservation when it was reserved), crediting the balance when asked.
async fn settle_refund(
    conn: &mut AsyncPgConnection,
    order: models::Order,
    refund: &models::Refund,
    refund_at: DateTime<Utc>,
    provider_refund_id: Option<String>,
    was_reserved: bool,
    actor: &str,
) -> AppResult<models::Order> {
    let now = Utc::now();
    let refunded = order.refunded_cents + refund.amount_cents;
    let (status, _) = state(&order)?;
    let full = refunded == order.total_cents;
    mark_succeeded(conn, refund, provider_refund_id.clone(), refund_at).await?;
    // A refund request this refund issues is ISSUED with it (seed 004).
    super::refund_requests::on_refund_succeeded(conn, refund, actor).await?;
    if refund.credit_balance {
        let buyer = order.user_id.ok_or_else(|| {
            AppError::Conflict(format!("order {} has no buyer: refund it through its provider instead", order.number))
        })?;
        ledger::change_balance(
            conn,
            buyer,
            refund.amount_cents,
            Entry {
                kind: ledger_kind::REFUND_CREDIT,
                order_id: Some(order.id),
                refund_id: Some(refund.id),
                note: refund.reason.as_deref(),
            },
        )
        .await?;
    }
    let order = queries::update_order(
        conn,
        order.id,
        &OrderChanges {
            status: Some(if full { OrderStatus::Refunded } else { status }.code()),
            payment_status: Some(if full { PaymentStatus::Refunded } else { PaymentStatus::PartiallyRefunded }.code()),
            refunded_cents: Some(refunded),
            refund_pending_cents: was_reserved.then(|| order.refund_pending_cents - refund.amount_cents),
            refunded_at: Some(Some(refund_at)),
            updated_at: Some(now),
            ..Default::default()
        },
    )
    .await?;
    events::record(
        conn,
        order.id,
        kind::REFUNDED,
        actor,
        json!({ "refund_id": refund.id, "amount_cents": refund.amount_cents, "refunded_cents": refunded,
                "credit_balance": refund.credit_balance, "provider_refund_id": provider_refund_id }),
    )
    .await?;
    Ok(order)
}
