//! `payOrders` (issue 13): one payment for several orders of one user in one currency, paid
//! by one balance debit or one Stripe charge, all or none; refunds capped at each order's
//! share; races with another payOrders and with markOrderPaid never pay an order twice.

use axum::http::StatusCode;
use serde_json::{Value, json};

use billing_api::domain::Role;

use crate::common::{TestApp, error_code, id};
use crate::graphql_reads::count;
use crate::mutations::post_json;
use crate::stripe::{LocalStripe, reconcile, stripe_config};

const PAY: &str = "mutation($i: PayOrdersInput!) { payOrders(input: $i) { id status amountCents paymentIntentId
    order { id status paymentStatus } } }";

/// A user with `balance` and one order per total: (user, order ids).
async fn orders_of(t: &TestApp, balance: i64, totals: &[i64]) -> (i64, Vec<i64>) {
    let user = t.create_user(&format!("p{}@example.com", crate::mutations::rand_suffix()), balance).await;
    let mut orders = Vec::new();
    for total in totals {
        orders.push(id(&t.create_order(user, &[(1, *total)]).await["id"]));
    }
    (user, orders)
}

fn ids(orders: &[i64]) -> Vec<String> {
    orders.iter().map(ToString::to_string).collect()
}

async fn pay(t: &TestApp, orders: &[i64], method: Option<&str>, card: Option<&str>) -> Value {
    let card = card.map(|n| json!({ "number": n, "expMonth": 5, "expYear": 2030, "cvc": "123" }));
    t.gql(PAY, json!({ "i": { "orderIds": ids(orders), "paymentMethod": method, "card": card } })).await
}

async fn balance_of(t: &TestApp, user: i64) -> i64 {
    count(t, &format!("SELECT balance_cents AS n FROM users WHERE id = {user}")).await
}

async fn succeeded(t: &TestApp, order: i64) -> i64 {
    count(t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 2")).await
}

async fn audit_clean(t: &TestApp) {
    let found = billing_api::domain::audit::audit(t.app.pool(), &billing_api::domain::Caller::system()).await.unwrap();
    assert!(found.is_empty(), "audit found {found:?}");
}

#[tokio::test]
async fn a_balance_pays_several_orders_at_once_or_none_of_them() {
    let t = TestApp::new().await;
    let (user, orders) = orders_of(&t, 10_000, &[1_000, 2_000, 3_000]).await;
    let body = pay(&t, &orders, Some("balance"), None).await;
    let paid = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(paid.len(), 3);
    for (payment, order) in paid.iter().zip(&orders) {
        assert_eq!(payment["status"], "SUCCEEDED");
        assert_eq!(payment["order"]["id"], order.to_string());
        assert_eq!(
            (payment["order"]["status"].clone(), payment["order"]["paymentStatus"].clone()),
            (json!("COMPLETED"), json!("PAID"))
        );
    }
    assert_eq!(balance_of(&t, user).await, 4_000);
    assert_eq!(
        count(
            &t,
            &format!("SELECT count(*) AS n FROM balance_ledger WHERE user_id = {user} AND kind = 'order_charge'")
        )
        .await,
        3
    );
    assert_eq!(count(&t, "SELECT amount_cents AS n FROM payment_groups").await, 6_000);
    // A refund of one order goes back to the balance for at most that order's share.
    let refund = |order: i64, cents: i64| {
        let t = &t;
        async move {
            post_json(
                t,
                &format!("/api/v1/admin/orders/{order}/refund"),
                &t.admin_key,
                json!({ "amount_cents": cents, "credit_balance": true }),
            )
            .await
        }
    };
    let too_much = refund(orders[0], 1_001).await;
    assert!(too_much.status.is_client_error(), "{} {}", too_much.status, too_much.body);
    assert_eq!(refund(orders[0], 1_000).await.status, StatusCode::OK);
    assert_eq!(balance_of(&t, user).await, 5_000);

    // Too little balance for the sum: nothing is charged and no order is paid.
    let (poor, more) = orders_of(&t, 2_500, &[1_000, 2_000]).await;
    let body = pay(&t, &more, Some("balance"), None).await;
    assert_eq!(error_code(&body), "INSUFFICIENT_BALANCE", "{body}");
    assert_eq!(balance_of(&t, poor).await, 2_500);
    for order in &more {
        assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await, 0);
    }
    audit_clean(&t).await;
}

#[tokio::test]
async fn bad_order_sets_are_refused_by_name_and_change_nothing() {
    let t = TestApp::new().await;
    let (user, mine) = orders_of(&t, 50_000, &[1_000, 1_100, 1_200]).await;
    let (_, theirs) = orders_of(&t, 50_000, &[900]).await;
    crate::mutations::pay(&t, mine[2]).await;
    let cases: Vec<(Vec<i64>, &str, &str)> = vec![
        (vec![mine[0]], "BAD_USER_INPUT", "2 to 20"),
        (vec![mine[0], mine[0]], "BAD_USER_INPUT", "twice"),
        (vec![mine[0], theirs[0]], "BAD_USER_INPUT", "one user"),
        (vec![mine[0], mine[2]], "CONFLICT", "not paid"),
        (vec![mine[0], 987_654_321], "NOT_FOUND", "987654321"),
        ((0..21).map(|i| mine[0] + i).collect(), "BAD_USER_INPUT", "2 to 20"),
    ];
    for (orders, code, words) in cases {
        let body = pay(&t, &orders, Some("balance"), None).await;
        assert_eq!(error_code(&body), code, "{orders:?}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(words), "{orders:?}: {body}");
    }
    // A customer pays only its own orders, and not from the balance.
    let key = t.key(Role::Customer, Some(user)).await;
    let r = t.gql_as(&key, PAY, json!({ "i": { "orderIds": ids(&[mine[0], theirs[0]]) } })).await;
    assert_eq!(error_code(&r.body), "NOT_FOUND", "{}", r.body);
    let r = t.gql_as(&key, PAY, json!({ "i": { "orderIds": ids(&mine[..2]), "paymentMethod": "balance" } })).await;
    assert_eq!(error_code(&r.body), "FORBIDDEN", "{}", r.body);
    assert_eq!(
        count(
            &t,
            &format!("SELECT count(*) AS n FROM payments WHERE order_id IN ({}, {}, {})", mine[0], mine[1], theirs[0])
        )
        .await,
        0
    );
    assert_eq!(balance_of(&t, user).await, 50_000);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payment_groups").await, 0);
}

#[tokio::test]
async fn one_stripe_charge_pays_the_orders_and_each_refund_stays_within_its_share() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, orders) = orders_of(&t, 0, &[1_500, 2_500]).await;
    let body = pay(&t, &orders, None, Some("4242424242424242")).await;
    let paid = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}"));
    let intent = paid[0]["paymentIntentId"].as_str().unwrap().to_owned();
    assert_eq!(paid[1]["paymentIntentId"], json!(intent), "one charge");
    for payment in paid {
        assert_eq!(
            (payment["status"].clone(), payment["order"]["paymentStatus"].clone()),
            (json!("SUCCEEDED"), json!("PAID")),
            "{body}"
        );
    }
    let at_stripe = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!((at_stripe["amount"].clone(), at_stripe["status"].clone()), (json!(4_000), json!("succeeded")));
    assert_eq!(stripe.get("/v1/payment_intents").await["data"].as_array().unwrap().len(), 1);

    let refund = |order: i64, cents: i64| {
        let t = &t;
        async move {
            post_json(
                t,
                &format!("/api/v1/admin/orders/{order}/refund"),
                &t.admin_key,
                json!({ "amount_cents": cents }),
            )
            .await
        }
    };
    let too_much = refund(orders[0], 1_501).await;
    assert!(too_much.status.is_client_error(), "{} {}", too_much.status, too_much.body);
    assert_eq!(refund(orders[0], 1_500).await.status, StatusCode::OK);
    assert_eq!(refund(orders[1], 2_500).await.status, StatusCode::OK);
    let refunds = stripe.get(&format!("/v1/refunds?payment_intent={intent}")).await;
    let mut amounts: Vec<i64> =
        refunds["data"].as_array().unwrap().iter().map(|r| r["amount"].as_i64().unwrap()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [1_500, 2_500], "both against the one charge: {refunds}");
    audit_clean(&t).await;
}

#[tokio::test]
async fn a_declined_or_later_confirmed_charge_moves_every_order_together() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, orders) = orders_of(&t, 0, &[1_000, 2_000, 3_000]).await;
    let body = pay(&t, &orders, None, Some("4000000000000341")).await;
    let failed = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}"));
    for payment in failed {
        assert_eq!(
            (payment["status"].clone(), payment["order"]["paymentStatus"].clone()),
            (json!("FAILED"), json!("FAILED")),
            "{body}"
        );
    }
    // Without a card the charge waits for the customer; a reconcile of any member pays all.
    let body = pay(&t, &orders, None, None).await;
    let started = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    assert!(started.iter().all(|p| p["status"] == "PENDING" && p["order"]["paymentStatus"] == "PROCESSING"), "{body}");
    let intent = started[0]["paymentIntentId"].as_str().unwrap();
    stripe.confirm(intent, "4242424242424242").await;
    let r = reconcile(&t, orders[1], id(&started[1]["id"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for order in &orders {
        assert_eq!(succeeded(&t, *order).await, 1);
        assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 3);
    }
    // A callback of one member cannot make the group disagree: the others are SUCCEEDED too.
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'paid'").await, 3);
    audit_clean(&t).await;
}

/// Two payOrders sharing an order, and a payOrders against markOrderPaid of one of its
/// orders, run at once many times: no order is ever paid twice, and the balance is debited
/// exactly for what was paid.
#[tokio::test]
async fn racing_payments_never_pay_an_order_twice() {
    let t = TestApp::new().await;
    let (mut shared_wins, mut mark_wins, mut group_wins) = ((0, 0), 0, 0);
    for _ in 0..10 {
        let (user, o) = orders_of(&t, 100_000, &[1_000, 2_000, 3_000]).await;
        let (first, second) = ([o[0], o[1]], [o[1], o[2]]);
        let (a, b) = tokio::join!(pay(&t, &first, Some("balance"), None), pay(&t, &second, Some("balance"), None));
        let ok: Vec<bool> = [&a, &b].iter().map(|r| r.get("errors").is_none()).collect();
        assert_eq!(ok.iter().filter(|w| **w).count(), 1, "{a} / {b}");
        if ok[0] {
            shared_wins.0 += 1
        } else {
            shared_wins.1 += 1
        }
        assert_eq!(succeeded(&t, o[1]).await, 1, "the shared order is paid once");
        let paid: i64 = if ok[0] { 3_000 } else { 5_000 };
        assert_eq!(balance_of(&t, user).await, 100_000 - paid);
    }
    for round in 0..10u64 {
        let (user, o) = orders_of(&t, 100_000, &[1_000, 2_000]).await;
        let mark =
            t.gql("mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": o[0].to_string() }));
        let group = pay(&t, &o, Some("balance"), None);
        // Which is polled first alternates, so each wins some rounds.
        let (group, marked) = if round % 2 == 0 {
            tokio::join!(group, mark)
        } else {
            let (m, g) = tokio::join!(mark, group);
            (g, m)
        };
        let (g, m) = (group.get("errors").is_none(), marked.get("errors").is_none());
        assert!(g != m, "exactly one wins: {group} / {marked}");
        if g {
            group_wins += 1
        } else {
            mark_wins += 1
        }
        assert_eq!(succeeded(&t, o[0]).await, 1, "paid once");
        assert_eq!(succeeded(&t, o[1]).await, i64::from(g), "the group paid all or none");
        assert_eq!(balance_of(&t, user).await, if g { 97_000 } else { 100_000 });
    }
    println!(
        "payOrders races: sharing an order {shared_wins:?} (first, second); against markOrderPaid {group_wins} group, {mark_wins} mark"
    );
    audit_clean(&t).await;
}

/// A Stripe charge for two orders racing markOrderPaid of one: whichever way it falls, each
/// order holds one success, Stripe's money is all accounted for, and the audit is clean.
#[tokio::test]
async fn a_stripe_group_racing_mark_paid_pays_each_order_once() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let mut tally = std::collections::BTreeMap::new();
    for round in 0..10u64 {
        let (_, o) = orders_of(&t, 0, &[1_000, 2_000]).await;
        // markOrderPaid lands at a different point of payOrders' three steps each round.
        let mark = async {
            tokio::time::sleep(std::time::Duration::from_millis(round * 12)).await;
            t.gql("mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": o[0].to_string() }))
                .await
        };
        let (group, marked) = tokio::join!(pay(&t, &o, None, Some("4242424242424242")), mark);
        assert!(marked.get("errors").is_none() || group.get("errors").is_none(), "{group} / {marked}");
        assert_eq!(succeeded(&t, o[0]).await, 1, "order {} paid once: {group} / {marked}", o[0]);
        assert!(succeeded(&t, o[1]).await <= 1);
        if succeeded(&t, o[1]).await == 0 {
            // The group did not pay it: nothing of the group is left open on it, and it can
            // be paid again at once.
            let open = format!("SELECT count(*) AS n FROM payments WHERE order_id = {} AND status IN (1, 5)", o[1]);
            assert_eq!(count(&t, &open).await, 0, "round {round}: {group} / {marked}");
            let unpaid = format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {}", o[1]);
            assert_eq!(count(&t, &unpaid).await, 1, "round {round}: {group} / {marked}");
        }
        let due = count(
            &t,
            &format!(
                "SELECT count(*) AS n FROM payments WHERE order_id = {} AND failure_code = 'duplicate_payment'",
                o[0]
            ),
        )
        .await;
        let key = format!(
            "group ok {}, mark ok {}, second order paid {}, due back {due}",
            group.get("errors").is_none(),
            marked.get("errors").is_none(),
            succeeded(&t, o[1]).await
        );
        *tally.entry(key).or_insert(0) += 1;
    }
    println!("stripe payOrders vs markOrderPaid: {tally:?}");
    audit_clean(&t).await;
}

/// A retried payOrders with the same Idempotency-Key gets the first answer again and pays
/// nothing more.
#[tokio::test]
async fn a_retried_pay_orders_with_its_key_pays_once() {
    let t = TestApp::new().await;
    let (user, orders) = orders_of(&t, 10_000, &[1_000, 2_000]).await;
    let vars = json!({ "i": { "orderIds": ids(&orders), "paymentMethod": "balance" } });
    let first = t.send(crate::idempotency::gql(&t.admin_key, "pay-both", PAY, vars.clone())).await;
    let again = t.send(crate::idempotency::gql(&t.admin_key, "pay-both", PAY, vars)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.get("errors").is_none(), "{}", first.body);
    assert_eq!(again.body, first.body, "the same answer, replayed");
    assert_eq!(balance_of(&t, user).await, 7_000, "debited once");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payment_groups").await, 1);
}

/// A success reported for one member (manual provider, by callback) pays every order; its
/// settlement is split over the orders within each one's share, however the cents round.
#[tokio::test]
async fn one_callback_pays_the_group_and_its_settlement_is_split_within_each_share() {
    let t = TestApp::new().await;
    let (_, orders) = orders_of(&t, 0, &[1_000, 1_000, 1_000, 7]).await;
    let body = pay(&t, &orders, None, None).await;
    let started = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    let callback = "mutation($o: ID!, $p: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: $p,
        status: SUCCEEDED, paidAt: \"2026-01-01T00:00:00Z\", settledAt: \"2026-01-02T00:00:00Z\", settledAmountCents: 3000 }) { paymentStatus } }";
    let r = t.gql(callback, json!({ "o": orders[2].to_string(), "p": started[2]["id"] })).await;
    assert!(r.get("errors").is_none(), "{r}");
    for order in &orders {
        assert_eq!(succeeded(&t, *order).await, 1);
    }
    let shares =
        count(&t, "SELECT sum(settled_cents)::bigint AS n FROM payments WHERE settled_cents IS NOT NULL").await;
    assert_eq!(shares, 3_000, "the whole settlement, split");
    let over = count(&t, "SELECT count(*) AS n FROM payments WHERE settled_cents > amount_cents").await;
    assert_eq!(over, 0);
    audit_clean(&t).await;
}

/// The customer who started a payment for several orders can cancel it (through any of its
/// attempts): the charge is cancelled at Stripe and every order can be paid again.
#[tokio::test]
async fn a_customer_cancels_a_payment_for_several_orders_as_a_whole() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (user, orders) = orders_of(&t, 0, &[1_000, 2_000]).await;
    let key = t.key(Role::Customer, Some(user)).await;
    let r = t.gql_as(&key, PAY, json!({ "i": { "orderIds": ids(&orders) } })).await;
    let started = r.body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{}", r.body)).clone();
    let cancel = "mutation($p: ID!) { cancelPayment(input: { id: $p }) { status order { paymentStatus } } }";
    let r = t.gql_as(&key, cancel, json!({ "p": started[1]["id"] })).await;
    assert_eq!(
        r.body["data"]["cancelPayment"],
        json!({ "status": "CANCELLED", "order": { "paymentStatus": "UNPAID" } }),
        "{}",
        r.body
    );
    let intent = started[0]["paymentIntentId"].as_str().unwrap();
    assert_eq!(stripe.get(&format!("/v1/payment_intents/{intent}")).await["status"], "canceled");
    for order in &orders {
        let n = count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 4")).await;
        assert_eq!(n, 1, "order {order}'s attempt is cancelled");
        assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 1);
    }
    let body = pay(&t, &orders, None, Some("4242424242424242")).await;
    assert!(body.get("errors").is_none(), "payable again: {body}");
    audit_clean(&t).await;
}

/// One order of a waiting group payment is paid another way: the shared charge is cancelled
/// at Stripe, and the group's other orders are payable again at once (not after the
/// janitor's next check). The same when an attempt of the order's own pays it.
#[tokio::test]
async fn paying_one_order_of_a_waiting_group_ends_the_group_for_the_others() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let payment_status = async |order: i64| {
        count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await
    };
    let open_attempts = async |order: i64| {
        count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status IN (1, 5)")).await
    };

    // Paid by markOrderPaid.
    let (_, orders) = orders_of(&t, 0, &[1_000, 2_000]).await;
    let body = pay(&t, &orders, None, None).await;
    let started = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    let intent = started[0]["paymentIntentId"].as_str().unwrap().to_owned();
    let marked = crate::mutations::pay(&t, orders[0]).await;
    assert_eq!(marked.status, StatusCode::OK, "{}", marked.body);
    assert_eq!(stripe.get(&format!("/v1/payment_intents/{intent}")).await["status"], "canceled");
    assert_eq!(open_attempts(orders[1]).await, 0, "the other member's attempt ended with the charge");
    assert_eq!(payment_status(orders[1]).await, 1, "the other order is UNPAID again");
    let why = format!(
        "SELECT count(*) AS n FROM payments WHERE order_id = {} AND status = 4 AND failure_code = 'group_payment_cancelled'",
        orders[1]
    );
    assert_eq!(count(&t, &why).await, 1, "the cancelled member says why");

    // Paid by an attempt of its own, confirmed by the customer and reconciled.
    let (_, orders) = orders_of(&t, 0, &[1_100, 2_100]).await;
    let body = pay(&t, &orders, None, None).await;
    let started = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    let shared = started[0]["paymentIntentId"].as_str().unwrap().to_owned();
    let own = t
        .gql_data(
            "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id paymentIntentId } }",
            json!({ "o": orders[0].to_string() }),
        )
        .await;
    let own_intent = own["createPayment"]["paymentIntentId"].as_str().unwrap().to_owned();
    stripe.confirm(&own_intent, "4242424242424242").await;
    let paid = reconcile(&t, orders[0], id(&own["createPayment"]["id"])).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(stripe.get(&format!("/v1/payment_intents/{shared}")).await["status"], "canceled");
    assert_eq!(open_attempts(orders[1]).await, 0);
    assert_eq!(payment_status(orders[1]).await, 1);
    // The other order can be paid now, by a card at once.
    let card = json!({ "number": "4242424242424242", "expMonth": 5, "expYear": 2030, "cvc": "123" });
    let again = t
        .gql(
            "mutation($o: ID!, $c: CardInput) { createPayment(input: { orderId: $o, card: $c }) { status } }",
            json!({ "o": orders[1].to_string(), "c": card }),
        )
        .await;
    assert_eq!(again["data"]["createPayment"]["status"], "SUCCEEDED", "{again}");
    audit_clean(&t).await;
}

/// The janitor asks the provider once per pass about a charge shared by several orders (its
/// answer settles every member), not once per member.
#[tokio::test]
async fn the_janitor_asks_once_about_a_charge_for_several_orders() {
    let (t, fake) = crate::faults::faulty().await;
    let (_, orders) = orders_of(&t, 0, &[1_000, 2_000, 3_000]).await;
    let body = pay(&t, &orders, None, None).await;
    let started = body["data"]["payOrders"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    assert!(started.iter().all(|p| p["status"] == "PENDING"), "{body}");
    let gets = || fake.inner.lock().unwrap().intent_gets;
    let before = gets();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let pass = billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    assert_eq!(pass.payments_checked, 3, "{pass:?}");
    assert_eq!(gets() - before, 1, "one look-up for the three members");
    // Paid at the provider: the next pass's one look-up pays all three.
    fake.pay_intent(started[0]["paymentIntentId"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let pass = billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    assert_eq!(gets() - before, 2, "{pass:?}");
    for order in &orders {
        assert_eq!(succeeded(&t, *order).await, 1);
    }
    audit_clean(&t).await;
}
