//! The delivery worker: claims due deliveries from the outbox, signs and POSTs them, logs
//! every attempt and schedules the next.
//!
//! - Several workers (one per `serve` process) share the outbox: claims use
//!   `FOR UPDATE SKIP LOCKED` and lease the row, so no delivery is sent by two at once and
//!   one whose worker died is sent again when its lease ends.
//! - Woken by `LISTEN billing_webhooks` (the outbox `NOTIFY`s on commit), polling as a
//!   fallback.
//! - Only 2xx is success. 410 Gone gives the delivery up and disables its endpoint. Other
//!   4xx are given up at once, except 408, 409, 425 and 429, which are retried like 5xx
//!   and network errors. `Retry-After` (seconds or an HTTP date) is honoured, capped at a
//!   day. After the last scheduled retry the delivery is given up and its endpoint
//!   disabled; the order's events say so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::json;
use tokio::sync::Notify;

use super::signing;
use super::target::{self, PublicOnlyResolver};
use crate::config::WebhookConfig;
use crate::db::webhooks::{self as wq, Finish};
use crate::db::{DbPool, merchants as mq, models};
use crate::domain::events::{self, kind};
use crate::error::{AppError, AppResult};

/// The actor of events the worker records.
pub const WEBHOOK_ACTOR: &str = "webhooks";

/// Bytes of a response body kept in the attempt log.
pub const EXCERPT_BYTES: usize = 1024;

/// What a claim's lease adds to twice the attempt timeout: room for the pool waits and the
/// writes that record the outcome.
const LEASE_MARGIN_MS: u128 = 30_000;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The HTTP client deliveries go out through: no redirects (a redirect could lead to a
/// private address), the configured timeout, and unless private targets are allowed a
/// resolver that answers public addresses only.
pub fn client(config: &WebhookConfig) -> AppResult<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .user_agent(concat!("billing-api-webhooks/", env!("CARGO_PKG_VERSION")))
        // A proxy would resolve the host itself, past the public-only resolver.
        .no_proxy()
        .pool_max_idle_per_host(4);
    if !config.allow_private_targets {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    builder.build().map_err(|e| AppError::internal(anyhow::anyhow!("webhook client: {e}")))
}

/// One worker: the pool, its client and settings.
#[derive(Clone)]
pub struct Worker {
    pub pool: DbPool,
    pub client: reqwest::Client,
    pub config: WebhookConfig,
}

impl Worker {
    pub fn new(pool: DbPool, config: WebhookConfig) -> AppResult<Self> {
        Ok(Self { client: client(&config)?, pool, config })
    }

    /// Claims one batch of due deliveries and sends them concurrently; returns how many
    /// were attempted.
    pub async fn run_once(&self) -> AppResult<usize> {
        let claimed = self.claim(self.config.batch).await?;
        let count = claimed.len();
        futures_util::stream::iter(claimed)
            .for_each_concurrent(None, |delivery| async move {
                let id = delivery.id;
                if let Err(error) = self.attempt(delivery).await {
                    // The lease brings it back; nothing is lost.
                    tracing::warn!(delivery = id, error = %error, "webhook attempt could not be recorded");
                }
            })
            .await;
        Ok(count)
    }

    /// Claims up to `limit` due deliveries.
    async fn claim(&self, limit: i64) -> AppResult<Vec<models::WebhookDelivery>> {
        // The lease covers the attempt's timeout and the time to record its outcome (two
        // pool checkouts). A worker that holds a claim past it records nothing: the claim
        // (the claim number it took) no longer matches.
        let lease_ms = i32::try_from(self.config.timeout.as_millis() * 2 + LEASE_MARGIN_MS).unwrap_or(i32::MAX);
        let mut conn = self.pool.get().await?;
        Ok(wq::claim_due(&mut conn, limit, lease_ms).await?)
    }

    /// Runs until `shutdown` completes. At most `WEBHOOK_BATCH` attempts are in flight;
    /// whenever one ends, or a notification comes (when `database_url` is given), or the
    /// poll interval passes, as many more as there are free slots are claimed: an endpoint
    /// that hangs holds only its own slots, never a whole batch.
    pub async fn run(self, database_url: Option<String>, shutdown: impl std::future::Future<Output = ()>) {
        let wake = Arc::new(Notify::new());
        let listener = database_url
            .map(|url| tokio::spawn(crate::db::listen::listen(url, wq::CHANNEL, wake.clone(), self.config.poll * 10)));
        let slots = Arc::new(tokio::sync::Semaphore::new(usize::try_from(self.config.batch).unwrap_or(1).max(1)));
        let poll = self.config.poll;
        let worker = Arc::new(self);
        tokio::pin!(shutdown);
        loop {
            let free = slots.available_permits();
            let mut more = false;
            if free > 0 {
                match worker.claim(i64::try_from(free).unwrap_or(1)).await {
                    Ok(claimed) => {
                        more = claimed.len() == free;
                        for delivery in claimed {
                            let Ok(slot) = slots.clone().acquire_owned().await else { break };
                            let (worker, wake) = (worker.clone(), wake.clone());
                            tokio::spawn(async move {
                                let id = delivery.id;
                                if let Err(error) = worker.attempt(delivery).await {
                                    // The lease brings it back; nothing is lost.
                                    tracing::warn!(delivery = id, error = %error, "webhook attempt could not be recorded");
                                }
                                drop(slot);
                                wake.notify_one();
                            });
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "claiming webhook deliveries failed"),
                }
            }
            if more {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        if let Some(listener) = listener {
            listener.abort();
        }
    }

    async fn attempt(&self, delivery: models::WebhookDelivery) -> AppResult<()> {
        let mut conn = self.pool.get().await?;
        if let Some(endpoint_id) = delivery.endpoint_id {
            let enabled = mq::find_endpoint(&mut conn, endpoint_id).await?.is_some_and(|e| e.enabled);
            if !enabled {
                wq::finish_attempt(
                    &mut conn,
                    delivery.id,
                    delivery.claims,
                    Finish::GiveUp,
                    None,
                    Some("endpoint disabled"),
                )
                .await?;
                return Ok(());
            }
        }
        let secrets: Vec<String> = mq::active_secrets(&mut conn, delivery.merchant_id, Utc::now())
            .await?
            .into_iter()
            .map(|s| s.secret)
            .collect();
        drop(conn);

        let started = Instant::now();
        let sent = self.send(&delivery, &secrets).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (status, excerpt, error, retry_after) = match &sent {
            Ok(answer) => (Some(answer.status), Some(answer.excerpt.as_str()), None, answer.retry_after),
            Err(error) => (None, None, Some(error.as_str()), None),
        };
        let verdict = verdict(status);
        let finish = match verdict {
            Verdict::Delivered => Finish::Delivered,
            Verdict::Gone | Verdict::Refused => Finish::GiveUp,
            Verdict::Retry => match self.next_attempt(delivery.attempts, retry_after) {
                Some(at) => Finish::RetryAt(at),
                None => Finish::GiveUp,
            },
        };
        let exhausted = verdict == Verdict::Retry && finish == Finish::GiveUp;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            wq::insert_attempt(
                conn,
                &models::NewWebhookAttempt {
                    delivery_id: delivery.id,
                    attempt: delivery.attempts.max(1),
                    url: &delivery.url,
                    response_status: status,
                    response_excerpt: excerpt,
                    error,
                    latency_ms,
                },
            )
            .await?;
            let last_error = error.map(str::to_owned).or_else(|| status.map(|s| format!("HTTP {s}")));
            let still_ours =
                wq::finish_attempt(conn, delivery.id, delivery.claims, finish, status, last_error.as_deref()).await?;
            if !still_ours {
                // The lease ran out (or the delivery was reset) meanwhile: whoever holds it
                // now decides; this attempt stays in the log.
                return Ok(());
            }
            if finish == Finish::GiveUp {
                self.give_up(conn, &delivery, verdict, exhausted, status).await?;
            }
            Ok(())
        })
        .await
    }

    /// Records a given-up delivery on its order; a 410 or days of failures disable its
    /// endpoint (and give up what else is pending for it).
    async fn give_up(
        &self,
        conn: &mut AsyncPgConnection,
        delivery: &models::WebhookDelivery,
        verdict: Verdict,
        exhausted: bool,
        status: Option<i32>,
    ) -> AppResult<()> {
        events::record(
            conn,
            delivery.order_id,
            kind::WEBHOOK_GIVEN_UP,
            WEBHOOK_ACTOR,
            json!({
                "webhook_id": delivery.webhook_id,
                "endpoint_id": delivery.endpoint_id,
                "attempts": delivery.attempts,
                "last_status": status,
                "sequence": delivery.order_seq,
            }),
        )
        .await?;
        let disable = verdict == Verdict::Gone || exhausted;
        if !disable {
            return Ok(());
        }
        let reason = if verdict == Verdict::Gone { "410 Gone" } else { "failing for every retry (about three days)" };
        match delivery.endpoint_id {
            Some(endpoint_id) => {
                mq::set_endpoint_enabled(conn, endpoint_id, Some(reason)).await?;
                wq::give_up_pending(conn, None, Some(endpoint_id), "endpoint disabled").await?;
                events::record(
                    conn,
                    delivery.order_id,
                    kind::WEBHOOK_ENDPOINT_DISABLED,
                    WEBHOOK_ACTOR,
                    json!({ "endpoint_id": endpoint_id, "reason": reason }),
                )
                .await?;
            }
            None if verdict == Verdict::Gone => {
                // The order's own callback URL is gone: nothing more is sent there.
                wq::give_up_pending(conn, Some((delivery.order_id, &delivery.url)), None, "callback URL gone").await?;
            }
            None => {}
        }
        Ok(())
    }

    /// When the next attempt is due after `attempts` attempts, or `None` when the schedule
    /// is spent.
    fn next_attempt(&self, attempts: i32, retry_after: Option<Duration>) -> Option<chrono::DateTime<Utc>> {
        let index = usize::try_from(attempts.max(1) - 1).ok()?;
        let base = *self.config.retry_delays.get(index)?;
        let jitter = rand::rng().random_range(0.9..1.1);
        let mut wait = base.mul_f64(jitter);
        if let Some(asked) = retry_after {
            wait = wait.max(asked.min(MAX_RETRY_AFTER));
        }
        Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)))
    }

    async fn send(&self, delivery: &models::WebhookDelivery, secrets: &[String]) -> Result<Answer, String> {
        let url = reqwest::Url::parse(&delivery.url).map_err(|_| "the URL is not valid".to_owned())?;
        if !target::literal_allowed(&url, self.config.allow_private_targets) {
            return Err("the URL's address is not public".to_owned());
        }
        if secrets.is_empty() {
            return Err("the merchant has no active signing secret".to_owned());
        }
        let timestamp = Utc::now().timestamp();
        let signature =
            signing::header(secrets, &delivery.webhook_id, timestamp, &delivery.body).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = i32::from(response.status().as_u16());
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let mut excerpt = Vec::new();
        let mut response = response;
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - excerpt.len())]),
                Ok(None) | Err(_) => break,
            }
        }
        let excerpt: String = String::from_utf8_lossy(&excerpt).chars().take(EXCERPT_BYTES).collect();
        Ok(Answer { status, excerpt, retry_after })
    }
}

/// A receiver's answer.
struct Answer {
    status: i32,
    excerpt: String,
    retry_after: Option<Duration>,
}

/// What an answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry,
    Gone,
    Refused,
}

fn verdict(status: Option<i32>) -> Verdict {
    match status {
        None => Verdict::Retry,
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(408 | 409 | 425 | 429) => Verdict::Retry,
        Some(400..=499) => Verdict::Refused,
        Some(_) => Verdict::Retry,
    }
}

/// An error as the attempt log shows it, without the URL (it may carry a token).
fn describe(error: reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_request() {
        "the request failed"
    } else {
        "the exchange failed"
    };
    let mut source = std::error::Error::source(&error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() { what.to_owned() } else { format!("{what}: {detail}") }
}

/// `Retry-After`: delta seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_delivers_and_some_4xx_retry() {
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        assert_eq!(verdict(Some(410)), Verdict::Gone);
        for retried in [408, 409, 425, 429, 500, 503] {
            assert_eq!(verdict(Some(retried)), Verdict::Retry, "{retried}");
        }
        for refused in [400, 401, 403, 404, 422] {
            assert_eq!(verdict(Some(refused)), Verdict::Refused, "{refused}");
        }
        assert_eq!(verdict(Some(301)), Verdict::Retry);
        assert_eq!(verdict(None), Verdict::Retry);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let later = (Utc::now() + chrono::Duration::seconds(600)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(590) && wait <= Duration::from_secs(600));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
