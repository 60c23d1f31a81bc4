//! Authorise, then capture (issue 13): `createPayment(captureMethod: MANUAL)` reserves the
//! amount at localstripe, `capturePayment` takes all or part of it, `cancelPayment`
//! releases it, and an authorisation that ran out is found by reconcile.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, error_code, id};
use crate::graphql_reads::count;
use crate::stripe::{LocalStripe, reconcile, stripe_config};

const FIELDS: &str = "id status state amountCents amountReservedCents amountCapturedCents amountRefundedCents \
                      failureCode paymentIntentId order { status paymentStatus refundedCents }";

/// An order of `total` and a manual-capture card payment for it: the payment as created.
async fn authorised(t: &TestApp, total: i64) -> (i64, Value) {
    let (_, order) = crate::mutations::order_of(t, 0, total).await;
    let body = t
        .gql(
            &format!(
                "mutation($o: ID!) {{ createPayment(input: {{ orderId: $o, captureMethod: MANUAL,
                   card: {{ number: \"4242424242424242\", expMonth: 5, expYear: 2030, cvc: \"123\" }} }}) {{ {FIELDS} }} }}"
            ),
            json!({ "o": order.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    (order, body["data"]["createPayment"].clone())
}

async fn capture(t: &TestApp, payment: &Value, amount: Option<i64>) -> Value {
    t.gql(
        &format!(
            "mutation($p: ID!, $a: Money) {{ capturePayment(input: {{ id: $p, amountCents: $a }}) {{ {FIELDS} }} }}"
        ),
        json!({ "p": payment["id"], "a": amount }),
    )
    .await
}

async fn cancel(t: &TestApp, payment: &Value) -> Value {
    t.gql(
        &format!("mutation($p: ID!) {{ cancelPayment(input: {{ id: $p }}) {{ {FIELDS} }} }}"),
        json!({ "p": payment["id"] }),
    )
    .await
}

async fn intent_status(stripe: &LocalStripe, payment: &Value) -> String {
    let intent = payment["paymentIntentId"].as_str().unwrap();
    stripe.get(&format!("/v1/payment_intents/{intent}")).await["status"].as_str().unwrap().to_owned()
}

async fn audit_clean(t: &TestApp) {
    let found = billing_api::domain::audit::audit(t.app.pool(), &billing_api::domain::Caller::system()).await.unwrap();
    assert!(found.is_empty(), "audit found {found:?}");
}

#[tokio::test]
async fn a_reserved_payment_is_captured_whole_and_pays_the_order() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, p) = authorised(&t, 2_500).await;
    assert_eq!((p["status"].clone(), p["state"].clone()), (json!("AUTHORIZED"), json!("RESERVED")), "{p}");
    assert_eq!((p["amountReservedCents"].clone(), p["amountCapturedCents"].clone()), (json!(2_500), json!(0)));
    assert_eq!(p["order"]["paymentStatus"], "PROCESSING");
    assert_eq!(intent_status(&stripe, &p).await, "requires_capture");

    let body = capture(&t, &p, None).await;
    let c = &body["data"]["capturePayment"];
    assert_eq!((c["status"].clone(), c["state"].clone()), (json!("SUCCEEDED"), json!("CAPTURED")), "{body}");
    assert_eq!((c["amountReservedCents"].clone(), c["amountCapturedCents"].clone()), (json!(0), json!(2_500)));
    assert_eq!(
        (c["order"]["status"].clone(), c["order"]["paymentStatus"].clone()),
        (json!("COMPLETED"), json!("PAID"))
    );
    assert_eq!(intent_status(&stripe, &p).await, "succeeded");

    // A second capture is refused and changes nothing.
    let again = capture(&t, &p, None).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    let paid = count(
        &t,
        &format!(
            "SELECT count(*) AS n FROM order_events WHERE kind = 'paid' AND data->>'payment_id' = '{}'",
            id(&p["id"])
        ),
    )
    .await;
    assert_eq!(paid, 1);
    audit_clean(&t).await;
}

#[tokio::test]
async fn a_partial_capture_releases_the_rest_and_refunds_stay_within_what_was_taken() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, p) = authorised(&t, 1_000).await;
    let body = capture(&t, &p, Some(600)).await;
    let c = &body["data"]["capturePayment"];
    assert_eq!(c["status"], "SUCCEEDED", "{body}");
    assert_eq!((c["amountCapturedCents"].clone(), c["amountRefundedCents"].clone()), (json!(600), json!(0)));
    assert_eq!(c["state"], "CAPTURED");
    assert_eq!(
        (c["order"]["paymentStatus"].clone(), c["order"]["refundedCents"].clone()),
        (json!("PARTIALLY_REFUNDED"), json!(400)),
        "the 400 not captured counts as given back"
    );
    let released = count(&t, &format!("SELECT count(*) AS n FROM refunds WHERE order_id = {order} AND released AND amount_cents = 400 AND status = 2 AND provider_refund_id IS NULL")).await;
    assert_eq!(released, 1);

    // Refunds are capped at the 600 taken: 601 is refused, 600 goes to Stripe.
    let too_much = crate::mutations::post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/refund"),
        &t.admin_key,
        json!({ "amount_cents": 601 }),
    )
    .await;
    assert!(too_much.status.is_client_error(), "{} {}", too_much.status, too_much.body);
    let refund = crate::mutations::post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/refund"),
        &t.admin_key,
        json!({ "amount_cents": 600 }),
    )
    .await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.body);
    assert_eq!(
        (refund.body["order"]["payment_status"].clone(), refund.body["order"]["refunded_cents"].clone()),
        (json!(6), json!(1_000))
    );
    let intent = p["paymentIntentId"].as_str().unwrap();
    let refunds = stripe.get(&format!("/v1/refunds?payment_intent={intent}")).await;
    let ours: Vec<i64> = refunds["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["metadata"]["refund_id"].is_string())
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(ours, [600], "{refunds}");
    // The legacy admin face tells the release (no money moved) from the refund.
    let detail = t.get(&format!("/api/v1/admin/orders/{order}"), Some(&t.admin_key)).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let mut shown: Vec<(i64, bool)> = detail.body["order"]["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["amount_cents"].as_i64().unwrap(), r["released"].as_bool().unwrap()))
        .collect();
    shown.sort();
    assert_eq!(shown, [(400, true), (600, false)], "{}", detail.body);
    let state = t
        .gql_data(
            "query($p: ID!) { payment(id: $p) { state amountRefundedCents amountCapturedCents } }",
            json!({ "p": p["id"] }),
        )
        .await;
    assert_eq!(
        state["payment"],
        json!({ "state": "REFUNDED", "amountRefundedCents": 600, "amountCapturedCents": 600 })
    );
    audit_clean(&t).await;
}

#[tokio::test]
async fn bad_captures_are_refused_and_change_nothing() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, p) = authorised(&t, 1_000).await;
    // 10 cents is below Stripe's minimum charge: refused here, before any claim.
    for amount in [0, -5, 1_001, 10] {
        let body = capture(&t, &p, Some(amount)).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{amount}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("amountCents"), "{body}");
    }
    assert_eq!(intent_status(&stripe, &p).await, "requires_capture");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payment_captures").await, 0, "no capture is under way");
    // A payment that was never reserved cannot be captured.
    let (_, order) = crate::mutations::order_of(&t, 0, 900).await;
    let plain = t
        .gql_data(
            &format!("mutation($o: ID!) {{ createPayment(input: {{ orderId: $o }}) {{ {FIELDS} }} }}"),
            json!({ "o": order.to_string() }),
        )
        .await;
    let body = capture(&t, &plain["createPayment"], None).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    // Another customer cannot see it; the owner cannot capture it.
    let stranger_user = t.create_user("stranger@example.com", 0).await;
    let stranger = t.key(billing_api::domain::Role::Customer, Some(stranger_user)).await;
    let r = t
        .gql_as(&stranger, "mutation($p: ID!) { capturePayment(input: { id: $p }) { id } }", json!({ "p": p["id"] }))
        .await;
    assert_eq!(error_code(&r.body), "NOT_FOUND", "{}", r.body);
    // A callback cannot make an attempt capturable.
    let r = t.gql("mutation($o: ID!, $p: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: $p, status: AUTHORIZED }) { id } }", json!({ "o": order.to_string(), "p": plain["createPayment"]["id"] })).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    let unchanged =
        t.gql_data(&format!("query($p: ID!) {{ payment(id: $p) {{ {FIELDS} }} }}"), json!({ "p": p["id"] })).await;
    assert_eq!(unchanged["payment"]["status"], "AUTHORIZED");
    assert_eq!(unchanged["payment"]["order"]["paymentStatus"], "PROCESSING");
}

#[tokio::test]
async fn cancelling_releases_the_reservation_and_cancelling_the_order_does_too() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, p) = authorised(&t, 1_500).await;
    let body = cancel(&t, &p).await;
    let c = &body["data"]["cancelPayment"];
    assert_eq!((c["status"].clone(), c["state"].clone()), (json!("CANCELLED"), json!("CANCELLED")), "{body}");
    assert_eq!(
        (c["order"]["status"].clone(), c["order"]["paymentStatus"].clone()),
        (json!("PENDING"), json!("UNPAID"))
    );
    assert_eq!(intent_status(&stripe, &p).await, "canceled");
    assert_eq!(error_code(&capture(&t, &p, None).await), "CONFLICT");
    assert_eq!(error_code(&cancel(&t, &p).await), "CONFLICT");

    let (order, p) = authorised(&t, 1_700).await;
    let r =
        crate::mutations::post_json(&t, &format!("/api/v1/admin/orders/{order}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(intent_status(&stripe, &p).await, "canceled", "the reservation is released at Stripe");
    let now = t.gql_data("query($p: ID!) { payment(id: $p) { status } }", json!({ "p": p["id"] })).await;
    assert_eq!(now["payment"]["status"], "CANCELLED");
    audit_clean(&t).await;
}

#[tokio::test]
async fn an_authorisation_that_ran_out_is_found_by_reconcile() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, p) = authorised(&t, 1_200).await;
    // Stripe cancels an authorisation nobody captured in time.
    let intent = p["paymentIntentId"].as_str().unwrap();
    stripe.post(&format!("/v1/payment_intents/{intent}/cancel"), &[]).await;
    let r = reconcile(&t, order, id(&p["id"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["payment_status"], 1, "the order can be paid again");
    let now =
        t.gql_data("query($p: ID!) { payment(id: $p) { status state failureCode } }", json!({ "p": p["id"] })).await;
    assert_eq!(
        now["payment"],
        json!({ "status": "CANCELLED", "state": "CANCELLED", "failureCode": "authorization_expired" })
    );
    assert_eq!(error_code(&capture(&t, &p, None).await), "CONFLICT");
    audit_clean(&t).await;
}

/// Captures and cancels of one reservation sent at once: the provider carries out one,
/// and the service records exactly what the provider did.
#[tokio::test]
async fn racing_captures_and_cancels_take_the_money_at_most_once() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let mut tally = std::collections::BTreeMap::new();
    for round in 0..8 {
        let (order, p) = authorised(&t, 1_000 + round).await;
        let (a, b) = if round % 2 == 0 {
            tokio::join!(capture(&t, &p, Some(500)), cancel(&t, &p))
        } else {
            tokio::join!(capture(&t, &p, Some(500)), capture(&t, &p, Some(700)))
        };
        let ok = [&a, &b].iter().filter(|r| r.get("errors").is_none()).count();
        assert_eq!(ok, 1, "exactly one wins: {a} / {b}");
        let at_stripe = intent_status(&stripe, &p).await;
        let ours = t
            .gql_data("query($p: ID!) { payment(id: $p) { status amountCapturedCents } }", json!({ "p": p["id"] }))
            .await;
        let status = ours["payment"]["status"].as_str().unwrap().to_owned();
        match at_stripe.as_str() {
            "succeeded" => assert_eq!(status, "SUCCEEDED"),
            "canceled" => assert_eq!(status, "CANCELLED"),
            other => panic!("stripe left it {other}"),
        }
        let successes =
            count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 2")).await;
        assert!(successes <= 1);
        *tally.entry(format!("{status} {}", ours["payment"]["amountCapturedCents"])).or_insert(0) += 1;
    }
    println!("capture/cancel races: {tally:?}");
    audit_clean(&t).await;
}

async fn sql(t: &TestApp, statement: &str) {
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&t.url).await.unwrap();
    diesel_async::RunQueryDsl::execute(diesel::sql_query(statement), &mut conn).await.unwrap();
}

/// While a capture is under way (its claim recorded, the attempt still AUTHORIZED, as when
/// the provider's answer never came), nothing lets go of the order's attempts, no other
/// amount is captured, no callback ends it and no other attempt starts; the janitor keeps
/// the reservation scheduled, and its reconcile records the capture at the claimed amount.
#[tokio::test]
async fn a_capture_under_way_holds_the_order_until_the_provider_answers() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, p) = authorised(&t, 1_000).await;
    let payment = id(&p["id"]);
    // The capture reached Stripe, its answer did not reach us.
    let intent = p["paymentIntentId"].as_str().unwrap();
    stripe.post(&format!("/v1/payment_intents/{intent}/capture"), &[("amount_to_capture", "700")]).await;
    sql(
        &t,
        &format!(
            "INSERT INTO payment_captures (payment_id, amount_cents, requested_by) VALUES ({payment}, 700, 'test')"
        ),
    )
    .await;

    let o = order.to_string();
    let refused = [
        t.gql("mutation($id: ID!) { cancelOrder(input: { id: $id }) { id } }", json!({ "id": o })).await,
        t.gql("mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": o })).await,
        cancel(&t, &p).await,
        capture(&t, &p, Some(500)).await,
        t.gql("mutation($o: ID!, $p: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: $p, status: SUCCEEDED }) { id } }", json!({ "o": o, "p": p["id"] })).await,
        t.gql("mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }", json!({ "o": o })).await,
    ];
    for body in &refused {
        assert_eq!(error_code(body), "CONFLICT", "{body}");
    }
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await, 1);

    // The janitor asks, records the capture of 700 (localstripe does not say how much), and
    // the 300 not captured is released.
    sql(&t, &format!("UPDATE payments SET next_check_at = now() - interval '1 minute' WHERE id = {payment}")).await;
    billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    let now =
        t.gql_data(&format!("query($p: ID!) {{ payment(id: $p) {{ {FIELDS} }} }}"), json!({ "p": p["id"] })).await;
    assert_eq!(now["payment"]["status"], "SUCCEEDED", "{now}");
    assert_eq!(now["payment"]["amountCapturedCents"], 700);
    assert_eq!(now["payment"]["order"]["refundedCents"], 300);
    audit_clean(&t).await;
}

/// The janitor keeps asking about a reservation: it can run out at the provider.
#[tokio::test]
async fn the_janitor_keeps_a_reservation_scheduled_and_finds_it_expired() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, p) = authorised(&t, 1_000).await;
    let payment = id(&p["id"]);
    sql(&t, &format!("UPDATE payments SET next_check_at = now() - interval '1 minute' WHERE id = {payment}")).await;
    billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    let scheduled = count(
        &t,
        &format!("SELECT count(*) AS n FROM payments WHERE id = {payment} AND status = 5 AND next_check_at > now()"),
    )
    .await;
    assert_eq!(scheduled, 1, "still AUTHORIZED and checked again later");
    audit_clean(&t).await;
    let intent = p["paymentIntentId"].as_str().unwrap();
    stripe.post(&format!("/v1/payment_intents/{intent}/cancel"), &[]).await;
    sql(&t, &format!("UPDATE payments SET next_check_at = now() - interval '1 minute' WHERE id = {payment}")).await;
    billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    let now = t.gql_data("query($p: ID!) { payment(id: $p) { status failureCode } }", json!({ "p": p["id"] })).await;
    assert_eq!(now["payment"], json!({ "status": "CANCELLED", "failureCode": "authorization_expired" }));
}

/// A claim held by two requests of the same capture holds until both let go; a claim left
/// by a stopped process is cleared by the janitor once Stripe shows the reservation still
/// open well after it was made, and the order can be let go of again.
#[tokio::test]
async fn a_shared_claim_holds_until_its_last_holder_and_a_stale_one_is_cleared() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, p) = authorised(&t, 1_000).await;
    let payment = id(&p["id"]);
    sql(&t, &format!("INSERT INTO payment_captures (payment_id, amount_cents, holders, requested_by) VALUES ({payment}, 1000, 2, 'test')")).await;
    let cancel_order = || async {
        t.gql("mutation($id: ID!) { cancelOrder(input: { id: $id }) { status } }", json!({ "id": order.to_string() }))
            .await
    };
    {
        let mut conn = t.app.pool().get().await.unwrap();
        billing_api::db::groups::release_capture_claim(&mut conn, payment).await.unwrap();
    }
    assert_eq!(error_code(&cancel_order().await), "CONFLICT", "the other holder may be taking the money");

    // The other holder's process stopped: the claim ages, Stripe still shows the
    // reservation, the janitor clears the claim.
    sql(
        &t,
        &format!("UPDATE payment_captures SET requested_at = now() - interval '1 hour' WHERE payment_id = {payment}"),
    )
    .await;
    sql(&t, &format!("UPDATE payments SET next_check_at = now() - interval '1 minute' WHERE id = {payment}")).await;
    billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    let body = cancel_order().await;
    assert_eq!(body["data"]["cancelOrder"]["status"], "CANCELLED", "{body}");
    assert_eq!(intent_status(&stripe, &p).await, "canceled");
    audit_clean(&t).await;
}
