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
struct LocalStripe {
    _child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl LocalStripe {
    async fn start() -> Option<Self> {
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

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
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

    async fn get(&self, path: &str) -> Value {
        let response =
            self.http.get(format!("{}{path}", self.base)).basic_auth(SECRET_KEY, Some("")).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Pays a payment intent directly at the fake, as a customer's browser would.
    async fn confirm(&self, intent: &str, card: &str) {
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

fn stripe_config(base: &str) -> Config {
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

async fn reconcile(t: &TestApp, order: i64, payment: i64) -> crate::common::Response {
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
