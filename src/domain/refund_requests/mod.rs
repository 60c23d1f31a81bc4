//! Refund requests (seed 004): refunds asked for before they are made.
//!
//! A customer asks for its own user's orders, a seller (merchant key) for its own stores'
//! orders, an admin for any: PENDING. A seller or an admin decides: approve (PROCESSING,
//! then ISSUED once the refund went back), or deny (DENIED, with a response reason). The
//! requester or an admin may cancel a PENDING request (CANCELLED). Every transition is kept
//! (`refund_request_transitions`) and appends an order event.
//!
//! Money: at most one open (PENDING or PROCESSING) request per order (a partial unique
//! index), so "what other open requests ask" is nothing; the amount is at most what is still
//! refundable when asked, and checked again under the order's lock when approved. Approval
//! issues the refund through `refunds::refund_order` with the request's own key
//! (`refund-request/<id>`), so a retry or the janitor continues that one refund.

mod decide;
mod issue;
mod read;
mod request;

pub use decide::{cancel, deny};
pub use issue::{approve, on_refund_failed, on_refund_succeeded};
pub use read::{RequestFilter, Seen, get, history, list, of_orders};
pub use request::request_refund;

use super::access::{Caller, Role};
use super::enums::{PaymentStatus, RefundRequestStatus};
use crate::db::models;
use crate::error::{AppError, AppResult};

/// How a caller's role is recorded on a request and its transitions.
fn role_name(caller: &Caller) -> AppResult<&'static str> {
    match caller.role {
        Role::Admin => Ok("admin"),
        Role::Customer => Ok("customer"),
        Role::Merchant => Ok("merchant"),
        Role::Support | Role::Provider => Err(AppError::Forbidden(format!(
            "refund requests are for customer, merchant and admin keys; this key has role {}",
            caller.role.as_str()
        ))),
    }
}

/// Whether `request` can still lead to money back (or did): DENIED and CANCELLED cannot; a
/// PENDING one can while its order is paid and can still cover it; PROCESSING and ISSUED
/// can. The same rule as the list filter's SQL (`db::refund_requests::VALID_SQL`).
pub fn is_valid(request: &models::RefundRequest, order: &models::Order) -> bool {
    match RefundRequestStatus::from_code(i64::from(request.status)) {
        Some(RefundRequestStatus::Denied | RefundRequestStatus::Cancelled) | None => false,
        Some(RefundRequestStatus::Pending) => {
            let paid = PaymentStatus::from_code(i64::from(order.payment_status))
                .is_some_and(|s| matches!(s, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded));
            paid && refundable(order) >= request.amount_cents
        }
        Some(RefundRequestStatus::Processing | RefundRequestStatus::Issued) => true,
    }
}

/// What can still be refunded on an order: total − refunded − pending.
fn refundable(order: &models::Order) -> i64 {
    order.total_cents - order.refunded_cents - order.refund_pending_cents
}

/// Refuses an amount an order cannot cover (paid, and at most what is still refundable).
fn check_coverable(order: &models::Order, amount_cents: i64) -> AppResult<()> {
    let status = PaymentStatus::from_code(i64::from(order.payment_status));
    if !status.is_some_and(|s| matches!(s, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded)) {
        return Err(AppError::Conflict(format!(
            "order {} is not paid (or fully refunded): there is nothing to refund",
            order.number
        )));
    }
    let left = refundable(order);
    if amount_cents > left {
        return Err(AppError::Conflict(format!(
            "amountCents {amount_cents} exceeds the {left} that can still be refunded on order {}",
            order.number
        )));
    }
    Ok(())
}

fn status_of(request: &models::RefundRequest) -> AppResult<RefundRequestStatus> {
    super::enums::decode(request.status, RefundRequestStatus::from_code, "refund request status")
}
