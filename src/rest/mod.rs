//! The legacy admin REST API (`000_*.txt`). Every handler runs a fixed GraphQL operation in
//! process against the same schema and reshapes the answer; none touches the database.

mod error;
mod orders;
mod params;
mod shape;

use axum::Router;
use axum::routing::get;

use crate::http::HttpState;

pub use error::ApiError;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/admin/orders", get(orders::list))
        .route("/api/v1/admin/orders/{id}", get(orders::detail))
}
