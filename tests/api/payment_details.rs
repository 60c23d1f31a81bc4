//! Seed 002's payment object: the human id, the client's fields, the state mapping, and
//! `updatePayment` (allowed until the payment succeeds, CONFLICT after, racing the success).

use std::collections::HashSet;

use serde_json::{Value, json};

use billing_api::domain::Role;

use crate::callbacks::{admin_callback, start_payment};
use crate::common::{TestApp, error_code, id};
use crate::graphql_reads::count;
use crate::mutations::{order_of, pay};

const FIELDS: &str = "id humanId state status amountCents amountReservedCents amountCapturedCents
    amountRefundedCents settledAt settledAmountCents description metadata active paymentDate
    billingAddress { name line1 city postalCode country } card { brand last4 }";

async fn payment(t: &TestApp, payment: i64) -> Value {
    let query = format!("query($id: ID!) {{ payment(id: $id) {{ {FIELDS} }} }}");
    t.gql_data(&query, json!({ "id": payment.to_string() })).await["payment"].clone()
}

async fn update(t: &TestApp, key: &str, input: Value) -> Value {
    let query = format!("mutation($i: UpdatePaymentInput!) {{ updatePayment(input: $i) {{ {FIELDS} }} }}");
    t.gql_as(key, &query, json!({ "i": input })).await.body
}

const ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

#[tokio::test]
async fn human_ids_are_six_unambiguous_unique_characters_and_find_their_payment() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 500).await;
    let first = start_payment(&t, order).await;
    // Many more ids than one order takes: ids the database gives further payments.
    let ids = count(&t, "SELECT count(DISTINCT payment_human_id(g)) AS n FROM generate_series(1, 200000) AS g").await;
    assert_eq!(ids, 200_000, "no two of the first 200,000 payments share a human id");
    let shown = payment(&t, first).await;
    let human = shown["humanId"].as_str().unwrap().to_owned();
    assert_eq!(human.len(), 6);
    assert!(human.chars().all(|c| ALPHABET.contains(c)), "{human}");
    let mut seen = HashSet::new();
    for i in 0..4 {
        let (_, order) = order_of(&t, 0, 600 + i).await;
        let p = start_payment(&t, order).await;
        assert!(seen.insert(payment(&t, p).await["humanId"].as_str().unwrap().to_owned()));
    }
    assert!(!seen.contains(&human));
    // Found by its human id, in any case; another id finds nothing.
    let query = "query($h: String) { payments(filter: { humanId: $h }) { nodes { id } } }";
    let found = t.gql_data(query, json!({ "h": human.to_lowercase() })).await;
    assert_eq!(found["payments"]["nodes"], json!([{ "id": first.to_string() }]));
    let none = t.gql_data(query, json!({ "h": "ZZZZZZ" })).await;
    assert_eq!(none["payments"]["nodes"], json!([]));
}

#[tokio::test]
async fn a_payment_keeps_the_clients_fields_and_refuses_bad_ones_changing_nothing() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 700).await;
    let create = format!("mutation($i: CreatePaymentInput!) {{ createPayment(input: $i) {{ {FIELDS} }} }}");
    let bad = [
        (json!({ "billingAddress": { "country": "Portugal" } }), "billingAddress.country"),
        (json!({ "billingAddress": {} }), "billingAddress"),
        (json!({ "description": "x".repeat(501) }), "description"),
        (json!({ "metadata": [1, 2] }), "metadata"),
        (json!({ "paymentDate": "0000-01-01T00:00:00Z" }), "paymentDate"),
    ];
    for (extra, field) in bad {
        let mut input = json!({ "orderId": order.to_string() });
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let body = t.gql_as(&t.admin_key, &create, json!({ "i": input })).await.body;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field) || field == "paymentDate", "{field}: {message}");
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payments").await, 0, "nothing was stored");

    let input = json!({
        "orderId": order.to_string(), "description": "  June rent  ",
        "billingAddress": { "name": "Ana", "line1": "Rua 1", "city": "Lisboa", "postalCode": "1000-001", "country": "pt" },
        "metadata": { "invoice": "INV-7" }, "paymentDate": "2027-01-05T09:00:00Z", "active": false,
    });
    let body = t.gql_as(&t.admin_key, &create, json!({ "i": input })).await.body;
    let p = &body["data"]["createPayment"];
    assert_eq!(p["description"], "June rent", "{body}");
    assert_eq!(
        p["billingAddress"],
        json!({ "name": "Ana", "line1": "Rua 1", "city": "Lisboa", "postalCode": "1000-001", "country": "PT" })
    );
    assert_eq!(p["metadata"], json!({ "invoice": "INV-7" }));
    assert_eq!(p["paymentDate"], "2027-01-05T09:00:00+00:00");
    assert_eq!(p["active"], false);
    assert_eq!((p["state"].clone(), p["amountCapturedCents"].clone()), (json!("CREATED"), json!(0)));
    assert_eq!(p["card"], Value::Null, "a manual payment has no card");
    // The service does not act on the payment date: the payment stays as it was.
    assert_eq!(payment(&t, id(&p["id"])).await["status"], "PENDING");
}

/// Every state the model reaches through the API, and the rest by the rows that make them.
#[tokio::test]
async fn the_seed_states_follow_the_payment_its_refunds_and_settlement() {
    let t = TestApp::new().await;
    let state = async |p: i64| payment(&t, p).await["state"].as_str().unwrap().to_owned();

    // created -> failed (callback), and cancelled (order cancelled).
    let (_, a) = order_of(&t, 0, 1000).await;
    let pa = start_payment(&t, a).await;
    assert_eq!(state(pa).await, "CREATED");
    let r =
        admin_callback(&t, json!({ "order_id": a, "payment_id": pa, "status": 3, "failure_code": "card_declined" }))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(state(pa).await, "FAILED");
    let pa2 = start_payment(&t, a).await;
    let cancel = "mutation($id: ID!) { cancelOrder(input: { id: $id }) { status } }";
    t.gql_data(cancel, json!({ "id": a.to_string() })).await;
    assert_eq!(state(pa2).await, "CANCELLED");

    // captured -> partial_refund -> refunded.
    let (_, b) = order_of(&t, 0, 1000).await;
    let pb = start_payment(&t, b).await;
    let r = admin_callback(&t, json!({ "order_id": b, "payment_id": pb, "status": 2, "reference": "ch_b" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = payment(&t, pb).await;
    assert_eq!((shown["state"].clone(), shown["amountCapturedCents"].clone()), (json!("CAPTURED"), json!(1000)));
    let refund =
        "mutation($id: ID!, $a: Money!) { refundOrder(input: { id: $id, amountCents: $a }) { refundedCents } }";
    t.gql_data(refund, json!({ "id": b.to_string(), "a": 400 })).await;
    let shown = payment(&t, pb).await;
    assert_eq!((shown["state"].clone(), shown["amountRefundedCents"].clone()), (json!("PARTIAL_REFUND"), json!(400)));
    t.gql_data(refund, json!({ "id": b.to_string(), "a": 600 })).await;
    assert_eq!(state(pb).await, "REFUNDED");

    // succeeded = captured and settled.
    let (_, c) = order_of(&t, 0, 1000).await;
    assert_eq!(pay(&t, c).await.status, 200);
    let pc = count(&t, &format!("SELECT id AS n FROM payments WHERE order_id = {c}")).await;
    assert_eq!(state(pc).await, "CAPTURED");
    count(
        &t,
        &format!(
            "UPDATE payments SET settled_at = paid_at, settled_cents = 1000 WHERE id = {pc} RETURNING 1::bigint AS n"
        ),
    )
    .await;
    let shown = payment(&t, pc).await;
    assert_eq!((shown["state"].clone(), shown["settledAmountCents"].clone()), (json!("SUCCEEDED"), json!(1000)));

    // processing (at a provider), on_retry (asking it failed), pending_refund, refund_failed.
    let (_, d) = order_of(&t, 0, 1000).await;
    let pd = start_payment(&t, d).await;
    count(&t, &format!("UPDATE payments SET payment_intent_id = 'pi_x' WHERE id = {pd} RETURNING 1::bigint AS n"))
        .await;
    assert_eq!(state(pd).await, "PROCESSING");
    count(&t, &format!("UPDATE payments SET last_error = 'timeout' WHERE id = {pd} RETURNING 1::bigint AS n")).await;
    assert_eq!(state(pd).await, "ON_RETRY");
    count(&t, &format!("UPDATE refunds SET status = 1, refunded_at = NULL WHERE payment_id = {pb} AND amount_cents = 600 RETURNING 1::bigint AS n")).await;
    assert_eq!(state(pb).await, "PENDING_REFUND");
    count(
        &t,
        &format!(
            "UPDATE refunds SET status = 3 WHERE payment_id = {pb} AND amount_cents = 600 RETURNING 1::bigint AS n"
        ),
    )
    .await;
    assert_eq!(state(pb).await, "REFUND_FAILED");
    assert_eq!(payment(&t, pb).await["amountRefundedCents"], 400, "only succeeded refunds count");

    // A list of payments with their states costs the same for 2 payments and for all.
    let list = "query($n: Int) { payments(first: $n) { nodes { state amountRefundedCents } } }";
    let data = t.gql_data(list, json!({ "n": 50 })).await;
    let states: HashSet<&str> =
        data["payments"]["nodes"].as_array().unwrap().iter().map(|n| n["state"].as_str().unwrap()).collect();
    assert!(
        states.contains("REFUND_FAILED") && states.contains("SUCCEEDED") && states.contains("CANCELLED"),
        "{states:?}"
    );
}

#[tokio::test]
async fn update_changes_an_unpaid_payment_and_refuses_after_success() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 0, 900).await;
    let p = start_payment(&t, order).await;
    let own = t.key(Role::Customer, Some(user)).await;
    let stranger_user = t.create_user("stranger@example.com", 0).await;
    let stranger = t.key(Role::Customer, Some(stranger_user)).await;

    // Another customer's payment does not exist for it; nothing changes.
    let body = update(&t, &stranger, json!({ "id": p.to_string(), "active": false })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // Nothing to change, or a bad value: BAD_USER_INPUT naming the field.
    let body = update(&t, &own, json!({ "id": p.to_string() })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = update(&t, &own, json!({ "id": p.to_string(), "paymentMethod": "Card!" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("paymentMethod"), "{body}");
    let body = update(&t, &own, json!({ "id": p.to_string(), "paymentMethod": "balance" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "a label cannot make a balance payment: {body}");
    assert_eq!(payment(&t, p).await["active"], true);

    // The owner changes it; the order's trail says what changed, not the address itself.
    let body = update(
        &t,
        &own,
        json!({ "id": p.to_string(), "active": false, "paymentMethod": "bank_transfer",
                "billingAddress": { "line1": "Rua 2", "country": "PT" }, "paymentDate": "2027-02-01T00:00:00Z" }),
    )
    .await;
    let changed = &body["data"]["updatePayment"];
    assert_eq!(changed["active"], false, "{body}");
    assert_eq!(changed["billingAddress"]["line1"], "Rua 2");
    assert_eq!(changed["paymentDate"], "2027-02-01T00:00:00+00:00");
    let method =
        count(&t, &format!("SELECT count(*) AS n FROM payments WHERE id = {p} AND payment_method = 'bank_transfer'"))
            .await;
    assert_eq!(method, 1);
    let trail = t
        .gql_data("query($id: ID!) { order(id: $id) { events { kind data } } }", json!({ "id": order.to_string() }))
        .await;
    let last = trail["order"]["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "payment_updated");
    assert_eq!(last["data"]["billing_address_changed"], true);
    assert!(!last["data"].to_string().contains("Rua 2"), "the address is not in the trail: {last}");
    // The same values again change nothing and record nothing.
    let events = count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order}")).await;
    update(&t, &own, json!({ "id": p.to_string(), "active": false })).await;
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order}")).await, events);
    // null clears the address and the date.
    let body = update(&t, &own, json!({ "id": p.to_string(), "billingAddress": null, "paymentDate": null })).await;
    assert_eq!(body["data"]["updatePayment"]["billingAddress"], Value::Null, "{body}");
    assert_eq!(body["data"]["updatePayment"]["paymentDate"], Value::Null);

    // After success: CONFLICT, and nothing changes.
    let r = admin_callback(&t, json!({ "order_id": order, "payment_id": p, "status": 2, "reference": "ch_u" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = update(&t, &t.admin_key, json!({ "id": p.to_string(), "active": true })).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(payment(&t, p).await["active"], false);
}

/// `updatePayment` racing the success callback of the same payment: every update either
/// lands before the success (its event comes first) or is CONFLICT; none lands after.
#[tokio::test]
async fn updates_racing_the_success_never_land_after_it() {
    let t = TestApp::new().await;
    let mut outcomes = (0, 0);
    for round in 0..12 {
        let (_, order) = order_of(&t, 0, 800 + round).await;
        let p = start_payment(&t, order).await;
        let date = format!("2027-03-{:02}T00:00:00Z", round + 1);
        let (updated, paid) = tokio::join!(
            update(&t, &t.admin_key, json!({ "id": p.to_string(), "paymentDate": date })),
            admin_callback(&t, json!({ "order_id": order, "payment_id": p, "status": 2, "reference": "ch_r" })),
        );
        assert_eq!(paid.status, 200, "{}", paid.body);
        let seq = async |kind: &str| {
            count(
                &t,
                &format!(
                    "SELECT coalesce(max(seq), 0) AS n FROM order_events WHERE order_id = {order} AND kind = '{kind}'"
                ),
            )
            .await
        };
        if updated["data"]["updatePayment"].is_object() {
            outcomes.0 += 1;
            assert!(seq("payment_updated").await < seq("paid").await, "the update landed before the success");
        } else {
            outcomes.1 += 1;
            assert_eq!(error_code(&updated), "CONFLICT", "{updated}");
            assert_eq!(seq("payment_updated").await, 0);
            assert_eq!(payment(&t, p).await["paymentDate"], Value::Null);
        }
    }
    println!("updates before the success: {}, refused after it: {}", outcomes.0, outcomes.1);
}

/// Settlement comes with a success callback (or a later one): recorded once, at most the
/// amount, only for money that arrived; a bad report changes nothing, not even the status.
#[tokio::test]
async fn settlement_is_reported_once_and_bad_reports_change_nothing() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    let p = start_payment(&t, order).await;
    let callback = |extra: Value| {
        let mut body = json!({ "order_id": order, "payment_id": p, "status": 2, "reference": "ch_s" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        admin_callback(&t, body)
    };
    // More than the payment took: refused, and the success with it.
    let soon = chrono::Utc::now().timestamp() + 60;
    let r = callback(json!({ "settled_at": soon, "settled_amount_cents": 1_001 })).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("settledAmountCents"), "{}", r.body);
    assert_eq!(payment(&t, p).await["status"], "PENDING");
    // Half a pair, or settlement with another status: refused.
    let r = callback(json!({ "settled_at": 1_700_000_000 })).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = admin_callback(
        &t,
        json!({ "order_id": order, "payment_id": p, "status": 3, "settled_at": 1_700_000_000, "settled_amount_cents": 5 }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Paid first, settled later (net of a fee of 30); not before it was paid.
    let r = callback(json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(payment(&t, p).await["state"], "CAPTURED");
    let r = callback(json!({ "settled_at": 1_700_000_000, "settled_amount_cents": 970 })).await;
    assert_eq!(r.status, 400, "before the payment was taken: {}", r.body);
    // A whole second after the payment time (which has a fraction): not before it.
    let now = chrono::Utc::now().timestamp() + 1;
    let r = callback(json!({ "settled_at": now, "settled_amount_cents": 970 })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = payment(&t, p).await;
    assert_eq!(shown["state"], "SUCCEEDED");
    assert_eq!(shown["settledAmountCents"], 970);
    let settled_at = chrono::DateTime::parse_from_rfc3339(shown["settledAt"].as_str().unwrap()).unwrap();
    assert_eq!(settled_at.timestamp(), now);
    // A second, different report keeps the first.
    let r = callback(json!({ "settled_at": now + 2, "settled_amount_cents": 1_000 })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(payment(&t, p).await["settledAmountCents"], 970);
    let events = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'payment_settled'"),
    )
    .await;
    assert_eq!(events, 1);
    // Seed 003's face shows it settled.
    let human = shown["humanId"].as_str().unwrap();
    let r = t.get(&format!("/api/payments/{human}"), Some(&t.admin_key)).await;
    assert_eq!((r.body["status"].clone(), r.body["settled_amount"].clone()), (json!("settled"), json!(9.7)));
    // A failed attempt whose money arrives after all (a late success) is paid, and may
    // settle with it; zeros sent for an unknown settlement are no settlement.
    let (_, other) = order_of(&t, 0, 500).await;
    let q = start_payment(&t, other).await;
    admin_callback(&t, json!({ "order_id": other, "payment_id": q, "status": 3 })).await;
    let r = admin_callback(
        &t,
        json!({ "order_id": other, "payment_id": q, "status": 2, "settled_at": 0, "settled_amount_cents": 0 }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let late = payment(&t, q).await;
    assert_eq!((late["status"].clone(), late["settledAt"].clone()), (json!("SUCCEEDED"), Value::Null));
    let r = admin_callback(
        &t,
        json!({ "order_id": other, "payment_id": q, "status": 2, "settled_at": now + 1, "settled_amount_cents": 500 }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(payment(&t, q).await["state"], "SUCCEEDED");
}

/// `cancelPayment` on the manual provider: the owner may stop their open attempt, another
/// customer finds nothing, and the order takes a payment again. Manual capture needs a
/// provider that can reserve money.
#[tokio::test]
async fn an_owner_cancels_an_open_attempt_and_manual_capture_needs_a_provider_that_reserves() {
    let t = TestApp::new().await;
    let (user, order) = order_of(&t, 0, 800).await;
    let owner = t.key(Role::Customer, Some(user)).await;
    let stranger_user = t.create_user("other@example.com", 0).await;
    let stranger = t.key(Role::Customer, Some(stranger_user)).await;
    let attempt = start_payment(&t, order).await;
    let second = start_payment(&t, order).await;
    let cancel = "mutation($p: ID!) { cancelPayment(input: { id: $p }) { status order { paymentStatus } } }";
    let r = t.gql_as(&stranger, cancel, json!({ "p": attempt.to_string() })).await;
    assert_eq!(error_code(&r.body), "NOT_FOUND", "{}", r.body);
    let r = t.gql_as(&owner, cancel, json!({ "p": attempt.to_string() })).await;
    assert_eq!(
        r.body["data"]["cancelPayment"],
        json!({ "status": "CANCELLED", "order": { "paymentStatus": "PROCESSING" } }),
        "another attempt is still open: {}",
        r.body
    );
    let r = t.gql_as(&owner, cancel, json!({ "p": second.to_string() })).await;
    assert_eq!(r.body["data"]["cancelPayment"]["order"]["paymentStatus"], "UNPAID", "{}", r.body);
    let r = t.gql_as(&owner, cancel, json!({ "p": second.to_string() })).await;
    assert_eq!(error_code(&r.body), "CONFLICT", "{}", r.body);
    let events = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'payment_cancelled'"),
    )
    .await;
    assert_eq!(events, 2);

    let r = t
        .gql(
            "mutation($o: ID!) { createPayment(input: { orderId: $o, captureMethod: MANUAL }) { id } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().starts_with("captureMethod"), "{r}");
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await, 2);
    assert_eq!(pay(&t, order).await.status, axum::http::StatusCode::OK, "the order takes a payment again");
}
