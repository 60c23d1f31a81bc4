//! Query-shape limits, refused before any SQL runs; suggestions off; introspection switch.

use billing_api::config::Config;
use serde_json::json;

use crate::common::{TestApp, error_code};

async fn refused_without_sql(t: &TestApp, query: &str, needle: &str) {
    let before = t.app.statements().get();
    let body = t.gql(query, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(needle), "expected {needle:?} in {message:?}");
    assert_eq!(t.app.statements().get(), before, "no SQL ran for a refused query");
}

#[tokio::test]
async fn over_limit_queries_are_refused_before_any_sql() {
    let t = TestApp::new().await;
    let mut deep = String::from("id");
    for _ in 0..7 {
        deep = format!("user {{ orders {{ nodes {{ {deep} }} }} }}");
    }
    refused_without_sql(&t, &format!("{{ orders {{ nodes {{ {deep} }} }} }}"), "GRAPHQL_MAX_DEPTH").await;

    let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    refused_without_sql(&t, &format!("{{ {aliases} }}"), "GRAPHQL_MAX_ALIASES").await;

    // Fragments are counted as expanded: 10 uses of a 60-field fragment.
    let fields: String = (0..60).map(|_| "id ").collect();
    let uses: String = (0..10).map(|i| format!("o{i}: order(id: \"1\") {{ ...F }} ")).collect();
    refused_without_sql(&t, &format!("{{ {uses} }} fragment F on Order {{ {fields} }}"), "GRAPHQL_MAX_FIELDS").await;

    // Within the limits the same kind of query runs.
    let ok = t.gql("{ orders(perPage: 1) { nodes { user { orders { nodes { id } } } } } }", json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok}");
}

#[tokio::test]
async fn limits_are_configurable() {
    let t = TestApp::with_config(Config { graphql_max_aliases: 2, ..Config::default() }).await;
    refused_without_sql(&t, "{ a: __typename b: __typename c: __typename }", "more than 2 aliases").await;
    let body = t.gql("{ a: __typename b: __typename }", json!({})).await;
    assert_eq!(body["data"], json!({ "a": "Query", "b": "Query" }));
}

#[tokio::test]
async fn errors_do_not_suggest_field_names() {
    let t = TestApp::new().await;
    let body = t.gql("{ ordr(id: \"1\") { id } }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let on = TestApp::new().await;
    let body = on.gql("{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let off = TestApp::with_config(Config { graphql_introspection: false, ..Config::default() }).await;
    refused_without_sql(&off, "{ __schema { queryType { name } } }", "GRAPHQL_INTROSPECTION").await;
    refused_without_sql(&off, "{ __type(name: \"Order\") { name } }", "introspection is disabled").await;
    // __typename is not introspection of the schema and keeps working.
    assert_eq!(off.gql("{ __typename }", json!({})).await["data"]["__typename"], "Query");
}

#[tokio::test]
async fn complexity_over_the_limit_names_its_setting() {
    let t = TestApp::with_config(Config { graphql_max_complexity: 20, ..Config::default() }).await;
    let body = t
        .gql(
            &format!("{{ orders {{ nodes {{ {} }} }} }}", "id number status totalCents currency ".repeat(5)),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_COMPLEXITY"), "{body}");
}
