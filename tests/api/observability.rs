//! Request ids, metrics, and logs that never carry secrets.

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use crate::common::{TestApp, fresh_database};
use crate::mutations::{order_of, pay, post_json};

#[tokio::test]
async fn request_ids_are_taken_or_made_and_echoed() {
    let t = TestApp::new().await;
    let request = Request::get("/healthz").header("x-request-id", "trace-abc-123").body(Body::empty()).unwrap();
    let response = t.send(request).await;
    assert_eq!(response.headers["x-request-id"], "trace-abc-123");
    let made = t.get("/api/v1/admin/orders", Some(&t.admin_key)).await;
    let id = made.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 24, "a generated id: {id}");
    let other = t.get("/api/v1/admin/orders", Some(&t.admin_key)).await;
    assert_ne!(other.headers["x-request-id"].to_str().unwrap(), id, "ids differ per request");
}

#[tokio::test]
async fn metrics_count_requests_pool_and_money() {
    let t = TestApp::new().await;
    let (_, order) = order_of(&t, 0, 1_000).await;
    assert_eq!(pay(&t, order).await.status, StatusCode::OK);
    let path = format!("/api/v1/admin/orders/{order}/refund");
    assert_eq!(post_json(&t, &path, &t.admin_key, json!({ "amount_cents": 400 })).await.status, StatusCode::OK);
    assert_eq!(post_json(&t, &path, &t.admin_key, json!({ "amount_cents": 900 })).await.status, StatusCode::CONFLICT);
    t.gql("query ListForMetrics { orders { pageInfo { totalCount } } }", json!({})).await;
    let response = t.get("/metrics", None).await;
    assert_eq!(response.status, StatusCode::OK);
    let text = response.body.as_str().unwrap();
    for needle in [
        "http_requests_total{operation=\"-\",route=\"/api/v1/admin/orders/{id}/refund\",status=\"200\"} 1",
        "http_requests_total{operation=\"-\",route=\"/api/v1/admin/orders/{id}/refund\",status=\"409\"} 1",
        "http_requests_total{operation=\"orders\",route=\"/graphql\",status=\"200\"} 1",
        "http_request_duration_seconds_bucket{operation=\"orders\",route=\"/graphql\",le=\"10\"} 1",
        "refunds_total{outcome=\"succeeded\"} 1",
        "refunds_total{outcome=\"refused\"} 1",
        "payments_total{outcome=\"marked_paid\"} 1",
        "db_pool_connections{state=\"max\"} 8",
        "db_pool_waiting 0",
        "db_statements_total",
        "db_errors_total",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// Runs the real binary with JSON logs, sends a key and a card number, and reads the logs.
#[tokio::test]
async fn json_logs_carry_request_fields_but_never_secrets() {
    let url = fresh_database().await;
    let bin = env!("CARGO_BIN_EXE_billing-api");
    let created = Command::new(bin)
        .env("DATABASE_URL", &url)
        .args(["keys", "create", "--role", "admin", "--name", "logged-key"])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&created.stdout).lines().last().unwrap().trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log_path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("json-logs-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(bin)
        .env("DATABASE_URL", &url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env("CALLBACK_SECRET", "super-secret-callback-key-of-32-bytes-at-least")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let card = "4242424242424242";
    let response = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&key)
        .header("x-request-id", "req-log-check")
        .json(&json!({ "query": "query CardProbe($m: String!) { orders(filter: { paymentMethod: $m }) { pageInfo { totalCount } } }", "variables": { "m": card } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(format!("{base}/api/v1/admin/orders/1/refund"))
        .bearer_auth(&key)
        .header(header::CONTENT_TYPE, "application/json")
        .body(format!("{{\"amount_cents\": 5, \"reason\": \"card {card}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    assert!(server.wait().unwrap().success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let finished: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "request finished")
        .collect();
    let probe = finished.iter().find(|e| e["span"]["request_id"] == "req-log-check").expect("a line for the request");
    assert_eq!(probe["span"]["route"], "/graphql");
    assert_eq!(probe["span"]["operation"], "orders", "metrics and logs label by root field");
    assert_eq!(probe["span"]["operation_name"], "CardProbe", "the client's name is logged, never a label");
    assert_eq!(probe["span"]["key"], "logged-key");
    assert_eq!(probe["fields"]["status"], 200);
    assert!(probe["fields"]["latency_ms"].is_number());
    for secret in [key.as_str(), card, "super-secret-callback-key-of-32-bytes-at-least"] {
        assert!(!logs.contains(secret), "a secret reached the logs: {secret}");
    }
    let _ = std::fs::remove_file(&log_path);
}
