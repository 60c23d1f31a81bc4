//! Money under failure: a provider that drops replies, hangs, answers 500/429, refuses, or
//! leaves refunds pending. Ambiguity is kept, never guessed; a retry with the client's
//! Idempotency-Key reaches the same refund; the janitor resolves what is left; the provider
//! never holds more refunds than the database says.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::config::{Config, JanitorConfig, ProviderKind};
use billing_api::domain::janitor;
use serde_json::{Value, json};

use crate::callbacks::admin_callback;
use crate::common::{Response, TestApp, error_code, id};
use crate::fake_stripe::{FakeStripe, Fault};
use crate::graphql_reads::count;
use crate::mutations::order_of;

/// A service on the fake provider; provider calls time out after 1 s (a hung call is held
/// for 4 s, past it), and the janitor (run by the tests, not in the background) checks
/// after 1 s. The timeout leaves room for a loaded machine's slow answers that must succeed.
pub async fn faulty() -> (TestApp, FakeStripe) {
    let (base, fake) = FakeStripe::start(Duration::from_secs(4)).await;
    let config = Config {
        payment_provider: ProviderKind::Stripe,
        stripe_api_base: base,
        provider_timeout: Duration::from_secs(1),
        janitor: JanitorConfig { enabled: false, tick: Duration::from_secs(1), delays: vec![Duration::from_secs(1)] },
        ..Config::default()
    };
    (TestApp::with_config(config).await, fake)
}

/// An order of `total` paid through the fake provider; returns its id.
pub async fn paid_at_provider(t: &TestApp, total: i64) -> i64 {
    let (_, order) = order_of(t, 0, total).await;
    let data = t
        .gql_data(
            "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    let payment = id(&data["createPayment"]["id"]);
    let paid = admin_callback(t, json!({ "order_id": order, "payment_id": payment, "status": 2 })).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    order
}

pub async fn refund_rest(t: &TestApp, order: i64, amount: i64, key: Option<&str>) -> Response {
    let mut request = Request::post(format!("/api/v1/admin/orders/{order}/refund"))
        .header(header::AUTHORIZATION, format!("Bearer {}", t.admin_key))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    t.send(request.body(Body::from(json!({ "amount_cents": amount }).to_string())).unwrap()).await
}

/// Money refunded or reserved on an order: (refunded_cents, refund_pending_cents).
async fn money(t: &TestApp, order: i64) -> (i64, i64) {
    let refunded = count(t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await;
    let pending = count(t, &format!("SELECT refund_pending_cents AS n FROM orders WHERE id = {order}")).await;
    (refunded, pending)
}

/// Every money invariant holds.
pub async fn assert_audit_clean(t: &TestApp) {
    let found = billing_api::domain::audit::audit(t.app.pool(), &billing_api::domain::Caller::system()).await.unwrap();
    assert!(found.is_empty(), "audit found violations: {found:#?}");
}

/// The provider holds exactly the refunds the database says succeeded (or are pending).
async fn assert_provider_matches(t: &TestApp, fake: &FakeStripe) {
    let in_db =
        count(t, "SELECT coalesce(sum(amount_cents), 0)::bigint AS n FROM refunds WHERE status IN (1, 2)").await;
    assert_eq!(fake.refunded_total(), in_db, "refunds at the provider minus refunds in the database");
}

async fn janitor_after_delay(t: &TestApp) -> janitor::Pass {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap()
}

/// The reproduced double refund: the provider refunds and drops its reply. The API says the
/// outcome is pending (202, OUTCOME_PENDING) and keeps the reservation; the client's retry
/// with the same key reaches the same refund, and the provider holds one refund.
#[tokio::test]
async fn a_dropped_reply_and_a_retry_are_one_refund() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 2_000).await;
    fake.fail_next(&[Fault::DropReply]);
    let first = refund_rest(&t, order, 500, Some("refund-once")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["code"], "OUTCOME_PENDING", "{}", first.body);
    assert_eq!(money(&t, order).await, (0, 500), "the amount stays reserved");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds WHERE status = 1").await, 1);

    let retry = refund_rest(&t, order, 500, Some("refund-once")).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body["order"]["refunded_cents"], 500);
    assert_eq!(money(&t, order).await, (500, 0));
    assert_eq!(fake.refund_count(), 1, "one refund at the provider");
    assert_eq!(fake.refunded_total(), 500);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds").await, 1, "one refund row");
    // A replay now answers what was decided, without acting.
    let again = refund_rest(&t, order, 500, Some("refund-once")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(fake.refund_count(), 1);
    assert_provider_matches(&t, &fake).await;
    assert_audit_clean(&t).await;
}

/// The same on the GraphQL face: the error code is OUTCOME_PENDING, and the retry with the
/// same key answers the settled order.
#[tokio::test]
async fn graphql_says_outcome_pending_and_the_retry_settles() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 2_000).await;
    fake.fail_next(&[Fault::DropReply]);
    let query = "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { refundedCents refundPendingCents } }";
    let vars = json!({ "i": { "id": order.to_string(), "amountCents": 700 } });
    let first = t.send(crate::idempotency::gql(&t.admin_key, "gql-refund", query, vars.clone())).await;
    assert_eq!(error_code(&first.body), "OUTCOME_PENDING", "{}", first.body);
    let retry = t.send(crate::idempotency::gql(&t.admin_key, "gql-refund", query, vars)).await;
    assert_eq!(retry.body["data"]["refundOrder"], json!({ "refundedCents": 700, "refundPendingCents": 0 }));
    assert_eq!(fake.refund_count(), 1);
    assert_audit_clean(&t).await;
}

/// Timeouts, 500 and 429 (whether or not the provider acted) leave the refund PENDING with
/// its reservation; the janitor asks the provider and settles each one exactly once.
#[tokio::test]
async fn ambiguous_answers_stay_pending_until_the_janitor_learns_the_truth() {
    let (t, fake) = faulty().await;
    let faults = [Fault::Hang, Fault::Status(500), Fault::Status(429), Fault::StatusAfterActing(502), Fault::DropReply];
    let mut orders = Vec::new();
    for fault in faults {
        let order = paid_at_provider(&t, 1_000).await;
        fake.fail_next(&[fault]);
        let response = refund_rest(&t, order, 400, None).await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{fault:?}: {}", response.body);
        assert_eq!(money(&t, order).await, (0, 400), "{fault:?}: reserved, not refunded, not released");
        orders.push(order);
    }
    assert_audit_clean(&t).await;
    let unresolved = t.gql_data("{ unresolvedWork { kind amountCents checks } }", json!({})).await;
    let refunds = unresolved["unresolvedWork"].as_array().unwrap().iter().filter(|i| i["kind"] == "refund").count();
    assert_eq!(refunds, 5, "{unresolved}");

    let pass = janitor_after_delay(&t).await;
    assert_eq!((pass.refunds_checked, pass.refunds_resolved), (5, 5), "{pass:?}");
    for order in &orders {
        assert_eq!(money(&t, *order).await, (400, 0));
    }
    assert_eq!(fake.refund_count(), 5, "each refund made once at the provider");
    assert_provider_matches(&t, &fake).await;
    // One `refund_outcome_unknown` event each, one `refunded` each.
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'refund_outcome_unknown'").await, 5);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'refunded'").await, 5);
    let again = janitor_after_delay(&t).await;
    assert_eq!(again, janitor::Pass::default(), "nothing left");
    assert_audit_clean(&t).await;
}

/// A definite refusal fails the refund and releases its reservation; a retry with the same
/// key may then refund afresh.
#[tokio::test]
async fn a_definite_refusal_fails_and_releases() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 1_000).await;
    fake.fail_next(&[Fault::Refuse]);
    let refused = refund_rest(&t, order, 300, Some("refuse-then-ok")).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert_eq!(refused.body["code"], "PROVIDER_ERROR");
    assert_eq!(money(&t, order).await, (0, 0));
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds WHERE status = 3").await, 1);
    let retry = refund_rest(&t, order, 300, Some("refuse-then-ok")).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(money(&t, order).await, (300, 0));
    assert_provider_matches(&t, &fake).await;
    assert_audit_clean(&t).await;
}

/// A refund the provider reports `pending` stays PENDING (reserved) until the provider says
/// it succeeded; checks that learn nothing add no event.
#[tokio::test]
async fn a_pending_refund_stays_pending_until_the_provider_settles_it() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 1_000).await;
    fake.fail_next(&[Fault::Pending]);
    let response = refund_rest(&t, order, 250, None).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    let provider_id = count(&t, "SELECT count(*) AS n FROM refunds WHERE provider_refund_id LIKE 're_fake_%'").await;
    assert_eq!(provider_id, 1, "the provider's refund id is kept");
    let pass = janitor_after_delay(&t).await;
    assert_eq!((pass.refunds_checked, pass.refunds_resolved), (1, 0));
    assert_eq!(money(&t, order).await, (0, 250));
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'refund_outcome_unknown'").await, 1);
    fake.settle_pending();
    let pass = janitor_after_delay(&t).await;
    assert_eq!((pass.refunds_checked, pass.refunds_resolved), (1, 1));
    assert_eq!(money(&t, order).await, (250, 0));
    assert_eq!(fake.refund_count(), 1);
    assert_audit_clean(&t).await;
}

/// An idempotency claim whose holder died (never completed) is taken over once its lease
/// has run out; the retry reaches the refund the first request made, and refunds nothing
/// more.
#[tokio::test]
async fn an_abandoned_claim_is_taken_over_after_its_lease() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 1_000).await;
    let first = refund_rest(&t, order, 100, Some("crashed")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // As if the process died after the refund settled but before the answer was stored.
    let mut conn = t.app.pool().get().await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "UPDATE idempotency_keys SET completed_at = NULL, response_status = NULL, response_body = NULL,
                locked_until = now() - interval '1 second' WHERE key = 'crashed'",
    )
    .await
    .unwrap();
    drop(conn);
    let retry = refund_rest(&t, order, 100, Some("crashed")).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert!(retry.headers.get("idempotent-replayed").is_none(), "acted again, idempotently");
    assert_eq!(retry.body["order"]["refunded_cents"], 100, "the same refund, not a second one");
    assert_eq!(fake.refund_count(), 1);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM idempotency_keys WHERE completed_at IS NOT NULL").await, 1);
    assert_audit_clean(&t).await;
}

/// Two janitors (two `serve` processes) on one database: each due refund is asked about
/// once; none is settled twice.
#[tokio::test]
async fn two_janitors_share_the_work_without_doing_it_twice() {
    let (t, fake) = faulty().await;
    for _ in 0..6 {
        let order = paid_at_provider(&t, 1_000).await;
        fake.fail_next(&[Fault::Status(503)]);
        assert_eq!(refund_rest(&t, order, 100, None).await.status, StatusCode::ACCEPTED);
    }
    let posts_before = fake.refund_posts();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (a, b) = tokio::join!(
        janitor::run_once(t.app.pool(), t.app.providers()),
        janitor::run_once(t.app.pool(), t.app.providers())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.refunds_checked + b.refunds_checked, 6, "{a:?} {b:?}");
    assert_eq!(a.refunds_resolved + b.refunds_resolved, 6);
    assert_eq!(fake.refund_posts() - posts_before, 6, "each refund sent once more, by one janitor");
    assert_eq!(fake.refund_count(), 6);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'refunded'").await, 6);
    assert_audit_clean(&t).await;
}

/// A payment attempt nobody reported on is asked about by the janitor: paid at the provider,
/// the order becomes paid.
#[tokio::test]
async fn the_janitor_resolves_an_attempt_without_a_callback() {
    let (t, fake) = faulty().await;
    let (_, order) = order_of(&t, 0, 1_500).await;
    let data = t
        .gql_data(
            "mutation($o: ID!) { createPayment(input: { orderId: $o }) { paymentIntentId } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    let intent = data["createPayment"]["paymentIntentId"].as_str().unwrap().to_owned();
    let pass = janitor_after_delay(&t).await;
    assert_eq!((pass.payments_checked, pass.payments_resolved), (1, 0), "still unpaid: checked again later");
    let next = count(&t, "SELECT count(*) AS n FROM payments WHERE checks = 1 AND next_check_at > now()").await;
    assert_eq!(next, 1, "rescheduled");
    fake.pay_intent(&intent);
    let pass = janitor_after_delay(&t).await;
    assert_eq!((pass.payments_checked, pass.payments_resolved), (1, 1));
    let status = count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await;
    assert_eq!(status, 3, "PAID");
    assert_audit_clean(&t).await;
}

/// The audit finds a broken invariant, names the rows, and is for admins only.
#[tokio::test]
async fn the_audit_names_what_is_broken() {
    let t = TestApp::new().await;
    let user = t.create_user("audited@example.com", 1_000).await;
    assert_audit_clean(&t).await;
    let mut conn = t.app.pool().get().await.unwrap();
    // A balance changed behind the ledger's back.
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!("UPDATE users SET balance_cents = 1500 WHERE id = {user}"),
    )
    .await
    .unwrap();
    drop(conn);
    let found = t.gql_data("{ audit { check rows detail } }", json!({})).await;
    let found: &Vec<Value> = found["audit"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["check"], "balance_equals_ledger");
    assert_eq!(found[0]["rows"], format!("users:{user}"));
    let customer = t.key(billing_api::domain::Role::Customer, Some(user)).await;
    let refused = t.gql_as(&customer, "{ audit { check } }", json!({})).await;
    assert_eq!(error_code(&refused.body), "FORBIDDEN", "{}", refused.body);
}

/// A key names one refund: after an OUTCOME_PENDING answer (which is not stored), the same
/// key with another amount or on another order is IDEMPOTENCY_CONFLICT, never a second
/// refund nor a 500. Without a key, the answer does not invite a retry.
#[tokio::test]
async fn a_key_that_made_a_refund_cannot_make_another() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 2_000).await;
    let other = paid_at_provider(&t, 2_000).await;
    fake.fail_next(&[Fault::Status(500)]);
    let first = refund_rest(&t, order, 500, Some("one-refund")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let more = refund_rest(&t, order, 600, Some("one-refund")).await;
    assert_eq!(more.status, StatusCode::CONFLICT, "{}", more.body);
    assert_eq!(more.body["code"], "IDEMPOTENCY_CONFLICT");
    let elsewhere = refund_rest(&t, other, 500, Some("one-refund")).await;
    assert_eq!(elsewhere.status, StatusCode::CONFLICT, "{}", elsewhere.body);
    assert_eq!(elsewhere.body["code"], "IDEMPOTENCY_CONFLICT");
    assert_eq!(money(&t, other).await, (0, 0), "nothing happened on the other order");
    assert_eq!(fake.refund_count(), 0, "the provider refunded nothing yet");

    fake.fail_next(&[Fault::Status(503)]);
    let keyless = refund_rest(&t, other, 300, None).await;
    assert_eq!(keyless.status, StatusCode::ACCEPTED, "{}", keyless.body);
    let message = keyless.body["message"].as_str().unwrap();
    assert!(message.contains("read the order") && !message.contains("same Idempotency-Key"), "{message}");
    assert_audit_clean(&t).await;
}

/// A provider that keeps failing does not keep a janitor pass going: each pass checks what
/// was due when it began and ends; the refund stays PENDING, checked again later.
#[tokio::test]
async fn a_janitor_pass_ends_while_the_provider_keeps_failing() {
    let (t, fake) = faulty().await;
    let order = paid_at_provider(&t, 1_000).await;
    fake.fail_next(&[Fault::Status(500); 10]);
    assert_eq!(refund_rest(&t, order, 100, None).await.status, StatusCode::ACCEPTED);
    for _ in 0..2 {
        let pass = tokio::time::timeout(Duration::from_secs(10), janitor_after_delay(&t)).await.expect("a pass ends");
        assert_eq!((pass.refunds_checked, pass.refunds_resolved), (1, 0), "{pass:?}");
    }
    assert_eq!(money(&t, order).await, (0, 100));
    assert_eq!(count(&t, "SELECT checks::bigint AS n FROM refunds").await, 2);
    assert_audit_clean(&t).await;
}

/// Money paid on an attempt after its order was paid by another is shown as due back and
/// given back through the API, once; the order's own refunded amount does not change. An
/// unknown outcome is OUTCOME_PENDING and the janitor settles it.
#[tokio::test]
async fn money_due_back_is_refundable_once() {
    let (t, fake) = faulty().await;
    let (_, order) = order_of(&t, 0, 1_200).await;
    let start = "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }";
    let first = id(&t.gql_data(start, json!({ "o": order.to_string() })).await["createPayment"]["id"]);
    let second = id(&t.gql_data(start, json!({ "o": order.to_string() })).await["createPayment"]["id"]);
    for payment in [first, second] {
        let paid = admin_callback(&t, json!({ "order_id": order, "payment_id": payment, "status": 2 })).await;
        assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    }
    let read = t
        .gql_data(
            "query($o: ID!) { order(id: $o) { payments { id moneyDueBack } } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    let due: Vec<&Value> =
        read["order"]["payments"].as_array().unwrap().iter().filter(|p| p["moneyDueBack"] == true).collect();
    assert_eq!(due.len(), 1, "{read}");
    assert_eq!(id(&due[0]["id"]), second);

    let give_back = "mutation($p: ID!) { refundDuePayment(input: { paymentId: $p }) { refundedCents refunds { amountCents dueBack status } } }";
    // Not due back: the attempt that paid the order.
    let refused = t.gql(give_back, json!({ "p": first.to_string() })).await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
    fake.fail_next(&[Fault::DropReply]);
    let pending = t.gql(give_back, json!({ "p": second.to_string() })).await;
    assert_eq!(error_code(&pending), "OUTCOME_PENDING", "{pending}");
    let again = t.gql(give_back, json!({ "p": second.to_string() })).await;
    assert_eq!(error_code(&again), "CONFLICT", "one refund per due-back payment: {again}");
    let pass = janitor_after_delay(&t).await;
    assert_eq!((pass.refunds_checked, pass.refunds_resolved), (1, 1), "{pass:?}");
    assert_eq!(fake.refund_count(), 1);
    assert_eq!(fake.refunded_total(), 1_200);
    assert_eq!(money(&t, order).await, (0, 0), "the order's own money is untouched");
    let refunds = t
        .gql_data(
            "query($o: ID!) { order(id: $o) { refunds { amountCents dueBack status } } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    assert_eq!(refunds["order"]["refunds"], json!([{ "amountCents": 1200, "dueBack": true, "status": "SUCCEEDED" }]));
    assert_eq!(count(&t, "SELECT count(*) AS n FROM order_events WHERE kind = 'due_back_refunded'").await, 1);
    assert_provider_matches(&t, &fake).await;
    assert_audit_clean(&t).await;
}
