//! The legacy admin REST API (`000_*.txt`). Every handler runs a fixed GraphQL operation in
//! process against the same schema and reshapes the answer; none touches the database.

mod body;
mod error;
pub(crate) mod exec;
mod mutations;
pub mod openapi;
mod orders;
pub(crate) mod params;
mod shape;
pub mod store;

use axum::Router;
use axum::routing::{get, post, put};

use crate::http::HttpState;

pub use error::ApiError;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/admin/orders", get(orders::list))
        .route("/api/v1/admin/orders/{id}", get(orders::detail))
        .route("/api/v1/admin/orders/{id}/cancel", post(mutations::cancel))
        .route("/api/v1/admin/orders/{id}/pay", post(mutations::pay))
        .route("/api/v1/admin/orders/{id}/refund", post(mutations::refund))
        .route("/api/v1/admin/orders/payments/callback", post(mutations::admin_callback))
        .route("/api/v1/admin/orders/payments/reconcile", post(mutations::reconcile))
        .route("/api/v1/payments/callback", post(mutations::provider_callback))
        .route("/api/v1/order", post(store::create))
        .route("/api/v1/store/orders", get(store::list))
        .route("/api/v1/store/orders/{id}", get(store::detail).merge(put(store::update)))
        .route("/api/v1/openapi.json", get(openapi::document))
}
