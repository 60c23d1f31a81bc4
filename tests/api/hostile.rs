//! Hostile documents and requests, each a defect found by attacking the service: none may
//! crash, stall, bloat or mislead it, with or without a key.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::domain::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, error_code, id};

/// Sends `query` as `key` (or with no key) and returns the body; fails if the answer takes
/// longer than a hang guard.
async fn ask(t: &TestApp, key: Option<&str>, query: &str) -> (StatusCode, Value, Duration) {
    let mut builder = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = builder.body(Body::from(json!({ "query": query }).to_string())).unwrap();
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(20), t.send(request)).await.expect("answered, not hung");
    (response.status, response.body, started.elapsed())
}

/// Asserts a refusal naming `needle` that sent no SQL at all (not even the key lookup).
async fn refused(t: &TestApp, key: Option<&str>, query: &str, needle: &str) -> Duration {
    let before = t.app.statements().get();
    let (status, body, took) = ask(t, key, query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(needle), "expected {needle:?} in {message:?}");
    assert_eq!(t.app.statements().get(), before, "a refused query sends no SQL");
    took
}

/// The service still answers after the attack.
async fn still_serving(t: &TestApp) {
    let body = t.gql("{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn a_fragment_cycle_is_refused_not_a_crash() {
    let t = TestApp::new().await;
    let user = t.create_user("cycle@example.com", 0).await;
    let customer = t.key(Role::Customer, Some(user)).await;
    for (key, query) in [
        (Some(customer.as_str()), "query { ...A } fragment A on Query { ...A }"),
        (
            Some(customer.as_str()),
            "query { ...A } fragment A on Query { ...B } fragment B on Query { orders { nodes { ...A } } }",
        ),
        (None, "query { orders { nodes { ...O } } } fragment O on Order { user { orders { nodes { ...O } } } }"),
    ] {
        refused(&t, key, query, "fragment cycles are not allowed").await;
    }
    still_serving(&t).await;
}

#[tokio::test]
async fn exponential_fragments_are_refused_at_once_without_a_key() {
    let t = TestApp::new().await;
    // 36 fragments, each spreading the next twice (2^36 expansions), the last spreading a
    // fragment that does not exist: about 1.3 KB.
    let mut query = String::from("query { ...F0 }\n");
    for i in 0..36 {
        query.push_str(&format!("fragment F{i} on Query {{ ...F{n} ...F{n} }}\n", n = i + 1));
    }
    query.push_str("fragment F36 on Query { ...Missing }\n");
    assert!(query.len() < 1500);
    refused(&t, None, &query, "does not define").await;
    // Defined all the way down: refused by its expanded size instead.
    let defined = query.replace("...Missing", "__typename");
    refused(&t, None, &defined, "GRAPHQL_MAX_FIELDS").await;
    still_serving(&t).await;
}

#[tokio::test]
async fn nested_pages_are_refused_by_their_product_before_any_sql() {
    let t = TestApp::new().await;
    let user = t.create_user("fanout@example.com", 0).await;
    let customer = t.key(Role::Customer, Some(user)).await;
    let query = "{ orders(perPage:100){nodes{user{orders(perPage:100){nodes{user{orders(perPage:100){nodes{id items{id} payments{id}}}}}}}}} }";
    refused(&t, Some(&t.admin_key), query, "GRAPHQL_MAX_COST").await;
    refused(&t, Some(&customer), query, "GRAPHQL_MAX_COST").await;
    // Page sizes given by variables count too.
    let before = t.app.statements().get();
    let response = t
        .gql_as(
            &t.admin_key,
            "query($n: Int!) { orders(perPage: $n) { nodes { user { orders(perPage: $n) { nodes { items { id } } } } } } }",
            json!({ "n": 100 }),
        )
        .await;
    assert!(response.body["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_COST"), "{}", response.body);
    assert_eq!(t.app.statements().get(), before);
    // The same shape with small pages runs.
    let ok = t
        .gql_as(
            &t.admin_key,
            "query($n: Int!) { orders(perPage: $n) { nodes { user { orders(perPage: $n) { nodes { items { id } } } } } } }",
            json!({ "n": 5 }),
        )
        .await;
    assert!(ok.body.get("errors").is_none(), "{}", ok.body);
}

#[tokio::test]
async fn orders_in_sibling_lists_do_not_repeat_their_rows() {
    let t = TestApp::new().await;
    let user = t.create_user("siblings@example.com", 0).await;
    let one = t.create_order(user, &[(1, 100)]).await;
    let two = t.create_order(user, &[(1, 200), (2, 300)]).await;
    let query = "{ orders(perPage:2){nodes{id user{orders(perPage:2){nodes{id items{id} user{orders(perPage:2){nodes{id items{id} payments{id}}}}}}}}} }";
    let data = t.gql_data(query, json!({})).await;
    let expected = |order: &Value| if order["id"] == one["id"] { 1 } else { 2 };
    let mut seen = 0;
    for outer in data["orders"]["nodes"].as_array().unwrap() {
        for middle in outer["user"]["orders"]["nodes"].as_array().unwrap() {
            let lists = std::iter::once(middle).chain(middle["user"]["orders"]["nodes"].as_array().unwrap());
            for order in lists {
                let items: Vec<i64> = order["items"].as_array().unwrap().iter().map(|i| id(&i["id"])).collect();
                let mut unique = items.clone();
                unique.dedup();
                assert_eq!(items, unique, "no item repeated in {order}");
                assert_eq!(items.len(), expected(order), "order {} has its own items only", order["id"]);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 2 * 2 * 3, "every nested order was checked");
    assert!(two["id"].is_string());
}

/// Sends one of each kind of request with the operation name `name`.
async fn named_requests(t: &TestApp, name: &str) {
    for (query, key) in [
        (format!("query {name} {{ __typename }}"), None),
        (format!("query {name} {{ __typename"), None),
        (format!("query {name} {{ orders(perPage: 1) {{ nodes {{ id }} }} }}"), Some(t.admin_key.as_str())),
    ] {
        let mut builder = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = json!({ "query": query, "operationName": name }).to_string();
        t.send(builder.body(Body::from(body)).unwrap()).await;
    }
}

#[tokio::test]
async fn operation_names_never_become_metric_labels() {
    let t = TestApp::new().await;
    named_requests(&t, "Warmup").await;
    t.get("/metrics", None).await; // its own series
    let before = t.get("/metrics", None).await.body.as_str().unwrap().lines().count();
    for i in 0..50 {
        named_requests(&t, &format!("Probe{i}{}", "x".repeat(1000))).await;
    }
    let text = t.get("/metrics", None).await.body.as_str().unwrap().to_owned();
    assert!(!text.contains("Probe"), "a client's operation name reached /metrics");
    assert_eq!(text.lines().count(), before, "150 requests of 50 new names added no series");
}

#[tokio::test]
async fn directives_are_bounded() {
    let t = TestApp::new().await;
    let many: String = (0..60).map(|_| "@include(if: true) ").collect();
    refused(&t, None, &format!("{{ __typename {many} }}"), "GRAPHQL_MAX_DIRECTIVES").await;
    let few: String = (0..3).map(|_| "@include(if: true) ").collect();
    let body = t.gql(&format!("{{ __typename {few} }}"), json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

#[tokio::test]
async fn deep_brackets_are_refused_before_parsing() {
    let t = TestApp::new().await;
    let deep = format!("{{ orders(filter: {}) {{ pageInfo {{ page }} }} }}", "[".repeat(50_000));
    refused(&t, None, &deep, "deeper than 64").await;
    let selections = format!("{}{}", "{ a ".repeat(20_000), "}".repeat(20_000));
    refused(&t, None, &selections, "deeper than 64").await;
    still_serving(&t).await;
}

#[tokio::test]
async fn only_documents_that_ran_are_kept_parsed() {
    let t = TestApp::new().await;
    let cache = t.app.documents();
    // Without a key, or failing validation, or over a limit: nothing is kept.
    ask(&t, None, "{ orders { nodes { id } } }").await;
    ask(&t, Some(&t.admin_key), "{ orders { nodes { nope } } }").await;
    ask(&t, Some(&t.admin_key), "{ a: __typename ...X } fragment X on Query { ...X }").await;
    assert_eq!(cache.len(), 0, "nothing kept before it ran");
    // Distinct unauthenticated documents never fill it.
    for i in 0..600 {
        ask(&t, None, &format!("{{ orders(page: {i}) {{ nodes {{ id }} }} }}")).await;
    }
    assert_eq!(cache.len(), 0);
    let (_, body, _) = ask(&t, Some(&t.admin_key), "{ orders { nodes { id } } }").await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(cache.len(), 1, "a document that ran is kept");
    assert!(cache.bytes() <= 1024 * 1024);
}

#[tokio::test]
async fn a_second_mutation_in_one_request_answers_with_fresh_rows() {
    let t = TestApp::new().await;
    let (user, order) = crate::mutations::order_of(&t, 0, 1_000).await;
    assert_eq!(crate::mutations::pay(&t, order).await.status, StatusCode::OK);
    let fields = "refundedCents refunds { amountCents } user { balanceCents } events { kind }";
    let query = format!(
        "mutation($id: ID!) {{ a: refundOrder(input: {{ id: $id, amountCents: 100 }}) {{ {fields} }} \
         b: refundOrder(input: {{ id: $id, amountCents: 200, creditBalance: true }}) {{ {fields} }} }}"
    );
    let data = t.gql_data(&query, json!({ "id": order.to_string() })).await;
    assert_eq!(data["a"]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(data["b"]["refundedCents"], 300);
    assert_eq!(data["b"]["refunds"].as_array().unwrap().len(), 2, "{data}");
    assert_eq!(data["b"]["user"]["balanceCents"], 200, "the credit shows in the second answer");
    let refunded = data["b"]["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "refunded").count();
    assert_eq!(refunded, 2, "{data}");
    assert!(user > 0);
}

#[tokio::test]
async fn another_users_order_costs_no_nested_loading() {
    let t = TestApp::new().await;
    let (_, mine) = crate::mutations::order_of(&t, 0, 100).await;
    let (owner, theirs) = crate::mutations::order_of(&t, 0, 100).await;
    assert_ne!(mine, theirs);
    let me = t.create_user("looker@example.com", 0).await;
    let customer = t.key(Role::Customer, Some(me)).await;
    let nested = "query($id: ID!) { order(id: $id) { id items { name } payments { id } refunds { id } events { kind } user { email } } }";
    let before = t.app.statements().get();
    let response = t.gql_as(&customer, nested, json!({ "id": theirs.to_string() })).await;
    assert_eq!(response.body["data"]["order"], Value::Null, "{}", response.body);
    // The key lookup and the order itself; nothing it nests.
    assert_eq!(t.app.statements().get() - before, 2);
    let admin = t.gql_data(nested, json!({ "id": theirs.to_string() })).await;
    assert_eq!(admin["order"]["items"][0]["name"], "Item 0", "an admin still gets it all");
    assert!(owner > 0);
}

#[tokio::test]
async fn customers_see_no_staff_names_notes_or_provider_details_in_events() {
    let t = TestApp::new().await;
    let (user, order) = crate::mutations::order_of(&t, 0, 1_000).await;
    let paid = crate::mutations::post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/pay"),
        &t.admin_key,
        json!({ "reference": "BANK-INTERNAL-77", "note": "internal: customer phoned twice, suspicious" }),
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK);
    let customer = t.key(Role::Customer, Some(user)).await;
    let query = "query($id: ID!) { order(id: $id) { events { kind actor data } } }";
    let seen = t.gql_as(&customer, query, json!({ "id": order.to_string() })).await.body;
    let text = seen.to_string();
    assert!(seen["data"]["order"]["events"].as_array().unwrap().len() >= 2, "{seen}");
    for secret in ["test-admin", "suspicious", "BANK-INTERNAL-77"] {
        assert!(!text.contains(secret), "a customer saw {secret:?}: {text}");
    }
    assert!(text.contains("\"actor\":\"staff\""), "{text}");
    // Staff still see everything.
    let staff = t.gql(query, json!({ "id": order.to_string() })).await.to_string();
    assert!(staff.contains("suspicious") && staff.contains("test-admin"), "{staff}");
}

#[tokio::test]
async fn graphiql_prefills_the_dev_key_only_for_loopback_hosts() {
    let config = billing_api::config::Config { graphiql_key: Some("bk_dev_key_for_test".into()), ..Default::default() };
    let t = TestApp::with_config(config).await;
    for (host, shown) in [
        ("127.0.0.1:8080", true),
        ("localhost:8080", true),
        ("[::1]:8080", true),
        ("attacker.example:8080", false),
        ("127.0.0.1.attacker.example", false),
    ] {
        let request = Request::get("/graphiql").header(header::HOST, host).body(Body::empty()).unwrap();
        let page = t.send(request).await.body.as_str().unwrap().to_owned();
        assert_eq!(page.contains("bk_dev_key_for_test"), shown, "Host {host}");
    }
    let request = Request::get("/graphiql").body(Body::empty()).unwrap();
    assert!(!t.send(request).await.body.as_str().unwrap().contains("bk_dev_key_for_test"), "no Host, no key");
}

/// Every sort the order list offers is served by an index (no full Sort of the table),
/// with the ORDER BY the list query uses.
#[tokio::test]
async fn every_order_sort_has_an_index() {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plan: String,
    }
    let t = TestApp::new().await;
    let mut conn = AsyncPgConnection::establish(&t.url).await.unwrap();
    conn.batch_execute(
        "SET enable_seqscan = off; SET enable_sort = off;
         CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
         DECLARE r record; BEGIN FOR r IN EXECUTE 'EXPLAIN ' || q LOOP RETURN NEXT r.\"QUERY PLAN\"; END LOOP; END $$;",
    )
    .await
    .unwrap();
    for order_by in [
        "id ASC",
        "id DESC",
        "number ASC, id ASC",
        "number DESC, id DESC",
        "status ASC, id ASC",
        "status DESC, id DESC",
        "total_cents ASC, id ASC",
        "total_cents DESC, id DESC",
        "created_at ASC, id ASC",
        "created_at DESC, id DESC",
        "updated_at DESC, id DESC",
        "paid_at ASC NULLS LAST, id ASC",
        "paid_at DESC NULLS LAST, id DESC",
    ] {
        let query = format!("SELECT id FROM orders ORDER BY {order_by} LIMIT 20");
        let plan: Plan = diesel::sql_query("SELECT string_agg(p, E'\\n') AS plan FROM pg_temp.plan($1) p")
            .bind::<diesel::sql_types::Text, _>(&query)
            .get_result(&mut conn)
            .await
            .unwrap();
        // A full sort of the table; an incremental sort over a unique presorted key is fine.
        let full_sort =
            plan.plan.lines().any(|line| line.trim_start().trim_start_matches("->  ").starts_with("Sort  ("));
        assert!(!full_sort, "ORDER BY {order_by} needs a sort:\n{}", plan.plan);
    }
}

/// NUL is refused where it enters, naming where it is (not by reading PostgreSQL's
/// English error messages), and JSON objects are bounded in size and depth.
#[tokio::test]
async fn nul_and_oversized_json_are_refused_at_the_door_naming_the_field() {
    let t = TestApp::new().await;
    let user = t.create_user("nul@example.com", 0).await;
    let create = "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }";
    let order = |metadata: Value| {
        json!({ "input": { "userId": user.to_string(), "currency": "USD", "paymentMethod": "card",
            "items": [{ "name": "A", "quantity": 1, "unitPriceCents": 5 }], "metadata": metadata } })
    };
    let mut deep = json!(1);
    for _ in 0..9 {
        deep = json!({ "d": deep });
    }
    for (metadata, needle) in [
        (json!({ "note": "a\u{0}b" }), "$input.metadata.note must not contain NUL"),
        (json!({ "pad": "x".repeat(9 * 1024) }), "metadata is larger than 8192 bytes"),
        (deep, "metadata is nested deeper than 8 levels"),
    ] {
        let body = t.gql(create, order(metadata)).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "expected {needle:?} in {message:?}");
    }
    assert_eq!(crate::graphql_reads::count(&t, "SELECT count(*) AS n FROM orders").await, 0, "nothing was created");
    let (_, paid) = crate::mutations::order_of(&t, 0, 100).await;
    assert_eq!(crate::mutations::pay(&t, paid).await.status, StatusCode::OK);
    let response = crate::mutations::post_json(
        &t,
        &format!("/api/v1/admin/orders/{paid}/refund"),
        &t.admin_key,
        json!({ "amount_cents": 5, "reason": "ok\u{0}" }),
    )
    .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(response.body["message"].as_str().unwrap().starts_with("reason must not contain NUL"), "{}", response.body);
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_on_both_faces() {
    let config =
        billing_api::config::Config { rate_limit_per_second: Some(1), rate_limit_burst: 3, ..Default::default() };
    let t = TestApp::with_config(config).await;
    let busy = t.key(Role::Support, None).await;
    for _ in 0..3 {
        let ok = t.gql_as(&busy, "{ __typename }", json!({})).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }
    let limited = t.gql_as(&busy, "{ __typename }", json!({})).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert_eq!(error_code(&limited.body), "RATE_LIMITED");
    assert!(limited.headers[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let rest = t.get("/api/v1/admin/orders", Some(&busy)).await;
    assert_eq!(rest.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(rest.body["code"], "RATE_LIMITED");
    assert!(rest.headers.contains_key(header::RETRY_AFTER));
    // Another key has its own allowance.
    let other = t.gql_as(&t.admin_key, "{ __typename }", json!({})).await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test]
async fn an_order_takes_at_most_five_open_payment_attempts() {
    let t = TestApp::new().await;
    let (user, order) = crate::mutations::order_of(&t, 0, 100).await;
    let customer = t.key(Role::Customer, Some(user)).await;
    let start = "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }";
    for _ in 0..5 {
        let ok = t.gql_as(&customer, start, json!({ "o": order.to_string() })).await;
        assert!(ok.body.get("errors").is_none(), "{}", ok.body);
    }
    let refused = t.gql_as(&customer, start, json!({ "o": order.to_string() })).await;
    assert_eq!(error_code(&refused.body), "CONFLICT", "{}", refused.body);
    assert!(refused.body["errors"][0]["message"].as_str().unwrap().contains("at most 5"));
    let open =
        crate::graphql_reads::count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await;
    assert_eq!(open, 5);
}

/// Behind the cost analysis, a ceiling on what one request reads: rows and statements.
#[tokio::test]
async fn a_request_past_its_row_or_statement_ceiling_is_stopped() {
    let config = billing_api::config::Config { graphql_max_rows: 14, graphql_max_statements: 2, ..Default::default() };
    let t = TestApp::with_config(config).await;
    let mut users = Vec::new();
    for i in 0..4 {
        let user = t.create_user(&format!("ceiling{i}@example.com"), 0).await;
        t.create_order(user, &[(1, 100), (1, 200), (1, 300)]).await;
        users.push(user);
    }
    // 4 orders and 12 items: more than 14 rows.
    let rows = t.gql("{ orders { nodes { id items { id } } } }", json!({})).await;
    assert!(rows["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_ROWS"), "{rows}");
    // The page and the users (2 statements, 8 rows), then a page query per user: refused.
    let statements = t.gql("{ orders { nodes { user { orders { nodes { id } } } } } }", json!({})).await;
    assert!(statements["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_STATEMENTS"), "{statements}");
    // Within both, the same service answers.
    let ok = t.gql_data("{ orders(perPage: 2) { nodes { id } } }", json!({})).await;
    assert_eq!(ok["orders"]["nodes"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_key_of_the_wrong_shape_costs_no_lookup() {
    let t = TestApp::new().await;
    for bad in
        ["bk_wrong", "bk_0000", &format!("bk_{}", "G".repeat(48)), &format!("bk_{}", "a".repeat(5000)), "sk_live_x"]
    {
        let before = t.app.statements().get();
        let response = t.gql_as(bad, "{ __typename }", json!({})).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(t.app.statements().get(), before, "{bad}: no SQL for a key that cannot exist");
    }
    let before = t.app.statements().get();
    let unknown = t.gql_as(&format!("bk_{}", "ab".repeat(24)), "{ __typename }", json!({})).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.app.statements().get() - before, 1, "a well-formed unknown key is looked up once");
}
