//! The enumerations of SPEC §3. Each has a stable integer code (stored in the database and
//! used by the REST layer) and a SCREAMING_CASE name (used by GraphQL and in messages).

use serde::{Deserialize, Serialize};

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The integer code of SPEC §3.
            pub fn code(self) -> i16 {
                match self { $($name::$variant => $code),+ }
            }

            /// The value for an integer code, if the code is known.
            pub fn from_code(code: i64) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// The SCREAMING_CASE name used by GraphQL.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The largest known code (codes run from 1 to this).
            pub fn max_code() -> i16 {
                Self::ALL.iter().map(|v| v.code()).max().unwrap_or(0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded_enum!(
    /// Lifecycle of an order.
    OrderStatus {
        Pending = 1 => "PENDING",
        Completed = 2 => "COMPLETED",
        Cancelled = 3 => "CANCELLED",
        Refunded = 4 => "REFUNDED",
        /// Saved by its merchant but not yet open for payment (seed 001's TEMPORARY_SAVE).
        Draft = 5 => "DRAFT",
    }
);

coded_enum!(
    /// Where the money of an order stands.
    PaymentStatus {
        Unpaid = 1 => "UNPAID",
        Processing = 2 => "PROCESSING",
        Paid = 3 => "PAID",
        Failed = 4 => "FAILED",
        PartiallyRefunded = 5 => "PARTIALLY_REFUNDED",
        Refunded = 6 => "REFUNDED",
    }
);

coded_enum!(
    /// State of one payment attempt.
    PaymentAttemptStatus {
        Pending = 1 => "PENDING",
        Succeeded = 2 => "SUCCEEDED",
        Failed = 3 => "FAILED",
        Cancelled = 4 => "CANCELLED",
        Authorized = 5 => "AUTHORIZED",
    }
);

impl PaymentAttemptStatus {
    /// Attempts still open: the order's payment is under way on them (PROCESSING), a new
    /// card payment waits for them, and cancelling the order cancels them.
    pub const OPEN: [PaymentAttemptStatus; 2] = [PaymentAttemptStatus::Pending, PaymentAttemptStatus::Authorized];
}

coded_enum!(
    /// State of one refund.
    RefundStatus {
        Pending = 1 => "PENDING",
        Succeeded = 2 => "SUCCEEDED",
        Failed = 3 => "FAILED",
    }
);

coded_enum!(
    /// State of a refund request (seed 004).
    RefundRequestStatus {
        /// Asked, not decided.
        Pending = 1 => "PENDING",
        /// Approved; the refund is being issued.
        Processing = 2 => "PROCESSING",
        /// The money went back.
        Issued = 3 => "ISSUED",
        /// Refused, with a response reason.
        Denied = 4 => "DENIED",
        /// Withdrawn by the requester or an admin.
        Cancelled = 5 => "CANCELLED",
    }
);

/// Reads a stored code back into its enum; an unknown code in the database is a bug.
pub fn decode<T>(code: i16, from_code: fn(i64) -> Option<T>, what: &str) -> crate::error::AppResult<T> {
    from_code(i64::from(code))
        .ok_or_else(|| crate::error::AppError::internal(anyhow::anyhow!("unknown {what} code {code} in the database")))
}
