//! Refund requests (seed 004): ask, decide, issue once; who may do what; races.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::graphql_reads::count;
use crate::merchants::error_code;
use crate::mutations::{order_of, pay};
use billing_api::domain::Role;

const REQUEST: &str = "mutation($o: ID!, $a: Int!, $r: String!) { requestRefund(input: { orderId: $o, amountCents: $a, reason: $r }) { id status valid amountCents requester requesterRole } }";
const APPROVE: &str = "mutation($id: ID!) { approveRefundRequest(id: $id, responseReason: \"ok\") { id status valid confirmedAt issuedAt } }";
const DENY: &str =
    "mutation($id: ID!) { denyRefundRequest(id: $id, responseReason: \"used\") { id status valid responseReason } }";
const CANCEL: &str = "mutation($id: ID!) { cancelRefundRequest(id: $id) { id status valid } }";

/// A paid order of a customer with its key.
async fn paid_order(t: &TestApp, total: i64) -> (i64, String) {
    let (user, order) = order_of(t, 0, total).await;
    assert_eq!(pay(t, order).await.status, axum::http::StatusCode::OK);
    (order, t.key(Role::Customer, Some(user)).await)
}

async fn ask(t: &TestApp, key: &str, order: i64, amount: i64) -> Value {
    t.gql_as(key, REQUEST, json!({ "o": order.to_string(), "a": amount, "r": "broken on arrival" })).await.body
}

#[tokio::test]
async fn a_customer_asks_an_admin_approves_and_the_refund_is_issued_once() {
    let t = TestApp::new().await;
    let (order, customer) = paid_order(&t, 1000).await;
    let asked = ask(&t, &customer, order, 400).await;
    let request = asked["data"]["requestRefund"].clone();
    assert_eq!(request["status"], "PENDING", "{asked}");
    assert_eq!(request["valid"], true);
    assert_eq!(request["requesterRole"], "customer");
    let approved = t.gql_data(APPROVE, json!({ "id": request["id"] })).await;
    let approved = &approved["approveRefundRequest"];
    assert_eq!(approved["status"], "ISSUED", "{approved}");
    assert!(approved["confirmedAt"].is_string() && approved["issuedAt"].is_string());
    assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 400);
    // Approving again moves no more money.
    let again = t.gql(APPROVE, json!({ "id": request["id"] })).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM refunds WHERE order_id = {order}")).await, 1);
    // The history and the order's view, as the customer sees them.
    let seen = t
        .gql_as(
            &customer,
            "query($id: ID!) { order(id: $id) { refundRequests { status history { from to role actor } } } }",
            json!({ "id": order.to_string() }),
        )
        .await
        .body;
    let history = seen["data"]["order"]["refundRequests"][0]["history"].as_array().unwrap().clone();
    let steps: Vec<(Value, Value)> = history.iter().map(|h| (h["from"].clone(), h["to"].clone())).collect();
    assert_eq!(
        steps,
        vec![
            (Value::Null, json!("PENDING")),
            (json!("PENDING"), json!("PROCESSING")),
            (json!("PROCESSING"), json!("ISSUED"))
        ],
        "{seen}"
    );
    assert_eq!(history[1]["actor"], "staff", "customers do not see staff key names");
    let kinds = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind LIKE 'refund_request_%'"),
    )
    .await;
    assert_eq!(kinds, 3);
}

#[tokio::test]
async fn who_may_do_what() {
    let t = TestApp::new().await;
    let (order, customer) = paid_order(&t, 1000).await;
    let (_, stranger) = paid_order(&t, 500).await;
    let support = t.key(Role::Support, None).await;
    // Another customer's order is not found; support may not ask; bad amounts are refused.
    assert_eq!(error_code(&ask(&t, &stranger, order, 100).await), "NOT_FOUND");
    assert_eq!(error_code(&ask(&t, &support, order, 100).await), "FORBIDDEN");
    assert_eq!(error_code(&ask(&t, &customer, order, 0).await), "BAD_USER_INPUT");
    assert_eq!(error_code(&ask(&t, &customer, order, 1001).await), "CONFLICT");
    let request = ask(&t, &customer, order, 100).await["data"]["requestRefund"]["id"].clone();
    // A customer cannot decide; another customer cannot see or cancel it.
    assert_eq!(error_code(&t.gql_as(&customer, APPROVE, json!({ "id": request })).await.body), "FORBIDDEN");
    assert_eq!(error_code(&t.gql_as(&stranger, CANCEL, json!({ "id": request })).await.body), "NOT_FOUND");
    let read = t.gql_as(&stranger, "query($id: ID!) { refundRequest(id: $id) { id } }", json!({ "id": request })).await;
    assert_eq!(read.body["data"]["refundRequest"], Value::Null);
    let list = t.gql_as(&stranger, "query { refundRequests { nodes { id } } }", json!({})).await;
    assert_eq!(list.body["data"]["refundRequests"]["nodes"], json!([]));
    // Support reads it.
    let read =
        t.gql_as(&support, "query($id: ID!) { refundRequest(id: $id) { status } }", json!({ "id": request })).await;
    assert_eq!(read.body["data"]["refundRequest"]["status"], "PENDING");
    // Deny needs a reason and ends it; it is no longer valid; nothing moved.
    let denied = t.gql_data(DENY, json!({ "id": request })).await;
    assert_eq!(denied["denyRefundRequest"]["status"], "DENIED");
    assert_eq!(denied["denyRefundRequest"]["valid"], false);
    assert_eq!(error_code(&t.gql_as(&customer, CANCEL, json!({ "id": request })).await.body), "CONFLICT");
    // A new request may follow; its requester cancels it.
    let second = ask(&t, &customer, order, 100).await["data"]["requestRefund"]["id"].clone();
    let cancelled = t.gql_as(&customer, CANCEL, json!({ "id": second })).await.body;
    assert_eq!(cancelled["data"]["cancelRefundRequest"]["status"], "CANCELLED", "{cancelled}");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 0);
    let filtered =
        t.gql_data("query { refundRequests(filter: { valid: false }) { nodes { status } } }", json!({})).await;
    assert_eq!(filtered["refundRequests"]["nodes"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_seller_asks_and_decides_for_its_own_stores_orders_only() {
    let t = TestApp::new().await;
    let a = crate::merchants::merchant(&t, "Seller A").await;
    let b = crate::merchants::merchant(&t, "Seller B").await;
    let body = crate::merchants::create(&t, &a.key, json!({ "amountCents": 800 })).await;
    let order: i64 = body["data"]["createMerchantOrder"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(pay(&t, order).await.status, axum::http::StatusCode::OK);
    assert_eq!(error_code(&ask(&t, &b.key, order, 100).await), "NOT_FOUND");
    let request = ask(&t, &a.key, order, 300).await["data"]["requestRefund"].clone();
    assert_eq!(request["requesterRole"], "merchant");
    assert_eq!(error_code(&t.gql_as(&b.key, APPROVE, json!({ "id": request["id"] })).await.body), "NOT_FOUND");
    let approved = t.gql_as(&a.key, APPROVE, json!({ "id": request["id"] })).await.body;
    assert_eq!(approved["data"]["approveRefundRequest"]["status"], "ISSUED", "{approved}");
    assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 300);
}

/// 10 concurrent requests by one customer on one order: one PENDING, nine CONFLICT.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_order_make_one() {
    let t = std::sync::Arc::new(TestApp::new().await);
    let (order, customer) = paid_order(&t, 1000).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (t, customer) = (t.clone(), customer.clone());
            tokio::spawn(async move { ask(&t, &customer, order, 100).await })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        let body = task.await.unwrap();
        codes.push(if body["data"]["requestRefund"].is_object() { "PENDING".to_owned() } else { error_code(&body) });
    }
    codes.sort();
    println!("10 concurrent requests: {codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "PENDING").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "CONFLICT").count(), 9, "{codes:?}");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refund_requests").await, 1);
}

/// An approve racing a cancel of the same request: exactly one wins, and the money moves
/// at most once. Repeated over fresh orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_racing_cancel_has_one_winner() {
    let t = std::sync::Arc::new(TestApp::new().await);
    let mut approvals = 0;
    for _ in 0..8 {
        let (order, customer) = paid_order(&t, 1000).await;
        let request = ask(&t, &customer, order, 700).await["data"]["requestRefund"]["id"].clone();
        let (t1, t2) = (t.clone(), t.clone());
        let (r1, r2) = (request.clone(), request.clone());
        let approve = tokio::spawn(async move { t1.gql(APPROVE, json!({ "id": r1 })).await });
        let cancel = tokio::spawn(async move { t2.gql_as(&customer, CANCEL, json!({ "id": r2 })).await.body });
        let (approved, cancelled) = (approve.await.unwrap(), cancel.await.unwrap());
        let approved_ok = approved["data"]["approveRefundRequest"].is_object();
        let cancelled_ok = cancelled["data"]["cancelRefundRequest"].is_object();
        assert!(approved_ok ^ cancelled_ok, "exactly one wins: {approved} / {cancelled}");
        approvals += usize::from(approved_ok);
        let refunded = count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await;
        assert_eq!(refunded, if approved_ok { 700 } else { 0 });
    }
    println!("approve vs cancel: {approvals} of 8 approvals won");
}

/// A request racing a direct admin refund: together they never exceed what was paid; an
/// approval the order can no longer cover is CONFLICT and the request is PENDING, not
/// valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_racing_a_direct_refund_never_overpays() {
    let t = std::sync::Arc::new(TestApp::new().await);
    for round in 0..6 {
        let (order, customer) = paid_order(&t, 1000).await;
        let request = ask(&t, &customer, order, 600).await["data"]["requestRefund"]["id"].clone();
        let (t1, t2) = (t.clone(), t.clone());
        let approve = tokio::spawn(async move { t1.gql(APPROVE, json!({ "id": request })).await });
        let direct = tokio::spawn(async move {
            t2.gql(
                "mutation($id: ID!) { refundOrder(input: { id: $id, amountCents: 600 }) { refundedCents } }",
                json!({ "id": order.to_string() }),
            )
            .await
        });
        let (approved, direct) = (approve.await.unwrap(), direct.await.unwrap());
        let refunded = count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await;
        assert!(refunded <= 1000, "round {round}: {refunded}");
        assert_eq!(refunded, 600, "round {round}: exactly one of the two refunds went through: {approved} / {direct}");
        let state = t
            .gql_data(
                "query($o: ID!) { refundRequests(filter: { orderId: $o }) { nodes { status valid } } }",
                json!({ "o": order.to_string() }),
            )
            .await;
        let node = &state["refundRequests"]["nodes"][0];
        if approved["data"]["approveRefundRequest"].is_object() {
            assert_eq!(node["status"], "ISSUED");
        } else {
            assert_eq!(error_code(&approved), "CONFLICT", "{approved}");
            assert_eq!((node["status"].clone(), node["valid"].clone()), (json!("PENDING"), json!(false)));
        }
    }
    crate::faults::assert_audit_clean(&t).await;
}

/// A page of refund requests with their history costs the same statements for 5 and 50.
#[tokio::test]
async fn a_page_costs_constant_statements() {
    let t = TestApp::new().await;
    for _ in 0..50 {
        let (order, customer) = paid_order(&t, 100).await;
        ask(&t, &customer, order, 10).await;
    }
    let query = "query($n: Int!) { refundRequests(perPage: $n) { nodes { id status valid history { to actor }
        order { id number totalCents refundedCents paymentStatus } } } }";
    let mut cost = Vec::new();
    for n in [5, 50] {
        let before = t.app.statements().get();
        let body = t.gql_data(query, json!({ "n": n })).await;
        cost.push(t.app.statements().get() - before);
        assert_eq!(body["refundRequests"]["nodes"].as_array().unwrap().len(), n as usize);
    }
    println!("statements for a page of 5 and of 50 refund requests with history and orders: {cost:?}");
    assert_eq!(cost[0], cost[1]);
}

/// Through a provider: a refusal puts the request back to PENDING; a dropped reply keeps
/// it PROCESSING until the janitor settles the refund, then it is ISSUED; the provider
/// holds one refund.
#[tokio::test]
async fn provider_failures_reopen_or_hold_the_request_and_the_money_moves_once() {
    use crate::fake_stripe::Fault;
    let (t, fake) = crate::faults::faulty().await;
    let order = crate::faults::paid_at_provider(&t, 1000).await;
    let user = count(&t, &format!("SELECT user_id AS n FROM orders WHERE id = {order}")).await;
    let customer = t.key(Role::Customer, Some(user)).await;
    let id = ask(&t, &customer, order, 400).await["data"]["requestRefund"]["id"].clone();
    fake.fail_next(&[Fault::Refuse]);
    let refused = t.gql(APPROVE, json!({ "id": id })).await;
    assert_eq!(error_code(&refused), "PROVIDER_ERROR", "{refused}");
    let state = "query($id: ID!) { refundRequest(id: $id) { status valid history { from to role } } }";
    let seen = t.gql_data(state, json!({ "id": id })).await;
    assert_eq!(seen["refundRequest"]["status"], "PENDING", "{seen}");
    assert_eq!(seen["refundRequest"]["history"][2]["role"], "system");
    let words = t
        .gql_as(&customer, "query($id: ID!) { refundRequest(id: $id) { history { reason } } }", json!({ "id": id }))
        .await
        .body;
    let reason = words["data"]["refundRequest"]["history"][2]["reason"].as_str().unwrap().to_owned();
    assert!(reason.starts_with("the payment provider refused refund"), "{reason}");
    // Approved again, the reply is lost: PROCESSING, OUTCOME_PENDING.
    fake.fail_next(&[Fault::DropReply]);
    let pending = t.gql(APPROVE, json!({ "id": id })).await;
    assert_eq!(error_code(&pending), "OUTCOME_PENDING", "{pending}");
    assert_eq!(t.gql_data(state, json!({ "id": id })).await["refundRequest"]["status"], "PROCESSING");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    assert_eq!(t.gql_data(state, json!({ "id": id })).await["refundRequest"]["status"], "ISSUED");
    assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 400);
    assert_eq!(fake.refunded_total(), 400, "the provider refunded once");
    crate::faults::assert_audit_clean(&t).await;
}

/// Two approvals of one request racing, and a request asked twice with one
/// Idempotency-Key: the money moves once, one request is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_approvals_and_replayed_requests_move_money_once() {
    let t = std::sync::Arc::new(TestApp::new().await);
    let mut wins = Vec::new();
    for _ in 0..6 {
        let (order, customer) = paid_order(&t, 1000).await;
        let id = ask(&t, &customer, order, 900).await["data"]["requestRefund"]["id"].clone();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (t, id) = (t.clone(), id.clone());
                tokio::spawn(async move { t.gql(APPROVE, json!({ "id": id })).await })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            let body = task.await.unwrap();
            ok += usize::from(body["data"]["approveRefundRequest"]["status"] == "ISSUED");
        }
        wins.push(ok);
        assert_eq!(count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await, 900);
        assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM refunds WHERE order_id = {order}")).await, 1);
    }
    println!("two approvals racing, ISSUED answers per round: {wins:?}");
    // The same request twice under one Idempotency-Key: one request, the same answer.
    let (order, customer) = paid_order(&t, 1000).await;
    let variables = json!({ "o": order.to_string(), "a": 100, "r": "twice" });
    let first = t.send(crate::idempotency::gql(&customer, "ask-once", REQUEST, variables.clone())).await;
    let second = t.send(crate::idempotency::gql(&customer, "ask-once", REQUEST, variables)).await;
    assert_eq!(
        first.body["data"]["requestRefund"]["id"], second.body["data"]["requestRefund"]["id"],
        "{}",
        second.body
    );
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM refund_requests WHERE order_id = {order}")).await, 1);
    crate::faults::assert_audit_clean(&t).await;
}
