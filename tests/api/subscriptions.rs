//! GraphQL subscriptions over WebSocket on a live server (the real accept loop): both
//! subprotocols, the key in `connection_init`, replay with `afterSeq`, visibility, limits,
//! revocation, and two independent apps on one database (a change through one reaches a
//! subscriber of the other).

use std::time::Duration;

use billing_api::app::App;
use billing_api::config::Config;
use billing_api::domain::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestApp, id};
use crate::graphql_reads::count;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `app` on a loopback port with the service's own accept loop.
async fn serve(app: App) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = billing_api::http::server::ServeSettings {
        header_read_timeout: Duration::from_secs(5),
        max_connections: 100,
        shutdown_grace: Duration::from_secs(1),
    };
    let router = billing_api::http::router(app);
    tokio::spawn(billing_api::http::server::serve(listener, router, settings, std::future::pending()));
    format!("ws://{addr}/graphql")
}

async fn live(t: &TestApp, config: Config) -> String {
    live_app(t, config).await.0
}

/// `live`, with the served app (to see its subscriptions).
async fn live_app(t: &TestApp, config: Config) -> (String, App) {
    let config = Config { database_url: Some(t.url.clone()), pool_size: 4, ..config };
    let app = App::new(config, &t.url).unwrap();
    (serve(app.clone()).await, app)
}

/// Waits until `app` serves `n` subscriptions (at most 10 s), then a moment more.
async fn serving(app: &App, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.hub().open() < n {
        assert!(std::time::Instant::now() < deadline, "{} of {n} subscriptions started", app.hub().open());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn connect(url: &str, protocol: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// The next protocol message that is not a ping or keep-alive, or the close frame.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message =
            tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a message within 10 s");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    // As graphql-ws clients do; a silent client is closed.
                    send(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                if value["type"] == "ka" {
                    continue;
                }
                return value;
            }
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.unwrap();
                return json!({ "close": u16::from(frame.code), "reason": frame.reason.to_string() });
            }
            Some(Ok(_)) => continue,
            other => return json!({ "ended": format!("{other:?}") }),
        }
    }
}

async fn init(socket: &mut Socket, key: &str) {
    send(socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } })).await;
    assert_eq!(next(socket).await["type"], "connection_ack");
}

const ORDER_UPDATED: &str = "subscription($id: ID!, $after: Int) { orderUpdated(orderId: $id, afterSeq: $after) { orderId seq kind order { status eventSeq } } }";

async fn subscribe(socket: &mut Socket, sub_id: &str, query: &str, variables: Value) {
    send(socket, json!({ "id": sub_id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
        .await;
}

/// The `data` of the next update, asserting it belongs to `sub_id`.
async fn update(socket: &mut Socket, sub_id: &str) -> Value {
    let message = next(socket).await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], sub_id, "{message}");
    message["payload"].clone()
}

async fn seqs_after(t: &TestApp, order: i64, seq: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = seq;
    loop {
        let n = count(
            t,
            &format!("SELECT coalesce(min(seq), 0) AS n FROM order_events WHERE order_id = {order} AND seq > {at}"),
        )
        .await;
        if n == 0 {
            return out;
        }
        out.push(n);
        at = n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_a_subscriber_of_another_app_and_a_resume_loses_nothing() {
    let t = TestApp::new().await;
    // Two apps on one database share nothing in memory, as two `serve` processes.
    let url = live(&t, Config::default()).await;
    let user = t.create_user("live@example.com", 10_000).await;
    let order = id(&t.create_order(user, &[(1, 500)]).await["id"]);
    let start = count(&t, &format!("SELECT event_seq AS n FROM orders WHERE id = {order}")).await;

    let mut socket = connect(&url, "graphql-transport-ws").await;
    init(&mut socket, &t.admin_key).await;
    // From the sequence number read before subscribing: a change made while the
    // subscription starts is not lost.
    subscribe(&mut socket, "1", ORDER_UPDATED, json!({ "id": order.to_string(), "after": start })).await;
    // Through the other app (the test's own router).
    let paid = crate::mutations::pay(&t, order).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let first = update(&mut socket, "1").await;
    let seq = first["data"]["orderUpdated"]["seq"].as_i64().unwrap();
    assert_eq!(seq, start + 1, "{first}");
    assert_eq!(first["data"]["orderUpdated"]["order"]["status"], "COMPLETED", "{first}");
    // Drain whatever else the payment recorded, then disconnect.
    let expected = seqs_after(&t, order, start).await;
    let mut seen = vec![seq];
    while seen.len() < expected.len() {
        seen.push(update(&mut socket, "1").await["data"]["orderUpdated"]["seq"].as_i64().unwrap());
    }
    assert_eq!(seen, expected, "every change once, in order");
    drop(socket);

    // Three refunds while away.
    for _ in 0..3 {
        let refunded = t
            .gql(
                "mutation($id: ID!) { refundOrder(input: { id: $id, amountCents: 100, creditBalance: true }) { id } }",
                json!({ "id": order.to_string() }),
            )
            .await;
        assert!(refunded.get("errors").is_none(), "{refunded}");
    }
    let last = *seen.last().unwrap();
    let missed = seqs_after(&t, order, last).await;
    assert!(missed.len() >= 3, "{missed:?}");

    let mut socket = connect(&url, "graphql-transport-ws").await;
    init(&mut socket, &t.admin_key).await;
    subscribe(&mut socket, "2", ORDER_UPDATED, json!({ "id": order.to_string(), "after": last })).await;
    let mut replayed = Vec::new();
    for _ in 0..missed.len() {
        replayed.push(update(&mut socket, "2").await["data"]["orderUpdated"]["seq"].as_i64().unwrap());
    }
    assert_eq!(replayed, missed, "exactly what was missed, in order");
    // Nothing more arrives until the next change; then it does, once.
    t.gql(
        "mutation($id: ID!) { refundOrder(input: { id: $id, amountCents: 100, creditBalance: true }) { id } }",
        json!({ "id": order.to_string() }),
    )
    .await;
    let next_seq = update(&mut socket, "2").await["data"]["orderUpdated"]["seq"].as_i64().unwrap();
    assert_eq!(next_seq, missed.last().unwrap() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_sees_only_its_own_orders_live() {
    let t = TestApp::new().await;
    let (url, app) = live_app(&t, Config::default()).await;
    let mine = t.create_user("mine@example.com", 0).await;
    let theirs = t.create_user("theirs@example.com", 0).await;
    let key = t.key(Role::Customer, Some(mine)).await;
    let my_order = id(&t.create_order(mine, &[(1, 100)]).await["id"]);
    let their_order = id(&t.create_order(theirs, &[(1, 100)]).await["id"]);

    let mut socket = connect(&url, "graphql-transport-ws").await;
    init(&mut socket, &key).await;
    // Another user's order is NOT_FOUND, as in a query.
    subscribe(&mut socket, "x", ORDER_UPDATED, json!({ "id": their_order.to_string() })).await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{refused}");
    assert_eq!(next(&mut socket).await["type"], "complete");

    subscribe(&mut socket, "all", "subscription { ordersUpdated { orderId kind actor } }", json!({})).await;
    // "From now" starts when the subscription does: wait until it serves.
    serving(&app, 1).await;
    for order in [their_order, my_order] {
        let cancelled = t
            .gql("mutation($id: ID!) { cancelOrder(input: { id: $id }) { id } }", json!({ "id": order.to_string() }))
            .await;
        assert!(cancelled.get("errors").is_none(), "{cancelled}");
    }
    let got = update(&mut socket, "all").await;
    assert_eq!(got["data"]["ordersUpdated"]["orderId"], my_order.to_string(), "{got}");
    assert_eq!(got["data"]["ordersUpdated"]["actor"], "staff", "customers never see key names");
    // The other user's cancellation never arrives.
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(700), next(&mut socket)).await {
        panic!("nothing else arrives, got {extra}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_keys_close_4403_and_subscribing_before_init_closes_4401() {
    let t = TestApp::new().await;
    // Long enough that a loaded machine reads the init first; the silent case still ends in 4408.
    let url = live(&t, Config { ws_init_timeout: Duration::from_secs(2), ..Config::default() }).await;
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut socket = connect(&url, protocol).await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": "Bearer bk_nope" } })).await;
        let mut message = next(&mut socket).await;
        if protocol == "graphql-ws" {
            assert_eq!(message["type"], "connection_error", "{message}");
            message = next(&mut socket).await;
        }
        assert_eq!(message["close"], 4403, "{protocol}: {message}");

        let mut socket = connect(&url, protocol).await;
        send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await;
        let mut message = next(&mut socket).await;
        if protocol == "graphql-ws" {
            message = next(&mut socket).await;
        }
        assert_eq!(message["close"], 4403, "no key: {protocol}: {message}");
    }
    let mut socket = connect(&url, "graphql-transport-ws").await;
    subscribe(&mut socket, "1", "subscription { ordersUpdated { seq } }", json!({})).await;
    assert_eq!(next(&mut socket).await["close"], 4401);
    // Silence after connecting: 4408.
    let mut socket = connect(&url, "graphql-transport-ws").await;
    assert_eq!(next(&mut socket).await["close"], 4408);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_graphql_ws_protocol_streams_too() {
    let t = TestApp::new().await;
    let url = live(&t, Config::default()).await;
    let user = t.create_user("old@example.com", 0).await;
    let order = id(&t.create_order(user, &[(1, 100)]).await["id"]);
    let start = count(&t, &format!("SELECT event_seq AS n FROM orders WHERE id = {order}")).await;
    let mut socket = connect(&url, "graphql-ws").await;
    init(&mut socket, &t.admin_key).await;
    let variables = json!({ "id": order.to_string(), "after": start });
    send(
        &mut socket,
        json!({ "id": "7", "type": "start", "payload": { "query": ORDER_UPDATED, "variables": variables } }),
    )
    .await;
    t.gql("mutation($id: ID!) { cancelOrder(input: { id: $id }) { id } }", json!({ "id": order.to_string() })).await;
    let message = next(&mut socket).await;
    assert_eq!(message["type"], "data", "{message}");
    assert_eq!(message["payload"]["data"]["orderUpdated"]["kind"], "cancelled", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_and_a_revoked_key_s_subscriptions_end() {
    let t = TestApp::new().await;
    let config = Config {
        ws_subscriptions_per_connection: 2,
        ws_subscriptions_per_key: 3,
        live_key_check: Duration::from_millis(100),
        // Pings seldom: a socket this test does not read for a while on a loaded machine
        // must not be closed as silent (4408) before the revocation closes it (4403).
        ws_ping_interval: Duration::from_secs(10),
        ..Config::default()
    };
    let url = live(&t, config).await;
    let key = t.key(Role::Support, None).await;
    let query = "subscription { ordersUpdated { seq } }";
    let mut a = connect(&url, "graphql-transport-ws").await;
    init(&mut a, &key).await;
    for n in ["1", "2", "3"] {
        subscribe(&mut a, n, query, json!({})).await;
    }
    // Which of the three is refused depends on which starts last.
    let refused = next(&mut a).await;
    let refused_id = refused["id"].as_str().unwrap().to_owned();
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "CONFLICT", "{refused}");
    assert!(
        refused["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("this connection has 2 open subscriptions"),
        "{refused}"
    );
    assert_eq!(next(&mut a).await["type"], "complete");
    let mut b = connect(&url, "graphql-transport-ws").await;
    init(&mut b, &key).await;
    subscribe(&mut b, "1", query, json!({})).await;
    subscribe(&mut b, "2", query, json!({})).await;
    let refused = next(&mut b).await;
    let refused_b_id = refused["id"].as_str().unwrap().to_owned();
    assert!(
        refused["payload"]["errors"][0]["message"].as_str().unwrap().contains("this API key has 3 open subscriptions"),
        "{refused}"
    );
    assert_eq!(next(&mut b).await["type"], "complete");

    // A socket of the key that subscribes to nothing.
    let mut c = connect(&url, "graphql-transport-ws").await;
    init(&mut c, &key).await;

    // Revoking the key ends every one of its subscriptions.
    let key_id = count(&t, "SELECT id AS n FROM api_keys WHERE name = 'test-support'").await;
    billing_api::domain::access::revoke_key(t.app.pool(), key_id).await.unwrap();
    let mut ended = Vec::new();
    for which in [0, 0, 1] {
        let socket = if which == 0 { &mut a } else { &mut b };
        let message = next(socket).await;
        assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{message}");
        ended.push(message["id"].as_str().unwrap().to_owned());
        assert_eq!(next(socket).await["type"], "complete");
    }
    ended.sort();
    let mut expected: Vec<String> =
        ["1", "2", "3"].iter().filter(|n| **n != refused_id).map(|n| n.to_string()).collect();
    expected.extend(["1", "2"].iter().filter(|n| **n != refused_b_id).map(|n| n.to_string()));
    expected.sort();
    assert_eq!(ended, expected);
    // And the sockets of the revoked key close (4403) rather than take new subscriptions.
    assert_eq!(next(&mut a).await["close"], 4403);
    assert_eq!(next(&mut b).await["close"], 4403);
    assert_eq!(next(&mut c).await["close"], 4403, "a socket without subscriptions is closed too");
}

/// Hostile sockets: a message larger than an HTTP body is refused before any key is read;
/// event text that looks like a protocol message does not close a reader's socket; with
/// both subprotocols offered, the one the handshake names is the one spoken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_and_protocol_confusion_change_nothing() {
    let t = TestApp::new().await;
    let url = live(&t, Config::default()).await;
    let mut socket = connect(&url, "graphql-transport-ws").await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let _ = socket
        .send(Message::Text(json!({ "type": "connection_init", "payload": { "pad": huge } }).to_string().into()))
        .await;
    let answer = next(&mut socket).await;
    assert!(answer.get("close").is_some() || answer.get("ended").is_some(), "{answer}");
    assert_ne!(answer["type"], "connection_ack");

    let user = t.create_user("confuse@example.com", 0).await;
    let order = id(&t.create_order(user, &[(1, 100)]).await["id"]);
    let mut legacy = connect(&url, "graphql-ws").await;
    init(&mut legacy, &t.admin_key).await;
    let start = count(&t, &format!("SELECT event_seq AS n FROM orders WHERE id = {order}")).await;
    let query = "subscription($id: ID!, $after: Int) { orderUpdated(orderId: $id, afterSeq: $after) { kind data } }";
    let variables = json!({ "id": order.to_string(), "after": start });
    send(&mut legacy, json!({ "id": "1", "type": "start", "payload": { "query": query, "variables": variables } }))
        .await;
    let cancelled = t
        .gql(
            "mutation($id: ID!) { cancelOrder(input: { id: $id, reason: \"connection_error\" }) { id } }",
            json!({ "id": order.to_string() }),
        )
        .await;
    assert!(cancelled.get("errors").is_none(), "{cancelled}");
    let message = next(&mut legacy).await;
    assert_eq!(message["type"], "data", "the socket stays open: {message}");

    // Both offered: the handshake's choice is the protocol spoken.
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-ws, graphql-transport-ws".parse().unwrap());
    let (mut both, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let chosen = response.headers()["sec-websocket-protocol"].to_str().unwrap().to_owned();
    init(&mut both, &t.admin_key).await;
    let start = if chosen == "graphql-ws" { "start" } else { "subscribe" };
    send(&mut both, json!({ "id": "q", "type": start, "payload": { "query": "{ orders { nodes { id } } }" } })).await;
    let refused = next(&mut both).await;
    let expected = if chosen == "graphql-ws" { "data" } else { "next" };
    assert_eq!(refused["type"], expected, "{chosen}: {refused}");
    assert!(refused["payload"]["errors"][0]["message"].as_str().unwrap().contains("only subscriptions"), "{refused}");
}

/// The `graphql-ws` npm client against two real `serve` processes on one database: a change
/// through one reaches a subscriber on the other; after a disconnect, three changes, and a
/// reconnect with `afterSeq`, exactly what was missed arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_ws_npm_client_resumes_across_two_processes() {
    use crate::contract::{succeeds, workspace};
    if !succeeds("node", &["--version"]) || !succeeds("npm", &["--version"]) {
        println!("SKIPPED graphql-ws client test: node and npm are not installed");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract");
    let dir = tokio::task::spawn_blocking(move || workspace(&dir)).await.unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/live/resume.mjs"), dir.join("resume.mjs")).unwrap();

    let url = crate::common::fresh_database().await;
    let created = crate::binary::billing(Some(&url)).args(["keys", "create", "--role", "admin"]).output().unwrap();
    let key = String::from_utf8_lossy(&created.stdout).lines().last().unwrap().trim().to_owned();
    let (mut a, http_a) = crate::binary::start_server(&url).await;
    let (mut b, http_b) = crate::binary::start_server(&url).await;
    let client = reqwest::Client::new();
    let gql = |query: &str| {
        client.post(format!("{http_a}/graphql")).bearer_auth(&key).json(&json!({ "query": query })).send()
    };
    let user: Value = gql("mutation { createUser(input: { email: \"two@example.com\", name: \"T\" }) { id } }")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = user["data"]["createUser"]["id"].as_str().unwrap().to_owned();
    let order: Value = gql(&format!(
        "mutation {{ createOrder(input: {{ userId: \"{user}\", currency: \"USD\", paymentMethod: \"card\", items: [{{ name: \"A\", quantity: 1, unitPriceCents: 1000 }}] }}) {{ id }} }}"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let order = order["data"]["createOrder"]["id"].as_str().unwrap().to_owned();
    let paid: Value =
        gql(&format!("mutation {{ markOrderPaid(input: {{ id: \"{order}\", reference: \"R\" }}) {{ status }} }}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(paid["data"]["markOrderPaid"]["status"], "COMPLETED", "{paid}");

    let ws_b = format!("{}/graphql", http_b.replace("http://", "ws://"));
    let output = tokio::process::Command::new("node")
        .arg("resume.mjs")
        .args([&ws_b, &http_a, &key, &order])
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    for server in [&mut a, &mut b] {
        let _ = server.kill();
        let _ = server.wait();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    let first: Vec<i64> = serde_json::from_value(report["first"].clone()).unwrap();
    let resumed: Vec<i64> = serde_json::from_value(report["resumed"].clone()).unwrap();
    assert!(!first.is_empty(), "the change through A reached B: {report}");
    // What the trail holds after the last update seen before the disconnect: three refunds.
    let last = *first.iter().max().unwrap();
    assert_eq!(resumed.first(), Some(&(last + 1)), "{report}");
    let mut sorted = resumed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, resumed, "in order, none twice: {report}");
    assert_eq!(resumed, ((last + 1)..=(last + resumed.len() as i64)).collect::<Vec<_>>(), "no gap: {report}");
    use diesel_async::AsyncConnection;
    let mut conn = diesel_async::AsyncPgConnection::establish(&url).await.unwrap();
    let missed = crate::graphql_reads::count_on(
        &mut conn,
        &format!("SELECT count(*) AS n FROM order_events WHERE order_id = {order} AND seq > {last}"),
    )
    .await;
    assert_eq!(resumed.len() as i64, missed, "exactly what was missed: {report}");
    assert_eq!(missed, 3, "three refunds, one event each: {report}");
}

/// A socket with no subscription is closed after the idle timeout; a graphql-transport-ws
/// client that never answers the server's pings is closed after three intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_silent_sockets_are_closed() {
    let t = TestApp::new().await;
    // Idle: acknowledged, answers pings, never subscribes. Its server pings seldom, so a
    // loaded machine's late pong is not taken for silence.
    let config = Config {
        ws_idle_timeout: Duration::from_millis(400),
        ws_ping_interval: Duration::from_secs(1),
        ..Config::default()
    };
    let url = live(&t, config).await;
    let mut idle = connect(&url, "graphql-transport-ws").await;
    init(&mut idle, &t.admin_key).await;
    let closed = next(&mut idle).await;
    assert_eq!(closed["close"], 1000, "{closed}");
    assert!(closed["reason"].as_str().unwrap().contains("idle"), "{closed}");

    // Silent: subscribed, but never answers a ping.
    let config = Config {
        ws_idle_timeout: Duration::from_millis(400),
        ws_ping_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let url = live(&t, config).await;
    let mut silent = connect(&url, "graphql-transport-ws").await;
    init(&mut silent, &t.admin_key).await;
    subscribe(&mut silent, "1", "subscription { ordersUpdated { seq } }", json!({})).await;
    let started = std::time::Instant::now();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), silent.next()).await.expect("closed within 5 s") {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(closed, Some(4408));
    assert!(started.elapsed() >= Duration::from_millis(300), "not before three intervals");
}

/// Past `WS_MAX_CONNECTIONS` the upgrade is refused with 503 (and a closed socket frees its
/// place).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_past_the_cap_are_refused_with_503() {
    let t = TestApp::new().await;
    let url = live(&t, Config { ws_max_connections: 1, ..Config::default() }).await;
    let mut first = connect(&url, "graphql-transport-ws").await;
    init(&mut first, &t.admin_key).await;
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    first.close(None).await.unwrap();
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut request = url.as_str().into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(request).await {
            again = Some(socket);
            break;
        }
    }
    assert!(again.is_some(), "the place is free again once the first socket closed");
}
