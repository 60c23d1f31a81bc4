//! `Idempotency-Key` for mutations, shared by GraphQL and REST.
//!
//! The first request with a key claims it, acts, and stores its status and body; a later
//! request with the same key and the same request gets that response again (header
//! `Idempotent-Replayed: true`) without acting; with a different request it is
//! IDEMPOTENCY_CONFLICT. Two requests arriving together: the second waits for the first.
//! The action runs in its own task, so a client that disconnects cannot leave a claim
//! half-done. Server-side failures (5xx, or GraphQL errors coded PROVIDER_ERROR,
//! SERVICE_UNAVAILABLE or INTERNAL) and outcomes not known yet (OUTCOME_PENDING) are not
//! stored, so a retry acts again, on both faces; the key also travels with the request
//! (`Caller::request_key`) so a retried refund reaches the refund the first attempt made.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::domain::idempotency::{self, Claim};
use crate::domain::{Caller, Role};
use crate::error::{AppError, AppResult};

const HEADER: &str = "idempotency-key";
/// How long a duplicate waits for the first request before giving up.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(15);

/// What an action answered, and whether the failure was the server's (then it is not
/// kept: a retry with the same key acts again).
pub struct Outcome {
    pub status: StatusCode,
    pub body: String,
    pub retryable: bool,
}

impl Outcome {
    /// An answer whose HTTP status says whether the server failed (5xx), or that the
    /// outcome is not known yet (202 OUTCOME_PENDING): neither is kept.
    pub fn http(status: StatusCode, body: String) -> Self {
        Self { status, body, retryable: status.is_server_error() || status == StatusCode::ACCEPTED }
    }
}

/// JSON with every object's keys sorted, so two requests that say the same thing in another
/// key order have the same fingerprint.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// A response that can be stored and replayed.
pub struct Stored {
    pub status: StatusCode,
    pub body: String,
    pub replayed: bool,
}

/// The client's key, if it sent one.
pub fn key(headers: &HeaderMap) -> AppResult<Option<String>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| AppError::bad_input("Idempotency-Key must be visible ASCII"))?.trim();
    idempotency::validate_key(key)?;
    Ok(Some(key.to_owned()))
}

/// Keys belong to the API key that sent them (the provider has a scope of its own).
pub fn scope(caller: &Caller) -> String {
    match caller.role {
        Role::Provider => "provider".to_owned(),
        _ => format!("key:{}", caller.key_id),
    }
}

/// The caller with the request's key attached (see `Caller::request_key`).
pub fn with_request_key(mut caller: Caller, scope: &str, key: &str) -> Caller {
    caller.request_key = Some(format!("{scope}/{key}"));
    caller
}

/// `value` without what a card holds: a `cvc` field is dropped and a `number` of 12 or
/// more digits becomes its last four, at any depth. What makes two card payments "the
/// same" request is then their card's last four digits (and expiry), never the number.
pub fn without_card_data(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("cvc") && !k.eq_ignore_ascii_case("cvv"))
                .map(|(k, v)| {
                    let digits: Option<String> = v
                        .as_str()
                        .filter(|_| k.eq_ignore_ascii_case("number"))
                        .map(|s| s.chars().filter(char::is_ascii_digit).collect());
                    match digits {
                        Some(d) if d.len() >= 12 => (k.clone(), Value::String(d[d.len() - 4..].to_owned())),
                        _ => (k.clone(), without_card_data(v)),
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_card_data).collect()),
        other => other.clone(),
    }
}

/// A GraphQL document that may hold a card inline (it mentions `cvc`) with what could be
/// card data blanked: string literals of 12 or more digits (spaces and dashes aside), and
/// the literal after `cvc:`. Other literals (an order id) stay, so two requests for other
/// orders remain different requests.
pub fn document_without_card_data(query: &str) -> std::borrow::Cow<'_, str> {
    if !query.to_ascii_lowercase().contains("cvc") {
        return std::borrow::Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        let mut literal = String::new();
        let mut escaped = false;
        for inner in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if inner == '\\' {
                escaped = true;
            } else if inner == '"' {
                break;
            }
            literal.push(inner);
        }
        let digits = literal.chars().filter(char::is_ascii_digit).count();
        let card_number = digits >= 12 && literal.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
        let code = out.trim_end().to_ascii_lowercase().ends_with("cvc:");
        if card_number || code {
            out.push_str("\"#\"");
        } else {
            out.push('"');
            out.push_str(&literal);
            out.push('"');
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A fingerprint of a request: what makes two requests "the same". It is keyed (HMAC-SHA256
/// with a key derived from the callback secret), because a request may hold what must
/// never be recoverable from a stored row (a card number in a payment's variables): an
/// unkeyed hash of a known request around a 16-digit number can be searched.
pub fn fingerprint(app: &App, parts: &[&str]) -> String {
    use hmac::{Hmac, Mac};
    let key = Sha256::new()
        .chain_update(b"billing-api idempotency fingerprint\0")
        .chain_update(app.config().callback_secret.as_bytes())
        .finalize();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        // HMAC takes keys of any length; this cannot happen.
        return String::new();
    };
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Runs `act` at most once per `(scope, key)`.
pub async fn run<F>(app: &App, scope: String, key: String, fingerprint: String, act: F) -> AppResult<Stored>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let mut act = Some(act);
    loop {
        match idempotency::claim(app.pool(), &scope, &key, &fingerprint, app.config().idempotency_lease).await? {
            Claim::Owned(id) => {
                let Some(act) = act.take() else {
                    return Err(AppError::internal(anyhow::anyhow!("idempotent action claimed twice")));
                };
                let app = app.clone();
                let task = app.clone().detached().spawn(async move {
                    let lease = app.config().idempotency_lease;
                    let heartbeat = async {
                        loop {
                            tokio::time::sleep(lease / 3).await;
                            if let Err(error) = idempotency::extend(app.pool(), id, lease).await {
                                error.log();
                            }
                        }
                    };
                    let outcome = tokio::select! {
                        biased;
                        outcome = act => outcome,
                        () = heartbeat => unreachable!("the heartbeat never ends"),
                    };
                    let stored = if outcome.retryable {
                        idempotency::release(app.pool(), id).await
                    } else {
                        idempotency::complete(app.pool(), id, outcome.status.as_u16(), &outcome.body).await
                    };
                    if let Err(error) = stored {
                        error.log();
                    }
                    outcome
                });
                let Outcome { status, body, .. } = task.await.map_err(AppError::internal)?;
                return Ok(Stored { status, body, replayed: false });
            }
            Claim::Replay { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Ok(Stored { status, body, replayed: true });
            }
            Claim::InProgress if tokio::time::Instant::now() >= deadline => {
                return Err(AppError::Conflict(format!(
                    "a request with this Idempotency-Key is still in progress; retry later (a claim whose holder stopped is taken over after {} s)",
                    app.config().idempotency_lease.as_secs()
                )));
            }
            Claim::InProgress => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_data_is_left_out_of_fingerprints() {
        let input = json!({ "input": { "orderId": "7", "card": { "number": "4242 4242 4242 4242", "cvc": "123",
                            "expMonth": 5, "expYear": 2030 } } });
        let kept = without_card_data(&input).to_string();
        assert!(!kept.contains("4242 4242 4242 4242") && !kept.contains("123\""), "{kept}");
        assert!(kept.contains("\"4242\"") && kept.contains("\"orderId\":\"7\""), "{kept}");
        let inline = r#"mutation { createPayment(input: { orderId: "7", card: { number: "4242424242424242", cvc: "123" } }) { id } }"#;
        let hashed = document_without_card_data(inline);
        assert!(!hashed.contains("4242424242424242") && !hashed.contains("\"123\""), "{hashed}");
        assert_eq!(document_without_card_data("{ orders { id } }"), "{ orders { id } }");
        let other = inline.replace("\"7\"", "\"8\"");
        assert_ne!(document_without_card_data(inline), document_without_card_data(&other), "other orders differ");
    }
}
