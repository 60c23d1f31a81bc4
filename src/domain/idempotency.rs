//! Idempotency keys: the same key with the same request replays the first response without
//! acting again; with a different request it is IDEMPOTENCY_CONFLICT. Keys are scoped to
//! the caller and kept for the configured retention (`IDEMPOTENCY_RETENTION_HOURS`, 7 days).

use chrono::{Duration, Utc};

use crate::db::{DbPool, queries};
use crate::error::{AppError, AppResult};

/// How long a key is remembered by default: a week, longer than Stripe's 24 hours, so a
/// client retrying after a long outage still reaches the first answer.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What a request carrying a key should do.
#[derive(Debug)]
pub enum Claim {
    /// First use: act, then `complete` (or `release` when the outcome must not be replayed).
    Owned(i64),
    /// Seen before with the same request: answer this.
    Replay { status: u16, body: String },
    /// The first request with this key is still running.
    InProgress,
}

/// Validates a client's key: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::bad_input("Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    Ok(())
}

/// Claims `(scope, key)` for `lease`: the first request owns it; a request for the same
/// work after the owner's lease ran out without an answer takes it over (the work itself is
/// idempotent: a refund continues the refund its request key made).
pub async fn claim(
    pool: &DbPool,
    scope: &str,
    key: &str,
    request_hash: &str,
    lease: std::time::Duration,
) -> AppResult<Claim> {
    let now = Utc::now();
    let until = now + Duration::from_std(lease).unwrap_or(Duration::seconds(60));
    let mut conn = pool.get().await?;
    if let Some(id) = queries::claim_idempotency_key(&mut conn, scope, key, request_hash, until).await? {
        return Ok(Claim::Owned(id));
    }
    if let Some(id) = queries::take_over_idempotency_key(&mut conn, scope, key, request_hash, now, until).await? {
        tracing::warn!(claim = id, "taking over an idempotency claim whose lease ran out");
        return Ok(Claim::Owned(id));
    }
    let Some(record) = queries::find_idempotency_key(&mut conn, scope, key).await? else {
        // Released between our insert and our read: the caller tries again.
        return Ok(Claim::InProgress);
    };
    if record.request_hash != request_hash {
        return Err(AppError::IdempotencyConflict(format!(
            "Idempotency-Key {key:?} was already used for a different request; use a new key for a new request"
        )));
    }
    match (record.response_status, record.response_body) {
        (Some(status), Some(body)) => Ok(Claim::Replay { status: u16::try_from(status).unwrap_or(500), body }),
        _ => Ok(Claim::InProgress),
    }
}

/// Keeps a running claim's lease from running out: call it every third of the lease while
/// the work runs, so only a claim whose holder died is ever taken over.
pub async fn extend(pool: &DbPool, id: i64, lease: std::time::Duration) -> AppResult<()> {
    let until = Utc::now() + Duration::from_std(lease).unwrap_or(Duration::seconds(60));
    let mut conn = pool.get().await?;
    queries::extend_idempotency_claim(&mut conn, id, until).await?;
    Ok(())
}

pub async fn complete(pool: &DbPool, id: i64, status: u16, body: &str) -> AppResult<()> {
    let mut conn = pool.get().await?;
    Ok(queries::complete_idempotency_key(&mut conn, id, i32::from(status), body, Utc::now()).await?)
}

/// Forgets a claim whose request failed on the server's side, so a retry acts again.
pub async fn release(pool: &DbPool, id: i64) -> AppResult<()> {
    let mut conn = pool.get().await?;
    Ok(queries::delete_idempotency_key(&mut conn, id).await?)
}

/// Deletes keys older than the retention period; returns how many.
pub async fn purge_expired(pool: &DbPool, retention: std::time::Duration) -> AppResult<usize> {
    let retention = Duration::from_std(retention).unwrap_or(Duration::MAX);
    let before = Utc::now().checked_sub_signed(retention).unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let mut conn = pool.get().await?;
    Ok(queries::delete_idempotency_keys_before(&mut conn, before).await?)
}
