//! The OpenAPI document of the REST layer, and a bounded fuzz run of both faces.

use std::process::Command;

use axum::http::StatusCode;
use serde_json::Value;

use crate::common::TestApp;

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_valid_and_covers_every_path_of_both_faces() {
    let t = TestApp::new().await;
    let response = t.get("/api/v1/openapi.json", None).await;
    assert_eq!(response.status, StatusCode::OK);
    let doc = response.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "OpenAPI 3: {}", doc["openapi"]);
    let expected = [
        ("get", "/api/v1/admin/orders"),
        ("get", "/api/v1/admin/orders/{id}"),
        ("post", "/api/v1/admin/orders/{id}/cancel"),
        ("post", "/api/v1/admin/orders/{id}/pay"),
        ("post", "/api/v1/admin/orders/{id}/refund"),
        ("post", "/api/v1/admin/orders/payments/callback"),
        ("post", "/api/v1/admin/orders/payments/reconcile"),
        ("post", "/api/v1/payments/callback"),
        ("post", "/api/v1/order"),
        ("put", "/api/v1/store/orders/{id}"),
        ("get", "/api/v1/store/orders"),
        ("get", "/api/v1/store/orders/{id}"),
        ("get", "/api/v2/refunds"),
        ("post", "/api/v2/refunds"),
        ("post", "/api/v2/refunds/{id}/approve"),
        ("post", "/api/v2/refunds/{id}/deny"),
        ("post", "/api/v2/refunds/{id}/cancel"),
        ("get", "/api/payments"),
        ("post", "/api/payments"),
        ("get", "/api/payments/{payment_id}"),
        ("put", "/api/payments/{payment_id}"),
    ];
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    expected.sort();
    assert_eq!(documented, expected);
    for (method, path) in &expected {
        let operation = &doc["paths"][path][method];
        assert!(
            operation["responses"]["200"]["content"]["application/json"]["schema"].is_object(),
            "{method} {path}: 200 body"
        );
        assert!(operation["responses"]["400"].is_object(), "{method} {path}: 400 documented");
        if method == "post" && path.starts_with("/api/v1/admin") {
            let content = &operation["requestBody"]["content"];
            assert!(
                content["application/json"].is_object() && content["application/x-www-form-urlencoded"].is_object(),
                "{method} {path}"
            );
        }
    }
    // Generated clients know where to send requests and how to authenticate each one.
    assert_eq!(doc["servers"][0]["url"], serde_json::json!(t.app.config().public_base_url));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["bare_key"]["name"], "Authorization");
    assert_eq!(schemes["callback_signature"]["name"], "X-Billing-Signature");
    let mut operation_ids = Vec::new();
    for (method, path) in &expected {
        let operation = &doc["paths"][path][method];
        let security = operation["security"].as_array().map(|s| s.len()).unwrap_or(0);
        assert!(security > 0, "{method} {path} declares how it authenticates");
        operation_ids.push(operation["operationId"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        doc["paths"]["/api/v1/payments/callback"]["post"]["security"],
        serde_json::json!([{"callback_signature": []}])
    );
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), expected.len(), "operation ids are unique");
    // Every reference resolves.
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected ref {target}"));
        assert!(doc["components"]["schemas"][name].is_object(), "dangling ref {target}");
    }
    // The order schema lists every key of the legacy AdminOrderDetail.
    let order = &doc["components"]["schemas"]["RestOrder"]["properties"];
    for key in crate::rest_reads::ORDER_KEYS {
        assert!(order[key].is_object(), "RestOrder.{key}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    // Seed 001's bare `Authorization: <key>`.
    assert_eq!(doc["components"]["securitySchemes"]["bare_key"]["type"], "apiKey");
    assert_eq!(doc["components"]["securitySchemes"]["bare_key"]["name"], "Authorization");
    for key in ["id", "pay_amount", "currency", "store", "merchant", "status", "create_date", "payment_url"] {
        assert!(doc["components"]["schemas"]["SeedOrder"]["properties"][key].is_object(), "SeedOrder.{key}");
    }
    // It is a document utoipa itself can read back.
    let _: utoipa::openapi::OpenApi = serde_json::from_value(doc).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_both_faces_finds_no_server_errors() {
    if !Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success()) {
        println!("SKIPPED fuzz: python3 is not installed");
        return;
    }
    let t = TestApp::new().await;
    t.seed(5, 40).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = t.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let output = tokio::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fuzz.sh"))
        .arg(format!("http://{addr}"))
        .arg(&t.admin_key)
        .arg("8")
        .env("FUZZ_VENV", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-venv"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "fuzzing found failures:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let cases: Vec<&str> = stdout.lines().filter(|l| l.contains(" generated, ")).map(str::trim).collect();
    assert_eq!(cases.len(), 2, "both faces were fuzzed: {stdout}");
    println!("schemathesis: REST {}; GraphQL {}", cases[0], cases[1]);
}
