//! Random sequences of money operations against a real database; after every step the
//! invariants must hold: refunded <= paid, balance >= 0, ledger sum = balance, legal
//! status pairs, paid orders have exactly one succeeded payment, nothing answers 5xx.

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use crate::callbacks::admin_callback;
use crate::common::TestApp;
use crate::graphql_reads::count;
use crate::mutations::{balance_checked, order_of, post_json};

#[derive(Debug, Clone)]
enum Op {
    StartPayment,
    Pay { charge_balance: bool },
    Refund { amount: i64, credit_balance: bool },
    Cancel,
    Callback { status: i64, attempt: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::StartPayment),
        any::<bool>().prop_map(|charge_balance| Op::Pay { charge_balance }),
        (1i64..700, any::<bool>()).prop_map(|(amount, credit_balance)| Op::Refund { amount, credit_balance }),
        Just(Op::Cancel),
        (1i64..=4, 0usize..3).prop_map(|(status, attempt)| Op::Callback { status, attempt }),
    ]
}

fn legal_pair(status: i64, payment_status: i64) -> bool {
    match status {
        1 => [1, 2, 4].contains(&payment_status),
        2 => [3, 5].contains(&payment_status),
        3 => (1..=6).contains(&payment_status),
        4 => payment_status == 6,
        _ => false,
    }
}

async fn check_invariants(t: &TestApp, user: i64, order: i64, step: &str) {
    let value = |column: &str| format!("SELECT {column}::bigint AS n FROM orders WHERE id = {order}");
    let total = count(t, &value("total_cents")).await;
    let refunded = count(t, &value("refunded_cents")).await;
    let status = count(t, &value("status")).await;
    let payment_status = count(t, &value("payment_status")).await;
    assert!((0..=total).contains(&refunded), "{step}: refunded {refunded} of {total}");
    assert_eq!(count(t, &value("refund_pending_cents")).await, 0, "{step}: nothing left reserved");
    let refunds = count(
        t,
        &format!(
            "SELECT coalesce(sum(amount_cents), 0)::bigint AS n FROM refunds WHERE order_id = {order} AND status = 2"
        ),
    )
    .await;
    assert_eq!(refunds, refunded, "{step}: refunded_cents is the sum of refunds");
    assert!(legal_pair(status, payment_status), "{step}: illegal pair ({status}, {payment_status})");
    let succeeded =
        count(t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 2")).await;
    let paid = [3, 5, 6].contains(&payment_status);
    assert_eq!(succeeded, i64::from(paid), "{step}: a paid order has exactly one succeeded payment");
    assert_eq!(count(t, &value("(paid_at IS NOT NULL)::int")).await, i64::from(paid), "{step}: paid_at iff paid");
    assert!(balance_checked(t, user).await >= 0, "{step}: balance never negative");
    crate::faults::assert_audit_clean(t).await;
}

async fn run_case(t: &TestApp, balance: i64, total: i64, ops: Vec<Op>) {
    let (user, order) = order_of(t, balance, total).await;
    let mut attempts: Vec<i64> = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let step = format!("step {index} {op:?} of {ops:?}");
        let status = match op {
            Op::StartPayment => {
                let body = t
                    .gql(
                        "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }",
                        json!({ "o": order.to_string() }),
                    )
                    .await;
                if body.get("errors").is_none() {
                    attempts.push(start_payment_id(&body));
                    StatusCode::OK
                } else {
                    assert_eq!(crate::common::error_code(&body), "CONFLICT", "{step}: {body}");
                    StatusCode::CONFLICT
                }
            }
            Op::Pay { charge_balance } => {
                post_json(
                    t,
                    &format!("/api/v1/admin/orders/{order}/pay"),
                    &t.admin_key,
                    json!({ "charge_balance": charge_balance }),
                )
                .await
                .status
            }
            Op::Refund { amount, credit_balance } => {
                post_json(
                    t,
                    &format!("/api/v1/admin/orders/{order}/refund"),
                    &t.admin_key,
                    json!({ "amount_cents": amount, "credit_balance": credit_balance }),
                )
                .await
                .status
            }
            Op::Cancel => {
                post_json(t, &format!("/api/v1/admin/orders/{order}/cancel"), &t.admin_key, json!({})).await.status
            }
            Op::Callback { status, attempt } => match attempts.get(*attempt) {
                Some(payment) => {
                    admin_callback(
                        t,
                        json!({ "order_id": order, "payment_id": payment, "status": status, "failure_code": "x" }),
                    )
                    .await
                    .status
                }
                None => StatusCode::OK,
            },
        };
        assert!(
            [StatusCode::OK, StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "{step}: unexpected {status}"
        );
        check_invariants(t, user, order, &step).await;
    }
}

fn start_payment_id(body: &serde_json::Value) -> i64 {
    crate::common::id(&body["data"]["createPayment"]["id"])
}

#[test]
fn random_operation_sequences_keep_the_money_invariants() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = runtime.block_on(TestApp::new());
    let config = Config { cases: 48, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = (0i64..1_500, 100i64..1_000, proptest::collection::vec(op(), 1..14));
    runner
        .run(&strategy, |(balance, total, ops)| {
            runtime.block_on(run_case(&t, balance, total, ops));
            Ok(())
        })
        .unwrap();
    // The generator reaches every state.
    let reached = |sql: &str| runtime.block_on(count(&t, sql));
    assert!(reached("SELECT count(*) AS n FROM orders WHERE payment_status = 5") > 0, "partial refunds reached");
    assert!(reached("SELECT count(*) AS n FROM orders WHERE status = 3") > 0, "cancellations reached");
    assert!(
        reached("SELECT count(*) AS n FROM balance_ledger WHERE kind = 'order_charge'") > 0,
        "balance charges reached"
    );
}
