//! Currencies are ISO 4217 with their minor units; provider limits are checked before
//! calling out.

use serde_json::{Value, json};

use crate::common::{TestApp, error_code};
use crate::graphql_reads::count;

const CREATE: &str = "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id totalCents currency } }";

fn order(user: i64, currency: &str, unit_price: i64) -> Value {
    json!({ "input": { "userId": user.to_string(), "currency": currency, "paymentMethod": "card",
        "items": [{ "name": "A", "quantity": 1, "unitPriceCents": unit_price }] } })
}

#[tokio::test]
async fn unknown_and_unkeepable_currencies_are_refused_naming_the_field() {
    let t = TestApp::new().await;
    let user = t.create_user("fx@example.com", 0).await;
    for (code, needle) in [
        ("ZZZ", "currency ZZZ is not an ISO 4217 currency code"),
        ("XAU", "currency XAU has no minor unit"),
        ("usd", "must already be upper case"),
    ] {
        let body = t.gql(CREATE, order(user, code, 100)).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(needle), "{code}: {body}");
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 0);
    for code in ["JPY", "KWD", "EUR"] {
        let data = t.gql_data(CREATE, order(user, code, 100)).await;
        assert_eq!(data["createOrder"]["currency"], code);
    }
}

#[tokio::test]
async fn a_payment_the_provider_would_refuse_is_refused_before_calling_it() {
    // Stripe at a closed port: any call out would be PROVIDER_ERROR, so a CONFLICT proves
    // the limit was checked first.
    let config = billing_api::config::Config {
        payment_provider: billing_api::config::ProviderKind::Stripe,
        stripe_api_base: "http://127.0.0.1:1".to_owned(),
        ..Default::default()
    };
    let t = TestApp::with_config(config).await;
    let user = t.create_user("limits@example.com", 0).await;
    let start = "mutation($o: ID!) { createPayment(input: { orderId: $o }) { id } }";
    for (currency, price, needle) in [
        ("USD", 100_000_000, "stripe takes at most 999999.99 USD in one payment (got 1000000.00 USD)"),
        ("JPY", 30, "stripe takes at least 50 JPY in one payment (got 30 JPY)"),
        ("GBP", 29, "stripe takes at least 0.30 GBP"),
    ] {
        let created = t.gql_data(CREATE, order(user, currency, price)).await;
        let body = t.gql(start, json!({ "o": created["createOrder"]["id"] })).await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(needle), "{body}");
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payments").await, 0, "no attempt recorded");
}
