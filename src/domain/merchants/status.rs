//! Seed 001's status vocabulary, derived from the service's own states by a total mapping.
//!
//! | order status | payment status | newest attempt | seed 001 status |
//! |---|---|---|---|
//! | DRAFT | UNPAID | — | TEMPORARY_SAVE |
//! | PENDING | UNPAID | — | WAITING_FOR_PAYMENT |
//! | PENDING | PROCESSING | PENDING, waiting for an OTP | OTP_CONFIRMING |
//! | PENDING | PROCESSING | PENDING, waiting for 3-D Secure | AUTHENTICATING_3DS |
//! | PENDING | PROCESSING | anything else | WAITING_FOR_PAYMENT |
//! | PENDING | FAILED | FAILED `authentication_timeout` after an OTP | OTP_TIMEOUT |
//! | PENDING | FAILED | FAILED `authentication_timeout` after 3-D Secure | TIMEOUT_3DS |
//! | PENDING | FAILED | anything else | ERROR |
//! | COMPLETED | PAID or PARTIALLY_REFUNDED | — | COMPLETE |
//! | REFUNDED | REFUNDED | — | REFUNDED |
//! | CANCELLED | any | — | CANCEL |
//!
//! Pairs the database refuses (`orders_status_pair`), such as PENDING with PAID, map to
//! ERROR, so the function is total even over values that cannot be stored.
//!
//! Seed 001's PROCESSING means "paid and waiting to be confirmed": none of our states says
//! that yet (an attempt under way has taken no money; a merchant that shipped on it could
//! lose the goods), so nothing maps to it until payments can be authorised and captured
//! separately.

use serde::{Deserialize, Serialize};

use crate::db::models;
use crate::domain::enums::{OrderStatus, PaymentAttemptStatus, PaymentStatus};

/// Failure code of an attempt whose customer did not authenticate in time.
pub const AUTHENTICATION_TIMEOUT: &str = "authentication_timeout";

/// What the customer must complete before an attempt can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Authentication {
    ThreeDs,
    Otp,
}

impl Authentication {
    pub fn as_str(self) -> &'static str {
        match self {
            Authentication::ThreeDs => "THREE_DS",
            Authentication::Otp => "OTP",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "THREE_DS" => Some(Authentication::ThreeDs),
            "OTP" => Some(Authentication::Otp),
            _ => None,
        }
    }
}

/// Seed 001's status of a payment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeedStatus {
    TemporarySave,
    WaitingForPayment,
    OtpConfirming,
    OtpTimeout,
    #[serde(rename = "AUTHENTICATING_3DS")]
    Authenticating3ds,
    #[serde(rename = "TIMEOUT_3DS")]
    Timeout3ds,
    Processing,
    Complete,
    Refunded,
    Cancel,
    Error,
}

impl SeedStatus {
    pub const ALL: &'static [SeedStatus] = &[
        SeedStatus::TemporarySave,
        SeedStatus::WaitingForPayment,
        SeedStatus::OtpConfirming,
        SeedStatus::OtpTimeout,
        SeedStatus::Authenticating3ds,
        SeedStatus::Timeout3ds,
        SeedStatus::Processing,
        SeedStatus::Complete,
        SeedStatus::Refunded,
        SeedStatus::Cancel,
        SeedStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SeedStatus::TemporarySave => "TEMPORARY_SAVE",
            SeedStatus::WaitingForPayment => "WAITING_FOR_PAYMENT",
            SeedStatus::OtpConfirming => "OTP_CONFIRMING",
            SeedStatus::OtpTimeout => "OTP_TIMEOUT",
            SeedStatus::Authenticating3ds => "AUTHENTICATING_3DS",
            SeedStatus::Timeout3ds => "TIMEOUT_3DS",
            SeedStatus::Processing => "PROCESSING",
            SeedStatus::Complete => "COMPLETE",
            SeedStatus::Refunded => "REFUNDED",
            SeedStatus::Cancel => "CANCEL",
            SeedStatus::Error => "ERROR",
        }
    }
}

/// The newest attempt's part in the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptState {
    pub status: PaymentAttemptStatus,
    pub authentication: Option<Authentication>,
    pub timed_out: bool,
}

impl AttemptState {
    pub fn of(payment: &models::Payment) -> Self {
        AttemptState {
            status: PaymentAttemptStatus::from_code(i64::from(payment.status)).unwrap_or(PaymentAttemptStatus::Failed),
            authentication: payment.authentication.as_deref().and_then(Authentication::parse),
            timed_out: payment.failure_code.as_deref() == Some(AUTHENTICATION_TIMEOUT),
        }
    }
}

/// The seed status of an order in `status`/`payment` whose newest attempt is `newest`.
pub fn seed_status(status: OrderStatus, payment: PaymentStatus, newest: Option<AttemptState>) -> SeedStatus {
    use PaymentAttemptStatus as A;
    use PaymentStatus as P;
    match status {
        OrderStatus::Draft => SeedStatus::TemporarySave,
        OrderStatus::Cancelled => SeedStatus::Cancel,
        OrderStatus::Refunded => SeedStatus::Refunded,
        OrderStatus::Completed => SeedStatus::Complete,
        OrderStatus::Pending => match payment {
            P::Unpaid => SeedStatus::WaitingForPayment,
            P::Processing => match newest {
                Some(AttemptState { status: A::Pending, authentication: Some(Authentication::Otp), .. }) => {
                    SeedStatus::OtpConfirming
                }
                Some(AttemptState { status: A::Pending, authentication: Some(Authentication::ThreeDs), .. }) => {
                    SeedStatus::Authenticating3ds
                }
                // Reserved at the provider, waiting to be captured: "paid and waiting to be
                // confirmed".
                Some(AttemptState { status: A::Authorized, .. }) => SeedStatus::Processing,
                // An attempt under way has taken no money: still waiting for payment.
                _ => SeedStatus::WaitingForPayment,
            },
            P::Failed => match newest {
                Some(AttemptState { status: A::Failed, authentication: Some(kind), timed_out: true }) => match kind {
                    Authentication::Otp => SeedStatus::OtpTimeout,
                    Authentication::ThreeDs => SeedStatus::Timeout3ds,
                },
                _ => SeedStatus::Error,
            },
            P::Paid | P::PartiallyRefunded | P::Refunded => SeedStatus::Error,
        },
    }
}

/// The seed status of a stored order given its attempts (any order; newest by id wins).
pub fn of_order(order: &models::Order, payments: &[models::Payment]) -> SeedStatus {
    let status = OrderStatus::from_code(i64::from(order.status)).unwrap_or(OrderStatus::Pending);
    let payment = PaymentStatus::from_code(i64::from(order.payment_status)).unwrap_or(PaymentStatus::Failed);
    let newest = payments.iter().filter(|p| p.order_id == order.id).max_by_key(|p| p.id).map(AttemptState::of);
    seed_status(status, payment, newest)
}

/// Seed 001's payment methods (`pay_method`), with their codes, and the service's
/// payment-method word each stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayMethod {
    CreditCard,
    Cash,
    Paypay,
    Famipay,
    Linepay,
    Applepay,
}

impl PayMethod {
    pub const ALL: &'static [PayMethod] = &[
        PayMethod::CreditCard,
        PayMethod::Cash,
        PayMethod::Paypay,
        PayMethod::Famipay,
        PayMethod::Linepay,
        PayMethod::Applepay,
    ];

    /// The seed's numeric value (sent as a string in callbacks: "0").
    pub fn code(self) -> u8 {
        match self {
            PayMethod::CreditCard => 0,
            PayMethod::Cash => 1,
            PayMethod::Paypay => 2,
            PayMethod::Famipay => 3,
            PayMethod::Linepay => 4,
            PayMethod::Applepay => 5,
        }
    }

    /// The service's payment-method word.
    pub fn method(self) -> &'static str {
        match self {
            PayMethod::CreditCard => "card",
            PayMethod::Cash => "cash",
            PayMethod::Paypay => "paypay",
            PayMethod::Famipay => "famipay",
            PayMethod::Linepay => "linepay",
            PayMethod::Applepay => "applepay",
        }
    }

    /// The seed method a payment-method word stands for, if any.
    pub fn of_method(method: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.method() == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: PaymentAttemptStatus, authentication: Option<Authentication>, timed_out: bool) -> AttemptState {
        AttemptState { status, authentication, timed_out }
    }

    /// Every (order status, payment status, newest attempt) the service can hold maps to
    /// exactly one seed status, and every seed status is reached (PROCESSING by an
    /// authorised attempt waiting to be captured).
    #[test]
    fn the_mapping_is_total_and_reaches_every_seed_status() {
        let mut attempts = vec![None];
        for status in PaymentAttemptStatus::ALL {
            for authentication in [None, Some(Authentication::ThreeDs), Some(Authentication::Otp)] {
                for timed_out in [false, true] {
                    attempts.push(Some(attempt(*status, authentication, timed_out)));
                }
            }
        }
        let mut reached = std::collections::HashSet::new();
        for status in OrderStatus::ALL {
            for payment in PaymentStatus::ALL {
                for newest in &attempts {
                    reached.insert(seed_status(*status, *payment, *newest));
                }
            }
        }
        for seed in SeedStatus::ALL {
            assert!(reached.contains(seed), "{}", seed.as_str());
        }
    }

    #[test]
    fn the_documented_rows_hold() {
        use OrderStatus as O;
        use PaymentAttemptStatus as A;
        use PaymentStatus as P;
        let three_ds = Some(Authentication::ThreeDs);
        let otp = Some(Authentication::Otp);
        let rows = [
            (O::Draft, P::Unpaid, None, SeedStatus::TemporarySave),
            (O::Pending, P::Unpaid, None, SeedStatus::WaitingForPayment),
            (O::Pending, P::Processing, Some(attempt(A::Pending, otp, false)), SeedStatus::OtpConfirming),
            (O::Pending, P::Processing, Some(attempt(A::Pending, three_ds, false)), SeedStatus::Authenticating3ds),
            (O::Pending, P::Processing, Some(attempt(A::Pending, None, false)), SeedStatus::WaitingForPayment),
            (O::Pending, P::Processing, Some(attempt(A::Authorized, None, false)), SeedStatus::Processing),
            (O::Pending, P::Failed, Some(attempt(A::Failed, otp, true)), SeedStatus::OtpTimeout),
            (O::Pending, P::Failed, Some(attempt(A::Failed, three_ds, true)), SeedStatus::Timeout3ds),
            (O::Pending, P::Failed, Some(attempt(A::Failed, three_ds, false)), SeedStatus::Error),
            (O::Pending, P::Failed, Some(attempt(A::Failed, None, false)), SeedStatus::Error),
            (O::Completed, P::Paid, None, SeedStatus::Complete),
            (O::Completed, P::PartiallyRefunded, None, SeedStatus::Complete),
            (O::Refunded, P::Refunded, None, SeedStatus::Refunded),
            (O::Cancelled, P::Unpaid, None, SeedStatus::Cancel),
            (O::Cancelled, P::Refunded, None, SeedStatus::Cancel),
        ];
        for (order, payment, newest, expected) in rows {
            assert_eq!(seed_status(order, payment, newest), expected, "{order} {payment} {newest:?}");
        }
    }

    #[test]
    fn pay_methods_round_trip() {
        for method in PayMethod::ALL {
            assert_eq!(PayMethod::of_method(method.method()), Some(*method));
        }
        assert_eq!(PayMethod::of_method("bank_transfer"), None);
    }
}
