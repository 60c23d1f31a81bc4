//! The real binary killed with SIGKILL at random moments while clients refund through a
//! (slow, sometimes failing) provider and retry each request with its Idempotency-Key until
//! the answer is definite. Afterwards: `billing-api audit` finds nothing, every acknowledged
//! refund is in the database, the janitor leaves nothing PENDING, and the provider holds
//! exactly the refunds the database says succeeded.
//!
//! The same load runs while PostgreSQL is stopped with `pg_ctl -m immediate` and started
//! again (a durable cluster of its own).
//!
//! Bounded: `CRASH_KILLS` kills (default 4), `CRASH_REFUNDS` refunds (default 40); the
//! schedule comes from `CRASH_SEED` (printed on failure). `scripts/crash_long.sh` runs the
//! long mode.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::binary::TEST_CALLBACK_SECRET;
use crate::common::fresh_database;
use crate::fake_stripe::{FakeStripe, Fault};
use billing_api::pgcluster;

const BIN: &str = env!("CARGO_BIN_EXE_billing-api");

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server {
    url: String,
    port: u16,
    stripe: String,
    child: Option<Child>,
}

impl Server {
    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env_remove("RUST_LOG")
            .env("DATABASE_URL", &self.url)
            .env("CALLBACK_SECRET", TEST_CALLBACK_SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .env("PAYMENT_PROVIDER", "stripe")
            .env("STRIPE_API_BASE", &self.stripe)
            .env("STRIPE_SECRET_KEY", "sk_test_crash")
            .env("PROVIDER_TIMEOUT_MS", "400")
            .env("JANITOR_TICK_MS", "200")
            .env("JANITOR_DELAYS_SECS", "1")
            .env("IDEMPOTENCY_LEASE_MS", "1000")
            .env("RATE_LIMIT_PER_SECOND", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    async fn start(&mut self) {
        let child = self.command().spawn().unwrap();
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let health = client.get(format!("http://127.0.0.1:{}/readyz", self.port)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not come up");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What one refund request finally got.
#[derive(Debug, Clone)]
struct Outcome {
    key: String,
    status: u16,
    tries: usize,
}

async fn graphql(client: &reqwest::Client, base: &str, key: &str, query: &str, variables: Value) -> Value {
    let response = client
        .post(format!("{base}/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    body["data"].clone()
}

/// Retries one refund with its key until the answer is definite: 200, 502 (the provider
/// refused), or a stored 4xx (over-refund).
async fn refund_until_definite(base: String, admin: String, order: i64, amount: i64, key: String) -> Outcome {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(started.elapsed() < Duration::from_secs(90), "refund {key} got no definite answer in 90 s");
        let sent = client
            .post(format!("{base}/api/v1/admin/orders/{order}/refund"))
            .bearer_auth(&admin)
            .header("idempotency-key", &key)
            .json(&json!({ "amount_cents": amount }))
            .send()
            .await;
        let Ok(response) = sent else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let in_progress = status == 409 && body["message"].as_str().is_some_and(|m| m.contains("in progress"));
        match status {
            200 | 502 => return Outcome { key, status, tries },
            409 | 400 | 422 if !in_progress => return Outcome { key, status, tries },
            // 202 OUTCOME_PENDING, 503, 500, in progress: ask again.
            _ => tokio::time::sleep(Duration::from_millis(150)).await,
        }
    }
}

/// What goes wrong while the load runs.
enum Disruption {
    /// SIGKILL the server, then start it again.
    KillServer,
    /// Stop PostgreSQL with `pg_ctl -m immediate` (as a crash would), then start it again.
    StopPostgres(pgcluster::LocalCluster),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_under_refund_load_loses_and_doubles_nothing() {
    scenario(Disruption::KillServer, fresh_database().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_postgres_under_refund_load_loses_and_doubles_nothing() {
    // A cluster of its own (the other tests' cluster must stay up), durable: the test
    // clusters' `synchronous_commit = off` would lose acknowledged commits in a crash, and
    // no service can keep a promise its database forgot.
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pg-crash-{}", std::process::id()));
    let cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = pgcluster::LocalCluster::open(&root, pgcluster::Durability::Durable).unwrap();
        cluster.start().unwrap();
        cluster
    })
    .await
    .unwrap();
    pgcluster::ensure_database(&cluster, "billing").await.unwrap();
    let url = cluster.url("billing");
    let stop = cluster.stop_command_line();
    let root = cluster.root().to_owned();
    scenario(Disruption::StopPostgres(cluster), url).await;
    let _ = Command::new("sh").arg("-c").arg(&stop).stdout(Stdio::null()).status();
    let _ = std::fs::remove_dir_all(root);
}

async fn scenario(mut disruption: Disruption, url: String) {
    let seed = env_number("CRASH_SEED", rand::rng().random());
    let kills = env_number("CRASH_KILLS", 4);
    let refunds = env_number("CRASH_REFUNDS", 40) as usize;
    println!("CRASH_SEED={seed} CRASH_KILLS={kills} CRASH_REFUNDS={refunds}");
    let mut rng = StdRng::seed_from_u64(seed);

    let (stripe, fake) = FakeStripe::start(Duration::from_millis(1_500)).await;
    fake.delay_ms.store(30, Ordering::Relaxed);
    let created =
        Command::new(BIN).env("DATABASE_URL", &url).args(["keys", "create", "--role", "admin"]).output().unwrap();
    let admin = String::from_utf8_lossy(&created.stdout).lines().last().unwrap().trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Server { url: url.clone(), port, stripe, child: None };
    server.start().await;
    let base = format!("http://127.0.0.1:{port}");

    // Orders paid through the provider: 8 orders of 5,000.
    let client = reqwest::Client::new();
    let user = graphql(
        &client,
        &base,
        &admin,
        "mutation { createUser(input: { email: \"crash@example.com\", name: \"C\" }) { id } }",
        json!({}),
    )
    .await;
    let user = user["createUser"]["id"].as_str().unwrap().to_owned();
    let mut orders = Vec::new();
    for _ in 0..8 {
        let order = graphql(
            &client,
            &base,
            &admin,
            "mutation($u: ID!) { createOrder(input: { userId: $u, currency: \"USD\", paymentMethod: \"card\", items: [{ name: \"A\", quantity: 1, unitPriceCents: 5000 }] }) { id } }",
            json!({ "u": user }),
        )
        .await;
        let order: i64 = order["createOrder"]["id"].as_str().unwrap().parse().unwrap();
        let payment = graphql(
            &client,
            &base,
            &admin,
            "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }",
            json!({ "o": order.to_string() }),
        )
        .await;
        let payment: i64 = payment["createPayment"]["id"].as_str().unwrap().parse().unwrap();
        let paid = client
            .post(format!("{base}/api/v1/admin/orders/payments/callback"))
            .bearer_auth(&admin)
            .json(&json!({ "order_id": order, "payment_id": payment, "status": 2 }))
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), 200);
        orders.push(order);
    }

    // The load: refunds of 100..=900 on random orders (some will not fit: 409), a few of
    // them meeting an injected provider fault, each retried with its own key.
    let plan: Vec<(i64, i64, String)> = (0..refunds)
        .map(|i| {
            (orders[rng.random_range(0..orders.len())], rng.random_range(1..=15) * 100, format!("crash-{seed}-{i}"))
        })
        .collect();
    for _ in 0..refunds / 8 {
        let fault = [Fault::DropReply, Fault::Status(500), Fault::Status(429), Fault::StatusAfterActing(503)]
            [rng.random_range(0..4)];
        fake.fail_next(&[fault]);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for chunk in plan.chunks(refunds.div_ceil(4)) {
        let (base, admin, chunk, done) = (base.clone(), admin.clone(), chunk.to_vec(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for (order, amount, key) in chunk {
                outcomes.push(refund_until_definite(base.clone(), admin.clone(), order, amount, key).await);
                done.fetch_add(1, Ordering::SeqCst);
            }
            outcomes
        }));
    }
    // The killer.
    let mut killed = 0;
    while killed < kills && done.load(Ordering::SeqCst) < refunds {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        let down = Duration::from_millis(rng.random_range(0..300));
        match &mut disruption {
            Disruption::KillServer => {
                server.kill();
                tokio::time::sleep(down).await;
                server.start().await;
            }
            Disruption::StopPostgres(cluster) => {
                let stopped = Command::new("sh")
                    .arg("-c")
                    .arg(cluster.stop_command_line())
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(stopped.success(), "pg_ctl -m immediate stop");
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| cluster.start()).unwrap();
            }
        }
        killed += 1;
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    for client in clients {
        outcomes.extend(client.await.unwrap());
    }

    // The janitor settles whatever is still PENDING (its first check is 1 s after).
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url).await.unwrap();
    let pending_sql = "SELECT count(*) AS n FROM refunds WHERE status = 1";
    let waited = Instant::now();
    while crate::graphql_reads::count_on(&mut conn, pending_sql).await > 0 {
        assert!(waited.elapsed() < Duration::from_secs(30), "CRASH_SEED={seed}: refunds still PENDING after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.kill();

    let audit = Command::new(BIN).env("DATABASE_URL", &url).arg("audit").output().unwrap();
    assert!(
        audit.status.success(),
        "CRASH_SEED={seed}: audit found violations:\n{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    // Every acknowledged refund is there, once.
    for outcome in outcomes.iter().filter(|o| o.status == 200) {
        let sql =
            format!("SELECT count(*) AS n FROM refunds WHERE status = 2 AND request_key LIKE '%/{}'", outcome.key);
        assert_eq!(crate::graphql_reads::count_on(&mut conn, &sql).await, 1, "CRASH_SEED={seed}: {outcome:?}");
    }
    let in_db = crate::graphql_reads::count_on(
        &mut conn,
        "SELECT coalesce(sum(amount_cents), 0)::bigint AS n FROM refunds WHERE status = 2",
    )
    .await;
    // Name every provider refund the database does not hold as SUCCEEDED.
    let held: Vec<(String, i64)> =
        fake.inner.lock().unwrap().refunds.iter().map(|r| (r.refund_id.clone(), r.amount)).collect();
    let mut unmatched = Vec::new();
    for (refund_id, amount) in &held {
        let sql = format!(
            "SELECT coalesce(max(status), 0)::bigint AS n FROM refunds WHERE id = {} AND amount_cents = {amount}",
            refund_id.parse::<i64>().unwrap_or(0)
        );
        let status = crate::graphql_reads::count_on(&mut conn, &sql).await;
        if status != 2 {
            unmatched.push(format!("provider refund for refund {refund_id} ({amount}): database status {status}"));
        }
    }
    let mut ids: Vec<&String> = held.iter().map(|(id, _)| id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert!(
        unmatched.is_empty() && before == ids.len(),
        "CRASH_SEED={seed}: {unmatched:#?}, {} duplicates",
        before - ids.len()
    );
    assert_eq!(
        fake.refunded_total() - in_db,
        0,
        "CRASH_SEED={seed}: refunds at the provider minus refunds in the database"
    );
    let longest = crate::graphql_reads::count_on(
        &mut conn,
        "SELECT coalesce(max(extract(epoch FROM updated_at - created_at) * 1000), 0)::bigint AS n FROM refunds",
    )
    .await;
    let acknowledged = outcomes.iter().filter(|o| o.status == 200).count();
    let retried = outcomes.iter().filter(|o| o.tries > 1).count();
    println!(
        "{} survived: {killed}; refunds: {} ({acknowledged} refunded, {} refused or over the limit); \
         requests retried to a definite answer: {retried}; provider minus database: 0; audit: clean; \
         longest a refund stayed PENDING: {longest} ms",
        match disruption {
            Disruption::KillServer => "server kills",
            Disruption::StopPostgres(_) => "PostgreSQL crashes",
        },
        outcomes.len(),
        outcomes.len() - acknowledged
    );
    assert_eq!(outcomes.len(), refunds);
}
