//! State changes of an order: start a payment, cancel, mark paid, apply a payment outcome
//! (callbacks and reconcile share it). Refunds are in `refunds`.
//!
//! Every change runs in one transaction that first locks the order row, so concurrent
//! requests on one order serialise; balances are locked after the order (always in that
//! order, so two requests never wait on each other crosswise). Provider calls happen
//! outside transactions: refunds reserve their amount first (`refund_pending_cents`), call
//! the provider, then settle.
//!
//! One file per action: [`create_payment`], [`cancel`], [`mark_paid`], [`outcomes`]
//! (callbacks, the one path every payment outcome takes, and authentication deadlines) and
//! [`reconcile`]. This file holds what they share.

mod cancel;
mod create_payment;
mod mark_paid;
mod outcomes;
mod reconcile;

pub use cancel::{CancelInput, cancel_order};
pub use create_payment::{MAX_OPEN_ATTEMPTS, create_payment};
pub use mark_paid::{MarkPaidInput, mark_order_paid};
pub use outcomes::{DUPLICATE_PAYMENT, PaymentOutcome, expire_authentications, is_due_back, process_callback};
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
