//! Test harness: one throw-away PostgreSQL cluster per test run, a migrated template
//! database, and a fresh database cloned from it for every test.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing_api::app::App;
use billing_api::config::Config;
use billing_api::domain::{Role, access};
use billing_api::pgcluster::{Durability, LocalCluster};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;

const TEMPLATE: &str = "billing_template";

static CLUSTER: OnceCell<LocalCluster> = OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// Starts the run's cluster and builds the template on first use.
async fn cluster() -> &'static LocalCluster {
    CLUSTER
        .get_or_init(|| async {
            let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pg-{}", std::process::id()));
            let cluster = tokio::task::spawn_blocking(move || {
                let mut cluster = LocalCluster::open(&root, Durability::Ephemeral).expect("test cluster");
                cluster.start().expect("starting the test cluster");
                cluster
            })
            .await
            .expect("cluster task");
            spawn_watchdog(&cluster);
            let mut conn = AsyncPgConnection::establish(&cluster.url("postgres")).await.expect("connect");
            conn.batch_execute(&format!("CREATE DATABASE {TEMPLATE}")).await.expect("template db");
            billing_api::db::run_migrations(&cluster.url(TEMPLATE)).await.expect("migrations");
            cluster
        })
        .await
}

/// Stops the cluster and deletes it once this test process is gone, however it ends.
#[expect(clippy::zombie_processes, reason = "the watchdog must outlive this process")]
fn spawn_watchdog(cluster: &LocalCluster) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        stop = cluster.stop_command_line(),
        root = cluster.root().display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog");
}

/// A fresh database cloned from the migrated template; returns its URL.
pub async fn fresh_database() -> String {
    let cluster = cluster().await;
    let name = format!("test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let mut conn = AsyncPgConnection::establish(&cluster.url("postgres")).await.expect("connect");
    conn.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")).await.expect("create test db");
    cluster.url(&name)
}

/// One isolated instance of the service: its own database, app and router.
pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub url: String,
    pub admin_key: String,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(mut config: Config) -> Self {
        crate::card_scan::watch_logs();
        let url = fresh_database().await;
        config.database_url = Some(url.clone());
        config.pool_size = 8;
        let app = App::new(config, &url).expect("app");
        let router = billing_api::http::router(app.clone());
        let admin_key =
            access::create_key(app.pool(), Role::Admin, None, None, Some("test-admin")).await.expect("admin key").raw;
        Self { app, router, url, admin_key }
    }

    pub async fn key(&self, role: Role, user: Option<i64>) -> String {
        access::create_key(self.app.pool(), role, user, None, Some(&format!("test-{}", role.as_str())))
            .await
            .expect("key")
            .raw
    }

    /// A key of a merchant.
    pub async fn merchant_key(&self, merchant: uuid::Uuid) -> String {
        access::create_key(self.app.pool(), Role::Merchant, None, Some(merchant), Some("test-merchant"))
            .await
            .expect("merchant key")
            .raw
    }

    /// Sends a request through the router in process.
    pub async fn send(&self, request: Request<Body>) -> Response {
        let what = format!("{} {}", request.method(), request.uri().path());
        let response = self.router.clone().oneshot(request).await.expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        crate::card_scan::check_response(&what, &bytes);
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Response { status, headers, body }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        let mut builder = Request::get(path);
        if let Some(key) = key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        self.send(builder.body(Body::empty()).expect("request")).await
    }

    /// Runs a GraphQL operation over POST /graphql with `key`.
    pub async fn gql_as(&self, key: &str, query: &str, variables: Value) -> Response {
        let request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Body::from(json!({ "query": query, "variables": variables }).to_string()))
            .expect("request");
        self.send(request).await
    }

    /// Runs a GraphQL operation as admin and returns the whole body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self.gql_as(&self.admin_key, query, variables).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body
    }

    /// Like `gql` but asserts there are no errors and returns `data`.
    pub async fn gql_data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub async fn create_user(&self, email: &str, balance_cents: i64) -> i64 {
        let data = self
            .gql_data(
                "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }",
                json!({ "input": { "email": email, "name": "Test User", "balanceCents": balance_cents } }),
            )
            .await;
        id(&data["createUser"]["id"])
    }

    /// Creates an order of `items` (quantity, unit price) in USD paid by card.
    pub async fn create_order(&self, user_id: i64, items: &[(i64, i64)]) -> Value {
        let items: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(i, (quantity, price))| {
                json!({ "name": format!("Item {i}"), "sku": format!("SKU-{i}"), "quantity": quantity, "unitPriceCents": price })
            })
            .collect();
        let data = self
            .gql_data(
                "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id number totalCents status paymentStatus } }",
                json!({ "input": { "userId": user_id.to_string(), "currency": "USD", "paymentMethod": "card", "items": items } }),
            )
            .await;
        data["createOrder"].clone()
    }

    /// Loads seeded data (users with balances, orders in every state) into this database.
    pub async fn seed(&self, users: u32, orders: u32) {
        billing_api::seed::seed(&self.url, users, orders).await.expect("seed");
    }
}

/// A GraphQL ID (a decimal string) as a number.
pub fn id(value: &Value) -> i64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an ID: {value}"))
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Replaces values that change from run to run (ids, times, numbers, emails) so a response
/// shape can be snapshotted.
pub fn redact(value: &Value) -> Value {
    fn volatile(key: &str) -> Option<&'static str> {
        if key == "id" || key.ends_with("_id") || key.ends_with("Id") {
            Some("[id]")
        } else if key.ends_with("_at") || key.ends_with("At") {
            Some("[time]")
        } else if key == "number" {
            Some("[number]")
        } else if key == "email" {
            Some("[email]")
        } else {
            None
        }
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let redacted = match volatile(k) {
                        Some(mark) if !v.is_null() && !v.is_object() && !v.is_array() => json!(mark),
                        _ => redact(v),
                    };
                    (k.clone(), redacted)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}
