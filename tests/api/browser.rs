//! GraphiQL in a real browser: headless Chromium opens /graphiql on a live server with no
//! network beyond loopback, runs the pre-filled orders query, and the result pane shows
//! order data. A screenshot is kept as a test artifact (target/tmp/graphiql.png).

use std::path::{Path, PathBuf};
use std::process::Command;

use billing_api::app::App;
use billing_api::config::Config;
use serde_json::Value;

use crate::common::TestApp;

const PLAYWRIGHT: &str = "playwright-core@1.64.1";
const CHROMIUM: &str = "/usr/bin/chromium";

use crate::contract::succeeds;

/// Debian's chromium, installed with apt-get when missing (as the machine's root user).
fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).is_file() {
        return Ok(());
    }
    if !succeeds("id", &["-u"]) || !succeeds("apt-get", &["--version"]) {
        return Err("chromium is not installed and apt-get is not available".to_owned());
    }
    let installed = Command::new("sh")
        .arg("-c")
        .arg("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
        .status()
        .map_err(|e| e.to_string())?;
    if installed.success() && Path::new(CHROMIUM).is_file() {
        Ok(())
    } else {
        Err(format!("apt-get install chromium failed: {installed}"))
    }
}

fn ensure_playwright() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-test");
    if !dir.join("node_modules/playwright-core/package.json").is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-package-lock", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg(PLAYWRIGHT)
            .status()
            .unwrap();
        assert!(status.success(), "npm install {PLAYWRIGHT} failed");
    }
    dir
}

/// Node, npm, Chromium and playwright-core, or why the browser test `what` is skipped.
async fn browser_or_skip(what: &str) -> Option<PathBuf> {
    if !succeeds("node", &["--version"]) || !succeeds("npm", &["--version"]) {
        println!("SKIPPED {what}: node and npm are not installed");
        return None;
    }
    if let Err(reason) = tokio::task::spawn_blocking(ensure_chromium).await.unwrap() {
        println!("SKIPPED {what}: {reason}");
        return None;
    }
    Some(tokio::task::spawn_blocking(ensure_playwright).await.unwrap())
}

/// Serves the test's database on a loopback port, with GraphiQL pre-filling the admin key
/// (as in development); returns the base URL.
async fn serve_graphiql(t: &TestApp) -> String {
    let config =
        Config { graphiql_key: Some(t.admin_key.clone()), database_url: Some(t.url.clone()), ..Config::default() };
    let app = App::new(config, &t.url).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, billing_api::http::router(app)).await });
    format!("http://{addr}")
}

/// Runs a script of tests/browser with `args` and returns the JSON report it prints.
async fn run_script(script: &str, browser_dir: &Path, args: &[String]) -> Value {
    let output = tokio::process::Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser").join(script))
        .args(args)
        .env("BROWSER_DIR", browser_dir)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "browser script failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(output.stdout.trim_ascii()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_an_orders_query_in_headless_chromium() {
    let Some(browser_dir) = browser_or_skip("graphiql browser test").await else { return };
    let t = TestApp::new().await;
    t.seed(4, 30).await;
    let base = serve_graphiql(&t).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphiql.png");
    let _ = std::fs::remove_file(&screenshot);
    let args = [format!("{base}/graphiql"), screenshot.display().to_string()];
    let report = run_script("graphiql.mjs", &browser_dir, &args).await;
    let result = report["result"].as_str().unwrap();
    assert!(result.contains("ORD-"), "the result pane shows order numbers: {result}");
    assert!(result.contains("\"totalCount\": 30"), "{result}");
    assert!(result.contains("balanceCents"), "nested fields are shown: {result}");
    assert_eq!(report["external"], serde_json::json!([]), "nothing is loaded from outside loopback");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot is kept at {}", screenshot.display());
}

/// GraphiQL runs a subscription over its WebSocket fetcher: a mutation made beside it (over
/// HTTP, as another client) appears in its result pane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_a_subscription_and_shows_a_change_made_beside_it() {
    let Some(browser_dir) = browser_or_skip("graphiql subscription test").await else { return };
    let t = TestApp::new().await;
    let user = t.create_user("graphiql-live@example.com", 0).await;
    let order = crate::common::id(&t.create_order(user, &[(1, 1200)]).await["id"]);
    let base = serve_graphiql(&t).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphiql-live.png");
    let args = [base, t.admin_key.clone(), order.to_string(), screenshot.display().to_string()];
    let report = run_script("graphiql_live.mjs", &browser_dir, &args).await;
    assert_eq!(report["changed"]["data"]["cancelOrder"]["status"], "CANCELLED", "{report}");
    let result = report["result"].as_str().unwrap();
    assert!(result.contains("\"kind\": \"cancelled\""), "the change shows in the result pane: {report}");
    assert!(result.contains("\"status\": \"CANCELLED\""), "{report}");
}
