//! What every REST face does around a mutation: run it at most once per `Idempotency-Key`
//! (when the client sent one) and answer JSON, marking a replayed answer.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::Caller;
use crate::error::AppError;
use crate::http::{HttpState, idempotency};
use crate::rest::ApiError;

/// A JSON answer; `replayed` adds `Idempotent-Replayed: true`.
pub fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Runs `act` for `caller`: at once without an Idempotency-Key, else at most once per key
/// (the caller then carries the key, so work tied to the request finds it on a retry).
/// `fingerprint` names the request (face, path and its parsed input, not the raw bytes);
/// `refuse` answers a failure of the key handling in the face's own error shape.
pub async fn respond<A, Fut>(
    state: &HttpState,
    headers: &HeaderMap,
    caller: Caller,
    fingerprint: &[&str],
    act: A,
    refuse: fn(AppError) -> Response,
) -> Response
where
    A: FnOnce(Caller) -> Fut,
    Fut: Future<Output = idempotency::Outcome> + Send + 'static,
{
    let key = match idempotency::key(headers) {
        Ok(key) => key,
        Err(error) => return refuse(error),
    };
    let Some(key) = key else {
        let outcome = act(caller).await;
        return json_response(outcome.status, outcome.body, false);
    };
    let fingerprint = idempotency::fingerprint(&state.app, fingerprint);
    let scope = idempotency::scope(&caller);
    let caller = idempotency::with_request_key(caller, &scope, &key);
    match idempotency::run(&state.app, scope, key, fingerprint, act(caller)).await {
        Ok(stored) => json_response(stored.status, stored.body, stored.replayed),
        Err(error) => refuse(error),
    }
}

/// The outcome of a mutation answered as JSON `body`, or as the error body of `ApiError`.
/// An error after the change committed is kept for replay (a retry must not act again).
pub async fn outcome(result: Result<String, ApiError>) -> idempotency::Outcome {
    match result {
        Ok(body) => idempotency::Outcome::http(StatusCode::OK, body),
        Err(error) => {
            let committed = error.committed;
            let response = error.into_response();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
            let mut outcome = idempotency::Outcome::http(status, String::from_utf8_lossy(&body).into_owned());
            outcome.retryable &= !committed;
            outcome
        }
    }
}
