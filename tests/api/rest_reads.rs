use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, redact};
use crate::graphql_reads::count;

/// The keys of `AdminOrderDetail`, in the seed's order.
pub const ORDER_KEYS: &[&str] = &[
    "id",
    "number",
    "user_id",
    "status",
    "payment_status",
    "payment_intent_id",
    "payment_reference",
    "payment_failure_code",
    "payment_failure_message",
    "total_cents",
    "currency",
    "payment_method",
    "plan_id",
    "plan_snapshot",
    "metadata",
    "paid_at",
    "cancelled_at",
    "refunded_cents",
    "refunded_at",
    "created_at",
    "updated_at",
    "items",
    "refunds",
    "payments",
    "user",
];

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn order_detail_has_the_legacy_shape() {
    let t = TestApp::new().await;
    t.seed(3, 20).await;
    // Seed bucket 8: partially refunded after a failed attempt, so every nested list is filled.
    let id = count(&t, "SELECT id AS n FROM orders WHERE payment_status = 5 ORDER BY id DESC LIMIT 1").await;
    let response = t.get(&format!("/api/v1/admin/orders/{id}"), Some(&t.admin_key)).await;
    assert_eq!(response.status, StatusCode::OK);
    let order = &response.body["order"];
    assert_eq!(keys(order), ORDER_KEYS);
    assert_eq!(order["id"], id);
    assert_eq!(order["status"], 2);
    assert_eq!(order["payment_status"], 5);
    assert!(order["created_at"].is_i64(), "unix seconds");
    assert!(order["paid_at"].is_i64());
    assert_eq!(order["cancelled_at"], Value::Null);
    assert_eq!(order["payments"].as_array().unwrap().len(), 2);
    assert_eq!(order["payments"][0]["status"], 3, "failed attempt code");
    assert_eq!(order["payments"][1]["status"], 2, "succeeded attempt code");
    assert_eq!(order["refunds"][0]["status"], 2);
    assert_eq!(
        keys(&order["items"][0]),
        ["id", "name", "sku", "quantity", "unit_price_cents", "total_cents", "metadata", "created_at"]
    );
    assert_eq!(keys(&order["user"]), ["id", "email", "name", "balance_cents", "created_at"]);
    insta::assert_json_snapshot!("rest_order_detail", redact(&response.body));
}

#[tokio::test]
async fn detail_agrees_with_graphql() {
    let t = TestApp::new().await;
    let user = t.create_user("same@example.com", 0).await;
    let order = t.create_order(user, &[(4, 250)]).await;
    let id = order["id"].as_str().unwrap();
    let rest = t.get(&format!("/api/v1/admin/orders/{id}"), Some(&t.admin_key)).await.body;
    let gql =
        t.gql_data("query($id: ID!) { order(id: $id) { number totalCents createdAt } }", json!({ "id": id })).await;
    assert_eq!(rest["order"]["number"], gql["order"]["number"]);
    assert_eq!(rest["order"]["total_cents"], gql["order"]["totalCents"]);
    let created = chrono::DateTime::parse_from_rfc3339(gql["order"]["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!(rest["order"]["created_at"], created.timestamp());
    assert_eq!(rest["order"]["status"], 1);
    assert_eq!(rest["order"]["payment_status"], 1);
}

#[tokio::test]
async fn unknown_or_malformed_ids() {
    let t = TestApp::new().await;
    let response = t.get("/api/v1/admin/orders/424242", Some(&t.admin_key)).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.body, json!({ "code": "NOT_FOUND", "message": "order 424242 not found" }));
    for bad in ["abc", "0", "-1", "1.5", "99999999999999999999"] {
        let response = t.get(&format!("/api/v1/admin/orders/{bad}"), Some(&t.admin_key)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(response.body["code"], "BAD_USER_INPUT");
        assert!(response.body["message"].as_str().unwrap().starts_with("id must be"), "{bad}");
    }
}

#[tokio::test]
async fn list_has_orders_and_pagination() {
    let t = TestApp::new().await;
    t.seed(3, 45).await;
    let response = t.get("/api/v1/admin/orders", Some(&t.admin_key)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(keys(&response.body), ["orders", "pagination"]);
    assert_eq!(response.body["orders"].as_array().unwrap().len(), 20);
    assert_eq!(
        response.body["pagination"],
        json!({ "page": 1, "per_page": 20, "total_count": 45, "has_next": true, "has_prev": false })
    );
    assert_eq!(keys(&response.body["orders"][0]), ORDER_KEYS);
    let response = t.get("/api/v1/admin/orders?page=3&per_page=20", Some(&t.admin_key)).await;
    assert_eq!(response.body["orders"].as_array().unwrap().len(), 5);
    assert_eq!(
        response.body["pagination"],
        json!({ "page": 3, "per_page": 20, "total_count": 45, "has_next": false, "has_prev": true })
    );
    let first = t.get("/api/v1/admin/orders?per_page=1", Some(&t.admin_key)).await;
    insta::assert_json_snapshot!("rest_order_list_page", redact(&first.body));
}

async fn list_total(t: &TestApp, query: &str) -> (i64, Vec<Value>) {
    let response = t.get(&format!("/api/v1/admin/orders?per_page=100&{query}"), Some(&t.admin_key)).await;
    assert_eq!(response.status, StatusCode::OK, "{query}: {}", response.body);
    (response.body["pagination"]["total_count"].as_i64().unwrap(), response.body["orders"].as_array().unwrap().clone())
}

#[tokio::test]
async fn every_filter_parameter_works() {
    let t = TestApp::new().await;
    t.seed(5, 80).await;
    let total = count(&t, "SELECT count(*) AS n FROM orders").await;
    let cases = [
        ("status=3", "SELECT count(*) AS n FROM orders WHERE status = 3"),
        ("status=0", "SELECT count(*) AS n FROM orders"),
        ("payment_status=4", "SELECT count(*) AS n FROM orders WHERE payment_status = 4"),
        ("payment_status=0&status=1", "SELECT count(*) AS n FROM orders WHERE status = 1"),
        ("payment_method=cash", "SELECT count(*) AS n FROM orders WHERE payment_method = 'cash'"),
        ("user_id=3", "SELECT count(*) AS n FROM orders WHERE user_id = 3"),
        ("user_id=0", "SELECT count(*) AS n FROM orders"),
        ("number=ord-", "SELECT count(*) AS n FROM orders"),
        (
            "status=2&payment_method=card",
            "SELECT count(*) AS n FROM orders WHERE status = 2 AND payment_method = 'card'",
        ),
    ];
    for (query, sql) in cases {
        let expected = count(&t, sql).await;
        assert!(expected > 0, "seed covers {query}");
        let (got, orders) = list_total(&t, query).await;
        assert_eq!(got, expected, "{query}");
        assert_eq!(orders.len() as i64, expected.min(100));
    }
    assert_eq!(list_total(&t, "").await.0, total);
    let (_, cancelled) = list_total(&t, "status=3").await;
    assert!(cancelled.iter().all(|o| o["status"] == 3 && o["cancelled_at"].is_i64()));
    let (_, sorted) = list_total(&t, "sort=total_cents&direction=asc").await;
    let totals: Vec<i64> = sorted.iter().map(|o| o["total_cents"].as_i64().unwrap()).collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "ascending totals");
    let (_, sorted) = list_total(&t, "sort=id&direction=desc").await;
    let ids: Vec<i64> = sorted.iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "descending ids");
    let (_, by_number) = list_total(&t, "sort=number&direction=asc").await;
    let numbers: Vec<&str> = by_number.iter().map(|o| o["number"].as_str().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]));
    for sort in ["status", "created_at", "updated_at", "paid_at"] {
        assert_eq!(list_total(&t, &format!("sort={sort}&direction=asc")).await.0, total, "{sort}");
    }
    // Default order: newest first.
    let (_, default) = list_total(&t, "").await;
    let created: Vec<i64> = default.iter().map(|o| o["created_at"].as_i64().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let t = TestApp::new().await;
    let cases = [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=abc", "per_page"),
        ("per_page=-5", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("sort=color", "sort must be one of id, number, status, total_cents, created_at, updated_at, paid_at"),
        ("sort=ID", "sort"),
        ("direction=up", "direction must be one of asc, desc"),
        ("status=6", "status"),
        ("status=-1", "status"),
        ("status=paid", "status"),
        ("payment_status=7", "payment_status"),
        ("payment_status=x", "payment_status"),
        ("user_id=-2", "user_id"),
        ("user_id=abc", "user_id"),
    ];
    for (query, needle) in cases {
        let response = t.get(&format!("/api/v1/admin/orders?{query}"), Some(&t.admin_key)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.body["code"], "BAD_USER_INPUT", "{query}");
        let message = response.body["message"].as_str().unwrap();
        assert!(message.starts_with(needle.split(' ').next().unwrap()), "{query}: {message}");
        assert!(message.contains(needle), "{query}: {message}");
    }
}

/// Found by the fuzzer: PostgreSQL text cannot hold NUL, which once surfaced as a 500.
#[tokio::test]
async fn nul_characters_are_bad_input_not_server_errors() {
    let t = TestApp::new().await;
    for query in ["number=ab%00cd", "payment_method=ca%00rd"] {
        let response = t.get(&format!("/api/v1/admin/orders?{query}"), Some(&t.admin_key)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}: {}", response.body);
        assert!(response.body["message"].as_str().unwrap().contains("NUL"));
    }
    let body = t.gql("query($n: String!) { orderByNumber(number: $n) { id } }", json!({ "n": "x\u{0}y" })).await;
    assert_eq!(crate::common::error_code(&body), "BAD_USER_INPUT");
    // Anywhere else (here: JSON metadata of a new order) the database's refusal is mapped too.
    let user = t.create_user("nul@example.com", 0).await;
    let body = t
        .gql(
            "mutation($u: ID!, $m: JSON) { createOrder(input: { userId: $u, currency: \"USD\", paymentMethod: \"card\", items: [{ name: \"A\", quantity: 1, unitPriceCents: 5 }], metadata: $m }) { id } }",
            json!({ "u": user.to_string(), "m": { "note": "a\u{0}b" } }),
        )
        .await;
    assert_eq!(crate::common::error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("NUL"));
    let body = t
        .gql(
            "mutation($u: ID!) { createOrder(input: { userId: $u, currency: \"USD\", paymentMethod: \"card\", items: [{ name: \"A\\u0000B\", quantity: 1, unitPriceCents: 5 }] }) { id } }",
            json!({ "u": user.to_string() }),
        )
        .await;
    assert_eq!(crate::common::error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(crate::graphql_reads::count(&t, "SELECT count(*) AS n FROM orders").await, 0);
}

/// A merchant's payment request without a buyer is an order like any other on the admin
/// face: listed and shown, with `user_id` and `user` null.
#[tokio::test]
async fn store_orders_without_a_buyer_show_on_the_admin_face() {
    let t = TestApp::new().await;
    let m = crate::merchants::merchant(&t, "Admin face").await;
    let body = crate::merchants::create(&t, &m.key, json!({ "amountCents": 1234 })).await;
    let id = body["data"]["createMerchantOrder"]["id"].as_str().unwrap().to_owned();
    let list = t.get("/api/v1/admin/orders", Some(&t.admin_key)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let order = &list.body["orders"][0];
    assert_eq!(order["id"].to_string(), id);
    assert_eq!((order["user_id"].clone(), order["user"].clone()), (Value::Null, Value::Null));
    let detail = t.get(&format!("/api/v1/admin/orders/{id}"), Some(&t.admin_key)).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(detail.body["order"]["total_cents"], 1234);
    let cancel =
        crate::mutations::post_json(&t, &format!("/api/v1/admin/orders/{id}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
    assert_eq!(cancel.body["order"]["status"], 3);
}
