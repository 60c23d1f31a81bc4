//! Payment outcomes: callback rules, signatures, the admin path.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::http::signature;
use serde_json::{Value, json};

use crate::common::{Response, TestApp, id};
use crate::graphql_reads::count;
use crate::mutations::{order_of, post_json};

pub const SECRET: &str = "dev-callback-secret";

/// Starts a payment attempt and returns its id.
pub async fn start_payment(t: &TestApp, order: i64) -> i64 {
    let data = t
        .gql_data(
            "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    id(&data["createPayment"]["id"])
}

pub async fn signed_callback(t: &TestApp, body: &Value, timestamp: i64, secret: &str) -> Response {
    let raw = body.to_string();
    let request = Request::post("/api/v1/payments/callback")
        .header(header::CONTENT_TYPE, "application/json")
        .header(signature::HEADER, signature::sign(secret, timestamp, raw.as_bytes()).unwrap())
        .body(Body::from(raw))
        .unwrap();
    t.send(request).await
}

pub async fn admin_callback(t: &TestApp, body: Value) -> Response {
    post_json(t, "/api/v1/admin/orders/payments/callback", &t.admin_key, body).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn event_kinds(t: &TestApp, order: i64) -> Vec<String> {
    let data =
        t.gql_data("query($id: ID!) { order(id: $id) { events { kind } } }", json!({ "id": order.to_string() })).await;
    data["order"]["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn success_pays_and_repeats_change_nothing() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 900).await;
    let payment = start_payment(&t, order).await;
    let body =
        json!({ "order_id": order, "payment_id": payment, "status": 2, "reference": "ch_1", "paid_at": 1_700_000_000 });
    let signed_at = now();
    let first = signed_callback(&t, &body, signed_at, SECRET).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let o = &first.body["order"];
    assert_eq!((o["status"].clone(), o["payment_status"].clone()), (json!(2), json!(3)));
    assert_eq!(o["paid_at"], 1_700_000_000);
    assert_eq!(o["payment_reference"], "ch_1");
    assert_eq!(o["payments"][0]["status"], 2);
    // The same delivery again (same signature): refused as a replay, nothing recorded.
    let replay = signed_callback(&t, &body, signed_at, SECRET).await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.body);
    assert!(replay.body["message"].as_str().unwrap().contains("already accepted"), "{}", replay.body);
    // A new delivery of the same outcome (freshly signed): accepted, changes nothing.
    let second = signed_callback(&t, &body, signed_at - 7, SECRET).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["order"]["updated_at"], first.body["order"]["updated_at"], "nothing changed");
    assert_eq!(event_kinds(&t, order).await, ["created", "payment_started", "paid"]);
    let actor = count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'paid' AND actor = 'payment-provider'")).await;
    assert_eq!(actor, 1, "the provider is the actor");

    // Failure or pending after success: an ignored event, no change.
    for status in [3, 1] {
        let late = signed_callback(
            &t,
            &json!({ "order_id": order, "payment_id": payment, "status": status, "failure_code": "x" }),
            now(),
            SECRET,
        )
        .await;
        assert_eq!(late.status, StatusCode::OK);
        assert_eq!(late.body["order"]["payment_status"], 3);
        assert_eq!(late.body["order"]["payments"][0]["status"], 2);
        assert_eq!(late.body["order"]["payment_failure_code"], Value::Null);
    }
    assert_eq!(
        event_kinds(&t, order).await,
        ["created", "payment_started", "paid", "callback_ignored", "callback_ignored"]
    );
}

#[tokio::test]
async fn failure_then_retry_then_success() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 400).await;
    let first = start_payment(&t, order).await;
    let failed = admin_callback(
        &t,
        json!({ "order_id": order, "payment_id": first, "status": 3, "failure_code": "card_declined", "failure_message": "Declined" }),
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    let o = &failed.body["order"];
    assert_eq!((o["status"].clone(), o["payment_status"].clone()), (json!(1), json!(4)));
    assert_eq!(o["payment_failure_code"], "card_declined");
    assert_eq!(o["payments"][0]["failure_message"], "Declined");

    let second = start_payment(&t, order).await;
    let third = start_payment(&t, order).await;
    let pending = admin_callback(&t, json!({ "order_id": order, "payment_id": second, "status": 1 })).await;
    assert_eq!(pending.body["order"]["payment_status"], 2);
    let paid = admin_callback(&t, json!({ "order_id": order, "payment_id": second, "status": 2 })).await;
    let o = &paid.body["order"];
    assert_eq!((o["status"].clone(), o["payment_status"].clone()), (json!(2), json!(3)));
    assert_eq!(o["payment_failure_code"], Value::Null, "cleared once paid");
    assert_eq!(o["payments"][2]["status"], 4, "the other pending attempt is superseded");
    // A late failure of another attempt is recorded on it; the paid order stays paid.
    let late =
        admin_callback(&t, json!({ "order_id": order, "payment_id": third, "status": 3, "failure_code": "expired" }))
            .await;
    assert_eq!(late.body["order"]["payment_status"], 3);
    assert_eq!(late.body["order"]["payment_failure_code"], Value::Null);
    assert_eq!(late.body["order"]["payments"][2]["failure_code"], "expired");
    assert_eq!(late.body["order"]["payments"][2]["status"], 3);
    // The same failure again changes nothing.
    let again =
        admin_callback(&t, json!({ "order_id": order, "payment_id": first, "status": 3, "failure_code": "other" }))
            .await;
    assert_eq!(again.body["order"]["payments"][0]["failure_code"], "card_declined");
}

#[tokio::test]
async fn success_for_a_cancelled_order_records_the_money() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 650).await;
    let payment = start_payment(&t, order).await;
    let cancelled = post_json(&t, &format!("/api/v1/admin/orders/{order}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(cancelled.status, StatusCode::OK);
    let paid =
        admin_callback(&t, json!({ "order_id": order, "payment_id": payment, "status": 2, "reference": "late" })).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    let o = &paid.body["order"];
    assert_eq!((o["status"].clone(), o["payment_status"].clone()), (json!(3), json!(3)));
    assert!(o["paid_at"].is_i64());
    assert_eq!(event_kinds(&t, order).await, ["created", "payment_started", "cancelled", "paid", "refund_due"]);
    // The money can then be refunded.
    let refund =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 650 }))
            .await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.body);
    assert_eq!(refund.body["order"]["payment_status"], 6);
}

#[tokio::test]
async fn a_payment_of_another_order_is_not_found() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 100).await;
    let (_, other) = order_of(&t, 0, 100).await;
    let payment = start_payment(&t, other).await;
    let response = admin_callback(&t, json!({ "order_id": order, "payment_id": payment, "status": 2 })).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&t, &format!("SELECT status::bigint AS n FROM payments WHERE id = {payment}")).await, 1);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders WHERE payment_status = 3").await, 0);
}

#[tokio::test]
async fn signatures_are_checked_before_anything_happens() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 100).await;
    let payment = start_payment(&t, order).await;
    let body = json!({ "order_id": order, "payment_id": payment, "status": 2 });
    let raw = body.to_string();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing"),
        (Some(signature::sign("wrong-secret", now(), raw.as_bytes()).unwrap()), "does not match"),
        (Some(signature::sign(SECRET, now() - 301, raw.as_bytes()).unwrap()), "5 minutes"),
        (Some(signature::sign(SECRET, now() + 400, raw.as_bytes()).unwrap()), "5 minutes"),
        (Some(signature::sign(SECRET, now(), b"{\"other\":1}").unwrap()), "does not match"),
        (Some("v1=abc".to_owned()), "t=<unix seconds>"),
        (Some(format!("t={},v1=zz", now())), "does not match"),
        // Hostile headers: extreme timestamps must not overflow, and the work is bounded.
        (Some(format!("t={},v1=00", i64::MIN)), "5 minutes"),
        (Some(format!("t={},v1=00", i64::MAX)), "5 minutes"),
        (Some(format!("t={}{}", now(), ",v1=00".repeat(5))), "more than 4"),
        (Some(format!("t={}{}", now(), ",v1=00".repeat(400))), "longer than 1024"),
    ];
    for (header_value, needle) in cases {
        let mut builder = Request::post("/api/v1/payments/callback").header(header::CONTENT_TYPE, "application/json");
        if let Some(value) = &header_value {
            builder = builder.header(signature::HEADER, value);
        }
        let response = t.send(builder.body(Body::from(raw.clone())).unwrap()).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{header_value:?}");
        assert_eq!(response.body["code"], "UNAUTHENTICATED");
        assert!(response.body["message"].as_str().unwrap().contains(needle), "{header_value:?}: {}", response.body);
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders WHERE payment_status = 3").await, 0);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'paid'").await, 0);
    // Form-encoded and signed works too; within the tolerance is fine.
    let form = format!("order_id={order}&payment_id={payment}&status=2");
    let request = Request::post("/api/v1/payments/callback")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(signature::HEADER, signature::sign(SECRET, now() - 250, form.as_bytes()).unwrap())
        .body(Body::from(form))
        .unwrap();
    let response = t.send(request).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["order"]["payment_status"], 3);
    // The admin path needs an admin key, not a signature.
    let response = post_json(&t, "/api/v1/admin/orders/payments/callback", "bk_bad", body).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reconcile_of_a_manual_payment_returns_the_order_unchanged() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 100).await;
    let payment = start_payment(&t, order).await;
    let response = post_json(
        &t,
        "/api/v1/admin/orders/payments/reconcile",
        &t.admin_key,
        json!({ "order_id": order, "payment_id": payment }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["order"]["payment_status"], 2);
    assert_eq!(event_kinds(&t, order).await, ["created", "payment_started"]);
}

#[tokio::test]
async fn two_secrets_are_accepted_while_one_is_rotated_out() {
    let config = billing_api::config::Config {
        callback_secret: "the-new-secret-of-at-least-thirty-two-bytes".to_owned(),
        callback_secret_previous: Some(SECRET.to_owned()),
        ..Default::default()
    };
    let t = TestApp::with_config(config).await;
    for (amount, secret, expected) in [
        (100, "the-new-secret-of-at-least-thirty-two-bytes", StatusCode::OK),
        (200, SECRET, StatusCode::OK),
        (300, "a-third-secret-nobody-configured-here", StatusCode::UNAUTHORIZED),
    ] {
        let (_, order) = order_of(&t, 0, amount).await;
        let payment = start_payment(&t, order).await;
        let body = json!({ "order_id": order, "payment_id": payment, "status": 2 });
        let response = signed_callback(&t, &body, now(), secret).await;
        assert_eq!(response.status, expected, "{secret}: {}", response.body);
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders WHERE payment_status = 3").await, 2);

    // A delivery signed with both secrets is one delivery: replaying it with either
    // signature alone is refused.
    let (_, order) = order_of(&t, 0, 400).await;
    let payment = start_payment(&t, order).await;
    let raw = json!({ "order_id": order, "payment_id": payment, "status": 2 }).to_string();
    let at = now();
    let new = signature::sign("the-new-secret-of-at-least-thirty-two-bytes", at, raw.as_bytes()).unwrap();
    let old = signature::sign(SECRET, at, raw.as_bytes()).unwrap();
    let old_only = old.clone();
    let both = format!("{new},{}", old.split_once(',').unwrap().1);
    for (header_value, expected) in
        [(both, StatusCode::OK), (old_only, StatusCode::CONFLICT), (new, StatusCode::CONFLICT)]
    {
        let request = Request::post("/api/v1/payments/callback")
            .header(header::CONTENT_TYPE, "application/json")
            .header(signature::HEADER, header_value.as_str())
            .body(Body::from(raw.clone()))
            .unwrap();
        let response = t.send(request).await;
        assert_eq!(response.status, expected, "{header_value}: {}", response.body);
    }
}

/// Money that arrives for an attempt after another one paid the order is due back, and is
/// recorded so once: repeating the callback (or a reconcile) adds nothing.
#[tokio::test]
async fn a_late_duplicate_payment_is_due_back_once() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 700).await;
    let late = start_payment(&t, order).await;
    assert_eq!(crate::mutations::pay(&t, order).await.status, StatusCode::OK, "paid another way");
    for _ in 0..3 {
        let response = admin_callback(&t, json!({ "order_id": order, "payment_id": late, "status": 2 })).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    let due =
        count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'refund_due'"))
            .await;
    assert_eq!(due, 1, "one refund_due for one late payment");
}

/// Out-of-order webhooks: a FAILED or PENDING that arrives after a duplicate payment's
/// success does not make its money any less due back, and a caller cannot forge the
/// `duplicate_payment` code to get a refund of money that never came.
#[tokio::test]
async fn late_outcomes_do_not_undo_money_due_back_and_it_cannot_be_forged() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 700).await;
    let late = start_payment(&t, order).await;
    assert_eq!(crate::mutations::pay(&t, order).await.status, StatusCode::OK);
    admin_callback(&t, json!({ "order_id": order, "payment_id": late, "status": 2 })).await;
    for status in [3, 1, 4] {
        let response = admin_callback(
            &t,
            json!({ "order_id": order, "payment_id": late, "status": status, "failure_code": "card_declined" }),
        )
        .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    let due = t
        .gql_data(
            "query($id: ID!) { order(id: $id) { payments { id status failureCode moneyDueBack } } }",
            json!({ "id": order.to_string() }),
        )
        .await;
    let attempt = due["order"]["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == late.to_string().as_str())
        .unwrap()
        .clone();
    assert_eq!(attempt["moneyDueBack"], true, "{attempt}");
    assert_eq!(attempt["failureCode"], "duplicate_payment");
    let ignored = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'callback_ignored'"),
    )
    .await;
    // FAILED and PENDING are ignored with an event; CANCELLED is what the attempt already is.
    assert_eq!(ignored, 2);

    // Forging: FAILED with duplicate_payment, then CANCELLED, would look due back.
    let (_, other) = order_of(&t, 0, 500).await;
    let attempt = start_payment(&t, other).await;
    let forged = admin_callback(
        &t,
        json!({ "order_id": other, "payment_id": attempt, "status": 3, "failure_code": "duplicate_payment" }),
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    assert!(forged.body["message"].as_str().unwrap().contains("duplicate_payment"));
    // A failure's code does not survive a later CANCELLED either.
    admin_callback(&t, json!({ "order_id": other, "payment_id": attempt, "status": 3, "failure_code": "x" })).await;
    admin_callback(&t, json!({ "order_id": other, "payment_id": attempt, "status": 4 })).await;
    let code = t
        .gql_data("query($id: ID!) { order(id: $id) { payments { failureCode } } }", json!({ "id": other.to_string() }))
        .await;
    assert_eq!(code["order"]["payments"][0]["failureCode"], serde_json::Value::Null);
}

/// A late FAILED for an old attempt leaves an order whose newer attempt is pending in
/// PROCESSING; once no attempt is pending, a failure fails the order's payment.
#[tokio::test]
async fn a_late_failure_of_an_old_attempt_does_not_fail_the_order() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 700).await;
    let old = start_payment(&t, order).await;
    let new = start_payment(&t, order).await;
    let failed = admin_callback(
        &t,
        json!({ "order_id": order, "payment_id": old, "status": 3, "failure_code": "card_declined" }),
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert_eq!(failed.body["order"]["payment_status"], 2, "still PROCESSING: {}", failed.body);
    let last = admin_callback(
        &t,
        json!({ "order_id": order, "payment_id": new, "status": 3, "failure_code": "expired_card" }),
    )
    .await;
    assert_eq!(last.body["order"]["payment_status"], 4, "FAILED once nothing is pending: {}", last.body);
    assert_eq!(last.body["order"]["payment_failure_code"], "expired_card");
}
