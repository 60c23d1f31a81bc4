//! End-to-end tests of the real binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::fresh_database;

const BIN: &str = env!("CARGO_BIN_EXE_billing-api");
/// A callback secret a production server accepts (32 bytes or more, not the dev value).
pub const TEST_CALLBACK_SECRET: &str = "test-callback-secret-0123456789abcdef";

pub(crate) fn billing(url: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("RUST_LOG").env_remove("DATABASE_URL");
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    command
}

/// Starts `billing-api serve` on a free port and waits until /healthz answers.
pub(crate) async fn start_server(url: &str) -> (std::process::Child, String) {
    let port = free_port();
    let mut server = billing(Some(url))
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("CALLBACK_SECRET", TEST_CALLBACK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return (server, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("the server did not come up on {base}");
}

/// A fresh database, an admin key made with the CLI, and the real server on it.
async fn serving_with_admin_key() -> (String, String, std::process::Child, String) {
    let url = fresh_database().await;
    let created = billing(Some(&url)).args(["keys", "create", "--role", "admin"]).output().unwrap();
    let key = String::from_utf8_lossy(&created.stdout).lines().last().unwrap().trim().to_owned();
    let (server, base) = start_server(&url).await;
    (url, key, server, base)
}

/// Over the real server: a user, their order 1 of 10.00 USD, paid by hand; returns the
/// answer to the payment.
async fn paid_order_over_http(base: &str, key: &str, email: &str) -> serde_json::Value {
    let client = reqwest::Client::new();
    let mut answer = serde_json::Value::Null;
    for query in [
        format!("mutation {{ createUser(input: {{ email: \"{email}\", name: \"T\" }}) {{ id }} }}"),
        "mutation { createOrder(input: { userId: \"1\", currency: \"USD\", paymentMethod: \"card\", items: [{ name: \"A\", quantity: 1, unitPriceCents: 1000 }] }) { id } }".to_owned(),
        "mutation { markOrderPaid(input: { id: \"1\" }) { paymentStatus } }".to_owned(),
    ] {
        let response =
            client.post(format!("{base}/graphql")).bearer_auth(key).json(&serde_json::json!({ "query": query })).send().await.unwrap();
        assert_eq!(response.status(), 200);
        answer = response.json().await.unwrap();
    }
    answer
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn binary_creates_keys_seeds_and_serves() {
    let url = fresh_database().await;
    let seeded = billing(Some(&url)).args(["seed", "--users", "3", "--orders", "30"]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    assert!(String::from_utf8_lossy(&seeded.stdout).contains("seeded 3 users and 30 orders"));
    // Seeded data keeps every money invariant.
    let audit = billing(Some(&url)).arg("audit").output().unwrap();
    assert!(
        audit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(String::from_utf8_lossy(&audit.stdout).contains("no violation"));

    let created = billing(Some(&url)).args(["keys", "create", "--role", "admin", "--name", "e2e"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8_lossy(&created.stdout);
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("bk_") && !key.contains(' '), "last line is the key alone: {stdout}");

    let listed = billing(Some(&url)).args(["keys", "list"]).output().unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("admin\te2e"), "{listing}");
    assert!(!listing.contains(&key), "keys list never shows a whole key");

    let (mut server, base) = start_server(&url).await;
    let client = reqwest::Client::new();
    let response =
        client.get(format!("{base}/api/v1/admin/orders?per_page=5&status=2")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["orders"].as_array().unwrap().len(), 5);
    assert!(body["orders"].as_array().unwrap().iter().all(|o| o["status"] == 2));
    let unauthenticated = client.get(format!("{base}/api/v1/admin/orders")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let revoked = billing(Some(&url)).args(["keys", "revoke", "1"]).output().unwrap();
    assert!(revoked.status.success());
    let response = client.get(format!("{base}/api/v1/admin/orders")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 401, "a revoked key stops working at once");

    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "SIGTERM ends the server cleanly: {status}");
}

fn one_line_error(output: &std::process::Output) -> String {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one clear line, got: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let output = billing(Some("postgres://postgres:secret@127.0.0.1:1/none")).arg("migrate").output().unwrap();
    let line = one_line_error(&output);
    assert!(line.starts_with("error: cannot reach the database at postgres://postgres:***@127.0.0.1:1/none"), "{line}");
    assert!(line.contains("DATABASE_URL"), "{line}");
}

#[test]
fn missing_postgres_is_one_clear_line() {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("no-pg-{}", std::process::id()));
    let output =
        billing(None).env("PG_BIN_DIR", "/nonexistent").env("DATA_DIR", &data).arg("migrate").output().unwrap();
    let line = one_line_error(&output);
    assert!(line.contains("apt-get install postgresql"), "{line}");
}

#[test]
fn bad_configuration_is_one_clear_line() {
    let output =
        billing(Some("postgres://x@127.0.0.1:1/x")).env("PAYMENT_PROVIDER", "paypal").arg("migrate").output().unwrap();
    let line = one_line_error(&output);
    assert!(line.contains("PAYMENT_PROVIDER"), "{line}");
}

#[test]
fn private_cluster_is_created_once_then_reused() {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("private-{}", std::process::id()));
    let cluster = billing_api::pgcluster::location(&data.join("postgres")).unwrap();
    let first = billing(None)
        .env("DATA_DIR", &data)
        .args(["keys", "create", "--role", "support", "--name", "first-run"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(cluster.join("data/PG_VERSION").is_file(), "cluster created where its owner can reach it");
    assert!(!cluster.join("data/postmaster.pid").exists(), "the cluster this run started is stopped again");
    // A program took the cluster's port meanwhile: the cluster moves to a free one.
    let port: u16 = std::fs::read_to_string(cluster.join("port")).unwrap().trim().parse().unwrap();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let second = billing(None).env("DATA_DIR", &data).args(["keys", "list"]).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stdout).contains("support\tfirst-run"), "data survives the restart");
    drop(squatter);
    std::fs::remove_dir_all(&data).unwrap();
    if cluster != data.join("postgres") {
        std::fs::remove_dir_all(&cluster).unwrap();
    }
}

/// Reads the server's stdout until the development key line; returns the key and the
/// address it listens on.
fn wait_for_dev_key(server: &mut std::process::Child) -> (String, String) {
    use std::io::BufRead;
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut key, mut addr) = (None, None);
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("billing-api listening on ") {
                addr = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("development admin key: ") {
                key = Some(rest.trim().to_owned());
            }
            if let (Some(key), Some(addr)) = (&key, &addr) {
                let _ = tx.send((key.clone(), addr.clone()));
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("the server printed its address and a development key")
}

/// `cargo run` as a newcomer does it: from a directory only its owner may enter (root's home
/// is 0700), under a path with spaces, no DATABASE_URL. As root the cluster runs as
/// `postgres`, which could not reach the repository; the first GraphQL query must answer.
#[tokio::test]
async fn cargo_run_works_from_a_private_directory_with_spaces_in_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let private = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("home-{}", std::process::id()));
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let repo = private.join("my projects/billing api");
    std::fs::create_dir_all(&repo).unwrap();
    let data = repo.join(".data");
    let cluster = billing_api::pgcluster::location(&data.join("postgres")).unwrap();
    let serve = || {
        billing(None)
            .current_dir(&repo)
            .env_remove("DATA_DIR")
            .env_remove("CALLBACK_SECRET")
            .env("BIND_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut server = serve();
    let (key, base) = wait_for_dev_key(&mut server);
    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "query": "{ orders(perPage: 2) { nodes { number } pageInfo { totalCount } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["data"]["orders"]["pageInfo"]["totalCount"].as_i64().unwrap() > 0, "demo data: {body}");
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700, "never loosened");

    // A second `cargo run` on the same data: one plain line, and the first keeps serving.
    let second =
        billing(None).current_dir(&repo).env_remove("DATA_DIR").env("BIND_ADDR", "127.0.0.1:0").output().unwrap();
    let line = one_line_error(&second);
    assert!(line.contains("another billing-api") && line.contains("DATA_DIR"), "{line}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    assert!(server.wait().unwrap().success());
    // Again: the same cluster, data and key.
    let mut again = serve();
    let (same_key, _) = wait_for_dev_key(&mut again);
    assert_eq!(same_key, key, "the second run reuses the cluster and its development key");
    Command::new("kill").arg("-TERM").arg(again.id().to_string()).status().unwrap();
    let ended = again.wait_with_output().unwrap();
    assert!(ended.status.success(), "{}", String::from_utf8_lossy(&ended.stderr));
    assert!(cluster.join("data/PG_VERSION").is_file(), "the cluster is at {}", cluster.display());
    assert!(!cluster.join("data/postmaster.pid").exists(), "the cluster is stopped with the server");
    std::fs::remove_dir_all(&private).unwrap();
    if cluster != data.join("postgres") {
        std::fs::remove_dir_all(&cluster).unwrap();
    }
}

/// Waits (at most 10 s) until a statement on the database at `url` waits for a lock: the
/// request under test is then surely in flight, whatever the machine's load.
async fn a_statement_waits_for_a_lock(url: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let sql =
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::graphql_reads::count_on(&mut conn, sql).await == 0 {
        assert!(std::time::Instant::now() < deadline, "no statement waits for the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_mutation_finish_then_exits_cleanly() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let (url, key, mut server, base) = serving_with_admin_key().await;
    let client = reqwest::Client::new();
    let paid = paid_order_over_http(&base, &key, "term@example.com").await;
    assert_eq!(paid["data"]["markOrderPaid"]["paymentStatus"], "PAID", "{paid}");

    // Hold the order so the refund is in flight when the signal comes.
    let mut blocker = AsyncPgConnection::establish(&url).await.unwrap();
    blocker.batch_execute("BEGIN; SELECT id FROM orders WHERE id = 1 FOR UPDATE;").await.unwrap();
    let in_flight = {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/admin/orders/1/refund"))
                .bearer_auth(&key)
                .json(&serde_json::json!({ "amount_cents": 400 }))
                .send()
                .await
        })
    };
    a_statement_waits_for_a_lock(&url).await;
    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while reqwest::Client::new().get(format!("{base}/healthz")).send().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "a stopping server accepts no new connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocker.batch_execute("COMMIT").await.unwrap();
    let response = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["order"]["refunded_cents"], 400);
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exit status {status}");
}

/// With DATABASE_URL (a real deployment), a missing, short or development callback secret
/// would let anyone sign a callback: the server refuses to start, in one line.
#[tokio::test]
async fn serve_refuses_a_guessable_callback_secret() {
    let url = fresh_database().await;
    for (secret, needle) in [
        (None, "CALLBACK_SECRET is unset or the development value"),
        (Some("dev-callback-secret"), "CALLBACK_SECRET is unset or the development value"),
        (Some("short-secret"), "shorter than 32 bytes"),
    ] {
        let mut command = billing(Some(&url));
        command.env("BIND_ADDR", "127.0.0.1:0").env_remove("CALLBACK_SECRET");
        if let Some(secret) = secret {
            command.env("CALLBACK_SECRET", secret);
        }
        let output = command.arg("serve").output().unwrap();
        let line = one_line_error(&output);
        assert!(line.contains(needle), "{secret:?}: {line}");
    }
    let output = billing(Some(&url))
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("CALLBACK_SECRET", TEST_CALLBACK_SECRET)
        .env("CALLBACK_SECRET_PREVIOUS", "dev-callback-secret")
        .arg("serve")
        .output()
        .unwrap();
    assert!(one_line_error(&output).contains("CALLBACK_SECRET_PREVIOUS"));
}

/// As root, a cluster directory somebody else made (in world-writable /var/tmp) is not
/// trusted: one plain line, nothing started in it.
#[test]
fn a_planted_cluster_directory_is_refused() {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        println!("SKIPPED a_planted_cluster_directory_is_refused: only root's clusters live in /var/tmp");
        return;
    }
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("planted-{}", std::process::id()));
    let cluster = billing_api::pgcluster::location(&data.join("postgres")).unwrap();
    std::fs::create_dir_all(&cluster).unwrap();
    std::os::unix::fs::chown(&cluster, Some(65534), Some(65534)).unwrap();
    let output = billing(None).env("DATA_DIR", &data).args(["keys", "list"]).output().unwrap();
    let line = one_line_error(&output);
    assert!(line.contains("someone else may have made it"), "{line}");
    assert!(!cluster.join("data").exists(), "nothing was created in it");
    std::fs::remove_dir_all(&cluster).unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

/// A mutation whose client has gone is still detached work: a stopping server lets it
/// finish and record its idempotency outcome (a key left "in progress" blocks retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_mutation_whose_client_left() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let (url, key, mut server, base) = serving_with_admin_key().await;
    let paid = paid_order_over_http(&base, &key, "gone@example.com").await;
    assert_eq!(paid["data"]["markOrderPaid"]["paymentStatus"], "PAID", "{paid}");
    let mut blocker = AsyncPgConnection::establish(&url).await.unwrap();
    blocker.batch_execute("BEGIN; SELECT id FROM orders WHERE id = 1 FOR UPDATE;").await.unwrap();
    let impatient = {
        let (base, key) = (base.clone(), key.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/admin/orders/1/refund"))
                .bearer_auth(&key)
                .header("idempotency-key", "left-early")
                .json(&serde_json::json!({ "amount_cents": 400 }))
                .send()
                .await
        })
    };
    // The client gives up once its refund waits for the lock.
    a_statement_waits_for_a_lock(&url).await;
    impatient.abort();
    assert!(impatient.await.is_err(), "the client gave up");
    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.batch_execute("COMMIT").await.unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exit status {status}");
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        refunded: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        completed: i64,
    }
    let row: Row = diesel::sql_query(
        "SELECT (SELECT refunded_cents FROM orders WHERE id = 1) AS refunded, \
         (SELECT count(*) FROM idempotency_keys WHERE key = 'left-early' AND response_status IS NOT NULL) AS completed",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(row.refunded, 400, "the refund finished whole");
    assert_eq!(row.completed, 1, "its idempotency record is complete, so a retry replays it");
}
