//! Merchant webhooks delivered from the outbox to a real HTTP receiver on loopback:
//! signatures, order per order without head-of-line blocking, retries, 410, the log,
//! redelivery, several workers, rollback, and `kill -9` of the real binary.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use billing_api::config::{Config, WebhookConfig};
use billing_api::domain::webhooks::{signing, worker::Worker};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::graphql_reads::count;
use crate::merchants::{MerchantSetup, create, merchant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Value,
    pub raw: String,
    pub answered: u16,
    pub at: Instant,
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Scripted answers per path; when none is left the answer is 200.
    script: HashMap<String, VecDeque<(u16, Option<&'static str>)>>,
    delay: Duration,
    /// Extra wait before answering on these paths.
    slow: HashMap<String, Duration>,
}

/// A webhook receiver on 127.0.0.1 that records every request.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    state: Arc<Mutex<ReceiverState>>,
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    raw: String,
) -> (StatusCode, HeaderMap, String) {
    let (status, retry_after, delay) = {
        let mut state = state.lock().unwrap();
        let next = state.script.get_mut(&path).and_then(VecDeque::pop_front).unwrap_or((200, None));
        (next.0, next.1, state.delay + state.slow.get(&path).copied().unwrap_or_default())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let received = Received {
        path,
        webhook_id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
        answered: status,
        at: Instant::now(),
    };
    state.lock().unwrap().received.push(received);
    let mut out = HeaderMap::new();
    if let Some(after) = retry_after {
        out.insert("retry-after", after.parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, format!("answer {status}"))
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new().route("/{path}", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn script(&self, path: &str, answers: &[(u16, Option<&'static str>)]) {
        self.state.lock().unwrap().script.insert(path.to_owned(), answers.iter().copied().collect());
    }

    pub fn slow_path(&self, path: &str, delay: Duration) {
        self.state.lock().unwrap().slow.insert(path.to_owned(), delay);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until `done` holds for what was received (at most `limit`).
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(started.elapsed() < limit, "timed out; received: {received:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Settings for tests: loopback targets allowed, short waits.
pub fn test_webhooks() -> WebhookConfig {
    WebhookConfig {
        enabled: false,
        poll: Duration::from_millis(50),
        // Long enough that a loaded machine's slow answer is not taken for a lost one (no
        // test here relies on the timeout firing).
        timeout: Duration::from_secs(10),
        retry_delays: vec![Duration::from_millis(1500); 3],
        batch: 20,
        allow_private_targets: true,
    }
}

async fn app() -> TestApp {
    TestApp::with_config(Config { webhooks: test_webhooks(), ..Config::default() }).await
}

/// Starts a worker on the test database; it stops when the test ends.
fn start_worker(t: &TestApp) -> tokio::task::JoinHandle<()> {
    let worker = Worker::new(t.app.pool().clone(), t.app.config().webhooks.clone()).unwrap();
    tokio::spawn(worker.run(Some(t.url.clone()), std::future::pending()))
}

/// Whether the signature header carries a valid `v1` signature by `secret`.
pub fn verifies(secret: &str, r: &Received) -> bool {
    let timestamp: i64 = r.timestamp.parse().unwrap();
    let expected = signing::sign(secret, &r.webhook_id, timestamp, &r.raw).unwrap();
    r.signature.split(' ').any(|s| s == expected)
}

async fn mark_paid(t: &TestApp, order_id: &Value) {
    t.gql_data("mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": order_id })).await;
}

async fn new_order(t: &TestApp, m: &MerchantSetup, callback: &str, amount: i64) -> Value {
    let body =
        create(t, &m.key, json!({ "amountCents": amount, "callbackUrl": callback, "customerOrderId": "co-1" })).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createMerchantOrder"].clone()
}

#[tokio::test]
async fn deliveries_are_signed_ordered_per_order_and_retried_without_blocking_others() {
    let t = app().await;
    let receiver = Receiver::start().await;
    // The first delivery to /a fails; /b always succeeds.
    receiver.script("a", &[(500, None)]);
    let m = merchant(&t, "Webhooks").await;
    let a = new_order(&t, &m, &receiver.url("a"), 1000).await;
    mark_paid(&t, &a["id"]).await;
    let b = new_order(&t, &m, &receiver.url("b"), 2000).await;
    let _worker = start_worker(&t);

    let received = receiver
        .wait_for(Duration::from_secs(15), |r| r.iter().filter(|x| x.answered == 200 && x.path == "a").count() == 2)
        .await;
    let to_a: Vec<&Received> = received.iter().filter(|r| r.path == "a").collect();
    let to_b: Vec<&Received> = received.iter().filter(|r| r.path == "b").collect();
    // a: the failed first attempt, its retry (same webhook-id), then the later event.
    assert_eq!(to_a.len(), 3, "{to_a:#?}");
    assert_eq!((to_a[0].answered, to_a[1].answered, to_a[2].answered), (500, 200, 200));
    assert_eq!(to_a[0].webhook_id, to_a[1].webhook_id);
    assert_ne!(to_a[1].webhook_id, to_a[2].webhook_id);
    assert_eq!(to_a[1].body["status"], "WAITING_FOR_PAYMENT");
    assert_eq!(to_a[2].body["status"], "COMPLETE");
    assert_eq!(to_a[2].body["previous_status"], "WAITING_FOR_PAYMENT");
    assert!(to_a[1].body["sequence"].as_i64().unwrap() < to_a[2].body["sequence"].as_i64().unwrap());
    // b was not held up by a's failure: it arrived before a's retry.
    assert_eq!(to_b.len(), 1);
    assert!(to_b[0].at < to_a[1].at, "b waited behind a");
    // Every request is signed by the merchant's secret, and the body has the seed's shape.
    for r in &received {
        assert!(r.webhook_id.starts_with("msg_"), "{r:?}");
        assert!(verifies(&m.secret, r), "bad signature: {r:?}");
    }
    let body = &to_a[2].body;
    assert_eq!(body["id"], a["publicId"]);
    assert_eq!(body["pay_amount"], json!(1000.0));
    assert_eq!(body["currency"], "JPY");
    assert_eq!(body["customer_order_id"], "co-1");
    assert_eq!(body["pay_method"], "0");
    assert!(body["create_date"].as_i64().unwrap() > 1_700_000_000_000, "epoch milliseconds: {body}");
    assert!(body["actual_payment_date"].is_i64());
    assert_eq!(to_b[0].body["id"], b["publicId"]);

    // The log: every attempt, with status, excerpt and latency, filtered by order.
    let log = t
        .gql_data(
            "query($o: ID!) { webhookDeliveries(filter: { orderId: $o }) { nodes { webhookId state sequence attempts
                attemptLog { attempt responseStatus responseExcerpt latencyMs } } } }",
            json!({ "o": a["id"] }),
        )
        .await;
    let nodes = log["webhookDeliveries"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{log}");
    let first = nodes.iter().find(|n| n["webhookId"] == to_a[0].webhook_id.as_str()).unwrap();
    assert_eq!(first["state"], "DELIVERED");
    let statuses: Vec<&Value> = first["attemptLog"].as_array().unwrap().iter().map(|x| &x["responseStatus"]).collect();
    assert_eq!(statuses, vec![&json!(500), &json!(200)]);
    assert_eq!(first["attemptLog"][0]["responseExcerpt"], "answer 500");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_client_errors_are_not_retried() {
    let t = app().await;
    let receiver = Receiver::start().await;
    let m = merchant(&t, "Endpoints").await;
    // No callbackUrl: deliveries go to the merchant's endpoints.
    for path in ["gone", "bad", "slow"] {
        t.gql_data(
            "mutation($m: UUID!, $u: String!) { addWebhookEndpoint(merchantId: $m, url: $u) { id } }",
            json!({ "m": m.merchant, "u": receiver.url(path) }),
        )
        .await;
    }
    receiver.script("gone", &[(410, None)]);
    receiver.script("bad", &[(400, None)]);
    receiver.script("slow", &[(429, Some("2"))]);
    let body = create(&t, &m.key, json!({ "amountCents": 300 })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    let _worker = start_worker(&t);
    let received =
        receiver.wait_for(Duration::from_secs(15), |r| r.iter().any(|x| x.path == "slow" && x.answered == 200)).await;
    let count_of = |path: &str| received.iter().filter(|r| r.path == path).count();
    assert_eq!((count_of("gone"), count_of("bad")), (1, 1));
    let slow: Vec<&Received> = received.iter().filter(|r| r.path == "slow").collect();
    assert!(slow[1].at.duration_since(slow[0].at) >= Duration::from_millis(1900), "Retry-After was not honoured");
    let endpoints = t
        .gql_data(
            "query($m: UUID!) { merchant(id: $m) { webhookEndpoints { url enabled disabledReason } } }",
            json!({ "m": m.merchant }),
        )
        .await;
    let endpoints = endpoints["merchant"]["webhookEndpoints"].as_array().unwrap().clone();
    let gone = endpoints.iter().find(|e| e["url"].as_str().unwrap().ends_with("/gone")).unwrap();
    assert_eq!(gone["enabled"], false);
    assert_eq!(gone["disabledReason"], "410 Gone");
    assert!(endpoints.iter().filter(|e| e["enabled"] == true).count() == 2);
    // The order's events say so; a later change sends nothing to the disabled endpoint.
    let kinds =
        t.gql_data("query($id: ID!) { order(id: $id) { events { kind } } }", json!({ "id": order["id"] })).await;
    let kinds: Vec<&str> =
        kinds["order"]["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"webhook_endpoint_disabled"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "webhook_given_up").count(), 2, "{kinds:?}");
    mark_paid(&t, &order["id"]).await;
    receiver.wait_for(Duration::from_secs(10), |r| r.iter().filter(|x| x.path == "slow").count() == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().iter().filter(|r| r.path == "gone").count(), 1);
}

#[tokio::test]
async fn a_redelivery_keeps_its_webhook_id_and_merchants_see_only_their_log() {
    let t = app().await;
    let receiver = Receiver::start().await;
    let a = merchant(&t, "A").await;
    let b = merchant(&t, "B").await;
    let order = new_order(&t, &a, &receiver.url("a"), 100).await;
    new_order(&t, &b, &receiver.url("b"), 200).await;
    let _worker = start_worker(&t);
    receiver.wait_for(Duration::from_secs(10), |r| r.len() == 2).await;
    // Received is not yet recorded delivered: a redelivery of a send still under way only
    // hurries it. Wait for both to be recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&t, "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 2").await < 2 {
        assert!(Instant::now() < deadline, "deliveries not recorded delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let query = "query { webhookDeliveries { nodes { id webhookId orderId } } }";
    let seen_by_b = t.gql_as(&b.key, query, json!({})).await.body;
    let nodes = seen_by_b["data"]["webhookDeliveries"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 1, "{seen_by_b}");
    assert_ne!(nodes[0]["orderId"], order["id"]);
    let a_log = t.gql_as(&a.key, query, json!({})).await.body;
    let delivery = a_log["data"]["webhookDeliveries"]["nodes"][0].clone();
    // B cannot redeliver A's delivery.
    let redeliver = "mutation($id: ID!) { redeliverWebhooks(deliveryId: $id) }";
    let response = t.gql_as(&b.key, redeliver, json!({ "id": delivery["id"] })).await;
    assert_eq!(crate::merchants::error_code(&response.body), "NOT_FOUND", "{}", response.body);
    let response = t.gql_as(&a.key, redeliver, json!({ "id": delivery["id"] })).await;
    assert_eq!(response.body["data"]["redeliverWebhooks"], json!([delivery["id"]]), "{}", response.body);
    let received = receiver.wait_for(Duration::from_secs(10), |r| r.len() == 3).await;
    let again: Vec<&Received> = received.iter().filter(|r| r.path == "a").collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].webhook_id, again[1].webhook_id);
    assert_eq!(again[0].raw, again[1].raw, "the same bytes are sent again");
    // Customers and support: support reads all, customers nothing.
    let user = t.create_user("c@example.com", 0).await;
    let customer = t.key(billing_api::domain::Role::Customer, Some(user)).await;
    let response = t.gql_as(&customer, query, json!({})).await;
    assert_eq!(crate::merchants::error_code(&response.body), "FORBIDDEN");
}

#[tokio::test]
async fn a_rolled_back_change_writes_no_delivery() {
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    let t = app().await;
    let m = merchant(&t, "Rollback").await;
    let order = new_order(&t, &m, "http://127.0.0.1:9/none", 100).await;
    let order_id: i64 = order["id"].as_str().unwrap().parse().unwrap();
    let before = count(&t, "SELECT count(*) AS n FROM webhook_deliveries").await;
    assert_eq!(before, 1);
    let mut conn = AsyncPgConnection::establish(&t.url).await.unwrap();
    let result: Result<(), billing_api::error::AppError> = conn
        .transaction(async |conn| {
            billing_api::db::queries::update_order(
                conn,
                order_id,
                &billing_api::db::models::OrderChanges {
                    status: Some(3),
                    cancelled_at: Some(Some(chrono::Utc::now())),
                    ..Default::default()
                },
            )
            .await?;
            billing_api::domain::events::record(conn, order_id, "cancelled", "test", json!({})).await?;
            // The change's deliveries exist inside the transaction…
            let inside: i64 = diesel_async::RunQueryDsl::get_result(
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "(SELECT count(*) FROM webhook_deliveries)",
                )),
                conn,
            )
            .await?;
            assert_eq!(inside, 2);
            Err(billing_api::error::AppError::Conflict("roll back".into()))
        })
        .await;
    assert!(result.is_err());
    // …and not after it rolled back.
    assert_eq!(count(&t, "SELECT count(*) AS n FROM webhook_deliveries").await, 1);
    assert_eq!(count(&t, "SELECT event_seq AS n FROM orders").await, 1);
}

#[tokio::test]
async fn two_workers_deliver_each_message_once() {
    let t = app().await;
    let receiver = Receiver::start().await;
    let m = merchant(&t, "Two workers").await;
    for i in 0..15 {
        let order = new_order(&t, &m, &receiver.url(&format!("o{i}")), 100 + i).await;
        mark_paid(&t, &order["id"]).await;
    }
    let total = count(&t, "SELECT count(*) AS n FROM webhook_deliveries").await;
    assert_eq!(total, 30);
    let _one = start_worker(&t);
    let _two = start_worker(&t);
    receiver.wait_for(Duration::from_secs(20), |r| r.len() >= 30).await;
    // The receiver records a request before the worker records its answer: wait for every
    // delivery to be recorded delivered, then a moment more, so a second send would show.
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&t, "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 2").await < 30 {
        assert!(Instant::now() < deadline, "deliveries not recorded: {:?}", receiver.received().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = receiver.received();
    let mut ids: Vec<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    assert_eq!(received.len(), 30, "a message was sent twice");
    // Per order, WAITING_FOR_PAYMENT came before COMPLETE.
    for i in 0..15 {
        let statuses: Vec<&str> =
            received.iter().filter(|r| r.path == format!("o{i}")).map(|r| r.body["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, vec!["WAITING_FOR_PAYMENT", "COMPLETE"]);
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 2").await, 30);
}

const BIN: &str = env!("CARGO_BIN_EXE_billing-api");

/// The real binary on `url`, with the webhook worker on or off.
fn spawn_server(url: &str, port: u16, worker: bool) -> std::process::Child {
    std::process::Command::new(BIN)
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", url)
        .env("CALLBACK_SECRET", crate::binary::TEST_CALLBACK_SECRET)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RATE_LIMIT_PER_SECOND", "0")
        .env("JANITOR_ENABLED", "false")
        .env("WEBHOOK_WORKER_ENABLED", worker.to_string())
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("WEBHOOK_TIMEOUT_MS", "500")
        .env("WEBHOOK_POLL_MS", "100")
        .env("WEBHOOK_RETRY_SECS", "1,1,1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let health = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

fn cli(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .env("DATABASE_URL", url)
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Committed changes whose deliveries were never sent (the process was killed first), and
/// deliveries cut off mid-send by `kill -9`, all arrive after a restart: none is lost.
#[tokio::test]
async fn deliveries_survive_kill_9_between_commit_and_send() {
    let url = crate::common::fresh_database().await;
    let receiver = Receiver::start().await;
    let created = cli(&url, &["merchants", "create", "--name", "Crash Merchant"]);
    let merchant = created.split_whitespace().nth(2).unwrap().to_owned();
    cli(&url, &["merchants", "add-store", "--merchant", &merchant, "--store-name", "S", "--office-name", "O"]);
    cli(&url, &["merchants", "add-endpoint", "--merchant", &merchant, "--url", &receiver.url("crash")]);
    let key = cli(&url, &["keys", "create", "--role", "merchant", "--merchant", &merchant]);
    let key = key.lines().last().unwrap().trim().to_owned();
    let admin = cli(&url, &["keys", "create", "--role", "admin"]);
    let admin = admin.lines().last().unwrap().trim().to_owned();

    // Phase 1: the worker is off, so every committed change waits in the outbox; kill -9.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = spawn_server(&url, port, false);
    wait_ready(port).await;
    let client = reqwest::Client::new();
    let gql = |key: String, query: &'static str, variables: Value| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("http://127.0.0.1:{port}/graphql"))
                .bearer_auth(key)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    let mut orders = Vec::new();
    for i in 0..10 {
        let body = gql(
            key.clone(),
            "mutation($a: Int!) { createMerchantOrder(input: { amountCents: $a }) { id } }",
            json!({ "a": 100 + i }),
        )
        .await;
        orders.push(body["data"]["createMerchantOrder"]["id"].clone());
    }
    for order in &orders[..5] {
        gql(admin.clone(), "mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": order }))
            .await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(receiver.received().is_empty());

    // Phase 2: the worker runs; the receiver is slow, and the server is killed mid-send.
    receiver.set_delay(Duration::from_millis(400));
    let mut server = spawn_server(&url, port, true);
    receiver.wait_for(Duration::from_secs(20), |r| !r.is_empty()).await;
    server.kill().unwrap();
    server.wait().unwrap();

    // Phase 3: restarted, it delivers everything.
    receiver.set_delay(Duration::ZERO);
    let mut server = spawn_server(&url, port, true);
    let received = receiver
        .wait_for(Duration::from_secs(40), |r| {
            let mut ids: Vec<&str> = r.iter().filter(|x| x.answered == 200).map(|x| x.webhook_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len() == 15
        })
        .await;
    server.kill().unwrap();
    server.wait().unwrap();
    // Per order, the statuses arrive in order (a resend repeats, it never reorders).
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    for r in received.iter().filter(|r| r.answered == 200) {
        let seq = r.body["sequence"].as_i64().unwrap();
        let id = r.body["id"].as_str().unwrap().to_owned();
        let previous = last_seq.insert(id, seq).unwrap_or(0);
        assert!(seq >= previous, "out of order: {r:?}");
    }
    println!(
        "kill -9 figures: deliveries committed 15, distinct delivered 15, requests received {} (repeats from the mid-send kill: {})",
        received.len(),
        received.len() - 15
    );
}

/// A payment waiting for 3-D Secure shows as AUTHENTICATING_3DS, and as TIMEOUT_3DS once
/// the deadline passes; an OTP that is confirmed ends COMPLETE; a merchant cancels its own
/// draft. Each change reaches the merchant in order.
#[tokio::test]
async fn authentication_waits_time_out_and_every_status_reaches_the_merchant() {
    let config =
        Config { webhooks: test_webhooks(), authentication_timeout: Duration::from_secs(1), ..Config::default() };
    let t = TestApp::with_config(config).await;
    let receiver = Receiver::start().await;
    let m = merchant(&t, "Auth").await;
    let three_ds = new_order(&t, &m, &receiver.url("three-ds"), 1000).await;
    let otp = new_order(&t, &m, &receiver.url("otp"), 2000).await;
    let draft =
        create(&t, &m.key, json!({ "amountCents": 5, "draft": true, "callbackUrl": receiver.url("draft") })).await;
    let draft = draft["data"]["createMerchantOrder"].clone();
    let _worker = start_worker(&t);

    let wait_for_auth = |order: &Value, kind: &str| {
        let (order, kind) = (order.clone(), kind.to_owned());
        let t = &t;
        async move {
            let payment = crate::callbacks::start_payment(t, order["id"].as_str().unwrap().parse().unwrap()).await;
            let body = t
                .gql(
                    "mutation($o: ID!, $p: ID!, $k: AuthenticationKind) { processPaymentCallback(input: {
                        orderId: $o, paymentId: $p, status: PENDING, authentication: $k }) { merchantStatus } }",
                    json!({ "o": order["id"], "p": payment.to_string(), "k": kind }),
                )
                .await;
            (payment, body["data"]["processPaymentCallback"]["merchantStatus"].clone())
        }
    };
    let (_, status) = wait_for_auth(&three_ds, "THREE_DS").await;
    assert_eq!(status, "AUTHENTICATING_3DS");
    let (otp_payment, status) = wait_for_auth(&otp, "OTP").await;
    assert_eq!(status, "OTP_CONFIRMING");
    // Authentication only goes with PENDING.
    let response = t
        .gql(
            "mutation($o: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: \"1\", status: FAILED, authentication: OTP }) { id } }",
            json!({ "o": otp["id"] }),
        )
        .await;
    assert_eq!(crate::merchants::error_code(&response), "BAD_USER_INPUT");
    // The OTP is confirmed: COMPLETE.
    t.gql_data(
        "mutation($o: ID!, $p: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: $p, status: SUCCEEDED }) { id } }",
        json!({ "o": otp["id"], "p": otp_payment.to_string() }),
    )
    .await;
    // 3-D Secure is not completed in time: the janitor fails the attempt.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pass = billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    assert_eq!(pass.authentications_expired, 1);
    let again = billing_api::domain::janitor::run_once(t.app.pool(), t.app.providers()).await.unwrap();
    assert_eq!(again.authentications_expired, 0);
    let order = t
        .gql_data(
            "query($id: ID!) { order(id: $id) { paymentStatus merchantStatus payments { status failureCode authentication } } }",
            json!({ "id": three_ds["id"] }),
        )
        .await;
    assert_eq!(order["order"]["paymentStatus"], "FAILED");
    assert_eq!(order["order"]["merchantStatus"], "TIMEOUT_3DS");
    assert_eq!(order["order"]["payments"][0]["failureCode"], "authentication_timeout");
    assert_eq!(order["order"]["payments"][0]["authentication"], "THREE_DS");
    // The merchant cancels its draft; another merchant cannot.
    let other = merchant(&t, "Other").await;
    let cancel =
        "mutation($id: ID!) { cancelOrder(input: { id: $id, reason: \"changed my mind\" }) { status merchantStatus } }";
    let response = t.gql_as(&other.key, cancel, json!({ "id": draft["id"] })).await;
    assert_eq!(crate::merchants::error_code(&response.body), "NOT_FOUND", "{}", response.body);
    let response = t.gql_as(&m.key, cancel, json!({ "id": draft["id"] })).await;
    assert_eq!(
        response.body["data"]["cancelOrder"],
        json!({ "status": "CANCELLED", "merchantStatus": "CANCEL" }),
        "{}",
        response.body
    );

    let statuses = |r: &[Received], path: &str| -> Vec<String> {
        r.iter().filter(|x| x.path == path).map(|x| x.body["status"].as_str().unwrap().to_owned()).collect()
    };
    let received = receiver
        .wait_for(Duration::from_secs(10), |r| {
            statuses(r, "three-ds").len() == 3 && statuses(r, "otp").len() == 3 && statuses(r, "draft").len() == 2
        })
        .await;
    // Starting a payment takes no money: still WAITING_FOR_PAYMENT, so nothing is sent.
    assert_eq!(statuses(&received, "three-ds"), ["WAITING_FOR_PAYMENT", "AUTHENTICATING_3DS", "TIMEOUT_3DS"]);
    assert_eq!(statuses(&received, "otp"), ["WAITING_FOR_PAYMENT", "OTP_CONFIRMING", "COMPLETE"]);
    assert_eq!(statuses(&received, "draft"), ["TEMPORARY_SAVE", "CANCEL"]);
    let timeout = received.iter().find(|r| r.body["status"] == "TIMEOUT_3DS").unwrap();
    assert!(timeout.body["authenticating_date"].is_i64(), "{:?}", timeout.body);
}

/// During a rotation each delivery carries a signature by the old and by the new secret,
/// so a receiver that knows either accepts it; after the overlap only the new one signs.
#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends() {
    let t = app().await;
    let receiver = Receiver::start().await;
    let m = merchant(&t, "Rotation").await;
    let rotate = "mutation($m: UUID!, $o: Int!) { rotateMerchantSecret(merchantId: $m, overlapSeconds: $o) { secret expiresAt } }";
    let response = t.gql_as(&m.key, rotate, json!({ "m": m.merchant, "o": 3600 })).await;
    let new_secret = response.body["data"]["rotateMerchantSecret"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, m.secret);
    new_order(&t, &m, &receiver.url("both"), 100).await;
    // Before any worker runs, the delivery waits, and /metrics says so.
    let metrics = t.get("/metrics", None).await;
    assert!(metrics.body.as_str().unwrap().contains("billing_webhook_pending 1"), "{}", metrics.body);
    let _worker = start_worker(&t);
    let received = receiver.wait_for(Duration::from_secs(10), |r| r.len() == 1).await;
    assert_eq!(received[0].signature.split(' ').count(), 2, "{:?}", received[0].signature);
    assert!(verifies(&m.secret, &received[0]), "the old secret still verifies");
    assert!(verifies(&new_secret, &received[0]), "the new secret verifies");
    // A rotation with no overlap: only the newest secret signs from now on.
    let response = t.gql_as(&m.key, rotate, json!({ "m": m.merchant, "o": 0 })).await;
    let newest = response.body["data"]["rotateMerchantSecret"]["secret"].as_str().unwrap().to_owned();
    new_order(&t, &m, &receiver.url("one"), 200).await;
    let received = receiver.wait_for(Duration::from_secs(10), |r| r.len() == 2).await;
    let last = received.iter().find(|r| r.path == "one").unwrap();
    assert_eq!(last.signature.split(' ').count(), 1);
    assert!(verifies(&newest, last));
    assert!(!verifies(&new_secret, last) && !verifies(&m.secret, last));
    // Secrets never show in the delivery log or the order's events.
    let log =
        t.gql_data("query { webhookDeliveries { nodes { body attemptLog { responseExcerpt } } } }", json!({})).await;
    for secret in [&m.secret, &new_secret, &newest] {
        assert!(!log.to_string().contains(secret.trim_start_matches("whsec_")));
    }
}

/// An endpoint that fails every attempt of the schedule is given up and disabled, and the
/// order's events say so; a time range of deliveries can then be sent again.
#[tokio::test]
async fn an_endpoint_failing_through_the_schedule_is_disabled_and_a_range_can_be_resent() {
    let t = app().await;
    let receiver = Receiver::start().await;
    receiver.script("down", &[(500, None), (503, None), (502, None), (500, None)]);
    let m = merchant(&t, "Down").await;
    t.gql_data(
        "mutation($m: UUID!, $u: String!) { addWebhookEndpoint(merchantId: $m, url: $u) { id } }",
        json!({ "m": m.merchant, "u": receiver.url("down") }),
    )
    .await;
    let started = chrono::Utc::now();
    let body = create(&t, &m.key, json!({ "amountCents": 300 })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    let _worker = start_worker(&t);
    // The first attempt and the three retries of the test schedule.
    receiver.wait_for(Duration::from_secs(15), |r| r.len() == 4).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&t, "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 3").await == 0 {
        assert!(Instant::now() < deadline, "not given up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoint = t
        .gql_data(
            "query($m: UUID!) { merchant(id: $m) { webhookEndpoints { id enabled disabledReason } } }",
            json!({ "m": m.merchant }),
        )
        .await;
    let endpoint = endpoint["merchant"]["webhookEndpoints"][0].clone();
    assert_eq!(endpoint["enabled"], false);
    assert!(endpoint["disabledReason"].as_str().unwrap().contains("failing"), "{endpoint}");
    let events =
        t.gql_data("query($id: ID!) { order(id: $id) { events { kind } } }", json!({ "id": order["id"] })).await;
    let kinds: Vec<&str> =
        events["order"]["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"webhook_given_up") && kinds.contains(&"webhook_endpoint_disabled"), "{kinds:?}");
    let log = t
        .gql_data(
            "query($o: ID!) { webhookDeliveries(filter: { orderId: $o, state: GIVEN_UP }) { nodes { attempts attemptLog { responseStatus } } } }",
            json!({ "o": order["id"] }),
        )
        .await;
    let statuses: Vec<i64> = log["webhookDeliveries"]["nodes"][0]["attemptLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["responseStatus"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 503, 502, 500]);
    // The merchant fixes its endpoint and asks for the range again.
    t.gql_data(
        "mutation($id: ID!) { setWebhookEndpointEnabled(id: $id, enabled: true) { enabled } }",
        json!({ "id": endpoint["id"] }),
    )
    .await;
    let resent = t
        .gql_as(
            &m.key,
            "mutation($from: DateTime!) { redeliverWebhooks(filter: { createdFrom: $from }) }",
            json!({ "from": (started - chrono::Duration::seconds(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(resent.body["data"]["redeliverWebhooks"].as_array().unwrap().len(), 1, "{}", resent.body);
    let received = receiver.wait_for(Duration::from_secs(10), |r| r.len() == 5).await;
    assert_eq!(received[4].answered, 200);
    assert_eq!(received[4].webhook_id, received[0].webhook_id);
}

/// A callback URL that was public when it was set but points at a private address when
/// the delivery is sent is not called: the send-time check refuses it and logs why.
#[tokio::test]
async fn a_url_that_turned_private_is_not_called_at_send_time() {
    let config =
        Config { webhooks: WebhookConfig { allow_private_targets: false, ..test_webhooks() }, ..Config::default() };
    let t = TestApp::with_config(config).await;
    let receiver = Receiver::start().await;
    let m = merchant(&t, "Rebinding").await;
    let body = create(&t, &m.key, json!({ "amountCents": 10, "callbackUrl": "https://93.184.216.34/hook" })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    // As if DNS now answered a loopback address: the stored target is the receiver.
    let order_id: i64 = order["id"].as_str().unwrap().parse().unwrap();
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&t.url).await.unwrap();
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE webhook_deliveries SET url = '{}' WHERE order_id = {order_id}",
            receiver.url("private")
        )),
        &mut conn,
    )
    .await
    .unwrap();
    let worker = Worker::new(t.app.pool().clone(), t.app.config().webhooks.clone()).unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty(), "a private address was called");
    let log = t
        .gql_data(
            "query($o: ID!) { webhookDeliveries(filter: { orderId: $o }) { nodes { state attemptLog { responseStatus error } } } }",
            json!({ "o": order["id"] }),
        )
        .await;
    let attempt = &log["webhookDeliveries"]["nodes"][0]["attemptLog"][0];
    assert_eq!(attempt["responseStatus"], Value::Null);
    assert!(attempt["error"].as_str().unwrap().contains("not public"), "{attempt}");
}

/// A delivery waiting hours for its next retry can be sent now: redelivery hurries a
/// pending one (same webhook-id) instead of answering that it does not exist.
#[tokio::test]
async fn a_pending_delivery_can_be_hurried() {
    let config = Config {
        webhooks: WebhookConfig { retry_delays: vec![Duration::from_secs(3600)], ..test_webhooks() },
        ..Config::default()
    };
    let t = TestApp::with_config(config).await;
    let receiver = Receiver::start().await;
    receiver.script("later", &[(503, None)]);
    let m = merchant(&t, "Hurry").await;
    new_order(&t, &m, &receiver.url("later"), 100).await;
    let worker = Worker::new(t.app.pool().clone(), t.app.config().webhooks.clone()).unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(worker.run_once().await.unwrap(), 0, "the retry is an hour away");
    let log = t.gql_as(&m.key, "query { webhookDeliveries { nodes { id state } } }", json!({})).await.body;
    let delivery = log["data"]["webhookDeliveries"]["nodes"][0].clone();
    assert_eq!(delivery["state"], "PENDING");
    let response = t
        .gql_as(&m.key, "mutation($id: ID!) { redeliverWebhooks(deliveryId: $id) }", json!({ "id": delivery["id"] }))
        .await;
    assert_eq!(response.body["data"]["redeliverWebhooks"], json!([delivery["id"]]), "{}", response.body);
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!((received[0].answered, received[1].answered), (503, 200));
    assert_eq!(received[0].webhook_id, received[1].webhook_id);
}

/// A refund request on a store's order is announced to the merchant at every transition,
/// in order with the order's own status changes.
#[tokio::test]
async fn refund_request_changes_reach_the_merchant() {
    let t = app().await;
    let receiver = Receiver::start().await;
    let m = merchant(&t, "Refunds").await;
    let order = new_order(&t, &m, &receiver.url("r"), 1000).await;
    mark_paid(&t, &order["id"]).await;
    let asked = t
        .gql_as(
            &m.key,
            "mutation($o: ID!) { requestRefund(input: { orderId: $o, amountCents: 1000, reason: \"returned\" }) { id } }",
            json!({ "o": order["id"] }),
        )
        .await
        .body;
    let id = asked["data"]["requestRefund"]["id"].clone();
    let approved = t
        .gql_as(&m.key, "mutation($id: ID!) { approveRefundRequest(id: $id) { status } }", json!({ "id": id }))
        .await
        .body;
    assert_eq!(approved["data"]["approveRefundRequest"]["status"], "ISSUED", "{approved}");
    let _worker = start_worker(&t);
    let received = receiver.wait_for(Duration::from_secs(10), |r| r.len() == 6).await;
    let seen: Vec<String> = received
        .iter()
        .map(|r| match r.body["event_type"].as_str().unwrap() {
            "refund_request.updated" => format!("request {}", r.body["refund_request"]["status"].as_str().unwrap()),
            _ => r.body["status"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(
        seen,
        ["WAITING_FOR_PAYMENT", "COMPLETE", "request PENDING", "request PROCESSING", "request ISSUED", "REFUNDED"]
    );
    let sequences: Vec<i64> = received.iter().map(|r| r.body["sequence"].as_i64().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert_eq!(received[4].body["refund_request"]["amount"], json!(1000.0));
}

/// An endpoint that answers slowly holds only its own slot: with two slots, five other
/// orders' deliveries go through the free one before the slow one is answered.
#[tokio::test]
async fn a_slow_endpoint_holds_only_its_own_slot() {
    let config = Config { webhooks: WebhookConfig { batch: 2, ..test_webhooks() }, ..Config::default() };
    let t = TestApp::with_config(config).await;
    let receiver = Receiver::start().await;
    // Slow enough that the five others, one after another through the free slot, are done
    // long before it even on a loaded machine.
    receiver.slow_path("slow", Duration::from_secs(4));
    let m = merchant(&t, "Slots").await;
    new_order(&t, &m, &receiver.url("slow"), 100).await;
    for i in 0..5 {
        new_order(&t, &m, &receiver.url(&format!("fast{i}")), 200 + i).await;
    }
    let _worker = start_worker(&t);
    let received = receiver.wait_for(Duration::from_secs(20), |r| r.len() == 6).await;
    let slow = received.iter().find(|r| r.path == "slow").unwrap();
    for fast in received.iter().filter(|r| r.path != "slow") {
        assert!(fast.at < slow.at, "{} waited for the slow endpoint", fast.path);
    }
}
