//! Slow, idle and numerous clients cannot hold the server; /metrics stays off public
//! listeners.

use std::time::{Duration, Instant};

use billing_api::config::Config;
use billing_api::http::server::{ServeSettings, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::TestApp;

/// Serves `t`'s router on a loopback port with `settings`; returns the address.
async fn start(t: &TestApp, settings: ServeSettings) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = t.router.clone();
    tokio::spawn(serve(listener, router, settings, std::future::pending()));
    addr
}

const SETTINGS: ServeSettings = ServeSettings {
    header_read_timeout: Duration::from_millis(500),
    max_connections: 1024,
    shutdown_grace: Duration::from_secs(1),
};

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&received).into_owned(), Some(started.elapsed()));
            }
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), None),
        }
    }
}

#[tokio::test]
async fn a_client_that_sends_headers_slowly_is_cut_off() {
    let t = TestApp::new().await;
    let addr = start(&t, SETTINGS).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    // ... and never the blank line.
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let closed = closed.expect("the server closed the connection");
    assert!(closed >= Duration::from_millis(400), "not before the timeout: {closed:?}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let t = TestApp::new().await;
    let addr = start(&t, SETTINGS).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed.is_some(), "the idle connection was closed after its request");
}

#[tokio::test]
async fn past_the_connection_cap_new_clients_wait_for_a_free_slot() {
    let t = TestApp::new().await;
    let settings = ServeSettings { max_connections: 2, header_read_timeout: Duration::from_secs(30), ..SETTINGS };
    let addr = start(&t, settings).await;
    let mut held = vec![TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap()];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let (waiting, _) = read_until_closed(&mut third, Duration::from_millis(500)).await;
    assert_eq!(waiting, "", "not served while two connections hold both slots");
    held.pop();
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served once a slot was free: {answer:?}");
    assert!(closed.is_some());
}

#[tokio::test]
async fn metrics_stay_off_a_public_listener() {
    let public = TestApp::with_config(Config { bind_addr: "0.0.0.0:8080".parse().unwrap(), ..Config::default() }).await;
    assert_eq!(public.get("/metrics", None).await.status, 404);
    let separate = billing_api::http::metrics_router(public.app.clone());
    let request = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(separate, request).await.unwrap();
    assert_eq!(response.status(), 200, "served on the metrics listener");
    let loopback = TestApp::new().await;
    assert_eq!(loopback.get("/metrics", None).await.status, 200, "on a loopback listener, as in development");
}

#[tokio::test]
async fn a_silent_connection_is_closed_too() {
    let t = TestApp::new().await;
    let addr = start(&t, SETTINGS).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a connection that never sends a byte is closed");
    let mut one_byte = TcpStream::connect(addr).await.unwrap();
    one_byte.write_all(b"P").await.unwrap();
    let (_, closed) = read_until_closed(&mut one_byte, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a connection that stops after one byte is closed");
}
