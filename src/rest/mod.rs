//! The REST faces, one folder per seed: `admin` (seed 000, the legacy admin API),
//! `store` (seed 001, merchants' payment requests), `payments` (seed 003) and `refunds`
//! (seed 004, refund requests). Every handler runs a fixed GraphQL
//! operation in process against the same schema and reshapes the answer; none touches the
//! database. What the faces share: running operations (`exec`), query parameters, the
//! error type and the OpenAPI document.

pub mod admin;
pub(crate) mod body;
mod error;
pub(crate) mod exec;
pub(crate) mod once;
pub mod openapi;
pub(crate) mod params;
pub mod payments;
pub mod refunds;
pub mod store;

use axum::Router;
use axum::routing::{get, post, put};

use crate::http::HttpState;

pub use error::ApiError;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/admin/orders", get(admin::orders::list))
        .route("/api/v1/admin/orders/{id}", get(admin::orders::detail))
        .route("/api/v1/admin/orders/{id}/cancel", post(admin::mutations::cancel))
        .route("/api/v1/admin/orders/{id}/pay", post(admin::mutations::pay))
        .route("/api/v1/admin/orders/{id}/refund", post(admin::mutations::refund))
        .route("/api/v1/admin/orders/payments/callback", post(admin::mutations::admin_callback))
        .route("/api/v1/admin/orders/payments/reconcile", post(admin::mutations::reconcile))
        .route("/api/v1/payments/callback", post(admin::mutations::provider_callback))
        .route("/api/v1/order", post(store::create))
        .route("/api/v1/store/orders", get(store::list))
        .route("/api/v1/store/orders/{id}", get(store::detail).merge(put(store::update)))
        .route("/api/v2/refunds", get(refunds::handlers::list).merge(post(refunds::handlers::create)))
        .route("/api/v2/refunds/{id}/approve", post(refunds::handlers::approve))
        .route("/api/v2/refunds/{id}/deny", post(refunds::handlers::deny))
        .route("/api/v2/refunds/{id}/cancel", post(refunds::handlers::cancel))
        .route("/api/payments", get(payments::handlers::list).merge(post(payments::handlers::create)))
        .route("/api/payments/{payment_id}", get(payments::handlers::detail).merge(put(payments::handlers::update)))
        .route("/api/v1/openapi.json", get(openapi::document))
}
