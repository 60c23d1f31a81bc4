//! GraphQL subscriptions over WebSocket at `GET /graphql` (an `Upgrade: websocket`
//! request), speaking `graphql-transport-ws` and the older `graphql-ws`
//! (subscriptions-transport-ws) subprotocols. async-graphql runs the protocol; this module
//! adds what a service on the open network needs around it:
//!
//! - The API key comes in `connection_init` (browsers cannot set headers on a WebSocket):
//!   `{"Authorization": "Bearer <key>"}` (or `authorization`, or `apiKey`). A missing or
//!   refused key closes with 4403 Forbidden; a `subscribe` before the acknowledgement with
//!   4401 Unauthorized; no `connection_init` within `WS_INIT_TIMEOUT_MS` with 4408.
//! - Limits: WebSocket connections (`WS_MAX_CONNECTIONS`, else 503 before the upgrade),
//!   subscriptions per connection and per key, a server ping every `WS_PING_INTERVAL_MS`
//!   (a `graphql-transport-ws` client that sends nothing for three intervals is closed),
//!   and a connection with no subscription for `WS_IDLE_TIMEOUT_MS` is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::HttpState;
use crate::domain::access;
use crate::error::AppError;

/// One WebSocket connection's count of open subscriptions (request data of each of them).
#[derive(Clone)]
pub struct Connection {
    active: Arc<AtomicUsize>,
    limit: usize,
    /// The key of `connection_init` (0 until then), so a revoked key's socket is closed.
    key_id: Arc<std::sync::atomic::AtomicI64>,
    /// The key's registration with the hub, held while the socket is open.
    registered: Arc<std::sync::Mutex<Option<crate::domain::live::SocketKey>>>,
}

/// One subscription's place on its connection; released on drop.
pub struct ConnectionSlot {
    active: Arc<AtomicUsize>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connection {
    pub fn take_slot(&self) -> Result<ConnectionSlot, AppError> {
        let taken =
            self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1));
        match taken {
            Ok(_) => Ok(ConnectionSlot { active: self.active.clone() }),
            Err(n) => Err(AppError::Conflict(format!(
                "this connection has {n} open subscriptions, the most it may have; end one first"
            ))),
        }
    }

    fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// The schema as the WebSocket runs it: subscriptions only (queries and mutations go over
/// HTTP, where idempotency and the request limits apply), with the same limits on a
/// document's shape and cost as over HTTP, and every error given its `extensions.code`.
#[derive(Clone)]
struct Guarded {
    schema: crate::graphql::AppSchema,
    limits: crate::graphql::limits::ShapeLimits,
}

const ONLY_SUBSCRIPTIONS: &str = "over WebSocket only subscriptions run: send queries and mutations to POST /graphql";

fn refusal(message: &str) -> async_graphql::Response {
    let mut error = async_graphql::ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
    async_graphql::Response::from_errors(vec![error])
}

impl Guarded {
    fn check(&self, request: &async_graphql::Request) -> Result<(), Box<async_graphql::Response>> {
        use async_graphql::parser::types::OperationType;
        let document =
            async_graphql::parser::parse_query(&request.query).map_err(|e| Box::new(refusal(&e.to_string())))?;
        let variables = match request.variables.clone().into_value().into_json() {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => None,
        };
        crate::graphql::limits::check(&document, request.operation_name.as_deref(), variables.as_ref(), self.limits)
            .map_err(|message| Box::new(refusal(&message)))?;
        match crate::graphql::documents::selected_operation(&document, request.operation_name.as_deref()) {
            Some((_, operation)) if operation.ty == OperationType::Subscription => Ok(()),
            Some(_) => Err(Box::new(refusal(ONLY_SUBSCRIPTIONS))),
            None => Err(Box::new(refusal("the document has no such operation"))),
        }
    }
}

impl async_graphql::Executor for Guarded {
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> impl std::future::Future<Output = async_graphql::Response> + Send {
        let refused = self.check(&request).err();
        async move { refused.map_or_else(|| refusal(ONLY_SUBSCRIPTIONS), |r| *r) }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        if let Err(refused) = self.check(&request) {
            return futures_util::stream::once(futures_util::future::ready(*refused)).boxed();
        }
        async_graphql::Executor::execute_stream(&self.schema, request, session_data)
            .map(|mut response| {
                crate::graphql::assign_codes(&mut response);
                response
            })
            .boxed()
    }
}

/// The upgrade: refused with 503 past the connection cap. Messages are bounded like HTTP
/// bodies (`BODY_LIMIT_BYTES`), before any key is checked.
pub async fn upgrade(state: HttpState, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = state.app.ws_slots().try_acquire_owned() else {
        let body = serde_json::json!({ "errors": [{ "message": "too many WebSocket connections; retry later",
            "extensions": { "code": "SERVICE_UNAVAILABLE" } }] });
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    };
    let limit = state.app.config().body_limit_bytes;
    let ws = ws.protocols(ALL_WEBSOCKET_PROTOCOLS).max_message_size(limit).max_frame_size(limit);
    // The protocol spoken is the one the handshake agreed on.
    let Some(protocol) = ws.selected_protocol().and_then(|p| p.to_str().ok()).and_then(|p| p.parse().ok()) else {
        let message = "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws";
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    ws.on_upgrade(move |socket| serve(state, socket, protocol, permit))
}

/// The key a `connection_init` payload carries.
fn key_in(payload: &serde_json::Value) -> Option<String> {
    let text = ["Authorization", "authorization", "apiKey", "api_key"]
        .iter()
        .find_map(|name| payload.get(name).and_then(|v| v.as_str()))?;
    let key = text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")).unwrap_or(text).trim();
    (!key.is_empty()).then(|| key.to_owned())
}

const FORBIDDEN: &str = "Forbidden";

async fn serve(state: HttpState, socket: WebSocket, protocol: WebSocketProtocols, _permit: OwnedSemaphorePermit) {
    let config = state.app.config().clone();
    let connection = Connection {
        active: Arc::new(AtomicUsize::new(0)),
        limit: config.ws_subscriptions_per_connection,
        key_id: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        registered: Arc::new(std::sync::Mutex::new(None)),
    };
    let started = Instant::now();
    let last_inbound = Arc::new(AtomicU64::new(0));
    let (mut sink, stream) = socket.split();
    let seen = last_inbound.clone();
    let input = stream.take_while(|message| futures_util::future::ready(message.is_ok())).filter_map(move |message| {
        seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        futures_util::future::ready(match message {
            Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
            Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
            _ => None,
        })
    });
    let app = state.app.clone();
    let conn_data = connection.clone();
    let on_init = move |payload: serde_json::Value| async move {
        let refused = |why: &str| async_graphql::Error::new(format!("{FORBIDDEN}: {why}"));
        let key = key_in(&payload)
            .ok_or_else(|| refused("connection_init must carry the API key: {\"Authorization\": \"Bearer <key>\"}"))?;
        let caller = access::authenticate(app.pool(), &key)
            .await
            .map_err(|_| refused("the API key is not valid or has been revoked"))?;
        if app.rates().check(caller.key_id).is_err() {
            return Err(refused("this API key made more requests than its rate allows"));
        }
        conn_data.key_id.store(caller.key_id, Ordering::Release);
        if let Ok(mut registered) = conn_data.registered.lock() {
            *registered = Some(app.hub().register_socket(caller.key_id));
        }
        let mut data: Data = crate::graphql::connection_data(&app, caller);
        data.insert(conn_data);
        Ok(data)
    };
    let legacy = protocol == WebSocketProtocols::SubscriptionsTransportWS;
    let executor = Guarded { schema: state.schema.clone(), limits: super::graphql::shape_limits(&config) };
    let messages = async_graphql::http::WebSocket::new(executor, input, protocol)
        .on_connection_init(on_init)
        .keepalive_timeout(None);
    let mut messages = std::pin::pin!(messages);
    let mut tick = tokio::time::interval(config.ws_ping_interval);
    tick.tick().await;
    let init_deadline = tokio::time::sleep(config.ws_init_timeout);
    let mut init_deadline = std::pin::pin!(init_deadline);
    let mut acked = false;
    let mut idle_since = Some(Instant::now());
    let close = |code: u16, reason: &str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    // A client that stops reading must not hold the socket: a send that cannot complete
    // within a ping interval ends the connection.
    let patience = config.ws_ping_interval.max(Duration::from_secs(10));
    macro_rules! send {
        ($message:expr) => {
            matches!(tokio::time::timeout(patience, sink.send($message)).await, Ok(Ok(())))
        };
    }
    let hub = state.app.hub().clone();
    let mut keys_checked = hub.key_checks();
    let mut revoked_close: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            message = messages.next() => {
                let out = match message {
                    Some(WsMessage::Text(text)) => {
                        // async-graphql writes the message type first: a protocol message is
                        // told by its start, never by text a payload might contain.
                        if !acked && text.starts_with(r#"{"type":"connection_ack""#) {
                            acked = true;
                        }
                        if legacy && text.starts_with(r#"{"type":"connection_error""#) {
                            // The older protocol says why in a message; then close as the newer one does.
                            let _ = send!(Message::Text(text.into()));
                            close(4403, FORBIDDEN)
                        } else {
                            if !send!(Message::Text(text.into())) {
                                break;
                            }
                            continue;
                        }
                    }
                    Some(WsMessage::Close(code, reason)) => match code {
                        1002 if reason.starts_with(FORBIDDEN) => close(4403, FORBIDDEN),
                        1011 if !acked => close(4401, "Unauthorized"),
                        _ => close(code, &reason),
                    },
                    None => close(1000, "done"),
                };
                let _ = send!(out);
                break;
            }
            () = &mut init_deadline, if !acked => {
                let _ = send!(close(4408, "Connection initialisation timeout"));
                break;
            }
            _ = keys_checked.recv(), if revoked_close.is_none() => {
                let key_id = connection.key_id.load(Ordering::Acquire);
                if key_id != 0 && hub.is_revoked(key_id) {
                    // Let the subscriptions say why they end, then close.
                    revoked_close = Some(Box::pin(tokio::time::sleep(Duration::from_millis(250))));
                }
            }
            () = async { if let Some(deadline) = revoked_close.as_mut() { deadline.await } }, if revoked_close.is_some() => {
                let _ = send!(close(4403, "Forbidden: the API key was revoked"));
                break;
            }
            _ = tick.tick() => {
                let silent_ms = (started.elapsed().as_millis() as u64).saturating_sub(last_inbound.load(Ordering::Relaxed));
                if !legacy && acked && Duration::from_millis(silent_ms) > config.ws_ping_interval * 3 {
                    let _ = send!(close(4408, "no pong within three ping intervals"));
                    break;
                }
                let key_id = connection.key_id.load(Ordering::Acquire);
                if key_id != 0 && hub.is_revoked(key_id) {
                    let _ = send!(close(4403, "Forbidden: the API key was revoked"));
                    break;
                }
                if connection.active() > 0 {
                    idle_since = None;
                } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= config.ws_idle_timeout {
                    let _ = send!(close(1000, "idle: no subscription"));
                    break;
                }
                if acked {
                    let ping = if legacy { r#"{"type":"ka"}"# } else { r#"{"type":"ping"}"# };
                    if !send!(Message::Text(ping.into())) {
                        break;
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(patience, sink.close()).await;
}
