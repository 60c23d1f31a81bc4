//! An adversarial suite against the real binary: generated hostile GraphQL documents
//! (fragment graphs with cycles and fan-out, deep nesting, many aliases and directives, huge
//! names, odd unicode and NUL, hostile variables) and hostile REST bodies and headers, sent
//! with no key, a bad key, a customer key and an admin key. Every case must be answered
//! within a bound and never with a 5xx; the server's RSS must stay under a bound.
//!
//! Bounded in cases and time. `ADVERSARIAL_CASES` and `ADVERSARIAL_SECONDS` raise them for a
//! longer manual run; a failure prints the seed (`ADVERSARIAL_SEED` replays it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};

use crate::binary::TEST_CALLBACK_SECRET;
use crate::common::fresh_database;

/// Longest a single hostile request may take to be answered (debug build, shared cores).
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// The server's resident memory after the run, at most.
const RSS_BOUND_KIB: u64 = 300 * 1024;

#[derive(Debug, Clone)]
enum Case {
    Graphql {
        key: usize,
        body: String,
    },
    Rest {
        key: usize,
        method: &'static str,
        path: String,
        content_type: &'static str,
        body: String,
        extra: Vec<(String, String)>,
    },
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[A-Za-z_][A-Za-z0-9_]{0,12}",
        1 => (1usize..20_000).prop_map(|n| format!("N{}", "x".repeat(n))),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id".to_owned()),
        Just("__typename".to_owned()),
        Just("number".to_owned()),
        Just("items { id name }".to_owned()),
        Just("payments { id }".to_owned()),
        Just("events { kind actor data }".to_owned()),
        Just("user { id email orders(perPage: 100) { nodes { id items { id } } } }".to_owned()),
        Just("__schema { types { name fields { name type { name ofType { name ofType { name } } } } } }".to_owned()),
        name(),
    ]
}

/// Odd strings: unicode, escapes GraphQL accepts and refuses, NUL.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        Just("\\u0000".to_owned()),
        Just("\\uD800".to_owned()),
        Just("\u{feff}\u{202e}\u{0}".to_owned()),
        Just("\\\"\\\\".to_owned()),
        "[\\x00-\\x7f]{0,40}",
    ]
}

/// A fragment graph: fragment i spreads some others (cycles and fan-out happen), perhaps a
/// fragment that does not exist.
fn fragment_graph() -> impl Strategy<Value = String> {
    (1usize..40, prop::collection::vec((prop::collection::vec(0usize..45, 0..4), field()), 40)).prop_map(
        |(n, bodies)| {
            let mut doc = String::from("query { ...F0 }\n");
            for (i, (spreads, field)) in bodies.iter().take(n).enumerate() {
                let spreads: String = spreads.iter().map(|s| format!(" ...F{s}")).collect();
                doc.push_str(&format!(
                    "fragment F{i} on Query {{ __typename{spreads} orders {{ nodes {{ {field} }} }} }}\n"
                ));
            }
            doc
        },
    )
}

fn nesting() -> impl Strategy<Value = String> {
    (1usize..300, prop_oneof![Just("orders { nodes { user { "), Just("a { "), Just("[")]).prop_map(|(depth, open)| {
        let close = if open == "[" { "]" } else { "} } } " };
        match open {
            "orders { nodes { user { " => format!("{{ {} id {} }}", open.repeat(depth), close.repeat(depth)),
            "[" => format!("{{ orders(filter: {}) {{ nodes {{ id }} }} }}", "[".repeat(depth) + &"]".repeat(depth)),
            _ => format!("{{ {}{} }}", "a { ".repeat(depth), "} ".repeat(depth)),
        }
    })
}

fn aliases_and_directives() -> impl Strategy<Value = String> {
    (1usize..300, 0usize..200, prop_oneof![Just("@include(if: true)"), Just("@skip(if: false)"), Just("@nope")])
        .prop_map(|(aliases, directives, directive)| {
            let fields: String =
                (0..aliases).map(|i| format!("a{i}: orders(perPage: 100) {{ nodes {{ id }} }} ")).collect();
            format!("{{ {fields} __typename {} }}", format!("{directive} ").repeat(directives))
        })
}

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => fragment_graph(),
        2 => nesting(),
        2 => aliases_and_directives(),
        2 => (prop::collection::vec(field(), 1..20), odd_string()).prop_map(|(fields, s)| {
            format!("query {{ orderByNumber(number: \"{s}\") {{ id }} orders(filter: {{ number: \"{s}\" }}) {{ nodes {{ {} }} }} }}", fields.join(" "))
        }),
        1 => name().prop_map(|n| format!("query {n} {{ __typename }}")),
        1 => ".{0,200}",
    ]
}

fn variables() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::json!(null)),
        Just(serde_json::json!({ "n": 1_000_000_000_000i64 })),
        Just(serde_json::json!({ "n": -5 })),
        Just(serde_json::json!({ "n": "100" })),
        odd_string().prop_map(|s| serde_json::json!({ "n": s, "m": { "deep": [[[[[[s]]]]]] } })),
    ]
}

fn graphql_case() -> impl Strategy<Value = Case> {
    (0usize..4, document(), variables(), prop::option::of(name())).prop_map(|(key, query, variables, operation)| {
        let mut body = serde_json::json!({ "query": query, "variables": variables });
        if let Some(operation) = operation {
            body["operationName"] = serde_json::json!(operation);
        }
        if query.len() % 7 == 0 {
            // Now and then, a body that is not JSON at all.
            return Case::Graphql { key, body: query };
        }
        Case::Graphql { key, body: body.to_string() }
    })
}

fn rest_case() -> impl Strategy<Value = Case> {
    let path = prop_oneof![
        Just("/api/v1/admin/orders".to_owned()),
        "/api/v1/admin/orders\\?[a-z_=&%0-9-]{0,60}",
        "/api/v1/admin/orders/[0-9a-z-]{0,25}",
        "/api/v1/admin/orders/[0-9]{1,3}/(cancel|pay|refund)",
        Just("/api/v1/admin/orders/payments/callback".to_owned()),
        Just("/api/v1/admin/orders/payments/reconcile".to_owned()),
        Just("/api/v1/payments/callback".to_owned()),
    ];
    let body = prop_oneof![
        odd_string(),
        Just("{\"amount_cents\": 99999999999999999999}".to_owned()),
        Just("{\"amount_cents\": -1, \"reason\": \"\\u0000\"}".to_owned()),
        Just("{\"order_id\": 1, \"payment_id\": 1, \"status\": 2}".to_owned()),
        Just(format!("{{\"reason\": \"{}\"}}", "r".repeat(200_000))),
        Just("amount_cents=5&reason=%00&metadata=%7B%7D".to_owned()),
    ];
    let header = prop_oneof![
        (Just("idempotency-key".to_owned()), prop_oneof!["[ -~]{0,300}", Just("k".repeat(256))]),
        (
            Just("x-billing-signature".to_owned()),
            prop_oneof![
                Just(format!("t={},v1=00", i64::MIN)),
                Just(format!("t=1{}", ",v1=ab".repeat(300))),
                "[ -~]{0,200}",
            ]
        ),
        (Just("x-request-id".to_owned()), "[ -~]{0,300}"),
    ];
    (
        0usize..4,
        prop_oneof![Just("GET"), Just("POST")],
        path,
        prop_oneof![Just("application/json"), Just("application/x-www-form-urlencoded"), Just("text/plain")],
        body,
        prop::collection::vec(header, 0..3),
    )
        .prop_map(|(key, method, path, content_type, body, extra)| Case::Rest {
            key,
            method,
            path,
            content_type,
            body,
            extra,
        })
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_never_crash_stall_or_bloat_the_real_server() {
    let url = fresh_database().await;
    let bin = env!("CARGO_BIN_EXE_billing-api");
    let run = |args: &[&str]| {
        let out = Command::new(bin).env("DATABASE_URL", &url).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned()
    };
    run(&["seed", "--users", "5", "--orders", "60"]);
    let admin = run(&["keys", "create", "--role", "admin"]);
    let customer = run(&["keys", "create", "--role", "customer", "--user", "1"]);
    let keys = [None, Some("bk_not_a_key".to_owned()), Some(customer), Some(admin)];
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(bin)
        .env("DATABASE_URL", &url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("CALLBACK_SECRET", TEST_CALLBACK_SECRET)
        .env("RATE_LIMIT_PER_SECOND", "0")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // A fresh connection per case: a connection the server closed after answering (a 413
    // before the body was read, say) must not be reused for the next case (a client race,
    // not a server failure).
    let client = reqwest::Client::builder().timeout(ANSWER_BOUND).pool_max_idle_per_host(0).build().unwrap();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Warm: the first requests allocate pools and caches that are not growth.
    for _ in 0..20 {
        let _ = client
            .post(format!("{base}/graphql"))
            .header("content-type", "application/json")
            .body("{\"query\":\"{ __typename }\"}")
            .send()
            .await;
    }
    let rss_before = rss_kib(server.id());

    let seed: u64 = env_number("ADVERSARIAL_SEED", rand::random());
    let cases = env_number("ADVERSARIAL_CASES", 1500);
    let seconds = env_number("ADVERSARIAL_SECONDS", 60);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner =
        TestRunner::new_with_rng(ProptestConfig::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let strategy = prop_oneof![3 => graphql_case(), 2 => rest_case()];
    let started = Instant::now();
    let (mut sent, mut slowest) = (0u64, Duration::ZERO);
    while sent < cases && started.elapsed() < Duration::from_secs(seconds) {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let key = match &case {
            Case::Graphql { key, .. } | Case::Rest { key, .. } => keys[*key].clone(),
        };
        let mut request = match &case {
            Case::Graphql { body, .. } => {
                client.post(format!("{base}/graphql")).header("content-type", "application/json").body(body.clone())
            }
            Case::Rest { method, path, content_type, body, extra, .. } => {
                let mut request = if *method == "GET" {
                    client.get(format!("{base}{path}"))
                } else {
                    client.post(format!("{base}{path}")).header("content-type", *content_type).body(body.clone())
                };
                for (name, value) in extra {
                    request = request.header(name.as_str(), value.as_str());
                }
                request
            }
        };
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let asked = Instant::now();
        let response = request.send().await;
        let took = asked.elapsed();
        slowest = slowest.max(took);
        let status = match response {
            Ok(response) => response.status().as_u16(),
            // The client refused to send it (a header value it cannot encode): not a server case.
            Err(error) if error.is_builder() => continue,
            Err(error) => {
                let _ = server.kill();
                panic!("seed {seed}: no answer within {ANSWER_BOUND:?} ({error:?}) to {case:?}");
            }
        };
        if status >= 500 {
            let _ = server.kill();
            panic!("seed {seed}: status {status} for {case:?}");
        }
        sent += 1;
    }
    let health = client.get(format!("{base}/healthz")).send().await.expect("still serving");
    assert_eq!(health.status(), 200);
    let rss_after = rss_kib(server.id());
    println!(
        "adversarial: {sent} cases in {:.1?} (seed {seed}), slowest answer {slowest:?}, server RSS {rss_before} KiB before, {rss_after} KiB after",
        started.elapsed()
    );
    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    assert!(server.wait().unwrap().success(), "seed {seed}: the server exits cleanly after the run");
    assert!(sent >= cases.min(100), "seed {seed}: only {sent} cases ran");
    assert!(rss_after < RSS_BOUND_KIB, "seed {seed}: RSS {rss_after} KiB after the run, bound {RSS_BOUND_KIB} KiB");
}
