//! `LISTEN` on a channel, turning each notification into a wake-up.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use tokio::sync::Notify;

/// Forwards `NOTIFY channel` to `wake` on a connection of its own; reconnects `retry` after
/// a failure. It wakes once after `LISTEN` takes effect, so whatever was committed before
/// is found by the pass that follows. Runs until aborted.
pub async fn listen(url: String, channel: &'static str, wake: Arc<Notify>, retry: Duration) {
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => {
                if let Err(error) = diesel::sql_query(format!("LISTEN {channel}")).execute(&mut conn).await {
                    tracing::warn!(error = %error, channel, "LISTEN failed; polling");
                } else {
                    wake.notify_one();
                    let mut stream = std::pin::pin!(conn.notifications_stream());
                    while let Some(item) = stream.next().await {
                        if item.is_err() {
                            break;
                        }
                        wake.notify_one();
                    }
                }
            }
            Err(error) => tracing::warn!(error = %error, channel, "listener cannot connect; polling"),
        }
        tokio::time::sleep(retry).await;
    }
}
