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
pub mod ws;

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
        .route("/graphql", get(graphql_get).post(graphql::post))
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

/// `GET /graphql`: a WebSocket upgrade (subscriptions) or a query over HTTP.
async fn graphql_get(
    axum::extract::State(state): axum::extract::State<HttpState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    let (mut parts, _body) = request.into_parts();
    let upgrade = parts.headers.get(axum::http::header::UPGRADE).and_then(|v| v.to_str().ok());
    if upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        let ws = match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(ws) => ws,
            Err(rejection) => return rejection.into_response(),
        };
        return ws::upgrade(state, ws).await;
    }
    let raw = axum::extract::RawQuery(parts.uri.query().map(str::to_owned));
    graphql::get(axum::extract::State(state), parts.headers, raw).await
}

/// `/metrics` alone, for the metrics listener (`METRICS_BIND_ADDR`).
pub fn metrics_router(app: App) -> Router {
    Router::new().route("/metrics", get(observe::metrics)).with_state(app)
}
