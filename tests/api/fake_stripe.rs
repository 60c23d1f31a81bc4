//! A Stripe stand-in on loopback for fault injection. It keeps payment intents and refunds,
//! honours `Idempotency-Key` as Stripe does (the same key replays the first answer; the
//! same key while the first request runs is 409), lists refunds by payment intent, and can
//! be told how to misbehave on the next refund requests: act and then drop the reply, hang
//! without acting, answer 500 or 429 (with or without acting), refuse with a 400, or accept
//! a refund as `pending` (settled later by `settle_pending`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How the next refund request misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refund, then never answer (the client times out).
    DropReply,
    /// Never answer and do nothing.
    Hang,
    /// Answer with this status without acting.
    Status(u16),
    /// Refund, then answer with this status.
    StatusAfterActing(u16),
    /// A definite refusal (400, as a card or request error).
    Refuse,
    /// Accept the refund as `pending`.
    Pending,
}

#[derive(Debug, Clone)]
pub struct FakeRefund {
    pub id: String,
    pub payment_intent: String,
    pub amount: i64,
    pub refund_id: String,
    pub status: String,
}

#[derive(Default)]
pub struct Inner {
    intents: HashMap<String, Value>,
    pub refunds: Vec<FakeRefund>,
    /// Idempotency-Key -> the stored answer (status, body); `None` while it runs.
    keys: HashMap<String, Option<(u16, Value)>>,
    faults: VecDeque<Fault>,
    /// Refund POSTs received, lists received.
    pub refund_posts: usize,
    pub refund_lists: usize,
    /// Payment intent look-ups received.
    pub intent_gets: usize,
    next: usize,
}

#[derive(Clone, Default)]
pub struct FakeStripe {
    pub inner: Arc<Mutex<Inner>>,
    /// Milliseconds every refund request takes before it acts (a slow provider).
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// How long a dropped or hung request is held (longer than the client's timeout).
    hold: Duration,
}

impl FakeStripe {
    /// Starts it; returns its base URL.
    pub async fn start(hold: Duration) -> (String, FakeStripe) {
        let fake = FakeStripe { hold, ..FakeStripe::default() };
        let router = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/{id}", get(get_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .with_state(fake.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (base, fake)
    }

    /// Queues faults for the next refund requests, in order.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.inner.lock().unwrap().faults.extend(faults.iter().copied());
    }

    /// Marks an intent paid (as a customer paying it would).
    pub fn pay_intent(&self, intent: &str) {
        let mut inner = self.inner.lock().unwrap();
        let intent = inner.intents.get_mut(intent).expect("known intent");
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
    }

    /// Settles every pending refund as succeeded.
    pub fn settle_pending(&self) {
        for refund in self.inner.lock().unwrap().refunds.iter_mut().filter(|r| r.status == "pending") {
            refund.status = "succeeded".to_owned();
        }
    }

    /// The money refunded (or being refunded) at the provider, in minor units.
    pub fn refunded_total(&self) -> i64 {
        self.inner.lock().unwrap().refunds.iter().filter(|r| r.status != "failed").map(|r| r.amount).sum()
    }

    pub fn refund_count(&self) -> usize {
        self.inner.lock().unwrap().refunds.len()
    }

    pub fn refund_posts(&self) -> usize {
        self.inner.lock().unwrap().refund_posts
    }
}

fn stripe_error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, axum::Json(json!({ "error": { "message": message, "type": "api_error" } }))).into_response()
}

type Form = axum::Form<HashMap<String, String>>;

async fn create_intent(State(fake): State<FakeStripe>, headers: HeaderMap, axum::Form(fields): Form) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(|k| format!("pi:{k}"));
    if let Some(Some((_, stored))) = key.as_ref().and_then(|k| inner.keys.get(k)) {
        return axum::Json(stored.clone()).into_response();
    }
    inner.next += 1;
    let id = format!("pi_fake_{}", inner.next);
    let intent = json!({
        "id": id, "object": "payment_intent", "status": "requires_payment_method",
        "amount": fields.get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0),
        "currency": fields.get("currency").cloned().unwrap_or_default(),
        "amount_received": 0, "created": chrono::Utc::now().timestamp(),
    });
    inner.intents.insert(id, intent.clone());
    if let Some(key) = key {
        inner.keys.insert(key, Some((200, intent.clone())));
    }
    axum::Json(intent).into_response()
}

async fn get_intent(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    inner.intent_gets += 1;
    match inner.intents.get(&id) {
        Some(intent) => axum::Json(intent.clone()).into_response(),
        None => stripe_error(404, "No such payment_intent"),
    }
}

async fn cancel_intent(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    match inner.intents.get_mut(&id) {
        Some(intent) if intent["status"] != "succeeded" => {
            intent["status"] = json!("canceled");
            axum::Json(intent.clone()).into_response()
        }
        Some(_) => stripe_error(400, "You cannot cancel this PaymentIntent because it has a status of succeeded."),
        None => stripe_error(404, "No such payment_intent"),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    payment_intent: Option<String>,
}

async fn list_refunds(State(fake): State<FakeStripe>, Query(query): Query<ListQuery>) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    inner.refund_lists += 1;
    let data: Vec<Value> = inner
        .refunds
        .iter()
        .filter(|r| query.payment_intent.as_deref().is_none_or(|pi| pi == r.payment_intent))
        .map(refund_json)
        .collect();
    axum::Json(json!({ "object": "list", "data": data, "has_more": false })).into_response()
}

fn refund_json(r: &FakeRefund) -> Value {
    json!({ "id": r.id, "object": "refund", "amount": r.amount, "payment_intent": r.payment_intent,
            "status": r.status, "metadata": { "refund_id": r.refund_id } })
}

async fn create_refund(State(fake): State<FakeStripe>, headers: HeaderMap, axum::Form(fields): Form) -> Response {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(|k| format!("re:{k}"));
    let (fault, replay) = {
        let mut inner = fake.inner.lock().unwrap();
        inner.refund_posts += 1;
        match key.as_ref().map(|k| inner.keys.get(k).cloned()) {
            Some(Some(Some((status, stored)))) => (None, Some((status, stored))),
            // The same key while its first request runs.
            Some(Some(None)) => {
                return stripe_error(
                    409,
                    "There is currently another in-progress request using this Stripe API Key and idempotency key",
                );
            }
            _ => {
                // Claimed at once, as Stripe does: the same key arriving meanwhile is 409.
                if let Some(key) = &key {
                    inner.keys.insert(key.clone(), None);
                }
                let fault = inner.faults.pop_front();
                (fault, None)
            }
        }
    };
    // Answers that did nothing (and requests dropped half-way) forget the key, so a retry
    // may act.
    let mut claim = KeyClaim { fake: fake.clone(), key: key.clone() };
    if let Some((status, stored)) = replay {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(stored)).into_response();
    }
    let delay = fake.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match fault {
        Some(Fault::Hang) => {
            tokio::time::sleep(fake.hold).await;
            return stripe_error(500, "too late");
        }
        Some(Fault::Status(status)) => {
            return stripe_error(status, "injected failure");
        }
        Some(Fault::Refuse) => {
            let answer = json!({ "error": { "message": "Refund amount is invalid", "type": "invalid_request_error" } });
            if let Some(key) = claim.key.take() {
                fake.inner.lock().unwrap().keys.insert(key, Some((400, answer.clone())));
            }
            return (StatusCode::BAD_REQUEST, axum::Json(answer)).into_response();
        }
        _ => {}
    }
    // Act: the refund exists from now on, whatever the client hears.
    let refund = {
        let mut inner = fake.inner.lock().unwrap();
        inner.next += 1;
        let refund = FakeRefund {
            id: format!("re_fake_{}", inner.next),
            payment_intent: fields.get("payment_intent").cloned().unwrap_or_default(),
            amount: fields.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0),
            refund_id: fields.get("metadata[refund_id]").cloned().unwrap_or_default(),
            status: if fault == Some(Fault::Pending) { "pending" } else { "succeeded" }.to_owned(),
        };
        inner.refunds.push(refund.clone());
        let answer = refund_json(&refund);
        if let Some(key) = claim.key.take() {
            inner.keys.insert(key, Some((200, answer.clone())));
        }
        answer
    };
    match fault {
        Some(Fault::DropReply) => {
            tokio::time::sleep(fake.hold).await;
            axum::Json(refund).into_response()
        }
        Some(Fault::StatusAfterActing(status)) => stripe_error(status, "injected failure after acting"),
        _ => axum::Json(refund).into_response(),
    }
}

/// An idempotency key claimed by a request that has not stored its answer yet: forgotten
/// when the request ends (or is dropped) without one.
struct KeyClaim {
    fake: FakeStripe,
    key: Option<String>,
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(mut inner) = self.fake.inner.lock()
        {
            inner.keys.remove(&key);
        }
    }
}
