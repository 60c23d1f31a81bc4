//! Merchant webhooks: the outbox written with each status change, the worker that sends
//! it, the signatures, the SSRF guard, and the delivery log merchants read.

pub mod log;
pub mod outbox;
pub mod signing;
pub mod target;
pub mod worker;
