//! The seed 001 face: `/api/v1/order` and `/api/v1/store/orders`, with the seed's shapes,
//! bare `Authorization: <key>`, exact major-unit amounts and its error body.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::common::{Response, TestApp};
use crate::graphql_reads::count;
use crate::merchants::merchant;

async fn call(t: &TestApp, method: &str, path: &str, auth: &str, body: Option<&str>, idem: Option<&str>) -> Response {
    let mut builder = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, auth);
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(key) = idem {
        builder = builder.header("idempotency-key", key);
    }
    t.send(builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap()).await
}

const SEED_CREATE: &str = r#"{
    "pay_amount": 1000.0,
    "currency": "JPY",
    "customer_id": "1000",
    "customer_order_id": "1001",
    "description": "NFT",
    "success_url": "https://swapay.co.jp/",
    "cancel_url": "https://swapay.co.jp/",
    "selected_payment_type": "INSTALLMENT",
    "selected_installment_term": 6
}"#;

#[tokio::test]
async fn the_seed_example_creates_an_order_in_the_seed_shape() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Kenji Umemura").await;
    // The seed's bare form: Authorization: <key>.
    let response = call(&t, "POST", "/api/v1/order", &m.key, Some(SEED_CREATE), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = &response.body;
    let id = body["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(body["pay_amount"], json!(1000.0));
    assert_eq!(body["currency"], "JPY");
    assert_eq!(body["customer_id"], "1000");
    assert_eq!(body["customer_order_id"], "1001");
    assert_eq!(body["description"], "NFT");
    assert_eq!(body["store"]["id"], m.store.as_str());
    assert_eq!(body["store"]["store_name"], "Store");
    assert_eq!(body["store"]["office_name"], "Office");
    assert_eq!(body["merchant"], json!({ "id": m.merchant, "display_name": "Kenji Umemura" }));
    assert_eq!(body["status"], "WAITING_FOR_PAYMENT");
    assert_eq!(body["selected_payment_type"], "INSTALLMENT");
    assert_eq!(body["selected_installment_term"], 6);
    assert_eq!(body["pay_method"], Value::Null);
    assert!(body["payment_url"].as_str().unwrap().ends_with(&format!("/gateway/payment/{id}")));
    let created = body["create_date"].as_str().unwrap();
    assert_eq!(created.len(), "2022-07-25T05:34:31.631+00:00".len(), "{created}");
    assert!(created.ends_with("+00:00") && created.as_bytes()[19] == b'.', "{created}");
    // The term may be a string, as the seed's table says; Bearer works too.
    let body = SEED_CREATE.replace("\"selected_installment_term\": 6", "\"selected_installment_term\": \"12\"");
    let response = call(&t, "POST", "/api/v1/order", &format!("Bearer {}", m.key), Some(&body), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["selected_installment_term"], 12);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 2);
}

#[tokio::test]
async fn amounts_convert_exactly_and_bad_input_names_the_field_and_changes_nothing() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Amounts").await;
    let response =
        call(&t, "POST", "/api/v1/order", &m.key, Some(r#"{"pay_amount": 10.23, "currency": "USD"}"#), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["pay_amount"], json!(10.23));
    assert_eq!(count(&t, "SELECT total_cents AS n FROM orders").await, 1023);
    let response =
        call(&t, "POST", "/api/v1/order", &m.key, Some(r#"{"pay_amount": 1.234, "currency": "KWD"}"#), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(count(&t, "SELECT max(total_cents) AS n FROM orders WHERE currency = 'KWD'").await, 1234);

    let cases: &[(&str, &str, Option<&str>)] = &[
        (r#"{"currency": "JPY"}"#, "101", Some("pay_amount")),
        (r#"{"pay_amount": 10.234, "currency": "USD"}"#, "102", Some("pay_amount")),
        (r#"{"pay_amount": 1000.5}"#, "102", Some("pay_amount")),
        (r#"{"pay_amount": -5}"#, "102", Some("pay_amount")),
        (r#"{"pay_amount": 0}"#, "102", Some("pay_amount")),
        (r#"{"pay_amount": 1e13}"#, "102", Some("pay_amount")),
        (r#"{"pay_amount": "1000"}"#, "102", Some("pay_amount")),
        (r#"{"pay_amount": 1000, "currency": "ABC"}"#, "102", Some("currency")),
        (r#"{"pay_amount": 1000, "selected_payment_type": "INSTALLMENT"}"#, "102", Some("selected_installment_term")),
        (r#"{"pay_amount": 1000, "selected_installment_term": 6}"#, "102", Some("selected_installment_term")),
        (r#"{"pay_amount": 1000, "selected_payment_type": "MONTHLY"}"#, "102", Some("selected_payment_type")),
        (r#"{"pay_amount": 1000, "callback_url": "http://169.254.169.254/"}"#, "102", Some("callback_url")),
        (r#"{"pay_amount": 1000, "consumer_email": 5}"#, "102", Some("consumer_email")),
        (r#"{"pay_amount": 1000, "surprise": true}"#, "102", Some("surprise")),
        (r#"[1, 2]"#, "103", None),
        ("not json", "103", None),
    ];
    for (body, code, field) in cases {
        let response = call(&t, "POST", "/api/v1/order", &m.key, Some(body), None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}: {}", response.body);
        assert_eq!(response.body["code"], *code, "{body}: {}", response.body);
        assert!(response.body["message"].is_string());
        match field {
            Some(field) => assert_eq!(response.body["errors"][0]["field"], *field, "{body}: {}", response.body),
            None => assert_eq!(response.body["errors"], Value::Null),
        }
    }
    assert_eq!(response_count(&t).await, 2);
    let response = call(&t, "POST", "/api/v1/order", &m.key, Some(r#"{"currency": "JPY"}"#), None).await;
    assert_eq!(response.body["message"], "Missing amount");
    // No key, a wrong key, a customer key.
    let response = call(&t, "POST", "/api/v1/order", "nonsense", Some(SEED_CREATE), None).await;
    assert_eq!((response.status, response.body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("401")));
    let user = t.create_user("buyer@example.com", 0).await;
    let customer = t.key(billing_api::domain::Role::Customer, Some(user)).await;
    let response = call(&t, "POST", "/api/v1/order", &customer, Some(SEED_CREATE), None).await;
    assert_eq!((response.status, response.body["code"].clone()), (StatusCode::FORBIDDEN, json!("403")));
    assert_eq!(response_count(&t).await, 2);
}

async fn response_count(t: &TestApp) -> i64 {
    count(t, "SELECT count(*) AS n FROM orders").await
}

#[tokio::test]
async fn lists_page_by_thirty_and_show_only_the_merchants_own() {
    let t = TestApp::new().await;
    let a = merchant(&t, "A").await;
    let b = merchant(&t, "B").await;
    for i in 0..31 {
        let body = format!(r#"{{"pay_amount": {}}}"#, 100 + i);
        let response = call(&t, "POST", "/api/v1/order", &a.key, Some(&body), None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    let theirs = call(&t, "POST", "/api/v1/order", &b.key, Some(r#"{"pay_amount": 5}"#), None).await;
    // An admin's order without a store is not in the store list either.
    let user = t.create_user("u@example.com", 0).await;
    t.create_order(user, &[(1, 777)]).await;

    let first = call(&t, "GET", "/api/v1/store/orders", &a.key, None, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first = first.body.as_array().unwrap().clone();
    assert_eq!(first.len(), 30);
    let second = call(&t, "GET", "/api/v1/store/orders?page=2", &a.key, None, None).await.body;
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert!(first.iter().chain(second.as_array().unwrap()).all(|o| o["merchant"]["id"] == a.merchant.as_str()));
    let small = call(&t, "GET", "/api/v1/store/orders?per_page=5", &a.key, None, None).await.body;
    assert_eq!(small.as_array().unwrap().len(), 5);
    // Asking for B's store finds nothing.
    let path = format!("/api/v1/store/orders?store_id={}", b.store);
    assert_eq!(call(&t, "GET", &path, &a.key, None, None).await.body, json!([]));
    // An admin sees every store order (32), not the order without a store.
    let all = call(&t, "GET", "/api/v1/store/orders?per_page=100", &t.admin_key, None, None).await.body;
    assert_eq!(all.as_array().unwrap().len(), 32);
    for (query, field) in
        [("per_page=0", "per_page"), ("per_page=101", "per_page"), ("page=x", "page"), ("store_id=1", "store_id")]
    {
        let response = call(&t, "GET", &format!("/api/v1/store/orders?{query}"), &a.key, None, None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.body["code"], "102");
        assert_eq!(response.body["errors"][0]["field"], field, "{query}: {}", response.body);
    }
    // Another merchant's order by id: 404, and it cannot be changed.
    let theirs_id = theirs.body["id"].as_str().unwrap();
    let path = format!("/api/v1/store/orders/{theirs_id}");
    let response = call(&t, "GET", &path, &a.key, None, None).await;
    assert_eq!((response.status, response.body["code"].clone()), (StatusCode::NOT_FOUND, json!("404")));
    let response = call(&t, "PUT", &path, &a.key, Some(r#"{"pay_amount": 1}"#), None).await;
    assert_eq!(
        (response.status, response.body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("404")),
        "{}",
        response.body
    );
    assert_eq!(count(&t, &format!("SELECT total_cents AS n FROM orders o WHERE public_id = '{theirs_id}'")).await, 5);
    let response = call(&t, "GET", "/api/v1/store/orders/not-a-uuid", &a.key, None, None).await;
    assert_eq!((response.status, response.body["errors"][0]["field"].clone()), (StatusCode::BAD_REQUEST, json!("id")));
}

#[tokio::test]
async fn an_update_changes_an_unpaid_order_once_per_idempotency_key() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Updates").await;
    let created = call(&t, "POST", "/api/v1/order", &m.key, Some(SEED_CREATE), Some("create-1")).await;
    let again = call(&t, "POST", "/api/v1/order", &m.key, Some(SEED_CREATE), Some("create-1")).await;
    assert_eq!(created.body["id"], again.body["id"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 1);
    let other = call(&t, "POST", "/api/v1/order", &m.key, Some(r#"{"pay_amount": 1}"#), Some("create-1")).await;
    assert_eq!((other.status, other.body["code"].clone()), (StatusCode::CONFLICT, json!("409")));

    let id = created.body["id"].as_str().unwrap();
    let path = format!("/api/v1/store/orders/{id}");
    let update = r#"{"pay_amount": 2500, "description": "changed", "date_payment": "2022-08-13T02:14:41.314+00:00"}"#;
    let response = call(&t, "PUT", &path, &m.key, Some(update), Some("update-1")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["pay_amount"], json!(2500.0));
    assert_eq!(response.body["description"], "changed");
    assert_eq!(response.body["date_payment"], "2022-08-13T02:14:41.314+00:00");
    assert!(response.body["update_date"].is_string());
    let detail = call(&t, "GET", &path, &m.key, None, None).await;
    assert_eq!(detail.body["pay_amount"], json!(2500.0));
    let response = call(&t, "PUT", &path, &m.key, Some(r#"{"date_payment": "tomorrow"}"#), None).await;
    assert_eq!(response.body["errors"][0]["field"], "date_payment", "{}", response.body);
    // Paid: the amount can no longer change.
    let order_id = count(&t, "SELECT id AS n FROM orders").await;
    t.gql_data(
        "mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }",
        json!({ "id": order_id.to_string() }),
    )
    .await;
    let response = call(&t, "PUT", &path, &m.key, Some(r#"{"pay_amount": 1}"#), None).await;
    assert_eq!(
        (response.status, response.body["code"].clone()),
        (StatusCode::CONFLICT, json!("409")),
        "{}",
        response.body
    );
    let detail = call(&t, "GET", &path, &m.key, None, None).await;
    assert_eq!(detail.body["status"], "COMPLETE");
    assert_eq!(detail.body["pay_amount"], json!(2500.0));
    assert_eq!(detail.body["pay_method"], "0");
}
