//! Concurrency claims, proven by requests that really race (multi-threaded runtime, many
//! requests in flight at once against the same rows).

use std::sync::Arc;

use axum::http::StatusCode;
use futures_util::future::join_all;
use serde_json::json;

use crate::callbacks::{admin_callback, start_payment};
use crate::common::TestApp;
use crate::graphql_reads::count;
use crate::mutations::{balance_checked, order_of, pay, post_json};

/// A service whose requests queue for a pooled connection as long as the race needs: forty
/// requests share eight connections and one order's lock, which on a loaded machine can
/// take longer than the default 5 s wait (a 503 is not what these tests are about).
async fn racing_app() -> TestApp {
    TestApp::with_config(billing_api::config::Config {
        pool_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_refunds_never_exceed_the_paid_amount() {
    let t = Arc::new(racing_app().await);
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let path = format!("/api/v1/admin/orders/{order}/refund");
    let requests = (0..40).map(|_| {
        let t = t.clone();
        let path = path.clone();
        tokio::spawn(async move { post_json(&t, &path, &t.admin_key, json!({ "amount_cents": 100 })).await.status })
    });
    let statuses: Vec<StatusCode> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflict = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((ok, conflict), (10, 30), "{statuses:?}");
    assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 1_000);
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM refunds WHERE order_id = {order} AND status = 2")).await,
        10
    );
    assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 6);
    crate::faults::assert_audit_clean(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_balance_charges_take_only_what_is_there() {
    let t = Arc::new(racing_app().await);
    let user = t.create_user("race@example.com", 1_000).await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(crate::common::id(&t.create_order(user, &[(1, 300)]).await["id"]));
    }
    let requests = orders.iter().map(|order| {
        let t = t.clone();
        let path = format!("/api/v1/admin/orders/{order}/pay");
        tokio::spawn(async move { post_json(&t, &path, &t.admin_key, json!({ "charge_balance": true })).await.status })
    });
    let statuses: Vec<StatusCode> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let short = statuses.iter().filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY).count();
    assert_eq!((ok, short), (3, 5), "{statuses:?}");
    assert_eq!(balance_checked(&t, user).await, 100);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders WHERE payment_status = 3").await, 3);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM balance_ledger WHERE kind = 'order_charge'").await, 3);
    crate::faults::assert_audit_clean(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_identical_callbacks_change_the_payment_once() {
    let t = Arc::new(racing_app().await);
    let (_, order) = order_of(&t, 0, 777).await;
    let payment = start_payment(&t, order).await;
    let requests = (0..20).map(|_| {
        let t = t.clone();
        tokio::spawn(async move {
            let response = admin_callback(
                &t,
                json!({ "order_id": order, "payment_id": payment, "status": 2, "reference": "ch_x" }),
            )
            .await;
            (response.status, response.body["order"]["payment_status"].clone())
        })
    });
    for result in join_all(requests).await {
        let (status, payment_status) = result.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(payment_status, 3, "every caller sees the paid order");
    }
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'paid'")).await,
        1
    );
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order}")).await, 3);
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 2")).await,
        1
    );
    crate::faults::assert_audit_clean(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_requests_with_one_idempotency_key_act_once() {
    let t = Arc::new(racing_app().await);
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let path = format!("/api/v1/admin/orders/{order}/refund");
    let requests = (0..10).map(|_| {
        let t = t.clone();
        let path = path.clone();
        tokio::spawn(async move {
            let request = axum::http::Request::post(&path)
                .header("authorization", format!("Bearer {}", t.admin_key))
                .header("content-type", "application/json")
                .header("idempotency-key", "refund-once-123")
                .body(axum::body::Body::from(json!({ "amount_cents": 100 }).to_string()))
                .unwrap();
            let response = t.send(request).await;
            (response.status, response.body, response.headers.contains_key("idempotent-replayed"))
        })
    });
    let results: Vec<_> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
    assert!(results.iter().all(|(status, _, _)| *status == StatusCode::OK), "{results:?}");
    let first_body = &results[0].1;
    assert!(results.iter().all(|(_, body, _)| body == first_body), "every caller gets the same answer");
    assert_eq!(results.iter().filter(|(_, _, replayed)| *replayed).count(), 9);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 1);
    assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 100);

    // The same key with a different request is refused; nothing changes.
    let request = axum::http::Request::post(&path)
        .header("authorization", format!("Bearer {}", t.admin_key))
        .header("content-type", "application/json")
        .header("idempotency-key", "refund-once-123")
        .body(axum::body::Body::from(json!({ "amount_cents": 200 }).to_string()))
        .unwrap();
    let response = t.send(request).await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.body["code"], "IDEMPOTENCY_CONFLICT");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 1);
    crate::faults::assert_audit_clean(&t).await;
}

/// Two requests creating users with one email at once: one user, one CONFLICT, no 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_user_with_one_email_is_a_conflict_not_a_500() {
    let t = std::sync::Arc::new(racing_app().await);
    for round in 0..5 {
        let email = format!("twin{round}@example.com");
        let query = "mutation($e: String!) { createUser(input: { email: $e, name: \"Twin\" }) { id } }";
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (t, email) = (t.clone(), email.clone());
                tokio::spawn(async move { t.gql(query, json!({ "e": email })).await })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            let body = task.await.unwrap();
            match body.get("errors") {
                None => created += 1,
                Some(_) => assert_eq!(crate::common::error_code(&body), "CONFLICT", "{body}"),
            }
        }
        assert_eq!(created, 1, "exactly one user with {email}");
    }
    crate::faults::assert_audit_clean(&t).await;
}
