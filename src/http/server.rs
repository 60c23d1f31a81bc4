//! The accept loop: HTTP/1.1, with what `axum::serve` lacks for a service on the open
//! network.
//!
//! - A header-read timeout: a client has this long to send a request's headers, from the
//!   moment it connects (a silent connection included), and the same clock runs while a
//!   kept-alive connection waits for its next request, so a slow or idle client cannot
//!   hold a connection (slowloris). HTTP/2 is not offered: detecting it reads the first
//!   bytes with no timeout, and clients of this API speak HTTP/1.1 (TLS, and with it
//!   HTTP/2, belongs to the proxy in front).
//! - A connection cap: past it the server stops accepting until a connection closes, so
//!   many idle sockets cannot exhaust memory or file descriptors.
//! - Graceful shutdown: on the signal, stop accepting, let requests in flight finish, and
//!   return after a grace period whatever is left.
//!
//! Bodies are bounded by the request timeout of the router (`REQUEST_TIMEOUT_MS`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How the loop treats connections (from configuration).
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains for at most the
/// grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout).max_buf_size(64 * 1024);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    // hyper-util's GracefulShutdown does not take connections that can upgrade (WebSocket),
    // so connections watch a stop signal of their own and are tracked to drain them.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tracker = tokio_util::task::TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Past the cap, wait for a connection to close before accepting another.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment, do not spin.
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(|request: Request<Incoming>| request.map(Body::new));
        // With upgrades: GraphQL subscriptions switch the connection to WebSocket.
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
        let mut stopped = stopped.clone();
        tracker.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                    // Finish the request in flight, then close (a WebSocket has left hyper
                    // already and is not affected).
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = stop.send(true);
    tracker.close();
    tokio::select! {
        () = tracker.wait() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!(
                grace_ms = settings.shutdown_grace.as_millis() as u64,
                "requests still in flight after the grace period; exiting"
            );
        }
    }
    Ok(())
}
