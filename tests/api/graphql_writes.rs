use serde_json::{Value, json};

use crate::common::{TestApp, error_code, id};
use crate::graphql_reads::count;

const CREATE_ORDER: &str = "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id number totalCents currency status paymentStatus items { totalCents } events { kind actor data } } }";

fn order_input(user: i64) -> Value {
    json!({
        "userId": user.to_string(),
        "currency": "EUR",
        "paymentMethod": "bank_transfer",
        "items": [
            { "name": "Pro plan", "sku": "PRO", "quantity": 3, "unitPriceCents": 1_999 },
            { "name": "Setup", "quantity": 1, "unitPriceCents": 5_000, "metadata": { "onsite": true } }
        ],
        "planId": "7",
        "planSnapshot": { "plan": "pro", "interval": "month" },
        "metadata": { "campaign": "spring" }
    })
}

#[tokio::test]
async fn create_order_totals_its_items_and_records_an_event() {
    let t = TestApp::new().await;
    let user = t.create_user("buyer@example.com", 0).await;
    let data = t.gql_data(CREATE_ORDER, json!({ "input": order_input(user) })).await;
    let order = &data["createOrder"];
    assert_eq!(order["totalCents"], 3 * 1_999 + 5_000);
    assert_eq!(order["items"], json!([{ "totalCents": 5_997 }, { "totalCents": 5_000 }]));
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["paymentStatus"], "UNPAID");
    assert_eq!(order["events"][0]["kind"], "created");
    assert_eq!(order["events"][0]["actor"], "test-admin");
    assert_eq!(order["events"][0]["data"]["total_cents"], 10_997);
    assert_eq!(
        count(&t, "SELECT count(*) AS n FROM orders o WHERE total_cents = (SELECT sum(total_cents) FROM order_items i WHERE i.order_id = o.id)").await,
        1
    );
}

#[tokio::test]
async fn bad_order_input_names_the_field_and_changes_nothing() {
    let t = TestApp::new().await;
    let user = t.create_user("careful@example.com", 0).await;
    let with = |path: &[&str], value: Value| {
        let mut input = order_input(user);
        let mut target = &mut input;
        for key in &path[..path.len() - 1] {
            target = if let Ok(index) = key.parse::<usize>() { &mut target[index] } else { &mut target[*key] };
        }
        target[path[path.len() - 1]] = value;
        input
    };
    let cases = [
        (with(&["items"], json!([])), "BAD_USER_INPUT", "items must hold 1 to 100 items"),
        (with(&["items", "0", "quantity"], json!(0)), "BAD_USER_INPUT", "items[0].quantity must be between 1"),
        (with(&["items", "1", "quantity"], json!(-2)), "BAD_USER_INPUT", "items[1].quantity"),
        (with(&["items", "0", "unitPriceCents"], json!(0)), "BAD_USER_INPUT", "items[0].unitPriceCents"),
        (with(&["items", "0", "unitPriceCents"], json!(-100)), "BAD_USER_INPUT", "items[0].unitPriceCents"),
        (
            with(&["items", "0", "unitPriceCents"], json!(9_000_000_000_000_000_i64)),
            "BAD_USER_INPUT",
            "items[0].unitPriceCents",
        ),
        (with(&["items", "0", "name"], json!("  ")), "BAD_USER_INPUT", "items[0].name"),
        (with(&["items", "1", "metadata"], json!([1, 2])), "BAD_USER_INPUT", "items[1].metadata must be a JSON object"),
        (with(&["currency"], json!("usd")), "BAD_USER_INPUT", "currency must be a 3-letter upper-case"),
        (with(&["currency"], json!("EURO")), "BAD_USER_INPUT", "currency"),
        (with(&["paymentMethod"], json!("Credit Card")), "BAD_USER_INPUT", "paymentMethod must be a lower-case word"),
        (with(&["metadata"], json!("text")), "BAD_USER_INPUT", "metadata must be a JSON object"),
        (with(&["planSnapshot"], json!(3)), "BAD_USER_INPUT", "planSnapshot must be a JSON object"),
        (with(&["planId"], json!("0")), "BAD_USER_INPUT", "input.planId"),
        (with(&["userId"], json!("abc")), "BAD_USER_INPUT", "input.userId must be a positive decimal id"),
        (with(&["userId"], json!("987654")), "NOT_FOUND", "user 987654 not found"),
    ];
    for (input, code, needle) in cases {
        let body = t.gql(CREATE_ORDER, json!({ "input": input })).await;
        assert_eq!(error_code(&body), code, "{input}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "expected {needle:?} in {message:?}");
    }
    // Wrong GraphQL types are refused by validation.
    let mut input = order_input(user);
    input["items"][0]["quantity"] = json!("three");
    let body = t.gql(CREATE_ORDER, json!({ "input": input })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 0);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_items").await, 0);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events").await, 0);
}

const CREATE_USER: &str =
    "mutation($input: CreateUserInput!) { createUser(input: $input) { id email name balanceCents } }";

#[tokio::test]
async fn create_user_records_the_opening_balance_in_the_ledger() {
    let t = TestApp::new().await;
    let data = t
        .gql_data(
            CREATE_USER,
            json!({ "input": { "email": "Rich@Example.com", "name": "Rich", "balanceCents": 12_345 } }),
        )
        .await;
    let user = id(&data["createUser"]["id"]);
    assert_eq!(data["createUser"]["balanceCents"], 12_345);
    assert_eq!(
        count(&t, &format!("SELECT count(*) AS n FROM balance_ledger WHERE user_id = {user} AND amount_cents = 12345 AND balance_after_cents = 12345 AND kind = 'opening_balance'")).await,
        1
    );
    let zero = t.create_user("zero@example.com", 0).await;
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM balance_ledger WHERE user_id = {zero}")).await, 0);
}

#[tokio::test]
async fn bad_user_input_is_refused() {
    let t = TestApp::new().await;
    t.create_user("taken@example.com", 0).await;
    for (input, code, needle) in [
        (json!({ "email": "not-an-email", "name": "X" }), "BAD_USER_INPUT", "email"),
        (json!({ "email": "a@b.co", "name": "" }), "BAD_USER_INPUT", "name must be 1 to 200"),
        (json!({ "email": "neg@example.com", "name": "N", "balanceCents": -1 }), "BAD_USER_INPUT", "balanceCents"),
        (json!({ "email": "TAKEN@example.com", "name": "Dup" }), "CONFLICT", "already exists"),
    ] {
        let body = t.gql(CREATE_USER, json!({ "input": input })).await;
        assert_eq!(error_code(&body), code, "{input}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(needle), "{body}");
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM users").await, 1);
}

const CREATE_PAYMENT: &str = "mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id orderId status provider paymentMethod amountCents currency } }";

#[tokio::test]
async fn create_payment_starts_a_pending_attempt() {
    let t = TestApp::new().await;
    let user = t.create_user("payer@example.com", 0).await;
    let order = t.create_order(user, &[(2, 2_500)]).await;
    let data =
        t.gql_data(CREATE_PAYMENT, json!({ "input": { "orderId": order["id"], "paymentMethod": "card" } })).await;
    let payment = &data["createPayment"];
    assert_eq!(payment["status"], "PENDING");
    assert_eq!(payment["provider"], "manual");
    assert_eq!(payment["amountCents"], 5_000);
    assert_eq!(payment["orderId"], order["id"]);
    let data = t
        .gql_data("query($id: ID!) { order(id: $id) { paymentStatus events { kind } } }", json!({ "id": order["id"] }))
        .await;
    assert_eq!(data["order"]["paymentStatus"], "PROCESSING");
    assert_eq!(data["order"]["events"], json!([{ "kind": "created" }, { "kind": "payment_started" }]));
}

#[tokio::test]
async fn create_payment_refuses_orders_that_cannot_be_paid() {
    let t = TestApp::new().await;
    t.seed(2, 20).await;
    // Seed bucket 17 is a cancelled order, bucket 0 a paid one.
    for sql_status in [3, 2] {
        let order_id = count(&t, &format!("SELECT min(id) AS n FROM orders WHERE status = {sql_status}")).await;
        let before = count(&t, "SELECT count(*) AS n FROM payments").await;
        let body = t.gql(CREATE_PAYMENT, json!({ "input": { "orderId": order_id.to_string() } })).await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
        assert_eq!(count(&t, "SELECT count(*) AS n FROM payments").await, before);
    }
    let body = t.gql(CREATE_PAYMENT, json!({ "input": { "orderId": "777777" } })).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let body = t.gql(CREATE_PAYMENT, json!({ "input": { "orderId": "1", "paymentMethod": "Card!" } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}
