//! Seed 002's payment states (`current_state`) and seed 003's status words, derived from
//! the service's own states. Both mappings are total: every attempt status, with or without
//! refunds, settlement or a failing provider check, gives exactly one word.

use super::super::enums::{PaymentAttemptStatus, RefundStatus, decode};
use crate::db::models;
use crate::error::AppResult;

/// Seed 002's `current_state` vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentState {
    /// PENDING, nothing at a provider yet: a manual attempt waiting for its outcome.
    Created,
    /// PENDING at a provider (its payment intent exists), or waiting for the customer to
    /// authenticate.
    Processing,
    /// PENDING, and the last time the janitor asked the provider the question failed: it
    /// asks again on its schedule.
    OnRetry,
    /// Authorised at the provider and not yet captured (manual capture).
    Reserved,
    /// The money was taken and has not settled yet.
    Captured,
    /// The money was taken and the provider reported it settled.
    Succeeded,
    Failed,
    Cancelled,
    /// A refund of this payment is under way.
    PendingRefund,
    /// The latest refund of this payment failed (none is under way).
    RefundFailed,
    /// Some of the money went back.
    PartialRefund,
    /// All of the money went back.
    Refunded,
}

impl PaymentState {
    pub const ALL: [PaymentState; 12] = [
        Self::Created,
        Self::Processing,
        Self::Captured,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Reserved,
        Self::Refunded,
        Self::PartialRefund,
        Self::PendingRefund,
        Self::RefundFailed,
        Self::OnRetry,
    ];

    /// The seed's own word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Processing => "processing",
            Self::OnRetry => "on_retry",
            Self::Reserved => "reserved",
            Self::Captured => "captured",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::PendingRefund => "pending_refund",
            Self::RefundFailed => "refund_failed",
            Self::PartialRefund => "partial_refund",
            Self::Refunded => "refunded",
        }
    }
}

/// Money the provider took for `payment` and that this service counts as arrived: a
/// SUCCEEDED attempt, or a duplicate one whose money is due back.
pub fn money_arrived(payment: &models::Payment) -> AppResult<bool> {
    let attempt = decode(payment.status, PaymentAttemptStatus::from_code, "payment attempt status")?;
    Ok(attempt == PaymentAttemptStatus::Succeeded || crate::domain::lifecycle::is_due_back(payment))
}

/// What went back of `payment`'s money: the sum of its SUCCEEDED refunds (`refunds` may
/// hold other payments' refunds of the same order; they are skipped).
pub fn refunded_cents(payment: &models::Payment, refunds: &[models::Refund]) -> i64 {
    refunds
        .iter()
        .filter(|r| r.payment_id == Some(payment.id) && r.status == RefundStatus::Succeeded.code() && !r.released)
        .map(|r| r.amount_cents)
        .sum()
}

/// What the provider took of `payment`: its amount, less the part of an authorisation that
/// was released uncaptured; nothing before the money arrived.
pub fn captured_cents(payment: &models::Payment, refunds: &[models::Refund]) -> AppResult<i64> {
    if !money_arrived(payment)? {
        return Ok(0);
    }
    let released: i64 =
        refunds.iter().filter(|r| r.payment_id == Some(payment.id) && r.released).map(|r| r.amount_cents).sum();
    Ok(payment.amount_cents - released)
}

/// What the provider holds reserved for `payment`: its amount while AUTHORIZED.
pub fn reserved_cents(payment: &models::Payment) -> i64 {
    if payment.status == PaymentAttemptStatus::Authorized.code() { payment.amount_cents } else { 0 }
}

/// Seed 002's state of `payment`, given the refunds of its order.
///
/// Order of the rules: a payment whose money arrived is described by its refunds first (one
/// under way; else the latest failed; else all or some of it back) and then by settlement;
/// one without money by its attempt status.
pub fn state_of(payment: &models::Payment, refunds: &[models::Refund]) -> AppResult<PaymentState> {
    let attempt = decode(payment.status, PaymentAttemptStatus::from_code, "payment attempt status")?;
    if money_arrived(payment)? {
        let mut own: Vec<&models::Refund> = refunds.iter().filter(|r| r.payment_id == Some(payment.id)).collect();
        own.sort_by_key(|r| r.id);
        if own.iter().any(|r| r.status == RefundStatus::Pending.code()) {
            return Ok(PaymentState::PendingRefund);
        }
        if own.last().is_some_and(|r| r.status == RefundStatus::Failed.code()) {
            return Ok(PaymentState::RefundFailed);
        }
        let back = refunded_cents(payment, refunds);
        return Ok(if back >= captured_cents(payment, refunds)? {
            PaymentState::Refunded
        } else if back > 0 {
            PaymentState::PartialRefund
        } else if payment.settled_at.is_some() {
            PaymentState::Succeeded
        } else {
            PaymentState::Captured
        });
    }
    Ok(match attempt {
        PaymentAttemptStatus::Pending if payment.last_error.is_some() => PaymentState::OnRetry,
        PaymentAttemptStatus::Pending if payment.payment_intent_id.is_none() && payment.authentication.is_none() => {
            PaymentState::Created
        }
        PaymentAttemptStatus::Pending => PaymentState::Processing,
        PaymentAttemptStatus::Authorized => PaymentState::Reserved,
        PaymentAttemptStatus::Succeeded => PaymentState::Captured,
        PaymentAttemptStatus::Failed => PaymentState::Failed,
        PaymentAttemptStatus::Cancelled => PaymentState::Cancelled,
    })
}

/// Seed 003's `status`: `settled` once the provider reported the money settled; before
/// that `success` for a SUCCEEDED attempt, `error` for a FAILED or CANCELLED one, and
/// `pending` (our addition: the seed has no word for it) while undecided. It reads the
/// attempt status, settlement and whether money arrived, so the list filter on it is plain
/// SQL.
/// Seed 003's status words (plus `pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed003Status {
    Success,
    Error,
    Settled,
    Pending,
}

impl Seed003Status {
    pub const ALL: [Seed003Status; 4] = [Self::Success, Self::Error, Self::Settled, Self::Pending];

    /// The word for an attempt in `attempt`, settled or not; a duplicate whose money is
    /// due back took money, so it is a `success` like a SUCCEEDED one.
    pub fn of(attempt: PaymentAttemptStatus, settled: bool, due_back: bool) -> Self {
        if settled {
            return Self::Settled;
        }
        match attempt {
            _ if due_back => Self::Success,
            PaymentAttemptStatus::Pending | PaymentAttemptStatus::Authorized => Self::Pending,
            PaymentAttemptStatus::Succeeded => Self::Success,
            PaymentAttemptStatus::Failed | PaymentAttemptStatus::Cancelled => Self::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Settled => "settled",
            Self::Pending => "pending",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// What a list filter on this word selects: attempt statuses (empty: any), settled or
    /// not, and whether the money arrived (SUCCEEDED, or a duplicate due back), if it matters.
    pub fn selects(self) -> (Vec<PaymentAttemptStatus>, bool, Option<bool>) {
        use PaymentAttemptStatus as A;
        match self {
            Self::Settled => (Vec::new(), true, None),
            Self::Success => (Vec::new(), false, Some(true)),
            Self::Error => (vec![A::Failed, A::Cancelled], false, Some(false)),
            Self::Pending => (vec![A::Pending, A::Authorized], false, None),
        }
    }
}
