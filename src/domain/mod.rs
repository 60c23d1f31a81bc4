//! Business rules. Resolvers call these functions; they see neither HTTP nor GraphQL.

pub mod access;
pub mod audit;
pub mod cursor;
pub mod enums;
pub mod events;
pub mod idempotency;
pub mod janitor;
pub mod json;
pub mod ledger;
pub mod lifecycle;
pub mod live;
pub mod merchants;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod refund_requests;
pub mod refunds;
pub mod replay;
pub mod users;
pub mod webhooks;

pub use access::{Caller, Role};
pub use enums::{OrderStatus, PaymentAttemptStatus, PaymentStatus, RefundRequestStatus, RefundStatus};
