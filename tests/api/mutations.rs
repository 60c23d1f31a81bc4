//! The money mutations through GraphQL and REST: rules, ledger, events, bad input.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::domain::Role;
use serde_json::{Value, json};

use crate::common::{Response, TestApp, error_code, id};
use crate::graphql_reads::count;

/// POSTs a JSON body to a REST path as `key`.
pub async fn post_json(t: &TestApp, path: &str, key: &str, body: Value) -> Response {
    let request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    t.send(request).await
}

pub async fn post_raw(t: &TestApp, path: &str, key: &str, content_type: Option<&str>, body: &str) -> Response {
    let mut builder = Request::post(path).header(header::AUTHORIZATION, format!("Bearer {key}"));
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    t.send(builder.body(Body::from(body.to_owned())).unwrap()).await
}

/// A user with `balance` and one order of `total` (a single item); returns (user, order id).
pub async fn order_of(t: &TestApp, balance: i64, total: i64) -> (i64, i64) {
    let user = t.create_user(&format!("u{}@example.com", rand_suffix()), balance).await;
    let order = t.create_order(user, &[(1, total)]).await;
    (user, id(&order["id"]))
}

pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

pub async fn pay(t: &TestApp, order: i64) -> Response {
    post_json(t, &format!("/api/v1/admin/orders/{order}/pay"), &t.admin_key, json!({ "reference": "BANK-1" })).await
}

/// Asserts the ledger of `user` sums to the balance and returns the balance.
pub async fn balance_checked(t: &TestApp, user: i64) -> i64 {
    let balance = count(t, &format!("SELECT balance_cents AS n FROM users WHERE id = {user}")).await;
    let ledger = count(
        t,
        &format!("SELECT coalesce(sum(amount_cents), 0)::bigint AS n FROM balance_ledger WHERE user_id = {user}"),
    )
    .await;
    assert_eq!(balance, ledger, "ledger of user {user} sums to its balance");
    let last = count(
        t,
        &format!("SELECT coalesce((SELECT balance_after_cents FROM balance_ledger WHERE user_id = {user} ORDER BY id DESC LIMIT 1), 0) AS n"),
    )
    .await;
    assert_eq!(balance, last, "last ledger row carries the balance");
    balance
}

async fn events(t: &TestApp, order: i64) -> Vec<String> {
    let data =
        t.gql_data("query($id: ID!) { order(id: $id) { events { kind } } }", json!({ "id": order.to_string() })).await;
    data["order"]["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn cancel_rules() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 500).await;
    t.gql_data("mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }", json!({ "o": order.to_string() }))
        .await;
    let response = post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/cancel"),
        &t.admin_key,
        json!({ "reason": "customer asked", "cancelled_at": 1_700_000_000 }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = &response.body["order"];
    assert_eq!(body["status"], 3);
    assert_eq!(body["payment_status"], 1, "the attempt under way is cancelled, so nothing is processing");
    assert_eq!(body["cancelled_at"], 1_700_000_000);
    assert_eq!(body["payments"][0]["status"], 4, "pending attempt cancelled");
    assert_eq!(events(&t, order).await, ["created", "payment_started", "cancelled"]);

    let again = post_json(&t, &format!("/api/v1/admin/orders/{order}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body["message"].as_str().unwrap().contains("already cancelled"));
    // A cancelled order cannot be paid.
    let paid = pay(&t, order).await;
    assert_eq!(paid.status, StatusCode::CONFLICT);

    let (_, paid_order) = order_of(&t, 0, 500).await;
    assert_eq!(pay(&t, paid_order).await.status, StatusCode::OK);
    let response = post_json(&t, &format!("/api/v1/admin/orders/{paid_order}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body["message"].as_str().unwrap().contains("refund it instead"), "{}", response.body);
    assert_eq!(count(&t, &format!("SELECT status::bigint AS n FROM orders WHERE id = {paid_order}")).await, 2);
}

#[tokio::test]
async fn mark_paid_records_a_manual_payment() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 0, 1_250).await;
    let response = post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/pay"),
        &t.admin_key,
        json!({ "payment_method": "bank_transfer", "paid_at": 1_700_000_100, "note": "wire", "reference": "TX-42" }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = &response.body["order"];
    assert_eq!((body["status"].clone(), body["payment_status"].clone()), (json!(2), json!(3)));
    assert_eq!(body["paid_at"], 1_700_000_100);
    assert_eq!(body["payment_reference"], "TX-42");
    assert_eq!(body["payment_method"], "bank_transfer");
    let payment = &body["payments"][0];
    assert_eq!(payment["status"], 2);
    assert_eq!(payment["provider"], "manual");
    assert_eq!(payment["amount_cents"], 1_250);
    assert_eq!(balance_checked(&t, user).await, 0, "no balance moved");
    assert_eq!(pay(&t, order).await.status, StatusCode::CONFLICT, "paying twice");
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await, 1);
}

#[tokio::test]
async fn charge_balance_goes_through_the_ledger() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 1_000, 700).await;
    let response =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/pay"), &t.admin_key, json!({ "charge_balance": true }))
            .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["order"]["payment_method"], "balance");
    assert_eq!(response.body["order"]["payments"][0]["provider"], "balance");
    assert_eq!(response.body["order"]["user"]["balance_cents"], 300);
    assert_eq!(balance_checked(&t, user).await, 300);
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM balance_ledger WHERE user_id = {user} AND kind = 'order_charge' AND amount_cents = -700 AND balance_after_cents = 300 AND order_id = {order}")).await,
        1
    );

    // Too little balance: INSUFFICIENT_BALANCE and nothing changes.
    let (poor, order) = order_of(&t, 100, 700).await;
    let response =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/pay"), &t.admin_key, json!({ "charge_balance": true }))
            .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.body["code"], "INSUFFICIENT_BALANCE");
    assert_eq!(balance_checked(&t, poor).await, 100);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await, 0);
    assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 1);
    assert_eq!(events(&t, order).await, ["created"]);

    // A method other than balance contradicts chargeBalance.
    let response = post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/pay"),
        &t.admin_key,
        json!({ "charge_balance": true, "payment_method": "card" }),
    )
    .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refunds_partial_then_full_with_balance_credit() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let path = format!("/api/v1/admin/orders/{order}/refund");
    let response = post_json(
        &t,
        &path,
        &t.admin_key,
        json!({ "amount_cents": 300, "reason": "late", "metadata": { "ticket": 7 } }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = &response.body["order"];
    assert_eq!((body["status"].clone(), body["payment_status"].clone()), (json!(2), json!(5)));
    assert_eq!(body["refunded_cents"], 300);
    assert_eq!(body["refunds"][0]["status"], 2);
    assert_eq!(body["refunds"][0]["metadata"], json!({ "ticket": 7 }));
    assert_eq!(body["refunds"][0]["credit_balance"], false);
    assert_eq!(balance_checked(&t, user).await, 0);

    // More than what is left is refused and changes nothing.
    let response = post_json(&t, &path, &t.admin_key, json!({ "amount_cents": 701 })).await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body["message"].as_str().unwrap().contains("700"), "{}", response.body);

    let response = post_json(
        &t,
        &path,
        &t.admin_key,
        json!({ "amount_cents": 700, "credit_balance": true, "refund_at": 1_700_000_500 }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = &response.body["order"];
    assert_eq!((body["status"].clone(), body["payment_status"].clone()), (json!(4), json!(6)));
    assert_eq!(body["refunded_cents"], 1_000);
    assert_eq!(body["refunded_at"], 1_700_000_500);
    assert_eq!(body["user"]["balance_cents"], 700);
    assert_eq!(balance_checked(&t, user).await, 700);
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM balance_ledger WHERE user_id = {user} AND kind = 'refund_credit' AND amount_cents = 700 AND refund_id IS NOT NULL")).await,
        1
    );
    let response = post_json(&t, &path, &t.admin_key, json!({ "amount_cents": 1 })).await;
    assert_eq!(response.status, StatusCode::CONFLICT, "fully refunded");
    assert_eq!(events(&t, order).await, ["created", "paid", "refunded", "refunded"]);
}

#[tokio::test]
async fn refund_of_a_balance_payment_goes_back_to_the_balance() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 900, 900).await;
    post_json(&t, &format!("/api/v1/admin/orders/{order}/pay"), &t.admin_key, json!({ "charge_balance": true })).await;
    assert_eq!(balance_checked(&t, user).await, 0);
    let response =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 400 }))
            .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["order"]["refunds"][0]["credit_balance"], true);
    assert_eq!(balance_checked(&t, user).await, 400);
}

#[tokio::test]
async fn unpaid_orders_cannot_be_refunded() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 500).await;
    let response =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 100 }))
            .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.body["code"], "CONFLICT");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 0);
}

#[tokio::test]
async fn form_encoded_bodies_work_and_the_path_id_wins() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 2_000, 800).await;
    let (_, other) = order_of(&t, 0, 100).await;
    let response = post_raw(
        &t,
        &format!("/api/v1/admin/orders/{order}/pay"),
        &t.admin_key,
        Some("application/x-www-form-urlencoded"),
        &format!("id={other}&charge_balance=true&note=counter"),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["order"]["id"], order);
    assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {other}")).await, 1);
    assert_eq!(balance_checked(&t, user).await, 1_200);
    let response = post_raw(
        &t,
        &format!("/api/v1/admin/orders/{order}/refund"),
        &t.admin_key,
        Some("application/x-www-form-urlencoded"),
        "amount_cents=250&reason=dent&metadata=%7B%22k%22%3A1%7D&credit_balance=1",
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["order"]["refunds"][0]["metadata"], json!({ "k": 1 }));
    assert_eq!(balance_checked(&t, user).await, 1_450);
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_changes_nothing() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let refund = format!("/api/v1/admin/orders/{order}/refund");
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let cases: Vec<(String, Option<&str>, &str, &str)> = vec![
        (refund.clone(), json, "{}", "amount_cents is required"),
        (refund.clone(), json, r#"{"amount_cents": 0}"#, "amount_cents must be a positive integer"),
        (refund.clone(), json, r#"{"amount_cents": -5}"#, "amount_cents must be a positive integer"),
        (refund.clone(), json, r#"{"amount_cents": "ten"}"#, "amount_cents must be an integer"),
        (refund.clone(), json, r#"{"amount_cents": 1.5}"#, "amount_cents must be an integer"),
        (refund.clone(), json, r#"{"amount_cents": 99999999999999999999}"#, "amount_cents must be an integer"),
        (
            refund.clone(),
            json,
            r#"{"amount_cents": 5000000000000}"#,
            "amountCents must be a positive amount of at most",
        ),
        (refund.clone(), json, r#"{"amount_cents": 5, "metadata": [1]}"#, "metadata must be a JSON object"),
        (
            refund.clone(),
            json,
            r#"{"amount_cents": 5, "credit_balance": "yes"}"#,
            "credit_balance must be true or false",
        ),
        (refund.clone(), json, r#"{"amount_cents": 5, "reason": 12}"#, "reason must be a string"),
        (refund.clone(), json, r#"{"amount_cents": 5, "refund_at": -1}"#, "refund_at must be unix seconds"),
        (
            refund.clone(),
            json,
            r#"{"amount_cents": 5, "refund_at": 99999999999}"#,
            "refundAt must not be in the future",
        ),
        (refund.clone(), json, r#"{"amount_cents": "#, "the request body is not valid JSON"),
        (refund.clone(), json, r#"[1, 2]"#, "the request body must be a JSON object"),
        (refund.clone(), form, "amount_cents=abc", "amount_cents must be an integer"),
        (refund.clone(), form, "amount_cents=5&metadata=nope", "metadata must be a JSON object"),
        (refund.clone(), Some("text/plain"), "amount_cents=5", "Content-Type must be application/json"),
        (refund.clone(), None, "amount_cents=5", "Content-Type must be application/json"),
        ("/api/v1/admin/orders/abc/refund".into(), json, r#"{"amount_cents": 5}"#, "id must be a positive integer"),
        ("/api/v1/admin/orders/0/cancel".into(), json, "{}", "id must be a positive integer"),
        (
            format!("/api/v1/admin/orders/{order}/pay"),
            json,
            r#"{"payment_method": "Wire Transfer"}"#,
            "paymentMethod must be a lower-case word",
        ),
        (
            format!("/api/v1/admin/orders/{order}/pay"),
            json,
            r#"{"paid_at": "yesterday"}"#,
            "paid_at must be an integer",
        ),
        (
            format!("/api/v1/admin/orders/{order}/pay"),
            json,
            r#"{"charge_balance": 3}"#,
            "charge_balance must be true or false",
        ),
        (format!("/api/v1/admin/orders/{order}/cancel"), json, r#"{"reason": ["a"]}"#, "reason must be a string"),
        (
            "/api/v1/admin/orders/payments/callback".into(),
            json,
            r#"{"payment_id": 1, "status": 2}"#,
            "order_id is required",
        ),
        (
            "/api/v1/admin/orders/payments/callback".into(),
            json,
            r#"{"order_id": 1, "status": 2}"#,
            "payment_id is required",
        ),
        (
            "/api/v1/admin/orders/payments/callback".into(),
            json,
            r#"{"order_id": 1, "payment_id": 1}"#,
            "status is required",
        ),
        (
            "/api/v1/admin/orders/payments/callback".into(),
            json,
            r#"{"order_id": 1, "payment_id": 1, "status": 9}"#,
            "status must be one of 1 (PENDING)",
        ),
        (
            "/api/v1/admin/orders/payments/callback".into(),
            json,
            r#"{"order_id": -1, "payment_id": 1, "status": 2}"#,
            "order_id must be a positive integer",
        ),
        (
            "/api/v1/admin/orders/payments/reconcile".into(),
            json,
            r#"{"order_id": "x", "payment_id": 1}"#,
            "order_id must be an integer",
        ),
    ];
    let before = count(&t, "SELECT (count(*) + sum(refunded_cents))::bigint AS n FROM orders").await;
    for (path, content_type, body, needle) in cases {
        let response = post_raw(&t, &path, &t.admin_key, content_type, body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", response.body);
        assert_eq!(response.body["code"], "BAD_USER_INPUT");
        let message = response.body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path} {body}: expected {needle:?} in {message:?}");
    }
    assert_eq!(count(&t, "SELECT (count(*) + sum(refunded_cents))::bigint AS n FROM orders").await, before);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 0);

    // Unknown orders and payments are 404.
    for (path, body) in [
        ("/api/v1/admin/orders/987654/refund", json!({ "amount_cents": 5 })),
        ("/api/v1/admin/orders/987654/cancel", json!({})),
        ("/api/v1/admin/orders/987654/pay", json!({})),
        ("/api/v1/admin/orders/payments/callback", json!({ "order_id": 987654, "payment_id": 1, "status": 2 })),
        ("/api/v1/admin/orders/payments/reconcile", json!({ "order_id": order, "payment_id": 987654 })),
    ] {
        let response = post_json(&t, path, &t.admin_key, body).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.body["code"], "NOT_FOUND");
    }
}

#[tokio::test]
async fn only_admins_change_money() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 1_000, 500).await;
    let support = t.key(Role::Support, None).await;
    let customer = t.key(Role::Customer, Some(user)).await;
    for key in [&support, &customer] {
        for (path, body) in [
            (format!("/api/v1/admin/orders/{order}/pay"), json!({ "charge_balance": true })),
            (format!("/api/v1/admin/orders/{order}/cancel"), json!({})),
            (format!("/api/v1/admin/orders/{order}/refund"), json!({ "amount_cents": 5 })),
            (
                "/api/v1/admin/orders/payments/callback".to_owned(),
                json!({ "order_id": order, "payment_id": 1, "status": 2 }),
            ),
            ("/api/v1/admin/orders/payments/reconcile".to_owned(), json!({ "order_id": order, "payment_id": 1 })),
        ] {
            let response = post_json(&t, &path, key, body).await;
            assert_eq!(response.status, StatusCode::FORBIDDEN, "{path}: {}", response.body);
            assert_eq!(response.body["code"], "FORBIDDEN");
        }
        let response = t
            .gql_as(
                key,
                "mutation($o: ID!) { cancelOrder(input: { id: $o }) { id } }",
                json!({ "o": order.to_string() }),
            )
            .await;
        assert_eq!(error_code(&response.body), "FORBIDDEN");
    }
    let response = post_json(&t, &format!("/api/v1/admin/orders/{order}/pay"), "bk_nope", json!({})).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(balance_checked(&t, user).await, 1_000);
    assert_eq!(events(&t, order).await, ["created"]);
}

#[tokio::test]
async fn graphql_mutations_follow_the_same_rules() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 5_000, 2_000).await;
    let o = order.to_string();
    let data = t
        .gql_data(
            "mutation($o: ID!) { markOrderPaid(input: { id: $o, chargeBalance: true, note: \"desk\" }) { status paymentStatus paymentMethod user { balanceCents } } }",
            json!({ "o": o }),
        )
        .await;
    assert_eq!(
        data["markOrderPaid"],
        json!({ "status": "COMPLETED", "paymentStatus": "PAID", "paymentMethod": "balance", "user": { "balanceCents": 3_000 } })
    );
    let data = t
        .gql_data(
            "mutation($o: ID!) { refundOrder(input: { id: $o, amountCents: 2000, reason: \"all\" }) { status paymentStatus refundedCents refunds { amountCents creditBalance status } } }",
            json!({ "o": o }),
        )
        .await;
    assert_eq!(data["refundOrder"]["status"], "REFUNDED");
    assert_eq!(
        data["refundOrder"]["refunds"],
        json!([{ "amountCents": 2_000, "creditBalance": true, "status": "SUCCEEDED" }])
    );
    assert_eq!(balance_checked(&t, user).await, 5_000);
    let body =
        t.gql("mutation($o: ID!) { refundOrder(input: { id: $o, amountCents: 0 }) { id } }", json!({ "o": o })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("amountCents"));
    let body = t.gql("mutation($o: ID!) { cancelOrder(input: { id: $o }) { id } }", json!({ "o": o })).await;
    assert_eq!(error_code(&body), "CONFLICT");
}
