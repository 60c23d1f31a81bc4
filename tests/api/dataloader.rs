use serde_json::json;

use crate::common::TestApp;
use crate::graphql_reads::FULL_ORDER;

/// SQL statements one GraphQL request costs.
async fn statements_for(t: &TestApp, per_page: i64) -> (u64, usize) {
    let query =
        format!("query($n: Int!) {{ orders(perPage: $n) {{ nodes {{ {FULL_ORDER} }} pageInfo {{ totalCount }} }} }}");
    let before = t.app.statements().get();
    let data = t.gql_data(&query, json!({ "n": per_page })).await;
    let after = t.app.statements().get();
    (after - before, data["orders"]["nodes"].as_array().unwrap().len())
}

#[tokio::test]
async fn nested_fields_cost_the_same_for_5_and_50_orders() {
    let t = TestApp::new().await;
    t.seed(10, 60).await;
    // Warm the pool so connection setup is not counted in either run.
    statements_for(&t, 1).await;
    let (small, small_rows) = statements_for(&t, 5).await;
    let (large, large_rows) = statements_for(&t, 50).await;
    assert_eq!((small_rows, large_rows), (5, 50));
    assert_eq!(small, large, "a page of 50 must cost what a page of 5 costs");
    // key lookup + page + count + items + payments + refunds + events + users.
    assert!(large <= 8, "{large} statements");
}

/// One order with every nested kind: the key lookup, the order, then one query per kind
/// (pipelined on one connection), whatever the order holds.
#[tokio::test]
async fn order_detail_costs_one_query_per_kind() {
    let t = TestApp::new().await;
    t.seed(3, 12).await;
    let query = format!("query($id: ID!) {{ order(id: $id) {{ {FULL_ORDER} }} }}");
    t.gql_data(&query, json!({ "id": "1" })).await;
    for id in 1..=12 {
        let before = t.app.statements().get();
        let data = t.gql_data(&query, json!({ "id": id.to_string() })).await;
        let cost = t.app.statements().get() - before;
        assert_eq!(data["order"]["id"], json!(id.to_string()));
        // key + order + items + payments + refunds + events + user
        assert_eq!(cost, 7, "order {id}");
    }
    // Selecting fewer kinds sends fewer statements.
    let before = t.app.statements().get();
    t.gql_data("{ order(id: \"2\") { number items { sku } } }", json!({})).await;
    assert_eq!(t.app.statements().get() - before, 3);
}
