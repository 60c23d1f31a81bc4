//! The database going away, clients going away, slow requests and oversized bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::app::App;
use billing_api::config::Config;
use billing_api::domain::{Role, access};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::common::{TestApp, fresh_database};
use crate::graphql_reads::count;
use crate::mutations::{order_of, pay, post_json};

/// A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_cut, accept_links) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                // Checked and recorded under the lock `cut` takes, so no link escapes a cut.
                let mut links = accept_links.lock().await;
                if accept_cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                links.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self { port, cut, links }
    }

    async fn cut(&self) {
        let mut links = self.links.lock().await;
        self.cut.store(true, Ordering::SeqCst);
        for link in links.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_and_recovers_without_restart() {
    let direct = fresh_database().await;
    let proxy = Proxy::start(port_of(&direct)).await;
    let proxied = direct.replace(&format!(":{}/", port_of(&direct)), &format!(":{}/", proxy.port));
    let config = Config {
        database_url: Some(proxied.clone()),
        pool_size: 4,
        pool_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let app = App::new(config, &proxied).unwrap();
    let admin_key = access::create_key(app.pool(), Role::Admin, None, None, Some("outage")).await.unwrap().raw;
    // Reuse the TestApp helpers on this app.
    let t = TestApp { router: billing_api::http::router(app.clone()), app, url: direct.clone(), admin_key };
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);

    proxy.cut().await;
    let started = Instant::now();
    let ready = t.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let list = t.get("/api/v1/admin/orders", Some(&t.admin_key)).await;
    assert_eq!(list.status, StatusCode::SERVICE_UNAVAILABLE, "{}", list.body);
    assert_eq!(list.body["code"], "SERVICE_UNAVAILABLE");
    let refund =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 100 }))
            .await;
    assert_eq!(refund.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refund.body);
    let graphql = t.gql_as(&t.admin_key, "{ orders { pageInfo { totalCount } } }", json!({})).await;
    assert_eq!(graphql.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(crate::common::error_code(&graphql.body), "SERVICE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(8), "fails fast: {:?}", started.elapsed());

    proxy.restore();
    let ready = t.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "ready again with no restart");
    let list = t.get("/api/v1/admin/orders", Some(&t.admin_key)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let refund =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 100 }))
            .await;
    assert_eq!(refund.status, StatusCode::OK, "{}", refund.body);

    // Only the refund made after recovery exists: nothing half-applied from the outage.
    let mut conn = AsyncPgConnection::establish(&direct).await.unwrap();
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let refunded: Row =
        diesel::sql_query(format!("SELECT refunded_cents + refund_pending_cents AS n FROM orders WHERE id = {order}"))
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(refunded.n, 100);
    let refunds: Row = diesel::sql_query("SELECT count(*) AS n FROM refunds").get_result(&mut conn).await.unwrap();
    assert_eq!(refunds.n, 1);
}

/// Holds the order row lock from outside the service until released.
async fn lock_order(url: &str, order: i64) -> AsyncPgConnection {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    conn.batch_execute(&format!("BEGIN; SELECT id FROM orders WHERE id = {order} FOR UPDATE;")).await.unwrap();
    conn
}

async fn idle_in_transaction(t: &TestApp) -> i64 {
    count(
        t,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
    )
    .await
}

/// Waits (at most 10 s) until a statement of the test's database waits for a lock.
async fn waiting_on_a_lock(t: &TestApp) {
    let sql =
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(t, sql).await == 0 {
        assert!(Instant::now() < deadline, "no statement waits for the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_mutation_leaves_nothing_half_done() {
    let t = Arc::new(TestApp::new().await);
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let mut blocker = lock_order(&t.url, order).await;
    let client = {
        let t = t.clone();
        tokio::spawn(async move {
            post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 100 }))
                .await
        })
    };
    waiting_on_a_lock(&t).await;
    client.abort(); // the client goes away while the refund waits for the lock
    assert!(client.await.is_err());
    blocker.batch_execute("COMMIT").await.unwrap();
    // The refund ran to completion on its own: all of it, once.
    let mut settled = false;
    for _ in 0..50 {
        if count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await == 100 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "the detached refund completed");
    assert_eq!(count(&t, "SELECT count(*) AS n FROM refunds WHERE status = 2").await, 1);
    assert_eq!(idle_in_transaction(&t).await, 0, "no transaction left open");
    // The pool still serves.
    for _ in 0..10 {
        assert_eq!(t.get("/api/v1/admin/orders", Some(&t.admin_key)).await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_with_503_and_still_completes_whole() {
    let t = TestApp::with_config(Config { request_timeout: Duration::from_secs(1), ..Config::default() }).await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let mut blocker = lock_order(&t.url, order).await;
    let started = Instant::now();
    let response =
        post_json(&t, &format!("/api/v1/admin/orders/{order}/refund"), &t.admin_key, json!({ "amount_cents": 250 }))
            .await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));
    blocker.batch_execute("COMMIT").await.unwrap();
    let mut refunded = 0;
    for _ in 0..50 {
        refunded = count(&t, &format!("SELECT refunded_cents AS n FROM orders WHERE id = {order}")).await;
        if refunded == 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refunded, 250, "the refund completed whole after the client was answered");
    assert_eq!(idle_in_transaction(&t).await, 0);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let t = TestApp::with_config(Config { body_limit_bytes: 64 * 1024, ..Config::default() }).await;
    let big = format!("{{\"query\":\"{{ __typename }}\",\"variables\":{{\"pad\":\"{}\"}}}}", "x".repeat(100 * 1024));
    let request = Request::post("/graphql")
        .header(header::AUTHORIZATION, format!("Bearer {}", t.admin_key))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    assert_eq!(t.send(request).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let request = Request::post("/api/v1/admin/orders/1/refund")
        .header(header::AUTHORIZATION, format!("Bearer {}", t.admin_key))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{{\"amount_cents\": 5, \"reason\": \"{}\"}}", "y".repeat(100 * 1024))))
        .unwrap();
    assert_eq!(t.send(request).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn every_pooled_connection_has_the_statement_timeout() {
    let t = TestApp::with_config(Config { statement_timeout: Duration::from_millis(1234), ..Config::default() }).await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let mut conn = t.app.pool().get().await.unwrap();
    let setting: Setting = diesel::sql_query("SHOW statement_timeout").get_result(&mut conn).await.unwrap();
    assert_eq!(setting.statement_timeout, "1234ms");
    // A statement running past it is cut off and answered as retryable, not as a bug.
    let slow = diesel::sql_query("SELECT pg_sleep(3)").execute(&mut conn).await.unwrap_err();
    let error = billing_api::error::AppError::from(slow);
    assert_eq!(error.code(), "SERVICE_UNAVAILABLE", "{error:?}");
}

/// A read whose request times out stops there: it sends nothing after the statement it was
/// waiting on (a detached read would go on to load what its orders nest), and the
/// connection it leaves serves the next request correctly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_times_out_stops_and_leaves_the_pool_sound() {
    let t = TestApp::with_config(Config { request_timeout: Duration::from_secs(1), ..Config::default() }).await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    let mut blocker = AsyncPgConnection::establish(&t.url).await.unwrap();
    blocker.batch_execute("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;").await.unwrap();
    let before = t.app.statements().get();
    let started = Instant::now();
    let response = t.gql_as(&t.admin_key, "{ orders { nodes { id items { id } payments { id } } } }", json!({})).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.batch_execute("COMMIT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The key lookup and the page: nothing after the page, although it then completed.
    assert_eq!(t.app.statements().get() - before, 2, "the read stopped when its request timed out");
    let data = t.gql_data("{ orders { nodes { id items { quantity } } } }", json!({})).await;
    assert_eq!(data["orders"]["nodes"][0]["id"], order.to_string());
    assert_eq!(data["orders"]["nodes"][0]["items"][0]["quantity"], 1);
}

/// A connection idle long enough is pinged before it is handed out; the ping is the pool's
/// upkeep, so it counts neither as the request's statement nor against its budget.
#[tokio::test]
async fn the_pool_s_idle_ping_is_not_a_statement_of_the_request() {
    let t = TestApp::new().await;
    let query = "{ orders { nodes { id } } }";
    let statements_of = async || {
        let before = t.app.statements().get();
        let data = t.gql_data(query, json!({})).await;
        assert!(data["orders"]["nodes"].is_array(), "{data}");
        t.app.statements().get() - before
    };
    statements_of().await;
    let warm = statements_of().await;
    // Every pooled connection is now idle past the ping threshold (2 s).
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(statements_of().await, warm, "the idle ping is not counted");
}
