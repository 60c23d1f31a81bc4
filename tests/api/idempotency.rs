//! Idempotency-Key semantics beyond the race: GraphQL, scoping, errors.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::domain::Role;
use serde_json::json;

use crate::common::{TestApp, error_code};
use crate::graphql_reads::count;
use crate::mutations::{order_of, pay};

pub fn gql(key: &str, idempotency: &str, query: &str, variables: serde_json::Value) -> Request<Body> {
    Request::post("/graphql")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", idempotency)
        .body(Body::from(json!({ "query": query, "variables": variables }).to_string()))
        .unwrap()
}

const REFUND: &str =
    "mutation($o: ID!, $a: Int!) { refundOrder(input: { id: $o, amountCents: $a }) { refundedCents } }";

#[tokio::test]
async fn graphql_mutations_replay_and_conflict() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    pay(&t, order).await;
    let vars = json!({ "o": order.to_string(), "a": 250 });
    let first = t.send(gql(&t.admin_key, "k-1", REFUND, vars.clone())).await;
    assert_eq!(first.body["data"]["refundOrder"]["refundedCents"], 250);
    let again = t.send(gql(&t.admin_key, "k-1", REFUND, vars.clone())).await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 1);

    let different = t.send(gql(&t.admin_key, "k-1", REFUND, json!({ "o": order.to_string(), "a": 300 }))).await;
    assert_eq!(different.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&different.body), "IDEMPOTENCY_CONFLICT");

    // Keys are scoped to the API key: another admin key may use the same text.
    let other_admin = t.key(Role::Admin, None).await;
    let other = t.send(gql(&other_admin, "k-1", REFUND, vars)).await;
    assert_eq!(other.body["data"]["refundOrder"]["refundedCents"], 500);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 2);
}

#[tokio::test]
async fn errors_replay_too_and_bad_keys_are_refused() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    // A refused request is remembered: the same key keeps answering the same refusal.
    let vars = json!({ "o": order.to_string(), "a": 100 });
    let refused = t.send(gql(&t.admin_key, "k-2", REFUND, vars.clone())).await;
    assert_eq!(error_code(&refused.body), "CONFLICT");
    pay(&t, order).await;
    let replay = t.send(gql(&t.admin_key, "k-2", REFUND, vars)).await;
    assert_eq!(replay.body, refused.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 0);

    let bad = t.send(gql(&t.admin_key, "has space", REFUND, json!({ "o": order.to_string(), "a": 1 }))).await;
    assert_eq!(error_code(&bad.body), "BAD_USER_INPUT");
    let long = "x".repeat(256);
    let bad = t.send(gql(&t.admin_key, &long, REFUND, json!({ "o": order.to_string(), "a": 1 }))).await;
    assert_eq!(error_code(&bad.body), "BAD_USER_INPUT");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 0);
    // Queries ignore the header.
    let query = t.send(gql(&t.admin_key, "k-3", "{ __typename }", json!({}))).await;
    assert_eq!(query.body["data"]["__typename"], "Query");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM idempotency_keys WHERE key = 'k-3'").await, 0);
}

/// A service whose payment provider (Stripe) cannot be reached: createPayment fails with
/// PROVIDER_ERROR, before anything is written.
async fn with_unreachable_stripe() -> TestApp {
    let config = billing_api::config::Config {
        payment_provider: billing_api::config::ProviderKind::Stripe,
        stripe_api_base: "http://127.0.0.1:1".to_owned(),
        ..Default::default()
    };
    TestApp::with_config(config).await
}

/// Both faces keep no server failure: a GraphQL PROVIDER_ERROR (answered with HTTP 200) is
/// not replayed, so a retry with the same key acts again, as a REST 502 would.
#[tokio::test]
async fn graphql_server_failures_are_not_replayed() {
    let t = with_unreachable_stripe().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    let start = "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }";
    let vars = json!({ "o": order.to_string() });
    let first = t.send(gql(&t.admin_key, "pay-once", start, vars.clone())).await;
    assert_eq!(error_code(&first.body), "PROVIDER_ERROR", "{}", first.body);
    let retry = t.send(gql(&t.admin_key, "pay-once", start, vars)).await;
    assert_eq!(error_code(&retry.body), "PROVIDER_ERROR", "{}", retry.body);
    assert!(retry.headers.get("idempotent-replayed").is_none(), "a server failure is never replayed");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM idempotency_keys").await, 0, "nothing kept");
}

/// The same request with its JSON keys in another order is the same request.
#[tokio::test]
async fn key_order_does_not_change_a_request() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    pay(&t, order).await;
    let path = format!("/api/v1/admin/orders/{order}/refund");
    let send = |body: &'static str| {
        Request::post(path.as_str())
            .header(header::AUTHORIZATION, format!("Bearer {}", t.admin_key))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "order-of-keys")
            .body(Body::from(body))
            .unwrap()
    };
    let first = t.send(send(r#"{"amount_cents": 100, "reason": "late"}"#)).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = t.send(send(r#"{"reason": "late", "amount_cents": 100}"#)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let nested = "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { refundedCents } }";
    let a = json!({ "i": { "id": order.to_string(), "amountCents": 50, "reason": "x" } });
    let b = json!({ "i": { "reason": "x", "amountCents": 50, "id": order.to_string() } });
    let first = t.send(gql(&t.admin_key, "gql-order-of-keys", nested, a)).await;
    let again = t.send(gql(&t.admin_key, "gql-order-of-keys", nested, b)).await;
    assert_eq!(again.headers["idempotent-replayed"], "true", "{}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 2);
}

/// A mutation field that committed keeps the whole answer replayable even when a later
/// field failed on the server's side: a retry must not act again.
#[tokio::test]
async fn a_partly_committed_graphql_answer_is_replayed_not_redone() {
    let t = with_unreachable_stripe().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    let both = "mutation($o: ID!) { a: createUser(input: { email: \"once@example.com\", name: \"Once\" }) { id } \
                b: createPayment(input: { orderId: $o }) { id } }";
    let vars = json!({ "o": order.to_string() });
    let first = t.send(gql(&t.admin_key, "half-done", both, vars.clone())).await;
    assert!(first.body["data"]["a"]["id"].is_string(), "{}", first.body);
    assert_eq!(error_code(&first.body), "PROVIDER_ERROR");
    let retry = t.send(gql(&t.admin_key, "half-done", both, vars)).await;
    assert_eq!(retry.headers["idempotent-replayed"], "true", "{}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM users WHERE email = 'once@example.com'").await, 1);
}

/// Keys are kept a week by default (Stripe keeps 24 hours): a two-day-old key still
/// replays, an eight-day-old one is purged.
#[tokio::test]
async fn keys_are_kept_a_week() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let t = TestApp::new().await;
    let mut conn = AsyncPgConnection::establish(&t.url).await.unwrap();
    conn.batch_execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body, created_at, completed_at) VALUES
         ('key:1', 'two-days', 'h', 200, '{}', now() - interval '2 days', now() - interval '2 days'),
         ('key:1', 'eight-days', 'h', 200, '{}', now() - interval '8 days', now() - interval '8 days')",
    )
    .await
    .unwrap();
    let retention = t.app.config().idempotency_retention;
    assert_eq!(retention, std::time::Duration::from_secs(7 * 24 * 3600));
    let purged = billing_api::domain::idempotency::purge_expired(t.app.pool(), retention).await.unwrap();
    assert_eq!(purged, 1);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM idempotency_keys WHERE key = 'two-days'").await, 1);
}

/// A document with one named mutation and no operationName runs that mutation: it is a
/// mutation for every rule (GET refuses it; Idempotency-Key replays it).
#[tokio::test]
async fn a_single_named_mutation_is_a_mutation_without_operation_name() {
    let t = TestApp::new().await;
    let create = "mutation MakeUser { createUser(input: { email: \"named@example.com\", name: \"N\" }) { id } }";
    let url =
        format!("/graphql?query={}", serde_urlencoded::to_string([("q", create)]).unwrap().trim_start_matches("q="));
    let get = t.get(&url, Some(&t.admin_key)).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED, "{}", get.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM users").await, 0, "GET changed nothing");
    let first = t.send(gql(&t.admin_key, "named-once", create, json!({}))).await;
    assert!(first.body["data"]["createUser"]["id"].is_string(), "{}", first.body);
    let again = t.send(gql(&t.admin_key, "named-once", create, json!({}))).await;
    assert_eq!(again.headers["idempotent-replayed"], "true", "{}", again.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM users").await, 1);
}
