//! State changes of an order: start a payment, cancel, mark paid, apply a payment outcome
//! (callbacks and reconcile share it). Refunds are in `refunds`.
//!
//! Every change runs in one transaction that first locks the order row (for a payment of
//! several orders, all of them in ascending id order), so concurrent requests on one order
//! serialise; balances are locked after the orders (always in that order, so two requests
//! never wait on each other crosswise). Provider calls happen outside transactions:
//! refunds reserve their amount first (`refund_pending_cents`), captures claim theirs,
//! call the provider, then settle.
//!
//! One file per action: [`create_payment`], [`pay_orders`], [`capture`] (capture and
//! cancel a payment), [`cancel`] (an order), [`mark_paid`], [`outcomes`] (callbacks, the
//! one path every payment outcome takes), [`group_outcomes`] (that path for a charge of
//! several orders), [`deadlines`] (authentication deadlines) and [`reconcile`]. This file
//! holds what they share.

mod cancel;
mod capture;
mod create_payment;
mod deadlines;
mod group_outcomes;
mod mark_paid;
mod outcomes;
mod pay_orders;
mod reconcile;

pub use cancel::{CancelInput, cancel_order};
pub use capture::{cancel_payment, capture_payment};
pub use create_payment::{MAX_OPEN_ATTEMPTS, create_payment};
pub use deadlines::expire_authentications;
pub use mark_paid::{MarkPaidInput, mark_order_paid};
pub use outcomes::{DUPLICATE_PAYMENT, PaymentOutcome, is_due_back, process_callback};
pub use pay_orders::{MAX_ORDERS, PayOrdersInput, pay_orders};
pub use reconcile::reconcile_payment;

use cancel::cancel_intents;
use outcomes::apply_outcome;
use reconcile::apply_found;

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
pub(crate) fn text(field: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(AppError::bad_input(format!("{field} must be at most {max} characters")));
    }
    if value.as_ref().is_some_and(|v| v.contains('\0')) {
        return Err(AppError::bad_input(format!("{field} must not contain NUL (\\u0000) characters")));
    }
    Ok(value)
}

pub(super) fn state(order: &models::Order) -> AppResult<(OrderStatus, PaymentStatus)> {
    Ok((
        decode(order.status, OrderStatus::from_code, "order status")?,
        decode(order.payment_status, PaymentStatus::from_code, "payment status")?,
    ))
}

/// Whether the attempt is still open (PENDING or AUTHORIZED).
fn is_open(payment: &models::Payment) -> bool {
    PaymentAttemptStatus::OPEN.iter().any(|s| s.code() == payment.status)
}

fn is_paid(payment_status: PaymentStatus) -> bool {
    matches!(payment_status, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded)
}

/// Cancels the order's open attempts, PENDING and AUTHORIZED (the order was cancelled, or
/// paid another way); returns them as they are now.
async fn cancel_pending_attempts(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    now: DateTime<Utc>,
) -> AppResult<Vec<models::Payment>> {
    Ok(queries::set_payments_status_where(
        conn,
        order_id,
        &PaymentAttemptStatus::OPEN.map(|s| s.code()),
        PaymentAttemptStatus::Cancelled.code(),
        now,
    )
    .await?)
}

/// Cancels at the provider an intent that nothing here records (recording it failed), so
/// it does not stay payable; a failure is logged.
async fn cancel_unrecorded(providers: &Providers, provider: &dyn PaymentProvider, intent: &str, orders: &[i64]) {
    if let Err(error) = providers.in_slot(provider.cancel_payment(intent)).await {
        tracing::warn!(?orders, %error, intent, "cancelling an unrecorded payment intent failed");
    }
}

/// Locks the orders a change of payment `payment_id` (of order `order_id`) touches: its
/// group's, in ascending id order, or its own. Every path that changes a payment locks
/// this way before the payment row, so no two wait on each other crosswise.
pub(super) async fn lock_orders_of(conn: &mut AsyncPgConnection, payment_id: i64, order_id: i64) -> AppResult<()> {
    for id in crate::db::groups::orders_to_lock(conn, payment_id, order_id).await? {
        queries::lock_order(conn, id).await?;
    }
    Ok(())
}

/// The order's changes when a payment pays it at `paid_at`: COMPLETED/PAID, no failure.
/// Callers add what else they know (method, reference, intent).
fn paid_changes(paid_at: DateTime<Utc>, now: DateTime<Utc>) -> OrderChanges {
    OrderChanges {
        status: Some(OrderStatus::Completed.code()),
        payment_status: Some(PaymentStatus::Paid.code()),
        payment_failure_code: Some(None),
        payment_failure_message: Some(None),
        paid_at: Some(Some(paid_at)),
        updated_at: Some(now),
        ..Default::default()
    }
}

/// Refuses to let go of an order's attempts while a capture of one is under way (its claim
/// was recorded and the attempt is still AUTHORIZED): the provider may be taking the money
/// right now. The caller holds the order's lock.
async fn refuse_while_capturing(conn: &mut AsyncPgConnection, order: &models::Order) -> AppResult<()> {
    let under_way = crate::db::groups::captures_under_way(conn, order.id).await?;
    if let Some(payment) = under_way.first() {
        return Err(AppError::Conflict(format!(
            "a capture of payment {payment} of order {} is under way; try again once it finished (reconcilePayment asks the provider)",
            order.number
        )));
    }
    Ok(())
}

/// Confirms a card attempt's intent under the attempt's own key (a repeat confirms once);
/// a definite refusal (a declined card) is answered by what the provider now reports, which
/// says why. The caller holds a provider slot.
async fn confirm_card(
    provider: &dyn PaymentProvider,
    intent: &str,
    payment_id: i64,
) -> Result<ProviderPayment, ProviderError> {
    match provider.confirm_payment(intent, &format!("payment-{payment_id}-confirm")).await {
        Err(ProviderError::Rejected(_)) => provider.fetch_payment(intent).await,
        other => other,
    }
}

/// Locks an order the caller may see; others are NOT_FOUND.
pub(crate) async fn lock_visible_order(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: i64,
) -> AppResult<models::Order> {
    visible_to(caller, queries::lock_order(conn, id).await?)
        .ok_or_else(|| AppError::not_found(format!("order {id} not found")))
}

/// The payment as it is now; the one in hand if the database cannot say (the answer must
/// not turn into an error after money may have moved).
async fn reread(pool: &DbPool, payment: models::Payment) -> AppResult<models::Payment> {
    let Ok(mut conn) = pool.get().await else { return Ok(payment) };
    match queries::find_payment_of_order(&mut conn, payment.order_id, payment.id).await {
        Ok(Some(now)) => Ok(now),
        _ => Ok(payment),
    }
}
