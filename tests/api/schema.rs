/// `schema.graphql` is the exported SDL; regenerate with `cargo run -- schema > schema.graphql`.
#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let current = billing_api::graphql::sdl();
    assert!(committed == current, "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`");
}

/// Every money field is the 64-bit `Money` scalar, never the 32-bit `Int`: a field or
/// argument named `*Cents` typed `Int` is a contract a conforming client may refuse.
#[test]
fn money_fields_are_64_bit() {
    let sdl = billing_api::graphql::sdl();
    let offenders: Vec<&str> = sdl
        .lines()
        .filter(|line| line.contains("Cents:") || line.contains("Cents("))
        .filter(|line| !line.contains("Cents: Money") && !line.contains("Cents: [Money"))
        .collect();
    assert!(offenders.is_empty(), "money fields typed other than Money: {offenders:?}");
    assert!(sdl.contains("scalar Money"), "the Money scalar is declared");
    assert!(sdl.contains("scalar DateTime @specifiedBy(url: \"https://datatracker.ietf.org/doc/html/rfc3339\")"));
    assert!(sdl.contains("scalar JSON @specifiedBy(url: \"https://www.rfc-editor.org/rfc/rfc8259\")"));
    assert!(!sdl.contains("Implement the DateTime"), "DateTime describes its contract, not the library");
}

/// 3 billion yen is past 2^31: it goes in and comes out as the same JSON number, through a
/// variable, an inline literal and a digit string.
#[tokio::test]
async fn amounts_past_32_bits_round_trip_exactly() {
    use serde_json::json;
    let t = crate::common::TestApp::new().await;
    let user = t.create_user("big@example.com", 0).await;
    let create =
        "mutation($input: CreateOrderInput!) { createOrder(input: $input) { totalCents items { unitPriceCents } } }";
    for price in [json!(3_000_000_000i64), json!("3000000000")] {
        let data = t
            .gql_data(
                create,
                json!({ "input": { "userId": user.to_string(), "currency": "JPY", "paymentMethod": "card",
                    "items": [{ "name": "Land", "sku": "L", "quantity": 2, "unitPriceCents": price }] } }),
            )
            .await;
        assert_eq!(data["createOrder"]["totalCents"], json!(6_000_000_000i64));
        assert_eq!(data["createOrder"]["items"][0]["unitPriceCents"], json!(3_000_000_000i64));
    }
    let inline = format!(
        "mutation {{ createOrder(input: {{ userId: \"{user}\", currency: \"JPY\", paymentMethod: \"card\", \
         items: [{{ name: \"Land\", sku: \"L\", quantity: 1, unitPriceCents: 4000000000 }}] }}) {{ totalCents }} }}"
    );
    let data = t.gql_data(&inline, json!({})).await;
    assert_eq!(data["createOrder"]["totalCents"], json!(4_000_000_000i64));

    // A fraction or a value past what a double holds exactly is refused, naming the type and the input it was in.
    for bad in [json!(10.5), json!(9_007_199_254_740_993i64), json!("1e9")] {
        let body = t
            .gql(
                create,
                json!({ "input": { "userId": user.to_string(), "currency": "JPY", "paymentMethod": "card",
                    "items": [{ "name": "Land", "sku": "L", "quantity": 1, "unitPriceCents": bad }] } }),
            )
            .await;
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("OrderItemInput") && message.contains("Money"), "{bad}: {body}");
    }
    let orders = crate::graphql_reads::count(&t, "SELECT count(*) AS n FROM orders").await;
    assert_eq!(orders, 3, "refused inputs created nothing");
}
