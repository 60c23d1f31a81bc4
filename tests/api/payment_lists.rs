//! `payment(id)` and `payments(...)`: filters, sorts, both ways to page, visibility, and a
//! constant number of statements per page with each payment's order.

use serde_json::{Value, json};

use billing_api::domain::Role;

use crate::callbacks::start_payment;
use crate::common::{TestApp, error_code, id};
use crate::mutations::pay;

const LIST: &str = "query($first: Int, $after: String, $last: Int, $before: String, $sort: PaymentSortField,
    $direction: SortDirection, $filter: PaymentFilter) {
  payments(first: $first, after: $after, last: $last, before: $before, sort: $sort, direction: $direction, filter: $filter) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor totalCount }
  }
}";

/// Two users with orders of several totals: some paid by hand (SUCCEEDED, dated), some
/// with a payment started (PENDING, undated). Returns the users.
async fn setup(t: &TestApp) -> (i64, i64) {
    let a = t.create_user("pay-a@example.com", 0).await;
    let b = t.create_user("pay-b@example.com", 0).await;
    for i in 0..14i64 {
        let user = if i % 3 == 0 { b } else { a };
        let order = id(&t.create_order(user, &[(1, 100 * (i % 4 + 1))]).await["id"]);
        if i % 2 == 0 {
            assert_eq!(pay(t, order).await.status, 200);
        } else {
            start_payment(t, order).await;
        }
    }
    (a, b)
}

fn ids(page: &Value) -> Vec<i64> {
    page["edges"].as_array().unwrap().iter().map(|e| id(&e["node"]["id"])).collect()
}

async fn all(t: &TestApp, key: &str, sort: &str, direction: &str, filter: Value) -> Vec<i64> {
    let body = t
        .gql_as(
            key,
            "query($s: PaymentSortField, $d: SortDirection, $f: PaymentFilter) { payments(sort: $s, direction: $d, filter: $f, perPage: 100) { nodes { id } } }",
            json!({ "s": sort, "d": direction, "f": filter }),
        )
        .await
        .body;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["payments"]["nodes"].as_array().unwrap().iter().map(|n| id(&n["id"])).collect()
}

async fn walk(t: &TestApp, sort: &str, direction: &str, backward: bool) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let vars = if backward {
            json!({ "last": 3, "before": cursor, "sort": sort, "direction": direction })
        } else {
            json!({ "first": 3, "after": cursor, "sort": sort, "direction": direction })
        };
        let data = t.gql_data(LIST, vars).await;
        let page = &data["payments"];
        let mut got = ids(page);
        if backward {
            got.reverse();
        }
        seen.extend(got);
        let (more, next) = if backward { ("hasPreviousPage", "startCursor") } else { ("hasNextPage", "endCursor") };
        if page["pageInfo"][more] != json!(true) {
            if backward {
                seen.reverse();
            }
            return seen;
        }
        cursor = page["pageInfo"][next].clone();
        assert!(seen.len() < 100, "the walk ends");
    }
}

#[tokio::test]
async fn cursor_walks_match_the_list_for_every_sort() {
    let t = TestApp::new().await;
    setup(&t).await;
    for sort in ["CREATED_AT", "AMOUNT", "PAID_AT"] {
        for direction in ["ASC", "DESC"] {
            let expected = all(&t, &t.admin_key, sort, direction, json!(null)).await;
            assert_eq!(expected.len(), 14);
            for backward in [false, true] {
                assert_eq!(walk(&t, sort, direction, backward).await, expected, "{sort} {direction} {backward}");
            }
        }
    }
    let paid_last = all(&t, &t.admin_key, "PAID_AT", "DESC", json!(null)).await;
    let pending = all(&t, &t.admin_key, "CREATED_AT", "DESC", json!({ "status": "PENDING" })).await;
    assert_eq!(pending.len(), 7);
    assert!(paid_last[7..].iter().all(|p| pending.contains(p)), "undated payments sort last");
}

#[tokio::test]
async fn filters_narrow_and_bad_ranges_are_refused() {
    let t = TestApp::new().await;
    let (a, b) = setup(&t).await;
    let admin = t.admin_key.clone();
    let count = |filter: Value| {
        let admin = admin.clone();
        let t = &t;
        async move { all(t, &admin, "CREATED_AT", "DESC", filter).await.len() }
    };
    assert_eq!(count(json!({ "status": "SUCCEEDED" })).await, 7);
    assert_eq!(count(json!({ "provider": "manual", "status": "SUCCEEDED" })).await, 7);
    assert_eq!(count(json!({ "userId": b.to_string() })).await, 5);
    assert_eq!(count(json!({ "userId": a.to_string() })).await, 9);
    assert_eq!(count(json!({ "amountGte": 300, "amountLte": 400 })).await, 6);
    assert_eq!(count(json!({ "amountGte": "400" })).await, 3);
    assert_eq!(count(json!({ "paidAtGte": "2000-01-01T00:00:00Z" })).await, 7, "only dated payments");
    assert_eq!(count(json!({ "createdAtLte": "2000-01-01T00:00:00Z" })).await, 0);
    let one = all(&t, &admin, "CREATED_AT", "DESC", json!(null)).await[0];
    let order_of_one =
        t.gql_data("query($id: ID!) { payment(id: $id) { orderId } }", json!({ "id": one.to_string() })).await;
    let order_id = order_of_one["payment"]["orderId"].clone();
    assert_eq!(count(json!({ "orderId": order_id })).await, 1);

    for (filter, why) in [
        (json!({ "amountGte": 500, "amountLte": 100 }), "amountGte must not be greater than amountLte"),
        (json!({ "createdAtGte": "2030-01-01T00:00:00Z", "createdAtLte": "2020-01-01T00:00:00Z" }), "createdAtGte"),
        (json!({ "orderId": "x" }), "filter.orderId"),
        (json!({ "provider": "a\u{0}b" }), "provider"),
        (json!({ "createdAtGte": "-10000-01-01T00:00:00Z" }), "createdAtGte must be a date between"),
    ] {
        let body = t.gql(LIST, json!({ "filter": filter })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{body}");
    }
    // A cursor of another filter is refused.
    let data = t.gql_data(LIST, json!({ "first": 2 })).await;
    let cursor = data["payments"]["pageInfo"]["endCursor"].clone();
    let body = t.gql(LIST, json!({ "first": 2, "after": cursor, "filter": { "status": "PENDING" } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn customers_see_only_their_own_payments() {
    let t = TestApp::new().await;
    let (a, b) = setup(&t).await;
    let key_a = t.key(Role::Customer, Some(a)).await;
    let mine = all(&t, &key_a, "CREATED_AT", "DESC", json!(null)).await;
    assert_eq!(mine, all(&t, &t.admin_key, "CREATED_AT", "DESC", json!({ "userId": a.to_string() })).await);
    assert_eq!(mine.len(), 9);
    // Asking for another user's payments finds none; one of theirs by id is null.
    assert!(all(&t, &key_a, "CREATED_AT", "DESC", json!({ "userId": b.to_string() })).await.is_empty());
    let theirs = all(&t, &t.admin_key, "CREATED_AT", "DESC", json!({ "userId": b.to_string() })).await[0];
    let body =
        t.gql_as(&key_a, "query($id: ID!) { payment(id: $id) { id } }", json!({ "id": theirs.to_string() })).await.body;
    assert_eq!(body["data"]["payment"], Value::Null, "{body}");
    let own = t
        .gql_as(
            &key_a,
            "query($id: ID!) { payment(id: $id) { id order { userId } } }",
            json!({ "id": mine[0].to_string() }),
        )
        .await
        .body;
    assert_eq!(own["data"]["payment"]["order"]["userId"], a.to_string(), "{own}");
}

/// A page of payments with each one's order (and what the order nests) costs the same
/// number of statements for 2 payments as for 14.
#[tokio::test]
async fn a_page_with_orders_costs_a_constant_number_of_statements() {
    let t = TestApp::new().await;
    setup(&t).await;
    let query = "query($n: Int) { payments(first: $n) { edges { node { id amountCents order { number items { name } user { email } } } } } }";
    let mut costs = Vec::new();
    for n in [2, 14] {
        let before = t.app.statements().get();
        let data = t.gql_data(query, json!({ "n": n })).await;
        costs.push(t.app.statements().get() - before);
        let edges = data["payments"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n as usize);
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["order"]["number"].is_string() && e["node"]["order"]["user"]["email"].is_string())
        );
    }
    println!("statements per page of payments with their orders: {costs:?}");
    assert_eq!(costs[0], costs[1], "statements for 2 and for 14 payments: {costs:?}");
}

/// Page numbers past the first read the same rows as the list (the deferred join), and
/// `order.payments.order` costs nothing per payment.
#[tokio::test]
async fn later_pages_and_nested_orders_stay_exact_and_cheap() {
    let t = TestApp::new().await;
    setup(&t).await;
    for sort in ["CREATED_AT", "AMOUNT", "PAID_AT"] {
        let expected = all(&t, &t.admin_key, sort, "DESC", json!(null)).await;
        let data = t
            .gql_data(
                "query($s: PaymentSortField) { payments(sort: $s, page: 2, perPage: 5) { nodes { id } pageInfo { page hasPreviousPage } } }",
                json!({ "s": sort }),
            )
            .await;
        let got: Vec<i64> = data["payments"]["nodes"].as_array().unwrap().iter().map(|n| id(&n["id"])).collect();
        assert_eq!(got, expected[5..10], "{sort}");
        assert_eq!(data["payments"]["pageInfo"]["hasPreviousPage"], true);
    }
    let query = "query($n: Int) { orders(perPage: $n) { nodes { payments { order { number } } } } }";
    let mut costs = Vec::new();
    for n in [2, 14] {
        let before = t.app.statements().get();
        t.gql_data(query, json!({ "n": n })).await;
        costs.push(t.app.statements().get() - before);
    }
    assert_eq!(costs[0], costs[1], "orders with payments with their order: {costs:?}");
}
