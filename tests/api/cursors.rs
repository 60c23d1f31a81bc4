//! Relay cursors on `orders` and `User.orders`: exact walks in both directions, under
//! concurrent inserts, for every sort (NULLs and ties included), and refusals.

use serde_json::{Value, json};

use crate::common::{TestApp, error_code, id};
use crate::mutations::pay;

const LIST: &str = "query($first: Int, $after: String, $last: Int, $before: String, $sort: OrderSortField, \
    $direction: SortDirection, $filter: OrderFilter) {
  orders(first: $first, after: $after, last: $last, before: $before, sort: $sort, direction: $direction, filter: $filter) {
    edges { cursor node { id } }
    nodes { id }
    pageInfo { page perPage hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

fn ids(page: &Value) -> Vec<i64> {
    page["edges"].as_array().unwrap().iter().map(|e| id(&e["node"]["id"])).collect()
}

/// Every order in list order, by page numbers in one page (the reference).
async fn all(t: &TestApp, sort: &str, direction: &str, filter: Value) -> Vec<i64> {
    let data = t
        .gql_data(
            "query($s: OrderSortField, $d: SortDirection, $f: OrderFilter) { orders(sort: $s, direction: $d, filter: $f, perPage: 100) { nodes { id } } }",
            json!({ "s": sort, "d": direction, "f": filter }),
        )
        .await;
    data["orders"]["nodes"].as_array().unwrap().iter().map(|n| id(&n["id"])).collect()
}

/// Walks the whole list by cursor, `size` at a time, forward or backward; `between` runs
/// after each page.
async fn walk<F, Fut>(
    t: &TestApp,
    sort: &str,
    direction: &str,
    filter: Value,
    size: i64,
    backward: bool,
    mut between: F,
) -> Vec<i64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let vars = if backward {
            json!({ "last": size, "before": cursor, "sort": sort, "direction": direction, "filter": filter })
        } else {
            json!({ "first": size, "after": cursor, "sort": sort, "direction": direction, "filter": filter })
        };
        let data = t.gql_data(LIST, vars).await;
        let page = &data["orders"];
        assert_eq!(page["pageInfo"]["page"], Value::Null, "no page number when paging by cursor");
        assert_eq!(ids(page), page["nodes"].as_array().unwrap().iter().map(|n| id(&n["id"])).collect::<Vec<_>>());
        let mut got = ids(page);
        if backward {
            got.reverse();
            assert_eq!(page["pageInfo"]["hasNextPage"], json!(cursor.is_some()));
        } else {
            assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(cursor.is_some()));
        }
        seen.extend(got);
        let more = if backward { &page["pageInfo"]["hasPreviousPage"] } else { &page["pageInfo"]["hasNextPage"] };
        if *more != json!(true) {
            if backward {
                seen.reverse();
            }
            return seen;
        }
        let next = if backward { &page["pageInfo"]["startCursor"] } else { &page["pageInfo"]["endCursor"] };
        cursor = Some(next.as_str().unwrap().to_owned());
        between().await;
    }
    panic!("the walk did not end");
}

async fn setup(t: &TestApp, n: usize) -> i64 {
    let user = t.create_user("walker@example.com", 0).await;
    for i in 0..n {
        // Few distinct totals: ties on TOTAL_CENTS and STATUS are broken by id.
        let order = t.create_order(user, &[(1, 100 * (i as i64 % 3 + 1))]).await;
        if i % 4 == 0 {
            assert_eq!(pay(t, id(&order["id"])).await.status, 200);
        }
    }
    user
}

#[tokio::test]
async fn a_cursor_walk_matches_the_list_for_every_sort_and_direction() {
    let t = TestApp::new().await;
    setup(&t, 23).await;
    for sort in ["ID", "NUMBER", "STATUS", "TOTAL_CENTS", "CREATED_AT", "UPDATED_AT", "PAID_AT"] {
        for direction in ["ASC", "DESC"] {
            let expected = all(&t, sort, direction, json!(null)).await;
            assert_eq!(expected.len(), 23);
            for backward in [false, true] {
                let walked = walk(&t, sort, direction, json!(null), 4, backward, || async {}).await;
                assert_eq!(walked, expected, "{sort} {direction} backward={backward}");
            }
        }
    }
    // A filtered walk.
    let filter = json!({ "paymentStatus": "PAID" });
    let expected = all(&t, "PAID_AT", "DESC", filter.clone()).await;
    assert_eq!(expected.len(), 6);
    assert_eq!(walk(&t, "PAID_AT", "DESC", filter, 4, false, || async {}).await, expected);
}

/// Orders created during a walk never make it repeat or skip one: newest-first, the new
/// ones are ahead of the walk; oldest-first, they join its end.
#[tokio::test]
async fn inserts_during_a_walk_neither_repeat_nor_skip() {
    let t = TestApp::new().await;
    let user = setup(&t, 15).await;
    let before = all(&t, "CREATED_AT", "DESC", json!(null)).await;
    let walked = walk(&t, "CREATED_AT", "DESC", json!(null), 4, false, || async {
        t.create_order(user, &[(1, 500)]).await;
        t.create_order(user, &[(1, 500)]).await;
    })
    .await;
    assert_eq!(walked, before, "newest first: exactly the orders that existed when the walk began");

    let walked = walk(&t, "CREATED_AT", "ASC", json!(null), 4, false, || async {
        t.create_order(user, &[(1, 700)]).await;
    })
    .await;
    let after = all(&t, "CREATED_AT", "ASC", json!(null)).await;
    let mut unique = walked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), walked.len(), "no order twice");
    // The walk saw every order, those created while it ran included (each was created
    // before the walk's next page was read).
    assert_eq!(walked, after);
    assert_eq!(walked.len(), 21 + 6, "15 + 6 + one per page turn");
}

#[tokio::test]
async fn user_orders_page_by_cursor_too() {
    let t = TestApp::new().await;
    let user = setup(&t, 9).await;
    let query = "query($id: ID!, $after: String) { user(id: $id) { orders(first: 4, after: $after) { \
        edges { cursor node { id } } pageInfo { hasNextPage endCursor totalCount } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = t.gql_data(query, json!({ "id": user.to_string(), "after": after })).await;
        let page = &data["user"]["orders"];
        assert_eq!(page["pageInfo"]["totalCount"], 9);
        seen.extend(ids(page));
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut expected = all(&t, "CREATED_AT", "DESC", json!({ "userId": user.to_string() })).await;
    assert_eq!(seen, expected);
    expected.dedup();
    assert_eq!(expected.len(), 9);
}

#[tokio::test]
async fn cursors_are_refused_with_another_filter_sort_or_paging() {
    let t = TestApp::new().await;
    setup(&t, 6).await;
    let data = t.gql_data(LIST, json!({ "first": 2, "sort": "CREATED_AT", "direction": "DESC" })).await;
    let cursor = data["orders"]["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let cases = [
        (json!({ "first": 2, "after": cursor, "sort": "CREATED_AT", "direction": "ASC" }), "another sort"),
        (json!({ "first": 2, "after": cursor, "sort": "TOTAL_CENTS", "direction": "DESC" }), "another sort"),
        (
            json!({ "first": 2, "after": cursor, "sort": "CREATED_AT", "direction": "DESC", "filter": { "status": "PENDING" } }),
            "another filter",
        ),
        (json!({ "first": 2, "after": "bm90IGEgY3Vyc29y" }), "not a cursor"),
        (json!({ "first": 2, "after": "%%%" }), "not a cursor"),
        (json!({ "first": 2, "last": 2 }), "one pair"),
        (json!({ "first": 2, "before": cursor }), "one pair"),
        (json!({ "first": 0 }), "first must be between 1 and 100"),
        (json!({ "last": 101 }), "last must be between 1 and 100"),
    ];
    for (vars, why) in cases {
        let body = t.gql(LIST, vars.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{vars}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{vars}: {body}");
    }
    let body = t.gql("{ orders(page: 2, first: 3) { nodes { id } } }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("two ways to page"), "{body}");
    // Page numbers keep working, and their items carry cursors a walk can continue from.
    let data = t
        .gql_data("{ orders(page: 2, perPage: 2) { edges { cursor node { id } } pageInfo { page } } }", json!({}))
        .await;
    assert_eq!(data["orders"]["pageInfo"]["page"], 2);
    let from_page = data["orders"]["edges"][1]["cursor"].as_str().unwrap().to_owned();
    let next =
        t.gql_data(LIST, json!({ "first": 2, "after": from_page, "sort": "CREATED_AT", "direction": "DESC" })).await;
    let expected = all(&t, "CREATED_AT", "DESC", json!(null)).await;
    assert_eq!(ids(&next["orders"]), expected[4..6]);
}
