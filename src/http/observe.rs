//! One span per request: a request id (from `X-Request-Id`, or generated) echoed in the
//! response, the route, the GraphQL operation, the caller's key name, status and latency;
//! one log line when it ends, and the request metrics. Headers and bodies are never logged,
//! so keys, secrets and card numbers cannot reach the logs through here.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use tracing::Instrument;
use tracing::field::Empty;

use super::HttpState;

pub const REQUEST_ID: &str = "x-request-id";

/// The GraphQL operation a response answered (set by the handlers, read for logs/metrics):
/// a label from a closed set (metrics and logs), and the client's operation name (logs
/// only, and only when it is a valid GraphQL name of at most 64 characters).
#[derive(Clone)]
pub struct Operation {
    pub label: String,
    pub name: Option<String>,
}

impl Operation {
    pub fn new(label: String, name: Option<&str>) -> Self {
        let valid = |n: &&str| {
            n.len() <= 64
                && n.bytes().next().is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
                && n.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
        };
        Self { label, name: name.filter(valid).map(str::to_owned) }
    }
}

fn request_id(request: &Request) -> String {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()));
    match given {
        Some(id) => id.to_owned(),
        None => {
            let mut bytes = [0u8; 12];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        }
    }
}

pub async fn observe(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let id = request_id(&request);
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        operation = Empty,
        operation_name = Empty,
        key = Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let (operation, name) = match response.extensions().get::<Operation>() {
        Some(o) => (o.label.clone(), o.name.clone()),
        None => ("-".to_owned(), None),
    };
    let status = response.status().as_u16();
    span.record("operation", operation.as_str());
    if let Some(name) = &name {
        span.record("operation_name", name.as_str());
    }
    span.in_scope(|| {
        tracing::info!(status, latency_ms = latency.as_secs_f64() * 1000.0, "request finished");
    });
    state.app.metrics().observe_request(&route, &operation, status, latency);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(app): State<crate::app::App>) -> Response {
    let mut text = app.metrics().render(app.pool(), app.statements());
    match crate::domain::janitor::summary(app.pool()).await {
        Ok(kinds) => {
            text.push_str(
                "# HELP billing_unresolved_items Refunds and payment attempts whose outcome is not known yet (PENDING).\n\
                 # TYPE billing_unresolved_items gauge\n",
            );
            for (kind, count, _) in &kinds {
                text.push_str(&format!("billing_unresolved_items{{kind=\"{kind}\"}} {count}\n"));
            }
            text.push_str(
                "# HELP billing_unresolved_oldest_age_seconds Age of the oldest unresolved item (0 when none).\n\
                 # TYPE billing_unresolved_oldest_age_seconds gauge\n",
            );
            for (kind, _, age) in &kinds {
                text.push_str(&format!("billing_unresolved_oldest_age_seconds{{kind=\"{kind}\"}} {age}\n"));
            }
        }
        Err(error) => error.log(),
    }
    match crate::domain::webhooks::log::pending(app.pool()).await {
        Ok((count, age)) => text.push_str(&format!(
            "# HELP billing_webhook_pending Merchant webhook deliveries not yet delivered or given up.\n\
             # TYPE billing_webhook_pending gauge\nbilling_webhook_pending {count}\n\
             # HELP billing_webhook_oldest_pending_age_seconds Age of the oldest pending delivery (0 when none).\n\
             # TYPE billing_webhook_oldest_pending_age_seconds gauge\nbilling_webhook_oldest_pending_age_seconds {age}\n"
        )),
        Err(error) => error.log(),
    }
    let mut response = Response::new(axum::body::Body::from(text));
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
