//! The `stripe` provider against localstripe, a stateful fake Stripe server from PyPI,
//! installed into a virtualenv under the target directory and started on a free loopback
//! port by the test itself. Skipped, with a printed reason, only where Python is absent.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use billing_api::config::{Config, ProviderKind};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::common::{TestApp, error_code, id};
use crate::graphql_reads::count;
use crate::mutations::post_json;

const LOCALSTRIPE: &str = "localstripe==1.15.10";
const SECRET_KEY: &str = "sk_test_billing_api";

static VENV: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();

async fn install() -> Result<PathBuf, String> {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("localstripe-venv");
    let bin = venv.join("bin/localstripe");
    if bin.is_file() {
        return Ok(bin);
    }
    let python = tokio::process::Command::new("python3").arg("--version").output().await;
    if !python.is_ok_and(|o| o.status.success()) {
        return Err("python3 is not installed".to_owned());
    }
    let created = tokio::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status().await;
    assert!(created.is_ok_and(|s| s.success()), "python3 -m venv failed");
    let installed = tokio::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", LOCALSTRIPE])
        .status()
        .await;
    assert!(installed.is_ok_and(|s| s.success()), "pip install {LOCALSTRIPE} failed");
    Ok(bin)
}

/// A running localstripe; killed when dropped.
pub(crate) struct LocalStripe {
    _child: tokio::process::Child,
    pub(crate) base: String,
    http: reqwest::Client,
}

impl LocalStripe {
    pub(crate) async fn start() -> Option<Self> {
        let bin = match VENV.get_or_init(install).await {
            Ok(bin) => bin.clone(),
            Err(reason) => {
                println!("SKIPPED stripe tests: {reason}");
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new(bin)
            .args(["--port", &port.to_string(), "--from-scratch"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting localstripe");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            let probe = http.get(format!("{base}/v1/payment_intents")).basic_auth(SECRET_KEY, Some("")).send().await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return Some(Self { _child: child, base, http });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("localstripe did not start on {base}");
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(SECRET_KEY, Some(""))
            .form(form)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let response =
            self.http.get(format!("{}{path}", self.base)).basic_auth(SECRET_KEY, Some("")).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Pays a payment intent directly at the fake, as a customer's browser would.
    pub(crate) async fn confirm(&self, intent: &str, card: &str) {
        let method = self
            .post(
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", card),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2034"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let method = method["id"].as_str().unwrap().to_owned();
        self.post(&format!("/v1/payment_intents/{intent}"), &[("payment_method", &method)]).await;
        self.post(&format!("/v1/payment_intents/{intent}/confirm"), &[]).await;
    }
}

pub(crate) fn stripe_config(base: &str) -> Config {
    Config {
        payment_provider: ProviderKind::Stripe,
        stripe_api_base: base.to_owned(),
        stripe_secret_key: SECRET_KEY.to_owned(),
        ..Config::default()
    }
}

/// Creates a user and an order and starts a Stripe payment: (order id, payment id, intent).
async fn stripe_payment(t: &TestApp, total: i64) -> (i64, i64, String) {
    let user = t.create_user(&format!("s{}@example.com", crate::mutations::rand_suffix()), 0).await;
    let order = id(&t.create_order(user, &[(1, total)]).await["id"]);
    let data = t
        .gql_data(
            "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id provider paymentIntentId status } }",
            json!({ "o": order.to_string() }),
        )
        .await;
    let payment = &data["createPayment"];
    assert_eq!(payment["provider"], "stripe");
    assert_eq!(payment["status"], "PENDING");
    let intent = payment["paymentIntentId"].as_str().expect("a payment intent at Stripe").to_owned();
    assert!(intent.starts_with("pi_"), "{intent}");
    (order, id(&payment["id"]), intent)
}

pub(crate) async fn reconcile(t: &TestApp, order: i64, payment: i64) -> crate::common::Response {
    post_json(
        t,
        "/api/v1/admin/orders/payments/reconcile",
        &t.admin_key,
        json!({ "order_id": order, "payment_id": payment }),
    )
    .await
}

#[tokio::test]
async fn stripe_payment_reconciles_to_paid_and_refunds_at_stripe() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, payment, intent) = stripe_payment(&t, 2_500).await;
    let at_stripe = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(at_stripe["amount"], 2_500);
    assert_eq!(at_stripe["currency"], "usd");
    assert_eq!(at_stripe["metadata"]["order_id"], order.to_string());

    // Not paid yet: reconcile keeps it processing and changes nothing.
    let response = reconcile(&t, order, payment).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["order"]["payment_status"], 2);

    stripe.confirm(&intent, "4242424242424242").await;
    let response = reconcile(&t, order, payment).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let o = &response.body["order"];
    assert_eq!((o["status"].clone(), o["payment_status"].clone()), (json!(2), json!(3)));
    assert!(o["payment_reference"].as_str().unwrap().starts_with("ch_"), "{o}");
    assert_eq!(o["payment_intent_id"], json!(intent));
    let events = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind IN ('paid', 'reconciled')"),
    )
    .await;
    assert_eq!(events, 2);
    // Reconciling again finds nothing new.
    let again = reconcile(&t, order, payment).await;
    assert_eq!(again.body["order"]["updated_at"], o["updated_at"]);

    let refund = post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/refund"),
        &t.admin_key,
        json!({ "amount_cents": 1_000, "reason": "partial" }),
    )
    .await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.body);
    assert_eq!(refund.body["order"]["payment_status"], 5);
    assert_eq!(refund.body["order"]["refunded_cents"], 1_000);
    let refunds = stripe.get(&format!("/v1/refunds?payment_intent={intent}")).await;
    let amounts: Vec<i64> = refunds["data"].as_array().unwrap().iter().map(|r| r["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [1_000], "the refund exists at Stripe");
    let provider_id = count(&t, &format!("SELECT count(*) AS n FROM refunds WHERE order_id = {order} AND provider_refund_id LIKE 're_%' AND status = 2")).await;
    assert_eq!(provider_id, 1);
    assert_eq!(count(&t, &format!("SELECT refund_pending_cents AS n FROM orders WHERE id = {order}")).await, 0);
}

#[tokio::test]
async fn declined_card_reconciles_to_failed() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, payment, intent) = stripe_payment(&t, 1_200).await;
    stripe.confirm(&intent, "4000000000000341").await;
    let response = reconcile(&t, order, payment).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let o = &response.body["order"];
    assert_eq!((o["status"].clone(), o["payment_status"].clone()), (json!(1), json!(4)));
    assert_eq!(o["payment_failure_code"], "card_declined");
    assert_eq!(o["payments"][0]["status"], 3);
    assert!(o["payment_failure_message"].as_str().unwrap().contains("declined"));
}

#[tokio::test]
async fn an_unreachable_provider_is_provider_error_and_changes_nothing() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = TestApp::with_config(stripe_config(&format!("http://127.0.0.1:{port}"))).await;
    let user = t.create_user("down@example.com", 0).await;
    let order = id(&t.create_order(user, &[(1, 500)]).await["id"]);
    let body = t
        .gql("mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }", json!({ "o": order.to_string() }))
        .await;
    assert_eq!(error_code(&body), "PROVIDER_ERROR");
    assert!(!body["errors"][0]["message"].as_str().unwrap().contains("127.0.0.1"), "no internals leak: {body}");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payments").await, 0);
    assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 1);

    // A Stripe attempt recorded earlier cannot be reconciled or refunded while Stripe is down.
    let mut conn = t.app.pool().get().await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "INSERT INTO payments (id, order_id, status, provider, payment_method, amount_cents, currency, payment_intent_id)
             VALUES (9001, {order}, 1, 'stripe', 'card', 500, 'USD', 'pi_unreachable')"
        ),
    )
    .await
    .unwrap();
    drop(conn);
    let response = reconcile(&t, order, 9001).await;
    assert_eq!(response.status, StatusCode::BAD_GATEWAY, "{}", response.body);
    assert_eq!(response.body["code"], "PROVIDER_ERROR");
    assert_eq!(count(&t, "SELECT status::bigint AS n FROM payments WHERE id = 9001").await, 1);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order}")).await, 1);

    // Paid with that attempt (by callback), a refund through Stripe fails cleanly.
    let paid =
        crate::callbacks::admin_callback(&t, json!({ "order_id": order, "payment_id": 9001, "status": 2 })).await;
    assert_eq!(paid.status, StatusCode::OK);
    let refund =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 200 }))
            .await;
    assert_eq!(refund.status, StatusCode::BAD_GATEWAY, "{}", refund.body);
    assert_eq!(
        count(&t, &format!("SELECT refunded_cents + refund_pending_cents AS n FROM orders WHERE id = {order}")).await,
        0
    );
    assert_eq!(count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await, 3);
    assert_eq!(
        count(&t, "SELECT count(*) AS n FROM refunds WHERE status = 3").await,
        1,
        "the failed attempt is kept as FAILED"
    );
    // Refunding to the balance needs no provider and still works.
    let credit = post_json(
        &t,
        &format!("/api/v1/admin/orders/{order}/refund"),
        &t.admin_key,
        json!({ "amount_cents": 200, "credit_balance": true }),
    )
    .await;
    assert_eq!(credit.status, StatusCode::OK, "{}", credit.body);
    assert_eq!(credit.body["order"]["user"]["balance_cents"], 200);
}

/// Cancelling an order cancels its pending attempt's intent at Stripe, so it cannot be paid
/// any more; the order's events say so.
#[tokio::test]
async fn cancelling_an_order_cancels_its_intent_at_stripe() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, _, intent) = stripe_payment(&t, 1_500).await;
    let cancelled = post_json(&t, &format!("/api/v1/admin/orders/{order}/cancel"), &t.admin_key, json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let at_stripe = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(at_stripe["status"], "canceled", "{at_stripe}");
    let events = crate::graphql_reads::count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'intent_cancelled'"),
    )
    .await;
    assert_eq!(events, 1);
}

/// Paying an order another way supersedes its pending attempt, and its intent is cancelled
/// at Stripe so the customer cannot pay twice.
#[tokio::test]
async fn paying_another_way_cancels_the_superseded_intent_at_stripe() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (order, _, intent) = stripe_payment(&t, 1_800).await;
    let paid = crate::mutations::pay(&t, order).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let at_stripe = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(at_stripe["status"], "canceled", "{at_stripe}");
}

/// When one attempt pays the order, the other attempts' intents are cancelled at Stripe
/// too, whichever way the success arrived (reconcile, callback), so a customer's page still
/// holding one of them cannot take the money a second time.
#[tokio::test]
async fn a_success_cancels_the_other_attempts_intents_at_stripe() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let second_attempt = async |order: i64| {
        let data = t
            .gql_data(
                "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id paymentIntentId status } }",
                json!({ "o": order.to_string() }),
            )
            .await;
        let payment = &data["createPayment"];
        assert_eq!(payment["status"], "PENDING", "{payment}");
        (id(&payment["id"]), payment["paymentIntentId"].as_str().unwrap().to_owned())
    };
    let status_at_stripe =
        async |intent: &str| stripe.get(&format!("/v1/payment_intents/{intent}")).await["status"].clone();

    // Paid through reconcile of the second attempt.
    let (order, _, first_intent) = stripe_payment(&t, 1_200).await;
    let (second, second_intent) = second_attempt(order).await;
    stripe.confirm(&second_intent, "4242424242424242").await;
    let paid = reconcile(&t, order, second).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body["order"]["payment_status"], 3, "{}", paid.body);
    assert_eq!(status_at_stripe(&first_intent).await, "canceled");
    assert_eq!(status_at_stripe(&second_intent).await, "succeeded");

    // Paid through a provider callback for the first attempt.
    let (order, first, first_intent) = stripe_payment(&t, 1_300).await;
    let (_, second_intent) = second_attempt(order).await;
    stripe.confirm(&first_intent, "4242424242424242").await;
    let body = json!({ "order_id": order, "payment_id": first, "status": 2 });
    let paid = crate::callbacks::admin_callback(&t, body).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(status_at_stripe(&second_intent).await, "canceled");
    let cancelled_events = count(
        &t,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND kind = 'intent_cancelled'"),
    )
    .await;
    assert_eq!(cancelled_events, 1, "the cancel at the provider is an event of the order");
}

/// Every row of every table of the test's database, as text, that contains `needle`.
async fn rows_containing(t: &TestApp, needle: &str) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        tablename: String,
    }
    let mut conn = t.app.pool().get().await.unwrap();
    let tables: Vec<Table> = diesel::sql_query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .load(&mut conn)
        .await
        .unwrap();
    let mut found = 0;
    for table in tables {
        let sql = format!("SELECT count(*) AS n FROM \"{0}\" WHERE \"{0}\"::text LIKE '%{needle}%'", table.tablename);
        found += crate::graphql_reads::count_on(&mut conn, &sql).await;
    }
    found
}

/// Seed 003's create with a card: the card goes to Stripe as a payment method, the payment
/// is confirmed there, and the answer shows brand and last four only. No table of the
/// database holds the number, and an Idempotency-Key replay gives the same answer.
#[tokio::test]
async fn a_card_goes_to_stripe_only_and_the_payment_shows_brand_and_last_four() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let user = t.create_user("card@example.com", 0).await;
    let order = id(&t.create_order(user, &[(1, 5_000)]).await["id"]);
    let key = t.key(billing_api::domain::Role::Customer, Some(user)).await;
    let card = json!({ "amount": 50, "method": "credit_card", "number": "4242424242424242", "name": "John john",
                       "expiration_month": "05", "expiration_year": "2030", "cvv": "321" });
    let body = json!({ "order_id": order, "amount": 50.0, "payment_method": "credit_card", "additional_params": card });
    let send = async || {
        let request = axum::http::Request::post("/api/payments")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .header("Idempotency-Key", "card-once")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        t.send(request).await
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let p = &first.body;
    assert_eq!((p["status"].clone(), p["current_state"].clone()), (json!("success"), json!("captured")), "{p}");
    assert_eq!(p["additional_params"]["last4"], "4242");
    assert_eq!(p["additional_params"]["brand"], "visa");
    assert_eq!(
        (p["additional_params"]["expiration_month"].clone(), p["additional_params"]["expiration_year"].clone()),
        (json!("05"), json!("2030"))
    );
    assert_eq!(p["amount_paid"], json!(50.0));
    let text = p.to_string();
    assert!(!text.contains("4242424242424242") && !text.contains("\"cvv\"") && !text.contains("321\""), "{text}");
    // The order is paid, and Stripe holds the card as a payment method on the intent.
    let order_row = count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {order}")).await;
    assert_eq!(order_row, 3, "PAID");
    let intent = stripe.get("/v1/payment_intents").await;
    let intent = &intent["data"][0];
    assert_eq!(intent["status"], "succeeded");
    assert!(intent["payment_method"].as_str().unwrap().starts_with("pm_"), "{intent}");

    // Reconcile reads the charge's balance transaction: localstripe makes it available at
    // once, with no fee, so the payment is settled for its whole amount.
    let payment_id = count(&t, &format!("SELECT id AS n FROM payments WHERE order_id = {order}")).await;
    let r = reconcile(&t, order, payment_id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = t.get(&format!("/api/payments/{}", p["payment_id"].as_str().unwrap()), Some(&t.admin_key)).await;
    assert_eq!((shown.body["status"].clone(), shown.body["settled_amount"].clone()), (json!("settled"), json!(50.0)));
    assert_eq!(shown.body["current_state"], "succeeded");

    let again = send().await;
    assert_eq!(again.body["payment_id"], p["payment_id"]);
    assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order}")).await, 1);
    assert_eq!(rows_containing(&t, "4242424242424242").await, 0, "no table holds the card number");
    assert_eq!(rows_containing(&t, "John john").await, 0, "nor the name on the card");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payments WHERE card_last4 = '4242'").await, 1);

    // A declined card: nothing paid, the answer names no card either.
    let (_, declined_order) = crate::mutations::order_of(&t, 0, 3_000).await;
    let card = json!({ "number": "4000000000000341", "expiration_month": 5, "expiration_year": 2030, "cvv": "123" });
    let r =
        post_json(&t, "/api/payments", &t.admin_key, json!({ "order_id": declined_order, "additional_params": card }))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["status"].clone(), r.body["current_state"].clone()),
        (json!("error"), json!("failed")),
        "{}",
        r.body
    );
    assert!(r.body["status_code"].is_string(), "the provider's decline code: {}", r.body);
    assert!(!r.body.to_string().contains("4000000000000341"));
    let paid = count(&t, &format!("SELECT payment_status::bigint AS n FROM orders WHERE id = {declined_order}")).await;
    assert_ne!(paid, 3, "a declined card pays nothing");
}

/// Two card payments of one order at once (a double click): one is taken, the other is
/// refused before any money moves, and its unconfirmed intent is cancelled at Stripe.
#[tokio::test]
async fn a_double_click_takes_a_card_payment_once() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let mut outcomes = (0, 0);
    for round in 0..6 {
        let (_, order) = crate::mutations::order_of(&t, 0, 2_000 + round).await;
        let body = json!({ "order_id": order, "additional_params": { "number": "4242424242424242",
            "expiration_month": 5, "expiration_year": 2030, "cvv": "123" } });
        let (a, b) = tokio::join!(
            post_json(&t, "/api/payments", &t.admin_key, body.clone()),
            post_json(&t, "/api/payments", &t.admin_key, body.clone()),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        // Whether the second came while the first was open or after it paid the order,
        // it is refused (409) and takes nothing.
        assert_eq!(statuses, [200, 409], "{} {} / {} {}", a.status, a.body, b.status, b.body);
        let loser = if a.status == 409 { &a } else { &b };
        if loser.body["message"].as_str().unwrap_or_default().contains("open payment attempt") {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
        let charged =
            count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 2")).await;
        assert_eq!(charged, 1, "exactly one payment took the money");
        assert_eq!(count(&t, &format!("SELECT count(*) AS n FROM payments WHERE order_id = {order} AND status = 4 AND failure_code = 'duplicate_payment'")).await, 0);
    }
    let intents = stripe.get("/v1/payment_intents?limit=100").await;
    let succeeded = intents["data"].as_array().unwrap().iter().filter(|i| i["status"] == "succeeded").count();
    assert_eq!(succeeded, 6, "one charge per order at Stripe: {intents}");
    println!(
        "double clicks: refused as a second open attempt {} times, as paid already {} times",
        outcomes.0, outcomes.1
    );
}

/// A card that needs 3-D Secure cannot be finished through this API: its intent is
/// cancelled at Stripe and the attempt fails with `authentication_required`, so the order
/// takes another payment at once.
#[tokio::test]
async fn a_card_needing_authentication_fails_and_frees_the_order() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, order) = crate::mutations::order_of(&t, 0, 2_500).await;
    let three_ds =
        json!({ "number": "4000002500003155", "expiration_month": 5, "expiration_year": 2030, "cvv": "123" });
    let r =
        post_json(&t, "/api/payments", &t.admin_key, json!({ "order_id": order, "additional_params": three_ds })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["status"].clone(), r.body["status_code"].clone()),
        (json!("error"), json!("authentication_required"))
    );
    let intents = stripe.get("/v1/payment_intents").await;
    assert_eq!(intents["data"][0]["status"], "canceled", "{intents}");
    let card = json!({ "number": "4242424242424242", "expiration_month": 5, "expiration_year": 2030, "cvv": "123" });
    let r = post_json(&t, "/api/payments", &t.admin_key, json!({ "order_id": order, "additional_params": card })).await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::OK, json!("success")), "{}", r.body);
}

/// A card attempt recorded but never confirmed (the process stopped between the two): the
/// janitor's reconcile confirms it under the attempt's key, and the order is paid once.
#[tokio::test]
async fn an_unconfirmed_card_attempt_is_confirmed_by_reconcile() {
    let Some(stripe) = LocalStripe::start().await else { return };
    let t = TestApp::with_config(stripe_config(&stripe.base)).await;
    let (_, order) = crate::mutations::order_of(&t, 0, 4_000).await;
    let method = stripe
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "5"),
                ("card[exp_year]", "2030"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    let intent = stripe
        .post(
            "/v1/payment_intents",
            &[("amount", "4000"), ("currency", "usd"), ("payment_method", method["id"].as_str().unwrap())],
        )
        .await;
    let intent = intent["id"].as_str().unwrap().to_owned();
    let payment = count(
        &t,
        &format!(
            "INSERT INTO payments (order_id, status, provider, payment_method, amount_cents, currency, payment_intent_id, card_last4)
             VALUES ({order}, 1, 'stripe', 'card', 4000, 'USD', '{intent}', '4242') RETURNING id AS n"
        ),
    )
    .await;
    count(&t, &format!("UPDATE orders SET payment_status = 2 WHERE id = {order} RETURNING 1::bigint AS n")).await;
    let r = reconcile(&t, order, payment).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["payment_status"], 3, "{}", r.body);
    let at_stripe = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(at_stripe["status"], "succeeded");
    // Again: nothing more happens.
    let again = reconcile(&t, order, payment).await;
    assert_eq!(again.body["order"]["updated_at"], r.body["order"]["updated_at"]);
}
