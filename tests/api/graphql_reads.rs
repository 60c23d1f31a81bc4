use serde_json::{Value, json};

use crate::common::{TestApp, error_code, id, redact};

pub const FULL_ORDER: &str = "id number userId status paymentStatus paymentIntentId paymentReference
  paymentFailureCode paymentFailureMessage totalCents currency paymentMethod planId planSnapshot metadata
  cancelReason paidAt cancelledAt refundedCents refundedAt createdAt updatedAt
  items { id name sku quantity unitPriceCents totalCents metadata createdAt }
  refunds { id orderId paymentId status amountCents currency reason metadata creditBalance refundedAt createdAt }
  payments { id orderId status provider paymentMethod amountCents currency reference paymentIntentId
             failureCode failureMessage paidAt createdAt updatedAt }
  user { id email name balanceCents createdAt }
  events { id kind actor data createdAt }";

async fn sql_count(t: &TestApp, sql: &str) -> i64 {
    let mut conn = t.app.pool().get().await.expect("pooled connection");
    count_on(&mut conn, sql).await
}

/// `sql`'s column `n` on a connection of one's own (for databases no TestApp serves).
pub async fn count_on(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<Count>(conn).await.expect(sql).n
}

pub async fn count(t: &TestApp, sql: &str) -> i64 {
    sql_count(t, sql).await
}

#[tokio::test]
async fn order_has_every_field_and_nested_list() {
    let t = TestApp::new().await;
    let user = t.create_user("ada@example.com", 5_000).await;
    let order = t.create_order(user, &[(2, 1_250), (1, 500)]).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    t.gql_data(
        "mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id status } }",
        json!({ "input": { "orderId": order_id } }),
    )
    .await;
    let data = t
        .gql_data(&format!("query($id: ID!) {{ order(id: $id) {{ {FULL_ORDER} }} }}"), json!({ "id": order_id }))
        .await;
    let order = &data["order"];
    assert_eq!(order["totalCents"], 3_000);
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["paymentStatus"], "PROCESSING");
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(order["user"]["balanceCents"], 5_000);
    assert!(order["number"].as_str().unwrap().starts_with("ORD-"));
    insta::assert_json_snapshot!("graphql_order_detail", redact(&data));
}

#[tokio::test]
async fn absent_order_is_null_and_bad_id_is_bad_input() {
    let t = TestApp::new().await;
    let data = t.gql_data("{ order(id: \"999999\") { id } }", json!({})).await;
    assert_eq!(data["order"], Value::Null);
    let body = t.gql("{ order(id: \"abc\") { id } }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("id must be a positive decimal id"));
    let body = t.gql("{ order(id: \"-4\") { id } }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn order_by_number_matches_exactly() {
    let t = TestApp::new().await;
    let user = t.create_user("num@example.com", 0).await;
    let order = t.create_order(user, &[(1, 100)]).await;
    let number = order["number"].as_str().unwrap();
    let data = t.gql_data("query($n: String!) { orderByNumber(number: $n) { id } }", json!({ "n": number })).await;
    assert_eq!(data["orderByNumber"]["id"], order["id"]);
    let data =
        t.gql_data("query($n: String!) { orderByNumber(number: $n) { id } }", json!({ "n": &number[..8] })).await;
    assert_eq!(data["orderByNumber"], Value::Null);
}

const LIST: &str =
    "query($filter: OrderFilter, $sort: OrderSortField, $direction: SortDirection, $page: Int, $perPage: Int) {
  orders(filter: $filter, sort: $sort, direction: $direction, page: $page, perPage: $perPage) {
    nodes { id number userId status paymentStatus paymentMethod totalCents paidAt createdAt }
    pageInfo { page perPage totalCount hasNextPage hasPreviousPage }
  }
}";

async fn list(t: &TestApp, variables: Value) -> Value {
    t.gql_data(LIST, variables).await["orders"].clone()
}

#[tokio::test]
async fn orders_filters_match_the_database() {
    let t = TestApp::new().await;
    t.seed(6, 120).await;
    let cases = [
        (json!({ "status": "CANCELLED" }), "SELECT count(*) AS n FROM orders WHERE status = 3"),
        (json!({ "paymentStatus": "PARTIALLY_REFUNDED" }), "SELECT count(*) AS n FROM orders WHERE payment_status = 5"),
        (
            json!({ "paymentMethod": "bank_transfer" }),
            "SELECT count(*) AS n FROM orders WHERE payment_method = 'bank_transfer'",
        ),
        (json!({ "userId": "2" }), "SELECT count(*) AS n FROM orders WHERE user_id = 2"),
        (
            json!({ "status": "COMPLETED", "paymentMethod": "card" }),
            "SELECT count(*) AS n FROM orders WHERE status = 2 AND payment_method = 'card'",
        ),
    ];
    for (filter, sql) in cases {
        let expected = count(&t, sql).await;
        assert!(expected > 0, "seed data should cover {filter}");
        let page = list(&t, json!({ "filter": filter, "perPage": 100 })).await;
        assert_eq!(page["pageInfo"]["totalCount"], expected, "filter {filter}");
        assert_eq!(page["nodes"].as_array().unwrap().len() as i64, expected.min(100));
    }
    let cancelled = list(&t, json!({ "filter": { "status": "CANCELLED" }, "perPage": 100 })).await;
    assert!(cancelled["nodes"].as_array().unwrap().iter().all(|o| o["status"] == "CANCELLED"));
}

#[tokio::test]
async fn number_filter_is_a_case_insensitive_prefix() {
    let t = TestApp::new().await;
    let user = t.create_user("prefix@example.com", 0).await;
    let order = t.create_order(user, &[(1, 100)]).await;
    t.create_order(user, &[(1, 100)]).await;
    let number = order["number"].as_str().unwrap().to_owned();
    let whole = list(&t, json!({ "filter": { "number": number.to_lowercase() } })).await;
    assert_eq!(whole["pageInfo"]["totalCount"], 1);
    assert_eq!(whole["nodes"][0]["number"], json!(number));
    let prefix = list(&t, json!({ "filter": { "number": "ord-" } })).await;
    assert_eq!(prefix["pageInfo"]["totalCount"], 2);
    // LIKE wildcards in the filter are literal characters.
    let wildcard = list(&t, json!({ "filter": { "number": "%" } })).await;
    assert_eq!(wildcard["pageInfo"]["totalCount"], 0);
}

#[tokio::test]
async fn orders_sort_in_both_directions() {
    let t = TestApp::new().await;
    t.seed(4, 60).await;
    for (sort, key) in [("TOTAL_CENTS", "totalCents"), ("ID", "id"), ("CREATED_AT", "createdAt"), ("NUMBER", "number")]
    {
        for direction in ["ASC", "DESC"] {
            let page = list(&t, json!({ "sort": sort, "direction": direction, "perPage": 100 })).await;
            let values: Vec<Value> = page["nodes"].as_array().unwrap().iter().map(|o| o[key].clone()).collect();
            let as_key = |v: &Value| match v {
                Value::String(s) if key == "id" => format!("{:020}", s.parse::<i64>().unwrap()),
                Value::String(s) => s.clone(),
                other => format!("{:020}", other.as_i64().unwrap()),
            };
            let keys: Vec<String> = values.iter().map(as_key).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if direction == "DESC" {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "sort {sort} {direction}");
        }
    }
    // Unpaid orders have no paidAt and come last in both directions.
    for direction in ["ASC", "DESC"] {
        let page = list(&t, json!({ "sort": "PAID_AT", "direction": direction, "perPage": 100 })).await;
        let paid: Vec<bool> = page["nodes"].as_array().unwrap().iter().map(|o| !o["paidAt"].is_null()).collect();
        let first_unpaid = paid.iter().position(|p| !p).unwrap();
        assert!(paid[first_unpaid..].iter().all(|p| !p), "PAID_AT {direction}: nulls last");
    }
}

#[tokio::test]
async fn paging_reports_its_position() {
    let t = TestApp::new().await;
    t.seed(2, 25).await;
    let first = list(&t, json!({ "perPage": 10 })).await;
    assert_eq!(
        first["pageInfo"],
        json!({ "page": 1, "perPage": 10, "totalCount": 25, "hasNextPage": true, "hasPreviousPage": false })
    );
    let last = list(&t, json!({ "perPage": 10, "page": 3 })).await;
    assert_eq!(last["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(last["pageInfo"]["hasNextPage"], false);
    assert_eq!(last["pageInfo"]["hasPreviousPage"], true);
    let beyond = list(&t, json!({ "perPage": 10, "page": 9 })).await;
    assert_eq!(beyond["nodes"], json!([]));
    assert_eq!(beyond["pageInfo"]["hasNextPage"], false);
    // No order appears on two pages.
    let mut seen = std::collections::HashSet::new();
    for page in 1..=3 {
        for order in list(&t, json!({ "perPage": 10, "page": page })).await["nodes"].as_array().unwrap() {
            assert!(seen.insert(order["id"].clone()), "order on two pages");
        }
    }
    assert_eq!(seen.len(), 25);
}

/// Deep pages skip rows by id (a deferred join); walking the pages one by one must give
/// exactly the one long list, for every sort, both directions and with a filter.
#[tokio::test]
async fn walking_pages_gives_the_whole_list_in_order() {
    let t = TestApp::new().await;
    t.seed(5, 64).await;
    let ids =
        |page: &Value| -> Vec<Value> { page["nodes"].as_array().unwrap().iter().map(|o| o["id"].clone()).collect() };
    for sort in ["ID", "NUMBER", "STATUS", "TOTAL_CENTS", "CREATED_AT", "UPDATED_AT", "PAID_AT"] {
        for direction in ["ASC", "DESC"] {
            for filter in [json!(null), json!({ "paymentMethod": "card" })] {
                let vars = json!({ "sort": sort, "direction": direction, "filter": filter });
                let mut all = vars.clone();
                all["perPage"] = json!(100);
                let whole = ids(&list(&t, all).await);
                assert!(whole.len() > 14, "seed should give several pages");
                let mut walked = Vec::new();
                for page in 1.. {
                    let mut one = vars.clone();
                    one["perPage"] = json!(7);
                    one["page"] = json!(page);
                    let got = list(&t, one).await;
                    walked.extend(ids(&got));
                    if got["pageInfo"]["hasNextPage"] == false {
                        break;
                    }
                }
                assert_eq!(walked, whole, "{sort} {direction} filter {filter}");
            }
        }
    }
}

/// Without `totalCount` in the selection nothing is counted, and `hasNextPage` is still
/// exact at a page boundary.
#[tokio::test]
async fn total_is_counted_only_when_selected() {
    let t = TestApp::new().await;
    t.seed(2, 21).await;
    let query = "query($p: Int!) { orders(page: $p, perPage: 7) { nodes { id } pageInfo { hasNextPage } } }";
    let counted =
        "query($p: Int!) { orders(page: $p, perPage: 7) { nodes { id } pageInfo { hasNextPage totalCount } } }";
    t.gql_data(query, json!({ "p": 1 })).await;
    let cost = |q: &'static str, p: i64| {
        let t = &t;
        async move {
            let before = t.app.statements().get();
            let data = t.gql_data(q, json!({ "p": p })).await;
            (t.app.statements().get() - before, data["orders"].clone())
        }
    };
    let (plain, second) = cost(query, 2).await;
    let (with_total, _) = cost(counted, 2).await;
    assert_eq!(with_total, plain + 1, "the count is the one extra statement");
    assert_eq!(second["pageInfo"]["hasNextPage"], true);
    let (_, third) = cost(query, 3).await;
    assert_eq!(third["nodes"].as_array().unwrap().len(), 7);
    assert_eq!(third["pageInfo"]["hasNextPage"], false, "21 orders fill exactly 3 pages of 7");
    let (_, third) = cost(counted, 3).await;
    assert_eq!(third["pageInfo"], json!({ "hasNextPage": false, "totalCount": 21 }));
}

#[tokio::test]
async fn bad_paging_names_the_argument() {
    let t = TestApp::new().await;
    for (variables, needle) in [
        (json!({ "perPage": 0 }), "perPage must be between 1 and 100"),
        (json!({ "perPage": 101 }), "perPage must be between 1 and 100"),
        (json!({ "page": 0 }), "page must be between 1"),
        (json!({ "page": -3 }), "page must be between 1"),
        (json!({ "filter": { "userId": "x" } }), "filter.userId must be a positive decimal id"),
    ] {
        let body = t.gql(LIST, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{variables}: {message}");
    }
    // An unknown enum value is refused by validation, also as BAD_USER_INPUT.
    let body = t.gql(LIST, json!({ "sort": "COLOR" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn user_lists_its_own_orders() {
    let t = TestApp::new().await;
    let ada = t.create_user("ada@example.com", 700).await;
    let bob = t.create_user("bob@example.com", 0).await;
    t.create_order(ada, &[(1, 100)]).await;
    t.create_order(ada, &[(2, 100)]).await;
    t.create_order(bob, &[(3, 100)]).await;
    let data = t
        .gql_data(
            "query($id: ID!) { user(id: $id) { email balanceCents orders(perPage: 1) { nodes { userId totalCents } pageInfo { totalCount hasNextPage } } } }",
            json!({ "id": ada.to_string() }),
        )
        .await;
    assert_eq!(data["user"]["email"], "ada@example.com");
    assert_eq!(data["user"]["balanceCents"], 700);
    assert_eq!(data["user"]["orders"]["pageInfo"]["totalCount"], 2);
    assert_eq!(data["user"]["orders"]["nodes"][0]["userId"], json!(ada.to_string()));
    // Newest first.
    assert_eq!(data["user"]["orders"]["nodes"][0]["totalCents"], 200);
    let data = t.gql_data("{ user(id: \"424242\") { id } }", json!({})).await;
    assert_eq!(data["user"], Value::Null);
    assert_eq!(id(&json!(bob.to_string())), bob);
}

#[tokio::test]
async fn response_fields_follow_the_selection_order() {
    let t = TestApp::new().await;
    t.seed(3, 12).await;
    let query = "query Page {
        orders(perPage: 12) { nodes { ...Money events { kind } user { email id } number items { sku } payments { id } refunds { id } } pageInfo { totalCount page } }
        first: order(id: \"1\") { refunds { id } ... on Order { zeta: number } id }
      }
      fragment Money on Order { totalCents refundedCents }";
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    for _ in 0..5 {
        let data = t.gql_data(query, json!({})).await;
        assert_eq!(keys(&data), ["orders", "first"]);
        assert_eq!(keys(&data["orders"]), ["nodes", "pageInfo"]);
        for node in data["orders"]["nodes"].as_array().unwrap() {
            assert_eq!(
                keys(node),
                ["totalCents", "refundedCents", "events", "user", "number", "items", "payments", "refunds"]
            );
            assert_eq!(keys(&node["user"]), ["email", "id"]);
        }
        assert_eq!(keys(&data["orders"]["pageInfo"]), ["totalCount", "page"]);
        assert_eq!(keys(&data["first"]), ["refunds", "zeta", "id"]);
    }
}

/// A query text is parsed once and kept; the kept document serves later variables, and a
/// query that does not parse is reported every time and never kept.
#[tokio::test]
async fn parsed_queries_are_kept_by_text() {
    let t = TestApp::new().await;
    t.seed(2, 6).await;
    let query = "query($id: ID!) { order(id: $id) { id items { sku } } }";
    let before = t.app.documents().len();
    let first = t.gql_data(query, json!({ "id": "1" })).await;
    let second = t.gql_data(query, json!({ "id": "2" })).await;
    assert_eq!((first["order"]["id"].as_str(), second["order"]["id"].as_str()), (Some("1"), Some("2")));
    assert_eq!(t.app.documents().len(), before + 1);
    for _ in 0..2 {
        let body = t.gql("{ order(id: \"1\") { id ", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    }
    assert_eq!(t.app.documents().len(), before + 1);
}
