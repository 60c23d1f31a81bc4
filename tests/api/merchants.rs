//! Merchants, stores, merchant keys and their payment requests (seed 001), over GraphQL.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, id};
use crate::graphql_reads::count;

/// A merchant with one store, its signing secret and a key.
pub struct MerchantSetup {
    pub merchant: String,
    pub store: String,
    pub secret: String,
    pub key: String,
}

pub async fn merchant(t: &TestApp, name: &str) -> MerchantSetup {
    let data = t
        .gql_data(
            "mutation($n: String!) { createMerchant(displayName: $n) { merchant { id } signingSecret { secret } } }",
            json!({ "n": name }),
        )
        .await;
    let merchant = data["createMerchant"]["merchant"]["id"].as_str().unwrap().to_owned();
    let secret = data["createMerchant"]["signingSecret"]["secret"].as_str().unwrap().to_owned();
    let data = t
        .gql_data(
            "mutation($m: UUID!) { createStore(merchantId: $m, storeName: \"Store\", officeName: \"Office\") { id } }",
            json!({ "m": merchant }),
        )
        .await;
    let store = data["createStore"]["id"].as_str().unwrap().to_owned();
    let key = t.merchant_key(merchant.parse().unwrap()).await;
    MerchantSetup { merchant, store, secret, key }
}

pub const ORDER_FIELDS: &str = "id publicId totalCents currency status paymentStatus merchantStatus eventSeq
    items { quantity unitPriceCents totalCents }
    store { id storeName } merchant { id displayName }
    paymentRequest { customerId customerOrderId description callbackUrl paymentType installmentTerm paymentUrl }";

/// Creates a payment request with `key`; returns the whole response body.
pub async fn create(t: &TestApp, key: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: CreateMerchantOrderInput!) {{ createMerchantOrder(input: $input) {{ {ORDER_FIELDS} }} }}"
    );
    let response = t.gql_as(key, &query, json!({ "input": input })).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body
}

pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned()
}

#[tokio::test]
async fn an_amount_only_request_becomes_a_one_line_jpy_order() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Kenji Umemura").await;
    assert!(m.secret.starts_with("whsec_") && m.secret.len() > 40, "{}", m.secret);
    let body = create(
        &t,
        &m.key,
        json!({ "amountCents": 1000, "customerId": "1000", "customerOrderId": "1001", "description": "NFT",
                "paymentType": "INSTALLMENT", "installmentTerm": 6 }),
    )
    .await;
    let order = &body["data"]["createMerchantOrder"];
    assert_eq!(order["totalCents"], 1000, "{body}");
    assert_eq!(order["currency"], "JPY");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["merchantStatus"], "WAITING_FOR_PAYMENT");
    assert_eq!(order["items"], json!([{ "quantity": 1, "unitPriceCents": 1000, "totalCents": 1000 }]));
    assert_eq!(order["store"]["id"], m.store.as_str());
    assert_eq!(order["merchant"]["displayName"], "Kenji Umemura");
    let request = &order["paymentRequest"];
    assert_eq!(request["customerOrderId"], "1001");
    assert_eq!(request["paymentType"], "INSTALLMENT");
    assert_eq!(request["installmentTerm"], 6);
    let public_id = order["publicId"].as_str().unwrap();
    assert!(request["paymentUrl"].as_str().unwrap().ends_with(&format!("/gateway/payment/{public_id}")));
    assert_eq!(order["eventSeq"], 1);
    // The same order by its public id.
    let response = t
        .gql_as(&m.key, "query($id: UUID!) { orderByPublicId(id: $id) { id totalCents } }", json!({ "id": public_id }))
        .await;
    assert_eq!(response.body["data"]["orderByPublicId"]["id"], order["id"]);
}

#[tokio::test]
async fn payment_terms_are_checked_and_a_refusal_changes_nothing() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Terms").await;
    let cases = [
        (json!({ "amountCents": 1000, "paymentType": "INSTALLMENT" }), "installmentTerm"),
        (json!({ "amountCents": 1000, "paymentType": "INSTALLMENT", "installmentTerm": 7 }), "installmentTerm"),
        (json!({ "amountCents": 1000, "installmentTerm": 3 }), "installmentTerm"),
        (json!({ "amountCents": 0 }), "amountCents"),
        (json!({ "amountCents": 1_000_000_000_001i64 }), "amountCents"),
        (json!({ "amountCents": 1000, "currency": "XXX" }), "currency"),
        (json!({ "amountCents": 1000, "successUrl": "javascript:alert(1)" }), "successUrl"),
        (json!({ "amountCents": 1000, "consumerEmail": "not-an-email" }), "consumerEmail"),
        (json!({ "amountCents": 1000, "consumerPhone": "call me" }), "consumerPhone"),
        (json!({ "amountCents": 1000, "customerId": "x".repeat(201) }), "customerId"),
        (json!({ "amountCents": 1000, "userId": "1" }), "userId"),
    ];
    for (input, field) in cases {
        let body = create(&t, &m.key, input.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(field), "{input}: {message}");
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 0);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM payment_requests").await, 0);
}

#[tokio::test]
async fn callback_urls_to_private_addresses_are_refused() {
    let t = TestApp::new().await;
    let m = merchant(&t, "SSRF").await;
    for url in [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
    ] {
        let body = create(&t, &m.key, json!({ "amountCents": 1000, "callbackUrl": url })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("callbackUrl"), "{body}");
        let response = t
            .gql_as(
                &m.key,
                "mutation($m: UUID!, $u: String!) { addWebhookEndpoint(merchantId: $m, url: $u) { id } }",
                json!({ "m": m.merchant, "u": url }),
            )
            .await;
        assert_eq!(error_code(&response.body), "BAD_USER_INPUT", "{url}: {}", response.body);
    }
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 0);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM merchant_endpoints").await, 0);
}

#[tokio::test]
async fn another_merchants_orders_are_not_found_anywhere() {
    let t = TestApp::new().await;
    let a = merchant(&t, "Merchant A").await;
    let b = merchant(&t, "Merchant B").await;
    let body = create(&t, &a.key, json!({ "amountCents": 5000 })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    let (order_id, public_id) = (order["id"].as_str().unwrap(), order["publicId"].as_str().unwrap());
    // B's own order, so its lists are not empty by accident.
    create(&t, &b.key, json!({ "amountCents": 700 })).await;

    let reads = [
        ("query($id: ID!) { order(id: $id) { id } }", json!({ "id": order_id }), "order"),
        ("query($id: UUID!) { orderByPublicId(id: $id) { id } }", json!({ "id": public_id }), "orderByPublicId"),
        ("query($id: UUID!) { merchant(id: $id) { id } }", json!({ "id": a.merchant }), "merchant"),
        ("query($id: UUID!) { store(id: $id) { id } }", json!({ "id": a.store }), "store"),
    ];
    for (query, vars, field) in reads {
        let response = t.gql_as(&b.key, query, vars).await;
        assert_eq!(response.body["data"][field], Value::Null, "{field}: {}", response.body);
        assert!(response.body.get("errors").is_none(), "{}", response.body);
    }
    // Lists: B sees only its own order, even when it asks for A's store or merchant.
    for filter in [json!({}), json!({ "storeId": a.store }), json!({ "merchantId": a.merchant })] {
        let response = t
            .gql_as(
                &b.key,
                "query($f: OrderFilter) { orders(filter: $f) { nodes { id totalCents } } }",
                json!({ "f": filter }),
            )
            .await;
        let nodes = response.body["data"]["orders"]["nodes"].as_array().unwrap().clone();
        assert!(nodes.iter().all(|n| n["totalCents"] == 700), "{filter}: {nodes:?}");
    }
    // Changes: not found, and nothing changed.
    let writes = [
        (
            "mutation($id: UUID!) { updateMerchantOrder(id: $id, input: { amountCents: 1 }) { id } }",
            json!({ "id": public_id }),
        ),
        ("mutation($id: UUID!) { submitMerchantOrder(id: $id) { id } }", json!({ "id": public_id })),
        ("mutation($m: UUID!) { rotateMerchantSecret(merchantId: $m) { secret } }", json!({ "m": a.merchant })),
        (
            "mutation($m: UUID!) { addWebhookEndpoint(merchantId: $m, url: \"https://example.com/x\") { id } }",
            json!({ "m": a.merchant }),
        ),
        (
            "mutation($s: UUID!) { createMerchantOrder(input: { storeId: $s, amountCents: 9 }) { id } }",
            json!({ "s": a.store }),
        ),
    ];
    for (query, vars) in writes {
        let response = t.gql_as(&b.key, query, vars.clone()).await;
        assert_eq!(error_code(&response.body), "NOT_FOUND", "{query}: {}", response.body);
    }
    // Admin-only actions stay admin-only for merchant keys.
    let response = t
        .gql_as(&b.key, "mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": order_id }))
        .await;
    assert_eq!(error_code(&response.body), "FORBIDDEN", "{}", response.body);
    let totals = count(&t, "SELECT sum(total_cents)::bigint AS n FROM orders").await;
    assert_eq!(totals, 5700);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM merchant_secrets").await, 2);
    // A customer key sees no merchant data either.
    let user = t.create_user("buyer@example.com", 0).await;
    let customer = t.key(billing_api::domain::Role::Customer, Some(user)).await;
    let response =
        t.gql_as(&customer, "query($id: UUID!) { orderByPublicId(id: $id) { id } }", json!({ "id": public_id })).await;
    assert_eq!(response.body["data"]["orderByPublicId"], Value::Null);
    let response =
        t.gql_as(&customer, "mutation { createMerchantOrder(input: { amountCents: 5 }) { id } }", json!({})).await;
    assert_eq!(error_code(&response.body), "FORBIDDEN");
}

#[tokio::test]
async fn an_unpaid_request_changes_and_a_paid_one_does_not() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Updates").await;
    let body = create(&t, &m.key, json!({ "amountCents": 1000, "description": "first" })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    let public_id = order["publicId"].as_str().unwrap();
    let update = "mutation($id: UUID!, $input: UpdateMerchantOrderInput!) {
        updateMerchantOrder(id: $id, input: $input) { totalCents items { totalCents } paymentRequest { description } } }";
    let response = t
        .gql_as(&m.key, update, json!({ "id": public_id, "input": { "amountCents": 2500, "description": "second" } }))
        .await;
    let changed = &response.body["data"]["updateMerchantOrder"];
    assert_eq!(changed["totalCents"], 2500, "{}", response.body);
    assert_eq!(changed["items"], json!([{ "totalCents": 2500 }]));
    assert_eq!(changed["paymentRequest"]["description"], "second");
    // Paid: CONFLICT, nothing changes.
    t.gql_data("mutation($id: ID!) { markOrderPaid(input: { id: $id }) { id } }", json!({ "id": order["id"] })).await;
    let response = t.gql_as(&m.key, update, json!({ "id": public_id, "input": { "amountCents": 1 } })).await;
    assert_eq!(error_code(&response.body), "CONFLICT", "{}", response.body);
    assert_eq!(count(&t, "SELECT total_cents AS n FROM orders").await, 2500);
    let response = t.gql_as(&m.key, update, json!({ "id": public_id, "input": {} })).await;
    assert_eq!(error_code(&response.body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_draft_cannot_be_paid_until_it_is_submitted() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Drafts").await;
    let body = create(&t, &m.key, json!({ "amountCents": 1000, "draft": true })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    assert_eq!(order["status"], "DRAFT");
    assert_eq!(order["merchantStatus"], "TEMPORARY_SAVE");
    let response = t
        .gql("mutation($id: ID!) { createPayment(input: { orderId: $id }) { id } }", json!({ "id": order["id"] }))
        .await;
    assert_eq!(error_code(&response), "CONFLICT", "{response}");
    let response = t
        .gql_as(
            &m.key,
            "mutation($id: UUID!) { submitMerchantOrder(id: $id) { status merchantStatus } }",
            json!({ "id": order["publicId"] }),
        )
        .await;
    assert_eq!(
        response.body["data"]["submitMerchantOrder"],
        json!({ "status": "PENDING", "merchantStatus": "WAITING_FOR_PAYMENT" })
    );
    let payment = t
        .gql_data("mutation($id: ID!) { createPayment(input: { orderId: $id }) { id } }", json!({ "id": order["id"] }))
        .await;
    assert!(id(&payment["createPayment"]["id"]) > 0);
}

/// Once a payment was attempted the amount is fixed (the provider may still take the
/// attempt's amount): the update is CONFLICT, and the database refuses it as well.
#[tokio::test]
async fn the_amount_is_fixed_once_a_payment_was_attempted() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Fixed").await;
    let body = create(&t, &m.key, json!({ "amountCents": 1000 })).await;
    let order = body["data"]["createMerchantOrder"].clone();
    let order_id: i64 = order["id"].as_str().unwrap().parse().unwrap();
    let payment = crate::callbacks::start_payment(&t, order_id).await;
    // The attempt fails: the order is unpaid again, but its amount stays.
    t.gql_data(
        "mutation($o: ID!, $p: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: $p, status: FAILED }) { id } }",
        json!({ "o": order["id"], "p": payment.to_string() }),
    )
    .await;
    let update = "mutation($id: UUID!, $input: UpdateMerchantOrderInput!) { updateMerchantOrder(id: $id, input: $input) { totalCents } }";
    let response =
        t.gql_as(&m.key, update, json!({ "id": order["publicId"], "input": { "amountCents": 50000 } })).await;
    assert_eq!(error_code(&response.body), "CONFLICT", "{}", response.body);
    // The description may still change, also with the same amount sent again (the seed's
    // PUT always sends pay_amount).
    let same = json!({ "id": order["publicId"], "input": { "amountCents": 1000, "description": "new" } });
    let response = t.gql_as(&m.key, update, same).await;
    assert_eq!(response.body["data"]["updateMerchantOrder"]["totalCents"], 1000, "{}", response.body);
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&t.url).await.unwrap();
    let refused = diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!("UPDATE orders SET total_cents = 50000 WHERE id = {order_id}")),
        &mut conn,
    )
    .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("total is fixed")));
    assert_eq!(count(&t, "SELECT total_cents AS n FROM orders").await, 1000);
}

/// A payment request shows other keys' names to staff only; others see `staff`.
#[tokio::test]
async fn customers_do_not_see_key_names() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Names").await;
    let user = t.create_user("buyer@example.com", 0).await;
    let body = t
        .gql(
            "mutation($s: UUID!, $u: ID!) { createMerchantOrder(input: { storeId: $s, amountCents: 10, userId: $u }) { id } }",
            json!({ "s": m.store, "u": user.to_string() }),
        )
        .await;
    let order = body["data"]["createMerchantOrder"]["id"].clone();
    let customer = t.key(billing_api::domain::Role::Customer, Some(user)).await;
    let query = "query($id: ID!) { order(id: $id) { paymentRequest { createdBy } } }";
    let seen = t.gql_as(&customer, query, json!({ "id": order })).await.body;
    assert_eq!(seen["data"]["order"]["paymentRequest"]["createdBy"], "staff", "{seen}");
    let by_merchant = t.gql_as(&m.key, query, json!({ "id": order })).await.body;
    assert_eq!(by_merchant["data"]["order"]["paymentRequest"]["createdBy"], "staff", "{by_merchant}");
    let staff = t.gql_data(query, json!({ "id": order })).await;
    assert_eq!(staff["order"]["paymentRequest"]["createdBy"], "test-admin");
}

/// Fan-out a merchant key could cause: rotating again and again keeps two secrets signing
/// (the newest and the one before it), and endpoints are capped, so one order change
/// writes a bounded number of deliveries and signatures.
#[tokio::test]
async fn rotations_and_endpoints_cannot_fan_out() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Fan-out").await;
    for _ in 0..5 {
        let response = t
            .gql_as(
                &m.key,
                "mutation($m: UUID!) { rotateMerchantSecret(merchantId: $m, overlapSeconds: 3600) { id } }",
                json!({ "m": m.merchant }),
            )
            .await;
        assert!(response.body.get("errors").is_none(), "{}", response.body);
    }
    let active =
        count(&t, "SELECT count(*) AS n FROM merchant_secrets WHERE expires_at IS NULL OR expires_at > now()").await;
    assert_eq!(active, 2, "the newest secret and the one before it");
    let add = "mutation($m: UUID!, $u: String!) { addWebhookEndpoint(merchantId: $m, url: $u) { id } }";
    for i in 0..billing_api::domain::merchants::MAX_ENDPOINTS {
        let response =
            t.gql_as(&m.key, add, json!({ "m": m.merchant, "u": format!("https://93.184.216.34/hook/{i}") })).await;
        assert!(response.body.get("errors").is_none(), "{}", response.body);
    }
    let response = t.gql_as(&m.key, add, json!({ "m": m.merchant, "u": "https://93.184.216.34/one-more" })).await;
    assert_eq!(error_code(&response.body), "CONFLICT", "{}", response.body);
    assert_eq!(
        count(&t, "SELECT count(*) AS n FROM merchant_endpoints").await,
        billing_api::domain::merchants::MAX_ENDPOINTS as i64
    );
}

/// The cap counts enabled endpoints: a disabled one frees room for a new URL, and enabling
/// it again past the cap is CONFLICT.
#[tokio::test]
async fn disabled_endpoints_free_room_and_enabling_respects_the_cap() {
    let t = TestApp::new().await;
    let m = merchant(&t, "Moving").await;
    let add = "mutation($m: UUID!, $u: String!) { addWebhookEndpoint(merchantId: $m, url: $u) { id } }";
    let mut first = Value::Null;
    for i in 0..billing_api::domain::merchants::MAX_ENDPOINTS {
        let response =
            t.gql_as(&m.key, add, json!({ "m": m.merchant, "u": format!("https://93.184.216.34/hook/{i}") })).await;
        if i == 0 {
            first = response.body["data"]["addWebhookEndpoint"]["id"].clone();
        }
    }
    let toggle = "mutation($id: ID!, $on: Boolean!) { setWebhookEndpointEnabled(id: $id, enabled: $on) { enabled } }";
    let off = t.gql_as(&m.key, toggle, json!({ "id": first, "on": false })).await;
    assert_eq!(off.body["data"]["setWebhookEndpointEnabled"]["enabled"], false, "{}", off.body);
    let moved = t.gql_as(&m.key, add, json!({ "m": m.merchant, "u": "https://93.184.216.34/new-home" })).await;
    assert!(moved.body.get("errors").is_none(), "{}", moved.body);
    let on = t.gql_as(&m.key, toggle, json!({ "id": first, "on": true })).await;
    assert_eq!(error_code(&on.body), "CONFLICT", "{}", on.body);
    assert_eq!(count(&t, "SELECT count(*) AS n FROM merchant_endpoints WHERE enabled").await, 20);
}
