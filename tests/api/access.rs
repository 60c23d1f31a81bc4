use axum::http::StatusCode;
use billing_api::domain::Role;
use serde_json::json;

use crate::common::{TestApp, error_code};

#[tokio::test]
async fn graphql_without_a_valid_key_is_unauthenticated() {
    let t = TestApp::new().await;
    let response = t.get("/graphql?query=%7B__typename%7D", None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response.body), "UNAUTHENTICATED");
    let response = t.gql_as("bk_0000000000000000000000000000", "{ __typename }", json!({})).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response.body), "UNAUTHENTICATED");
    let response = t.gql_as("not-even-our-format", "{ __typename }", json!({})).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_keys_stop_working() {
    let t = TestApp::new().await;
    let created =
        billing_api::domain::access::create_key(t.app.pool(), Role::Support, None, None, Some("temp")).await.unwrap();
    assert_eq!(t.gql_as(&created.raw, "{ __typename }", json!({})).await.status, StatusCode::OK);
    billing_api::domain::access::revoke_key(t.app.pool(), created.key.id).await.unwrap();
    let response = t.gql_as(&created.raw, "{ __typename }", json!({})).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = t.get("/api/v1/admin/orders", Some(&created.raw)).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    // Keys are stored only as hashes.
    let stored = crate::graphql_reads::count(
        &t,
        &format!(
            "SELECT count(*) AS n FROM api_keys WHERE key_hash = '{}' OR key_prefix = '{}'",
            created.raw, created.raw
        ),
    )
    .await;
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn rest_without_a_key_is_401_with_the_error_shape() {
    let t = TestApp::new().await;
    for path in ["/api/v1/admin/orders", "/api/v1/admin/orders/1"] {
        let response = t.get(path, None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(response.body["code"], "UNAUTHENTICATED");
        assert!(response.body["message"].as_str().unwrap().contains("Authorization: Bearer"));
        let response = t.get(path, Some("bk_wrong")).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn public_endpoints_need_no_key() {
    let t = TestApp::new().await;
    assert_eq!(t.get("/healthz", None).await.status, StatusCode::OK);
    let ready = t.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
    let page = t.get("/graphiql", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.as_str().unwrap().contains("graphiql"));
}

#[tokio::test]
async fn support_reads_everything_but_cannot_mutate() {
    let t = TestApp::new().await;
    let user = t.create_user("s@example.com", 0).await;
    t.create_order(user, &[(1, 100)]).await;
    let support = t.key(Role::Support, None).await;
    let response = t.gql_as(&support, "{ orders { pageInfo { totalCount } } }", json!({})).await;
    assert_eq!(response.body["data"]["orders"]["pageInfo"]["totalCount"], 1);
    let response = t
        .gql_as(&support, "mutation { createUser(input: { email: \"x@example.com\", name: \"X\" }) { id } }", json!({}))
        .await;
    assert_eq!(error_code(&response.body), "FORBIDDEN");
    let response = t
        .gql_as(
            &support,
            "mutation($u: ID!) { createOrder(input: { userId: $u, currency: \"USD\", paymentMethod: \"card\", items: [{ name: \"A\", quantity: 1, unitPriceCents: 5 }] }) { id } }",
            json!({ "u": user.to_string() }),
        )
        .await;
    assert_eq!(error_code(&response.body), "FORBIDDEN");
    assert_eq!(crate::graphql_reads::count(&t, "SELECT count(*) AS n FROM orders").await, 1);
}

#[tokio::test]
async fn customers_see_only_their_own_orders() {
    let t = TestApp::new().await;
    let ada = t.create_user("ada@example.com", 100).await;
    let bob = t.create_user("bob@example.com", 200).await;
    let ada_order = t.create_order(ada, &[(1, 100)]).await;
    let bob_order = t.create_order(bob, &[(1, 200)]).await;
    t.create_order(bob, &[(1, 300)]).await;
    let ada_key = t.key(Role::Customer, Some(ada)).await;

    let response = t.gql_as(&ada_key, "{ orders { nodes { userId } pageInfo { totalCount } } }", json!({})).await;
    assert_eq!(response.body["data"]["orders"]["pageInfo"]["totalCount"], 1);
    assert_eq!(response.body["data"]["orders"]["nodes"][0]["userId"], json!(ada.to_string()));
    // Asking for Bob's orders finds nothing, it does not reveal them.
    let response = t
        .gql_as(
            &ada_key,
            "query($u: ID) { orders(filter: { userId: $u }) { pageInfo { totalCount } } }",
            json!({ "u": bob.to_string() }),
        )
        .await;
    assert_eq!(response.body["data"]["orders"]["pageInfo"]["totalCount"], 0);
    // The nested rows load together with the order (one round trip) but never leave with it.
    let nested = "query($id: ID!) { order(id: $id) { id items { sku } payments { id } user { email } } }";
    let response = t.gql_as(&ada_key, nested, json!({ "id": bob_order["id"] })).await;
    assert_eq!(response.body["data"]["order"], serde_json::Value::Null);
    assert!(!response.body.to_string().contains("bob@example.com"), "{}", response.body);
    let response = t
        .gql_as(
            &ada_key,
            "query($n: String!) { orderByNumber(number: $n) { id } }",
            json!({ "n": bob_order["number"] }),
        )
        .await;
    assert_eq!(response.body["data"]["orderByNumber"], serde_json::Value::Null);
    let response =
        t.gql_as(&ada_key, "query($id: ID!) { user(id: $id) { id } }", json!({ "id": bob.to_string() })).await;
    assert_eq!(response.body["data"]["user"], serde_json::Value::Null);
    let response =
        t.gql_as(&ada_key, "query($id: ID!) { order(id: $id) { id } }", json!({ "id": ada_order["id"] })).await;
    assert_eq!(response.body["data"]["order"]["id"], ada_order["id"]);

    // REST: Bob's order is simply not found; the list holds only Ada's.
    let response = t.get(&format!("/api/v1/admin/orders/{}", bob_order["id"].as_str().unwrap()), Some(&ada_key)).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let response = t.get("/api/v1/admin/orders", Some(&ada_key)).await;
    assert_eq!(response.body["pagination"]["total_count"], 1);

    // A customer may create orders for itself only.
    let create = "mutation($u: ID!) { createOrder(input: { userId: $u, currency: \"USD\", paymentMethod: \"card\", items: [{ name: \"A\", quantity: 1, unitPriceCents: 5 }] }) { id } }";
    let response = t.gql_as(&ada_key, create, json!({ "u": bob.to_string() })).await;
    assert_eq!(error_code(&response.body), "FORBIDDEN");
    let response = t.gql_as(&ada_key, create, json!({ "u": ada.to_string() })).await;
    assert!(response.body.get("errors").is_none(), "{}", response.body);
}
