//! A slow payment provider cannot take the service: no pooled connection is held while a
//! provider works, and calls out go through a bounded bulkhead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use billing_api::config::{Config, ProviderKind};
use serde_json::json;
use tokio::net::TcpListener;

use crate::callbacks::{admin_callback, start_payment};
use crate::common::TestApp;
use crate::graphql_reads::count;
use crate::mutations::{order_of, post_json};

/// A Stripe stand-in on loopback whose refunds take `delay`; it counts refunds in flight.
#[derive(Default)]
struct SlowStripe {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    received: AtomicUsize,
    next: AtomicUsize,
}

async fn start_slow_stripe(delay: Duration) -> (String, Arc<SlowStripe>) {
    let stripe = Arc::new(SlowStripe::default());
    let intents = {
        let stripe = stripe.clone();
        move || {
            let n = stripe.next.fetch_add(1, Ordering::SeqCst);
            async move { axum::Json(json!({ "id": format!("pi_slow_{n}"), "status": "requires_payment_method" })) }
        }
    };
    let refunds = {
        let stripe = stripe.clone();
        move || {
            let stripe = stripe.clone();
            async move {
                stripe.received.fetch_add(1, Ordering::SeqCst);
                let now = stripe.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                stripe.most_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                stripe.in_flight.fetch_sub(1, Ordering::SeqCst);
                let n = stripe.next.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "id": format!("re_slow_{n}"), "status": "succeeded" }))
            }
        }
    };
    let router = Router::new().route("/v1/payment_intents", post(intents)).route("/v1/refunds", post(refunds));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, stripe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_waiting_on_a_slow_provider_hold_no_connection_and_are_bounded() {
    let (base, stripe) = start_slow_stripe(Duration::from_millis(2_500)).await;
    let config = Config {
        payment_provider: ProviderKind::Stripe,
        stripe_api_base: base,
        provider_concurrency: 5,
        ..Config::default()
    };
    let t = Arc::new(TestApp::with_config(config).await);
    // Ten orders paid through the (stand-in) provider.
    let mut orders = Vec::new();
    for _ in 0..10 {
        let (_, order) = order_of(&t, 0, 1_000).await;
        let payment = start_payment(&t, order).await;
        let paid = admin_callback(&t, json!({ "order_id": order, "payment_id": payment, "status": 2 })).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        orders.push(order);
    }
    let refunds: Vec<_> = orders
        .iter()
        .map(|order| {
            let (t, path) = (t.clone(), format!("/api/v1/admin/orders/{order}/refund"));
            tokio::spawn(async move { post_json(&t, &path, &t.admin_key, json!({ "amount_cents": 100 })).await })
        })
        .collect();
    // Once every refund has reserved its amount, five are with the provider (for 2.5 s) and
    // five wait for a slot: none of them holds a pooled connection.
    while stripe.received.load(Ordering::SeqCst) < 5
        || count(&t, "SELECT count(*) AS n FROM refunds WHERE status = 1").await < 10
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A refund's commit is visible a moment before its task hands the connection back, so
    // the pool is watched for a while (the provider still holds the first five for seconds).
    let watch_until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    let held = loop {
        let status = t.app.pool().status();
        let held = status.size - status.available;
        if held == 0 || tokio::time::Instant::now() > watch_until {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(held, 0, "no pooled connection is held while the provider works");
    assert_eq!(
        count(&t, "SELECT count(*) AS n FROM refunds WHERE status <> 1").await,
        0,
        "the pool was watched while every refund still waited on the provider"
    );
    let read = t.get("/api/v1/admin/orders?per_page=5", Some(&t.admin_key)).await;
    assert_eq!(read.status, 200, "reads go on while refunds wait on the provider");
    for refund in refunds {
        let response = refund.await.unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert!(stripe.most_in_flight.load(Ordering::SeqCst) <= 5, "the bulkhead bounds calls in flight");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds WHERE status = 2").await, 10);
}

/// Reconcile believes a success only for the money the attempt expects.
#[tokio::test]
async fn reconcile_refuses_a_success_for_other_money() {
    use axum::routing::get;
    use std::sync::atomic::AtomicI64;
    let received = Arc::new(AtomicI64::new(1));
    let router = {
        let received = received.clone();
        Router::new()
            .route(
                "/v1/payment_intents",
                post(|| async { axum::Json(json!({ "id": "pi_check", "status": "requires_payment_method" })) }),
            )
            .route(
                "/v1/payment_intents/{id}",
                get(move || {
                    let amount = received.load(Ordering::SeqCst);
                    async move {
                        axum::Json(json!({ "id": "pi_check", "status": "succeeded", "amount_received": amount,
                                           "currency": "usd", "latest_charge": "ch_check", "created": 1_700_000_000 }))
                    }
                }),
            )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let config = Config { payment_provider: ProviderKind::Stripe, stripe_api_base: base, ..Config::default() };
    let t = TestApp::with_config(config).await;
    let (_, order) = order_of(&t, 0, 700).await;
    let payment = start_payment(&t, order).await;
    let path = "/api/v1/admin/orders/payments/reconcile";
    let body = json!({ "order_id": order, "payment_id": payment });
    let mismatch = post_json(&t, path, &t.admin_key, body.clone()).await;
    assert_eq!(mismatch.status, 502, "{}", mismatch.body);
    assert!(mismatch.body["message"].as_str().unwrap().contains("1 USD received"), "{}", mismatch.body);
    assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 2);
    received.store(700, Ordering::SeqCst);
    let matched = post_json(&t, path, &t.admin_key, body).await;
    assert_eq!(matched.status, 200, "{}", matched.body);
    assert_eq!(matched.body["order"]["payment_status"], 3, "paid once the money matches");
}

/// When the provider will not cancel an intent, the order is cancelled all the same and
/// the failure is an event (money that still arrives is recorded as due back).
#[tokio::test]
async fn a_failed_intent_cancel_does_not_undo_the_cancellation() {
    // The stand-in has no cancel route: every cancel is refused.
    let (base, _) = start_slow_stripe(Duration::from_millis(1)).await;
    let config = Config { payment_provider: ProviderKind::Stripe, stripe_api_base: base, ..Config::default() };
    let t = TestApp::with_config(config).await;
    let (_, order) = order_of(&t, 0, 900).await;
    start_payment(&t, order).await;
    let cancelled = post_json(&t, &format!("/api/v1/admin/orders/{order}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["order"]["status"], 3);
    let failed = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'intent_cancel_failed'"),
    )
    .await;
    assert_eq!(failed, 1);
}
