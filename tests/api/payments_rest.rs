//! Seed 003's face: `GET/POST /api/payments`, `GET/PUT /api/payments/{payment_id}`, over the
//! same GraphQL resolvers: the seed's names, major units, status words, 400s naming the
//! parameter, visibility, and no card data in anything it answers.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use billing_api::domain::Role;

use crate::callbacks::{admin_callback, start_payment};
use crate::common::{Response, TestApp};
use crate::graphql_reads::count;
use crate::mutations::{order_of, pay, post_json};

async fn put_json(t: &TestApp, path: &str, key: &str, body: Value) -> Response {
    let request = Request::put(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    t.send(request).await
}

async fn human_id(t: &TestApp, payment: i64) -> String {
    let data =
        t.gql_data("query($id: ID!) { payment(id: $id) { humanId } }", json!({ "id": payment.to_string() })).await;
    data["payment"]["humanId"].as_str().unwrap().to_owned()
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array().unwrap().iter().map(|p| p["payment_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_list_takes_the_seeds_parameters_and_shows_major_units() {
    let t = TestApp::new().await;
    // A settled card payment of 50.00 USD, a pending one of 12.34, a failed one of 7.00.
    let (_, settled_order) = order_of(&t, 0, 5_000).await;
    assert_eq!(pay(&t, settled_order).await.status, 200);
    let settled = count(&t, &format!("SELECT id AS n FROM payments WHERE order_id = {settled_order}")).await;
    count(&t, &format!("UPDATE payments SET settled_at = '2020-04-07T15:01:07Z', paid_at = '2020-04-07T15:00:00Z', settled_cents = 5000 WHERE id = {settled} RETURNING 1::bigint AS n")).await;
    let (_, pending_order) = order_of(&t, 0, 1_234).await;
    let pending = start_payment(&t, pending_order).await;
    let (_, failed_order) = order_of(&t, 0, 700).await;
    let failed = start_payment(&t, failed_order).await;
    let r = admin_callback(
        &t,
        json!({ "order_id": failed_order, "payment_id": failed, "status": 3, "failure_code": "card_declined" }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (s, p, f) = (human_id(&t, settled).await, human_id(&t, pending).await, human_id(&t, failed).await);

    let list = async |query: &str| t.get(&format!("/api/payments{query}"), Some(&t.admin_key)).await;
    let all = list("").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(ids(&all.body), vec![f.clone(), p.clone(), s.clone()], "newest first");
    let one = all.body.as_array().unwrap().iter().find(|x| x["payment_id"] == json!(s)).unwrap().clone();
    assert_eq!(one["amount"], json!(50.0));
    assert_eq!(one["status"], "settled");
    assert_eq!(one["settled_at"], "2020-04-07T15:01:07.000Z");
    assert_eq!(one["settled_amount"], json!(50.0));
    assert_eq!(one["current_state"], "succeeded");
    assert_eq!(one["subject"], json!(settled_order));
    let failed_row = all.body.as_array().unwrap().iter().find(|x| x["payment_id"] == json!(f)).unwrap().clone();
    assert_eq!(
        (failed_row["status"].clone(), failed_row["status_code"].clone()),
        (json!("error"), json!("card_declined"))
    );

    assert_eq!(ids(&list("?status=settled").await.body), vec![s.clone()]);
    assert_eq!(ids(&list("?status=pending").await.body), vec![p.clone()]);
    assert_eq!(ids(&list("?status=error").await.body), vec![f.clone()]);
    assert_eq!(ids(&list(&format!("?payment_id={}", p.to_lowercase())).await.body), vec![p.clone()]);
    assert_eq!(ids(&list("?amount_gte=12.34&amount_lte=50.0&currency=USD").await.body), vec![p.clone(), s.clone()]);
    assert_eq!(ids(&list("?amount_gte=12.35&currency=USD").await.body), vec![s.clone()]);
    assert_eq!(
        ids(&list("?settled_at_gte=2020-01-01T00:00:00&settled_at_lte=2021-01-01T00:00:00").await.body),
        vec![s.clone()],
        "the seed's own example dates (no offset: UTC)"
    );
    assert_eq!(ids(&list("?created_at_lte=2020-01-01T00:00:00Z").await.body), Vec::<String>::new());
    assert_eq!(ids(&list("?sort=amount").await.body), vec![f.clone(), p.clone(), s.clone()]);
    assert_eq!(ids(&list("?sort=-amount&size=2&page=1").await.body), vec![f.clone()]);
    assert_eq!(ids(&list("?payment_method=balance").await.body), Vec::<String>::new());

    // Bad values: 400 naming the parameter.
    for (query, name) in [
        ("?status=settle", "status"),
        ("?amount_gte=50.0", "amount_gte"),
        ("?amount_gte=50.001&currency=USD", "amount_gte"),
        ("?amount_lte=abc&currency=USD", "amount_lte"),
        ("?currency=usd&amount_gte=1", "currency"),
        ("?created_at_gte=yesterday", "created_at_gte"),
        ("?settled_at_lte=2020-13-01T00:00:00", "settled_at_lte"),
        ("?sort=price", "sort"),
        ("?size=0", "size"),
        ("?page=-1", "page"),
    ] {
        let r = list(query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(name), "{query}: {}", r.body);
    }
}

#[tokio::test]
async fn customers_see_their_own_payments_and_others_are_not_found() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 0, 900).await;
    let mine = human_id(&t, start_payment(&t, order).await).await;
    let (_, other_order) = order_of(&t, 0, 800).await;
    let theirs = human_id(&t, start_payment(&t, other_order).await).await;
    let key = t.key(Role::Customer, Some(user)).await;

    let listed = t.get("/api/payments", Some(&key)).await;
    assert_eq!(ids(&listed.body), vec![mine.clone()]);
    let r = t.get(&format!("/api/payments/{theirs}"), Some(&key)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = t.get(&format!("/api/payments?payment_id={theirs}"), Some(&key)).await;
    assert_eq!(r.body, json!([]));
    let r = put_json(&t, &format!("/api/payments/{theirs}"), &key, json!({ "active": false })).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = t.get(&format!("/api/payments/{mine}"), Some(&key)).await;
    assert_eq!((r.status, r.body["payment_id"].clone()), (StatusCode::OK, json!(mine)));
    let r = t.get("/api/payments/not-an-id", Some(&key)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("payment_id"), "{}", r.body);
    let r = t.get("/api/payments", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn create_and_update_follow_the_graphql_rules() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 5_000).await;

    // Refusals name the field and create nothing.
    for (body, name) in [
        (json!({ "amount": 50.0 }), "order_id"),
        (json!({ "order_id": order, "amount": 49.99 }), "amount"),
        (json!({ "order_id": order, "amount": 50.001 }), "amount"),
        (json!({ "order_id": order, "colour": "red" }), "colour"),
        (json!({ "order_id": order, "billing_address": { "planet": "Mars" } }), "billing_address.planet"),
        (json!({ "order_id": order, "payment_date": true }), "payment_date"),
        (json!({ "order_id": order, "currency": "EUR" }), "currency"),
        (
            json!({ "order_id": order, "payment_method": "mbway", "additional_params": { "number": "4242424242424242", "cvv": "123", "expiration_month": "05", "expiration_year": "2030" } }),
            "payment_method",
        ),
        // A card with the manual provider: refused, and nothing about the card is repeated.
        (
            json!({ "order_id": order, "payment_method": "credit_card", "additional_params": { "number": "4242424242424242", "name": "Ana", "cvv": "321", "expiration_month": "05", "expiration_year": "2030" } }),
            "card",
        ),
        (
            json!({ "order_id": order, "additional_params": { "number": "4242424242424241", "cvv": "321", "expiration_month": "05", "expiration_year": "2030" } }),
            "card.number",
        ),
        (
            json!({ "order_id": order, "additional_params": { "number": "4242424242424242", "cvv": "1", "expiration_month": "05", "expiration_year": "2030" } }),
            "card.cvc",
        ),
        (
            json!({ "order_id": order, "additional_params": { "number": "4242424242424242", "cvv": "123", "expiration_month": "05", "expiration_year": "2001" } }),
            "card",
        ),
    ] {
        let r = post_json(&t, "/api/payments", &t.admin_key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(name), "{name}: {}", r.body);
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payments").await, 0);

    // The seed's body, without a card: a pending payment of the order.
    let r = post_json(
        &t,
        "/api/payments",
        &t.admin_key,
        json!({ "order_id": order, "amount": 50.0, "payment_method": "mbway", "description": "June",
                "billing_address": "Rua 1, Lisboa", "payment_date": 1_800_000_000, "metadata": { "k": "v" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let created = r.body.clone();
    assert_eq!(created["amount"], json!(50.0));
    assert_eq!((created["status"].clone(), created["current_state"].clone()), (json!("pending"), json!("created")));
    assert_eq!(created["payment_method"], "mbway");
    assert_eq!(created["billing_address"]["line1"], "Rua 1, Lisboa");
    assert_eq!(created["payment_date"], "2027-01-15T08:00:00.000Z");
    assert_eq!(created["additional_params"]["last4"], Value::Null);
    let pid = created["payment_id"].as_str().unwrap().to_owned();

    // Update: the seed sends the whole payment back; an unchanged amount is fine.
    let path = format!("/api/payments/{pid}");
    let r =
        put_json(&t, &path, &t.admin_key, json!({ "amount": 50.0, "active": false, "payment_method": "credit_card" }))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["active"].clone(), r.body["payment_method"].clone()), (json!(false), json!("credit_card")));
    for (body, name) in [
        (json!({ "amount": 10.0 }), "amount"),
        (
            json!({ "additional_params": { "number": "4242424242424242", "cvv": "123", "expiration_month": 5, "expiration_year": 2030 } }),
            "card",
        ),
        (json!({ "active": "no" }), "active"),
        (json!({ "id": 3 }), "id"),
    ] {
        let r = put_json(&t, &path, &t.admin_key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(name), "{name}: {}", r.body);
    }
    // Succeeded: 409, unchanged.
    let payment = count(&t, &format!("SELECT id AS n FROM payments WHERE human_id = '{pid}'")).await;
    let r =
        admin_callback(&t, json!({ "order_id": order, "payment_id": payment, "status": 2, "reference": "x" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put_json(&t, &path, &t.admin_key, json!({ "active": true })).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = t.get(&path, Some(&t.admin_key)).await;
    assert_eq!((r.body["active"].clone(), r.body["status"].clone()), (json!(false), json!("success")));

    // An Idempotency-Key replays the first create.
    let (_, second) = order_of(&t, 0, 700).await;
    let send = async || {
        let request = Request::post("/api/payments")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", t.admin_key))
            .header("Idempotency-Key", "pay-once-1")
            .body(Body::from(json!({ "order_id": second }).to_string()))
            .unwrap();
        t.send(request).await
    };
    let (a, b) = (send().await, send().await);
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK), "{}", a.body);
    assert_eq!(a.body["payment_id"], b.body["payment_id"]);
    assert_eq!(b.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {second}")).await, 1);
}

/// What a client sends by mistake is not sent back: a card written inline in a broken
/// GraphQL document, a card number as an unknown key or as a payment method. (Every
/// response of the suite is scanned for card data too: `card_scan.rs`.)
#[tokio::test]
async fn errors_do_not_repeat_card_data() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 900).await;
    let broken = format!(
        "mutation {{ createPayment(input: {{ orderId: \"{order}\", card: {{ number: \"4242424242424242\", expMonth: 5, expYear: 2030, cvc: \"123\" }} }}) {{ id }}"
    );
    let r = t.gql_as(&t.admin_key, &broken, json!({})).await;
    let message = r.body["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("syntax error at line 1"), "{message}");
    assert!(!r.body.to_string().contains("4242424242424242") && !message.contains("123"), "{}", r.body);
    for body in [
        json!({ "order_id": order, "4242424242424242": "x" }),
        json!({ "order_id": order, "payment_method": "4242424242424242" }),
    ] {
        let r = post_json(&t, "/api/payments", &t.admin_key, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(!r.body.to_string().contains("4242424242424242"), "{}", r.body);
    }
}

/// A duplicate payment whose money is due back took money: seed 003 says `success` for it,
/// in its answer and in the `status` filter, and `error` lists only attempts without money.
#[tokio::test]
async fn a_duplicate_due_back_is_a_success_in_both_the_answer_and_the_filter() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_500).await;
    let late = start_payment(&t, order).await;
    assert_eq!(pay(&t, order).await.status, 200, "paid another way; the started attempt is cancelled");
    let r =
        admin_callback(&t, json!({ "order_id": order, "payment_id": late, "status": 2, "reference": "late" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let human = human_id(&t, late).await;
    let shown = t.get(&format!("/api/payments/{human}"), Some(&t.admin_key)).await;
    assert_eq!((shown.body["status"].clone(), shown.body["amount_paid"].clone()), (json!("success"), json!(15.0)));
    let (_, failed_order) = order_of(&t, 0, 700).await;
    let failed = start_payment(&t, failed_order).await;
    admin_callback(&t, json!({ "order_id": failed_order, "payment_id": failed, "status": 3 })).await;
    let failed = human_id(&t, failed).await;
    let success = t.get("/api/payments?status=success", Some(&t.admin_key)).await;
    assert!(ids(&success.body).contains(&human), "{}", success.body);
    let error = t.get("/api/payments?status=error", Some(&t.admin_key)).await;
    assert_eq!(ids(&error.body), vec![failed], "{}", error.body);
}

/// Unknown list parameters are refused by name (a misspelt filter must not list everything),
/// NUL in a body is refused before anything is sent anywhere, and sending an unchanged
/// payment back after it succeeded is no conflict.
#[tokio::test]
async fn odd_parameters_and_unchanged_puts() {
    let t = TestApp::new().await;
    let r = t.get("/api/payments?settled_at_gt=2020-01-01", Some(&t.admin_key)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("settled_at_gt"), "{}", r.body);
    let (_, order) = order_of(&t, 0, 900).await;
    let r = post_json(&t, "/api/payments", &t.admin_key, json!({ "order_id": order, "description": "a\u{0}b" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("description"), "{}", r.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payments").await, 0);
    let r = post_json(&t, "/api/payments", &t.admin_key, json!({ "order_id": order, "active": true })).await;
    let pid = r.body["payment_id"].as_str().unwrap().to_owned();
    let payment = count(&t, &format!("SELECT id AS n FROM payments WHERE human_id = '{pid}'")).await;
    admin_callback(&t, json!({ "order_id": order, "payment_id": payment, "status": 2 })).await;
    let shown = t.get(&format!("/api/payments/{pid}"), Some(&t.admin_key)).await.body;
    let back = json!({ "amount": shown["amount"], "active": shown["active"], "payment_method": shown["payment_method"],
                       "additional_params": shown["additional_params"] });
    let r = put_json(&t, &format!("/api/payments/{pid}"), &t.admin_key, back).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
