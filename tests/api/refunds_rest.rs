//! Seed 004's REST face: `/api/v2/refunds` in camelCase under `data`, amounts in major
//! units, and the documented decision paths.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::graphql_reads::count;
use crate::mutations::{order_of, pay, post_json};
use billing_api::domain::Role;

#[tokio::test]
async fn a_customer_asks_in_major_units_and_an_admin_approves_by_rest() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 0, 1000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let customer = t.key(Role::Customer, Some(user)).await;
    let created = post_json(
        &t,
        "/api/v2/refunds",
        &customer,
        json!({ "orderId": order, "reason": "I hate this product", "amount": 4.5 }),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let data = &created.body["data"];
    for key in [
        "id",
        "orderId",
        "createdAt",
        "updatedAt",
        "requester",
        "requestReason",
        "responseReason",
        "confirmedAt",
        "issuedAt",
        "amount",
        "status",
        "valid",
    ] {
        assert!(data.get(key).is_some(), "{key} in {data}");
    }
    assert_eq!(data["amount"], json!(4.5));
    assert_eq!(data["orderId"], order);
    assert_eq!(data["status"], "PENDING");
    assert_eq!(count(&t, "SELECT amount_cents AS n FROM refund_requests").await, 450);
    let id = data["id"].as_i64().unwrap();

    // Bad input names the field and changes nothing.
    for (body, field) in [
        (json!({ "orderId": order, "reason": "x", "amount": 4.555 }), "amount"),
        (json!({ "orderId": order, "amount": 1 }), "reason"),
        (json!({ "orderId": order, "reason": "x", "amount": "1" }), "amount"),
        (json!({ "reason": "x", "amount": 1 }), "orderId"),
        (json!({ "orderId": order, "reason": "x", "amount": 1, "extra": 1 }), "extra"),
    ] {
        let response = post_json(&t, "/api/v2/refunds", &customer, body.clone()).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}: {}", response.body);
        assert!(response.body["message"].as_str().unwrap().starts_with(field), "{body}: {}", response.body);
    }
    // Another customer's order is not found.
    let (other_user, _) = order_of(&t, 0, 100).await;
    let stranger = t.key(Role::Customer, Some(other_user)).await;
    let response =
        post_json(&t, "/api/v2/refunds", &stranger, json!({ "orderId": order, "reason": "x", "amount": 1 })).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND, "{}", response.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refund_requests").await, 1);

    // The list: page from 0, filters, the seed's REQUESTED as PENDING.
    let list = t
        .get(&format!("/api/v2/refunds?page=0&size=20&orderId={order}&status=REQUESTED&valid=true"), Some(&customer))
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(t.get("/api/v2/refunds?page=1", Some(&customer)).await.body["data"], json!([]));
    assert_eq!(t.get("/api/v2/refunds", Some(&stranger)).await.body["data"], json!([]));
    let theirs = t.get(&format!("/api/v2/refunds?orderId={order}"), Some(&stranger)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    assert_eq!(t.get("/api/v2/refunds?orderId=0", Some(&customer)).await.status, StatusCode::BAD_REQUEST);
    for (query, field) in [("valid=maybe", "valid"), ("status=PAID", "status"), ("size=0", "size"), ("page=-1", "page")]
    {
        let response = t.get(&format!("/api/v2/refunds?{query}"), Some(&customer)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(response.body["message"].as_str().unwrap().starts_with(field), "{query}: {}", response.body);
    }

    // Decisions: a customer may not approve; deny needs a reason; an admin approves.
    let path = format!("/api/v2/refunds/{id}/approve");
    assert_eq!(post_json(&t, &path, &customer, json!({})).await.status, StatusCode::FORBIDDEN);
    let deny = post_json(&t, &format!("/api/v2/refunds/{id}/deny"), &t.admin_key, json!({})).await;
    assert_eq!(deny.status, StatusCode::BAD_REQUEST);
    let approved = post_json(&t, &path, &t.admin_key, json!({ "responseReason": "sorry" })).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["data"]["status"], "ISSUED");
    assert_eq!(approved.body["data"]["responseReason"], "sorry");
    assert!(approved.body["data"]["issuedAt"].is_string());
    assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 450);
    let again = post_json(&t, &path, &t.admin_key, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // A cancel of an issued request is refused; the requester cancels a new one.
    let second =
        post_json(&t, "/api/v2/refunds", &customer, json!({ "orderId": order, "reason": "more", "amount": 1 })).await;
    let second = second.body["data"]["id"].as_i64().unwrap();
    let cancelled = post_json(&t, &format!("/api/v2/refunds/{second}/cancel"), &customer, json!({})).await;
    assert_eq!(cancelled.body["data"]["status"], "CANCELLED", "{}", cancelled.body);
    assert_eq!(cancelled.body["data"]["valid"], Value::Bool(false));
}
