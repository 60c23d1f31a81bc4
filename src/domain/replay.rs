//! Signed callbacks are accepted once: a signature (which covers its timestamp and body)
//! is recorded when a callback is taken, and the same signature again is refused. Records
//! outlive the signature's validity window and are then purged.

use chrono::{Duration, Utc};

use crate::db::{DbPool, queries};
use crate::error::AppResult;

/// How long an accepted signature is remembered: longer than it can be valid either side
/// of now (five minutes each way).
pub const RETENTION: Duration = Duration::minutes(15);

/// Records `signature` as accepted; false when it already was (a replay).
pub async fn claim(pool: &DbPool, signature: &[u8]) -> AppResult<bool> {
    let mut conn = pool.get().await?;
    Ok(queries::claim_callback_signature(&mut conn, signature).await?)
}

/// Forgets a signature whose callback failed on the server's side, so the sender's retry
/// of the same delivery is taken.
pub async fn release(pool: &DbPool, signature: &[u8]) -> AppResult<()> {
    let mut conn = pool.get().await?;
    queries::release_callback_signature(&mut conn, signature).await?;
    Ok(())
}

/// Deletes records past their retention; returns how many.
pub async fn purge_expired(pool: &DbPool) -> AppResult<usize> {
    let mut conn = pool.get().await?;
    Ok(queries::delete_callback_signatures_before(&mut conn, Utc::now() - RETENTION).await?)
}
