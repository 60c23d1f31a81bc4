//! The GraphQL-over-HTTP specification: in-process checks, and the `graphql-http` audit
//! suite run with Node against a live server.

use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::common::{TestApp, error_code};

fn post(key: &str, accept: Option<&str>, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::post("/graphql").header(header::AUTHORIZATION, format!("Bearer {key}"));
    if let Some(accept) = accept {
        builder = builder.header(header::ACCEPT, accept);
    }
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

const GRJ: &str = "application/graphql-response+json";

#[tokio::test]
async fn media_types_and_status_codes() {
    let t = TestApp::new().await;
    let key = t.admin_key.clone();
    let ok = t.send(post(&key, Some(GRJ), Some("application/json"), r#"{"query":"{ __typename }"}"#)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(GRJ));
    assert_eq!(ok.body, json!({ "data": { "__typename": "Query" } }));

    // Request errors: 400 without data under graphql-response+json. Under json a malformed
    // request (not JSON, no query, a query that is not a string) is 400 too, while a
    // well-formed one whose document fails to parse or validate is 200 with errors.
    for (body, legacy_status) in [
        (r#"{ "not json"#, StatusCode::BAD_REQUEST),
        (r#"{"qeury":"{ __typename }"}"#, StatusCode::BAD_REQUEST),
        (r#"{"query":1}"#, StatusCode::BAD_REQUEST),
        (r#"{"query":"{"}"#, StatusCode::OK),
        (r#"{"query":"{ nope }"}"#, StatusCode::OK),
    ] {
        let strict = t.send(post(&key, Some(GRJ), Some("application/json"), body)).await;
        assert_eq!(strict.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(strict.body.get("data").is_none(), "{body}: {}", strict.body);
        assert_eq!(error_code(&strict.body), "BAD_USER_INPUT");
        let legacy = t.send(post(&key, Some("application/json"), Some("application/json"), body)).await;
        assert_eq!(legacy.status, legacy_status, "{body}");
        assert!(legacy.body["errors"].is_array());
        assert_eq!(error_code(&legacy.body), "BAD_USER_INPUT");
    }

    let missing_type = t.send(post(&key, None, None, r#"{"query":"{ __typename }"}"#)).await;
    assert_eq!(missing_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let other_charset = t.send(post(&key, None, Some("application/json; charset=latin1"), "{}")).await;
    assert_eq!(other_charset.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let not_acceptable =
        t.send(post(&key, Some("text/plain"), Some("application/json"), r#"{"query":"{ __typename }"}"#)).await;
    assert_eq!(not_acceptable.status, StatusCode::NOT_ACCEPTABLE);
    let batch = t.send(post(&key, Some(GRJ), Some("application/json"), r#"[{"query":"{ __typename }"}]"#)).await;
    assert_eq!(batch.status, StatusCode::BAD_REQUEST);
    assert!(batch.body["errors"][0]["message"].as_str().unwrap().contains("batched"));
}

#[tokio::test]
async fn get_runs_queries_but_not_mutations() {
    let t = TestApp::new().await;
    let query = |q: &str| format!("/graphql?{}", serde_urlencoded::to_string([("query", q)]).unwrap());
    let response = t.get(&query("{ __typename }"), Some(&t.admin_key)).await;
    assert_eq!(response.status, StatusCode::OK);
    let response = t
        .get(
            &query("mutation { createUser(input: {email: \"g@example.com\", name: \"G\"}) { id } }"),
            Some(&t.admin_key),
        )
        .await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers[header::ALLOW], "POST");
    assert_eq!(crate::graphql_reads::count(&t, "SELECT count(*) AS n FROM users").await, 0);
    let response = t.send(Request::delete("/graphql").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn browsers_get_graphiql_at_the_endpoint() {
    let t = TestApp::new().await;
    let response = t
        .send(
            Request::get("/graphql")
                .header(header::ACCEPT, "text/html,application/xhtml+xml")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.as_str().unwrap().to_lowercase().contains("graphiql"));
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The audit suite's release (the newest when last moved).
const AUDIT_VERSION: &str = "1.23.1";

/// Installs `graphql-http` (pinned) under the target directory once per version.
fn install_audit_suite() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("graphql-http-audit-{AUDIT_VERSION}"));
    if !dir.join("node_modules/graphql-http/package.json").is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg(format!("graphql-http@{AUDIT_VERSION}"))
            .arg("graphql@16.11.0")
            .status()
            .expect("npm");
        assert!(status.success(), "npm install graphql-http failed");
    }
    dir
}

#[tokio::test]
async fn graphql_http_audit_suite_passes() {
    if !have("node") || !have("npm") {
        println!("SKIPPED graphql_http_audit_suite_passes: node and npm are not installed");
        return;
    }
    let t = TestApp::new().await;
    let dir = tokio::task::spawn_blocking(install_audit_suite).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = t.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/audit/graphql_http_audit.mjs");
    let key = t.admin_key.clone();
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(format!("http://{addr}/graphql"))
        .arg(key)
        .env("AUDIT_DIR", &dir)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "audit script failed: {}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(results.len() >= 50, "only {} audits ran", results.len());
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| {
            let name = r["name"].as_str().unwrap_or("");
            (name.starts_with("MUST") || name.starts_with("SHOULD")) && r["status"] != "ok"
        })
        .collect();
    assert!(failed.is_empty(), "failed audits: {failed:#?}");
    println!("graphql-http audits: {} run, all MUST and SHOULD passed", results.len());
}
