//! HTTP: the axum router that mounts the GraphQL schema, the REST adapters, GraphiQL and
//! health checks. It authenticates callers and hands them to the schema as request data.

pub mod auth;
mod graphiql;
mod graphql;
mod health;
pub mod idempotency;
pub mod observe;
pub mod ratelimit;
pub mod server;
pub mod signature;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::graphql::{AppSchema, build_schema};

/// What every handler gets: the app and the schema built over it.
#[derive(Clone)]
pub struct HttpState {
    pub app: App,
    pub schema: AppSchema,
}

/// The whole service as one router.
pub fn router(app: App) -> Router {
    let body_limit = app.config().body_limit_bytes;
    let request_timeout = app.config().request_timeout;
    let state = HttpState { schema: build_schema(app.clone()), app };
    let router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphiql", get(graphiql::graphiql))
        .route("/graphiql/assets/{name}", get(graphiql::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(crate::rest::routes())
        // After routing, so the span and the metrics know the route.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(RequestBodyLimitLayer::new(body_limit))
        // A request still running after the timeout is answered 503; its transaction rolls back.
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .with_state(state.clone());
    // Operational data stays off a public listener: on it only when it is loopback, unless
    // a separate metrics listener is configured.
    let config = state.app.config();
    if config.metrics_bind_addr.is_none() && config.bind_addr.ip().is_loopback() {
        router.merge(metrics_router(state.app.clone()))
    } else {
        router
    }
}

/// `/metrics` alone, for the metrics listener (`METRICS_BIND_ADDR`).
pub fn metrics_router(app: App) -> Router {
    Router::new().route("/metrics", get(observe::metrics)).with_state(app)
}
